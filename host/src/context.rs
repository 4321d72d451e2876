//! The host side of [`HostContext`]: thread budget, cancellation, progress
//! and access to every loaded learner.

use std::sync::{
    Arc, Mutex,
    atomic::{AtomicBool, Ordering},
};

use abi_stable::{
    RRef,
    sabi_trait::TD_Opaque,
    std_types::{RResult, RSlice, RStr},
};
use tessera_core::{
    HostContext, HostContext_TO, HostContextRef, LearnerBox, ModelBox, PluginError,
};

use crate::plugin::Registry;

/// Receives progress reports (`done` of `total`).
pub type ProgressFn = dyn Fn(u64, u64) + Send + Sync;

/// The context of one host call.
pub struct RunContext<'r> {
    registry: &'r Registry,
    threads: u32,
    cancelled: Arc<AtomicBool>,
    progress: Option<Box<ProgressFn>>,
    verbose: bool,
    kept: Mutex<Vec<String>>,
}

/// How many log messages a context keeps for [`RunContext::messages`].
const KEPT_MESSAGES: usize = 64;

impl<'r> RunContext<'r> {
    /// A context over `registry` with a budget of `threads`.
    pub fn new(registry: &'r Registry, threads: usize) -> Self {
        Self {
            registry,
            threads: threads.clamp(1, u32::MAX as usize) as u32,
            cancelled: Arc::new(AtomicBool::new(false)),
            progress: None,
            verbose: false,
            kept: Mutex::new(Vec::new()),
        }
    }

    /// Sends progress reports to `f`.
    pub fn with_progress(mut self, f: Box<ProgressFn>) -> Self {
        self.progress = Some(f);
        self
    }

    /// Prints plugin debug logs too.
    pub fn verbose(mut self, verbose: bool) -> Self {
        self.verbose = verbose;
        self
    }

    /// The flag that cancels the call when set.
    pub fn cancel_flag(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.cancelled)
    }

    /// The first messages plugins logged, at any level (a compressor's
    /// account of what it did, for a report).
    pub fn messages(&self) -> Vec<String> {
        self.kept.lock().map(|k| k.clone()).unwrap_or_default()
    }

    /// Borrows this context in ABI form.
    pub fn as_abi(&self) -> HostContextRef<'_> {
        HostContext_TO::from_ptr(RRef::new(self), TD_Opaque)
    }
}

impl HostContext for RunContext<'_> {
    fn threads(&self) -> u32 {
        self.threads
    }

    fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::Relaxed)
    }

    fn progress(&self, done: u64, total: u64) {
        if let Some(f) = &self.progress {
            f(done, total);
        }
    }

    fn log(&self, level: u8, message: RStr<'_>) {
        if level >= tessera_core::context::level::INFO || self.verbose {
            eprintln!("{message}");
        }
        if let Ok(mut kept) = self.kept.lock()
            && kept.len() < KEPT_MESSAGES
        {
            kept.push(message.to_string());
        }
    }

    fn create_learner(&self, name: RStr<'_>, params: RStr<'_>) -> RResult<LearnerBox, PluginError> {
        self.registry
            .create_learner(name.as_str(), params.as_str())
            .map_err(plugin_error)
            .into()
    }

    fn load_model(
        &self,
        component: RStr<'_>,
        bytes: RSlice<'_, u8>,
    ) -> RResult<ModelBox, PluginError> {
        self.registry
            .load_model_with(component.as_str(), bytes.as_slice(), self.as_abi())
            .map_err(plugin_error)
            .into()
    }
}

/// A host error as a plugin sees it: a plugin's own error keeps its kind
/// (a corrupt payload stays a corrupt-model error) with the plugin's name
/// attached; anything else (an unknown component) is unsupported.
fn plugin_error(e: anyhow::Error) -> PluginError {
    match e.downcast::<crate::plugin::PluginCallError>() {
        Ok(call) => PluginError::new(call.error.kind, call.to_string()),
        Err(other) => PluginError::unsupported(format!("{other:#}")),
    }
}
