//! The shared tail of the log: one task reads every new event once and keeps
//! the most recent ones in memory, indexed by stream, so that thousands of
//! live projections woken by the same append do not each scan the log for
//! their few events (that would cost projections × events).
//!
//! A projection reads through [`Feed::read`]: from memory when its cursor is
//! inside the tail, from the log otherwise (while rebuilding from far
//! behind). Wake-ups are targeted: a projection following exact streams is
//! woken (through its [`Subscription`]) only when one of its streams gets
//! events; one following categories or everything is woken on every new
//! batch. [`Feed::caught_up_to`] tells an idle projection how far it has
//! implicitly scanned (nothing of its streams since), and [`Feed::watch`]
//! moves with every batch (for reads waiting on a position).

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use tokio::sync::{watch, Notify};
use tracing::warn;

use crate::event::RecordedEvent;
use crate::log::{EventLog, LogError, Page, Selector};

/// Events kept in memory by default.
pub const DEFAULT_TAIL_EVENTS: usize = 65_536;

/// Most events one read examines in the tail (bounds the time the lock is held).
const MAX_TAIL_SCAN: usize = 65_536;

struct Tail {
    /// Position of `events[0]`; `end + 1` when empty.
    first: u64,
    /// Last position ingested: every event up to it is durable in the log.
    end: u64,
    events: VecDeque<RecordedEvent>,
    /// Positions of the tail's events, per stream, ascending.
    by_stream: HashMap<String, VecDeque<u64>>,
    /// The log head when the feed started: later events are all known.
    start: u64,
    /// Per stream, its latest positions since the feed started (kept
    /// beyond the tail, bounded per stream), so an idle projection's cursor
    /// can jump to just before its next event.
    history: HashMap<String, StreamHistory>,
}

/// The latest positions of one stream.
#[derive(Default)]
struct StreamHistory {
    /// Ascending; at most [`HISTORY_PER_STREAM`].
    positions: VecDeque<u64>,
    /// The largest position dropped from `positions` (0: none dropped).
    trimmed: u64,
}

/// Positions remembered per stream beyond the tail.
const HISTORY_PER_STREAM: usize = 32;

/// Who to wake when events land.
#[derive(Default)]
struct Subscribers {
    /// Exact stream name → subscription id → its wake-up.
    by_stream: HashMap<String, HashMap<u64, Arc<Notify>>>,
    /// Category / all followers: woken on every batch.
    scanners: HashMap<u64, Arc<Notify>>,
}

/// The shared tail and the task filling it.
pub(crate) struct Feed {
    log: Arc<dyn EventLog>,
    tail: RwLock<Tail>,
    end: watch::Sender<u64>,
    capacity: usize,
    subscribers: Mutex<Subscribers>,
    next_id: AtomicU64,
    /// Asks the refresher task to read the log's head from the store.
    refresh: Arc<Notify>,
}

/// Least time between two head refreshes (many projections' polls share one).
const REFRESH_SPACING: Duration = Duration::from_millis(100);

/// A projection's registration for wake-ups; unregisters when dropped.
pub(crate) struct Subscription {
    feed: Arc<Feed>,
    id: u64,
    streams: Option<Vec<String>>,
    notify: Arc<Notify>,
}

impl Subscription {
    /// Resolves when events of the followed streams may have landed (a
    /// wake-up sent while nobody waited is kept, never lost).
    pub async fn notified(&self) {
        self.notify.notified().await
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        let mut subs = self
            .feed
            .subscribers
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        match &self.streams {
            Some(streams) => {
                for s in streams {
                    if let Some(m) = subs.by_stream.get_mut(s) {
                        m.remove(&self.id);
                        if m.is_empty() {
                            subs.by_stream.remove(s);
                        }
                    }
                }
            }
            None => {
                subs.scanners.remove(&self.id);
            }
        }
    }
}

/// What a projection follows, prepared for tail reads.
#[derive(Debug, Clone)]
pub(crate) struct Follow {
    pub selector: Selector,
    /// `Some`: only exact stream names (index lookups); `None`: scan.
    pub exact: Option<Vec<String>>,
}

