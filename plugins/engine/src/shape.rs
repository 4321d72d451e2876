//! What an ensemble's outputs are and how they turn into probabilities:
//! the checks every compiled form of an ensemble (this engine, quantized
//! ensembles) makes on its shape, and the link applied to raw outputs.

use tessera_core::ir::{self, Combine, Link, TreeEnsemble};

/// The shape fields of an ensemble that must agree with each other.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EnsembleShape {
    /// Input features.
    pub n_features: u32,
    /// Raw outputs per row.
    pub n_outputs: u32,
    /// Classes (0 for regression).
    pub n_classes: u32,
    /// How trees combine.
    pub combine: Combine,
    /// The link after combining.
    pub link: Link,
    /// Number of base scores (0 or `n_outputs`).
    pub base_len: usize,
}

impl EnsembleShape {
    /// The shape of `ens`.
    pub fn of(ens: &TreeEnsemble) -> Self {
        Self {
            n_features: ens.n_features,
            n_outputs: ens.n_outputs,
            n_classes: ens.n_classes,
            combine: ens.combine,
            link: ens.link,
            base_len: ens.base_score.len(),
        }
    }

    /// Checks that outputs, classes, link, combination, base score and the
    /// trees' `output`s (one per tree) agree.
    ///
    /// # Errors
    /// The first disagreement, as a sentence starting "tree ensemble:".
    pub fn check(&self, tree_outputs: &[u32]) -> Result<(), String> {
        let (k, c) = (self.n_outputs, self.n_classes);
        let bad = |why: String| Err(format!("tree ensemble: {why}"));
        if self.n_features == 0 {
            return bad("it has no input features".into());
        }
        if k == 0 {
            return bad("it has no outputs".into());
        }
        match (self.link, c) {
            (Link::Sigmoid, _) if k != 1 || c != 2 => {
                return bad(format!(
                    "a sigmoid link needs one output and two classes, not {k} and {c}"
                ));
            }
            (Link::Softmax, _) if k != c || c < 2 => {
                return bad(format!(
                    "a softmax link needs one output per class (at least 2), not {k} outputs for {c} classes"
                ));
            }
            (Link::Identity, c) if c > 0 && k != c => {
                return bad(format!(
                    "a classifier without a link has one output per class, not {k} for {c}"
                ));
            }
            _ => {}
        }
        if self.combine == Combine::Vote {
            if c < 2 {
                return bad("a vote needs at least two classes".into());
            }
            if tree_outputs.iter().any(|&o| o != ir::Tree::ALL_OUTPUTS) {
                return bad("in a vote every tree's leaves hold a value per class".into());
            }
        }
        if self.combine != Combine::Sum && tree_outputs.is_empty() {
            return bad("a mean or vote of no trees".into());
        }
        if self.base_len != 0 && self.base_len != k as usize {
            return bad(format!("{} base scores for {k} outputs", self.base_len));
        }
        if let Some((t, o)) =
            (tree_outputs.iter().enumerate()).find(|&(_, &o)| o != ir::Tree::ALL_OUTPUTS && o >= k)
        {
            return bad(format!("tree {t} adds to output {o}, but there are {k}"));
        }
        Ok(())
    }
}

/// Class probabilities of one row's raw outputs through `link` into `out`
/// (one per class): the logistic function of one score, a softmax, or the
/// outputs as they are.
pub fn link_proba(link: Link, raw: &[f64], out: &mut [f32]) {
    match link {
        Link::Sigmoid => {
            let p = 1.0 / (1.0 + (-raw[0]).exp());
            out[0] = (1.0 - p) as f32;
            out[1] = p as f32;
        }
        Link::Softmax => {
            let max = raw.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let s: f64 = raw.iter().map(|v| (v - max).exp()).sum();
            for (o, v) in out.iter_mut().zip(raw) {
                *o = ((v - max).exp() / s) as f32;
            }
        }
        Link::Identity => {
            for (o, v) in out.iter_mut().zip(raw) {
                *o = *v as f32;
            }
        }
    }
}
