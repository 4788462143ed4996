//! `hume build DIR [-o OUT.wasm]`: one command for every plugin language.
//!
//! | project has            | language   | toolchain                                   |
//! |------------------------|------------|---------------------------------------------|
//! | `Cargo.toml`           | Rust       | cargo, target wasm32-wasip2, profile `guest` (or release) |
//! | `app.py`               | Python     | componentize-py + the Python kit            |
//! | `package.json`/`app.js`| JavaScript | jco componentize (bundled) + the JS kit      |
//! | `*.c`                  | C          | clang-19 + bundled bindings + wasm-tools     |

use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{bail, Context as _};
use clap::{Args, ValueEnum};

use super::{assets, toolchain};

/// A plugin language `hume build` and `hume new` know.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Language {
    /// Rust, with the `hume-guest` crate.
    Rust,
    /// Python, with `hume_guest.py` and componentize-py.
    Python,
    /// JavaScript, with `hume-guest.js` and componentize-js (via jco).
    Js,
    /// C, with `hume_guest.h` and wit-bindgen's bindings.
    C,
}

impl fmt::Display for Language {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Language::Rust => "rust",
            Language::Python => "python",
            Language::Js => "js",
            Language::C => "c",
        })
    }
}

/// Arguments of `hume build`.
#[derive(Debug, Args)]
pub struct BuildArgs {
    /// The plugin project's directory.
    #[arg(default_value = ".")]
    dir: PathBuf,
    /// Where to write the component (default: `DIR/<dir name>.wasm`).
    #[arg(short, long, value_name = "OUT.wasm")]
    out: Option<PathBuf>,
    /// The language, when the project's files do not make it obvious.
    #[arg(long, value_enum)]
    lang: Option<Language>,
    /// Show the toolchain's own output even when it succeeds.
    #[arg(short, long)]
    verbose: bool,
}

/// Run `hume build`.
pub fn run(args: BuildArgs) -> anyhow::Result<std::process::ExitCode> {
    let dir = args
        .dir
        .canonicalize()
        .with_context(|| format!("cannot open the project directory {}", args.dir.display()))?;
    if !dir.is_dir() {
        bail!(
            "{} is not a directory: give the plugin project's directory",
            dir.display()
        );
    }
    let lang = match args.lang {
        Some(lang) => lang,
        None => detect(&dir)?,
    };
    let out = match args.out {
        Some(out) => absolute(&out)?,
        None => dir.join(format!("{}.wasm", dir_name(&dir))),
    };
    if let Some(parent) = out.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create the output directory {}", parent.display()))?;
    }
    let started = Instant::now();
    let builder = Builder {
        dir: &dir,
        out: &out,
        verbose: args.verbose,
    };
    match lang {
        Language::Rust => builder.rust()?,
        Language::Python => builder.python()?,
        Language::Js => builder.js()?,
        Language::C => builder.c()?,
    }
    let size = std::fs::metadata(&out).map(|m| m.len()).unwrap_or(0);
    eprintln!(
        "built {lang} plugin {} -> {} ({:.1} MB, {:.1} s)",
        dir.display(),
        out.display(),
        size as f64 / 1e6,
        started.elapsed().as_secs_f64()
    );
    println!("{}", out.display());
    Ok(std::process::ExitCode::SUCCESS)
}

/// Recognise the language of the project in `dir` from its files.
pub fn detect(dir: &Path) -> anyhow::Result<Language> {
    let has = |name: &str| dir.join(name).is_file();
    if has("Cargo.toml") {
        return Ok(Language::Rust);
    }
    if has("app.py") || has("pyproject.toml") {
        return Ok(Language::Python);
    }
    if has("package.json") || has("app.js") || has("index.js") {
        return Ok(Language::Js);
    }
    let has_c = std::fs::read_dir(dir)
        .with_context(|| format!("cannot list {}", dir.display()))?
        .filter_map(|e| e.ok())
        .any(|e| e.path().extension().is_some_and(|x| x == "c"));
    if has_c {
        return Ok(Language::C);
    }
    bail!(
        "cannot tell the language of the plugin project in {}: expected Cargo.toml (Rust), app.py \
         (Python), package.json or app.js (JavaScript) or *.c files (C); pass --lang, or create a \
         project with `hume new NAME --lang rust|python|js|c`",
        dir.display()
    )
}

