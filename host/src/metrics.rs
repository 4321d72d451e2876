//! Scores for predictions, with scikit-learn's definitions.

use serde::Serialize;

/// Classification scores.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ClassificationMetrics {
    /// Share of rows whose predicted class is right.
    pub accuracy: f64,
    /// Mean negative log-likelihood of the true class (probabilities clipped
    /// to `[1e-15, 1 - 1e-15]`).
    pub log_loss: f64,
    /// Area under the ROC curve of the positive (second) class; binary only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub roc_auc: Option<f64>,
    /// Number of rows scored.
    pub n_rows: usize,
}

/// Regression scores.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RegressionMetrics {
    /// Root mean squared error.
    pub rmse: f64,
    /// Mean absolute error.
    pub mae: f64,
    /// Coefficient of determination.
    pub r2: f64,
    /// Number of rows scored.
    pub n_rows: usize,
}

/// Scores of either kind.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Metrics {
    /// For classifiers.
    Classification(ClassificationMetrics),
    /// For regressors.
    Regression(RegressionMetrics),
}

/// Scores class predictions. `proba` is row-major `rows x n_classes`.
///
/// # Panics
/// When the lengths disagree (a bug in the caller).
pub fn classification(
    y: &[f32],
    pred: &[f32],
    proba: &[f32],
    n_classes: usize,
) -> ClassificationMetrics {
    assert_eq!(y.len(), pred.len());
    assert_eq!(proba.len(), y.len() * n_classes);
    let n = y.len().max(1) as f64;
    let correct = y.iter().zip(pred).filter(|(a, b)| a == b).count();
    let eps = 1e-15f64;
    let log_loss = y
        .iter()
        .enumerate()
        .map(|(i, &c)| {
            let row = &proba[i * n_classes..(i + 1) * n_classes];
            let sum: f64 = row.iter().map(|&p| f64::from(p)).sum();
            let p = f64::from(row[c as usize]) / if sum > 0.0 { sum } else { 1.0 };
            -p.clamp(eps, 1.0 - eps).ln()
        })
        .sum::<f64>()
        / n;
    let roc_auc = (n_classes == 2).then(|| {
        let scores: Vec<f32> = (0..y.len()).map(|i| proba[i * 2 + 1]).collect();
        let positive: Vec<bool> = y.iter().map(|&c| c == 1.0).collect();
        roc_auc(&scores, &positive)
    });
    ClassificationMetrics {
        accuracy: correct as f64 / n,
        log_loss,
        roc_auc: roc_auc.flatten(),
        n_rows: y.len(),
    }
}

/// Area under the ROC curve, ties counted as half (the Mann-Whitney U
/// statistic). `None` when only one class is present.
pub fn roc_auc(scores: &[f32], positive: &[bool]) -> Option<f64> {
    let n_pos = positive.iter().filter(|&&p| p).count();
    let n_neg = positive.len() - n_pos;
    if n_pos == 0 || n_neg == 0 {
        return None;
    }
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    // Average ranks over ties, then sum the ranks of the positives.
    let mut rank_sum_pos = 0.0f64;
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && scores[order[j + 1]] == scores[order[i]] {
            j += 1;
        }
        let avg_rank = (i + j) as f64 / 2.0 + 1.0;
        for &k in &order[i..=j] {
            if positive[k] {
                rank_sum_pos += avg_rank;
            }
        }
        i = j + 1;
    }
    let u = rank_sum_pos - (n_pos * (n_pos + 1)) as f64 / 2.0;
    Some(u / (n_pos as f64 * n_neg as f64))
}

/// Scores predictions of `k` regression targets (row-major `rows x k`):
/// each figure is the mean of the targets' own (scikit-learn's
/// `uniform_average`).
///
/// # Panics
/// When the lengths disagree (a bug in the caller).
pub fn regression_outputs(y: &[f32], pred: &[f32], k: usize) -> RegressionMetrics {
    if k <= 1 {
        return regression(y, pred);
    }
    assert_eq!(y.len(), pred.len());
    let column =
        |v: &[f32], j: usize| -> Vec<f32> { v.iter().skip(j).step_by(k).copied().collect() };
    let each: Vec<RegressionMetrics> = (0..k)
        .map(|j| regression(&column(y, j), &column(pred, j)))
        .collect();
    let mean = |f: fn(&RegressionMetrics) -> f64| each.iter().map(f).sum::<f64>() / k as f64;
    RegressionMetrics {
        rmse: mean(|m| m.rmse),
        mae: mean(|m| m.mae),
        r2: mean(|m| m.r2),
        n_rows: y.len() / k,
    }
}

