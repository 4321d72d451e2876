//! [`Predictor`]: the compiled trees and the binning, and their batch and
//! single-row prediction.
//!
//! A batch goes in chunks within the call's thread budget; a chunk in
//! passes of [`PASS_ROWS`] rows: the pass is binned once, then every tree
//! in turn walks all of it, so a tree's nodes stay in the first-level
//! cache for the whole pass while the binned rows (a byte per value) stay
//! in the second. Scores add up in `f64` in the engine's order (trees
//! deepest first), so a row's result does not depend on the chunking or
//! on whether it came alone, and equals what `tessera_engine` computes on
//! the [dequantized](crate::QuantizedTrees::dequantize) ensemble. After a
//! tree's walk, each row's leaf gives its values in one more load: a
//! one-output leaf keeps its value beside it, and two 16-bit (or up to
//! four 8-bit) codes fit there too ([`Adds::Packed`]).
//!
//! Ensembles of small trees (boosting) are left to `tessera_engine` on the
//! dequantized ensemble, which scans them faster than any walk
//! ([`Inference`]).

use tessera_core::{
    HostContextRef, MatrixRef, PluginError,
    ir::{Combine, Link},
    plugin::for_row_blocks,
};
use tessera_engine::Engine;

use crate::{
    half::f16_to_f32_fast,
    layout::{Adds, Layout, Node, TreeInfo},
    options::LeafFormat,
    quantize::QuantizedTrees,
    walk::{self, Bin, Binner, LANES},
};

/// Rows binned and walked together.
const PASS_ROWS: usize = 4096;
/// Most rows per unit of parallel work (and between cancellation checks).
const CHUNK: usize = 16 * 1024;

/// The compiled trees: nodes of 4 bytes each where they fit, else 8; or,
/// for ensembles of small trees, the `f32` engine on the dequantized
/// ensemble (see [`Inference`]).
#[derive(Clone, Debug, PartialEq)]
enum Nodes {
    Narrow(Layout<u32>),
    Wide(Layout<u64>),
    Engine(Box<Engine>),
}

/// How a [`QuantizedModel`](crate::QuantizedModel) predicts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Inference {
    /// Walking the trees on binned rows.
    Bins,
    /// `tessera_engine` on the dequantized ensemble, whose answers are the
    /// same: for ensembles of small trees (boosting), the engine scans
    /// eight rows at a time per feature with vector instructions and leaf
    /// bit masks, which a walk does not match (measured on a 200-tree
    /// boosted model of 31 leaves: the walk on bins at half the scan's
    /// speed).
    Engine,
    /// [`Inference::Engine`] where the engine's cost estimate would scan
    /// every tree, else [`Inference::Bins`].
    Auto,
}

/// Quantized trees ready to predict.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Predictor {
    n_features: usize,
    n_outputs: usize,
    n_classes: usize,
    link: Link,
    bits: u32,
    /// Added to every row's outputs after the trees.
    base: Vec<f64>,
    /// Applied to the trees' sum: `1 / trees` for a mean or a vote.
    scale: f64,
    binner: Binner,
    nodes: Nodes,
}

impl Predictor {
    /// Compiles `q`.
    ///
    /// # Errors
    /// More features or larger trees than the layout takes.
    pub(crate) fn new(q: &QuantizedTrees, path: Inference) -> Result<Self, PluginError> {
        let nodes = match path {
            Inference::Engine => Nodes::Engine(Box::new(Engine::new(&q.dequantize())?)),
            Inference::Auto if engine_scans(q) => {
                Nodes::Engine(Box::new(Engine::new(&q.dequantize())?))
            }
            _ if Layout::<u32>::fits(q) => Nodes::Narrow(Layout::compile(q)?),
            _ => Nodes::Wide(Layout::compile(q)?),
        };
        let k = q.n_outputs as usize;
        let base = if q.base_score.is_empty() {
            vec![0.0; k]
        } else {
            q.base_score.iter().map(|&b| f64::from(b)).collect()
        };
        let scale = match q.combine {
            Combine::Sum => 1.0,
            Combine::Mean | Combine::Vote => 1.0 / q.trees.len() as f64,
        };
        Ok(Self {
            n_features: q.n_features as usize,
            n_outputs: k,
            n_classes: q.n_classes as usize,
            link: q.link,
            bits: q.bits,
            base,
            scale,
            binner: Binner::new(q),
            nodes,
        })
    }

