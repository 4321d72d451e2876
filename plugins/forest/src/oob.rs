//! The out-of-bag score: each training row predicted by the trees whose
//! bootstrap sample missed it, scored as accuracy (classification) or R²
//! (regression) over the rows that at least one tree missed.

use rayon::prelude::*;
use tessera_core::TrainData;

use crate::tree::Tree;

/// Rows per unit of parallel work.
const CHUNK: usize = 1024;

/// Whether bit `r` of `bits` is set.
pub fn bit(bits: &[u64], r: usize) -> bool {
    bits[r / 64] & (1 << (r % 64)) != 0
}

/// The out-of-bag score of `trees`, where `inbag[t]` has bit `r` set when
/// tree `t` trained on row `r`; `None` when no row was out of bag anywhere.
/// Row by row and tree by tree in index order, so the result does not
/// depend on `parallel`.
pub fn score(
    trees: &[Tree],
    inbag: &[Vec<u64>],
    data: &TrainData<'_>,
    parallel: bool,
) -> Option<f64> {
    let classify = data.task.is_classification();
    let k = if classify {
        data.task.n_classes as usize
    } else {
        0
    };
    let width = k.max(1);
    let x = data.x;
    let y = data.y.as_slice();
    // Per row: the out-of-bag prediction (class or value), or NaN.
    let predict_chunk = |(c, out): (usize, &mut [f64])| {
        let mut acc = vec![0.0f64; width];
        for (i, o) in out.iter_mut().enumerate() {
            let r = c * CHUNK + i;
            acc.fill(0.0);
            let mut n = 0usize;
            for (t, bits) in trees.iter().zip(inbag) {
                if !bit(bits, r) {
                    t.accumulate(x.row(r), k, &mut acc);
                    n += 1;
                }
            }
            *o = if n == 0 {
                f64::NAN
            } else if classify {
                let mut best = 0;
                for (j, &a) in acc.iter().enumerate() {
                    if a > acc[best] {
                        best = j;
                    }
                }
                best as f64
            } else {
                acc[0] / n as f64
            };
        }
    };
    let mut pred = vec![0.0f64; x.rows()];
    if parallel {
        pred.par_chunks_mut(CHUNK)
            .enumerate()
            .for_each(predict_chunk);
    } else {
        pred.chunks_mut(CHUNK).enumerate().for_each(predict_chunk);
    }
    let seen: Vec<(f64, f64)> = pred
        .iter()
        .zip(y)
        .filter(|(p, _)| !p.is_nan())
        .map(|(&p, &t)| (p, f64::from(t)))
        .collect();
    if seen.is_empty() {
        return None;
    }
    let n = seen.len() as f64;
    if classify {
        Some(seen.iter().filter(|(p, t)| p == t).count() as f64 / n)
    } else {
        let mean = seen.iter().map(|(_, t)| t).sum::<f64>() / n;
        let sse: f64 = seen.iter().map(|(p, t)| (p - t) * (p - t)).sum();
        let sst: f64 = seen.iter().map(|(_, t)| (t - mean) * (t - mean)).sum();
        Some(if sst > 0.0 {
            1.0 - sse / sst
        } else if sse == 0.0 {
            1.0
        } else {
            0.0
        })
    }
}
