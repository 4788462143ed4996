//! The free-space watermark: every write batch (appends, snapshots,
//! deployments) first checks, with one `statvfs`, that the data directory's
//! disk keeps at least [`super::DbOptions::min_free_space`] bytes free after
//! it. Below that the write is refused whole with a
//! [`StorageErrorKind::NoSpace`] error before RocksDB sees it.
//!
//! Why before RocksDB: a write that meets ENOSPC inside RocksDB leaves the
//! database in a background-error state that refuses every write until its
//! own recovery finds a whole memtable's worth of space free again (64 MiB
//! here), and a WAL record torn by ENOSPC is left at the tail of the log.
//! Refusing at the watermark leaves RocksDB untouched, so appends work again
//! as soon as space is freed, and there is still room for RocksDB's own
//! flushes and compactions.
//!
//! The watermark also keeps room for what sits in the memtables: opening
//! the database after a restart or a crash replays the WAL and writes the
//! recovered memtables out as table files before it takes a write. With
//! only `--min-free-space` kept free, a restart on a full disk failed with
//! ENOSPC as soon as more than that was unflushed (found by filling a disk
//! with incompressible events). So a write is refused when it would leave
//! less than `min_free` plus the unflushed bytes free.

use std::path::{Path, PathBuf};

use crate::storage::{StorageError, StorageErrorKind};

/// A write refused because the disk is (nearly) full.
#[derive(Debug, Clone, thiserror::Error)]
#[error(
    "the disk holding {path} is full: {free} bytes free, and hume serve keeps at least {min_free} \
     bytes free (--min-free-space) plus room for the {unflushed} bytes not yet flushed from \
     memory, so the database can always flush and recover. Nothing was written. Free space on \
     that disk (or lower --min-free-space); writes resume on their own, no restart needed"
)]
pub struct DiskFull {
    /// The data directory.
    pub path: PathBuf,
    /// Bytes free for unprivileged writers when checked.
    pub free: u64,
    /// The watermark.
    pub min_free: u64,
    /// Bytes in the memtables, which a restart writes out again.
    pub unflushed: u64,
}

/// Bytes free for unprivileged writers on the filesystem holding `path`.
#[cfg(unix)]
pub fn free_bytes(path: &Path) -> std::io::Result<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    // SAFETY: statvfs only writes the struct it is given; `c` is a valid
    // NUL-terminated path for the duration of the call.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    #[allow(clippy::unnecessary_cast)] // the field types differ between platforms
    Ok(st.f_bavail as u64 * st.f_frsize as u64)
}

/// Without `statvfs`, the free space is unknown: never refuse.
#[cfg(not(unix))]
pub fn free_bytes(_path: &Path) -> std::io::Result<u64> {
    Ok(u64::MAX)
}

/// Bytes to keep free: the watermark plus what a restart must flush (0
/// when the watermark is off).
pub fn reserve(min_free: u64, unflushed: u64) -> u64 {
    if min_free == 0 {
        0
    } else {
        min_free.saturating_add(unflushed)
    }
}

/// `Err` (kind [`StorageErrorKind::NoSpace`]) when writing `incoming` more
/// bytes to `path` would leave less than `min_free` + `unflushed` bytes
/// free. A failed `statvfs` never refuses a write (RocksDB still reports a
/// real ENOSPC).
pub fn check(
    path: &Path,
    min_free: u64,
    unflushed: u64,
    incoming: u64,
    stage: &'static str,
) -> Result<(), StorageError> {
    if min_free == 0 {
        return Ok(());
    }
    match free_bytes(path) {
        Ok(free) if free < reserve(min_free, unflushed).saturating_add(incoming) => {
            Err(StorageError::new(
                stage,
                StorageErrorKind::NoSpace,
                DiskFull {
                    path: path.to_path_buf(),
                    free,
                    min_free,
                    unflushed,
                },
            ))
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_watermark_refuses_with_a_no_space_error_that_says_what_to_do() {
        let dir = std::env::temp_dir();
        let free = free_bytes(&dir).unwrap();
        assert!(free > 0);
        assert!(
            check(&dir, 0, u64::MAX, u64::MAX, "x").is_ok(),
            "0 turns it off"
        );
        assert!(check(&dir, 1, 0, 0, "x").is_ok());
        let err = check(&dir, free.saturating_add(1 << 30), 0, 0, "writing").unwrap_err();
        assert_eq!(err.kind, StorageErrorKind::NoSpace);
        let msg = err.to_string();
        assert!(msg.contains("is full"), "{msg}");
        assert!(msg.contains("--min-free-space"), "{msg}");
        assert!(msg.contains("no restart needed"), "{msg}");
    }

    #[test]
    fn unflushed_bytes_are_kept_free_beside_the_watermark() {
        let dir = std::env::temp_dir();
        let free = free_bytes(&dir).unwrap();
        let half = free / 2;
        assert!(check(&dir, half, 0, 0, "x").is_ok());
        let err = check(&dir, half, free - half + (1 << 30), 0, "x").unwrap_err();
        assert_eq!(err.kind, StorageErrorKind::NoSpace);
        assert!(err.to_string().contains("not yet flushed"), "{err}");
        assert_eq!(reserve(0, 1 << 40), 0, "off stays off");
        assert_eq!(reserve(5, 7), 12);
    }
}