    /// Input features per row.
    pub(crate) fn n_features(&self) -> usize {
        self.n_features
    }

    /// Classes (0 for regression).
    pub(crate) fn n_classes(&self) -> usize {
        self.n_classes
    }

    /// Bytes the compiled trees take, and the deepest tree's depth.
    pub(crate) fn size_and_depth(&self) -> (usize, u32) {
        match &self.nodes {
            Nodes::Narrow(l) => (l.size_bytes(), l.max_depth()),
            Nodes::Wide(l) => (l.size_bytes(), l.max_depth()),
            Nodes::Engine(e) => (e.size_bytes(), e.max_depth()),
        }
    }

    /// How it predicts: `bins_4` / `bins_8` (walks on binned rows, nodes
    /// of 4 or 8 bytes) or `engine`.
    pub(crate) fn inference(&self) -> &'static str {
        match self.nodes {
            Nodes::Narrow(_) => "bins_4",
            Nodes::Wide(_) => "bins_8",
            Nodes::Engine(_) => "engine",
        }
    }

    /// Raw outputs of the rows of `x` (`n_outputs` per row, row-major),
    /// chunks in parallel within `ctx`'s thread budget.
    ///
    /// # Errors
    /// A width that is not `n_features`, cancellation, or no threads.
    pub(crate) fn raw(
        &self,
        ctx: &HostContextRef<'_>,
        x: MatrixRef<'_>,
    ) -> Result<Vec<f64>, PluginError> {
        if let Nodes::Engine(e) = &self.nodes {
            return e.raw(ctx, x);
        }
        self.check_width(x.cols())?;
        let (p, k) = (self.n_features, self.n_outputs);
        let mut out = vec![0.0f64; x.rows() * k];
        if x.rows() < LANES {
            for (row, o) in x.as_slice().chunks_exact(p).zip(out.chunks_exact_mut(k)) {
                self.raw_row(row, o);
            }
            return Ok(out);
        }
        let threads = (ctx.threads() as usize).max(1);
        let chunk = x.rows().div_ceil(threads).clamp(64, CHUNK);
        for_row_blocks(ctx, x.as_slice(), p, &mut out, k, chunk, |xc, oc| {
            self.raw_into(xc, oc)
        })?;
        Ok(out)
    }

    /// Raw outputs of the rows of `x` into `out`, on this thread.
    ///
    /// # Panics
    /// When the lengths do not fit.
    pub(crate) fn raw_into(&self, x: &[f32], out: &mut [f64]) {
        assert_eq!(
            x.len() / self.n_features * self.n_outputs,
            out.len(),
            "one output row per input row"
        );
        match (&self.nodes, self.bits) {
            (Nodes::Narrow(l), _) => self.batch::<u32, u8, u16>(l, x, out),
            (Nodes::Wide(l), 8) => self.batch::<u64, u8, u16>(l, x, out),
            (Nodes::Wide(l), _) => self.batch::<u64, u16, u32>(l, x, out),
            (Nodes::Engine(e), _) => e.raw_into(x, out),
        }
    }

    /// Raw outputs of one row into `out`: eight trees at a time descend
    /// for the row. The result is the same, to the last bit, as the row's
    /// in a batch.
    ///
    /// # Panics
    /// When `row` does not hold `n_features` values or `out` not
    /// `n_outputs`.
    pub(crate) fn raw_row(&self, row: &[f32], out: &mut [f64]) {
        assert_eq!(row.len(), self.n_features, "one value per feature");
        assert_eq!(out.len(), self.n_outputs, "one value per output");
        match (&self.nodes, self.bits) {
            (Nodes::Narrow(l), _) => self.row::<u32, u8, u16>(l, row, out),
            (Nodes::Wide(l), 8) => self.row::<u64, u8, u16>(l, row, out),
            (Nodes::Wide(l), _) => self.row::<u64, u16, u32>(l, row, out),
            (Nodes::Engine(e), _) => e.raw_row(row, out),
        }
    }

    /// A batch with nodes `N`, bins `X`, and bins `W` (one size wider) for
    /// groups holding a missing value.
    fn batch<N: Node, X: Bin, W: Bin>(&self, layout: &Layout<N>, x: &[f32], out: &mut [f64]) {
        let (p, k) = (self.n_features, self.n_outputs);
        let rows = x.len() / p;
        let pass = PASS_ROWS.min(rows.next_multiple_of(LANES));
        let group = p * LANES;
        let mut xs = vec![X::default(); pass / LANES * group];
        let mut xw: Vec<W> = Vec::new();
        let mut nan = vec![false; pass / LANES];
        let mut leaves = vec![[0u32; LANES]; pass / LANES];
        let missing = self.binner.missing;
        for (xp, op) in x.chunks(pass * p).zip(out.chunks_mut(pass * k)) {
            let rows = xp.len() / p;
            let groups = rows.div_ceil(LANES);
            let any_nan = self.bin_pass(xp, &mut xs, &mut xw, &mut nan[..groups]);
            op.fill(0.0);
            for t in &layout.trees {
                let leaves = &mut leaves[..groups];
                if !any_nan {
                    walk::groups::<N, X, false>(layout, t, &xs, p, missing, leaves);
                } else {
                    for (g, l) in leaves.iter_mut().enumerate() {
                        let at = g * group..(g + 1) * group;
                        let l = std::slice::from_mut(l);
                        if nan[g] {
                            walk::groups::<N, W, true>(layout, t, &xw[at], p, missing, l);
                        } else {
                            walk::groups::<N, X, false>(layout, t, &xs[at], p, missing, l);
                        }
                    }
                }
                self.add_pass(layout, t, &leaves.as_flattened()[..rows], op);
            }
            for o in op.chunks_exact_mut(k) {
                self.finish(o);
            }
        }
    }

    /// Bins the rows of `xp` into groups of [`LANES`] in `xs` (lanes past
    /// the end get bin 0), and into `xw` too for groups with a missing
    /// value, which `nan` marks; whether there was one.
    fn bin_pass<X: Bin, W: Bin>(
        &self,
        xp: &[f32],
        xs: &mut [X],
        xw: &mut Vec<W>,
        nan: &mut [bool],
    ) -> bool {
        let p = self.n_features;
        let group = p * LANES;
        let missing = self.binner.missing;
        let mut any = false;
        let len = xs.len();
        for (g, (rows, xg)) in xp.chunks(group).zip(xs.chunks_exact_mut(group)).enumerate() {
            let n = rows.len() / p;
            let lanes = |f: usize| -> [f32; LANES] {
                std::array::from_fn(|l| if l < n { rows[l * p + f] } else { 0.0 })
            };
            let mut has = false;
            for (f, col) in xg.chunks_exact_mut(LANES).enumerate() {
                for (v, b) in col.iter_mut().zip(self.binner.bins(f, lanes(f))) {
                    has |= b == missing;
                    *v = X::from_u32(b);
                }
            }
            nan[g] = has;
            if has {
                // Rare: bin the group again, one size wider.
                if xw.len() < len {
                    xw.resize(len, W::default());
                }
                let wg = &mut xw[g * group..(g + 1) * group];
                for (f, col) in wg.chunks_exact_mut(LANES).enumerate() {
                    for (v, b) in col.iter_mut().zip(self.binner.bins(f, lanes(f))) {
                        *v = W::from_u32(b);
                    }
                }
            }
            any |= has;
        }
        any
    }

    /// Adds the values of the leaves the rows of a pass reached in tree
    /// `t` (`leaves`, one per row) to their outputs.
    fn add_pass<N: Node>(&self, layout: &Layout<N>, t: &TreeInfo, leaves: &[u32], op: &mut [f64]) {
        let k = self.n_outputs;
        let payload = &layout.payload[t.start..t.start + t.len];
        let rows = op.chunks_exact_mut(k).zip(leaves);
        match t.adds {
            Adds::One(o) => {
                for (o_row, &leaf) in rows {
                    o_row[o as usize] += f64::from(f32::from_bits(payload[leaf as usize]));
                }
            }
            Adds::All => {
                for (o_row, &leaf) in rows {
                    let at = payload[leaf as usize] as usize;
                    for (a, &v) in o_row.iter_mut().zip(&layout.values[at..at + k]) {
                        *a += f64::from(v);
                    }
                }
            }
            Adds::Vote => {
                for (o_row, &leaf) in rows {
                    o_row[payload[leaf as usize] as usize] += 1.0;
                }
            }
            Adds::Packed => match k {
                2 => add_packed::<2>(layout.leaves, t, payload, leaves, op),
                3 => add_packed::<3>(layout.leaves, t, payload, leaves, op),
                _ => add_packed::<4>(layout.leaves, t, payload, leaves, op),
            },
        }
    }

    fn row<N: Node, X: Bin, W: Bin>(&self, layout: &Layout<N>, row: &[f32], out: &mut [f64]) {
        let bins: Vec<u32> = (row.iter().enumerate())
            .map(|(f, &x)| self.binner.bin(f, x))
            .collect();
        if bins.contains(&self.binner.missing) {
            let bins: Vec<W> = bins.into_iter().map(W::from_u32).collect();
            self.row_walk::<N, W, true>(layout, &bins, out);
        } else {
            let bins: Vec<X> = bins.into_iter().map(X::from_u32).collect();
            self.row_walk::<N, X, false>(layout, &bins, out);
        }
    }

    fn row_walk<N: Node, X: Bin, const NAN: bool>(
        &self,
        layout: &Layout<N>,
        bins: &[X],
        out: &mut [f64],
    ) {
        out.fill(0.0);
        let missing = self.binner.missing;
        let groups = layout.trees.chunks_exact(LANES);
        let rest = groups.remainder();
        for group in groups {
            let trees: [&TreeInfo; LANES] = std::array::from_fn(|l| &group[l]);
            let min_depth = group.iter().map(|t| t.min_depth).min().unwrap_or(0);
            let depths = (min_depth, group[0].depth);
            let leaves = walk::trees::<N, X, LANES, NAN>(layout, trees, depths, bins, missing);
            for (t, leaf) in group.iter().zip(leaves) {
                self.add_row(layout, t, leaf, out);
            }
        }
        for t in rest {
            let depths = (t.min_depth, t.depth);
            let [leaf] = walk::trees::<N, X, 1, NAN>(layout, [t], depths, bins, missing);
            self.add_row(layout, t, leaf, out);
        }
        self.finish(out);
    }

    /// Adds the values of leaf `leaf` of tree `t` to one row's outputs.
    fn add_row<N: Node>(&self, layout: &Layout<N>, t: &TreeInfo, leaf: u32, out: &mut [f64]) {
        let payload = layout.payload[t.start + leaf as usize];
        match t.adds {
            Adds::One(o) => out[o as usize] += f64::from(f32::from_bits(payload)),
            Adds::All => {
                let at = payload as usize;
                for (a, &v) in out.iter_mut().zip(&layout.values[at..at + self.n_outputs]) {
                    *a += f64::from(v);
                }
            }
            Adds::Vote => out[payload as usize] += 1.0,
            Adds::Packed => {
                for (c, a) in out.iter_mut().enumerate() {
                    *a += f64::from(unpack(layout.leaves, t, payload, c));
                }
            }
        }
    }

    /// Scales the trees' sum and adds the base score.
    #[inline]
    fn finish(&self, out: &mut [f64]) {
        for (o, b) in out.iter_mut().zip(&self.base) {
            *o = b + *o * self.scale;
        }
    }

    /// Class probabilities of rows of raw outputs (`n_classes` per row).
    pub(crate) fn proba(&self, raw: &[f64]) -> Vec<f32> {
        let (k, c) = (self.n_outputs, self.n_classes);
        let mut out = vec![0.0f32; raw.len() / k * c];
        for (r, o) in raw.chunks_exact(k).zip(out.chunks_exact_mut(c)) {
            tessera_engine::link_proba(self.link, r, o);
        }
        out
    }

    /// Predictions of rows of raw outputs: a class index per row, or every
    /// output's value for regression.
    pub(crate) fn labels(&self, raw: &[f64]) -> Vec<f32> {
        if self.n_classes == 0 {
            return raw.iter().map(|&v| v as f32).collect();
        }
        raw.chunks_exact(self.n_outputs)
            .map(|r| match self.link {
                Link::Sigmoid => f32::from(u8::from(r[0] > 0.0)),
                _ => argmax_f64(r) as f32,
            })
            .collect()
    }

    /// Refuses input of the wrong width.
    ///
    /// # Errors
    /// `cols` is not `n_features`.
    pub(crate) fn check_width(&self, cols: usize) -> Result<(), PluginError> {
        if cols != self.n_features {
            return Err(PluginError::input(format!(
                "the model takes {} features, the input has {cols} columns",
                self.n_features
            )));
        }
        Ok(())
    }
}

