//! The partitioned actor's side of commands: partition reads and queries
//! (consistent ones wait until the log head at the time of the request has
//! been examined), listings, and the lifecycle commands.

use tokio::sync::oneshot;
use tokio::time::Instant as TokioInstant;

use super::repair::Repair;
use super::table::{ListQuery, PartitionPage};
use super::PartitionedActor;
use crate::projection::actor::{Command, StateView};
use crate::projection::error::ProjectionError;
use crate::projection::fold::{FoldError, Folder};
use crate::projection::status::Fault;

type Reply<T> = oneshot::Sender<Result<T, ProjectionError>>;

/// Requests only a partitioned projection answers.
pub(crate) enum PartitionCommand {
    /// One partition's state.
    Read {
        key: String,
        target: Option<u64>,
        reply: Reply<StateView>,
    },
    /// One partition's state after its events up to `at` (time travel).
    ReadAt {
        key: String,
        at: u64,
        reply: Reply<StateView>,
    },
    /// Pass a request to the plugin's `query`, over one partition's state.
    Query {
        key: String,
        target: Option<u64>,
        request: Vec<u8>,
        reply: Reply<Vec<u8>>,
    },
    /// A page of the partition listing.
    List {
        query: ListQuery,
        reply: Reply<PartitionPage>,
    },
    /// Resume, skip or reset one partition; answers the skipped position.
    /// A reset applies the positions in `forget` again (the partition's
    /// skips, already dropped from the deployment record).
    Repair {
        key: String,
        what: Repair,
        forget: Vec<u64>,
        reply: Reply<Option<u64>>,
    },
    /// The skipped positions whose events belong to partition `key`.
    SkipsOf { key: String, reply: Reply<Vec<u64>> },
    /// A page of `(key, state)` after `after`, by key.
    States {
        after: Option<String>,
        limit: usize,
        target: Option<u64>,
        reply: Reply<Vec<(String, StateView)>>,
    },
}

impl From<PartitionCommand> for Command {
    /// Boxed: see `Command`'s size test.
    fn from(pc: PartitionCommand) -> Command {
        Command::Partitioned(Box::new(pc))
    }
}

impl PartitionCommand {
    fn target(&self) -> Option<u64> {
        match self {
            PartitionCommand::Read { target, .. }
            | PartitionCommand::Query { target, .. }
            | PartitionCommand::States { target, .. } => *target,
            PartitionCommand::ReadAt { at, .. } => Some(*at),
            PartitionCommand::List { .. }
            | PartitionCommand::Repair { .. }
            | PartitionCommand::SkipsOf { .. } => None,
        }
    }

    /// Answer with an error.
    pub(crate) fn fail(self, err: ProjectionError) {
        match self {
            PartitionCommand::Read { reply, .. } => drop(reply.send(Err(err))),
            PartitionCommand::ReadAt { reply, .. } => drop(reply.send(Err(err))),
            PartitionCommand::Query { reply, .. } => drop(reply.send(Err(err))),
            PartitionCommand::List { reply, .. } => drop(reply.send(Err(err))),
            PartitionCommand::Repair { reply, .. } => drop(reply.send(Err(err))),
            PartitionCommand::SkipsOf { reply, .. } => drop(reply.send(Err(err))),
            PartitionCommand::States { reply, .. } => drop(reply.send(Err(err))),
        }
    }
}

/// Answer a waiting command with an error.
pub(super) fn fail(cmd: Command, err: ProjectionError) {
    match cmd {
        Command::Partitioned(pc) => pc.fail(err),
        Command::Wait { reply, .. } => drop(reply.send(Err(err))),
        Command::Read { reply, .. } => drop(reply.send(Err(err))),
        Command::Query { reply, .. } => drop(reply.send(Err(err))),
        _ => {}
    }
}

fn target_of(cmd: &Command) -> Option<u64> {
    match cmd {
        Command::Partitioned(pc) => pc.target(),
        Command::Wait { target, .. } => Some(*target),
        _ => None,
    }
}

impl PartitionedActor {
    fn unservable(&self) -> Option<ProjectionError> {
        let name = self.cfg.name.clone();
        if let Some(f) = &self.fault {
            return Some(ProjectionError::Faulted {
                name,
                position: f.position,
                kind: f.kind.clone(),
                error: f.error.clone(),
            });
        }
        if self.stopped {
            return Some(ProjectionError::Stopped { name });
        }
        None
    }

