//! The example plugins' own unit tests, and the kits' (canonical JSON, the
//! shared number vectors of `guest-sdk/testdata/numbers.json`), in each
//! language's usual runner: `python3 -m unittest` (Python), `node --test`
//! (JavaScript), cc (C, natively). The Rust examples' and SDK's tests run
//! with `cargo test`.

use std::path::Path;
use std::process::Command;

fn run_in(example: &str, program: &str, args: &[&str], passed: &str) {
    run_in_dir(
        &hume_tests::workspace_root()
            .join("example-plugins")
            .join(example),
        program,
        args,
        passed,
    );
}

fn run_in_dir(dir: &Path, program: &str, args: &[&str], passed: &str) {
    let example = dir.display();
    let out = Command::new(program)
        .args(args)
        .current_dir(dir)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env_remove("PYTHONPATH")
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program} in {}: {e}", dir.display()));
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "{program} {args:?} in {example} failed:\n{report}"
    );
    assert!(
        report.contains(passed),
        "{example}: expected `{passed}` in:\n{report}"
    );
}

#[test]
fn python_examples_pass_their_unit_tests() {
    run_in("kv-python", "python3", &["-m", "unittest", "-v"], "OK");
    run_in("bank-python", "python3", &["-m", "unittest", "-v"], "OK");
}

#[test]
fn js_examples_pass_their_unit_tests() {
    run_in("kv-js", "node", &["--test"], "# fail 0");
    run_in("bank-js", "node", &["--test"], "# fail 0");
}

/// Compile `sources` (with the C kit's hume_json.c) natively, run the
/// binary with `args`, expect "N passed, 0 failed".
fn c_test(sources: &[&str], args: &[&str]) {
    let dir = hume_tests::temp_dir();
    let bin = dir.path().join("test");
    // Build outside the source tree, the binary elsewhere.
    let root = hume_tests::workspace_root();
    let kit = root.join("guest-sdk/c");
    let cc = Command::new("cc")
        .args([
            "-O1",
            "-Wall",
            "-Wextra",
            "-Werror",
            "-Wno-unused-parameter",
            "-Wno-unused-function",
        ])
        .arg(format!("-I{}", kit.display()))
        .args(sources.iter().map(|s| root.join(s)))
        .arg(kit.join("hume_json.c"))
        .args(["-lm", "-o"])
        .arg(&bin)
        .output()
        .expect("run cc");
    assert!(
        cc.status.success(),
        "cc failed: {}",
        String::from_utf8_lossy(&cc.stderr)
    );
    let out = Command::new(&bin)
        .args(args)
        .output()
        .expect("run the test");
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{report}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(report.contains(" passed, 0 failed"), "{report}");
}

#[test]
fn c_example_passes_its_unit_tests() {
    c_test(
        &[
            "example-plugins/kv-c/kv.c",
            "example-plugins/kv-c/test_kv.c",
        ],
        &[],
    );
}

#[test]
fn python_kit_passes_its_unit_tests() {
    let dir = hume_tests::workspace_root().join("guest-sdk/python");
    run_in_dir(
        &dir,
        "python3",
        &["-m", "unittest", "-v", "test_hume_guest"],
        "OK",
    );
}

#[test]
fn js_kit_passes_its_unit_tests() {
    let dir = hume_tests::workspace_root().join("guest-sdk/js");
    run_in_dir(&dir, "node", &["--test"], "# fail 0");
    // The reviver path the component takes (StarlingMonkey's JSON.parse
    // gives revivers the source text); Node.js 20 has it behind a flag.
    let flag = "--harmony-json-parse-with-source";
    let has_flag = Command::new("node")
        .args([flag, "-e", "0"])
        .status()
        .is_ok_and(|s| s.success());
    if has_flag {
        run_in_dir(&dir, "node", &[flag, "--test"], "# fail 0");
    }
}

#[test]
fn c_kit_passes_its_unit_tests() {
    let vectors = hume_tests::workspace_root().join("guest-sdk/testdata/numbers.json");
    c_test(
        &["guest-sdk/c/test_hume_json.c"],
        &[vectors.to_str().unwrap()],
    );
}