fn dir_name(dir: &Path) -> String {
    dir.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "plugin".to_string())
}

fn absolute(path: &Path) -> anyhow::Result<PathBuf> {
    if path.is_absolute() {
        return Ok(path.to_path_buf());
    }
    Ok(std::env::current_dir()
        .context("cannot read the current directory")?
        .join(path))
}

/// A scratch directory removed when dropped.
pub struct Scratch(PathBuf);

impl Scratch {
    /// Create a fresh scratch directory under the system temp dir.
    pub fn new(tag: &str) -> anyhow::Result<Scratch> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let path = std::env::temp_dir().join(format!("hume-{tag}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&path)
            .with_context(|| format!("cannot create a scratch directory {}", path.display()))?;
        Ok(Scratch(path))
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

struct Builder<'a> {
    dir: &'a Path,
    out: &'a Path,
    verbose: bool,
}

impl Builder<'_> {
    /// Run a toolchain command; on failure show its output and say which
    /// step failed.
    fn exec(&self, step: &str, cmd: &mut Command) -> anyhow::Result<()> {
        let shown = format!("{cmd:?}");
        let output = cmd
            .output()
            .with_context(|| format!("{step}: cannot run {shown}"))?;
        if self.verbose || !output.status.success() {
            eprint!("{}", String::from_utf8_lossy(&output.stdout));
            eprint!("{}", String::from_utf8_lossy(&output.stderr));
        }
        if !output.status.success() {
            bail!(
                "{step} failed ({}); the command was {shown}; its output is above",
                output.status
            );
        }
        Ok(())
    }

    fn rust(&self) -> anyhow::Result<()> {
        toolchain::check_rust_target()?;
        let cargo = std::env::var_os("CARGO")
            .map(PathBuf::from)
            .unwrap_or_else(|| "cargo".into());
        let manifest = self.dir.join("Cargo.toml");
        let meta = Command::new(&cargo)
            .args([
                "metadata",
                "--format-version",
                "1",
                "--no-deps",
                "--manifest-path",
            ])
            .arg(&manifest)
            .output()
            .context("cannot run `cargo metadata`: is Rust installed (rustup.rs)?")?;
        if !meta.status.success() {
            bail!(
                "`cargo metadata` failed for {}: {}",
                manifest.display(),
                String::from_utf8_lossy(&meta.stderr)
            );
        }
        let meta: serde_json::Value =
            serde_json::from_slice(&meta.stdout).context("cannot parse `cargo metadata` output")?;
        let (lib, package) = rust_lib_name(&meta, &manifest)?;
        let target_dir = meta["target_directory"]
            .as_str()
            .context("cargo metadata: no target_directory")?;
        let root = meta["workspace_root"]
            .as_str()
            .context("cargo metadata: no workspace_root")?;
        let root_manifest =
            std::fs::read_to_string(Path::new(root).join("Cargo.toml")).unwrap_or_default();
        let profile = if root_manifest.contains("[profile.guest]") {
            "guest"
        } else {
            "release"
        };
        let mut cmd = Command::new(&cargo);
        cmd.args([
            "build",
            "--lib",
            "--target",
            "wasm32-wasip2",
            "--profile",
            profile,
            "-p",
            &package,
        ])
        .arg("--manifest-path")
        .arg(&manifest);
        self.exec("cargo build (wasm32-wasip2)", &mut cmd)?;
        let built = Path::new(target_dir)
            .join("wasm32-wasip2")
            .join(profile)
            .join(format!("{lib}.wasm"));
        std::fs::copy(&built, self.out).with_context(|| {
            format!("cannot copy {} to {}", built.display(), self.out.display())
        })?;
        Ok(())
    }

    fn python(&self) -> anyhow::Result<()> {
        if !self.dir.join("app.py").is_file() {
            bail!(
                "{} has no app.py: a Python plugin's entry module is app.py, defining \
                 `WitWorld = plugin(MyProjection)` (see `hume new NAME --lang python`)",
                self.dir.display()
            );
        }
        let componentize = toolchain::componentize_py(self.dir)?;
        let scratch = Scratch::new("build-py")?;
        let wit = assets::write_wit(scratch.path())?;
        let kit = scratch.path().join("kit");
        assets::write_python_kit(&kit)?;
        let mut cmd = Command::new(componentize);
        cmd.arg("-d")
            .arg(&wit)
            .args(["-w", "projection", "componentize", "app"])
            // The project first: a vendored hume_guest.py wins over the embedded one.
            .arg("-p")
            .arg(self.dir)
            .arg("-p")
            .arg(&kit)
            .arg("-o")
            .arg(self.out)
            .current_dir(self.dir)
            .env_remove("VIRTUAL_ENV")
            // no __pycache__ folders in the author's project
            .env("PYTHONDONTWRITEBYTECODE", "1");
        self.exec("componentize-py", &mut cmd)
    }

    fn js(&self) -> anyhow::Result<()> {
        let entry = js_entry(self.dir)?;
        let tools = toolchain::js_tools(self.dir)?;
        let scratch = Scratch::new("build-js")?;
        let wit = assets::write_wit(scratch.path())?;
        let kit = scratch.path().join("hume-guest.js");
        std::fs::write(&kit, assets::JS_KIT).context("cannot write the JS kit")?;
        let shim = tools
            .node_modules
            .join("@bytecodealliance/preview2-shim/dist/nodejs/filesystem.js");
        let preopen = scratch.path().join("preopen.mjs");
        // jco 1.35's WASI shim starts without preopens ("failed to get path
        // metadata (os error 44)"): give it the whole filesystem at build time.
        std::fs::write(
            &preopen,
            format!(
                "import {{ _setPreopens }} from {};\n_setPreopens({{ \"/\": \"/\" }});\n",
                js_str(&file_url(&shim))
            ),
        )?;
        let config = scratch.path().join("bundle.config.mjs");
        std::fs::write(
            &config,
            format!(
                "export default {{\n  external: [/^hume:/, /^wasi:/],\n  resolve: {{ alias: {{ \"hume-guest\": {} }} }},\n}};\n",
                js_str(&kit.display().to_string())
            ),
        )?;
        let main = scratch.path().join("main.js");
        std::fs::write(&main, js_main(&entry, &kit))?;
        let mut cmd = Command::new(&tools.node);
        cmd.arg("--import")
            .arg(file_url(&preopen))
            .arg(&tools.jco)
            .arg("componentize")
            .arg(&main)
            .arg("--bundle")
            .arg("--bundle-config")
            .arg(&config)
            .arg("--wit")
            .arg(&wit)
            .args(["--world-name", "projection", "-d", "all", "-o"])
            .arg(self.out)
            .current_dir(scratch.path());
        self.exec("jco componentize", &mut cmd)
    }

    fn c(&self) -> anyhow::Result<()> {
        let tools = toolchain::c_tools(self.dir)?;
        let scratch = Scratch::new("build-c")?;
        let wit = assets::write_wit(scratch.path())?;
        let kit = scratch.path().join("kit");
        assets::write_c_kit(&kit)?;
        let mut sources: Vec<PathBuf> = std::fs::read_dir(self.dir)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "c"))
            // `test*.c` files are native unit tests, not plugin code.
            .filter(|p| {
                !p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("test"))
            })
            .collect();
        sources.sort();
        if sources.is_empty() {
            bail!("{} has no .c files to build", self.dir.display());
        }
        sources.extend(assets::C_KIT_SOURCES.iter().map(|name| kit.join(name)));
        let core = scratch.path().join("plugin.core.wasm");
        let mut cmd = Command::new(&tools.clang);
        cmd.args([
            "--target=wasm32-wasi",
            "-O3",
            "-flto",
            "-mexec-model=reactor",
            "-fuse-ld=lld",
        ])
        .args(["-Wall", "-Wno-unused-parameter", "-Wl,--strip-all"])
        .arg("-I")
        .arg(self.dir)
        .arg("-I")
        .arg(&kit)
        .args(&sources)
        .arg("-o")
        .arg(&core);
        if let Some(sysroot) = std::env::var_os("WASI_SYSROOT") {
            cmd.arg("--sysroot").arg(sysroot);
        }
        self.exec("clang (wasm32-wasi)", &mut cmd)?;
        let embedded = scratch.path().join("plugin.embedded.wasm");
        let mut cmd = Command::new(&tools.wasm_tools);
        cmd.args(["component", "embed"])
            .arg(&wit)
            .args(["--world", "projection"])
            .arg(&core)
            .arg("-o")
            .arg(&embedded);
        self.exec("wasm-tools component embed", &mut cmd)?;
        let mut cmd = Command::new(&tools.wasm_tools);
        cmd.args(["component", "new"])
            .arg(&embedded)
            .arg("-o")
            .arg(self.out);
        self.exec("wasm-tools component new", &mut cmd)
    }
}

