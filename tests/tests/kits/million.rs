//! The default limits fit every example plugin in every language (issue
//! 14, item 5): `hume replay` with no limit flag folds 1,000,000 events of
//! kv (20,000 keys) and of bank (20,000 accounts) through each. Under the
//! old 64 MiB default the JavaScript examples ran out of memory after about
//! 63,000 (kv) and 83,000 (bank) events.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::{example_plugin, Lang};

const EVENTS: u64 = 1_000_000;
const KEYS: u64 = 20_000;

/// xorshift: the same events on every run.
fn next(seed: &mut u64) -> u64 {
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    *seed
}

fn write_events(path: &Path, logic: &str) {
    let mut out = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    for i in 1..=EVENTS {
        let k = next(&mut seed) % KEYS;
        let line = match logic {
            "kv" if i % 10 == 0 => {
                format!(
                    r#"{{"stream":"kv-{}","kind":"remove","data":{{"key":"key-{k}"}}}}"#,
                    k % 100
                )
            }
            "kv" => format!(
                r#"{{"stream":"kv-{}","kind":"add","data":{{"key":"key-{k}","value":{{"n":{},"tag":"item-{i}"}}}}}}"#,
                k % 100,
                next(&mut seed) % 1_000_000
            ),
            _ if i <= KEYS => {
                format!(r#"{{"stream":"account-{i}","kind":"opened","data":{{"account":"{i}"}}}}"#)
            }
            _ => format!(
                r#"{{"stream":"account-{a}","kind":"deposited","data":{{"account":"{a}","amount":{}}}}}"#,
                1 + next(&mut seed) % 999,
                a = 1 + k
            ),
        };
        writeln!(out, "{line}").unwrap();
    }
    out.flush().unwrap();
}

/// Replay `events` through `plugin` with the default limits; the
/// replayed offset, or the error.
fn replay(plugin: &Path, events: &Path) -> Result<u64, String> {
    let out = Command::new(hume_tests::hume_bin())
        .args(["replay", plugin.to_str().unwrap(), "--events"])
        .arg(events)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    let value: serde_json::Value =
        serde_json::from_slice(&out.stdout).map_err(|e| e.to_string())?;
    value["offset"]
        .as_u64()
        .ok_or_else(|| format!("no offset in {value}"))
}

#[test]
fn every_example_folds_a_million_events_within_the_default_limits() {
    let dir = hume_tests::temp_dir();
    let files: Vec<(&str, PathBuf)> = ["kv", "bank"]
        .into_iter()
        .map(|logic| {
            let path = dir.path().join(format!("{logic}.ndjson"));
            write_events(&path, logic);
            (logic, path)
        })
        .collect();
    let mut runs: Vec<(String, PathBuf, PathBuf)> = Vec::new();
    for (logic, events) in &files {
        for lang in Lang::ALL {
            if *logic == "bank" && lang == Lang::C {
                continue; // no C bank example
            }
            let plugin = example_plugin(logic, lang);
            runs.push((format!("{logic} ({})", lang.name()), plugin, events.clone()));
        }
    }
    // Two at a time: the machine has two cores.
    let failures: Vec<String> = runs
        .chunks(2)
        .flat_map(|pair| {
            let handles: Vec<_> = pair
                .iter()
                .cloned()
                .map(|(what, plugin, events)| {
                    std::thread::spawn(move || match replay(&plugin, &events) {
                        Ok(EVENTS) => None,
                        Ok(offset) => Some(format!("{what}: stopped at offset {offset}")),
                        Err(err) => Some(format!("{what}: {err}")),
                    })
                })
                .collect();
            handles
                .into_iter()
                .filter_map(|h| h.join().unwrap())
                .collect::<Vec<_>>()
        })
        .collect();
    assert!(failures.is_empty(), "{failures:#?}");
}
