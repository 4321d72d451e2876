//! [`Engine`]: a tree ensemble compiled, and its batch and single-row
//! prediction (see the crate's documentation).

use tessera_core::{
    HostContextRef, MatrixRef, PluginError,
    ir::{self, Combine, Link, TreeEnsemble},
    plugin::for_row_blocks,
};

use crate::{
    layout::{BLOCK, Layout, Split, TreeInfo, argmax},
    scan::{self, AnyScan, Bits, Scan},
    shape::{EnsembleShape, link_proba},
    walk::{self, LANES},
};

/// Most rows per unit of parallel work (and between cancellation checks).
const CHUNK: usize = 16 * 1024;

/// A compiled tree ensemble.
#[derive(Clone, Debug, PartialEq)]
pub struct Engine {
    n_features: usize,
    n_outputs: usize,
    n_classes: usize,
    link: Link,
    /// Added to every row's outputs after the trees (`n_outputs` values).
    base: Vec<f64>,
    /// Applied to the trees' sum: `1 / trees` for a mean or a vote.
    scale: f64,
    layout: Layout,
    /// The trees (of `layout.by_depth`) cut into runs that fit in cache.
    pub(crate) tiles: Vec<Tile>,
}

impl Engine {
    /// Compiles `ens`, checking it whole.
    ///
    /// # Errors
    /// An inconsistent ensemble (outputs, classes, link and base score that
    /// do not fit together) or a malformed tree (an index out of range, a cycle, a tree too deep).
    pub fn new(ens: &TreeEnsemble) -> Result<Self, PluginError> {
        let outputs: Vec<u32> = ens.trees.iter().map(|t| t.output).collect();
        EnsembleShape::of(ens)
            .check(&outputs)
            .map_err(PluginError::corrupt)?;
        let layout = Layout::compile(ens)?;
        let k = ens.n_outputs as usize;
        let base = if ens.base_score.is_empty() {
            vec![0.0; k]
        } else {
            ens.base_score.iter().map(|&b| f64::from(b)).collect()
        };
        let scale = match ens.combine {
            Combine::Sum => 1.0,
            Combine::Mean | Combine::Vote => 1.0 / ens.trees.len() as f64,
        };
        let tiles = Tile::cut(&layout);
        Ok(Self {
            tiles,
            n_features: ens.n_features as usize,
            n_outputs: k,
            n_classes: ens.n_classes as usize,
            link: ens.link,
            base,
            scale,
            layout,
        })
    }

    /// Replaces the base score (`n_outputs` values) with a more precise
    /// one than the exchange form's `f32`s.
    ///
    /// # Panics
    /// When `base` does not hold `n_outputs` values.
    pub fn with_base(mut self, base: &[f64]) -> Self {
        assert_eq!(base.len(), self.n_outputs, "one base score per output");
        self.base = base.to_vec();
        self
    }

    /// Input features per row.
    pub fn n_features(&self) -> usize {
        self.n_features
    }

    /// Raw outputs per row.
    pub fn n_outputs(&self) -> usize {
        self.n_outputs
    }

    /// Classes (0 for regression).
    pub fn n_classes(&self) -> usize {
        self.n_classes
    }

    /// The link from raw outputs to probabilities.
    pub fn link(&self) -> Link {
        self.link
    }

    /// Number of trees.
    pub fn n_trees(&self) -> usize {
        self.layout.trees.len()
    }

    /// Nodes in all trees.
    pub fn n_nodes(&self) -> usize {
        self.layout.left.len()
    }

    /// The deepest tree's depth.
    pub fn max_depth(&self) -> u32 {
        self.layout.trees.iter().map(|t| t.depth).max().unwrap_or(0)
    }

    /// Bytes the compiled layout takes.
    pub fn size_bytes(&self) -> usize {
        self.layout.left.len() * (std::mem::size_of::<Split>() + 8)
            + self.layout.values.len() * 4
            + self.layout.trees.len() * std::mem::size_of::<TreeInfo>()
    }

