//! The actor's side of commands: reads (answered between batches, or when
//! a consistent read's position has been scanned), snapshots on request and
//! the lifecycle commands (stop, start, reset, resume, skip, shutdown).

use std::time::Instant;

use tokio::time::Instant as TokioInstant;
use tracing::{info_span, warn, Instrument};

use super::{poisons, Actor, Command, Flow, StateView};
use crate::projection::error::ProjectionError;

impl Actor {
    /// Answer the waiting reads whose target has been scanned.
    pub(super) async fn serve_waiters(&mut self) {
        if self.waiters.is_empty() {
            return;
        }
        self.skip_ahead();
        for cmd in self.waiters.ready(self.cursor.scanned()) {
            self.answer(cmd).await;
        }
    }

    /// Why a consistent read cannot be served now, if it cannot wait either.
    fn unservable(&self) -> Option<ProjectionError> {
        if let Some(f) = self.recovery.fault() {
            return Some(ProjectionError::Faulted {
                name: self.cfg.name.clone(),
                position: f.position,
                kind: f.kind.clone(),
                error: f.error.clone(),
            });
        }
        if self.stopped {
            return Some(ProjectionError::Stopped {
                name: self.cfg.name.clone(),
            });
        }
        None
    }

    pub(super) async fn handle(&mut self, cmd: Command) -> Flow {
        self.skip_ahead();
        match cmd {
            Command::Read { .. } | Command::Query { .. } | Command::Wait { .. } => {
                match (cmd.target(), self.recovery.refolding_to()) {
                    (Some(t), _) if !self.cursor.reached(t) => match self.unservable() {
                        Some(err) => cmd.reply_err(err),
                        None => self.waiters.push(t, cmd),
                    },
                    // A dirty read of a projection that just faulted waits
                    // for the refold up to the event before the failing
                    // one: until then the instance holds the last
                    // snapshot's state, not the state before the fault.
                    (None, Some(t)) if !self.cursor.reached(t) => self.waiters.push(t, cmd),
                    _ => self.answer(cmd).await,
                }
            }
            Command::CatchUp => {
                self.next_poll = TokioInstant::now();
            }
            Command::Partitioned(pc) => pc.fail(ProjectionError::NotPartitioned {
                name: self.cfg.name.clone(),
            }),
            Command::TakeSnapshot { reply } => {
                let r = self.persist().await;
                let _ = reply.send(r);
            }
            Command::Stop { reply } => {
                self.final_snapshot().await;
                self.stopped = true;
                let name = self.cfg.name.clone();
                self.waiters
                    .fail_all(|| ProjectionError::Stopped { name: name.clone() });
                let _ = reply.send(Ok(()));
            }
            Command::Start { reply } => {
                self.stopped = false;
                self.next_poll = TokioInstant::now();
                let _ = reply.send(Ok(()));
            }
            Command::Reset { keep_skips, reply } => {
                if !keep_skips {
                    self.cursor.forget_skips();
                }
                let r = self.reset().await;
                let _ = reply.send(r);
            }
            Command::Resume { reply } => {
                if !self.recovery.is_faulted() {
                    let _ = reply.send(Err(ProjectionError::Conflict(format!(
                        "projection `{}` is not faulted: nothing to resume",
                        self.cfg.name
                    ))));
                } else {
                    self.resume().await;
                    let _ = reply.send(Ok(()));
                }
            }
            Command::Skip { position, reply } => {
                self.cursor.skip(position);
                if self
                    .recovery
                    .fault()
                    .is_some_and(|f| f.position == position)
                {
                    self.resume().await;
                }
                let _ = reply.send(Ok(()));
            }
            Command::Reconfigure {
                options,
                store,
                reply,
            } => {
                let r = self.reconfigure(*options, store).await;
                let _ = reply.send(r);
            }
            Command::Hibernate => {
                self.hibernate_asked = true;
            }
            Command::Shutdown { snapshot, reply } => {
                if snapshot {
                    self.final_snapshot().await;
                }
                let _ = reply.send(());
                return Flow::Exit;
            }
        }
        Flow::Continue
    }

