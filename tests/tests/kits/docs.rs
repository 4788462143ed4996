//! Docs that resolve: every relative link of the repository's Markdown
//! points at a file in the repository, `hume new` scaffolds link nothing
//! that does not exist, the strict-mode error names the flag
//! (`--no-strict`), and `replay` and `deploy` spell the limit flags alike.

use std::path::{Path, PathBuf};

use crate::common::*;

/// The link targets `[text](target)` of a Markdown text.
fn links(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find("](") {
        rest = &rest[i + 2..];
        if let Some(end) = rest.find(')') {
            out.push(rest[..end].to_string());
        }
    }
    out
}

/// The broken links of the Markdown file `path`: relative ones to a file
/// that does not exist, and remote ones to nothing in particular.
fn broken(path: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap();
    links(&text)
        .into_iter()
        .filter(|target| {
            if target.starts_with('#') {
                return false;
            }
            if target.starts_with("http://") || target.starts_with("https://") {
                // A site's bare root is not a reference to anything.
                return target.trim_end_matches('/').matches('/').count() < 3;
            }
            let file = target.split('#').next().unwrap();
            !path.parent().unwrap().join(file).exists()
        })
        .collect()
}

fn markdown_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if path.is_dir() {
            if !name.starts_with('.') && !matches!(name.as_str(), "target" | "node_modules") {
                markdown_files(&path, out);
            }
        } else if name.ends_with(".md") && !path.to_string_lossy().contains("/templates/") {
            out.push(path);
        }
    }
}

#[test]
fn repository_markdown_links_only_files_in_the_repository() {
    let root = hume_tests::workspace_root();
    assert!(
        root.join("docs/DESIGN.md").is_file(),
        "the design is in docs/"
    );
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    assert!(
        readme.contains("](docs/DESIGN.md)"),
        "README links the design"
    );
    let mut files = Vec::new();
    markdown_files(root, &mut files);
    assert!(files.len() > 5, "{files:?}");
    for file in files {
        let bad = broken(&file);
        assert!(bad.is_empty(), "{}: broken links {bad:?}", file.display());
    }
}

#[test]
fn scaffolds_link_nothing_that_does_not_exist() {
    for lang in Lang::ALL {
        let tmp = hume_tests::temp_dir();
        let out = hume_in(Some(tmp.path()), &["new", "docs", "--lang", lang.name()]);
        assert!(out.status.success(), "hume new: {}", stderr(&out));
        let readme = tmp.path().join("docs/README.md");
        let bad = broken(&readme);
        assert!(bad.is_empty(), "{}: broken links {bad:?}", lang.name());
        let text = std::fs::read_to_string(&readme).unwrap();
        assert!(!text.contains("github.com"), "{text}");
    }
}

#[test]
fn the_strict_error_names_the_flag_and_limit_flags_match() {
    let tmp = hume_tests::temp_dir();
    let events = tmp.path().join("e.ndjson");
    std::fs::write(
        &events,
        "{\"stream\":\"s\",\"kind\":\"nope\",\"data\":{}}\n",
    )
    .unwrap();
    let out = hume(&[
        "replay",
        hume_tests::KV_WASM,
        "--events",
        events.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("--no-strict") && !err.contains("strict=false"),
        "{err}"
    );

    let replay = stdout(&hume(&["replay", "--help"]));
    let deploy = stdout(&hume(&["deploy", "--help"]));
    for flag in ["--call-timeout <MS>", "--max-memory <MAX_MEMORY>"] {
        assert!(replay.contains(flag), "replay {flag}:\n{replay}");
        assert!(deploy.contains(flag), "deploy {flag}:\n{deploy}");
    }
    // The old spelling still works.
    let out = hume(&[
        "replay",
        hume_tests::KV_WASM,
        "--events",
        events.to_str().unwrap(),
        "--call-timeout-ms",
        "3000",
        "--max-memory",
        "32M",
        "--no-strict",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn flags_say_where_they_apply() {
    let out = hume(&["read", "--category", "cart-*"]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("--category takes the prefix itself") && err.contains("--category cart-`"),
        "{err}"
    );
    // --url only on commands that talk to a server.
    let out = hume(&[
        "--url",
        "http://127.0.0.1:9",
        "validate",
        hume_tests::KV_WASM,
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("--url is the address of the server"),
        "{}",
        stderr(&out)
    );
    let out = hume(&["validate", hume_tests::KV_WASM]);
    assert!(out.status.success(), "{}", stderr(&out));
}