    /// Raw outputs of the rows of `x` (`n_outputs` per row, row-major),
    /// blocks in parallel within `ctx`'s thread budget.
    ///
    /// # Errors
    /// A width that is not `n_features`, cancellation, or no threads.
    pub fn raw(&self, ctx: &HostContextRef<'_>, x: MatrixRef<'_>) -> Result<Vec<f64>, PluginError> {
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
        let chunk = x.rows().div_ceil(threads).clamp(BLOCK, CHUNK);
        for_row_blocks(ctx, x.as_slice(), p, &mut out, k, chunk, |xc, oc| {
            self.raw_into(xc, oc)
        })?;
        Ok(out)
    }

    /// Raw outputs of the rows of `x` (`n_features` values each) into `out`
    /// (`n_outputs` each), on this thread.
    ///
    /// # Panics
    /// When the lengths do not fit.
    pub fn raw_into(&self, x: &[f32], out: &mut [f64]) {
        let (p, k) = (self.n_features, self.n_outputs);
        assert_eq!(x.len() / p * k, out.len(), "one output row per input row");
        // One tile: block after block. Several: a pass of many blocks goes
        // through each tile in turn, so a tile is fetched once per pass.
        let pass = if self.tiles.len() == 1 {
            BLOCK
        } else {
            (PASS_VALUES / p).clamp(BLOCK, PASS_ROWS) / BLOCK * BLOCK
        };
        let blocks = pass.min(x.len() / p).div_ceil(BLOCK);
        let mut xt = vec![0.0f32; blocks * BLOCK * p];
        let mut nan = vec![false; blocks];
        let most = self.tiles.iter().map(|t| t.trees.len()).max().unwrap_or(0);
        let mut narrow = Vec::new();
        let mut wide = Vec::new();
        for t in &self.tiles {
            match t.scan {
                Some(AnyScan::Narrow(_)) => narrow.resize(most, [0u32; scan::ROWS]),
                Some(AnyScan::Wide(_)) => wide.resize(most, [0u64; scan::ROWS]),
                None => {}
            }
        }
        for (xp, op) in x.chunks(pass * p).zip(out.chunks_mut(pass * k)) {
            for ((xb, xt), nan) in xp
                .chunks(BLOCK * p)
                .zip(xt.chunks_mut(BLOCK * p))
                .zip(&mut nan)
            {
                *nan = transpose(xb, p, xt);
            }
            op.fill(0.0);
            for tile in &self.tiles {
                let blocks = xp.chunks(BLOCK * p).zip(op.chunks_mut(BLOCK * k));
                for (((xb, ob), xt), &nan) in blocks.zip(xt.chunks(BLOCK * p)).zip(&nan) {
                    let rows = xb.len() / p;
                    match &tile.scan {
                        _ if nan => self.block::<true>(tile, xt, rows, ob),
                        Some(AnyScan::Narrow(s)) => {
                            self.scan_block(tile, s, xt, rows, ob, &mut narrow)
                        }
                        Some(AnyScan::Wide(s)) => self.scan_block(tile, s, xt, rows, ob, &mut wide),
                        None => self.block::<false>(tile, xt, rows, ob),
                    }
                }
            }
            for o in op.chunks_exact_mut(k) {
                self.finish(o);
            }
        }
    }

    /// Adds the trees of `tile` for one block (`rows` rows, transposed in
    /// `xt`) to `ob` by the scan, eight rows at a time; `masks` holds an
    /// entry per tree of the tile at least.
    fn scan_block<B: Bits>(
        &self,
        tile: &Tile,
        scan: &Scan<B>,
        xt: &[f32],
        rows: usize,
        ob: &mut [f64],
        masks: &mut [[B; scan::ROWS]],
    ) {
        let k = self.n_outputs;
        let trees = &self.layout.by_depth[tile.trees.clone()];
        let masks = &mut masks[..trees.len()];
        for r in (0..rows).step_by(scan::ROWS) {
            scan.group(xt, r, masks);
            let n = (rows - r).min(scan::ROWS);
            let out = &mut ob[r * k..(r + n) * k];
            if scan.add_values(masks, n, out, k) {
                continue;
            }
            for (pos, (t, lanes)) in trees.iter().zip(masks.iter()).enumerate() {
                for (o, &mask) in out.chunks_exact_mut(k).zip(&lanes[..n]) {
                    self.add(t, scan.leaf(pos, mask), o);
                }
            }
        }
    }

