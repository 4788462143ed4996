//! What a selector follows in the log as it is now: per entry, how many
//! streams and events match, and warnings for entries that were probably
//! not meant (matching nothing, or exact names a shell expanded from a
//! pattern). Shown by `hume deploy`.

use std::collections::{BTreeMap, HashSet};

use serde::{Deserialize, Serialize};

/// One selector entry and what it matches today.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntryCoverage {
    /// The entry as given (`cart-*`, `orders`, `*`).
    pub entry: String,
    /// `stream`, `category` or `all`.
    pub kind: String,
    /// Streams it matches now.
    pub streams: u64,
    /// Events in those streams now.
    pub events: u64,
}

/// What a whole selector follows now.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Coverage {
    /// Each entry, in the order given.
    pub entries: Vec<EntryCoverage>,
    /// Streams matched by any entry (each counted once).
    pub streams: u64,
    /// Events in those streams.
    pub events: u64,
    /// Entries that were probably not meant, each with what to do.
    pub warnings: Vec<String>,
}

/// The category a stream name belongs to by convention: up to and including
/// its last `-` (`cart-1` -> `cart-`), if any.
fn category_of(stream: &str) -> Option<&str> {
    stream.rfind('-').map(|i| &stream[..=i])
}

impl Coverage {
    /// The coverage of selector `entries` (already valid) over the log's
    /// `streams` (name, event count).
    pub fn of(entries: &[String], streams: &[(String, u64)]) -> Coverage {
        let mut out = Coverage::default();
        let mut matched: HashSet<&str> = HashSet::new();
        let counts: BTreeMap<&str, u64> = streams.iter().map(|(s, n)| (s.as_str(), *n)).collect();
        for entry in entries {
            let (kind, hits): (&str, Vec<(&str, u64)>) = if entry == "*" {
                ("all", counts.iter().map(|(s, n)| (*s, *n)).collect())
            } else if let Some(prefix) = entry.strip_suffix('*') {
                (
                    "category",
                    counts
                        .range(prefix..)
                        .take_while(|(s, _)| s.starts_with(prefix))
                        .map(|(s, n)| (*s, *n))
                        .collect(),
                )
            } else {
                (
                    "stream",
                    counts
                        .get_key_value(entry.as_str())
                        .map(|(s, n)| (*s, *n))
                        .into_iter()
                        .collect(),
                )
            };
            if hits.is_empty() {
                out.warnings.push(format!(
                    "`{entry}` matches no stream yet: the projection will follow it when \
                     events are appended; check the spelling (`hume read --all` shows the \
                     streams), and quote patterns (--stream 'cart-*')"
                ));
            }
            out.entries.push(EntryCoverage {
                entry: entry.clone(),
                kind: kind.to_string(),
                streams: hits.len() as u64,
                events: hits.iter().map(|(_, n)| n).sum(),
            });
            matched.extend(hits.iter().map(|(s, _)| *s));
        }
        out.streams = matched.len() as u64;
        out.events = matched.iter().map(|s| counts[s]).sum();
        out.warnings.extend(expanded_globs(entries, &counts));
        out
    }
}

/// Several existing streams of one category, named one by one: what a
/// shell leaves of an unquoted `--stream cart-*` when files of those names
/// are in the current directory.
fn expanded_globs(entries: &[String], counts: &BTreeMap<&str, u64>) -> Vec<String> {
    let mut by_category: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for entry in entries {
        if entry.ends_with('*') || !counts.contains_key(entry.as_str()) {
            continue;
        }
        if let Some(category) = category_of(entry) {
            by_category.entry(category).or_default().push(entry);
        }
    }
    by_category
        .into_iter()
        .filter(|(_, names)| names.len() > 1)
        .map(|(category, names)| {
            format!(
                "{} are streams of category `{category}` named one by one, as a shell \
                 expands an unquoted pattern: this projection follows only those; to \
                 follow the whole category, quote it: --stream '{category}*'",
                names
                    .iter()
                    .map(|n| format!("`{n}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log() -> Vec<(String, u64)> {
        [
            ("cart-1", 3),
            ("cart-2", 2),
            ("cartography", 1),
            ("order-1", 5),
        ]
        .into_iter()
        .map(|(s, n)| (s.to_string(), n))
        .collect()
    }

    fn of(entries: &[&str]) -> Coverage {
        let entries: Vec<String> = entries.iter().map(|s| s.to_string()).collect();
        Coverage::of(&entries, &log())
    }

    #[test]
    fn counts_streams_and_events_per_entry_and_once_in_all() {
        let c = of(&["cart-*", "cart-1", "order-1"]);
        assert_eq!(c.entries[0].kind, "category");
        assert_eq!((c.entries[0].streams, c.entries[0].events), (2, 5));
        assert_eq!((c.entries[1].streams, c.entries[1].events), (1, 3));
        assert_eq!((c.streams, c.events), (3, 10));
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);
        let all = of(&["*"]);
        assert_eq!((all.streams, all.events), (4, 11));
    }

    #[test]
    fn warns_about_entries_that_match_nothing() {
        let c = of(&["carts-*", "order-1"]);
        assert_eq!(c.entries[0].streams, 0);
        assert_eq!(c.warnings.len(), 1);
        assert!(c.warnings[0].contains("`carts-*` matches no stream"));
    }

    #[test]
    fn warns_about_a_category_named_one_stream_at_a_time() {
        let c = of(&["cart-1", "cart-2"]);
        assert_eq!(c.warnings.len(), 1, "{:?}", c.warnings);
        assert!(
            c.warnings[0].contains("--stream 'cart-*'"),
            "{}",
            c.warnings[0]
        );
        assert!(of(&["cart-1", "order-1"]).warnings.is_empty());
    }

    #[test]
    fn new_selectors_refuse_globs_that_are_not_prefixes() {
        use crate::log::Selector;
        for bad in ["*-1", "cart-[0-9]", "c*rt-*", "a]"] {
            assert!(Selector::parse_patterns(&[bad]).is_err(), "{bad}");
        }
        for good in ["*", "cart-*", "cart-1"] {
            assert!(Selector::parse_patterns(&[good]).is_ok(), "{good}");
        }
        // Stored deployments keep loading.
        assert!(Selector::parse(&["*-1"]).is_ok());
    }
}
