//! abi_stable records each type's package (from `CARGO_PKG_NAME`) in its
//! layout and refuses a different package before it compares fields. A real
//! plugin of an older core would have its types from package `tessera-core`,
//! so this plugin claims that package too: the loader then refuses it for its
//! layout alone.
fn main() {
    println!("cargo::rustc-env=CARGO_PKG_NAME=tessera-core");
}
