//! Splitting work over rows within the host's thread budget.
//!
//! tessera's host owns parallelism: every call says how many threads it may
//! use (`ctx.threads()`), and a plugin must never use a global thread pool.
//! Plugins that depend on rayon run it inside
//! `tessera_core::plugin::with_thread_budget`; this one has no dependencies
//! besides tessera-core and serde_json, so it uses scoped standard threads.
//!
//! The blocks depend only on the number of rows and results come back in
//! block order, so a model is the same whatever the thread budget.

use std::{ops::Range, panic::resume_unwind, thread};

/// The least work (in multiply-adds) worth a block of its own: starting a
/// thread costs some tens of microseconds.
const MIN_BLOCK_WORK: usize = 1 << 18;

/// Splits `0..n` into contiguous blocks, runs `f` on each on at most
/// `threads` threads, and returns the results in block order.
///
/// There are at most `max_blocks` blocks, and each holds enough rows to be
/// worth a thread given that a row costs about `row_cost` multiply-adds.
/// More threads than blocks do not help.
///
/// A panic in `f` is passed on to the caller.
pub fn map_blocks<T, F>(
    threads: usize,
    n: usize,
    row_cost: usize,
    max_blocks: usize,
    f: F,
) -> Vec<T>
where
    T: Send,
    F: Fn(Range<usize>) -> T + Sync,
{
    let size = n
        .div_ceil(max_blocks.max(1))
        .max(MIN_BLOCK_WORK / row_cost.max(1))
        .max(1);
    let blocks: Vec<Range<usize>> = (0..n)
        .step_by(size)
        .map(|start| start..(start + size).min(n))
        .collect();
    let workers = threads.clamp(1, blocks.len().max(1));
    if workers == 1 {
        return blocks.into_iter().map(f).collect();
    }

    let mut results: Vec<Option<T>> = blocks.iter().map(|_| None).collect();
    thread::scope(|scope| {
        let (blocks, f) = (&blocks, &f);
        let handles: Vec<_> = (0..workers)
            .map(|w| {
                scope.spawn(move || {
                    (w..blocks.len())
                        .step_by(workers)
                        .map(|b| (b, f(blocks[b].clone())))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        for handle in handles {
            match handle.join() {
                Ok(done) => {
                    for (b, value) in done {
                        results[b] = Some(value);
                    }
                }
                Err(panic) => resume_unwind(panic),
            }
        }
    });
    results
        .into_iter()
        .map(|r| r.expect("every block was run"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn covers_every_row_once_in_order() {
        for n in [0, 1, 255, 256, 257, 10_000, 100_003] {
            let cost = 100;
            for threads in [1, 2, 5] {
                let blocks = map_blocks(threads, n, cost, 32, |r| r);
                let rows: Vec<usize> = blocks.into_iter().flatten().collect();
                assert_eq!(rows, (0..n).collect::<Vec<_>>(), "n={n} threads={threads}");
            }
        }
    }

    #[test]
    fn panics_reach_the_caller() {
        let r = std::panic::catch_unwind(|| {
            map_blocks(4, 10_000, 1000, 32, |r| {
                assert!(r.start < 5000, "late block")
            })
        });
        assert!(r.is_err());
    }
}
