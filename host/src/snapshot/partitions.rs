//! Snapshots of partitioned projections: one record per partition (its
//! state, last position, event count and fault) beside one head record
//! (the projection's offset), written together in one atomic write.

use super::{SnapshotError, StoredSnapshot};

/// One partition's persisted state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionRecord {
    /// The partition key.
    pub key: String,
    /// Position of the last event of this partition applied (or skipped).
    pub last_position: u64,
    /// Events of this partition applied.
    pub events: u64,
    /// The plugin's serialised state (`snapshot()`).
    pub state: Vec<u8>,
    /// The partition's fault as JSON text, when it is faulted.
    pub fault: Option<String>,
}

/// Everything a partitioned projection persisted: the head (offset,
/// scanned, plugin hash, time; its `state` is empty) and every partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionedSnapshot {
    /// Offset and scanned of the whole projection.
    pub head: StoredSnapshot,
    /// Every partition, by key order.
    pub partitions: Vec<PartitionRecord>,
}

const FORMAT_V1: u8 = 1;

/// Encode a partition record (its key is stored in the record's key):
/// version, last position, events (u64 BE), fault length (u32 BE), fault,
/// state.
pub fn encode_partition(r: &PartitionRecord) -> Vec<u8> {
    let fault = r.fault.as_deref().unwrap_or("").as_bytes();
    let mut out = Vec::with_capacity(21 + fault.len() + r.state.len());
    out.push(FORMAT_V1);
    out.extend_from_slice(&r.last_position.to_be_bytes());
    out.extend_from_slice(&r.events.to_be_bytes());
    out.extend_from_slice(&(fault.len() as u32).to_be_bytes());
    out.extend_from_slice(fault);
    out.extend_from_slice(&r.state);
    out
}

/// Decode what [`encode_partition`] wrote for partition `key`.
pub fn decode_partition(
    snapshot_key: &str,
    key: String,
    bytes: &[u8],
) -> Result<PartitionRecord, SnapshotError> {
    let corrupt = |reason| SnapshotError::Corrupt {
        key: format!("{snapshot_key} partition {key}"),
        reason,
    };
    if bytes.first() != Some(&FORMAT_V1) {
        return Err(corrupt("unknown partition format version"));
    }
    if bytes.len() < 21 {
        return Err(corrupt("partition record too short"));
    }
    let u64_at = |i: usize| u64::from_be_bytes(bytes[i..i + 8].try_into().expect("8 bytes"));
    let fault_len = u32::from_be_bytes(bytes[17..21].try_into().expect("4 bytes")) as usize;
    let fault_end = 21 + fault_len;
    if bytes.len() < fault_end {
        return Err(corrupt("partition fault truncated"));
    }
    let fault = std::str::from_utf8(&bytes[21..fault_end])
        .map_err(|_| corrupt("partition fault is not UTF-8"))?;
    Ok(PartitionRecord {
        last_position: u64_at(1),
        events: u64_at(9),
        fault: (!fault.is_empty()).then(|| fault.to_string()),
        state: bytes[fault_end..].to_vec(),
        key,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_records_round_trip() {
        for fault in [None, Some(r#"{"position":3}"#.to_string())] {
            let r = PartitionRecord {
                key: "order-1".into(),
                last_position: 42,
                events: 7,
                state: br#"{"a":1}"#.to_vec(),
                fault,
            };
            let bytes = encode_partition(&r);
            assert_eq!(decode_partition("s", "order-1".into(), &bytes).unwrap(), r);
            assert!(decode_partition("s", "k".into(), &bytes[..10]).is_err());
        }
    }
}