    /// Clear the fault and go on; rebuild the instance if it is gone.
    async fn resume(&mut self) {
        let snapshot_failed = self
            .recovery
            .fault()
            .is_some_and(|f| f.position == 0 && f.kind == "snapshot");
        self.recovery.clear();
        if snapshot_failed && self.folder.is_some() {
            // Retry the snapshot that failed (its limit may have been
            // raised since); a new failure faults again.
            self.persist_or_fault().await;
        }
        if self.folder.is_none() {
            if self.hibernated.is_some() {
                self.wake().await;
            } else {
                self.build().await;
            }
        }
        self.caught_up_reported = false;
        self.next_poll = TokioInstant::now();
    }

    async fn reset(&mut self) -> Result<(), ProjectionError> {
        self.cfg.store.delete(&self.cfg.key).await?;
        self.cfg.seed_key = None;
        self.drop_instance();
        self.hibernated = None;
        self.recovery.clear();
        self.persisted = None;
        {
            let mut live = self.cfg.live.lock().unwrap_or_else(|p| p.into_inner());
            live.last_snapshot = None;
            live.applied = 0;
            live.skipped_unknown = 0;
        }
        let span = info_span!(
            "hume.projection.replay",
            from = self.cfg.version.start_offset
        );
        self.build().instrument(span).await;
        self.next_poll = TokioInstant::now();
        Ok(())
    }

    /// Answer a read now, from the current state.
    async fn answer(&mut self, cmd: Command) {
        if let Command::Wait { reply, .. } = cmd {
            let _ = reply.send(Ok(self.cursor.scanned()));
            return;
        }
        let name = self.cfg.name.clone();
        let offset = self.cursor.offset();
        let json = self.cfg.plugin.info().is_json();
        if self.folder.is_none() && self.hibernated.is_some() {
            if self.recovery.is_faulted() {
                // It could not be woken: a read shows the kept state.
                if let Command::Read { reply, .. } = cmd {
                    let r = self.hibernated_state().await.and_then(|s| {
                        s.map(|s| StateView {
                            offset: s.offset,
                            state: s.state,
                            json,
                        })
                        .ok_or_else(|| {
                            ProjectionError::Conflict(format!("projection `{name}` has no state"))
                        })
                    });
                    let _ = reply.send(r);
                    return;
                }
            } else {
                self.wake().await;
            }
        }
        self.touch();
        let Some(folder) = self.folder.as_mut() else {
            let err = self
                .unservable()
                .unwrap_or(ProjectionError::Conflict(format!(
                    "projection `{name}` has no state yet (starting)"
                )));
            cmd.reply_err(err);
            return;
        };
        let plugin_err = |source| ProjectionError::Plugin {
            name: name.clone(),
            source,
        };
        let started = Instant::now();
        let (call, broken) = match cmd {
            Command::Read { reply, .. } => {
                let r = folder.instance_mut().snapshot().await;
                let broken = r
                    .as_ref()
                    .err()
                    .filter(|e| poisons(e))
                    .map(|e| e.to_string());
                let _ = reply.send(
                    r.map(|state| StateView {
                        offset,
                        state,
                        json,
                    })
                    .map_err(plugin_err),
                );
                ("snapshot", broken)
            }
            Command::Query { request, reply, .. } => {
                let r = folder.instance_mut().query(&request).await;
                let broken = r
                    .as_ref()
                    .err()
                    .filter(|e| poisons(e))
                    .map(|e| e.to_string());
                let _ = reply.send(r.map_err(plugin_err));
                ("query", broken)
            }
            _ => unreachable!("answer is only called with reads"),
        };
        self.metrics.call(call, started.elapsed());
        if let Some(err) = broken {
            // The read poisoned the instance: rebuild it from the last
            // snapshot; it catches up again on its own.
            warn!(call, error = %err, "a read broke the plugin instance; rebuilding it");
            self.cfg
                .live
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .set_error(format!("{call}: {err}"));
            self.drop_instance();
            self.build().await;
        }
    }
}
