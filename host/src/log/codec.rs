//! The binary encoding of an event in the `events` column family.
//!
//! The key is the global position (u64 big-endian, so RocksDB's byte order
//! is the log order). The value is, all integers little-endian:
//!
//! ```text
//! u8  format (1)
//! u8  stream length L (1..=255)       ← the stream comes first so a filtered
//! L   stream (UTF-8)                     scan can match and skip without
//! u64 revision                           decoding the rest
//! u64 timestamp (ms since epoch)
//! u32 kind length K, K bytes kind (UTF-8)
//! u32 data length D, D bytes data (JSON text)
//! u32 metadata length + 1 (0 = none), then the metadata (JSON text)
//! ```
//!
//! Decoding is a handful of bounds checks and copies; any inconsistency is
//! reported as corruption, never returned as an event.

use super::{EventRef, RecordedEvent};

/// Current encoding format byte.
pub const FORMAT: u8 = 1;

/// Why a stored value could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError(pub &'static str);

/// Append the encoding of one event to `out`.
#[allow(clippy::too_many_arguments)]
pub fn encode(
    out: &mut Vec<u8>,
    stream: &str,
    revision: u64,
    timestamp: u64,
    kind: &str,
    data: &[u8],
    metadata: Option<&[u8]>,
) {
    debug_assert!(!stream.is_empty() && stream.len() <= 255);
    out.reserve(
        2 + stream.len() + 16 + 12 + kind.len() + data.len() + metadata.map_or(0, |m| m.len()),
    );
    out.push(FORMAT);
    out.push(stream.len() as u8);
    out.extend_from_slice(stream.as_bytes());
    out.extend_from_slice(&revision.to_le_bytes());
    out.extend_from_slice(&timestamp.to_le_bytes());
    out.extend_from_slice(&(kind.len() as u32).to_le_bytes());
    out.extend_from_slice(kind.as_bytes());
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    out.extend_from_slice(data);
    match metadata {
        None => out.extend_from_slice(&0u32.to_le_bytes()),
        Some(m) => {
            out.extend_from_slice(&(m.len() as u32 + 1).to_le_bytes());
            out.extend_from_slice(m);
        }
    }
}

/// The stream name of an encoded event, without decoding the rest.
#[inline]
pub fn peek_stream(value: &[u8]) -> Result<&[u8], DecodeError> {
    if value.len() < 2 || value[0] != FORMAT {
        return Err(DecodeError("unknown format byte or truncated value"));
    }
    let len = value[1] as usize;
    value
        .get(2..2 + len)
        .ok_or(DecodeError("stream name runs past the end of the value"))
}

struct Reader<'a> {
    buf: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    #[inline]
    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let end = self
            .at
            .checked_add(n)
            .ok_or(DecodeError("length overflow"))?;
        let s = self
            .buf
            .get(self.at..end)
            .ok_or(DecodeError("field runs past the end of the value"))?;
        self.at = end;
        Ok(s)
    }
    #[inline]
    fn u64(&mut self) -> Result<u64, DecodeError> {
        Ok(u64::from_le_bytes(self.take(8)?.try_into().unwrap()))
    }
    #[inline]
    fn u32(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().unwrap()))
    }
}

#[inline]
fn utf8<'a>(bytes: &'a [u8], what: &'static str) -> Result<&'a str, DecodeError> {
    std::str::from_utf8(bytes).map_err(|_| DecodeError(what))
}

/// Decode one stored event at `position` without copying anything.
pub fn decode_ref(position: u64, value: &[u8]) -> Result<EventRef<'_>, DecodeError> {
    let stream = peek_stream(value)?;
    if stream.is_empty() {
        return Err(DecodeError("empty stream name"));
    }
    let mut r = Reader {
        buf: value,
        at: 2 + stream.len(),
    };
    let stream = utf8(stream, "stream name is not UTF-8")?;
    let revision = r.u64()?;
    let timestamp = r.u64()?;
    let kind_len = r.u32()? as usize;
    let kind = utf8(r.take(kind_len)?, "kind is not UTF-8")?;
    let data_len = r.u32()? as usize;
    let data = r.take(data_len)?;
    let meta_len = r.u32()? as usize;
    let metadata = if meta_len == 0 {
        None
    } else {
        Some(r.take(meta_len - 1)?)
    };
    if r.at != value.len() {
        return Err(DecodeError("trailing bytes after the event"));
    }
    if revision == 0 {
        return Err(DecodeError("revision 0"));
    }
    Ok(EventRef {
        position,
        stream,
        revision,
        kind,
        data,
        metadata,
        timestamp,
    })
}

