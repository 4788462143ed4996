//! Support shared by the language-kit tests (`conformance*.rs`, `kits_*.rs`):
//! plugins built from source with `hume build` (once per source version,
//! cached under the target directory), the `hume` binary as a process, and
//! the conformance event files.
#![allow(dead_code)]

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex, OnceLock};

/// A plugin language.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Lang {
    Rust,
    C,
    Python,
    Js,
}

impl Lang {
    /// Every language, in report order.
    pub const ALL: [Lang; 4] = [Lang::Rust, Lang::C, Lang::Python, Lang::Js];

    /// The name `hume new --lang` and the example folders use.
    pub fn name(self) -> &'static str {
        match self {
            Lang::Rust => "rust",
            Lang::C => "c",
            Lang::Python => "python",
            Lang::Js => "js",
        }
    }

    /// The kit folder under `guest-sdk/` whose sources a build depends on.
    fn kit_dir(self) -> &'static str {
        match self {
            Lang::Rust => "guest-sdk/src",
            Lang::C => "guest-sdk/c",
            Lang::Python => "guest-sdk/python",
            Lang::Js => "guest-sdk/js",
        }
    }
}

/// The languages that have an example of projection `logic` (`kv`, `bank`).
pub fn languages_of(logic: &str) -> Vec<Lang> {
    Lang::ALL
        .into_iter()
        .filter(|&lang| lang == Lang::Rust || example_dir(logic, lang).is_dir())
        .collect()
}

/// `example-plugins/<logic>-<lang>` (or `example-plugins/<logic>` for Rust).
pub fn example_dir(logic: &str, lang: Lang) -> PathBuf {
    let root = hume_tests::workspace_root().join("example-plugins");
    match lang {
        Lang::Rust => root.join(logic),
        _ => root.join(format!("{logic}-{}", lang.name())),
    }
}

/// The target directory of this build (`<target>` of `<target>/debug/deps/…`).
pub fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("path of the test executable");
    let mut dir = exe
        .parent()
        .expect("test executable has a directory")
        .to_path_buf();
    if dir.ends_with("deps") {
        dir.pop();
    }
    dir.pop(); // the profile folder
    dir
}

/// Where kit tests keep built plugins and compiled components between runs.
pub fn kits_cache() -> PathBuf {
    let dir = target_dir().join("hume-kits");
    std::fs::create_dir_all(dir.join("compiled")).expect("create the kits cache");
    dir
}

/// The compiled-component cache shared by every kit test (CLI and library).
pub fn compiled_cache() -> PathBuf {
    kits_cache().join("compiled")
}

/// Run `hume` with the shared compiled-plugin cache.
pub fn hume(args: &[&str]) -> Output {
    hume_in(None, args)
}

/// The `hume` binary to run: `$HUME_BIN`, or in an optimised build (a
/// bench) the debug binary when there is one (what `hume build` does does
/// not depend on it), or [`hume_tests::hume_bin`].
pub fn hume_binary() -> PathBuf {
    if let Some(bin) = std::env::var_os("HUME_BIN") {
        return PathBuf::from(bin);
    }
    let debug = target_dir().join("debug").join("hume");
    if cfg!(not(debug_assertions)) && debug.is_file() {
        return debug;
    }
    hume_tests::hume_bin()
}

/// Run `hume` in directory `cwd` (or the current one).
pub fn hume_in(cwd: Option<&Path>, args: &[&str]) -> Output {
    let mut cmd = Command::new(hume_binary());
    cmd.args(args)
        .env("HUME_CACHE_DIR", compiled_cache())
        .env("NO_COLOR", "1")
        .env_remove("RUST_LOG");
    if let Some(cwd) = cwd {
        cmd.current_dir(cwd);
    }
    cmd.output().expect("run hume")
}

