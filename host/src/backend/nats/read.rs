//! Reads of the JetStream log: subject-filtered batch gets (`DIRECT.GET`),
//! and for scans in progress a reader ahead ([`super::ahead`]).

use futures::{StreamExt, TryStreamExt};
use jetstream_extra::batch_fetch::{BatchFetchErrorKind, BatchFetchExt};

use super::ahead::{Body, Filtering, Reader};
use super::log::{boxed, storage};
use super::subject::{self, LOG_SUBJECTS};
use super::NatsLog;
use crate::log::{codec, EventLog, LogError, Page, Selector};

/// Messages per batch get (the server's limit).
const MAX_FETCH: usize = 1000;
/// Messages examined by one filtered read at most.
const MAX_SCAN: usize = 100_000;
/// Pages at least this big start a reader ahead when more follows.
const READ_AHEAD_FROM: usize = 100;

/// What one batch get (or a reader ahead) returned.
struct Fetched {
    messages: Vec<(u64, Body)>,
    /// Did it reach the end of what matches right now?
    at_end: bool,
    /// Messages matching the filter after the last one, as the server
    /// counted them (batch gets only).
    pending: Option<u64>,
    /// Every matching message up to this sequence is in `messages` (or
    /// was before): a reader may have passed messages that do not match.
    scanned_to: u64,
}

impl NatsLog {
    /// One batch get of up to `want` messages on `filter` from `from`.
    async fn fetch(&self, from: u64, filter: &str, want: usize) -> Result<Fetched, LogError> {
        let want = want.clamp(1, MAX_FETCH);
        let mut builder = self.js.get_batch(&self.name, want);
        if filter != LOG_SUBJECTS {
            builder = builder.subject(filter);
        }
        let mut batch = builder
            .sequence(from.max(1))
            .send()
            .await
            .map_err(|e| storage("reading events")(boxed(e)))?;
        let mut messages = Vec::new();
        let mut pending = None;
        while let Some(m) = batch.next().await {
            match m {
                Ok(m) => {
                    pending = m
                        .headers
                        .get("Nats-Num-Pending")
                        .and_then(|v| v.as_str().parse::<u64>().ok());
                    messages.push((m.sequence, Body::Raw(m.payload)));
                }
                Err(e) if e.kind() == BatchFetchErrorKind::NoMessages => break,
                Err(e) => return Err(storage("reading events")(boxed(e))),
            }
        }
        let at_end = match pending {
            Some(n) => n == 0,
            None => messages.len() < want,
        };
        let scanned_to = messages.last().map_or(from - 1, |m| m.0);
        Ok(Fetched {
            messages,
            at_end,
            pending,
            scanned_to,
        })
    }

    pub(super) async fn read_now(
        &self,
        from: u64,
        selector: &Selector,
        limit: usize,
    ) -> Result<Page, LogError> {
        let from = from.max(1);
        let head_before = self.head();
        let (filter, exact) = subject::filter(selector);
        let mut page = Page {
            events: Vec::new(),
            last_scanned: from - 1,
            next: None,
        };
        if limit == 0 {
            page.next = Some(from);
            return Ok(page);
        }
        // A scan in progress continues on its reader ahead, if one is kept.
        let mut reader = self.ahead.take(&filter, from);
        let mut scanned = 0;
        loop {
            let want = if exact {
                limit - page.events.len()
            } else {
                MAX_FETCH
            };
            let at = page.last_scanned + 1;
            let ahead = match reader.as_mut() {
                Some(r) => r.take(at, want).await,
                None => None,
            };
            let fetched = match ahead {
                Some((messages, scanned_to)) => Fetched {
                    messages,
                    at_end: false,
                    pending: None,
                    scanned_to,
                },
                None => {
                    reader = None;
                    self.fetch(at, &filter, want).await?
                }
            };
            scanned += fetched.messages.len();
            let mut messages = fetched.messages.into_iter();
            while let Some((position, body)) = messages.next() {
                if page.events.len() >= limit {
                    if let Some(r) = reader.as_mut() {
                        r.give_back(std::iter::once((position, body)).chain(messages).collect());
                    }
                    page.next = Some(page.last_scanned + 1);
                    return Ok(self.keep_reading(page, reader, &filter, limit, None));
                }
                let event = body.into_event(position)?;
                if exact || selector.matches(&event.stream) {
                    page.events.push(event);
                }
                page.last_scanned = position;
            }
            page.last_scanned = page.last_scanned.max(fetched.scanned_to);
            if fetched.at_end {
                page.last_scanned = page.last_scanned.max(head_before);
                return Ok(page);
            }
            if page.events.len() >= limit || scanned >= MAX_SCAN {
                page.next = Some(page.last_scanned + 1);
                return Ok(self.keep_reading(page, reader, &filter, limit, fetched.pending));
            }
        }
    }

