//! In-memory snapshot store (`--snapshot-store memory`, the seed's `use_ets`).

use std::collections::HashMap;
use std::sync::Mutex;

use super::{SnapshotError, SnapshotStore, StoredSnapshot};

/// Snapshots kept in process memory: fast, and gone when the process exits
/// (a projection using it rebuilds from its start after a restart).
#[derive(Debug, Default)]
pub struct MemorySnapshots {
    snapshots: Mutex<HashMap<String, StoredSnapshot>>,
}

impl SnapshotStore for MemorySnapshots {
    fn save(&self, key: &str, snapshot: &StoredSnapshot) -> Result<(), SnapshotError> {
        self.snapshots
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key.to_string(), snapshot.clone());
        Ok(())
    }

    fn load(&self, key: &str) -> Result<Option<StoredSnapshot>, SnapshotError> {
        Ok(self
            .snapshots
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(key)
            .cloned())
    }

    fn delete(&self, key: &str) -> Result<(), SnapshotError> {
        self.snapshots
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(key);
        Ok(())
    }
}
