//! Folding the groups of one page in parallel. Each group gets a fresh
//! plugin instance restored from its partition's state bytes (or started
//! from `init-state`), folds its events, hands back its new state bytes and
//! is dropped: a partition that is not being folded holds no instance.
//!
//! The groups are spread over at most `workers` bins of about equal event
//! counts; each bin runs on a blocking thread (the plugin calls never
//! occupy an async worker), so `workers` partitions fold at once.

use crate::event::RecordedEvent;
use crate::plugin::{Limits, Plugin};
use crate::projection::fold::{FoldError, Folder};
use crate::projection::status::Fault;
use crate::snapshot::now_ms;

/// One partition's events of a page.
pub(crate) struct Job {
    pub key: String,
    /// The partition's state and last position; `None`: a new partition.
    pub from: Option<(u64, Vec<u8>)>,
    pub events: Vec<RecordedEvent>,
}

/// What folding one job did.
pub(crate) struct Done {
    pub key: String,
    /// The state after the events applied (all of them, or those before
    /// the fault) and the position of the last of them.
    pub state: Vec<u8>,
    pub last_position: u64,
    pub applied: u64,
    pub skipped: u64,
    /// Set when an event failed: the partition faults at it.
    pub fault: Option<Fault>,
}

/// What every job shares.
#[derive(Clone)]
pub(crate) struct Folding {
    pub plugin: Plugin,
    pub name: String,
    pub strict: bool,
    pub limits: Limits,
}

/// Fold every job, at most `workers` at once; answers in no particular
/// order. `None` when a worker thread died (nothing may be taken from the
/// page then: it is folded again).
pub(crate) async fn fold_all(ctx: &Folding, jobs: Vec<Job>, workers: usize) -> Option<Vec<Done>> {
    let bins = bins(jobs, workers.max(1));
    let handle = tokio::runtime::Handle::current();
    let tasks: Vec<_> = bins
        .into_iter()
        .map(|bin| {
            let ctx = ctx.clone();
            let handle = handle.clone();
            tokio::task::spawn_blocking(move || {
                handle.block_on(async {
                    let mut out = Vec::with_capacity(bin.len());
                    for job in bin {
                        out.push(fold_one(&ctx, job).await);
                    }
                    out
                })
            })
        })
        .collect();
    let mut done = Vec::new();
    for task in futures::future::join_all(tasks).await {
        match task {
            Ok(d) => done.extend(d),
            Err(err) => {
                tracing::error!(error = %err, "a partition worker panicked");
                return None;
            }
        }
    }
    Some(done)
}

/// Spread jobs over `workers` bins, biggest first into the lightest bin.
fn bins(mut jobs: Vec<Job>, workers: usize) -> Vec<Vec<Job>> {
    jobs.sort_by_key(|j| std::cmp::Reverse(j.events.len()));
    let n = workers.min(jobs.len()).max(1);
    let mut bins: Vec<(usize, Vec<Job>)> = (0..n).map(|_| (0, Vec::new())).collect();
    for job in jobs {
        let lightest = bins
            .iter_mut()
            .min_by_key(|(load, _)| *load)
            .expect("at least one bin");
        lightest.0 += job.events.len();
        lightest.1.push(job);
    }
    bins.into_iter()
        .map(|(_, b)| b)
        .filter(|b| !b.is_empty())
        .collect()
}

async fn start(ctx: &Folding, from: &Option<(u64, Vec<u8>)>) -> Result<Folder, FoldError> {
    let from = from.as_ref().map(|(o, s)| (*o, s.as_slice()));
    Folder::start_from(&ctx.plugin, &ctx.name, from, ctx.strict, ctx.limits).await
}

async fn fold_one(ctx: &Folding, job: Job) -> Done {
    let base = job.from.as_ref().map_or(0, |(o, _)| *o);
    let attempt = async {
        let mut folder = start(ctx, &job.from).await?;
        let applied = folder.apply(&job.events).await?;
        let snapshot = folder.snapshot().await?;
        Ok::<_, FoldError>((snapshot, applied))
    };
    match attempt.await {
        Ok((snapshot, applied)) => Done {
            key: job.key,
            state: snapshot.state,
            last_position: snapshot.offset,
            applied: applied.applied as u64,
            skipped: applied.skipped as u64,
            fault: None,
        },
        Err(err) => failed(ctx, job, base, err).await,
    }
}

/// An event failed: the partition keeps the state after the events before
/// it (refolded in a fresh instance: the failed one may have changed its
/// state before failing) and faults at it.
async fn failed(ctx: &Folding, job: Job, base: u64, err: FoldError) -> Done {
    let position = err
        .position()
        .or_else(|| job.events.first().map(|e| e.position))
        .unwrap_or(base);
    let kind = job
        .events
        .iter()
        .find(|e| e.position == position)
        .map(|e| e.kind.clone())
        .unwrap_or_default();
    let before: Vec<RecordedEvent> = job
        .events
        .iter()
        .take_while(|e| e.position < position)
        .cloned()
        .collect();
    let refold = async {
        let mut folder = start(ctx, &job.from).await?;
        let applied = folder.apply(&before).await?;
        let snapshot = folder.snapshot().await?;
        Ok::<_, FoldError>((snapshot, applied))
    };
    let limit = match &err {
        FoldError::Plugin { source, .. } | FoldError::Instance { source, .. } => {
            source.limit().map(|l| l.to_string())
        }
        _ => None,
    };
    let fault = Fault {
        position,
        kind,
        error: err.to_string(),
        limit,
        at: now_ms(),
    };
    tracing::warn!(partition = %job.key, position, error = %err, "partition faulted");
    match refold.await {
        Ok((snapshot, applied)) => Done {
            key: job.key,
            state: snapshot.state,
            last_position: snapshot.offset,
            applied: applied.applied as u64,
            skipped: applied.skipped as u64,
            fault: Some(fault),
        },
        // Not even the state before could be rebuilt: keep the old bytes.
        Err(_) => Done {
            key: job.key,
            state: job.from.map(|(_, s)| s).unwrap_or_default(),
            last_position: base,
            applied: 0,
            skipped: 0,
            fault: Some(fault),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(key: &str, n: u64) -> Job {
        Job {
            key: key.into(),
            from: None,
            events: (1..=n)
                .map(|p| RecordedEvent {
                    position: p,
                    stream: key.into(),
                    revision: p,
                    kind: "k".into(),
                    data: b"{}".to_vec(),
                    metadata: None,
                    timestamp: 0,
                })
                .collect(),
        }
    }

    #[test]
    fn bins_balance_event_counts() {
        let b = bins(vec![job("a", 5), job("b", 3), job("c", 2), job("d", 1)], 2);
        assert_eq!(b.len(), 2);
        let loads: Vec<usize> = b
            .iter()
            .map(|bin| bin.iter().map(|j| j.events.len()).sum())
            .collect();
        assert_eq!(loads.iter().sum::<usize>(), 11);
        assert!(loads.iter().all(|l| (5..=6).contains(l)), "{loads:?}");
        assert_eq!(bins(vec![job("a", 1)], 4).len(), 1);
    }
}