impl Follow {
    pub fn new(selector: Selector) -> Follow {
        let exact = selector.exact_streams();
        Follow { selector, exact }
    }
}

impl Feed {
    /// Start the feed at the log's current head (older events are read from
    /// the log) and spawn the task that follows it.
    pub fn start(log: Arc<dyn EventLog>, capacity: usize) -> Arc<Feed> {
        let mut head_rx = log.watch_head();
        let head = log.head();
        let (end, _) = watch::channel(head);
        let feed = Arc::new(Feed {
            log,
            tail: RwLock::new(Tail {
                first: head + 1,
                end: head,
                events: VecDeque::new(),
                by_stream: HashMap::new(),
                start: head,
                history: HashMap::new(),
            }),
            end,
            capacity: capacity.max(1),
            subscribers: Mutex::new(Subscribers::default()),
            next_id: AtomicU64::new(0),
            refresh: Arc::new(Notify::new()),
        });
        // The refresher: one store read of the head per request (requests
        // made meanwhile share the next one). A head that moved wakes the
        // task below through `head_rx`.
        let weak = Arc::downgrade(&feed);
        let refresh = feed.refresh.clone();
        tokio::spawn(async move {
            loop {
                refresh.notified().await;
                let Some(feed) = weak.upgrade() else { return };
                let log = feed.log.clone();
                drop(feed);
                if let Err(err) = log.fresh_head().await {
                    tracing::debug!(error = %err, "reading the log's head");
                }
                tokio::time::sleep(REFRESH_SPACING).await;
            }
        });
        let weak = Arc::downgrade(&feed);
        tokio::spawn(async move {
            loop {
                let Some(feed) = weak.upgrade() else { return };
                if let Err(err) = feed.ingest().await {
                    warn!(error = %err, "the projection feed cannot read the log; retrying");
                    drop(feed);
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                }
                let caught_up = feed.end() >= feed.log.head();
                drop(feed);
                if caught_up {
                    tokio::select! {
                        // New events are durable: read them.
                        changed = head_rx.changed() => {
                            if changed.is_err() {
                                // The log is gone (shutting down): poll slowly
                                // until the manager drops the feed.
                                tokio::time::sleep(Duration::from_secs(1)).await;
                            }
                        }
                        // Fallback in case a wake-up was missed.
                        _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    }
                }
            }
        });
        feed
    }

    /// The last position in the tail (every projection may read up to it).
    pub fn end(&self) -> u64 {
        *self.end.borrow()
    }

    /// Have the log's head read from the store soon (without waiting for
    /// it): the `catch_up_after` poll of a projection, so that one whose
    /// wake-ups were lost (another node's appends this node did not hear
    /// of) still finds the new events. Cheap; concurrent calls coalesce.
    pub fn refresh_head(&self) {
        self.refresh.notify_one();
    }

    /// A watch on [`Feed::end`].
    pub fn watch(&self) -> watch::Receiver<u64> {
        self.end.subscribe()
    }

    /// Register for wake-ups about what `follow` follows.
    pub fn subscribe(self: &Arc<Self>, follow: &Follow) -> Subscription {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let notify = Arc::new(Notify::new());
        let mut subs = self.subscribers.lock().unwrap_or_else(|p| p.into_inner());
        match &follow.exact {
            Some(streams) => {
                for s in streams {
                    subs.by_stream
                        .entry(s.clone())
                        .or_default()
                        .insert(id, notify.clone());
                }
            }
            None => {
                subs.scanners.insert(id, notify.clone());
            }
        }
        Subscription {
            feed: self.clone(),
            id,
            streams: follow.exact.clone(),
            notify,
        }
    }

    /// How far a projection that has examined everything up to `scanned`
    /// may move its cursor without missing anything: to just before the
    /// next event of its exact streams, or to the tail's end when there is
    /// none (categories and unknown gaps: `scanned`).
    pub fn caught_up_to(&self, scanned: u64, follow: &Follow) -> u64 {
        let Some(streams) = &follow.exact else {
            return scanned;
        };
        let tail = self.tail.read().unwrap_or_else(|p| p.into_inner());
        if scanned >= tail.end || scanned < tail.start {
            return scanned;
        }
        let mut target = tail.end;
        for s in streams {
            if let Some(h) = tail.history.get(s) {
                if h.trimmed > scanned {
                    return scanned;
                }
                let i = h.positions.partition_point(|p| *p <= scanned);
                if let Some(next) = h.positions.get(i) {
                    target = target.min(next - 1);
                }
            }
        }
        target.max(scanned)
    }

