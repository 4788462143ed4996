//! Splitting a page by partition key: one group per key, in order of first
//! appearance, each in position order.
//!
//! This runs on the projection's task between the parallel folds, for
//! every event of every page, so it is kept cheap: events of one stream
//! appended together come as runs of one key, and a run costs one key
//! allocation and one lookup, not one per event.

use std::collections::HashMap;

use crate::deployment::PartitionBy;
use crate::event::RecordedEvent;

/// A page split by key.
#[derive(Debug, Default)]
pub(crate) struct Grouped {
    pub groups: Vec<(String, Vec<RecordedEvent>)>,
    /// Events without a key, skipped and counted (not strict).
    pub unkeyed_skipped: u64,
    /// The first event without a key, where a strict projection stops
    /// (nothing from it on is in `groups`).
    pub stopped_at: Option<RecordedEvent>,
}

/// Group `events` by `by`'s key. Events of a partition `skip` says to leave
/// out (a faulted one) are dropped. With `strict`, the first event without
/// a key ends the grouping; otherwise such events are counted.
pub(crate) fn group_page(
    events: Vec<RecordedEvent>,
    by: &PartitionBy,
    strict: bool,
    skip: impl Fn(&str) -> bool,
) -> Grouped {
    let mut out = Grouped::default();
    let mut index: HashMap<String, usize> = HashMap::new();
    // The previous event's key and where its events go (`None`: dropped).
    let mut run: Option<(String, Option<usize>)> = None;
    for event in events {
        let target = match by.key_of(&event) {
            None if strict => {
                out.stopped_at = Some(event);
                break;
            }
            None => {
                out.unkeyed_skipped += 1;
                continue;
            }
            Some(key) => match &run {
                Some((previous, target)) if *previous == *key => *target,
                _ => {
                    let target = if skip(&key) {
                        None
                    } else {
                        Some(match index.get(key.as_ref()) {
                            Some(&i) => i,
                            None => {
                                index.insert(key.to_string(), out.groups.len());
                                out.groups.push((key.to_string(), Vec::new()));
                                out.groups.len() - 1
                            }
                        })
                    };
                    run = Some((key.into_owned(), target));
                    target
                }
            },
        };
        if let Some(i) = target {
            out.groups[i].1.push(event);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(position: u64, stream: &str, data: &str) -> RecordedEvent {
        RecordedEvent {
            position,
            stream: stream.into(),
            revision: position,
            kind: "k".into(),
            data: data.as_bytes().to_vec(),
            metadata: None,
            timestamp: 0,
        }
    }

    fn positions(g: &Grouped) -> Vec<(&str, Vec<u64>)> {
        g.groups
            .iter()
            .map(|(k, es)| (k.as_str(), es.iter().map(|e| e.position).collect()))
            .collect()
    }

    #[test]
    fn runs_and_interleaved_keys_keep_first_appearance_and_position_order() {
        let page = vec![
            ev(1, "a", "{}"),
            ev(2, "a", "{}"),
            ev(3, "b", "{}"),
            ev(4, "a", "{}"),
            ev(5, "c", "{}"),
            ev(6, "c", "{}"),
            ev(7, "b", "{}"),
        ];
        let g = group_page(page, &PartitionBy::Stream, true, |_| false);
        assert_eq!(
            positions(&g),
            [("a", vec![1, 2, 4]), ("b", vec![3, 7]), ("c", vec![5, 6])]
        );
        assert!(g.stopped_at.is_none());
    }

    #[test]
    fn skipped_partitions_are_left_out_whether_in_a_run_or_not() {
        let page = vec![
            ev(1, "a", "{}"),
            ev(2, "f", "{}"),
            ev(3, "f", "{}"),
            ev(4, "a", "{}"),
            ev(5, "f", "{}"),
        ];
        let g = group_page(page, &PartitionBy::Stream, true, |k| k == "f");
        assert_eq!(positions(&g), [("a", vec![1, 4])]);
    }

    #[test]
    fn events_without_a_key_stop_a_strict_page_and_are_counted_otherwise() {
        let by = PartitionBy::Pointer("/id".into());
        let page = || {
            vec![
                ev(1, "s", r#"{"id":"x"}"#),
                ev(2, "s", r#"{"id":"x"}"#),
                ev(3, "s", r#"{}"#),
                ev(4, "s", r#"{"id":7}"#),
                ev(5, "s", r#"{"id":"x"}"#),
            ]
        };
        let strict = group_page(page(), &by, true, |_| false);
        assert_eq!(positions(&strict), [("x", vec![1, 2])]);
        assert_eq!(strict.stopped_at.map(|e| e.position), Some(3));
        let lenient = group_page(page(), &by, false, |_| false);
        assert_eq!(positions(&lenient), [("x", vec![1, 2, 5]), ("7", vec![4])]);
        assert_eq!(lenient.unkeyed_skipped, 1);
    }
}
