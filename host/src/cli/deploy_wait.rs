//! What `hume deploy` shows while it works: a spinner while the plugin is
//! uploaded and compiled, and with `--wait` a progress bar while the
//! projection catches up (events/s), until it is caught up or faulted.
//! Both draw on stderr, only on a terminal; without one, only the
//! outcome is printed.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::bail;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::Value;

use super::client::Client;

/// How often `--wait` looks at the status.
const POLL: Duration = Duration::from_millis(200);

/// A spinner with `message` on stderr (hidden when stderr is no terminal).
pub fn spinner(message: String) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
    bar.set_style(
        ProgressStyle::with_template("{spinner} {msg} {elapsed}").expect("valid template"),
    );
    bar.set_message(message);
    bar.enable_steady_tick(Duration::from_millis(100));
    bar
}

/// Which status `--wait` follows: a new version until it is swapped in, or
/// the projection itself.
fn watched<'a>(status: &'a Value, hash: &str, building: bool) -> Result<&'a Value, String> {
    if !building {
        return Ok(status);
    }
    match status.get("pending").filter(|p| !p.is_null()) {
        // Still building (also when it is the same plugin with other
        // streams: the pending one is the new version).
        Some(p) if p["plugin_hash"] == hash => Ok(p),
        None if status["plugin_hash"] == hash => Ok(status),
        _ => Err(format!(
            "the new version ({}) is no longer being built: another deploy replaced it",
            &hash[..hash.len().min(12)]
        )),
    }
}

/// Is the new version the one serving reads?
fn swapped_in(status: &Value, hash: &str) -> bool {
    status["plugin_hash"] == hash && status.get("pending").is_none_or(Value::is_null)
}

/// Wait until projection `name` running plugin `hash` is caught up (exit
/// 0) or faulted (an error with the fault), or `timeout` passes.
pub async fn wait(
    client: &Client,
    name: &str,
    hash: &str,
    building: bool,
    timeout: Option<Duration>,
) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
    bar.set_style(
        ProgressStyle::with_template("catching up {bar:30} {pos}/{len} {msg}")
            .expect("valid template"),
    );
    loop {
        let status: Value = client.get_json(&["projections", name], &[]).await?;
        let s = match watched(&status, hash, building) {
            Ok(s) => s,
            Err(why) => {
                bar.finish_and_clear();
                bail!("{name}: {why}");
            }
        };
        if s["state"] == "faulted" {
            bar.finish_and_clear();
            let f = &s["fault"];
            bail!(
                "{name}: faulted at position {} ({}): {}\n  see `hume logs {name}`; after a fix \
                 `hume resume {name}`, or step over the event with `hume skip {name}`",
                f["position"],
                f["kind"].as_str().unwrap_or("?"),
                f["error"].as_str().unwrap_or("?")
            );
        }
        let (head, scanned) = (
            s["head"].as_u64().unwrap_or(0),
            s["scanned"].as_u64().unwrap_or(0),
        );
        let settled = matches!(
            s["state"].as_str(),
            Some("running" | "hibernated" | "stopped")
        );
        let swapped = !building || swapped_in(&status, hash);
        if settled && s["lag"] == 0 && swapped {
            bar.finish_and_clear();
            println!(
                "{name}: caught up at position {scanned} (offset {}) in {:.1} s",
                s["offset"],
                started.elapsed().as_secs_f64()
            );
            return Ok(ExitCode::SUCCESS);
        }
        if timeout.is_some_and(|t| started.elapsed() >= t) {
            bar.finish_and_clear();
            bail!(
                "{name}: not caught up after {:.0} s (at {scanned} of {head}, {}); it goes on in \
                 the background: `hume status {name}`",
                started.elapsed().as_secs_f64(),
                s["state"].as_str().unwrap_or("?")
            );
        }
        bar.set_length(head);
        bar.set_position(scanned.min(head));
        bar.set_message(format!(
            "{:.0} events/s",
            s["events_per_sec"].as_f64().unwrap_or(0.0)
        ));
        tokio::time::sleep(POLL).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_new_version_is_followed_until_it_is_swapped_in() {
        let building = json!({"plugin_hash": "old", "pending": {"plugin_hash": "new", "state": "catching_up"}});
        assert_eq!(
            watched(&building, "new", true).unwrap()["state"],
            "catching_up"
        );
        let swapped = json!({"plugin_hash": "new", "state": "running"});
        assert_eq!(watched(&swapped, "new", true).unwrap()["state"], "running");
        let replaced = json!({"plugin_hash": "old", "pending": {"plugin_hash": "other"}});
        assert!(watched(&replaced, "new", true)
            .unwrap_err()
            .contains("replaced"));
        let same_plugin = json!({"plugin_hash": "new", "pending": {"plugin_hash": "new", "state": "catching_up"}});
        assert_eq!(
            watched(&same_plugin, "new", true).unwrap()["state"],
            "catching_up"
        );
        assert!(!swapped_in(&same_plugin, "new"));
        assert!(swapped_in(&swapped, "new"));
        let fresh = json!({"plugin_hash": "new", "state": "starting"});
        assert_eq!(watched(&fresh, "new", false).unwrap()["state"], "starting");
    }
}
