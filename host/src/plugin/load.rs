//! Opening one plugin library and checking it, with errors a user can act
//! on.

use std::path::{Path, PathBuf};

use abi_stable::library::{LibraryError, lib_header_from_path};
use tessera_core::{ABI_VERSION, PluginModRef};

use super::LoadedPlugin;

/// Why a plugin could not be loaded or used.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The path does not exist.
    #[error("plugin path {0} does not exist")]
    NotFound(PathBuf),
    /// A folder could not be listed.
    #[error("cannot read plugin folder {path}: {source}")]
    ReadDir {
        /// The folder.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The file cannot be opened as a shared library.
    #[error("{path} is not a loadable library: {reason}")]
    NotALibrary {
        /// The file.
        path: PathBuf,
        /// What the dynamic loader said.
        reason: String,
    },
    /// A library without tessera's root module.
    #[error("{path} is not a tessera plugin (it exports no tessera root module)")]
    NotAPlugin {
        /// The file.
        path: PathBuf,
    },
    /// Built against another tessera-core (or abi_stable) than this host.
    #[error(
        "plugin {path} was built against an incompatible tessera-core ({detail}); this host uses tessera-core {host}: rebuild the plugin against it"
    )]
    Incompatible {
        /// The file.
        path: PathBuf,
        /// The one-line summary of what differs.
        detail: String,
        /// This host's ABI version.
        host: &'static str,
        /// The loader's full report (it can be hundreds of lines), for
        /// debugging.
        full: String,
    },
    /// The plugin's own initialisation failed.
    #[error("plugin {path} failed to start: {reason}")]
    Init {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// Two plugins claim one component name.
    #[error("{0}")]
    Duplicate(Box<Duplicate>),
    /// No loaded plugin provides the component.
    #[error("{0}")]
    UnknownComponent(Box<UnknownComponent>),
}

/// Two plugins claim one component name.
#[derive(Debug, thiserror::Error)]
#[error(
    "{kind} `{name}` is provided by two plugins: `{first_plugin}` ({first}) and `{second_plugin}` ({second}); remove one of them",
    first = first.display(),
    second = second.display()
)]
pub struct Duplicate {
    /// learner / compressor / decomposer.
    pub kind: &'static str,
    /// The component name.
    pub name: String,
    /// The first plugin's file.
    pub first: PathBuf,
    /// The first plugin's name.
    pub first_plugin: String,
    /// The second plugin's file.
    pub second: PathBuf,
    /// The second plugin's name.
    pub second_plugin: String,
}

/// No loaded plugin provides a component.
#[derive(Debug, thiserror::Error)]
#[error("{}", unknown_message(self))]
pub struct UnknownComponent {
    /// learner / compressor / decomposer.
    pub kind: &'static str,
    /// The name asked for.
    pub name: String,
    /// The closest known name.
    pub suggestion: Option<String>,
    /// The known names of that kind.
    pub known: Vec<String>,
    /// Plugins that were skipped and might have provided it.
    pub skipped: Vec<PathBuf>,
}

fn unknown_message(u: &UnknownComponent) -> String {
    let UnknownComponent {
        kind,
        name,
        suggestion,
        known,
        skipped,
    } = u;
    let mut m = format!("no loaded plugin provides {kind} `{name}`");
    if let Some(s) = suggestion {
        m.push_str(&format!("; did you mean `{s}`?"));
    }
    if known.is_empty() {
        m.push_str(&format!(
            " (no {kind}s are loaded: check --plugins or TESSERA_PLUGINS)"
        ));
    } else {
        m.push_str(&format!(" (known {kind}s: {})", known.join(", ")));
    }
    if !skipped.is_empty() {
        let files: Vec<String> = skipped.iter().map(|p| p.display().to_string()).collect();
        m.push_str(&format!("; skipped unusable plugins: {}", files.join(", ")));
    }
    m
}

