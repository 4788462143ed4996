//! Metrics of the projection runtime (Prometheus names) and the recorder
//! behind `GET /metrics`.
//!
//! | metric | type | labels |
//! |---|---|---|
//! | `hume_projection_events_applied_total` | counter | projection |
//! | `hume_projection_events_skipped_total` | counter | projection |
//! | `hume_projection_faults_total` | counter | projection |
//! | `hume_projection_lag` | gauge (log positions) | projection |
//! | `hume_projection_snapshots_total` | counter | projection |
//! | `hume_projection_snapshot_duration_seconds` | summary | - |
//! | `hume_projection_hibernations_total` | counter | - |
//! | `hume_projection_wakes_total` | counter | - |
//! | `hume_live_instances` | gauge | - |
//! | `hume_plugin_call_duration_seconds` | summary | call |
//! | `hume_projection_partitions` | gauge | projection |
//! | `hume_projection_partition_worker_events_total` | counter | projection, worker |
//! | `hume_projection_partition_worker_busy_microseconds_total` | counter | projection, worker |
//!
//! Durations are summaries over all projections (a quantile sketch per
//! projection would cost kilobytes each with thousands of projections), and
//! hibernations and wakes are totals (two series fewer per projection for a
//! server with 100,000 of them); other counts and lag are per projection.
//!
//! Tracing spans/events carry the seed's telemetry names:
//! `hume.projection.init`, `hume.projection.catch_up.start` / `.stop`,
//! `hume.projection.snapshot`, `hume.projection.evolve`,
//! `hume.projection.replay`, `hume.projection.on_caught_up`.

use std::sync::OnceLock;
use std::time::Duration;

use metrics::{Counter, Gauge, Histogram};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

/// Handles of one projection's metrics, resolved once.
pub(crate) struct ActorMetrics {
    pub applied: Counter,
    pub skipped: Counter,
    pub faults: Counter,
    pub lag: Gauge,
    pub snapshots: Counter,
    pub snapshot_duration: Histogram,
    pub hibernations: Counter,
    pub wakes: Counter,
    calls: [(&'static str, Histogram); 4],
}

impl ActorMetrics {
    pub fn new(name: &str) -> ActorMetrics {
        let label = name.to_string();
        let call = |c: &'static str| {
            (
                c,
                metrics::histogram!("hume_plugin_call_duration_seconds", "call" => c),
            )
        };
        ActorMetrics {
            applied: metrics::counter!("hume_projection_events_applied_total", "projection" => label.clone()),
            skipped: metrics::counter!("hume_projection_events_skipped_total", "projection" => label.clone()),
            faults: metrics::counter!("hume_projection_faults_total", "projection" => label.clone()),
            lag: metrics::gauge!("hume_projection_lag", "projection" => label.clone()),
            snapshots: metrics::counter!("hume_projection_snapshots_total", "projection" => label.clone()),
            snapshot_duration: metrics::histogram!("hume_projection_snapshot_duration_seconds"),
            hibernations: metrics::counter!("hume_projection_hibernations_total"),
            wakes: metrics::counter!("hume_projection_wakes_total"),
            calls: [
                call("handle-events"),
                call("snapshot"),
                call("query"),
                call("on-caught-up"),
            ],
        }
    }

    /// Record how long a plugin call took.
    pub fn call(&self, call: &str, took: Duration) {
        match self.calls.iter().find(|(c, _)| *c == call) {
            Some((_, h)) => h.record(took.as_secs_f64()),
            None => {
                metrics::histogram!("hume_plugin_call_duration_seconds", "call" => call.to_string())
                    .record(took.as_secs_f64())
            }
        }
    }
}

static PROMETHEUS: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Install the process-wide Prometheus recorder (once; later calls return the
/// same handle). `None` when another recorder was installed first.
pub fn install_metrics() -> Option<PrometheusHandle> {
    PROMETHEUS
        .get_or_init(|| {
            let handle = PrometheusBuilder::new().install_recorder().ok()?;
            // Fold recorded samples into the summaries now and then, so
            // memory stays bounded even when nobody scrapes /metrics.
            let upkeep = handle.clone();
            std::thread::Builder::new()
                .name("metrics-upkeep".into())
                .spawn(move || loop {
                    std::thread::sleep(Duration::from_secs(5));
                    upkeep.run_upkeep();
                })
                .ok()?;
            Some(handle)
        })
        .clone()
}

/// The Prometheus text of every metric, or `None` without a recorder.
pub fn render_metrics() -> Option<String> {
    PROMETHEUS
        .get()
        .and_then(|h| h.as_ref())
        .map(|h| h.render())
}

/// `text` (Prometheus exposition) without the series of projections that
/// are no longer deployed: a line labelled `projection="NAME"` is kept only
/// while `deployed(NAME)`. (The recorder keeps every series it has seen;
/// an undeployed projection's would otherwise stay forever.)
pub fn without_undeployed(text: &str, deployed: impl Fn(&str) -> bool) -> String {
    const LABEL: &str = "projection=\"";
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        let keep = match line.find(LABEL) {
            Some(i) if !line.starts_with('#') => {
                let rest = &line[i + LABEL.len()..];
                rest.find('"').is_none_or(|end| deployed(&rest[..end]))
            }
            _ => true,
        };
        if keep {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod filter_tests {
    #[test]
    fn drops_only_the_series_of_undeployed_projections() {
        let text = "# TYPE hume_projection_lag gauge\nhume_projection_lag{projection=\"a\"} 1\nhume_projection_lag{projection=\"gone\"} 2\nhume_log_head 3\n";
        let kept = super::without_undeployed(text, |n| n == "a");
        assert_eq!(
            kept,
            "# TYPE hume_projection_lag gauge\nhume_projection_lag{projection=\"a\"} 1\nhume_log_head 3\n"
        );
    }
}
