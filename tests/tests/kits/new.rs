//! `hume new NAME --lang L` for every language: the scaffold's own test
//! passes in the language's usual runner, `hume build` builds it as is, and
//! `hume replay` folds events through the component. Bad names and occupied
//! directories are refused with nothing written.

use std::path::Path;
use std::process::Command;

use crate::common::*;

fn run(dir: &Path, program: &str, args: &[&str]) -> std::process::Output {
    Command::new(program)
        .args(args)
        .current_dir(dir)
        .env_remove("PYTHONPATH")
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"))
}

fn scaffold(lang: Lang) {
    let tmp = hume_tests::temp_dir();
    let name = format!("tally-{}", lang.name());
    let out = hume_in(Some(tmp.path()), &["new", &name, "--lang", lang.name()]);
    assert!(out.status.success(), "hume new: {}", stderr(&out));
    let dir = tmp.path().join(&name);
    assert_eq!(
        stdout(&out).trim(),
        name,
        "hume new prints the project directory"
    );
    assert!(dir.join("README.md").is_file());

    // 1. The scaffold's own test passes in its language's runner.
    let (program, args): (&str, Vec<&str>) = match lang {
        Lang::Rust => {
            // Resolve the same dependency versions as this workspace.
            std::fs::copy(
                hume_tests::workspace_root().join("Cargo.lock"),
                dir.join("Cargo.lock"),
            )
            .unwrap();
            ("cargo", vec!["test", "--quiet"])
        }
        Lang::Python => ("python3", vec!["-m", "unittest", "-v"]),
        Lang::Js => ("node", vec!["--test"]),
        Lang::C => ("make", vec!["test"]),
    };
    let test = run(&dir, program, &args);
    let report = format!("{}{}", stdout(&test), stderr(&test));
    assert!(
        test.status.success(),
        "{program} {args:?} in the scaffold failed:\n{report}"
    );
    let passed = match lang {
        Lang::Rust => report.contains("2 passed"),
        Lang::Python => report.contains("Ran 2 tests") && report.contains("OK"),
        Lang::Js => report.contains("# pass 2"),
        Lang::C => report.contains("8 passed, 0 failed"),
    };
    assert!(
        passed,
        "the scaffold's tests did not all run and pass:\n{report}"
    );

    // 2. It builds as is, to <dir>/<name>.wasm by default.
    let built = hume(&["build", dir.to_str().unwrap()]);
    assert!(
        built.status.success(),
        "hume build: {}{}",
        stdout(&built),
        stderr(&built)
    );
    let wasm = dir.join(format!("{name}.wasm"));
    assert_eq!(stdout(&built).trim(), wasm.to_str().unwrap());

    // 3. The component works: describe and replay.
    let validate = hume(&["validate", wasm.to_str().unwrap()]);
    assert!(validate.status.success(), "{}", stderr(&validate));
    assert!(stdout(&validate).contains(&name), "{}", stdout(&validate));
    let events = tmp.path().join("events.ndjson");
    std::fs::write(
        &events,
        "{\"stream\":\"s\",\"kind\":\"incremented\",\"data\":{\"by\":2}}\n\
         {\"stream\":\"s\",\"kind\":\"incremented\",\"data\":{\"by\":40}}\n",
    )
    .unwrap();
    let replay = hume(&[
        "replay",
        wasm.to_str().unwrap(),
        "--events",
        events.to_str().unwrap(),
    ]);
    assert!(replay.status.success(), "{}", stderr(&replay));
    let got: serde_json::Value = serde_json::from_str(&stdout(&replay)).unwrap();
    assert_eq!(
        got,
        serde_json::json!({"offset": 2, "state": {"count": 42}})
    );

    // 4. A refused event is reported as the plugin's rejection.
    std::fs::write(
        &events,
        "{\"stream\":\"s\",\"kind\":\"incremented\",\"data\":{\"by\":0}}\n",
    )
    .unwrap();
    let replay = hume(&[
        "replay",
        wasm.to_str().unwrap(),
        "--events",
        events.to_str().unwrap(),
    ]);
    assert!(!replay.status.success());
    assert!(stderr(&replay).contains("rejected"), "{}", stderr(&replay));
}

#[test]
fn new_python_project_tests_builds_and_replays() {
    scaffold(Lang::Python);
}

#[test]
fn new_js_project_tests_builds_and_replays() {
    scaffold(Lang::Js);
}

#[test]
fn new_c_project_tests_builds_and_replays() {
    scaffold(Lang::C);
}

#[test]
fn new_rust_project_tests_builds_and_replays() {
    scaffold(Lang::Rust);
}

#[test]
fn new_refuses_bad_names_and_occupied_directories() {
    let tmp = hume_tests::temp_dir();
    for bad in ["9lives", "has space", "../escape", "a/b", ""] {
        let out = hume_in(Some(tmp.path()), &["new", bad, "--lang", "python"]);
        assert!(!out.status.success(), "`{bad}` should be refused");
        assert!(
            stderr(&out).contains("not a usable projection name"),
            "{}",
            stderr(&out)
        );
    }
    assert_eq!(
        std::fs::read_dir(tmp.path()).unwrap().count(),
        0,
        "nothing was written"
    );

    std::fs::create_dir(tmp.path().join("taken")).unwrap();
    std::fs::write(tmp.path().join("taken/keep.txt"), "mine").unwrap();
    let out = hume_in(Some(tmp.path()), &["new", "taken", "--lang", "js"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("already exists"), "{}", stderr(&out));
    let left: Vec<_> = std::fs::read_dir(tmp.path().join("taken"))
        .unwrap()
        .collect();
    assert_eq!(left.len(), 1, "the occupied directory is untouched");

    let out = hume_in(Some(tmp.path()), &["new", "x", "--lang", "cobol"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("rust"),
        "lists the languages: {}",
        stderr(&out)
    );

    let out = hume_in(
        Some(tmp.path()),
        &[
            "new",
            "r",
            "--lang",
            "rust",
            "--sdk",
            tmp.path().to_str().unwrap(),
        ],
    );
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("not the hume-guest crate"),
        "{}",
        stderr(&out)
    );
    assert!(!tmp.path().join("r").exists());
}
