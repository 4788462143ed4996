//! The fold: read one bounded batch after the cursor and apply it; on a
//! failure, fault at the failing event with the state exactly as it was
//! after the event before; at the head, `on-caught-up`.

use std::time::Instant;

use tokio::time::Instant as TokioInstant;
use tracing::{debug, info_span, warn, Instrument};

use super::{poisons, Actor};
use crate::event::RecordedEvent;
use crate::plugin::PluginError;
use crate::projection::error::ProjectionError;
use crate::projection::fold::FoldError;
use crate::projection::status::Fault;
use crate::snapshot::now_ms;

impl Actor {
    /// Read and apply one bounded batch after the cursor.
    pub(super) async fn step(&mut self) {
        let end = self.cfg.feed.end();
        let at_head =
            end.saturating_sub(self.cursor.scanned()) <= self.cfg.version.options.batch_size as u64;
        let limit = self
            .cadence
            .batch_limit(self.cfg.version.options.batch_size as usize, at_head);
        let page = match self
            .cfg
            .feed
            .read(self.cursor.next(), &self.cfg.follow, limit)
            .await
        {
            Ok(page) => page,
            Err(err) => {
                warn!(error = %err, "reading the log failed; retrying at the next poll");
                self.cfg
                    .live
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .set_error(format!("reading the log: {err}"));
                self.next_poll = TokioInstant::now() + self.catch_up_after();
                return;
            }
        };
        if !self.catching_up {
            self.catching_up = true;
            debug!(target: "hume.projection.catch_up.start", from = self.cursor.next(), head = self.cfg.log.head(), "catching up");
        }
        // While recovering from a fault stop just before the failing event;
        // while pinpointing a failure inside a batch, one event at a time.
        let first = page.events.first().map(|e| e.position);
        let cap = self.recovery.cap(self.cursor.scanned(), first);
        let batch = self.cursor.batch(page.events, page.last_scanned, cap);
        if batch.events.is_empty() {
            self.cursor.scanned_to(batch.last_scanned);
            if batch.stepped_over > 0 {
                self.cadence.changed(0, Instant::now());
            }
            self.recovery.progressed(self.cursor.scanned());
            return;
        }
        let Some(folder) = self.folder.as_mut() else {
            return;
        };
        let started = Instant::now();
        let outcome = folder
            .apply(&batch.events)
            .instrument(info_span!(
                "hume.projection.evolve",
                events = batch.events.len()
            ))
            .await;
        self.metrics.call("handle-events", started.elapsed());
        match outcome {
            Ok(applied) => {
                self.cursor.applied_to(applied.offset, batch.last_scanned);
                self.metrics.applied.increment(applied.applied as u64);
                self.metrics.skipped.increment(applied.skipped as u64);
                {
                    let mut live = self.cfg.live.lock().unwrap_or_else(|p| p.into_inner());
                    live.applied += applied.applied as u64;
                    live.skipped_unknown += applied.skipped as u64;
                }
                if applied.skipped > 0 {
                    warn!(
                        skipped = applied.skipped,
                        "events of unknown kinds skipped (not strict)"
                    );
                }
                self.caught_up_reported = false;
                let now = Instant::now();
                self.cadence.changed(applied.applied as u64, now);
                if !self.recovery.is_faulted()
                    && self
                        .cadence
                        .due(self.cursor.offset(), self.rebuilding(), now)
                {
                    self.persist_or_fault().await;
                }
            }
            Err(err) => self.fold_failed(err, &batch.events).await,
        }
        self.recovery.progressed(self.cursor.scanned());
    }

    /// More than one batch behind the head: a rebuild, where snapshots due
    /// by count are coalesced (see [`crate::projection::cadence`]).
    fn rebuilding(&self) -> bool {
        self.cfg.feed.end().saturating_sub(self.cursor.scanned())
            > u64::from(self.cfg.version.options.batch_size)
    }

