//! The read side of [`super::RocksLog`]: bounded pages by position (all,
//! category, several streams) through the events family, and by stream
//! through the stream index. Blocking: the async [`crate::log::EventLog`]
//! calls run these on the blocking pool.

use std::sync::atomic::Ordering;

use rocksdb::ReadOptions;

use super::db::{CF_EVENTS, CF_STREAMS, CF_STREAM_INDEX};
use super::log::{be_u64, index_key, storage, Reader};
use crate::event::{EventRef, RecordedEvent};
use crate::log::{codec, LogError, Page, Selector};

impl Reader {
    pub(super) fn head(&self) -> u64 {
        self.head.load(Ordering::Acquire)
    }

    fn decode(position: u64, value: &[u8]) -> Result<RecordedEvent, LogError> {
        codec::decode(position, value).map_err(|e| LogError::Corrupt {
            key: format!("position {position}"),
            reason: e.0.into(),
        })
    }

    pub(super) fn scan(
        &self,
        from_position: u64,
        selector: &Selector,
        limit: usize,
        mut visit: impl FnMut(EventRef<'_>),
    ) -> Result<Scan, LogError> {
        let head = self.head();
        let from = from_position.max(1);
        let mut out = Scan {
            matched: 0,
            last_scanned: from - 1,
            next: None,
        };
        if from > head || limit == 0 {
            out.next = (limit == 0 && from <= head).then_some(from);
            return Ok(out);
        }
        let budget = if selector.is_all() {
            limit
        } else {
            self.options.max_scan.max(limit)
        };
        let mut opts = ReadOptions::default();
        opts.set_iterate_upper_bound((head + 1).to_be_bytes().to_vec());
        // No explicit readahead: each page opens a fresh iterator, and a
        // fixed readahead would re-read megabytes per page; RocksDB's own
        // auto-readahead grows as a long scan proceeds.
        // RocksDB counts perf statistics per thread on every step by
        // default (thread-local updates that cost ~5% of a scan); Hume does
        // not read them.
        rocksdb::perf::set_perf_stats(rocksdb::perf::PerfStatsLevel::Disable);
        let cf = self.db.cf(CF_EVENTS);
        let mut it = self.db.raw().raw_iterator_cf_opt(&cf, opts);
        it.seek(from.to_be_bytes());
        let mut expect = from;
        let mut scanned = 0usize;
        let mut stopped = false;
        while let (Some(k), Some(v)) = (it.key(), it.value()) {
            let pos = be_u64(k, "event key")?;
            if pos != expect {
                return Err(LogError::Corrupt {
                    key: format!("position {expect}"),
                    reason: format!("missing: the next stored event is at position {pos}"),
                });
            }
            expect += 1;
            let corrupt = |e: codec::DecodeError| LogError::Corrupt {
                key: format!("position {pos}"),
                reason: e.0.into(),
            };
            let stream = codec::peek_stream(v).map_err(corrupt)?;
            if selector.matches_bytes(stream) {
                visit(codec::decode_ref(pos, v).map_err(corrupt)?);
                out.matched += 1;
            }
            out.last_scanned = pos;
            scanned += 1;
            if out.matched >= limit || scanned >= budget {
                stopped = true;
                break;
            }
            it.next();
        }
        it.status().map_err(storage("reading events"))?;
        if out.last_scanned < head {
            if !stopped {
                // The iterator ended before the head it was bounded by.
                return Err(LogError::Corrupt {
                    key: format!("position {expect}"),
                    reason: format!("missing below the head {head}"),
                });
            }
            out.next = Some(out.last_scanned + 1);
        }
        Ok(out)
    }
}

/// What a [`RocksLog::scan`] covered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scan {
    /// Events handed to the visitor.
    pub matched: usize,
    /// Every position up to this one was examined (see [`Page::last_scanned`]).
    pub last_scanned: u64,
    /// Where to continue, or `None` when the scan reached the head.
    pub next: Option<u64>,
}