    /// Adds the trees of `tile` for one block (`rows` rows, transposed in
    /// `xt`) to `ob`: every tree walks all the rows, [`LANES`] at a time.
    fn block<const NAN: bool>(&self, tile: &Tile, xt: &[f32], rows: usize, ob: &mut [f64]) {
        let k = self.n_outputs;
        let mut leaves = [0u32; BLOCK];
        for t in &self.layout.by_depth[tile.trees.clone()] {
            walk::block::<NAN>(
                &self.layout,
                t.root,
                (t.min_depth, t.depth),
                xt,
                rows,
                &mut leaves,
            );
            for (o, &leaf) in ob.chunks_exact_mut(k).zip(&leaves[..rows]) {
                self.add(t, leaf, o);
            }
        }
    }

    /// Raw outputs of one row into `out` (`n_outputs` values): eight trees
    /// of alike depth at a time descend for the row. No allocation. The
    /// result is the same, to the last bit, as the row's in a batch.
    ///
    /// # Panics
    /// When `row` does not hold `n_features` values or `out` not
    /// `n_outputs`.
    pub fn raw_row(&self, row: &[f32], out: &mut [f64]) {
        assert_eq!(row.len(), self.n_features, "one value per feature");
        assert_eq!(out.len(), self.n_outputs, "one value per output");
        if row.iter().any(|v| v.is_nan()) {
            self.row::<true>(row, out);
        } else {
            self.row::<false>(row, out);
        }
    }

    fn row<const NAN: bool>(&self, row: &[f32], out: &mut [f64]) {
        out.fill(0.0);
        let trees = self.layout.by_depth.chunks_exact(LANES);
        let rest = trees.remainder();
        for group in trees {
            let roots: [u32; LANES] = std::array::from_fn(|l| group[l].root);
            let min_depth = group.iter().map(|t| t.min_depth).min().unwrap_or(0);
            let depths = (min_depth, group[0].depth);
            let leaves = walk::trees::<LANES, NAN>(&self.layout, roots, depths, row);
            for (t, leaf) in group.iter().zip(leaves) {
                self.add(t, leaf, out);
            }
        }
        for t in rest {
            let [leaf] = walk::trees::<1, NAN>(&self.layout, [t.root], (t.min_depth, t.depth), row);
            self.add(t, leaf, out);
        }
        self.finish(out);
    }

