//! Numerical building blocks: a Cholesky solver for the ridge normal
//! equations and L-BFGS for logistic regression.

use std::collections::VecDeque;

/// The matrix handed to [`cholesky_solve`] is not positive definite.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotPositiveDefinite;

/// Solves `a x = b` for a symmetric positive definite `n x n` matrix `a`
/// (row-major; only the lower triangle is read), overwriting `a` with its
/// Cholesky factor and `b` with `x`.
///
/// # Errors
/// When `a` is not (numerically) positive definite.
pub fn cholesky_solve(a: &mut [f64], n: usize, b: &mut [f64]) -> Result<(), NotPositiveDefinite> {
    assert_eq!(a.len(), n * n, "matrix size");
    assert_eq!(b.len(), n, "right-hand side size");
    // Factor a = L L^T, L stored in the lower triangle of `a`.
    for j in 0..n {
        let mut d = a[j * n + j];
        for k in 0..j {
            d -= a[j * n + k] * a[j * n + k];
        }
        if !(d.is_finite() && d > 0.0) {
            return Err(NotPositiveDefinite);
        }
        let d = d.sqrt();
        a[j * n + j] = d;
        for i in j + 1..n {
            let mut v = a[i * n + j];
            for k in 0..j {
                v -= a[i * n + k] * a[j * n + k];
            }
            a[i * n + j] = v / d;
        }
    }
    // Forward substitution: L z = b.
    for i in 0..n {
        let mut v = b[i];
        for k in 0..i {
            v -= a[i * n + k] * b[k];
        }
        b[i] = v / a[i * n + i];
    }
    // Back substitution: L^T x = z.
    for i in (0..n).rev() {
        let mut v = b[i];
        for k in i + 1..n {
            v -= a[k * n + i] * b[k];
        }
        b[i] = v / a[i * n + i];
    }
    Ok(())
}

/// The outcome of [`lbfgs`].
#[derive(Debug, Clone)]
pub struct Minimum {
    /// The best point found.
    pub x: Vec<f64>,
    /// The objective there.
    pub value: f64,
    /// Iterations (line searches) done.
    pub iterations: usize,
    /// Whether the gradient tolerance was reached.
    pub converged: bool,
}

/// How many past steps L-BFGS remembers.
const MEMORY: usize = 10;
/// Sufficient-decrease constant of the backtracking line search.
const ARMIJO: f64 = 1e-4;
/// Most step halvings in one line search.
const MAX_HALVINGS: usize = 50;

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn max_abs(v: &[f64]) -> f64 {
    v.iter().fold(0.0, |m, x| m.max(x.abs()))
}

