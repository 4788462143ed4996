//! The C kit's committed bindings (`guest-sdk/c/gen/`) match the WIT
//! contract: regenerated with `wit-bindgen c` when it is installed (on
//! `$PATH` or in `.hume-tools/cargo/bin`), and always checked to declare
//! every export of the world.

use std::path::PathBuf;
use std::process::Command;

fn wit_bindgen() -> Option<PathBuf> {
    let local = hume_tests::workspace_root().join(".hume-tools/cargo/bin/wit-bindgen");
    if local.is_file() {
        return Some(local);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join("wit-bindgen"))
        .find(|p| p.is_file())
}

#[test]
fn committed_c_bindings_declare_every_export_of_the_world() {
    let root = hume_tests::workspace_root();
    let header = std::fs::read_to_string(root.join("guest-sdk/c/gen/projection.h")).unwrap();
    let wit = std::fs::read_to_string(root.join("wit/projection.wit")).unwrap();
    assert!(
        wit.contains("package hume:projection@0.1.0;"),
        "the bindings are for 0.1.0"
    );
    for export in [
        "describe",
        "init-state",
        "restore",
        "handle-events",
        "snapshot",
        "on-caught-up",
        "query",
    ] {
        assert!(
            wit.contains(&format!("export {export}: func")),
            "the WIT exports {export}"
        );
        let symbol = format!("exports_projection_{}(", export.replace('-', "_"));
        assert!(
            header.contains(&symbol),
            "gen/projection.h declares {symbol}"
        );
    }
}

#[test]
fn committed_c_bindings_are_what_wit_bindgen_generates() {
    let Some(tool) = wit_bindgen() else {
        eprintln!(
            "wit-bindgen is not installed: not regenerating the C bindings \
             (cargo install wit-bindgen-cli@0.61.0 --locked --root .hume-tools/cargo)"
        );
        return;
    };
    let root = hume_tests::workspace_root();
    let out = hume_tests::temp_dir();
    let status = Command::new(tool)
        .args(["c"])
        .arg(root.join("wit"))
        .args(["--world", "projection", "--no-object-file", "--out-dir"])
        .arg(out.path())
        .status()
        .expect("run wit-bindgen");
    assert!(status.success());
    for file in ["projection.h", "projection.c"] {
        let fresh = std::fs::read_to_string(out.path().join(file)).unwrap();
        let committed = std::fs::read_to_string(root.join("guest-sdk/c/gen").join(file)).unwrap();
        assert!(
            fresh == committed,
            "guest-sdk/c/gen/{file} is stale: regenerate it with `wit-bindgen c wit --world \
             projection --no-object-file --out-dir guest-sdk/c/gen`"
        );
    }
}