    /// A batch failed. The events before the failing one were applied, but
    /// the instance may have changed its state before it failed (a handler
    /// that mutates, then rejects), so it is never trusted: it is rebuilt
    /// from the last snapshot and refolded up to the event before.
    async fn fold_failed(&mut self, err: FoldError, events: &[RecordedEvent]) {
        // A plugin failure names the batch, not the event: only a single
        // event batch pins it down.
        let exact = !matches!(err, FoldError::Plugin { .. }) || events.len() == 1;
        let failing = err
            .position()
            .filter(|_| exact)
            .and_then(|p| events.iter().find(|e| e.position == p));
        let poisoned = plugin_error(&err).is_some_and(poisons);
        let limit = plugin_error(&err)
            .and_then(|e| e.limit())
            .map(|l| l.to_string());
        self.drop_instance();
        match failing {
            Some(event) => {
                let position = event.position;
                let kind = event.kind.clone();
                self.fault_now(position, kind, &err, limit, Some(position - 1));
            }
            None if events.len() > 1 && !self.recovery.pinpointing() => {
                // The instance died without saying which event failed:
                // rebuild from the last snapshot and apply this batch one
                // event at a time; the failing one faults alone.
                let (first, last) = (events[0].position, events[events.len() - 1].position);
                warn!(first, last, poisoned, error = %err, "the plugin failed inside a batch; re-applying it one event at a time");
                self.recovery.pinpoint(first, last);
            }
            None => {
                let (position, kind) = events
                    .first()
                    .map(|e| (e.position, e.kind.clone()))
                    .unwrap_or((self.cursor.next(), String::new()));
                self.fault_now(position, kind, &err, limit, Some(position - 1));
            }
        }
        self.build().await;
    }

    /// Fault now: visible in status, waiting reads answered with the fault.
    /// `recover_to`: rebuild the state up to this position.
    pub(super) fn fault_now(
        &mut self,
        position: u64,
        kind: String,
        err: &dyn std::fmt::Display,
        limit: Option<String>,
        recover_to: Option<u64>,
    ) {
        let error = err.to_string();
        warn!(position, kind = %kind, error = %error, "projection faulted");
        self.metrics.faults.increment(1);
        let fault = Fault {
            position,
            kind,
            error: error.clone(),
            limit,
            at: now_ms(),
        };
        self.cfg
            .live
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .set_error(error);
        let name = self.cfg.name.clone();
        let f = fault.clone();
        self.waiters.fail_all(|| ProjectionError::Faulted {
            name: name.clone(),
            position: f.position,
            kind: f.kind.clone(),
            error: f.error.clone(),
        });
        self.recovery.set_fault(fault, recover_to);
    }

    /// Reached the head: call `on-caught-up` once per position, and tell the
    /// manager the first time (blue/green).
    pub(super) async fn reached_head(&mut self) {
        if self.caught_up_reported {
            return;
        }
        self.caught_up_reported = true;
        if self.catching_up {
            self.catching_up = false;
            debug!(target: "hume.projection.catch_up.stop", offset = self.cursor.offset(), scanned = self.cursor.scanned(), "caught up");
        }
        let offset = self.cursor.offset();
        if let Some(folder) = self.folder.as_mut() {
            let started = Instant::now();
            let result = folder
                .instance_mut()
                .on_caught_up(offset)
                .instrument(info_span!("hume.projection.on_caught_up", offset))
                .await;
            self.metrics.call("on-caught-up", started.elapsed());
            if let Err(err) = result {
                if poisons(&err) {
                    self.drop_instance();
                    let limit = err.limit().map(|l| l.to_string());
                    self.fault_now(0, "on-caught-up".into(), &err, limit, None);
                    return;
                }
                warn!(error = %err, "on-caught-up failed");
            }
        }
        if let Some(tx) = self.cfg.caught_up.take() {
            let _ = tx.send(());
        }
    }
}

/// The plugin error behind a fold error, if any.
fn plugin_error(err: &FoldError) -> Option<&PluginError> {
    match err {
        FoldError::Plugin { source, .. } | FoldError::Instance { source, .. } => Some(source),
        _ => None,
    }
}
