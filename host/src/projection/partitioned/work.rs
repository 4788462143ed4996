//! Folding the groups of one page in parallel, `workers` at once.
//!
//! Each worker runs on a blocking thread (the plugin calls never occupy an
//! async worker) and takes the next group from a queue shared by all of
//! them, biggest groups first, so the workers finish together. A worker
//! keeps one plugin instance across the groups it folds within a page:
//! `restore` (or `init-state` for a new partition) replaces the state
//! before each group. At the end of a page the workers leave their
//! instances in [`Folding::spares`] for the next page's workers, and the
//! projection drops them once it reaches the head ([`Folding::release`]):
//! while idle, no partition holds an instance. Creating and dropping an
//! instance per group (then per page and worker) cost more than folding
//! 100 events, and the memory unmapping it involves stalls every core of
//! the process. An instance whose call failed is never reused.

use std::sync::{Arc, Mutex};

use crate::event::RecordedEvent;
use crate::plugin::{Instance, Limits, Plugin};
use crate::projection::fold::{FoldError, Folder};
use crate::projection::status::{Fault, LiveStatus};
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
    /// Which worker folded it, and how long it took (µs).
    pub worker: usize,
    pub took_us: u64,
}

/// What every job shares.
#[derive(Clone)]
pub(crate) struct Folding {
    pub plugin: Plugin,
    pub name: String,
    pub strict: bool,
    pub limits: Limits,
    /// Where the workers count the instances they hold.
    pub live: LiveStatus,
    /// Instances the last page's workers left for the next page's.
    pub spares: Arc<Mutex<Vec<Spare>>>,
}

/// A worker's instance kept between pages, counted as live meanwhile.
pub(crate) struct Spare {
    instance: Instance,
    _holding: Holding,
}

impl Folding {
    /// Drop the kept instances (the projection is at the head, or its
    /// limits changed).
    pub fn release(&self) {
        self.spares().clear();
    }

    fn spares(&self) -> std::sync::MutexGuard<'_, Vec<Spare>> {
        self.spares.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Count a worker's instance in the status while it folds a page.
struct Holding(LiveStatus);

impl Holding {
    fn adjust(live: &LiveStatus, up: bool) {
        let mut live = live.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(p) = live.partitions.as_mut() {
            p.live_instances = match up {
                true => p.live_instances + 1,
                false => p.live_instances.saturating_sub(1),
            };
            p.hibernated = p.count.saturating_sub(p.live_instances);
        }
    }

    fn new(live: &LiveStatus) -> Holding {
        Holding::adjust(live, true);
        Holding(live.clone())
    }
}

impl Drop for Holding {
    fn drop(&mut self) {
        Holding::adjust(&self.0, false);
    }
}

/// Fold every job, at most `workers` at once; answers in no particular
/// order. `None` when a worker thread died (nothing may be taken from the
/// page then: it is folded again).
pub(crate) async fn fold_all(ctx: &Folding, jobs: Vec<Job>, workers: usize) -> Option<Vec<Done>> {
    let threads = workers.max(1).min(jobs.len()).max(1);
    let queue = Arc::new(Mutex::new(biggest_first(jobs).into_iter()));
    let handle = tokio::runtime::Handle::current();
    let tasks: Vec<_> = (0..threads)
        .map(|worker| {
            let ctx = ctx.clone();
            let handle = handle.clone();
            let queue = queue.clone();
            tokio::task::spawn_blocking(move || {
                handle.block_on(async {
                    let kept = ctx.spares().pop();
                    let (mut spare, holding) = match kept {
                        Some(s) => (Some(s.instance), s._holding),
                        None => (None, Holding::new(&ctx.live)),
                    };
                    let mut out = Vec::new();
                    loop {
                        let next = queue.lock().unwrap_or_else(|p| p.into_inner()).next();
                        let Some(job) = next else { break };
                        let t = std::time::Instant::now();
                        let mut done = fold_one(&ctx, job, &mut spare).await;
                        done.worker = worker;
                        done.took_us = t.elapsed().as_micros() as u64;
                        out.push(done);
                    }
                    if let Some(instance) = spare {
                        ctx.spares().push(Spare {
                            instance,
                            _holding: holding,
                        });
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

/// The order workers take jobs in: most events first, so the last jobs
/// taken are small ones and the workers finish about together.
fn biggest_first(mut jobs: Vec<Job>) -> Vec<Job> {
    jobs.sort_by_key(|j| std::cmp::Reverse(j.events.len()));
    jobs
}

/// A folder for `from`: on `spare` (a worker's instance from its previous
/// group) when it accepts the state, else on a fresh instance.
async fn start_on(
    ctx: &Folding,
    from: &Option<(u64, Vec<u8>)>,
    spare: &mut Option<Instance>,
) -> Result<Folder, FoldError> {
    if let Some(mut instance) = spare.take() {
        let ready = match from {
            Some((offset, state)) => instance.restore(state).await.map(|()| *offset),
            None => instance.init_state().await.map(|()| 0),
        };
        if let Ok(offset) = ready {
            if !instance.is_poisoned() {
                let kinds = &ctx.plugin.info().kinds;
                return Ok(Folder::new(instance, offset, ctx.strict, kinds));
            }
        }
    }
    start(ctx, from).await
}

async fn start(ctx: &Folding, from: &Option<(u64, Vec<u8>)>) -> Result<Folder, FoldError> {
    let from = from.as_ref().map(|(o, s)| (*o, s.as_slice()));
    Folder::start_from(&ctx.plugin, &ctx.name, from, ctx.strict, ctx.limits).await
}

async fn fold_one(ctx: &Folding, job: Job, spare: &mut Option<Instance>) -> Done {
    let base = job.from.as_ref().map_or(0, |(o, _)| *o);
    let attempt = async {
        let mut folder = start_on(ctx, &job.from, spare).await?;
        let applied = folder.apply(&job.events).await?;
        let snapshot = folder.snapshot().await?;
        Ok::<_, FoldError>((snapshot, applied, folder))
    };
    match attempt.await {
        Ok((snapshot, applied, folder)) => {
            let instance = folder.into_instance();
            if !instance.is_poisoned() {
                *spare = Some(instance);
            }
            Done {
                key: job.key,
                state: snapshot.state,
                last_position: snapshot.offset,
                applied: applied.applied as u64,
                skipped: applied.skipped as u64,
                fault: None,
                worker: 0,
                took_us: 0,
            }
        }
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
            worker: 0,
            took_us: 0,
        },
        // Not even the state before could be rebuilt: keep the old bytes.
        Err(_) => Done {
            key: job.key,
            state: job.from.map(|(_, s)| s).unwrap_or_default(),
            last_position: base,
            applied: 0,
            skipped: 0,
            fault: Some(fault),
            worker: 0,
            took_us: 0,
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
    fn biggest_jobs_are_taken_first() {
        let order: Vec<String> = biggest_first(vec![job("a", 1), job("b", 5), job("c", 3)])
            .into_iter()
            .map(|j| j.key)
            .collect();
        assert_eq!(order, ["b", "c", "a"]);
    }
}
