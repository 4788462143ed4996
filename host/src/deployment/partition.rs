//! How a partitioned projection splits its events: one state per stream
//! (`stream`), per category (`category`: the stream name before its last
//! `-`), or per value found at a JSON pointer in the event's data
//! (`/account`). Parsed from the deploy option `partition_by`.

use std::borrow::Cow;

use crate::event::RecordedEvent;

/// What a partitioned projection keys its states by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PartitionBy {
    /// One state per stream.
    Stream,
    /// One state per category: the stream name before its last `-`
    /// (`order-42` → `order`); a name without `-` is its own category.
    Category,
    /// One state per value at this JSON pointer (RFC 6901) in the data.
    Pointer(String),
}

/// Why a `--partition-by` value is not usable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PartitionByError {
    /// Neither a mode nor a pointer.
    #[error(
        "unknown --partition-by mode `{0}` (options.partition_by): use `stream`, `category` \
         or a JSON pointer into the event data such as `/account`"
    )]
    UnknownMode(String),
    /// Looks like a pointer but is not one.
    #[error(
        "--partition-by `{pointer}` (options.partition_by) is not a JSON pointer (RFC 6901): \
         {reason}; write it like `/account` or `/order/id`"
    )]
    BadPointer {
        /// The value given.
        pointer: String,
        /// What is wrong with it.
        reason: &'static str,
    },
}

impl PartitionBy {
    /// Parse `stream`, `category` or a JSON pointer.
    pub fn parse(text: &str) -> Result<PartitionBy, PartitionByError> {
        match text {
            "stream" => Ok(PartitionBy::Stream),
            "category" => Ok(PartitionBy::Category),
            p if p.starts_with('/') => {
                check_pointer(p)?;
                Ok(PartitionBy::Pointer(p.to_string()))
            }
            "" => Err(PartitionByError::BadPointer {
                pointer: String::new(),
                reason: "it is empty (the whole document is not a key)",
            }),
            other if other.contains('/') || other.contains('~') => {
                Err(PartitionByError::BadPointer {
                    pointer: other.to_string(),
                    reason: "a pointer starts with `/`",
                })
            }
            other => Err(PartitionByError::UnknownMode(other.to_string())),
        }
    }

    /// The partition key of `event`; `None` when the event has none (data
    /// that is not JSON, or nothing usable at the pointer: missing, null,
    /// an object or an array). Strings are keys as they are; numbers and
    /// booleans as their JSON text.
    pub fn key_of<'e>(&self, event: &'e RecordedEvent) -> Option<Cow<'e, str>> {
        match self {
            PartitionBy::Stream => Some(Cow::Borrowed(event.stream.as_str())),
            PartitionBy::Category => Some(Cow::Borrowed(category_of(&event.stream))),
            PartitionBy::Pointer(p) => {
                let data: serde_json::Value = serde_json::from_slice(&event.data).ok()?;
                match data.pointer(p)? {
                    serde_json::Value::String(s) => Some(Cow::Owned(s.clone())),
                    v @ (serde_json::Value::Number(_) | serde_json::Value::Bool(_)) => {
                        Some(Cow::Owned(v.to_string()))
                    }
                    _ => None,
                }
            }
        }
    }
}

impl std::fmt::Display for PartitionBy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PartitionBy::Stream => f.write_str("stream"),
            PartitionBy::Category => f.write_str("category"),
            PartitionBy::Pointer(p) => f.write_str(p),
        }
    }
}

/// A stream's category: its name before the last `-`, or the whole name.
pub fn category_of(stream: &str) -> &str {
    match stream.rfind('-') {
        Some(i) if i > 0 => &stream[..i],
        _ => stream,
    }
}

/// RFC 6901: `/`-separated reference tokens in which `~` only appears as
/// `~0` or `~1`.
fn check_pointer(p: &str) -> Result<(), PartitionByError> {
    let bad = |reason| PartitionByError::BadPointer {
        pointer: p.to_string(),
        reason,
    };
    let mut chars = p.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '~' && !matches!(chars.next(), Some('0' | '1')) {
            return Err(bad(
                "`~` must be followed by 0 or 1 (`~0` is `~`, `~1` is `/`)",
            ));
        }
    }
    if p == "/" {
        return Err(bad("`/` names the empty key, not a field"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(stream: &str, data: &str) -> RecordedEvent {
        RecordedEvent {
            position: 1,
            stream: stream.into(),
            revision: 1,
            kind: "k".into(),
            data: data.as_bytes().to_vec(),
            metadata: None,
            timestamp: 0,
        }
    }

    #[test]
    fn modes_and_pointers_parse() {
        assert_eq!(PartitionBy::parse("stream"), Ok(PartitionBy::Stream));
        assert_eq!(PartitionBy::parse("category"), Ok(PartitionBy::Category));
        assert_eq!(
            PartitionBy::parse("/a~1b/c~0"),
            Ok(PartitionBy::Pointer("/a~1b/c~0".into()))
        );
        assert!(matches!(
            PartitionBy::parse("streams"),
            Err(PartitionByError::UnknownMode(_))
        ));
        for bad in ["", "/", "/a~2", "/a~", "account/id"] {
            assert!(
                matches!(
                    PartitionBy::parse(bad),
                    Err(PartitionByError::BadPointer { .. })
                ),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn keys_by_stream_category_and_pointer() {
        let e = ev("order-42", r#"{"account":"a1","n":7,"o":{},"z":null}"#);
        assert_eq!(PartitionBy::Stream.key_of(&e).unwrap(), "order-42");
        assert_eq!(PartitionBy::Category.key_of(&e).unwrap(), "order");
        assert_eq!(PartitionBy::Category.key_of(&ev("x", "{}")).unwrap(), "x");
        let at = |p: &str| {
            PartitionBy::Pointer(p.into())
                .key_of(&e)
                .map(|k| k.into_owned())
        };
        assert_eq!(at("/account").as_deref(), Some("a1"));
        assert_eq!(at("/n").as_deref(), Some("7"));
        assert_eq!(at("/o"), None);
        assert_eq!(at("/z"), None);
        assert_eq!(at("/missing"), None);
        assert_eq!(
            PartitionBy::Pointer("/a".into()).key_of(&ev("s", "not json")),
            None
        );
    }
}