    /// Adds the leaf's values to one row's outputs.
    #[inline(always)]
    fn add(&self, t: &TreeInfo, leaf: u32, out: &mut [f64]) {
        let payload = self.layout.aux[leaf as usize];
        if t.output != ir::Tree::ALL_OUTPUTS {
            out[t.output as usize] += f64::from(f32::from_bits(payload));
        } else {
            let o = payload as usize;
            for (a, &v) in out
                .iter_mut()
                .zip(&self.layout.values[o..o + self.n_outputs])
            {
                *a += f64::from(v);
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

    /// Whether the model predicts classes.
    pub fn is_classifier(&self) -> bool {
        self.n_classes > 0
    }

    /// Probability columns per row: the class count.
    pub fn n_proba(&self) -> usize {
        self.n_classes
    }

    /// Class probabilities of one row's raw outputs into `out`
    /// ([`Engine::n_proba`] values).
    pub fn proba_row(&self, raw: &[f64], out: &mut [f32]) {
        link_proba(self.link, raw, out);
    }

    /// Class probabilities of rows of raw outputs.
    pub fn proba(&self, raw: &[f64]) -> Vec<f32> {
        let (k, c) = (self.n_outputs, self.n_classes);
        let mut out = vec![0.0f32; raw.len() / k * c];
        for (r, o) in raw.chunks_exact(k).zip(out.chunks_exact_mut(c)) {
            self.proba_row(r, o);
        }
        out
    }

    /// The prediction of one row's raw outputs: the class index (as `f32`)
    /// or the value.
    pub fn label_row(&self, raw: &[f64]) -> f32 {
        match (self.n_classes, self.link) {
            (0, _) => raw[0] as f32,
            (_, Link::Sigmoid) => f32::from(u8::from(raw[0] > 0.0)),
            _ => argmax(raw) as f32,
        }
    }

    /// Predictions of rows of raw outputs: a class index per row, or
    /// every output's value for regression (one per target, row-major).
    pub fn labels(&self, raw: &[f64]) -> Vec<f32> {
        if self.n_classes == 0 {
            return raw.iter().map(|&v| v as f32).collect();
        }
        raw.chunks_exact(self.n_outputs)
            .map(|r| self.label_row(r))
            .collect()
    }

    /// Refuses input of the wrong width.
    ///
    /// # Errors
    /// `cols` is not `n_features`.
    pub fn check_width(&self, cols: usize) -> Result<(), PluginError> {
        if cols != self.n_features {
            return Err(PluginError::input(format!(
                "the model takes {} features, the input has {cols} columns",
                self.n_features
            )));
        }
        Ok(())
    }
}

/// Compiled bytes of the trees of a tile (a larger tree is a tile alone).
const TILE_BYTES: usize = 256 * 1024;
/// Most values a pass of several tiles transposes at once, and most rows.
const PASS_VALUES: usize = 1 << 20;
const PASS_ROWS: usize = 16 * 1024;

/// A run of consecutive trees of `by_depth` whose compiled nodes fit in the
/// second-level cache, with its scan when its trees are small enough.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Tile {
    pub(crate) trees: std::ops::Range<usize>,
    pub(crate) scan: Option<AnyScan>,
}

impl Tile {
    /// `layout`'s trees cut into tiles of at most [`TILE_BYTES`].
    fn cut(layout: &Layout) -> Vec<Tile> {
        let mut runs: Vec<std::ops::Range<usize>> = Vec::new();
        let mut size = 0;
        for (i, t) in layout.by_depth.iter().enumerate() {
            let bytes = t.len as usize * (std::mem::size_of::<Split>() + 8);
            match runs.last_mut() {
                Some(r) if size + bytes <= TILE_BYTES => {
                    r.end = i + 1;
                    size += bytes;
                }
                _ => {
                    runs.push(i..i + 1);
                    size = bytes;
                }
            }
        }
        if runs.is_empty() {
            runs.push(0..0);
        }
        runs.into_iter()
            .map(|trees| Tile {
                scan: AnyScan::new(layout, trees.clone())
                    .filter(|scan| scan_pays(layout, &trees, scan)),
                trees,
            })
            .collect()
    }
}

/// Whether scanning the trees `trees` of `layout.by_depth` should take
/// fewer instructions per row than walking them. A walk costs about eight
/// per level of each tree (its depth); a scan about nine (narrow masks) or
/// thirteen (wide) per eight rows for most of the trees' tests (the scan
/// of a feature stops at the first threshold above all eight rows), plus
/// four per tree to read the leaves. Measured: a 200-tree LightGBM model
/// of 31 leaves (depth about 9) scans 2.5 times as fast as it walks; a
/// 200-tree XGBoost model of depth 6 (64 leaves) walks 1.6 times as fast
/// as it scans.
fn scan_pays(layout: &Layout, trees: &std::ops::Range<usize>, scan: &AnyScan) -> bool {
    let trees = &layout.by_depth[trees.clone()];
    let walk: usize = trees.iter().map(|t| 8 * t.depth as usize).sum();
    let per_test = match scan {
        AnyScan::Narrow(_) => 9,
        AnyScan::Wide(_) => 13,
    };
    // A tree of `len` nodes has `len / 2` tests.
    let tests: usize = trees.iter().map(|t| t.len as usize / 2).sum();
    let scan = tests * per_test / scan::ROWS + 4 * trees.len();
    scan < walk
}

/// Transposes the rows of `xb` (`p` values each) into `xt` (feature `f` of
/// row `r` at `f * BLOCK + r`), zeroing the rows past the end; whether a
/// value is missing.
fn transpose(xb: &[f32], p: usize, xt: &mut [f32]) -> bool {
    let mut nan = false;
    let rows = xb.len() / p;
    for (r, row) in xb.chunks_exact(p).enumerate() {
        for (f, &v) in row.iter().enumerate() {
            xt[f * BLOCK + r] = v;
            nan |= v.is_nan();
        }
    }
    if rows < BLOCK {
        for f in 0..p {
            xt[f * BLOCK + rows..(f + 1) * BLOCK].fill(0.0);
        }
    }
    nan
}