/// The (package name, lib target name) of the package at `manifest`.
fn rust_lib_name(meta: &serde_json::Value, manifest: &Path) -> anyhow::Result<(String, String)> {
    let manifest = manifest
        .canonicalize()
        .unwrap_or_else(|_| manifest.to_path_buf());
    let packages = meta["packages"]
        .as_array()
        .context("cargo metadata: no packages")?;
    let package = packages
        .iter()
        .find(|p| p["manifest_path"].as_str().map(Path::new) == Some(manifest.as_path()))
        .or_else(|| (packages.len() == 1).then(|| &packages[0]))
        .with_context(|| {
            format!(
                "{} is not a package (a virtual workspace?): point hume build at the plugin crate",
                manifest.display()
            )
        })?;
    let name = package["name"].as_str().unwrap_or_default().to_string();
    let lib = package["targets"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|t| {
            t["kind"].as_array().is_some_and(|k| k.iter().any(|k| k == "cdylib"))
        })
        .and_then(|t| t["name"].as_str())
        .with_context(|| {
            format!("the crate {name} has no cdylib target: add `[lib] crate-type = [\"cdylib\"]` to its Cargo.toml")
        })?;
    Ok((lib.replace('-', "_"), name))
}

/// The JavaScript module that default-exports the projection.
fn js_entry(dir: &Path) -> anyhow::Result<PathBuf> {
    let package = dir.join("package.json");
    if package.is_file() {
        let text = std::fs::read_to_string(&package)
            .with_context(|| format!("cannot read {}", package.display()))?;
        let json: serde_json::Value = serde_json::from_str(&text)
            .with_context(|| format!("{} is not valid JSON", package.display()))?;
        if let Some(main) = json["main"].as_str() {
            let path = dir.join(main);
            if !path.is_file() {
                bail!(
                    "{} names main {main}, which does not exist",
                    package.display()
                );
            }
            return Ok(path);
        }
    }
    for name in ["app.js", "index.js"] {
        if dir.join(name).is_file() {
            return Ok(dir.join(name));
        }
    }
    bail!(
        "{} has no app.js (or index.js, or a \"main\" in package.json): a JavaScript plugin's \
         entry module default-exports the projection (see `hume new NAME --lang js`)",
        dir.display()
    )
}

/// The module jco componentizes: the author's projection wrapped into the
/// world's exports by the kit's `plugin()`.
fn js_main(entry: &Path, kit: &Path) -> String {
    format!(
        "import projection from {};\n\
         import {{ plugin, setHostLog }} from {};\n\
         import {{ log as hostLog }} from \"hume:projection/host@0.1.0\";\n\
         setHostLog(hostLog);\n\
         const p = plugin(projection);\n\
         export const describe = p.describe;\n\
         export const initState = p.initState;\n\
         export const restore = p.restore;\n\
         export const handleEvents = p.handleEvents;\n\
         export const snapshot = p.snapshot;\n\
         export const onCaughtUp = p.onCaughtUp;\n\
         export const query = p.query;\n",
        js_str(&entry.display().to_string()),
        js_str(&kit.display().to_string())
    )
}

fn js_str(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_default()
}

fn file_url(path: &Path) -> String {
    format!("file://{}", path.display())
}
