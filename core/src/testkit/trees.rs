//! Random trees in exchange form and a model made of them ([`TreesModel`]),
//! for meta-learner tests that compare the inference engine's answers with
//! their members' own.

use serde_json::{Value, json};

use super::fakes::argmax;
use crate::{
    HostContextRef, Matrix, MatrixRef, PluginError, Task,
    ir::{Combine, Link, ModelIr, Tree, TreeEnsemble, TreeNode},
    plugin::{ModelImpl, seeds::SplitMix},
};

/// A model that is the mean of some trees in exchange form, predicting by
/// walking them: the class of the largest mean leaf value (the first on
/// ties), or the mean value. Its exchange form is that mean.
pub struct TreesModel {
    /// Regression or classification.
    pub task: Task,
    /// Columns it reads.
    pub cols: usize,
    /// The trees; their leaves hold a value per class (one for regression).
    pub trees: Vec<Tree>,
}

impl TreesModel {
    fn k(&self) -> usize {
        (self.task.n_classes as usize).max(1)
    }

    /// The mean of the trees' leaf values for `row`.
    pub fn mean(&self, row: &[f32]) -> Vec<f32> {
        let k = self.k();
        let mut acc = vec![0.0f64; k];
        for t in &self.trees {
            let mut one = vec![0.0f32; k];
            t.add_to(row, &mut one);
            acc.iter_mut()
                .zip(&one)
                .for_each(|(a, v)| *a += f64::from(*v));
        }
        acc.iter()
            .map(|a| (a / self.trees.len() as f64) as f32)
            .collect()
    }
}

impl ModelImpl for TreesModel {
    fn task(&self) -> Task {
        self.task
    }

    fn n_features(&self) -> usize {
        self.cols
    }

    fn predict(
        &self,
        _ctx: &HostContextRef<'_>,
        x: MatrixRef<'_>,
    ) -> Result<Vec<f32>, PluginError> {
        Ok((0..x.rows())
            .map(|r| {
                let m = self.mean(x.row(r));
                if self.task.is_classification() {
                    argmax(&m) as f32
                } else {
                    m[0]
                }
            })
            .collect())
    }

    fn predict_proba(
        &self,
        _ctx: &HostContextRef<'_>,
        x: MatrixRef<'_>,
    ) -> Result<Matrix, PluginError> {
        let data = (0..x.rows()).flat_map(|r| self.mean(x.row(r))).collect();
        Ok(Matrix::new(data, x.rows(), self.k()))
    }

    fn describe(&self) -> Value {
        json!({})
    }

    fn to_bytes(&self) -> Result<Vec<u8>, PluginError> {
        Ok(Vec::new())
    }

    fn to_ir(&self) -> Option<ModelIr> {
        Some(ModelIr::Trees(TreeEnsemble {
            n_features: self.cols as u32,
            n_outputs: self.k() as u32,
            n_classes: if self.task.is_classification() {
                self.task.n_classes
            } else {
                0
            },
            combine: Combine::Mean,
            link: Link::Identity,
            base_score: Vec::new().into(),
            trees: self.trees.clone().into(),
        }))
    }
}

/// A random tree on `cols` columns: random splits (thresholds in
/// [-1, 1)) and missing-value sides, at most `depth` deep, each leaf
/// holding `k` values in [0, 1).
pub fn random_tree(rng: &mut SplitMix, cols: usize, k: usize, depth: usize) -> Tree {
    fn grow(
        rng: &mut SplitMix,
        t: &mut (Vec<TreeNode>, Vec<f32>),
        cols: usize,
        k: usize,
        depth: usize,
    ) -> u32 {
        let i = t.0.len();
        t.0.push(TreeNode::leaf(t.1.len() as u32));
        if depth == 0 || rng.unit() < 0.2 {
            t.1.extend((0..k).map(|_| rng.unit() as f32));
        } else {
            let left = grow(rng, t, cols, k, depth - 1);
            let right = grow(rng, t, cols, k, depth - 1);
            t.0[i] = TreeNode {
                feature: rng.below(cols) as u32,
                threshold: (rng.unit() * 2.0 - 1.0) as f32,
                left,
                right,
                value: 0,
                missing_left: u8::from(rng.unit() < 0.5),
            };
        }
        i as u32
    }
    let mut t = (Vec::new(), Vec::new());
    grow(rng, &mut t, cols, k, depth);
    Tree {
        nodes: t.0.into(),
        values: t.1.into(),
        output: Tree::ALL_OUTPUTS,
    }
}

/// `n` rows of `cols` values in [-1.5, 1.5), about one in eight missing.
pub fn random_rows(rng: &mut SplitMix, n: usize, cols: usize) -> Vec<f32> {
    (0..n * cols)
        .map(|_| {
            if rng.unit() < 0.125 {
                f32::NAN
            } else {
                (rng.unit() * 3.0 - 1.5) as f32
            }
        })
        .collect()
}
