//! What a partitioned projection's status and `/metrics` show of its
//! folding: events and busy time per worker, and the partitions that took
//! the most fold time since the server started (kept exact cheaply: a
//! partition's total only grows, so the top list is updated from each
//! step's folds without scanning every partition).

use std::collections::HashMap;

use metrics::{Counter, Gauge};
use serde::{Deserialize, Serialize};

/// Partitions listed as the slowest.
pub const SLOWEST: usize = 5;

/// One worker's figures since the server started.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct WorkerFigures {
    /// Worker number (0-based).
    pub worker: u32,
    /// Events it folded.
    pub events: u64,
    /// Time it spent folding, ms.
    pub busy_ms: u64,
    /// `events` per second of `busy_ms`.
    pub events_per_sec: u64,
}

/// One of the partitions that took the most fold time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct SlowPartition {
    /// The key.
    pub partition: String,
    /// Its fold time since the server started, microseconds.
    pub fold_us: u64,
}

/// One fold of one partition's group, as a worker reports it.
pub(crate) struct Folded<'a> {
    pub key: &'a str,
    pub worker: usize,
    pub events: u64,
    pub took_us: u64,
}

/// The figures, and the projection's metrics.
pub(crate) struct Stats {
    fold_us: HashMap<String, u64>,
    slowest: Vec<SlowPartition>,
    workers: Vec<(u64, u64)>,
    metrics: Option<Metrics>,
}

struct Metrics {
    name: String,
    partitions: Gauge,
    workers: Vec<(Counter, Counter)>,
}

impl Stats {
    /// Figures for projection `name`; `metrics`: also record them in the
    /// process's metrics (the projection label is `name`).
    pub fn new(name: &str, metrics: bool) -> Stats {
        Stats {
            fold_us: HashMap::new(),
            slowest: Vec::new(),
            workers: Vec::new(),
            metrics: metrics.then(|| Metrics {
                name: name.to_string(),
                partitions: metrics::gauge!("hume_projection_partitions", "projection" => name.to_string()),
                workers: Vec::new(),
            }),
        }
    }

    /// Count one fold.
    pub fn record(&mut self, f: Folded<'_>) {
        if self.workers.len() <= f.worker {
            self.workers.resize(f.worker + 1, (0, 0));
        }
        let w = &mut self.workers[f.worker];
        w.0 += f.events;
        w.1 += f.took_us;
        if let Some(m) = &mut self.metrics {
            while m.workers.len() <= f.worker {
                let worker = m.workers.len().to_string();
                let label = m.name.clone();
                m.workers.push((
                    metrics::counter!("hume_projection_partition_worker_events_total", "projection" => label.clone(), "worker" => worker.clone()),
                    metrics::counter!("hume_projection_partition_worker_busy_microseconds_total", "projection" => label, "worker" => worker),
                ));
            }
            m.workers[f.worker].0.increment(f.events);
            m.workers[f.worker].1.increment(f.took_us);
        }
        let total = self.fold_us.entry(f.key.to_string()).or_insert(0);
        *total += f.took_us;
        let total = *total;
        match self.slowest.iter_mut().find(|s| s.partition == f.key) {
            Some(s) => s.fold_us = total,
            None => self.slowest.push(SlowPartition {
                partition: f.key.to_string(),
                fold_us: total,
            }),
        }
        self.slowest.sort_by(|a, b| {
            b.fold_us
                .cmp(&a.fold_us)
                .then(a.partition.cmp(&b.partition))
        });
        self.slowest.truncate(SLOWEST);
    }

    /// A partition refolded from scratch: its fold time starts again.
    pub fn forget(&mut self, key: &str) {
        self.fold_us.remove(key);
        if self.slowest.iter().any(|s| s.partition == key) {
            let mut all: Vec<SlowPartition> = self
                .fold_us
                .iter()
                .map(|(k, us)| SlowPartition {
                    partition: k.clone(),
                    fold_us: *us,
                })
                .collect();
            all.sort_by(|a, b| {
                b.fold_us
                    .cmp(&a.fold_us)
                    .then(a.partition.cmp(&b.partition))
            });
            all.truncate(SLOWEST);
            self.slowest = all;
        }
    }

    /// Set the partition count gauge.
    pub fn set_count(&self, count: u64) {
        if let Some(m) = &self.metrics {
            m.partitions.set(count as f64);
        }
    }

    /// Per-worker figures.
    pub fn workers(&self) -> Vec<WorkerFigures> {
        self.workers
            .iter()
            .enumerate()
            .map(|(i, (events, us))| WorkerFigures {
                worker: i as u32,
                events: *events,
                busy_ms: us / 1000,
                events_per_sec: (events * 1_000_000).checked_div(*us).unwrap_or(0),
            })
            .collect()
    }

    /// The partitions that took the most fold time, most first.
    pub fn slowest(&self) -> Vec<SlowPartition> {
        self.slowest.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fold(s: &mut Stats, key: &str, worker: usize, took_us: u64) {
        s.record(Folded {
            key,
            worker,
            events: 10,
            took_us,
        });
    }

    #[test]
    fn keeps_the_partitions_with_the_most_fold_time() {
        let mut s = Stats::new("t", false);
        for i in 0..10u64 {
            fold(&mut s, &format!("p{i}"), 0, 100 + i);
        }
        // p0 grows past every other by adding up.
        fold(&mut s, "p0", 1, 50);
        let keys: Vec<String> = s.slowest().into_iter().map(|p| p.partition).collect();
        assert_eq!(keys, ["p0", "p9", "p8", "p7", "p6"]);
        assert_eq!(s.slowest()[0].fold_us, 150);
        s.forget("p0");
        let keys: Vec<String> = s.slowest().into_iter().map(|p| p.partition).collect();
        assert_eq!(keys, ["p9", "p8", "p7", "p6", "p5"]);
    }

    #[test]
    fn counts_events_and_time_per_worker() {
        let mut s = Stats::new("t", false);
        fold(&mut s, "a", 1, 2_000);
        fold(&mut s, "b", 1, 3_000);
        let w = s.workers();
        assert_eq!(w.len(), 2);
        assert_eq!((w[0].events, w[0].events_per_sec), (0, 0));
        assert_eq!(
            (w[1].events, w[1].busy_ms, w[1].events_per_sec),
            (20, 5, 4_000)
        );
    }
}