    pub(super) fn fail_waiters(&mut self, fault: &Fault) {
        for (_, cmd) in self.waiters.drain(..) {
            fail(
                cmd,
                ProjectionError::Faulted {
                    name: self.cfg.name.clone(),
                    position: fault.position,
                    kind: fault.kind.clone(),
                    error: fault.error.clone(),
                },
            );
        }
    }

    /// Answer the waiting reads whose position has been examined.
    pub(super) async fn serve_waiters(&mut self) {
        if self.waiters.is_empty() {
            return;
        }
        self.skip_ahead();
        let scanned = self.cursor.scanned();
        let (ready, waiting): (Vec<_>, Vec<_>) = std::mem::take(&mut self.waiters)
            .into_iter()
            .partition(|(t, _)| *t <= scanned);
        self.waiters = waiting;
        self.waiters.retain(|(_, c)| !closed(c));
        for (_, cmd) in ready {
            self.answer(cmd).await;
        }
    }

    /// Handle one command; true when the task should end.
    pub(super) async fn handle(&mut self, cmd: Command) -> bool {
        self.skip_ahead();
        let name = self.cfg.name.clone();
        match cmd {
            Command::Read { reply, .. } => {
                let _ = reply.send(Err(self.partition_required()));
            }
            Command::Query { reply, .. } => {
                let _ = reply.send(Err(self.partition_required()));
            }
            cmd @ (Command::Wait { .. } | Command::Partitioned(_)) => match target_of(&cmd) {
                Some(t) if !self.loaded || !self.cursor.reached(t) => match self.unservable() {
                    Some(err) => fail(cmd, err),
                    None => self.waiters.push((t, cmd)),
                },
                _ => self.answer(cmd).await,
            },
            Command::CatchUp => self.next_poll = TokioInstant::now(),
            Command::TakeSnapshot { reply } => {
                let _ = reply.send(self.persist().await);
            }
            Command::Stop { reply } => {
                self.persist_logged().await;
                self.stopped = true;
                for (_, cmd) in self.waiters.drain(..) {
                    fail(cmd, ProjectionError::Stopped { name: name.clone() });
                }
                let _ = reply.send(Ok(()));
            }
            Command::Start { reply } => {
                self.stopped = false;
                self.next_poll = TokioInstant::now();
                let _ = reply.send(Ok(()));
            }
            Command::Reset { keep_skips, reply } => {
                let r = self.cfg.store.delete(&self.cfg.key).await;
                if !keep_skips {
                    self.cursor.forget_skips();
                }
                if r.is_ok() {
                    let start = self.cfg.version.start_offset;
                    self.cursor.reset_to(start, start);
                    self.table = Default::default();
                    self.fault = None;
                    self.since_persist = 0;
                    self.changed_at = None;
                    self.loaded = true;
                }
                let _ = reply.send(r.map_err(Into::into));
            }
            Command::Resume { reply } => {
                let r = match (self.fault.take(), self.table.faulted()) {
                    (Some(_), _) => Ok(()),
                    (None, 0) => Err(ProjectionError::Conflict(format!(
                        "projection `{name}` is not faulted: nothing to resume"
                    ))),
                    (None, n) => Err(ProjectionError::Conflict(format!(
                        "projection `{name}` has {n} faulted partition(s) (`hume partitions \
                         {name} --faulted` lists them): resume, skip or reset each with \
                         --partition KEY"
                    ))),
                };
                let _ = reply.send(r);
            }
            Command::Skip { position, reply } => {
                self.cursor.skip(position);
                self.fault = None;
                let _ = reply.send(Ok(()));
            }
            Command::Reconfigure { options, reply, .. } => {
                // Limits apply to the next instances; cadence and batch size
                // are read from the options as they are used. (A new snapshot
                // store is a new version for a partitioned projection: see
                // `deployment::change`.)
                self.folding.limits = crate::projection::travel::limits_of(&options);
                self.folding.release();
                if let Some(n) = options.workers {
                    self.cfg.workers = n as usize;
                } else {
                    self.cfg.workers = std::thread::available_parallelism().map_or(1, |n| n.get());
                }
                self.cfg.version.options = *options;
                let _ = reply.send(Ok(()));
            }
            Command::Hibernate => {}
            Command::Shutdown { snapshot, reply } => {
                if snapshot {
                    self.persist_logged().await;
                }
                let _ = reply.send(());
                return true;
            }
        }
        false
    }