    /// Read one page of new events from the log into the tail, then wake
    /// the projections concerned.
    async fn ingest(&self) -> Result<(), LogError> {
        let from = self.end() + 1;
        if from > self.log.head() {
            return Ok(());
        }
        let page = self.log.read(from, &Selector::all(), 4096).await?;
        let streams: HashSet<String> = page.events.iter().map(|e| e.stream.clone()).collect();
        let mut tail = self.tail.write().unwrap_or_else(|p| p.into_inner());
        if tail.events.is_empty() {
            tail.first = from;
        }
        for e in page.events {
            tail.by_stream
                .entry(e.stream.clone())
                .or_default()
                .push_back(e.position);
            let h = tail.history.entry(e.stream.clone()).or_default();
            h.positions.push_back(e.position);
            if h.positions.len() > HISTORY_PER_STREAM {
                h.trimmed = h.positions.pop_front().expect("non-empty");
            }
            tail.events.push_back(e);
        }
        tail.end = page.last_scanned.max(tail.end);
        while tail.events.len() > self.capacity {
            let old = tail.events.pop_front().expect("non-empty");
            if let Some(q) = tail.by_stream.get_mut(&old.stream) {
                q.pop_front();
                if q.is_empty() {
                    tail.by_stream.remove(&old.stream);
                }
            }
            tail.first = old.position + 1;
        }
        if let Some(e) = tail.events.front() {
            tail.first = e.position;
        }
        let end = tail.end;
        drop(tail);
        self.end.send_replace(end);
        let subs = self.subscribers.lock().unwrap_or_else(|p| p.into_inner());
        for s in &streams {
            if let Some(m) = subs.by_stream.get(s) {
                m.values().for_each(|n| n.notify_one());
            }
        }
        subs.scanners.values().for_each(|n| n.notify_one());
        Ok(())
    }

    /// Up to `limit` events of `follow` from `from` (inclusive), from the
    /// tail when it holds `from`, else from the log.
    pub async fn read(&self, from: u64, follow: &Follow, limit: usize) -> Result<Page, LogError> {
        {
            let tail = self.tail.read().unwrap_or_else(|p| p.into_inner());
            if from >= tail.first && from <= tail.end {
                return Ok(read_tail(&tail, from, follow, limit));
            }
            if from > tail.end && tail.end >= self.log.head() {
                return Ok(Page {
                    events: Vec::new(),
                    last_scanned: from - 1,
                    next: None,
                });
            }
        }
        self.log.read(from, &follow.selector, limit).await
    }
}

fn read_tail(tail: &Tail, from: u64, follow: &Follow, limit: usize) -> Page {
    let index = |pos: u64| (pos - tail.first) as usize;
    let mut events = Vec::new();
    let mut last_scanned = tail.end;
    match &follow.exact {
        Some(streams) => {
            let mut positions: Vec<u64> = Vec::new();
            for s in streams {
                if let Some(q) = tail.by_stream.get(s) {
                    let start = q.partition_point(|p| *p < from);
                    positions.extend(q.range(start..).take(limit + 1));
                }
            }
            positions.sort_unstable();
            if positions.len() > limit {
                positions.truncate(limit);
                last_scanned = *positions.last().expect("limit > 0");
            }
            events.extend(positions.iter().map(|p| tail.events[index(*p)].clone()));
        }
        None => {
            let mut scanned = 0usize;
            for e in tail.events.range(index(from)..) {
                if follow.selector.matches(&e.stream) {
                    events.push(e.clone());
                }
                scanned += 1;
                if events.len() >= limit || scanned >= MAX_TAIL_SCAN {
                    last_scanned = e.position;
                    break;
                }
            }
        }
    }
    Page {
        next: (last_scanned < tail.end).then_some(last_scanned + 1),
        events,
        last_scanned,
    }
}

#[cfg(test)]
mod tests;