/// stdout of a process, as text.
pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// stderr of a process, as text.
pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Hash every file under `path` (names and contents, sorted; build outputs
/// and caches skipped) into `hasher`.
fn hash_tree(path: &Path, hasher: &mut impl Hasher) {
    if path.is_file() {
        path.file_name().hash(hasher);
        std::fs::read(path)
            .expect("read a source file")
            .hash(hasher);
        return;
    }
    let Ok(entries) = std::fs::read_dir(path) else {
        return;
    };
    let mut entries: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    entries.sort();
    for entry in entries {
        let name = entry
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        let skipped = name.ends_with(".wasm")
            || name.starts_with('.')
            || matches!(
                name.as_str(),
                "node_modules" | "__pycache__" | "target" | "toolchain"
            )
            || name.starts_with("test_") && !name.contains('.');
        if !skipped {
            name.hash(hasher);
            hash_tree(&entry, hasher);
        }
    }
}

/// Build the plugin project `dir` (language `lang`) with `hume build`, once
/// per version of its sources: the component is cached under the target
/// directory, keyed by a hash of the project, its kit, the WIT contract and
/// `hume build`'s own sources.
pub fn build_project(dir: &Path, lang: Lang) -> PathBuf {
    static BUILDS: OnceLock<Mutex<HashMap<PathBuf, Arc<OnceLock<PathBuf>>>>> = OnceLock::new();
    let slot = BUILDS
        .get_or_init(Default::default)
        .lock()
        .unwrap()
        .entry(dir.to_path_buf())
        .or_default()
        .clone();
    slot.get_or_init(|| {
        let root = hume_tests::workspace_root();
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        hash_tree(dir, &mut hasher);
        hash_tree(&root.join(lang.kit_dir()), &mut hasher);
        hash_tree(&root.join("wit"), &mut hasher);
        // how `hume build` builds (flags, entry glue, templates)
        hash_tree(&root.join("host/src/cli/kits"), &mut hasher);
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        let out = kits_cache().join(format!("{name}-{:016x}.wasm", hasher.finish()));
        if !out.is_file() {
            let partial = out.with_extension(format!("partial-{}", std::process::id()));
            let built = hume(&[
                "build",
                dir.to_str().unwrap(),
                "-o",
                partial.to_str().unwrap(),
            ]);
            assert!(
                built.status.success(),
                "`hume build {}` failed (are the kits installed? run scripts/setup-kits.sh):\n{}{}",
                dir.display(),
                stdout(&built),
                stderr(&built)
            );
            std::fs::rename(&partial, &out).expect("move the built plugin into the cache");
        }
        out
    })
    .clone()
}

/// The component of example `logic` in `lang`: Rust ones come from
/// `tests/build.rs`, the others are built with `hume build`.
pub fn example_plugin(logic: &str, lang: Lang) -> PathBuf {
    match (logic, lang) {
        ("kv", Lang::Rust) => PathBuf::from(hume_tests::KV_WASM),
        ("bank", Lang::Rust) => PathBuf::from(hume_tests::BANK_WASM),
        _ => build_project(&example_dir(logic, lang), lang),
    }
}

/// The conformance folder `tests/conformance`.
pub fn conformance_dir() -> PathBuf {
    hume_tests::workspace_root().join("tests/conformance")
}

/// One line of a conformance events file. The data is kept as written
/// (`12345678901234567.0`, `1e400`, `-0`): the plugins must see the exact
/// text, not what serde_json would write back.
#[derive(Debug, Clone, serde::Deserialize, serde::Serialize)]
pub struct EventLine {
    pub stream: String,
    pub kind: String,
    pub data: Box<serde_json::value::RawValue>,
}

/// The events of a conformance file, in order (positions 1, 2, ...).
pub fn read_events(file: &str) -> Vec<EventLine> {
    let text = std::fs::read_to_string(conformance_dir().join(file)).expect("read events file");
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).expect("an event line"))
        .collect()
}

/// `expected.json`: what every language must reach for each file.
pub fn expectations() -> serde_json::Map<String, serde_json::Value> {
    let text = std::fs::read_to_string(conformance_dir().join("expected.json"))
        .expect("read expected.json");
    serde_json::from_str(&text).expect("expected.json is a JSON object")
}

/// The projection logic a conformance file is for (`kv-basic.ndjson` -> `kv`).
pub fn logic_of(file: &str) -> &str {
    file.split('-').next().unwrap()
}