/// Whether `tessera_engine` would scan all of `q`'s trees rather than
/// walk them: its own estimate (`scan_pays` in the engine's `engine.rs`),
/// made for the whole ensemble. Every tree has at most 64 leaves, and the
/// scan's cost (about 9 instructions per test per eight rows with 32-bit
/// leaf masks, 13 with 64-bit ones, plus 4 per tree) is below the walk's
/// (about 8 per level of each tree).
fn engine_scans(q: &QuantizedTrees) -> bool {
    let leaves = |t: &crate::quantize::QTree| t.nodes.len().div_ceil(2);
    if q.trees.is_empty() || q.trees.iter().any(|t| leaves(t) > 64) {
        return false;
    }
    let per_test = if q.trees.iter().all(|t| leaves(t) <= 32) {
        9
    } else {
        13
    };
    let tests: usize = q.trees.iter().map(|t| t.nodes.len() / 2).sum();
    let walk: usize = q.trees.iter().map(|t| 8 * t.depth() as usize).sum();
    tests * per_test / LANES + 4 * q.trees.len() < walk
}

/// Output `c`'s value packed in a leaf's `payload` (see [`Adds::Packed`]):
/// exactly the value [`QuantizedTrees::value`] gives.
#[inline(always)]
fn unpack(format: LeafFormat, t: &TreeInfo, payload: u32, c: usize) -> f32 {
    match format {
        LeafFormat::F16 => f16_to_f32_fast((payload >> (16 * c)) as u16),
        LeafFormat::I16 => f32::from((payload >> (16 * c)) as u16 as i16) * t.scales[c],
        LeafFormat::I8 => f32::from((payload >> (8 * c)) as u8 as i8) * t.scales[c],
        LeafFormat::F32 => f32::from_bits(payload),
    }
}

