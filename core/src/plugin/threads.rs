//! Threads: a pool per call within the host's budget, kept pools for
//! leaf work (batch prediction), and child contexts that share a parent's
//! budget.

use std::sync::{Arc, Mutex};

use abi_stable::{
    RRef,
    sabi_trait::TD_Opaque,
    std_types::{RResult, RSlice, RStr},
};

use crate::{
    context::{HostContext, HostContext_TO, HostContextRef},
    error::PluginError,
    traits::{LearnerBox, ModelBox},
};

/// Runs `f` inside a rayon pool of exactly `threads` threads built for this
/// call. Plugins use rayon only inside such a pool, never the global one: a
/// fresh pool is never blocked by the caller's threads, which is what makes
/// nesting learners across plugins deadlock-free.
///
/// # Errors
/// When the operating system refuses to start the threads.
pub fn with_thread_budget<R: Send>(
    threads: usize,
    f: impl FnOnce() -> R + Send,
) -> Result<R, PluginError> {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads.max(1))
        .thread_name(|i| format!("tessera-worker-{i}"))
        .build()
        .map_err(|e| {
            PluginError::internal(format!("cannot start {threads} worker threads: {e}"))
        })?;
    Ok(pool.install(f))
}

/// Most pools [`row_pool`] keeps (one per thread count asked for).
const ROW_POOLS: usize = 8;

/// A pool of `threads` threads for leaf work, kept for the process's life
/// and shared by every call of this plugin that asks for that many
/// threads: a batch prediction then starts no threads, and what its
/// workers keep in thread-locals (scratch buffers) survives from call to
/// call. Sharing is deadlock-free because leaf work never waits on
/// anything: see [`for_row_blocks`]. Past [`ROW_POOLS`] sizes a fresh pool
/// is built and dropped after the call.
fn row_pool(threads: usize) -> Result<Arc<rayon::ThreadPool>, PluginError> {
    static POOLS: Mutex<Vec<(usize, Arc<rayon::ThreadPool>)>> = Mutex::new(Vec::new());
    let build = || {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|i| format!("tessera-rows-{i}"))
            .build()
            .map(Arc::new)
            .map_err(|e| {
                PluginError::internal(format!("cannot start {threads} worker threads: {e}"))
            })
    };
    let mut pools = POOLS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some((_, p)) = pools.iter().find(|(n, _)| *n == threads) {
        return Ok(Arc::clone(p));
    }
    let pool = build()?;
    if pools.len() < ROW_POOLS {
        pools.push((threads, Arc::clone(&pool)));
    }
    Ok(pool)
}

/// Runs `f` on blocks of `chunk_rows` rows of the row-major `x` (`cols`
/// values per row) and the matching blocks of `out` (`width` values per
/// row), checking for cancellation before each block: in parallel within
/// the context's thread budget, or inline when the budget is one thread or
/// the rows fit in one block. The batch-prediction loop of a model.
///
/// The blocks run on a pool kept between calls (no thread start per
/// call). That is safe because `f` is leaf work: it computes on its block
/// and must not call other models or plugins (a meta-model that asks its
/// members uses [`with_thread_budget`], whose pools are private to the
/// call).
///
/// # Errors
/// Cancellation, or no threads.
pub fn for_row_blocks<T: Send>(
    ctx: &HostContextRef<'_>,
    x: &[f32],
    cols: usize,
    out: &mut [T],
    width: usize,
    chunk_rows: usize,
    f: impl Fn(&[f32], &mut [T]) + Sync,
) -> Result<(), PluginError> {
    for_row_blocks_from(ctx, 0, x, cols, out, width, chunk_rows, f)
}

/// [`for_row_blocks`], inline (whatever the budget) when `x` has fewer
/// than `parallel_from` rows: below that, waking other threads costs more
/// than it saves.
///
/// # Errors
/// Cancellation, or no threads.
#[allow(clippy::too_many_arguments)]
pub fn for_row_blocks_from<T: Send>(
    ctx: &HostContextRef<'_>,
    parallel_from: usize,
    x: &[f32],
    cols: usize,
    out: &mut [T],
    width: usize,
    chunk_rows: usize,
    f: impl Fn(&[f32], &mut [T]) + Sync,
) -> Result<(), PluginError> {
    use rayon::prelude::*;
    let chunk_rows = chunk_rows.max(1);
    let run = |(xc, oc): (&[f32], &mut [T])| {
        if ctx.is_cancelled() {
            return Err(PluginError::cancelled());
        }
        f(xc, oc);
        Ok(())
    };
    let threads = ctx.threads() as usize;
    let rows = x.len() / cols.max(1);
    if threads <= 1 || rows <= chunk_rows || rows < parallel_from {
        x.chunks(chunk_rows * cols.max(1))
            .zip(out.chunks_mut(chunk_rows * width.max(1)))
            .try_for_each(run)
    } else {
        row_pool(threads)?.install(|| {
            x.par_chunks(chunk_rows * cols.max(1))
                .zip(out.par_chunks_mut(chunk_rows * width.max(1)))
                .try_for_each(run)
        })
    }
}

/// A context that forwards to a parent but reports its own thread budget and,
/// optionally, no progress. Meta-learners hand one to each child learner so
/// the children share the parent's budget instead of multiplying it.
pub struct SubContext<'a, 'p> {
    parent: &'a HostContextRef<'p>,
    threads: u32,
    forward_progress: bool,
}

impl<'a, 'p> SubContext<'a, 'p> {
    /// A child context with `threads` threads that does not forward progress
    /// (the parent reports its own).
    pub fn new(parent: &'a HostContextRef<'p>, threads: u32) -> Self {
        Self {
            parent,
            threads: threads.max(1),
            forward_progress: false,
        }
    }

    /// Forward the child's progress reports to the parent.
    pub fn with_progress(mut self) -> Self {
        self.forward_progress = true;
        self
    }

    /// Borrows this context as a [`HostContextRef`].
    pub fn as_ref(&self) -> HostContextRef<'_> {
        HostContext_TO::from_ptr(RRef::new(self), TD_Opaque)
    }
}

impl HostContext for SubContext<'_, '_> {
    fn threads(&self) -> u32 {
        self.threads
    }
    fn is_cancelled(&self) -> bool {
        self.parent.is_cancelled()
    }
    fn progress(&self, done: u64, total: u64) {
        if self.forward_progress {
            self.parent.progress(done, total);
        }
    }
    fn log(&self, level: u8, message: RStr<'_>) {
        self.parent.log(level, message);
    }
    fn create_learner(&self, name: RStr<'_>, params: RStr<'_>) -> RResult<LearnerBox, PluginError> {
        self.parent.create_learner(name, params)
    }

    fn load_model(
        &self,
        component: RStr<'_>,
        bytes: RSlice<'_, u8>,
    ) -> RResult<ModelBox, PluginError> {
        self.parent.load_model(component, bytes)
    }
}
