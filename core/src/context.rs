//! The host context handed to every plugin call.

use abi_stable::{
    RRef, sabi_trait,
    std_types::{RResult, RSlice, RStr},
};

use crate::{
    error::PluginError,
    traits::{LearnerBox, ModelBox},
};

/// Log levels for [`HostContext::log`].
pub mod level {
    /// Detail useful when debugging.
    pub const DEBUG: u8 = 0;
    /// Normal progress information.
    pub const INFO: u8 = 1;
    /// Something the user should look at.
    pub const WARN: u8 = 2;
}

/// What the host offers a plugin during a call.
#[sabi_trait]
pub trait HostContext: Send + Sync {
    /// How many threads this call may keep busy (at least 1).
    fn threads(&self) -> u32;

    /// Whether the host wants the call to stop; long loops poll it and return
    /// [`PluginError::cancelled`].
    fn is_cancelled(&self) -> bool;

    /// Reports that `done` of `total` units of work are finished (for example
    /// trees built); the host draws the progress bar.
    fn progress(&self, done: u64, total: u64);

    /// Writes a message to the host's log at `level` (see [`level`]).
    fn log(&self, level: u8, message: RStr<'_>);

    /// Creates a learner of any loaded plugin by component name, with its
    /// parameters as JSON text. This is how meta-learners wrap base learners.
    fn create_learner(&self, name: RStr<'_>, params: RStr<'_>) -> RResult<LearnerBox, PluginError>;

    /// Reads back a model of any loaded plugin from the bytes its
    /// [`Model::to_bytes`](crate::Model::to_bytes) wrote, by the component
    /// that trained it. Meta-models load their members this way.
    #[sabi(last_prefix_field)]
    fn load_model(
        &self,
        component: RStr<'_>,
        bytes: RSlice<'_, u8>,
    ) -> RResult<ModelBox, PluginError>;
}

/// A borrowed host context, as passed into every call.
pub type HostContextRef<'a> = HostContext_TO<'a, RRef<'a, ()>>;

/// A context that does nothing: one thread, never cancelled, no learners.
/// Useful in unit tests and for in-process use without a host.
#[derive(Clone, Copy, Debug)]
pub struct NullContext {
    /// The thread budget to report.
    pub threads: u32,
}

impl Default for NullContext {
    fn default() -> Self {
        Self { threads: 1 }
    }
}

impl NullContext {
    /// Borrows this context as a [`HostContextRef`].
    pub fn as_ref(&self) -> HostContextRef<'_> {
        HostContext_TO::from_ptr(RRef::new(self), sabi_trait::TD_Opaque)
    }
}

impl HostContext for NullContext {
    fn threads(&self) -> u32 {
        self.threads.max(1)
    }
    fn is_cancelled(&self) -> bool {
        false
    }
    fn progress(&self, _done: u64, _total: u64) {}
    fn log(&self, _level: u8, _message: RStr<'_>) {}
    fn create_learner(
        &self,
        name: RStr<'_>,
        _params: RStr<'_>,
    ) -> RResult<LearnerBox, PluginError> {
        RResult::RErr(PluginError::unsupported(format!(
            "no host is present to create learner `{name}`"
        )))
    }

    fn load_model(
        &self,
        component: RStr<'_>,
        _bytes: RSlice<'_, u8>,
    ) -> RResult<ModelBox, PluginError> {
        RResult::RErr(PluginError::unsupported(format!(
            "no host is present to load a `{component}` model"
        )))
    }
}
