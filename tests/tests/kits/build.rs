//! `hume build` on what goes wrong: an unrecognisable project, a missing
//! toolchain, a compile error. Each says what is wrong and what to do, and
//! writes no component.

use std::path::Path;
use std::process::{Command, Output};

use crate::common::*;

/// `hume build DIR -o OUT` with extra environment.
fn build_with(dir: &Path, out: &Path, env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(hume_tests::hume_bin());
    cmd.args(["build", dir.to_str().unwrap(), "-o", out.to_str().unwrap()])
        .env("NO_COLOR", "1");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run hume build")
}

fn copy_example(example: &str, to: &Path) {
    let from = hume_tests::workspace_root()
        .join("example-plugins")
        .join(example);
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() && path.extension().is_none_or(|x| x != "wasm") {
            std::fs::copy(&path, to.join(path.file_name().unwrap())).unwrap();
        }
    }
}

#[test]
fn a_directory_without_a_known_project_is_refused() {
    let tmp = hume_tests::temp_dir();
    std::fs::write(tmp.path().join("notes.txt"), "not a plugin").unwrap();
    let out_file = tmp.path().join("out.wasm");
    let out = build_with(tmp.path(), &out_file, &[]);
    assert!(!out.status.success());
    let err = stderr(&out);
    for hint in ["Cargo.toml", "app.py", "package.json", "*.c", "hume new"] {
        assert!(err.contains(hint), "the error should mention {hint}: {err}");
    }
    assert!(!out_file.exists(), "no component written");

    let out = build_with(&tmp.path().join("missing"), &out_file, &[]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("cannot open the project directory"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_missing_toolchain_is_named_with_how_to_install_it() {
    let tmp = hume_tests::temp_dir();
    let empty_tools = tmp.path().join("no-tools");
    std::fs::create_dir(&empty_tools).unwrap();
    // Only the system's own binaries: no venv, no jco, no wasm-tools.
    let env = [
        ("HUME_TOOLS", empty_tools.to_str().unwrap()),
        ("PATH", "/usr/bin:/bin"),
    ];
    for (example, tool) in [
        ("kv-python", "componentize-py"),
        ("kv-js", "jco"),
        ("kv-c", "wasm-tools"),
    ] {
        let project = tmp.path().join(example);
        copy_example(example, &project);
        let out_file = tmp.path().join(format!("{example}.wasm"));
        let out = build_with(&project, &out_file, &env);
        assert!(
            !out.status.success(),
            "{example} must not build without {tool}"
        );
        let err = stderr(&out);
        assert!(
            err.contains(tool),
            "{example}: the error should name {tool}: {err}"
        );
        assert!(
            err.contains("scripts/setup-kits.sh"),
            "{example}: the error should say how to install: {err}"
        );
        assert!(!out_file.exists(), "{example}: no component written");
    }
}

#[test]
fn compile_errors_are_shown_and_nothing_is_written() {
    let tmp = hume_tests::temp_dir();
    let cases = [
        (
            "kv-c",
            "kv.c",
            "this is not C;\n",
            "clang (wasm32-wasi) failed",
        ),
        (
            "kv-python",
            "app.py",
            "def broken(:\n",
            "componentize-py failed",
        ),
        (
            "kv-js",
            "app.js",
            "export default {{{;\n",
            "jco componentize failed",
        ),
    ];
    for (example, file, garbage, step) in cases {
        let project = tmp.path().join(example);
        copy_example(example, &project);
        let source = project.join(file);
        let text = std::fs::read_to_string(&source).unwrap();
        std::fs::write(&source, format!("{text}\n{garbage}")).unwrap();
        let out_file = tmp.path().join(format!("{example}.wasm"));
        let out = build_with(&project, &out_file, &[]);
        assert!(
            !out.status.success(),
            "{example} with a syntax error must not build"
        );
        let err = stderr(&out);
        assert!(
            err.contains(step),
            "{example}: the error should name the failing step `{step}`: {err}"
        );
        assert!(!out_file.exists(), "{example}: no component written");
    }
}

#[test]
fn a_python_project_without_app_py_is_explained() {
    let tmp = hume_tests::temp_dir();
    std::fs::write(
        tmp.path().join("pyproject.toml"),
        "[project]\nname = \"x\"\n",
    )
    .unwrap();
    let out_file = tmp.path().join("x.wasm");
    let out = build_with(tmp.path(), &out_file, &[]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("has no app.py"), "{}", stderr(&out));
    assert!(!out_file.exists());
}

#[test]
fn every_non_rust_example_builds_to_a_valid_component() {
    for (logic, lang) in [
        ("kv", Lang::C),
        ("kv", Lang::Python),
        ("kv", Lang::Js),
        ("bank", Lang::Python),
        ("bank", Lang::Js),
    ] {
        let wasm = example_plugin(logic, lang);
        let out = hume(&["validate", "--json", wasm.to_str().unwrap()]);
        assert!(out.status.success(), "{}", stderr(&out));
        let info: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("validate --json");
        assert!(
            info.to_string().contains(&format!("\"{logic}\"")),
            "{logic} in {}: {info}",
            lang.name()
        );
    }
}

#[test]
fn every_rust_example_builds_with_hume_build() {
    let tmp = hume_tests::temp_dir();
    for example in ["kv", "counter", "bank"] {
        let dir = hume_tests::workspace_root()
            .join("example-plugins")
            .join(example);
        let out_file = tmp.path().join(format!("{example}.wasm"));
        let out = build_with(&dir, &out_file, &[]);
        assert!(
            out.status.success(),
            "hume build {example}: {}",
            stderr(&out)
        );
        assert!(
            stderr(&out).contains("built rust plugin"),
            "{}",
            stderr(&out)
        );
        let validate = hume(&["validate", out_file.to_str().unwrap()]);
        assert!(validate.status.success(), "{}", stderr(&validate));
        assert!(stdout(&validate).contains(example), "{}", stdout(&validate));
    }
}
