//! The partitions of a partitioned projection, held as snapshot bytes (no
//! live plugin instance): their states, positions, counts and faults, which
//! changed since the last persisted snapshot, and paged listings.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::projection::status::Fault;
use crate::snapshot::PartitionRecord;

/// One partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Part {
    /// Position of its last event applied (or, when faulted, of the last
    /// one before the fault).
    pub last_position: u64,
    /// Events applied.
    pub events: u64,
    /// The plugin's state bytes.
    pub state: Vec<u8>,
    /// Set when one of its events failed: it folds nothing more.
    pub fault: Option<Fault>,
}

/// What `hume partitions` lists of one partition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionInfo {
    /// The key.
    pub partition: String,
    /// Position of its last applied event.
    pub last_position: u64,
    /// Events applied.
    pub events: u64,
    /// Size of its state, bytes.
    pub size: u64,
    /// Its fault, if faulted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fault: Option<Fault>,
}

/// A page of a listing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionPage {
    /// The partitions of this page, by key.
    pub partitions: Vec<PartitionInfo>,
    /// Pass as `after` for the next page; `None` on the last one.
    pub next: Option<String>,
}

/// Which partitions a listing asks for.
#[derive(Debug, Clone, Default)]
pub struct ListQuery {
    /// Keys starting with this.
    pub prefix: Option<String>,
    /// Keys after this one (paging).
    pub after: Option<String>,
    /// Page size.
    pub limit: usize,
    /// Only faulted partitions.
    pub faulted: bool,
}

/// Every partition, by key, and which changed since the last persist.
#[derive(Debug, Default)]
pub(crate) struct Table {
    parts: BTreeMap<String, Part>,
    dirty: BTreeSet<String>,
    faulted: usize,
}

impl Table {
    /// The table as persisted.
    pub fn from_records(records: Vec<PartitionRecord>) -> Table {
        let mut table = Table::default();
        for r in records {
            let fault = r.fault.and_then(|f| serde_json::from_str(&f).ok());
            table.faulted += usize::from(fault.is_some());
            table.parts.insert(
                r.key,
                Part {
                    last_position: r.last_position,
                    events: r.events,
                    state: r.state,
                    fault,
                },
            );
        }
        table
    }

    pub fn len(&self) -> usize {
        self.parts.len()
    }

    pub fn faulted(&self) -> usize {
        self.faulted
    }

    pub fn is_dirty(&self) -> bool {
        !self.dirty.is_empty()
    }

    pub fn get(&self, key: &str) -> Option<&Part> {
        self.parts.get(key)
    }

    /// Replace (or add) a partition; it is written at the next persist.
    pub fn put(&mut self, key: String, part: Part) {
        self.faulted += usize::from(part.fault.is_some());
        if let Some(old) = self.parts.insert(key.clone(), part) {
            self.faulted -= usize::from(old.fault.is_some());
        }
        self.dirty.insert(key);
    }

    /// The records of the partitions changed since the last call.
    pub fn take_changed(&mut self) -> Vec<PartitionRecord> {
        std::mem::take(&mut self.dirty)
            .into_iter()
            .filter_map(|key| {
                let p = self.parts.get(&key)?;
                Some(PartitionRecord {
                    last_position: p.last_position,
                    events: p.events,
                    state: p.state.clone(),
                    fault: p.fault.as_ref().and_then(|f| serde_json::to_string(f).ok()),
                    key,
                })
            })
            .collect()
    }

    /// Mark these partitions changed again (their write failed).
    pub fn mark_changed(&mut self, keys: impl IntoIterator<Item = String>) {
        self.dirty.extend(keys);
    }

    /// A page of partitions by key.
    pub fn list(&self, q: &ListQuery) -> PartitionPage {
        let prefix = q.prefix.as_deref().unwrap_or("");
        let start = match &q.after {
            Some(a) if a.as_str() >= prefix => std::ops::Bound::Excluded(a.clone()),
            _ => std::ops::Bound::Included(prefix.to_string()),
        };
        let limit = q.limit.max(1);
        let mut partitions = Vec::new();
        let mut next = None;
        for (key, p) in self
            .parts
            .range((start, std::ops::Bound::Unbounded))
            .take_while(|(k, _)| k.starts_with(prefix))
            .filter(|(_, p)| !q.faulted || p.fault.is_some())
        {
            if partitions.len() == limit {
                next = partitions
                    .last()
                    .map(|p: &PartitionInfo| p.partition.clone());
                break;
            }
            partitions.push(PartitionInfo {
                partition: key.clone(),
                last_position: p.last_position,
                events: p.events,
                size: p.state.len() as u64,
                fault: p.fault.clone(),
            });
        }
        PartitionPage { partitions, next }
    }

    /// States of up to `limit` partitions after `after`, by key.
    pub fn states(&self, after: Option<&str>, limit: usize) -> Vec<(String, u64, Vec<u8>)> {
        let start = match after {
            Some(a) => std::ops::Bound::Excluded(a.to_string()),
            None => std::ops::Bound::Unbounded,
        };
        self.parts
            .range((start, std::ops::Bound::Unbounded))
            .take(limit.max(1))
            .map(|(k, p)| (k.clone(), p.last_position, p.state.clone()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(last: u64) -> Part {
        Part {
            last_position: last,
            events: 1,
            state: b"{}".to_vec(),
            fault: None,
        }
    }

    #[test]
    fn only_changed_partitions_are_written_and_faults_are_counted() {
        let mut t = Table::default();
        t.put("a".into(), part(1));
        t.put("b".into(), part(2));
        assert_eq!(t.take_changed().len(), 2);
        assert!(t.take_changed().is_empty());
        let mut faulted = part(3);
        faulted.fault = Some(Fault {
            position: 4,
            kind: "k".into(),
            error: "no".into(),
            limit: None,
            at: 0,
        });
        t.put("b".into(), faulted);
        assert_eq!(t.faulted(), 1);
        let changed = t.take_changed();
        assert_eq!(changed.len(), 1);
        assert_eq!(changed[0].key, "b");
        let back = Table::from_records(changed);
        assert_eq!(back.faulted(), 1);
        assert_eq!(back.get("b").unwrap().fault.as_ref().unwrap().position, 4);
    }

    #[test]
    fn lists_by_prefix_in_pages() {
        let mut t = Table::default();
        for k in ["a-1", "a-2", "a-3", "b-1"] {
            t.put(k.into(), part(1));
        }
        let q = ListQuery {
            prefix: Some("a-".into()),
            limit: 2,
            ..ListQuery::default()
        };
        let p1 = t.list(&q);
        let keys: Vec<_> = p1.partitions.iter().map(|p| p.partition.as_str()).collect();
        assert_eq!(keys, ["a-1", "a-2"]);
        assert_eq!(p1.next.as_deref(), Some("a-2"));
        let p2 = t.list(&ListQuery {
            after: p1.next,
            ..q.clone()
        });
        assert_eq!(p2.partitions.len(), 1);
        assert_eq!(p2.next, None);
        assert_eq!(t.states(Some("a-3"), 10).len(), 1);
    }
}
