//! Builds the example and hostile plugins for `wasm32-wasip2` from source, so the HTTP suite
//! uploads real components. Each group shares the SDK features of one plugin kind, so each
//! is a separate `cargo build` into `target/wasm-plugins`.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Packages per SDK feature set: one `cargo build` each.
const GROUPS: &[&[&str]] = &[
    &[
        "churn-risk",
        "hostile-spin",
        "hostile-hog",
        "hostile-recurse",
        "hostile-panic",
        "hostile-flood",
        "hostile-snoop",
        "hostile-peek",
        "hostile-grumble",
        "hostile-sleep",
    ],
    &["win-back"],
    &[
        "loyalty-offers",
        "hostile-verbose",
        "hostile-fickle",
        "hostile-twins",
        "hostile-stall",
    ],
    &["hostile-future", "hostile-smuggle", "hostile-mismatch"],
];

fn main() {
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let root = manifest_dir
        .parent()
        .expect("tests/ sits in the workspace root");
    for watched in [
        "sdk/wit",
        "sdk/src",
        "sdk/Cargo.toml",
        "plugins",
        "tests/plugins",
    ] {
        println!("cargo::rerun-if-changed={}", root.join(watched).display());
    }
    let target_dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"))
        .join("wasm-plugins");
    for group in GROUPS {
        build(root, &target_dir, group);
    }
    let out = target_dir.join("wasm32-wasip2").join("release");
    println!("cargo::rustc-env=WASM_TEST_PLUGINS={}", out.display());
}

fn build(root: &Path, target_dir: &Path, packages: &[&str]) {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .current_dir(root)
        .args([
            "build",
            "--release",
            "--target",
            "wasm32-wasip2",
            "--target-dir",
        ])
        .arg(target_dir);
    for package in packages {
        command.args(["-p", package]);
    }
    // The outer build's settings are for the host target; the wasm build makes its own.
    for var in [
        "RUSTC_WORKSPACE_WRAPPER",
        "RUSTC_WRAPPER",
        "RUSTFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "CARGO_BUILD_TARGET",
        "CARGO_TARGET_DIR",
        "CARGO_PRIMARY_PACKAGE",
    ] {
        command.env_remove(var);
    }
    let status = command
        .status()
        .expect("cargo can be run from the build script");
    assert!(
        status.success(),
        "building the test plugins ({}) for wasm32-wasip2 failed; is the target installed? \
         (rustup target add wasm32-wasip2)",
        packages.join(", ")
    );
}
