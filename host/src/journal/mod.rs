//! Per-projection logs (`hume logs NAME`): the plugin's own lines (its
//! `log` import, stdout and stderr) and the projection's lifecycle (ready,
//! caught up, snapshots, faults, versions), each projection's kept in a
//! bounded ring in memory and served over HTTP.
//!
//! [`Journals`] holds the rings; [`capture::JournalLayer`] fills them from
//! the server's `tracing` events, so nothing in the runtime calls it.

pub mod capture;

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, Weak};

use serde::Serialize;
use tokio::sync::Notify;

/// Lines kept per projection; older ones are dropped first.
pub const LINES_PER_PROJECTION: usize = 500;
/// Bytes of lines kept by the whole server (about): beyond it the oldest
/// lines of any projection go first, so 100,000 projections cannot hold
/// 500 lines each.
pub const MAX_TOTAL_BYTES: usize = 32 << 20;
/// What a line costs besides its message, bytes (about).
const LINE_OVERHEAD: usize = 64;
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

fn cost(line: &JournalLine) -> usize {
    line.message.len() + LINE_OVERHEAD
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

    /// Add a line, dropping the oldest when full; returns its `seq` and
    /// the bytes (as [`cost`] counts them) added and freed.
    pub fn push(
        &mut self,
        at: u64,
        level: &'static str,
        source: &'static str,
        mut message: String,
    ) -> (u64, usize, usize) {
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
        let mut freed = 0;
        if self.lines.len() == self.capacity {
            freed = self.lines.pop_front().map_or(0, |l| cost(&l));
        }
        let line = JournalLine {
            seq,
            at,
            level,
            source,
            message,
        };
        let added = cost(&line);
        self.lines.push_back(line);
        (seq, added, freed)
    }

    /// Drop the lines up to `seq` (server-wide budget); the bytes freed.
    pub fn drop_upto(&mut self, seq: u64) -> usize {
        let mut freed = 0;
        while self.lines.front().is_some_and(|l| l.seq <= seq) {
            freed += self.lines.pop_front().map_or(0, |l| cost(&l));
        }
        if self.lines.is_empty() {
            self.lines.shrink_to_fit();
        }
        freed
    }

    /// Is the line `seq` still kept?
    fn holds(&self, seq: u64) -> bool {
        self.lines.front().is_some_and(|l| l.seq <= seq) && seq < self.next_seq
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

/// Every line kept, oldest first, with what it costs: the server-wide
/// budget drops from the front. Entries of lines a journal dropped itself
/// (its own cap) are skipped when reached, and swept out when they
/// outnumber the kept lines.
#[derive(Debug, Default)]
struct Ages {
    order: VecDeque<(Weak<Entry>, u64)>,
    bytes: usize,
}

/// Every projection's journal, by name.
#[derive(Debug, Default)]
pub struct Journals {
    entries: Mutex<HashMap<String, Arc<Entry>>>,
    ages: Mutex<Ages>,
    /// Bytes the whole server keeps (default [`MAX_TOTAL_BYTES`]).
    max_bytes: usize,
}

impl Journals {
    /// An empty set.
    pub fn new() -> Arc<Journals> {
        Journals::with_budget(MAX_TOTAL_BYTES)
    }

    /// An empty set keeping about `max_bytes` of lines in all.
    pub fn with_budget(max_bytes: usize) -> Arc<Journals> {
        Arc::new(Journals {
            max_bytes,
            ..Journals::default()
        })
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
        // The journal's lock is let go before the budget's is taken (the
        // budget takes journal locks while it holds its own).
        let (seq, added, freed) = entry
            .journal
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(at, level, source, message);
        entry.grew.notify_waiters();
        let mut ages = self.ages.lock().unwrap_or_else(|p| p.into_inner());
        ages.bytes = (ages.bytes + added).saturating_sub(freed);
        ages.order.push_back((Arc::downgrade(&entry), seq));
        while ages.bytes > self.max_bytes {
            let Some((oldest, seq)) = ages.order.pop_front() else {
                break;
            };
            if let Some(e) = oldest.upgrade() {
                let freed = e
                    .journal
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .drop_upto(seq);
                ages.bytes = ages.bytes.saturating_sub(freed);
            }
        }
        // Entries of lines already gone (a journal's own cap, an undeploy).
        if ages.order.len() > 4096 && ages.order.len() > 2 * ages.bytes / LINE_OVERHEAD {
            ages.order.retain(|(w, seq)| {
                w.upgrade().is_some_and(|e| {
                    e.journal
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .holds(*seq)
                })
            });
        }
    }

    /// Bytes of lines kept now (as the budget counts them).
    pub fn kept_bytes(&self) -> usize {
        self.ages.lock().unwrap_or_else(|p| p.into_inner()).bytes
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
        let removed = self
            .entries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(projection);
        if let Some(e) = removed {
            let freed = e
                .journal
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .drop_upto(u64::MAX);
            let mut ages = self.ages.lock().unwrap_or_else(|p| p.into_inner());
            ages.bytes = ages.bytes.saturating_sub(freed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ring_keeps_the_newest_and_counts_what_was_dropped() {
        let mut j = Journal::new(3);
        for i in 1..=5 {
            assert_eq!(j.push(i, "info", "host", format!("line {i}")).0, i);
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

    #[test]
    fn the_server_wide_budget_drops_the_oldest_lines_of_any_projection() {
        let line = 100 + LINE_OVERHEAD;
        let journals = Journals::with_budget(10 * line);
        for i in 0..6 {
            journals.push("a", i, "info", "host", "x".repeat(100));
        }
        for i in 0..6 {
            journals.push("b", i, "info", "host", "y".repeat(100));
        }
        // 12 lines do not fit in 10: the two oldest (both of `a`) went.
        assert_eq!(journals.kept_bytes(), 10 * line);
        let a = journals.entry("a").journal.lock().unwrap().after(0, 100);
        assert_eq!((a.lines.len(), a.dropped, a.lines[0].seq), (4, 2, 3));
        let b = journals.entry("b").journal.lock().unwrap().after(0, 100);
        assert_eq!(b.lines.len(), 6);
        journals.remove("b");
        assert_eq!(journals.kept_bytes(), 4 * line);
    }

    #[test]
    fn the_budget_stays_bounded_when_journals_drop_their_own_lines() {
        let journals = Journals::with_budget(usize::MAX);
        for i in 0..(LINES_PER_PROJECTION as u64 * 30) {
            journals.push("noisy", i, "info", "host", "z".into());
        }
        let kept = LINES_PER_PROJECTION * (1 + LINE_OVERHEAD);
        assert_eq!(journals.kept_bytes(), kept);
        let order = journals.ages.lock().unwrap().order.len();
        assert!(
            order <= 4096 + LINES_PER_PROJECTION * 2,
            "{order} entries kept"
        );
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
