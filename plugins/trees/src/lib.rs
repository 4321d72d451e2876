//! tessera-trees: the histogram machinery shared by tessera's tree learners
//! (the random forest today, gradient boosting later), in the style of
//! LightGBM and scikit-learn's `HistGradientBoosting`.
//!
//! * [`bin`]: each feature's values are cut once into at most
//!   [`MAX_BINS`] bins by quantiles (or one bin per distinct value when
//!   there are few), plus the dedicated [`MISSING_BIN`] for `NaN`; the
//!   binned data is stored column-major as `u8` ([`BinnedData`]). Split
//!   thresholds are real feature values ([`BinMapper::split_threshold`]:
//!   the midpoint between the training values either side of the cut), so
//!   trees split on histograms yet predict on raw floats.
//! * [`rows`]: a tree's sampled rows, their bins and statistics together,
//!   physically reordered so each node's rows are contiguous
//!   ([`RowStore`]): histograms are built in one sequential pass, and a
//!   split partitions the node's range.
//! * [`hist`]: per-node histograms of per-bin row counts and statistics.
//!   What a row contributes is the learner's business ([`Target`]): class
//!   weights for a classifier, weight and target for a regressor, gradient
//!   and hessian for boosting. [`Hist`] holds the few features a node
//!   evaluates and remembers which bins they touched, so small nodes cost
//!   what their rows cost; [`HistSet`] holds every feature and supports the
//!   subtraction trick (build the smaller child, derive the larger as
//!   parent − smaller).
//! * [`split`]: the best cut of one feature's histogram under an additive
//!   [`Score`] ([`score`]: Gini, entropy, squared error, gradient gain),
//!   learning where missing values go, with per-child count and weight
//!   limits ([`SplitFinder`]).
//! * [`rng`]: the small seeded generator the learners draw samples with;
//!   [`class_weight`]: scikit-learn's `class_weight` values; [`cache`]: the
//!   last binned matrix, reused by repeated fits on the same data;
//!   [`prefetch`]: a software prefetch hint.
//!
//! Nothing here starts threads: [`BinnedData::from_rows`] can spread its
//! work with rayon, and must then be called inside the pool the caller owns
//! (see `tessera_core::plugin::with_thread_budget`).

pub mod bin;
pub mod cache;
pub mod class_weight;
pub mod hist;
pub mod prefetch;
pub mod rng;
pub mod rows;
pub mod score;
pub mod split;

pub use bin::{BinMapper, BinnedData};
pub use hist::{Hist, HistSet, HistView, Target};
pub use rows::RowStore;
pub use score::{Entropy, Gini, GradientGain, Score, SquaredError};
pub use split::{BinSplit, Limits, SplitFinder};

/// The most bins a feature's present values may use.
pub const MAX_BINS: usize = 255;
/// The bin of missing values (`NaN`), whatever the feature's bin count.
pub const MISSING_BIN: u8 = 255;
/// Bins per feature in a histogram: [`MAX_BINS`] plus the missing bin.
pub const N_BINS: usize = 256;
