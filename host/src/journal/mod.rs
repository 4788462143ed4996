//! Per-projection logs (`hume logs NAME`): the plugin's own lines (its
//! `log` import, stdout and stderr) and the projection's lifecycle (ready,
//! caught up, snapshots, faults, versions), each projection's kept in a
//! bounded ring in memory and served over HTTP.
//!
//! [`Journals`] holds the rings; [`capture::JournalLayer`] fills them from
//! the server's `tracing` events, so nothing in the runtime calls it.

pub mod capture;

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use serde::Serialize;
use tokio::sync::Notify;

/// Lines kept per projection; older ones are dropped first.
pub const LINES_PER_PROJECTION: usize = 500;
/// Longest line kept, bytes (longer ones are cut, marked with `…`).
pub const MAX_LINE_BYTES: usize = 4096;

/// One line of a projection's log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct JournalLine {
    /// Increases by one per line of this projection, from 1.
    pub seq: u64,
    /// When it was logged, ms since the epoch.
    pub at: u64,
    /// `error`, `warn`, `info`, `debug` or `trace`.
    pub level: &'static str,
    /// `plugin` (its `log` import), `stdout`, `stderr`, or `host` (the
    /// projection's lifecycle).
    pub source: &'static str,
    /// The text.
    pub message: String,
}

/// A bounded ring of one projection's lines.
#[derive(Debug)]
pub struct Journal {
    lines: VecDeque<JournalLine>,
    next_seq: u64,
    capacity: usize,
}

/// What a read of a journal returns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Page {
    /// The lines after the asked position, oldest first.
    pub lines: Vec<JournalLine>,
    /// Ask for lines after this next time.
    pub next: u64,
    /// Lines after the asked position that were dropped (the ring is
    /// bounded) before they could be read.
    pub dropped: u64,
}

impl Journal {
    /// An empty ring of `capacity` lines (at least 1).
    pub fn new(capacity: usize) -> Journal {
        Journal {
            lines: VecDeque::new(),
            next_seq: 1,
            capacity: capacity.max(1),
        }
    }

    /// Add a line, dropping the oldest when full; returns its `seq`.
    pub fn push(
        &mut self,
        at: u64,
        level: &'static str,
        source: &'static str,
        mut message: String,
    ) -> u64 {
        if message.len() > MAX_LINE_BYTES {
            let mut cut = MAX_LINE_BYTES;
            while !message.is_char_boundary(cut) {
                cut -= 1;
            }
            message.truncate(cut);
            message.push('…');
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        if self.lines.len() == self.capacity {
            self.lines.pop_front();
        }
        self.lines.push_back(JournalLine {
            seq,
            at,
            level,
            source,
            message,
        });
        seq
    }

    /// At most `limit` lines with `seq > after`, oldest first.
    pub fn after(&self, after: u64, limit: usize) -> Page {
        let first_kept = self.lines.front().map_or(self.next_seq, |l| l.seq);
        let dropped = first_kept.saturating_sub(after + 1);
        let lines: Vec<JournalLine> = self
            .lines
            .iter()
            .filter(|l| l.seq > after)
            .take(limit)
            .cloned()
            .collect();
        let next = lines.last().map_or(after.max(first_kept - 1), |l| l.seq);
        Page {
            lines,
            next,
            dropped,
        }
    }
}

/// One projection's ring and the signal that it grew.
#[derive(Debug)]
struct Entry {
    journal: Mutex<Journal>,
    grew: Notify,
}

/// Every projection's journal, by name.
#[derive(Debug, Default)]
pub struct Journals {
    entries: Mutex<HashMap<String, Arc<Entry>>>,
}

impl Journals {
    /// An empty set.
    pub fn new() -> Arc<Journals> {
        Arc::new(Journals::default())
    }