/// Scores value predictions.
///
/// # Panics
/// When the lengths disagree (a bug in the caller).
pub fn regression(y: &[f32], pred: &[f32]) -> RegressionMetrics {
    assert_eq!(y.len(), pred.len());
    let n = y.len().max(1) as f64;
    let mean = y.iter().map(|&v| f64::from(v)).sum::<f64>() / n;
    let (mut se, mut ae, mut tot) = (0.0f64, 0.0f64, 0.0f64);
    for (&t, &p) in y.iter().zip(pred) {
        let d = f64::from(t) - f64::from(p);
        se += d * d;
        ae += d.abs();
        tot += (f64::from(t) - mean).powi(2);
    }
    // scikit-learn's convention for a constant target: 1 when predicted
    // exactly, 0 otherwise.
    let r2 = if tot == 0.0 {
        if se == 0.0 { 1.0 } else { 0.0 }
    } else {
        1.0 - se / tot
    };
    RegressionMetrics {
        rmse: (se / n).sqrt(),
        mae: ae / n,
        r2,
        n_rows: y.len(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn several_targets_average_their_scores() {
        // Target 0 predicted exactly, target 1 by its mean.
        let y = [1.0, 10.0, 2.0, 20.0, 3.0, 30.0];
        let pred = [1.0, 20.0, 2.0, 20.0, 3.0, 20.0];
        let m = regression_outputs(&y, &pred, 2);
        assert_eq!(m.n_rows, 3);
        assert!((m.r2 - 0.5).abs() < 1e-12, "{m:?}");
        let rmse1 = (200.0f64 / 3.0).sqrt();
        assert!((m.rmse - rmse1 / 2.0).abs() < 1e-9, "{m:?}");
        assert_eq!(regression_outputs(&y, &pred, 1), regression(&y, &pred));
    }

    #[test]
    fn accuracy_and_log_loss() {
        let y = [0.0, 1.0, 1.0, 0.0];
        let pred = [0.0, 1.0, 0.0, 0.0];
        let proba = [0.9, 0.1, 0.2, 0.8, 0.6, 0.4, 0.7, 0.3];
        let m = classification(&y, &pred, &proba, 2);
        assert_eq!(m.accuracy, 0.75);
        let expected = -(0.9f64.ln() + 0.8f64.ln() + 0.4f64.ln() + 0.7f64.ln()) / 4.0;
        assert!((m.log_loss - expected).abs() < 1e-6, "{}", m.log_loss);
        // Positives score 0.8 and 0.4, negatives 0.1 and 0.3: every pair is
        // ordered right.
        assert_eq!(m.roc_auc, Some(1.0));
        let m = classification(&y, &pred, &[0.9, 0.1, 0.2, 0.8, 0.9, 0.1, 0.7, 0.3], 2);
        // Now the second positive (0.1) ranks below one negative (0.3) and
        // ties the other (0.1): (1 + 1 + 0 + 0.5) / 4.
        assert_eq!(m.roc_auc, Some(0.625));
    }

    #[test]
    fn auc_counts_ties_as_half() {
        assert_eq!(roc_auc(&[0.5, 0.5], &[true, false]), Some(0.5));
        assert_eq!(roc_auc(&[0.1, 0.9], &[false, true]), Some(1.0));
        assert_eq!(roc_auc(&[0.1, 0.9], &[true, true]), None);
    }

    #[test]
    fn regression_scores() {
        let m = regression(&[1.0, 2.0, 3.0], &[1.0, 2.0, 4.0]);
        assert!((m.rmse - (1.0f64 / 3.0).sqrt()).abs() < 1e-9);
        assert!((m.mae - 1.0 / 3.0).abs() < 1e-9);
        assert!((m.r2 - 0.5).abs() < 1e-9);
        assert_eq!(regression(&[2.0, 2.0], &[2.0, 2.0]).r2, 1.0);
    }
}