/// [`Predictor::add_pass`] for [`Adds::Packed`] leaves of `K` outputs.
fn add_packed<const K: usize>(
    format: LeafFormat,
    t: &TreeInfo,
    payload: &[u32],
    leaves: &[u32],
    op: &mut [f64],
) {
    match format {
        LeafFormat::F16 => add_codes::<K, 1>(t, payload, leaves, op),
        LeafFormat::I16 => add_codes::<K, 2>(t, payload, leaves, op),
        LeafFormat::I8 => add_codes::<K, 3>(t, payload, leaves, op),
        LeafFormat::F32 => add_codes::<K, 0>(t, payload, leaves, op),
    }
}

/// [`add_packed`] for the format of code `F` ([`LeafFormat`]'s order),
/// one loop per format.
fn add_codes<const K: usize, const F: usize>(
    t: &TreeInfo,
    payload: &[u32],
    leaves: &[u32],
    op: &mut [f64],
) {
    let format = LeafFormat::ALL[F];
    for (o_row, &leaf) in op.chunks_exact_mut(K).zip(leaves) {
        let p = payload[leaf as usize];
        for (c, a) in o_row.iter_mut().enumerate() {
            *a += f64::from(unpack(format, t, p, c));
        }
    }
}

/// Index of the largest value, the first on ties.
fn argmax_f64(v: &[f64]) -> usize {
    let mut best = 0;
    for (i, &x) in v.iter().enumerate() {
        if x > v[best] {
            best = i;
        }
    }
    best
}
