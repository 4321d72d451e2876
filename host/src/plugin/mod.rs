//! The plugin registry: which plugins are loaded and which components they
//! provide.
//!
//! Plugins are found in folders (every `lib*.so` / `*.dylib` / `*.dll` in it)
//! or given as single files. abi_stable checks each one's layout against this
//! host's tessera-core; libraries are never unloaded (abi_stable does not
//! support it).

mod load;

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
};

use abi_stable::std_types::{RResult, RSlice, RStr};
use tessera_core::{
    ComponentKind, CompressorBox, DecomposerBox, HostContextRef, LearnerBox, Manifest, ModelBox,
    PluginError, PluginModRef,
};

pub use load::{Duplicate, LoadError, UnknownComponent};

/// One loaded plugin.
pub struct LoadedPlugin {
    /// Where it was loaded from.
    pub path: PathBuf,
    /// What it says about itself.
    pub manifest: Manifest,
    /// `path` with links resolved, to notice one file loaded twice.
    canonical: PathBuf,
    module: PluginModRef,
}

impl std::fmt::Debug for LoadedPlugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedPlugin")
            .field("path", &self.path)
            .field("name", &self.manifest.name)
            .finish()
    }
}

/// A plugin that was found in a folder but could not be used.
#[derive(Debug)]
pub struct SkippedPlugin {
    /// The file.
    pub path: PathBuf,
    /// Why it was skipped.
    pub error: LoadError,
}

/// The loaded plugins and an index of their components.
#[derive(Debug, Default)]
pub struct Registry {
    plugins: Vec<LoadedPlugin>,
    skipped: Vec<SkippedPlugin>,
    index: BTreeMap<(ComponentKindKey, String), usize>,
}

type ComponentKindKey = u8;