    fn entry(&self, projection: &str) -> Arc<Entry> {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries
            .entry(projection.to_string())
            .or_insert_with(|| {
                Arc::new(Entry {
                    journal: Mutex::new(Journal::new(LINES_PER_PROJECTION)),
                    grew: Notify::new(),
                })
            })
            .clone()
    }

    /// Add a line to `projection`'s journal and wake its followers.
    pub fn push(
        &self,
        projection: &str,
        at: u64,
        level: &'static str,
        source: &'static str,
        message: String,
    ) {
        let entry = self.entry(projection);
        entry
            .journal
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(at, level, source, message);
        entry.grew.notify_waiters();
    }

    /// Lines after `after`; when there are none, wait for one until
    /// `wait` ends (or `stop` resolves) and read again.
    pub async fn read(
        &self,
        projection: &str,
        after: u64,
        limit: usize,
        wait: Option<std::time::Duration>,
        stop: impl std::future::Future<Output = ()>,
    ) -> Page {
        let entry = self.entry(projection);
        // Registered before the first look, so a line pushed in between
        // still wakes this read.
        let grew = entry.grew.notified();
        tokio::pin!(grew);
        grew.as_mut().enable();
        let page = Self::page(&entry, after, limit);
        let Some(wait) = wait.filter(|_| page.lines.is_empty()) else {
            return page;
        };
        tokio::select! {
            // A line landed: read it below.
            _ = grew => {}
            // Nothing within the wait: answer the empty page.
            _ = tokio::time::sleep(wait) => {}
            // The server is shutting down: do not hold it.
            _ = stop => {}
        }
        Self::page(&entry, after, limit)
    }

    fn page(entry: &Entry, after: u64, limit: usize) -> Page {
        entry
            .journal
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .after(after, limit)
    }

    /// Forget a projection's journal (it was undeployed).
    pub fn remove(&self, projection: &str) {
        self.entries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(projection);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ring_keeps_the_newest_and_counts_what_was_dropped() {
        let mut j = Journal::new(3);
        for i in 1..=5 {
            assert_eq!(j.push(i, "info", "host", format!("line {i}")), i);
        }
        let page = j.after(0, 10);
        let seqs: Vec<u64> = page.lines.iter().map(|l| l.seq).collect();
        assert_eq!(seqs, vec![3, 4, 5]);
        assert_eq!((page.next, page.dropped), (5, 2));
        let page = j.after(3, 1);
        assert_eq!(page.lines[0].message, "line 4");
        assert_eq!((page.next, page.dropped), (4, 0));
        let page = j.after(5, 10);
        assert!(page.lines.is_empty());
        assert_eq!((page.next, page.dropped), (5, 0));
    }

    #[test]
    fn an_empty_journal_reads_empty_and_long_lines_are_cut() {
        let mut j = Journal::new(2);
        assert_eq!(
            j.after(0, 5),
            Page {
                lines: vec![],
                next: 0,
                dropped: 0
            }
        );
        j.push(1, "warn", "plugin", "é".repeat(MAX_LINE_BYTES));
        let line = &j.after(0, 1).lines[0];
        assert!(line.message.len() <= MAX_LINE_BYTES + '…'.len_utf8());
        assert!(line.message.ends_with('…'));
    }

    #[tokio::test]
    async fn a_follower_wakes_when_a_line_lands() {
        let journals = Journals::new();
        let reader = {
            let journals = journals.clone();
            tokio::spawn(async move {
                journals
                    .read(
                        "p",
                        0,
                        10,
                        Some(std::time::Duration::from_secs(30)),
                        std::future::pending(),
                    )
                    .await
            })
        };
        tokio::task::yield_now().await;
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        journals.push("p", 1, "info", "host", "ready".into());
        let page = tokio::time::timeout(std::time::Duration::from_secs(5), reader)
            .await
            .expect("woken before the wait ended")
            .unwrap();
        assert_eq!(page.lines.len(), 1);
        assert_eq!(page.lines[0].message, "ready");
    }
}
