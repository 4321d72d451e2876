//! The error type that crosses the plugin boundary.

use abi_stable::{StableAbi, std_types::RString};
use std::fmt;

/// What kind of failure a [`PluginError`] reports.
///
/// A transparent `u8` rather than an enum, so that new kinds can be added
/// without changing the layout (an older host shows an unknown kind as
/// "error").
#[repr(transparent)]
#[derive(StableAbi, Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct ErrorKind(pub u8);

impl ErrorKind {
    /// A parameter is unknown or has a bad value.
    pub const INVALID_PARAMS: ErrorKind = ErrorKind(1);
    /// The data handed to the call is unusable (shape, NaN targets, ...).
    pub const INVALID_INPUT: ErrorKind = ErrorKind(2);
    /// A serialized model could not be read.
    pub const CORRUPT_MODEL: ErrorKind = ErrorKind(3);
    /// The component does not know the requested name or operation.
    pub const UNSUPPORTED: ErrorKind = ErrorKind(4);
    /// The host asked the call to stop.
    pub const CANCELLED: ErrorKind = ErrorKind(5);
    /// The plugin panicked; the panic was caught at the boundary.
    pub const PANIC: ErrorKind = ErrorKind(6);
    /// Anything else.
    pub const INTERNAL: ErrorKind = ErrorKind(7);

    /// A short lowercase name for messages.
    pub fn name(self) -> &'static str {
        match self {
            Self::INVALID_PARAMS => "invalid parameters",
            Self::INVALID_INPUT => "invalid input",
            Self::CORRUPT_MODEL => "corrupt model",
            Self::UNSUPPORTED => "unsupported",
            Self::CANCELLED => "cancelled",
            Self::PANIC => "plugin panicked",
            _ => "error",
        }
    }

    /// Whether the fault lies in what the user gave (parameters, data, a
    /// model file) rather than in the program.
    pub fn is_user_error(self) -> bool {
        matches!(
            self,
            Self::INVALID_PARAMS | Self::INVALID_INPUT | Self::CORRUPT_MODEL | Self::UNSUPPORTED
        )
    }
}

/// An error returned by a plugin call: a kind and one readable sentence.
#[repr(C)]
#[derive(StableAbi, Clone, Debug, PartialEq, Eq)]
pub struct PluginError {
    /// What kind of failure this is.
    pub kind: ErrorKind,
    /// A lowercase sentence naming the key, value or input at fault.
    pub message: RString,
}

impl PluginError {
    /// Builds an error of `kind` with `message`.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: RString::from(message.into()),
        }
    }

    /// A bad parameter.
    pub fn params(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::INVALID_PARAMS, message)
    }

    /// Bad input data.
    pub fn input(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::INVALID_INPUT, message)
    }

    /// An unreadable serialized model.
    pub fn corrupt(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::CORRUPT_MODEL, message)
    }

    /// An unknown component name or unsupported operation.
    pub fn unsupported(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::UNSUPPORTED, message)
    }

    /// The host cancelled the call.
    pub fn cancelled() -> Self {
        Self::new(ErrorKind::CANCELLED, "cancelled by the host")
    }

    /// An internal failure.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::INTERNAL, message)
    }
}

impl fmt::Display for PluginError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for PluginError {}