/// The plugin libraries in `dir`, sorted by name.
pub(super) fn libraries_in(dir: &Path) -> Result<Vec<PathBuf>, LoadError> {
    let entries = std::fs::read_dir(dir).map_err(|source| LoadError::ReadDir {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut libs: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_file() && is_library_name(p))
        .collect();
    libs.sort();
    Ok(libs)
}

fn is_library_name(p: &Path) -> bool {
    let Some(name) = p.file_name().and_then(|n| n.to_str()) else {
        return false;
    };
    (name.starts_with("lib") && name.ends_with(".so"))
        || name.ends_with(".dylib")
        || name.ends_with(".dll")
}

/// Opens `path` and checks it is a compatible tessera plugin.
pub(super) fn load(path: &Path) -> Result<LoadedPlugin, LoadError> {
    if !path.exists() {
        return Err(LoadError::NotFound(path.to_path_buf()));
    }
    let header = lib_header_from_path(path).map_err(|e| classify(path, e))?;
    let module = header
        .init_root_module::<PluginModRef>()
        .map_err(|e| classify(path, e))?;
    let manifest = (module.manifest())()
        .into_result()
        .map_err(|e| LoadError::Init {
            path: path.to_path_buf(),
            reason: e.message.to_string(),
        })?;
    if manifest.abi_version.as_str() != ABI_VERSION {
        return Err(LoadError::Incompatible {
            path: path.to_path_buf(),
            detail: format!("it reports ABI {}", manifest.abi_version),
            host: ABI_VERSION,
            full: String::new(),
        });
    }
    Ok(LoadedPlugin {
        canonical: path.canonicalize().unwrap_or_else(|_| path.to_path_buf()),
        path: path.to_path_buf(),
        manifest,
        module,
    })
}

fn classify(path: &Path, e: LibraryError) -> LoadError {
    let path = path.to_path_buf();
    match e {
        LibraryError::OpenError { err, .. } => LoadError::NotALibrary {
            reason: short_loader_reason(&err.to_string(), &path),
            path,
        },
        LibraryError::GetSymbolError { .. } => LoadError::NotAPlugin { path },
        LibraryError::IncompatibleVersionNumber {
            expected_version,
            actual_version,
            ..
        } => LoadError::Incompatible {
            path,
            detail: format!(
                "plugin has tessera-core {actual_version}, expected {expected_version}"
            ),
            host: ABI_VERSION,
            full: String::new(),
        },
        LibraryError::AbiInstability(full) => {
            let full = full.to_string();
            LoadError::Incompatible {
                detail: summarize_instability(&full),
                path,
                host: ABI_VERSION,
                full,
            }
        }
        LibraryError::InvalidAbiHeader(h) => LoadError::Incompatible {
            path,
            detail: format!("it uses abi_stable ABI {}.{}", h.abi_major, h.abi_minor),
            host: ABI_VERSION,
            full: String::new(),
        },
        LibraryError::RootModule { err, .. } => LoadError::Init {
            path,
            reason: err.to_string(),
        },
        other => LoadError::Init {
            path,
            reason: other.to_string(),
        },
    }
}

/// The dynamic loader repeats the path and adds noise; keep its last clause.
fn short_loader_reason(raw: &str, path: &Path) -> String {
    let p = path.display().to_string();
    let cleaned = raw.replace(&format!("{p}: "), "").replace(&p, "");
    let last = cleaned
        .rsplit("\n")
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("unknown reason");
    last.trim_start_matches("Could not open library at:")
        .trim()
        .to_string()
}

/// abi_stable's layout report runs to hundreds of lines; the verdict sits
/// at its end as `Error:<what>` followed by `Expected:` / `Found:` blocks.
fn summarize_instability(full: &str) -> String {
    let lines: Vec<&str> = full
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let Some(start) = lines.iter().rposition(|l| l.starts_with("Error:")) else {
        return "type layouts differ".to_string();
    };
    let mut out = lines[start].trim_start_matches("Error:").trim().to_string();
    let mut rest = lines[start + 1..].iter().take(6);
    while let Some(l) = rest.next() {
        let label = match *l {
            "Expected:" => "expected",
            "Found:" => "found",
            _ => continue,
        };
        if let Some(v) = rest.next() {
            out.push_str(&format!("; {label} {v}"));
        }
    }
    out.chars().take(200).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instability_summary_keeps_the_verdict() {
        let report = "Layout of expected type:\n  type:RString\n\nError:mismatched type\nExpected:\n    PluginError\nFound:\n    RString\n";
        assert_eq!(
            summarize_instability(report),
            "mismatched type; expected PluginError; found RString"
        );
        assert_eq!(summarize_instability("noise"), "type layouts differ");
    }

    #[test]
    fn library_names() {
        assert!(is_library_name(Path::new("/x/libtessera_forest.so")));
        assert!(is_library_name(Path::new("tessera_forest.dll")));
        assert!(!is_library_name(Path::new("/x/tessera")));
        assert!(!is_library_name(Path::new("/x/notes.txt")));
    }
}
