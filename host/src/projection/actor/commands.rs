//! The actor's side of commands: reads (answered between batches, or when
//! a consistent read's position has been scanned), snapshots on request and
//! the lifecycle commands (stop, start, reset, resume, skip, shutdown).

use std::time::Instant;

use tokio::time::Instant as TokioInstant;
use tracing::{info_span, warn, Instrument};

use super::{Actor, Command, Flow, StateView, Waiter};
use crate::plugin::PluginError;
use crate::projection::error::ProjectionError;

use super::poisons;

impl Actor {
    /// Answer the waiting reads whose target has been scanned; drop the ones
    /// whose caller gave up.
    pub(super) async fn serve_waiters(&mut self) {
        if self.waiters.is_empty() {
            return;
        }
        self.skip_ahead();
        let waiters = std::mem::take(&mut self.waiters);
        for w in waiters {
            if reply_closed(&w.command) {
                continue;
            }
            if self.scanned >= w.target {
                self.answer(w.command).await;
            } else {
                self.waiters.push(w);
            }
        }
    }

    pub(super) fn fail_waiters(&mut self, err: impl Fn(String) -> ProjectionError) {
        for w in std::mem::take(&mut self.waiters) {
            let e = err(self.cfg.name.clone());
            match w.command {
                Command::Read { reply, .. } => {
                    let _ = reply.send(Err(e));
                }
                Command::Query { reply, .. } => {
                    let _ = reply.send(Err(e));
                }
                _ => {}
            }
        }
    }

    /// Why a consistent read cannot be served now, if it cannot wait either.
    pub(super) fn unservable(&self) -> Option<ProjectionError> {
        if let Some(f) = &self.fault {
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
            Command::Read {
                target: Some(t), ..
            }
            | Command::Query {
                target: Some(t), ..
            } if self.scanned < t => {
                if let Some(err) = self.unservable() {
                    reply_err(cmd, err);
                } else {
                    self.waiters.push(Waiter {
                        target: t,
                        command: cmd,
                    });
                }
            }
            Command::Read { .. } | Command::Query { .. } => self.answer(cmd).await,
            Command::CatchUp => {
                self.next_poll = TokioInstant::now();
            }
            Command::TakeSnapshot { reply } => {
                let r = self.persist().await;
                let _ = reply.send(r);
            }
            Command::Stop { reply } => {
                self.final_snapshot().await;
                self.stopped = true;
                let name = self.cfg.name.clone();
                self.fail_waiters(|_| ProjectionError::Stopped { name: name.clone() });
                let _ = reply.send(Ok(()));
            }
            Command::Start { reply } => {
                self.stopped = false;
                self.next_poll = TokioInstant::now();
                let _ = reply.send(Ok(()));
            }
            Command::Reset { reply } => {
                let r = self.reset().await;
                let _ = reply.send(r);
            }
            Command::Resume { reply } => {
                if self.fault.is_none() {
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
                self.skipped.insert(position);
                if self.fault.as_ref().is_some_and(|f| f.position == position) {
                    self.resume().await;
                }
                let _ = reply.send(Ok(()));
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

    /// Clear the fault and go on; rebuild the instance from the last snapshot
    /// if the failure poisoned it.
    async fn resume(&mut self) {
        self.fault = None;
        self.recover_to = None;
        if self.folder.is_none() {
            self.build().await;
        }
        self.caught_up_reported = false;
        self.next_poll = TokioInstant::now();
    }

    async fn reset(&mut self) -> Result<(), ProjectionError> {
        self.cfg.store.delete(&self.cfg.key)?;
        self.cfg.seed_key = None;
        self.folder = None;
        self.fault = None;
        self.recover_to = None;
        self.single_step = None;
        self.persisted = None;
        self.dirty_since = None;
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
        let name = self.cfg.name.clone();
        let offset = self.offset;
        let json = self.cfg.plugin.info().is_json();
        let Some(folder) = self.folder.as_mut() else {
            let err = self
                .unservable()
                .unwrap_or(ProjectionError::Conflict(format!(
                    "projection `{name}` has no state yet (starting)"
                )));
            reply_err(cmd, err);
            return;
        };
        let started = Instant::now();
        let (call, result) = match cmd {
            Command::Read { reply, .. } => {
                let r = folder.instance_mut().snapshot().await;
                let ok = r.as_ref().map(|_| ()).map_err(poisons_ref);
                let _ = reply.send(
                    r.map(|state| StateView {
                        offset,
                        state,
                        json,
                    })
                    .map_err(|source| ProjectionError::Plugin {
                        name: name.clone(),
                        source,
                    }),
                );
                ("snapshot", ok)
            }
            Command::Query { request, reply, .. } => {
                let r = folder.instance_mut().query(&request).await;
                let ok = r.as_ref().map(|_| ()).map_err(poisons_ref);
                let _ = reply.send(r.map_err(|source| ProjectionError::Plugin {
                    name: name.clone(),
                    source,
                }));
                ("query", ok)
            }
            _ => unreachable!("answer is only called with reads"),
        };
        self.metrics.call(call, started.elapsed());
        if let Err(Some(err)) = result {
            // The read poisoned the instance: rebuild it from the last
            // snapshot; it catches up again on its own.
            warn!(call, error = %err, "a read broke the plugin instance; rebuilding it");
            self.cfg
                .live
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .last_error = Some(format!("{call}: {err}"));
            self.folder = None;
            self.build().await;
        }
    }
}

/// `Some(message)` when the error poisoned the instance.
fn poisons_ref(err: &PluginError) -> Option<String> {
    poisons(err).then(|| err.to_string())
}

fn reply_closed(cmd: &Command) -> bool {
    match cmd {
        Command::Read { reply, .. } => reply.is_closed(),
        Command::Query { reply, .. } => reply.is_closed(),
        _ => false,
    }
}

fn reply_err(cmd: Command, err: ProjectionError) {
    match cmd {
        Command::Read { reply, .. } => {
            let _ = reply.send(Err(err));
        }
        Command::Query { reply, .. } => {
            let _ = reply.send(Err(err));
        }
        _ => {}
    }
}