impl Reader {
    pub(super) fn read(
        &self,
        from_position: u64,
        selector: &Selector,
        limit: usize,
    ) -> Result<Page, LogError> {
        let mut events = Vec::new();
        let head = self.head();
        if from_position.max(1) <= head {
            events.reserve(
                limit
                    .min(16_384)
                    .min((head + 1 - from_position.max(1)) as usize),
            );
        }
        let scan = self.scan(from_position, selector, limit, |e| {
            events.push(e.to_owned())
        })?;
        Ok(Page {
            events,
            last_scanned: scan.last_scanned,
            next: scan.next,
        })
    }

    pub(super) fn read_stream(
        &self,
        stream: &str,
        from_revision: u64,
        limit: usize,
    ) -> Result<Page, LogError> {
        let head = self.head();
        let from = from_revision.max(1);
        let prefix_len = stream.len() + 1;
        let mut opts = ReadOptions::default();
        let mut upper = stream.as_bytes().to_vec();
        upper.push(1);
        opts.set_iterate_upper_bound(upper);
        let cf = self.db.cf(CF_STREAM_INDEX);
        let mut it = self.db.raw().raw_iterator_cf_opt(&cf, opts);
        it.seek(index_key(stream.as_bytes(), from));
        let mut positions = Vec::new();
        let mut more = false;
        while let (Some(k), Some(v)) = (it.key(), it.value()) {
            if k.len() != prefix_len + 8 {
                return Err(LogError::Corrupt {
                    key: format!("stream index of {stream:?}"),
                    reason: "key of the wrong length".into(),
                });
            }
            let pos = be_u64(v, "stream index value")?;
            if pos > head {
                break; // written but not yet acknowledged
            }
            if positions.len() == limit {
                more = true;
                break;
            }
            positions.push(pos);
            it.next();
        }
        it.status().map_err(storage("reading the stream index"))?;
        let events_cf = self.db.cf(CF_EVENTS);
        let keys: Vec<[u8; 8]> = positions.iter().map(|p| p.to_be_bytes()).collect();
        let values = self
            .db
            .raw()
            .batched_multi_get_cf(&events_cf, keys.iter(), true);
        let mut events = Vec::with_capacity(positions.len());
        for (i, (pos, value)) in positions.iter().zip(values).enumerate() {
            let value = value.map_err(storage("reading stream events"))?;
            let value = value.ok_or_else(|| LogError::Corrupt {
                key: format!("position {pos}"),
                reason: format!(
                    "indexed as {stream:?} revision {} but missing",
                    from + i as u64
                ),
            })?;
            let e = Self::decode(*pos, &value)?;
            if e.stream != stream || e.revision != from + i as u64 {
                return Err(LogError::Corrupt {
                    key: format!("position {pos}"),
                    reason: format!(
                        "indexed as {stream:?} revision {} but holds {:?} revision {}",
                        from + i as u64,
                        e.stream,
                        e.revision
                    ),
                });
            }
            events.push(e);
        }
        let last = events.last().map_or(from - 1, |e| e.revision);
        Ok(Page {
            events,
            last_scanned: last,
            next: more.then_some(last + 1),
        })
    }

    pub(super) fn streams(&self) -> Result<Vec<(String, u64)>, LogError> {
        let cf = self.db.cf(CF_STREAMS);
        let mut it = self.db.raw().raw_iterator_cf(&cf);
        it.seek_to_first();
        let mut out = Vec::new();
        while let (Some(k), Some(v)) = (it.key(), it.value()) {
            let name = String::from_utf8(k.to_vec()).map_err(|_| LogError::Corrupt {
                key: "streams".into(),
                reason: "a stream name is not UTF-8".into(),
            })?;
            out.push((name, be_u64(v, "stream revision")?));
            it.next();
        }
        it.status().map_err(storage("listing streams"))?;
        Ok(out)
    }
}
