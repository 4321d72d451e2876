//! Choosing a feature's bin edges from the thresholds an ensemble uses,
//! and moving a threshold to its edge.

/// At most `most` edges for thresholds used as often as they appear in
/// `used`: all distinct ones when they are few enough, else weighted
/// quantiles (see [`quantiles`]).
pub(crate) fn choose_edges(mut used: Vec<f32>, most: usize) -> Vec<f32> {
    used.sort_by(f32::total_cmp);
    let mut values: Vec<f32> = Vec::new();
    let mut weights: Vec<u64> = Vec::new();
    for x in used {
        if values.last() == Some(&x) {
            *weights.last_mut().expect("a weight per value") += 1;
        } else {
            values.push(x);
            weights.push(1);
        }
    }
    if values.len() <= most {
        return values;
    }
    quantiles(&values, &weights, most)
}

/// `m` of the sorted distinct `values` (more than `m`), weighted by how
/// often each is used: a value carrying at least its share of the weight
/// left (`1 / slots left`) is taken, repeatedly; the remaining slots go to
/// the values at evenly spaced points of the cumulative weight of the rest
/// (each such value weighs less than the spacing, so no value is hit
/// twice).
fn quantiles(values: &[f32], weights: &[u64], m: usize) -> Vec<f32> {
    let mut taken = vec![false; values.len()];
    let (mut slots, mut total) = (m as u64, weights.iter().sum::<u64>());
    loop {
        let mut more = false;
        for (i, &w) in weights.iter().enumerate() {
            if !taken[i] && slots > 0 && w * slots >= total {
                taken[i] = true;
                slots -= 1;
                total -= w;
                more = true;
            }
        }
        if !more || slots == 0 {
            break;
        }
    }
    // Targets at (j + 1/2) * total / slots, j < slots, in units of
    // 1 / (2 * slots) to stay in integers.
    let mut j = 0u64;
    let mut acc = 0u64;
    for (i, &w) in weights.iter().enumerate() {
        if taken[i] || j >= slots {
            continue;
        }
        acc += w;
        // The value whose weight interval holds the target takes it.
        if 2 * slots * acc > (2 * j + 1) * total {
            taken[i] = true;
            j += 1;
        }
    }
    // Rounding can leave a slot (never a duplicate): fill it with the
    // first values not taken.
    let mut need = m - taken.iter().filter(|&&t| t).count();
    for t in taken.iter_mut() {
        if need == 0 {
            break;
        }
        if !*t {
            *t = true;
            need -= 1;
        }
    }
    values
        .iter()
        .zip(&taken)
        .filter(|(_, t)| **t)
        .map(|(&v, _)| v)
        .collect()
}

/// Index of the edge nearest `x` in the sorted, non-empty `edges` (the
/// lower one on a tie).
pub(crate) fn nearest(edges: &[f32], x: f32) -> usize {
    let i = edges.partition_point(|&e| e < x);
    if i == edges.len() {
        return i - 1;
    }
    if i == 0 || edges[i] == x {
        return i;
    }
    let (below, above) = (f64::from(edges[i - 1]), f64::from(edges[i]));
    if f64::from(x) - below <= above - f64::from(x) {
        i - 1
    } else {
        i
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn few_distinct_thresholds_are_the_edges() {
        let used = vec![3.0, 1.0, 3.0, -0.5, 1.0];
        assert_eq!(choose_edges(used, 255), vec![-0.5, 1.0, 3.0]);
    }

    #[test]
    fn quantiles_take_heavy_values_and_spread_the_rest() {
        let values: Vec<f32> = (0..100).map(|i| i as f32).collect();
        let mut weights = vec![1u64; 100];
        weights[42] = 1000;
        let e = quantiles(&values, &weights, 10);
        assert_eq!(e.len(), 10);
        assert!(e.contains(&42.0));
        assert!(e.windows(2).all(|w| w[0] < w[1]));
        // The other nine split the 99 light values evenly.
        let gaps: Vec<f32> = e.windows(2).map(|w| w[1] - w[0]).collect();
        assert!(gaps.iter().all(|&g| g <= 16.0), "{e:?}");
        // Exactly `m`, whatever the weights.
        for m in [1, 2, 50, 99] {
            let w: Vec<u64> = (0..100).map(|i| 1 + (i * i) % 7).collect();
            let e = quantiles(&values, &w, m);
            assert_eq!(e.len(), m, "m = {m}");
            assert!(e.windows(2).all(|w| w[0] < w[1]));
        }
    }

    #[test]
    fn nearest_edges() {
        let e = [-1.0, 0.0, 2.0];
        assert_eq!(nearest(&e, -5.0), 0);
        assert_eq!(nearest(&e, 0.0), 1);
        assert_eq!(nearest(&e, 0.9), 1);
        assert_eq!(nearest(&e, 1.1), 2);
        assert_eq!(nearest(&e, 1.0), 1, "ties go down");
        assert_eq!(nearest(&e, 7.0), 2);
        assert_eq!(nearest(&[f32::NEG_INFINITY, 1.0], f32::NEG_INFINITY), 0);
        assert_eq!(nearest(&[1.0, f32::INFINITY], f32::INFINITY), 1);
    }
}
