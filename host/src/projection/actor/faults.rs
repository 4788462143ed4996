//! Faults: a batch that failed (pinpointing the failing event when the
//! instance is lost) and the visible faulted state.

use tracing::warn;

use super::{poisons, Actor};
use crate::log::RecordedEvent;
use crate::plugin::PluginError;
use crate::projection::error::ProjectionError;
use crate::projection::fold::FoldError;
use crate::projection::status::Fault;
use crate::snapshot::now_ms;

impl Actor {
    /// A batch failed: keep what was applied before the failing event and
    /// fault at it.
    pub(super) async fn fold_failed(&mut self, err: FoldError, events: &[RecordedEvent]) {
        let (position, kind) = err
            .position()
            .and_then(|p| events.iter().find(|e| e.position == p))
            .map(|e| (e.position, e.kind.clone()))
            .unwrap_or_else(|| (self.scanned + 1, String::new()));
        let applied_before = events.iter().filter(|e| e.position < position).count() as u64;
        if let Some(folder) = &self.folder {
            self.offset = folder.offset().max(self.offset);
        }
        self.scanned = position.saturating_sub(1).max(self.scanned);
        if applied_before > 0 {
            self.cfg
                .live
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .applied += applied_before;
            self.metrics.applied.increment(applied_before);
            self.mark_changed(applied_before);
        }
        let poisoned = plugin_error(&err).is_some_and(poisons);
        let limit = plugin_error(&err)
            .and_then(|e| e.limit())
            .map(|l| l.to_string());
        if !poisoned {
            // The instance is intact at the event before the failing one.
            self.set_fault(position, kind, &err, limit);
            return;
        }
        // The instance is unusable and the state of the batch unknown.
        self.folder = None;
        self.dirty_since = None;
        if events.len() > 1 && self.fault.is_none() {
            // Which event failed? Rebuild from the last snapshot and apply
            // this batch one event at a time; the failing one faults alone.
            let first = events[0].position;
            let last = events[events.len() - 1].position;
            warn!(first, last, error = %err, "the plugin failed inside a batch; re-applying it one event at a time");
            self.single_step = Some((first, last));
            self.build().await;
            return;
        }
        self.set_fault(position, kind, &err, limit);
        // Rebuild now, back to just before the failing event, so dirty reads
        // answer and `resume` retries it with a fresh instance.
        self.recover_to = Some(position.saturating_sub(1));
        self.build().await;
    }

    pub(super) fn set_fault(
        &mut self,
        position: u64,
        kind: String,
        err: &dyn std::fmt::Display,
        limit: Option<String>,
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
            .last_error = Some(error);
        self.fault = Some(fault);
        let name = self.cfg.name.clone();
        let f = self.fault.clone().expect("just set");
        self.fail_waiters(|_| ProjectionError::Faulted {
            name: name.clone(),
            position: f.position,
            kind: f.kind.clone(),
            error: f.error.clone(),
        });
    }
}

/// The plugin error behind a fold error, if any.
fn plugin_error(err: &FoldError) -> Option<&PluginError> {
    match err {
        FoldError::Plugin { source, .. } | FoldError::Instance { source, .. } => Some(source),
        _ => None,
    }
}
