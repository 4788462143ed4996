//! Input validation: everything a client sends is checked before it can
//! reach the writer, so bad input is refused whole and nothing is written.

use super::{LogError, NewEvent};

/// Longest stream name, in bytes.
pub const MAX_STREAM_NAME: usize = 255;
/// Longest event kind, in bytes.
pub const MAX_KIND: usize = 255;

/// Check a stream name: 1..=255 bytes of UTF-8 without control characters.
/// The error text says what is wrong.
pub fn validate_stream_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("it is empty: a stream name needs 1 to 255 bytes".into());
    }
    if name.len() > MAX_STREAM_NAME {
        return Err(format!(
            "it is {} bytes long: a stream name has at most {MAX_STREAM_NAME} bytes",
            name.len()
        ));
    }
    if let Some(c) = name.chars().find(|c| c.is_control()) {
        return Err(format!(
            "it contains the control character {c:?}: use printable characters only"
        ));
    }
    Ok(())
}

/// Limits checked on every append, whatever the backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest event (kind + data + metadata) in bytes (default 1 MiB).
    pub max_event_bytes: usize,
    /// Most events in one append (default 10,000).
    pub max_batch_events: usize,
    /// Most bytes in one append (default 16 MiB).
    pub max_batch_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_event_bytes: 1024 * 1024,
            max_batch_events: 10_000,
            max_batch_bytes: 16 * 1024 * 1024,
        }
    }
}

/// Validate one append; returns the batch's payload size in bytes. Nothing
/// that fails here ever reaches a backend.
pub fn validate_append(
    stream: &str,
    events: &[NewEvent],
    limits: Limits,
) -> Result<usize, LogError> {
    validate_stream_name(stream).map_err(|reason| LogError::InvalidStream {
        stream: stream.to_string(),
        reason,
    })?;
    if events.is_empty() {
        return Err(LogError::EmptyBatch);
    }
    let mut bytes = 0usize;
    for (index, e) in events.iter().enumerate() {
        if e.kind.is_empty() {
            return Err(LogError::InvalidEvent {
                index,
                field: "kind",
                reason: "is empty: give every event a kind (e.g. \"deposited\")".into(),
            });
        }
        if e.kind.len() > MAX_KIND {
            return Err(LogError::InvalidEvent {
                index,
                field: "kind",
                reason: format!("is {} bytes long: at most {MAX_KIND} bytes", e.kind.len()),
            });
        }
        if e.kind.chars().any(|c| c.is_control()) {
            return Err(LogError::InvalidEvent {
                index,
                field: "kind",
                reason: "contains control characters: use printable characters only".into(),
            });
        }
        let size =
            e.kind.len() + e.data.get().len() + e.metadata.as_ref().map_or(0, |m| m.get().len());
        if size > limits.max_event_bytes {
            return Err(LogError::EventTooLarge {
                index,
                size,
                max: limits.max_event_bytes,
            });
        }
        bytes += size;
    }
    if events.len() > limits.max_batch_events || bytes > limits.max_batch_bytes {
        return Err(LogError::BatchTooLarge {
            events: events.len(),
            bytes,
            max_events: limits.max_batch_events,
            max_bytes: limits.max_batch_bytes,
        });
    }
    crate::log::json_check::check_events(events)?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_names() {
        assert!(validate_stream_name("account-1").is_ok());
        assert!(validate_stream_name("ü/ß:é").is_ok());
        assert!(validate_stream_name(&"x".repeat(255)).is_ok());
        assert!(validate_stream_name("").is_err());
        assert!(validate_stream_name(&"x".repeat(256)).is_err());
        assert!(validate_stream_name("a\nb").is_err());
        assert!(validate_stream_name("a\0b").is_err());
    }
}
