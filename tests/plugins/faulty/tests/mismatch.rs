//! The host's loader refuses a plugin built against an incompatible core
//! (`tessera-test-mismatched`) and accepts one built against this core
//! (`tessera-test-faulty`), both found as `.so` files next to this test.

use std::path::PathBuf;

use tessera_core::{
    PluginModRef,
    abi_stable::library::{LibraryError, lib_header_from_path},
};

/// The dynamic library of crate `name`, built by cargo into the directory of
/// this test executable (`target/<profile>/deps`).
fn dylib(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("path of the test executable");
    let dir = exe.parent().expect("directory of the test executable");
    let file = format!(
        "{}{name}{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_SUFFIX
    );
    let path = dir.join(&file);
    assert!(path.is_file(), "{} was not built", path.display());
    path
}

#[test]
fn incompatible_core_is_refused() {
    let header = lib_header_from_path(&dylib("tessera_test_mismatched")).expect("a header");
    match header.init_root_module::<PluginModRef>() {
        Err(LibraryError::AbiInstability(e)) => {
            // Refused for its layout (the older `manifest` signature), not
            // merely for coming from another package.
            let msg = e.to_string();
            assert!(msg.contains("fn()->Manifest"), "{msg}");
            assert!(!msg.contains("mismatched package"), "{msg}");
        }
        Err(e) => panic!("expected an ABI instability, got: {e}"),
        Ok(_) => panic!("a plugin built against an incompatible core was loaded"),
    }
}

#[test]
fn compatible_core_is_accepted() {
    let header = lib_header_from_path(&dylib("tessera_test_faulty")).expect("a header");
    let module = header
        .init_root_module::<PluginModRef>()
        .unwrap_or_else(|e| panic!("the faulty plugin did not load: {e}"));
    let manifest = module.manifest()().into_result().expect("a manifest");
    assert_eq!(manifest.name.as_str(), "faulty");
    assert_eq!(manifest.abi_version.as_str(), tessera_core::ABI_VERSION);
}
