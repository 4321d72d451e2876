//! Running one job per member within the caller's thread budget.

use rayon::prelude::*;
use tessera_core::{
    HostContextRef, PluginError,
    plugin::{SubContext, with_thread_budget},
};

/// How many members run at once, and the thread budget each gets, for a
/// call that may use `threads` threads on `n` members.
pub fn shares(threads: u32, n: usize) -> (usize, u32) {
    let threads = threads.max(1);
    let parallel = (threads as usize).min(n).max(1);
    let each = u32::try_from(threads as usize / parallel)
        .unwrap_or(u32::MAX)
        .max(1);
    (parallel, each)
}

/// Runs `job(i, child_ctx)` for every member `i` in `0..n`, as many at once
/// as the budget of `ctx` allows, each with a [`SubContext`] holding its
/// share of that budget, and hands the results to `sink` in member order.
///
/// Members run in batches of `batch`, so at most that many results are held
/// at once. The budget is the caller's: with one thread everything runs
/// inline; otherwise inside a pool built for this call, never the global
/// one. Cancellation is polled before each member starts.
///
/// # Errors
/// The first error of `job` or `sink` (in member order within a batch), or
/// cancellation.
pub fn for_each_member<T: Send>(
    ctx: &HostContextRef<'_>,
    n: usize,
    batch: usize,
    job: impl Fn(usize, HostContextRef<'_>) -> Result<T, PluginError> + Sync,
    mut sink: impl FnMut(usize, T) -> Result<(), PluginError> + Send,
) -> Result<(), PluginError> {
    let threads = ctx.threads().max(1);
    let (parallel, each) = shares(threads, n);
    let run = |i: usize| -> Result<T, PluginError> {
        if ctx.is_cancelled() {
            return Err(PluginError::cancelled());
        }
        let sub = SubContext::new(ctx, each);
        job(i, sub.as_ref())
    };
    if parallel <= 1 {
        for i in 0..n {
            let out = run(i)?;
            sink(i, out)?;
        }
        return Ok(());
    }
    let batch = batch.max(1);
    with_thread_budget(threads as usize, move || {
        let mut start = 0;
        while start < n {
            let end = start.saturating_add(batch).min(n);
            let outs = (start..end)
                .into_par_iter()
                .map(&run)
                .collect::<Result<Vec<T>, PluginError>>()?;
            for (i, out) in (start..end).zip(outs) {
                sink(i, out)?;
            }
            start = end;
        }
        Ok(())
    })?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budget_shares() {
        assert_eq!(shares(4, 2), (2, 2));
        assert_eq!(shares(2, 10), (2, 1));
        assert_eq!(shares(5, 2), (2, 2));
        assert_eq!(shares(1, 10), (1, 1));
        assert_eq!(shares(8, 1), (1, 8));
        assert_eq!(shares(0, 0), (1, 1));
    }
}
