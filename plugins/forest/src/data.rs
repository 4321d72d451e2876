//! The training data as the trees read it, shared by all trees of a fit:
//! targets encoded as statistics slots, base row weights, and the features
//! either binned (histogram search) or as raw columns (exact search).

use std::sync::Arc;
use tessera_core::TrainData;

use tessera_trees::BinnedData;

/// The encoded training data.
pub struct Dataset {
    /// Number of rows.
    pub n_rows: usize,
    /// Number of feature columns.
    pub n_features: usize,
    /// Whether the target is a class.
    pub classify: bool,
    /// Per row: its class (classification) or 0 (regression).
    pub slot: Vec<u32>,
    /// Per row: 1 (classification) or its target (regression).
    pub value: Vec<f64>,
    /// Length of a statistics vector: the class count, or 1.
    pub n_slots: usize,
    /// Per row: sample weight times class weight (1 when none were given).
    pub sample_weight: Vec<f64>,
    /// Raw features column after column (exact search only, else empty).
    cols: Vec<f32>,
    /// Binned features (histogram search only).
    pub binned: Option<Arc<BinnedData>>,
}

impl Dataset {
    /// Encodes `data` (which has passed validation), keeping raw columns
    /// for exact search or binning into `max_bins` for histogram search.
    /// Binning runs on the current rayon pool when `parallel`.
    pub fn new(data: &TrainData<'_>, hist: Option<usize>, parallel: bool) -> Self {
        let (n_rows, n_features) = (data.x.rows(), data.x.cols());
        let x = data.x.as_slice();
        let (cols, binned) = match hist {
            Some(max_bins) => (
                Vec::new(),
                Some(tessera_trees::cache::binned(
                    x, n_rows, n_features, max_bins, parallel,
                )),
            ),
            None => {
                let mut cols = vec![0.0; n_rows * n_features];
                for (r, row) in x.chunks_exact(n_features).enumerate() {
                    for (f, &v) in row.iter().enumerate() {
                        cols[f * n_rows + r] = v;
                    }
                }
                (cols, None)
            }
        };
        let classify = data.task.is_classification();
        let y = data.y.as_slice();
        let (slot, value, n_slots) = if classify {
            (
                y.iter().map(|&c| c as u32).collect(),
                vec![1.0; n_rows],
                data.task.n_classes as usize,
            )
        } else {
            (
                vec![0; n_rows],
                y.iter().map(|&v| f64::from(v)).collect(),
                1,
            )
        };
        let sample_weight = match data.weights.into_option() {
            Some(w) => w.iter().map(|&w| f64::from(w)).collect(),
            None => vec![1.0; n_rows],
        };
        Self {
            n_rows,
            n_features,
            classify,
            slot,
            value,
            n_slots,
            sample_weight,
            cols,
            binned,
        }
    }

    /// The raw values of feature `f`, one per row (exact search only).
    pub fn column(&self, f: usize) -> &[f32] {
        &self.cols[f * self.n_rows..(f + 1) * self.n_rows]
    }
}
