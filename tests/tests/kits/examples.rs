//! The example plugins' own unit tests, in each language's usual runner:
//! `python3 -m unittest` (Python), `node --test` (JavaScript), `make test`
//! (C, natively with cc). The Rust examples' tests run with `cargo test`.

use std::process::Command;

fn run_in(example: &str, program: &str, args: &[&str], passed: &str) {
    let dir = hume_tests::workspace_root()
        .join("example-plugins")
        .join(example);
    let out = Command::new(program)
        .args(args)
        .current_dir(&dir)
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

#[test]
fn c_example_passes_its_unit_tests() {
    let dir = hume_tests::temp_dir();
    let bin = dir.path().join("test_kv");
    // Build outside the source tree: `make test_kv` with the binary elsewhere.
    let kit = hume_tests::workspace_root().join("guest-sdk/c");
    let src = hume_tests::workspace_root().join("example-plugins/kv-c");
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
        .arg(src.join("kv.c"))
        .arg(src.join("test_kv.c"))
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
    let out = Command::new(&bin).output().expect("run test_kv");
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{report}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(report.contains(" passed, 0 failed"), "{report}");
}