    fn partition_required(&self) -> ProjectionError {
        ProjectionError::PartitionRequired {
            name: self.cfg.name.clone(),
            by: self.cfg.by.to_string(),
        }
    }

    /// Answer a read now.
    async fn answer(&mut self, cmd: Command) {
        let consistent = target_of(&cmd).is_some();
        let pc = match cmd {
            Command::Wait { reply, .. } => {
                let _ = reply.send(Ok(self.cursor.scanned()));
                return;
            }
            Command::Partitioned(pc) => *pc,
            other => {
                fail(
                    other,
                    ProjectionError::Conflict("unexpected command".to_string()),
                );
                return;
            }
        };
        match pc {
            PartitionCommand::Read { key, reply, .. } => {
                let _ = reply.send(self.view(&key, consistent));
            }
            PartitionCommand::ReadAt { key, at, reply } => {
                let _ = reply.send(self.state_at(&key, at).await);
            }
            PartitionCommand::Query {
                key,
                request,
                reply,
                ..
            } => {
                let r = match self.view(&key, consistent) {
                    Ok(view) => self.query(view, &request).await,
                    Err(err) => Err(err),
                };
                let _ = reply.send(r);
            }
            PartitionCommand::Repair {
                key,
                what,
                forget,
                reply,
            } => {
                for position in forget {
                    self.cursor.unskip(position);
                }
                let _ = reply.send(self.repair(&key, what).await);
            }
            PartitionCommand::SkipsOf { key, reply } => {
                let _ = reply.send(self.skips_of(&key).await);
            }
            PartitionCommand::List { query, reply } => {
                let _ = reply.send(Ok(self.table.list(&query)));
            }
            PartitionCommand::States {
                after,
                limit,
                reply,
                ..
            } => {
                let json = self.cfg.plugin.info().is_json();
                let page = self
                    .table
                    .states(after.as_deref(), limit)
                    .into_iter()
                    .map(|(k, offset, state)| {
                        (
                            k,
                            StateView {
                                offset,
                                state,
                                json,
                            },
                        )
                    })
                    .collect();
                let _ = reply.send(Ok(page));
            }
        }
    }

    /// One partition's state; a consistent read of a faulted one fails.
    fn view(&self, key: &str, consistent: bool) -> Result<StateView, ProjectionError> {
        let part = self
            .table
            .get(key)
            .ok_or_else(|| ProjectionError::NoPartition {
                name: self.cfg.name.clone(),
                key: key.to_string(),
            })?;
        if let (Some(f), true) = (&part.fault, consistent) {
            return Err(ProjectionError::PartitionFaulted {
                name: self.cfg.name.clone(),
                key: key.to_string(),
                position: f.position,
                kind: f.kind.clone(),
                error: f.error.clone(),
            });
        }
        Ok(StateView {
            offset: part.last_position,
            state: part.state.clone(),
            json: self.cfg.plugin.info().is_json(),
        })
    }

    /// Ask the plugin's `query` over a partition's state, in an instance
    /// brought up for it and dropped after.
    async fn query(&self, view: StateView, request: &[u8]) -> Result<Vec<u8>, ProjectionError> {
        let name = self.cfg.name.clone();
        let plugin_err = |source| ProjectionError::Plugin {
            name: name.clone(),
            source,
        };
        let f = &self.folding;
        let mut folder = Folder::start_from(
            &f.plugin,
            &f.name,
            Some((view.offset, &view.state)),
            f.strict,
            f.limits,
        )
        .await
        .map_err(|e| match e {
            FoldError::Instance { source, .. } | FoldError::Plugin { source, .. } => {
                plugin_err(source)
            }
            other => ProjectionError::Conflict(other.to_string()),
        })?;
        folder
            .instance_mut()
            .query(request)
            .await
            .map_err(plugin_err)
    }
}

fn closed(cmd: &Command) -> bool {
    match cmd {
        Command::Partitioned(pc) => match &**pc {
            PartitionCommand::Read { reply, .. } => reply.is_closed(),
            PartitionCommand::Query { reply, .. } => reply.is_closed(),
            PartitionCommand::States { reply, .. } => reply.is_closed(),
            _ => false,
        },
        Command::Wait { reply, .. } => reply.is_closed(),
        _ => false,
    }
}
