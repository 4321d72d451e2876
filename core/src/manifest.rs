//! What a plugin says about itself.

use abi_stable::{
    StableAbi,
    std_types::{RString, RVec},
};

/// The kind of a component.
#[repr(u8)]
#[derive(StableAbi, Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ComponentKind {
    /// Trains models.
    Learner,
    /// Compresses models.
    Compressor,
    /// Splits models.
    Decomposer,
    /// Loads and runs a model form it cannot train: the output of a
    /// compressor (a quantized ensemble, a sparse network).
    Model,
}

impl ComponentKind {
    /// A lowercase name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Learner => "learner",
            Self::Compressor => "compressor",
            Self::Decomposer => "decomposer",
            Self::Model => "model",
        }
    }
}

/// One parameter of a component.
#[repr(C)]
#[derive(StableAbi, Clone, Debug, PartialEq)]
pub struct ParamInfo {
    /// The key, e.g. `n_estimators`.
    pub name: RString,
    /// The accepted values, e.g. `int >= 1` or `"sqrt" | "log2" | int | float`.
    pub ty: RString,
    /// The default as JSON text (`null` for none).
    pub default: RString,
    /// One line on what it does.
    pub doc: RString,
}

/// One component a plugin provides.
#[repr(C)]
#[derive(StableAbi, Clone, Debug, PartialEq)]
pub struct ComponentInfo {
    /// Learner, compressor, decomposer or model form.
    pub kind: ComponentKind,
    /// The name users type, e.g. `random_forest`.
    pub name: RString,
    /// One line on what it does.
    pub description: RString,
    /// Its parameters.
    pub params: RVec<ParamInfo>,
}

/// A plugin's description of itself.
#[repr(C)]
#[derive(StableAbi, Clone, Debug, PartialEq)]
pub struct Manifest {
    /// The plugin's name, e.g. `forest`.
    pub name: RString,
    /// The plugin's own version.
    pub version: RString,
    /// The [`ABI_VERSION`](crate::ABI_VERSION) it was built against.
    pub abi_version: RString,
    /// The components it provides.
    pub components: RVec<ComponentInfo>,
}