    /// A page that stopped before the end of the log: keep its reader for
    /// the read that continues it, or start one for a big enough page (a
    /// scan, most likely a projection catching up). `pending`: how many
    /// messages after the page match, if the server said.
    fn keep_reading(
        &self,
        page: Page,
        reader: Option<Reader>,
        filter: &str,
        limit: usize,
        pending: Option<u64>,
    ) -> Page {
        let next = page.last_scanned + 1;
        match reader {
            Some(r) if r.next() == next => self.ahead.put(r),
            Some(_) => {}
            None if limit >= READ_AHEAD_FROM && self.ahead.enabled() => {
                // Filtering costs the server about as much as delivering:
                // when most of what is left matches, take everything and
                // filter here.
                let left = self.head().saturating_sub(page.last_scanned);
                let mostly = filter != LOG_SUBJECTS
                    && pending.is_some_and(|matching| matching.saturating_mul(2) >= left);
                let how = if mostly {
                    Filtering::Here
                } else {
                    Filtering::OnServer
                };
                let inbox = self.js.client().new_inbox();
                let reader = self.ahead.start(&self.stream, inbox, filter, next, how);
                self.ahead.put(reader)
            }
            None => {}
        }
        page
    }

    /// The lowest sequence from which the next message of `subject` has a
    /// revision of at least `revision` (binary search over direct gets).
    async fn seek(&self, subject: &str, revision: u64, last_seq: u64) -> Result<u64, LogError> {
        let (mut lo, mut hi) = (1, last_seq);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let m = self
                .stream
                .direct_get_next_for_subject(subject, Some(mid))
                .await
                .map_err(|e| storage("finding a stream's revision")(boxed(e)))?;
            if decode(m.sequence, &m.payload)?.revision >= revision {
                hi = mid;
            } else {
                lo = m.sequence + 1;
            }
        }
        Ok(lo)
    }

    pub(super) async fn read_stream_now(
        &self,
        stream: &str,
        from: u64,
        limit: usize,
    ) -> Result<Page, LogError> {
        let from = from.max(1);
        let subject = subject::subject(stream);
        let (last_seq, current) = self.last_of(&subject).await?;
        let mut page = Page {
            events: Vec::new(),
            last_scanned: from - 1,
            next: None,
        };
        if current < from {
            return Ok(page);
        }
        let mut cursor = if from == 1 {
            1
        } else {
            self.seek(&subject, from, last_seq).await?
        };
        while page.events.len() < limit && page.last_scanned < current {
            let fetched = self
                .fetch(cursor, &subject, limit - page.events.len())
                .await?;
            let (at_end, none) = (fetched.at_end, fetched.messages.is_empty());
            for (position, body) in fetched.messages {
                let event = body.into_event(position)?;
                cursor = position + 1;
                if event.revision > current || page.events.len() >= limit {
                    break;
                }
                page.last_scanned = event.revision;
                page.events.push(event);
            }
            if at_end || none {
                break;
            }
        }
        page.next = (page.last_scanned < current).then_some(page.last_scanned + 1);
        Ok(page)
    }

    pub(super) async fn streams_now(&self) -> Result<Vec<(String, u64)>, LogError> {
        let mut info = self
            .stream
            .info_with_subjects(LOG_SUBJECTS)
            .await
            .map_err(|e| storage("listing streams")(boxed(e)))?;
        let mut out = Vec::new();
        while let Some((subject, count)) = info
            .try_next()
            .await
            .map_err(|e| storage("listing streams")(boxed(e)))?
        {
            if let Some(name) = subject::stream_of(&subject) {
                out.push((name, count as u64));
            }
        }
        out.sort();
        Ok(out)
    }
}

pub(super) fn decode(
    position: u64,
    payload: &[u8],
) -> Result<crate::event::RecordedEvent, LogError> {
    codec::decode(position, payload).map_err(|e| LogError::Corrupt {
        key: format!("position {position}"),
        reason: e.0.to_string(),
    })
}