/// Decode one stored event at `position`.
pub fn decode(position: u64, value: &[u8]) -> Result<RecordedEvent, DecodeError> {
    decode_ref(position, value).map(|e| e.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let mut buf = Vec::new();
        encode(
            &mut buf,
            "acc-1",
            3,
            42,
            "opened",
            b"{\"a\":1}",
            Some(b"[]"),
        );
        assert_eq!(peek_stream(&buf).unwrap(), b"acc-1");
        let e = decode(7, &buf).unwrap();
        assert_eq!(e.position, 7);
        assert_eq!(e.stream, "acc-1");
        assert_eq!(e.revision, 3);
        assert_eq!(e.timestamp, 42);
        assert_eq!(e.kind, "opened");
        assert_eq!(e.data, b"{\"a\":1}");
        assert_eq!(e.metadata.as_deref(), Some(&b"[]"[..]));
        for cut in 0..buf.len() {
            assert!(decode(7, &buf[..cut]).is_err(), "truncated at {cut}");
        }
    }

    mod fuzz {
        use super::super::*;
        use proptest::prelude::*;

        /// A stream name of 1..=255 bytes (the codec's own limit).
        fn stream() -> impl Strategy<Value = String> {
            "\\PC{1,80}".prop_map(|mut s| {
                while s.len() > 255 {
                    s.pop();
                }
                s
            })
        }

        proptest! {
            #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

            /// Decoding arbitrary bytes never panics; what decodes is
            /// consistent with `peek_stream` and encodes back to the same bytes.
            #[test]
            fn decode_of_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..160), position in any::<u64>()) {
                let peeked = peek_stream(&bytes);
                if let Ok(e) = decode_ref(position, &bytes) {
                    prop_assert_eq!(peeked.unwrap(), e.stream.as_bytes());
                    let mut again = Vec::new();
                    encode(&mut again, e.stream, e.revision, e.timestamp, e.kind, e.data, e.metadata);
                    prop_assert_eq!(again, bytes);
                }
            }

            /// Valid encodings with one byte changed or cut never panic.
            #[test]
            fn decode_of_damaged_encodings(
                stream in stream(),
                kind in ".{0,20}",
                data in prop::collection::vec(any::<u8>(), 0..40),
                flip in any::<prop::sample::Index>(),
                byte in any::<u8>(),
                cut in any::<prop::sample::Index>(),
            ) {
                let mut buf = Vec::new();
                encode(&mut buf, &stream, 1, 2, &kind, &data, None);
                let at = flip.index(buf.len());
                buf[at] = byte;
                let _ = decode(1, &buf);
                let _ = decode(1, &buf[..cut.index(buf.len())]);
            }

            /// encode → decode is the identity.
            #[test]
            fn encode_then_decode(
                stream in stream(),
                revision in 1..=u64::MAX,
                timestamp in any::<u64>(),
                kind in ".{0,40}",
                data in prop::collection::vec(any::<u8>(), 0..100),
                metadata in prop::option::of(prop::collection::vec(any::<u8>(), 0..40)),
                position in any::<u64>(),
            ) {
                let mut buf = Vec::new();
                encode(&mut buf, &stream, revision, timestamp, &kind, &data, metadata.as_deref());
                let e = decode(position, &buf).unwrap();
                prop_assert_eq!(
                    e,
                    RecordedEvent { position, stream, revision, kind, data, metadata, timestamp }
                );
            }
        }
    }
}
