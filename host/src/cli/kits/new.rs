//! `hume new NAME --lang L`: scaffold a plugin project that builds as is
//! with `hume build` and has a passing test in its language's own runner
//! (`cargo test`, `python3 -m unittest`, `node --test`, `make test`).
//!
//! Python, JS and C projects get a copy of their kit next to the sources, so
//! their native tests run without the Hume repository; a Rust project
//! depends on the `hume-guest` crate by path (`--sdk`, default: the Hume
//! repository this binary was built from).

use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _};
use clap::Args;

use super::assets;
use super::build::Language;

/// Arguments of `hume new`.
#[derive(Debug, Args)]
pub struct NewArgs {
    /// Name of the projection (letters, digits, `-`, `_`; starting with a
    /// letter); also the project's directory unless --dir is given.
    name: String,
    /// The language of the plugin.
    #[arg(long, value_enum)]
    lang: Language,
    /// Where to create the project (default: ./NAME). Must not exist or be empty.
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Rust only: path of the `hume-guest` crate (guest-sdk/ in the Hume
    /// repository).
    #[arg(long, value_name = "DIR")]
    sdk: Option<PathBuf>,
}

/// One file of a template: path in the project, text with `{{name}}` etc.
type TemplateFile = (&'static str, &'static str);

const RUST: &[TemplateFile] = &[
    ("Cargo.toml", include_str!("templates/rust/Cargo.toml")),
    ("src/lib.rs", include_str!("templates/rust/src/lib.rs")),
    (".gitignore", "/target\n*.wasm\n"),
];
const PYTHON: &[TemplateFile] = &[
    ("app.py", include_str!("templates/python/app.py")),
    ("test_app.py", include_str!("templates/python/test_app.py")),
    ("hume_guest.py", assets::PYTHON_KIT),
    (".gitignore", "__pycache__/\n*.wasm\n"),
];
const JS: &[TemplateFile] = &[
    ("app.js", include_str!("templates/js/app.js")),
    ("app.test.js", include_str!("templates/js/app.test.js")),
    ("package.json", include_str!("templates/js/package.json")),
    ("hume-guest.js", assets::JS_KIT),
    (".gitignore", "node_modules/\n*.wasm\n"),
];
const C: &[TemplateFile] = &[
    ("app.c", include_str!("templates/c/app.c")),
    ("test_app.c", include_str!("templates/c/test_app.c")),
    ("Makefile", include_str!("templates/c/Makefile")),
    (".gitignore", "test_app\n*.wasm\n"),
];
const README: &str = include_str!("templates/README.md");

/// Run `hume new`.
pub fn run(args: NewArgs) -> anyhow::Result<std::process::ExitCode> {
    check_name(&args.name)?;
    let dir = args
        .dir
        .clone()
        .unwrap_or_else(|| PathBuf::from(&args.name));
    if dir.exists() {
        let empty = dir.is_dir()
            && std::fs::read_dir(&dir)
                .with_context(|| format!("cannot list {}", dir.display()))?
                .next()
                .is_none();
        if !empty {
            bail!(
                "{} already exists and is not an empty directory: choose another name or --dir \
                 (nothing was written)",
                dir.display()
            );
        }
    }
    let sdk = match args.lang {
        Language::Rust => Some(rust_sdk(args.sdk.as_deref())?),
        _ => None,
    };
    let (files, language, source, test) = match args.lang {
        Language::Rust => (RUST, "Rust", "src/lib.rs", "cargo test"),
        Language::Python => (PYTHON, "Python", "app.py", "python3 -m unittest"),
        Language::Js => (JS, "JavaScript", "app.js", "node --test"),
        Language::C => (C, "C", "app.c", "make test"),
    };
    let fill = |text: &str| {
        text.replace("{{name}}", &args.name)
            .replace("{{lang}}", &args.lang.to_string())
            .replace("{{language}}", language)
            .replace("{{source}}", source)
            .replace("{{test}}", test)
            .replace(
                "{{sdk}}",
                &sdk.as_ref()
                    .map(|p| p.display().to_string().replace('\\', "/"))
                    .unwrap_or_default(),
            )
    };
    for (path, text) in files {
        assets::write(&dir.join(path), &fill(text))?;
    }
    if args.lang == Language::C {
        // The kit, for the native tests (`make test`); `hume build` uses its own copy.
        for (name, text) in assets::C_KIT {
            if !name.starts_with("projection") && *name != "hume_guest.c" {
                assets::write(&dir.join("hume").join(name), text)?;
            }
        }
    }
    assets::write(&dir.join("README.md"), &fill(README))?;
    eprintln!(
        "created the {language} plugin project {} (test: `{test}`, build: `hume build {}`)",
        dir.display(),
        dir.display()
    );
    println!("{}", dir.display());
    Ok(std::process::ExitCode::SUCCESS)
}

/// A projection name usable as a crate, package and file name.
fn check_name(name: &str) -> anyhow::Result<()> {
    let mut chars = name.chars();
    let ok = chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        && name.len() <= 64;
    if !ok {
        bail!(
            "`{name}` is not a usable projection name: use 1-64 letters, digits, `-` or `_`, \
             starting with a letter (nothing was written)"
        );
    }
    Ok(())
}

/// The `hume-guest` crate a Rust project depends on.
fn rust_sdk(given: Option<&Path>) -> anyhow::Result<PathBuf> {
    let candidate = match given {
        Some(path) => path.to_path_buf(),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../guest-sdk"),
    };
    let manifest = candidate.join("Cargo.toml");
    let is_sdk = std::fs::read_to_string(&manifest)
        .map(|text| text.contains("name = \"hume-guest\""))
        .unwrap_or(false);
    if !is_sdk {
        bail!(
            "{} is not the hume-guest crate: pass --sdk <path to guest-sdk/ in the Hume \
             repository> (nothing was written)",
            candidate.display()
        );
    }
    candidate
        .canonicalize()
        .with_context(|| format!("cannot resolve {}", candidate.display()))
}