/// Minimises a smooth function with L-BFGS and a backtracking (Armijo) line
/// search, starting at `x`.
///
/// `f(x, grad)` returns the objective at `x` and writes its gradient into
/// `grad`. `before_iteration(i)` runs before iteration `i` (1-based); an
/// error from either stops the search and is returned. The search stops when
/// no gradient entry exceeds `tol` in magnitude (converged), after
/// `max_iter` iterations, or when the line search cannot decrease the
/// objective any further (not converged; the best point is returned).
///
/// # Errors
/// Whatever `f` or `before_iteration` return.
pub fn lbfgs<E>(
    mut x: Vec<f64>,
    max_iter: usize,
    tol: f64,
    mut f: impl FnMut(&[f64], &mut [f64]) -> Result<f64, E>,
    mut before_iteration: impl FnMut(usize) -> Result<(), E>,
) -> Result<Minimum, E> {
    let n = x.len();
    let mut grad = vec![0.0; n];
    let mut value = f(&x, &mut grad)?;
    // Remembered steps s = x_new - x, gradient changes y, and 1 / (s.y).
    let mut memory: VecDeque<(Vec<f64>, Vec<f64>, f64)> = VecDeque::with_capacity(MEMORY);
    let mut dir = vec![0.0; n];
    let mut x_new = vec![0.0; n];
    let mut grad_new = vec![0.0; n];
    let mut alphas = [0.0; MEMORY];

    let mut iterations = 0;
    let mut converged = max_abs(&grad) <= tol;
    while !converged && iterations < max_iter {
        iterations += 1;
        before_iteration(iterations)?;

        // Two-loop recursion: dir = -H grad.
        dir.copy_from_slice(&grad);
        for (i, (s, y, rho)) in memory.iter().enumerate().rev() {
            alphas[i] = rho * dot(s, &dir);
            dir.iter_mut().zip(y).for_each(|(d, y)| *d -= alphas[i] * y);
        }
        if let Some((s, y, _)) = memory.back() {
            let gamma = dot(s, y) / dot(y, y);
            dir.iter_mut().for_each(|d| *d *= gamma);
        }
        for (i, (s, y, rho)) in memory.iter().enumerate() {
            let beta = rho * dot(y, &dir);
            dir.iter_mut()
                .zip(s)
                .for_each(|(d, s)| *d += (alphas[i] - beta) * s);
        }
        dir.iter_mut().for_each(|d| *d = -*d);

        let mut slope = dot(&grad, &dir);
        if slope.is_nan() || slope >= 0.0 {
            // Not a descent direction (round-off): restart from steepest descent.
            memory.clear();
            dir.iter_mut().zip(&grad).for_each(|(d, g)| *d = -g);
            slope = -dot(&grad, &grad);
        }
        // Without curvature information, the first step moves by at most 1.
        let mut step = if memory.is_empty() {
            (1.0 / dot(&dir, &dir).sqrt()).min(1.0)
        } else {
            1.0
        };

        let mut accepted = None;
        for _ in 0..MAX_HALVINGS {
            for ((xn, x), d) in x_new.iter_mut().zip(&x).zip(&dir) {
                *xn = x + step * d;
            }
            let v = f(&x_new, &mut grad_new)?;
            if v.is_finite() && v <= value + ARMIJO * step * slope {
                accepted = Some(v);
                break;
            }
            step *= 0.5;
        }
        let Some(v) = accepted else {
            break;
        };

        let s: Vec<f64> = x_new.iter().zip(&x).map(|(a, b)| a - b).collect();
        let y: Vec<f64> = grad_new.iter().zip(&grad).map(|(a, b)| a - b).collect();
        let sy = dot(&s, &y);
        if sy > f64::EPSILON * dot(&y, &y) {
            if memory.len() == MEMORY {
                memory.pop_front();
            }
            memory.push_back((s, y, 1.0 / sy));
        }
        std::mem::swap(&mut x, &mut x_new);
        std::mem::swap(&mut grad, &mut grad_new);
        value = v;
        converged = max_abs(&grad) <= tol;
    }
    Ok(Minimum {
        x,
        value,
        iterations,
        converged,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cholesky_solves_spd_systems() {
        // a = [[4, 2, 0], [2, 5, 1], [0, 1, 3]], x = [1, -2, 3].
        let mut a = vec![4.0, 2.0, 0.0, 2.0, 5.0, 1.0, 0.0, 1.0, 3.0];
        let mut b = vec![0.0, -5.0, 7.0];
        cholesky_solve(&mut a, 3, &mut b).unwrap();
        for (got, want) in b.iter().zip([1.0, -2.0, 3.0]) {
            assert!((got - want).abs() < 1e-12, "{b:?}");
        }
        let mut singular = vec![1.0, 1.0, 1.0, 1.0];
        assert_eq!(
            cholesky_solve(&mut singular, 2, &mut [1.0, 1.0]),
            Err(NotPositiveDefinite)
        );
    }

    #[test]
    fn lbfgs_minimises_rosenbrock() {
        let rosenbrock = |x: &[f64], g: &mut [f64]| -> Result<f64, ()> {
            let (a, b) = (x[0], x[1]);
            g[0] = -2.0 * (1.0 - a) - 400.0 * a * (b - a * a);
            g[1] = 200.0 * (b - a * a);
            Ok((1.0 - a).powi(2) + 100.0 * (b - a * a).powi(2))
        };
        let m = lbfgs(vec![-1.2, 1.0], 500, 1e-8, rosenbrock, |_| Ok(())).unwrap();
        assert!(m.converged, "{m:?}");
        assert!(
            (m.x[0] - 1.0).abs() < 1e-6 && (m.x[1] - 1.0).abs() < 1e-6,
            "{m:?}"
        );
    }

    #[test]
    fn lbfgs_stops_when_asked() {
        let quadratic = |x: &[f64], g: &mut [f64]| -> Result<f64, &str> {
            g[0] = 2.0 * x[0];
            Ok(x[0] * x[0])
        };
        let r = lbfgs(vec![3.0], 10, 1e-12, quadratic, |i| {
            if i > 1 { Err("stop") } else { Ok(()) }
        });
        assert_eq!(r.err(), Some("stop"));
    }
}
