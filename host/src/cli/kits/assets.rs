//! Files embedded in the binary: the WIT contract and the language kits, so
//! `hume build` and `hume new` work outside the Hume repository.

use std::path::{Path, PathBuf};

use anyhow::Context as _;

/// The WIT contract (`wit/projection.wit`).
pub const WIT: &str = include_str!("../../../../wit/projection.wit");
/// The Python kit module (`guest-sdk/python/hume_guest.py`).
pub const PYTHON_KIT: &str = include_str!("../../../../guest-sdk/python/hume_guest.py");
/// The JavaScript kit module (`guest-sdk/js/hume-guest.js`).
pub const JS_KIT: &str = include_str!("../../../../guest-sdk/js/hume-guest.js");

/// The C kit: (file name, contents). Headers and sources; see [`C_KIT_SOURCES`].
pub const C_KIT: &[(&str, &str)] = &[
    (
        "hume_guest.h",
        include_str!("../../../../guest-sdk/c/hume_guest.h"),
    ),
    (
        "hume_guest.c",
        include_str!("../../../../guest-sdk/c/hume_guest.c"),
    ),
    (
        "hume_json.h",
        include_str!("../../../../guest-sdk/c/hume_json.h"),
    ),
    (
        "hume_json.c",
        include_str!("../../../../guest-sdk/c/hume_json.c"),
    ),
    (
        "hume_testing.h",
        include_str!("../../../../guest-sdk/c/hume_testing.h"),
    ),
    (
        "projection.h",
        include_str!("../../../../guest-sdk/c/gen/projection.h"),
    ),
    (
        "projection.c",
        include_str!("../../../../guest-sdk/c/gen/projection.c"),
    ),
];

/// The C kit's sources, compiled with every C plugin.
pub const C_KIT_SOURCES: &[&str] = &["hume_guest.c", "hume_json.c", "projection.c"];

/// Write the WIT contract into `dir/wit/` and return that folder.
pub fn write_wit(dir: &Path) -> anyhow::Result<PathBuf> {
    let wit = dir.join("wit");
    write(&wit.join("projection.wit"), WIT)?;
    Ok(wit)
}

/// Write the Python kit into `dir` (a folder for componentize-py's path).
pub fn write_python_kit(dir: &Path) -> anyhow::Result<()> {
    write(&dir.join("hume_guest.py"), PYTHON_KIT)
}

/// Write the C kit (header, JSON helper, WIT bindings) into `dir`.
pub fn write_c_kit(dir: &Path) -> anyhow::Result<()> {
    for (name, text) in C_KIT {
        write(&dir.join(name), text)?;
    }
    Ok(())
}

/// Write `text` to `path`, creating its parent folders.
pub fn write(path: &Path, text: &str) -> anyhow::Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
    }
    std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
}