fn key(kind: ComponentKind, name: &str) -> (ComponentKindKey, String) {
    (kind as u8, name.to_string())
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Loads plugins from each path: a folder (every library in it) or a file.
    ///
    /// A file named explicitly must be a compatible tessera plugin. In a
    /// folder, libraries that are not tessera plugins are ignored and plugins
    /// built against another tessera-core are skipped and remembered (see
    /// [`Registry::skipped`]), so one stale file does not disable the rest.
    ///
    /// # Errors
    /// A missing path, an explicitly named file that is not a usable plugin,
    /// or two plugins claiming one component name.
    pub fn load_paths(&mut self, paths: &[PathBuf]) -> Result<(), LoadError> {
        for p in paths {
            if p.is_dir() {
                self.load_dir(p)?;
            } else {
                self.load_file(p)?;
            }
        }
        Ok(())
    }

    /// Loads every plugin library in `dir`.
    ///
    /// # Errors
    /// See [`Registry::load_paths`].
    pub fn load_dir(&mut self, dir: &Path) -> Result<(), LoadError> {
        for path in load::libraries_in(dir)? {
            match load::load(&path) {
                Ok(p) => self.add(p)?,
                Err(LoadError::NotAPlugin { .. }) => {}
                Err(error) => self.skipped.push(SkippedPlugin { path, error }),
            }
        }
        Ok(())
    }

    /// Loads one plugin file.
    ///
    /// # Errors
    /// See [`Registry::load_paths`].
    pub fn load_file(&mut self, path: &Path) -> Result<(), LoadError> {
        let p = load::load(path)?;
        self.add(p)
    }

    fn add(&mut self, plugin: LoadedPlugin) -> Result<(), LoadError> {
        if self.plugins.iter().any(|p| p.canonical == plugin.canonical) {
            return Ok(());
        }
        let idx = self.plugins.len();
        for c in plugin.manifest.components.iter() {
            let k = key(c.kind, &c.name);
            if let Some(&other) = self.index.get(&k) {
                let first = &self.plugins[other];
                return Err(LoadError::Duplicate(Box::new(load::Duplicate {
                    kind: c.kind.name(),
                    name: c.name.to_string(),
                    first: first.path.clone(),
                    first_plugin: first.manifest.name.to_string(),
                    second: plugin.path.clone(),
                    second_plugin: plugin.manifest.name.to_string(),
                })));
            }
        }
        for c in plugin.manifest.components.iter() {
            self.index.insert(key(c.kind, &c.name), idx);
        }
        self.plugins.push(plugin);
        Ok(())
    }

    /// The loaded plugins, in load order.
    pub fn plugins(&self) -> &[LoadedPlugin] {
        &self.plugins
    }

    /// Plugins found in folders that could not be used.
    pub fn skipped(&self) -> &[SkippedPlugin] {
        &self.skipped
    }

    /// The plugin providing component `name` of `kind`.
    ///
    /// # Errors
    /// [`LoadError::UnknownComponent`], listing what is known and any
    /// skipped plugin that might have provided it.
    pub fn provider(&self, kind: ComponentKind, name: &str) -> Result<&LoadedPlugin, LoadError> {
        match self.index.get(&key(kind, name)) {
            Some(&i) => Ok(&self.plugins[i]),
            None => {
                let known: Vec<String> = self
                    .index
                    .keys()
                    .filter(|(k, _)| *k == kind as u8)
                    .map(|(_, n)| n.clone())
                    .collect();
                Err(LoadError::UnknownComponent(Box::new(
                    load::UnknownComponent {
                        kind: kind.name(),
                        name: name.to_string(),
                        suggestion: tessera_core::params::closest(
                            name,
                            &known.iter().map(String::as_str).collect::<Vec<_>>(),
                        )
                        .map(str::to_string),
                        known,
                        skipped: self.skipped.iter().map(|s| s.path.clone()).collect(),
                    },
                )))
            }
        }
    }

    /// The plugin that loads models of `component`: a learner, or a model
    /// form (what a compressor produces).
    ///
    /// # Errors
    /// Neither is loaded; the error lists the learners.
    pub fn model_provider(&self, component: &str) -> Result<&LoadedPlugin, LoadError> {
        self.provider(ComponentKind::Learner, component)
            .or_else(|e| {
                self.provider(ComponentKind::Model, component)
                    .map_err(|_| e)
            })
    }

    /// Creates learner `name` with parameters as JSON text.
    ///
    /// # Errors
    /// An unknown learner, or the plugin's parameter error.
    pub fn create_learner(
        &self,
        name: &str,
        params_json: &str,
    ) -> Result<LearnerBox, anyhow::Error> {
        let p = self.provider(ComponentKind::Learner, name)?;
        let r = (p.module.create_learner())(RStr::from(name), RStr::from(params_json));
        Ok(plugin_result(p, r)?)
    }

    /// Creates compressor `name` with parameters as JSON text.
    ///
    /// # Errors
    /// An unknown compressor, or the plugin's parameter error.
    pub fn create_compressor(
        &self,
        name: &str,
        params_json: &str,
    ) -> Result<CompressorBox, anyhow::Error> {
        let p = self.provider(ComponentKind::Compressor, name)?;
        let r = (p.module.create_compressor())(RStr::from(name), RStr::from(params_json));
        Ok(plugin_result(p, r)?)
    }

    /// Creates decomposer `name` with parameters as JSON text.
    ///
    /// # Errors
    /// An unknown decomposer, or the plugin's parameter error.
    pub fn create_decomposer(
        &self,
        name: &str,
        params_json: &str,
    ) -> Result<DecomposerBox, anyhow::Error> {
        let p = self.provider(ComponentKind::Decomposer, name)?;
        let r = (p.module.create_decomposer())(RStr::from(name), RStr::from(params_json));
        Ok(plugin_result(p, r)?)
    }

    /// Reads back a model of learner `component` from its payload.
    ///
    /// # Errors
    /// No plugin provides the component, or the plugin refuses the bytes.
    pub fn load_model(&self, component: &str, payload: &[u8]) -> Result<ModelBox, anyhow::Error> {
        let ctx = crate::context::RunContext::new(self, 1);
        self.load_model_with(component, payload, ctx.as_abi())
    }

    /// Reads back a model, handing the plugin `ctx` (through which a
    /// meta-model loads its members).
    ///
    /// # Errors
    /// As [`Registry::load_model`].
    pub fn load_model_with(
        &self,
        component: &str,
        payload: &[u8],
        ctx: HostContextRef<'_>,
    ) -> Result<ModelBox, anyhow::Error> {
        let p = self.model_provider(component)?;
        let r = (p.module.load_model())(RStr::from(component), RSlice::from_slice(payload), ctx);
        Ok(plugin_result(p, r)?)
    }
}

/// A plugin error with the plugin's name and file attached.
#[derive(Debug, thiserror::Error)]
#[error("plugin `{plugin}` ({path}): {error}")]
pub struct PluginCallError {
    /// The plugin's name.
    pub plugin: String,
    /// Its file.
    pub path: String,
    /// What it returned.
    pub error: PluginError,
}

fn plugin_result<T>(p: &LoadedPlugin, r: RResult<T, PluginError>) -> Result<T, PluginCallError> {
    r.into_result().map_err(|error| PluginCallError {
        plugin: p.manifest.name.to_string(),
        path: p.path.display().to_string(),
        error,
    })
}

/// The folders searched when none is given: the `TESSERA_PLUGINS` variable
/// (a path list) if set, else the folder the running executable sits in.
pub fn default_plugin_paths() -> Vec<PathBuf> {
    if let Some(v) = std::env::var_os("TESSERA_PLUGINS") {
        let paths: Vec<PathBuf> = std::env::split_paths(&v)
            .filter(|p| !p.as_os_str().is_empty())
            .collect();
        if !paths.is_empty() {
            return paths;
        }
    }
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(Path::to_path_buf))
        .into_iter()
        .collect()
}
