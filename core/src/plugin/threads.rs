//! Threads: a pool per call within the host's budget, and child contexts
//! that share a parent's budget.

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
