//! The one RocksDB database under a Hume data directory, opened with every
//! column family the host uses.
//!
//! | column family  | key                                  | value                          |
//! |----------------|--------------------------------------|--------------------------------|
//! | `events`       | position (u64 big-endian)            | encoded event (`log::codec`)   |
//! | `streams`      | stream name                          | revision (u64 big-endian)      |
//! | `stream_index` | name, `0x00`, revision (u64 BE)      | position (u64 big-endian)      |
//! | `meta`         | setting name                         | setting value                  |
//! | `plugins`      | plugin hash                          | wasm bytes                     |
//! | `projections`  | projection name                      | config JSON                    |
//! | `snapshots`    | projection name                      | offset + hash + state          |
//!
//! Big-endian integer keys make RocksDB's byte order the numeric order, so
//! iterating `events` walks the log in position order.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rocksdb::{BoundColumnFamily, ColumnFamilyDescriptor, DBRecoveryMode, Options};

/// Column family of the events, keyed by global position.
pub const CF_EVENTS: &str = "events";
/// Column family of stream names → current revision.
pub const CF_STREAMS: &str = "streams";
/// Column family of (stream, revision) → position.
pub const CF_STREAM_INDEX: &str = "stream_index";
/// Column family of host settings (format version, ...).
pub const CF_META: &str = "meta";
/// Column family of plugin hash → wasm bytes.
pub const CF_PLUGINS: &str = "plugins";
/// Column family of projection name → config JSON.
pub const CF_PROJECTIONS: &str = "projections";
/// Column family of projection name → snapshot.
pub const CF_SNAPSHOTS: &str = "snapshots";

/// Every column family, in the order they are opened.
pub const COLUMN_FAMILIES: [&str; 7] = [
    CF_EVENTS,
    CF_STREAMS,
    CF_STREAM_INDEX,
    CF_META,
    CF_PLUGINS,
    CF_PROJECTIONS,
    CF_SNAPSHOTS,
];

/// How to treat a damaged write-ahead log when opening.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WalRecovery {
    /// The default: drop an incomplete record at the very end of the WAL (a
    /// write torn by a crash, power loss or a full disk) and refuse to open
    /// on any other damage (RocksDB's `kTolerateCorruptedTailRecords`). A
    /// torn tail only ever holds a write that was never acknowledged, since
    /// every acknowledged one was fsynced whole before its answer.
    #[default]
    TolerateTail,
    /// Refuse to open if any WAL record is damaged, a torn tail included
    /// (RocksDB's `kAbsoluteConsistency`).
    Strict,
    /// Salvage: recover up to the first damaged record and drop everything
    /// after it (RocksDB's `kPointInTimeRecovery`). Appends acknowledged after
    /// the damage are lost; only for an operator who chose that explicitly.
    PointInTime,
}

/// Options for [`Db::open`].
#[derive(Debug, Clone)]
pub struct DbOptions {
    /// Create the directory and database when missing (default true).
    pub create_if_missing: bool,
    /// WAL recovery mode (default [`WalRecovery::TolerateTail`]).
    pub wal_recovery: WalRecovery,
    /// Bytes every write leaves free on the data directory's disk (see
    /// `space.rs`); a write that would go below is refused as "disk full".
    /// 0 turns the check off. Default [`DEFAULT_MIN_FREE_SPACE`].
    pub min_free_space: u64,
}

/// Default of [`DbOptions::min_free_space`]: 256 MiB, room for RocksDB to
/// flush a full 64 MiB memtable and compact, and above the 64 MiB RocksDB's
/// own recovery waits for after an ENOSPC.
pub const DEFAULT_MIN_FREE_SPACE: u64 = 256 * 1024 * 1024;

impl Default for DbOptions {
    fn default() -> Self {
        DbOptions {
            create_if_missing: true,
            wal_recovery: WalRecovery::TolerateTail,
            min_free_space: DEFAULT_MIN_FREE_SPACE,
        }
    }
}

/// Free bytes needed to open the database (its new WAL, MANIFEST, OPTIONS
/// and LOG header take a few hundred KiB).
pub const MIN_FREE_TO_OPEN: u64 = 512 * 1024;

/// Errors opening the database.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// The data directory could not be created.
    #[error("cannot create data directory {path}: {source}")]
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The disk has no room to open the database.
    #[error(
        "the disk holding {path} is full ({free} bytes free; opening the database needs at least \
         {MIN_FREE_TO_OPEN}): nothing was changed. Free space on that disk and start again"
    )]
    DiskFull {
        /// The data directory.
        path: PathBuf,
        /// Bytes free.
        free: u64,
    },
    /// RocksDB found damaged data (typically the write-ahead log after a
    /// disk fault) and refused to guess.
    #[error(
        "the database in {path} is damaged and was not opened: {source}. Nothing was changed. \
         Restore the directory from a backup, or, to keep the events written before the damage \
         and lose any after it, open it once with `--wal-recovery point-in-time`"
    )]
    Corrupt {
        /// The data directory.
        path: PathBuf,
        /// RocksDB's report.
        #[source]
        source: rocksdb::Error,
    },
    /// Any other failure to open (locked by another process, permissions...).
    #[error(
        "cannot open the database in {path}: {source}. Check that no other `hume serve` uses \
         this directory and that it is readable and writable"
    )]
    Open {
        /// The data directory.
        path: PathBuf,
        /// RocksDB's report.
        #[source]
        source: rocksdb::Error,
    },
}

/// The RocksDB database of one data directory. Cheap to clone.
#[derive(Clone)]
pub struct Db {
    inner: Arc<rocksdb::DB>,
    path: Arc<PathBuf>,
    min_free_space: u64,
    /// Set once a write or fsync failed: every later write through this
    /// handle is refused until restart (see `writer.rs`).
    stopped: Arc<std::sync::OnceLock<crate::storage::StorageError>>,
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db").field("path", &self.path).finish()
    }
}

impl Db {
    /// Open (or create) the database in `dir` with every column family.
    pub fn open(dir: impl AsRef<Path>, options: &DbOptions) -> Result<Db, DbError> {
        let path = dir.as_ref().to_path_buf();
        if options.create_if_missing {
            std::fs::create_dir_all(&path).map_err(|source| DbError::CreateDir {
                path: path.clone(),
                source,
            })?;
        }
        // Opening writes a new WAL, MANIFEST, OPTIONS and the LOG header; on
        // a disk without room for them RocksDB could abort (see the log
        // level below), so refuse first, saying what to do.
        if let Ok(free) = super::space::free_bytes(&path) {
            if free < MIN_FREE_TO_OPEN {
                return Err(DbError::DiskFull { path, free });
            }
        }
        let mut opts = Options::default();
        opts.create_if_missing(options.create_if_missing);
        opts.create_missing_column_families(true);
        // Why this WAL recovery mode: every append is fsynced to the WAL
        // before it is acknowledged, and the writer refuses every later
        // append after a failed write (writer.rs), so the only record that
        // can be incomplete at the end of the last WAL is the one write that
        // was cut off by a crash, a power loss or ENOSPC, and it was never
        // acknowledged. kTolerateCorruptedTailRecords drops exactly such an
        // incomplete tail (a truncated header or body at end of file) and
        // still refuses to open on a checksum mismatch or any damage before
        // the end, which a torn write cannot cause and which could hide
        // acknowledged appends. (kAbsoluteConsistency refused the torn tail
        // too, so a full disk or a power cut kept the server from starting;
        // kPointInTimeRecovery would silently stop at damage anywhere and
        // drop every later record, acknowledged or not. Both remain as
        // explicit choices.)
        opts.set_wal_recovery_mode(match options.wal_recovery {
            WalRecovery::TolerateTail => DBRecoveryMode::TolerateCorruptedTailRecords,
            WalRecovery::Strict => DBRecoveryMode::AbsoluteConsistency,
            WalRecovery::PointInTime => DBRecoveryMode::PointInTime,
        });
        // One WriteBatch spans several column families (event, index,
        // stream revision); flush them together so the SST files never hold
        // half of a batch if the WAL is ever lost.
        opts.set_atomic_flush(true);
        opts.set_paranoid_checks(true);
        // RocksDB's own info log (the LOG file) only at the fatal level.
        // Debian's librocksdb is built with assertions on, and its logger
        // ignores a failed write but aborts the process on the next one
        // (`Assertion 'sync_without_flush_called_' failed`): on a full or
        // failing disk, the warnings RocksDB logs about the failure itself
        // killed the server. At the fatal level it writes the LOG only while
        // opening (its options header), which the free-space check before
        // opening covers; Hume logs what matters itself.
        opts.set_log_level(rocksdb::LogLevel::Fatal);
        opts.increase_parallelism(2);
        opts.set_keep_log_file_num(5);

        let mut events = Options::default();
        // Larger blocks: the events family is mostly scanned in order.
        let mut table = rocksdb::BlockBasedOptions::default();
        table.set_block_size(32 * 1024);
        events.set_block_based_table_factory(&table);
        events.set_compression_type(rocksdb::DBCompressionType::Lz4);
        events.set_write_buffer_size(64 * 1024 * 1024);

        let descriptors = COLUMN_FAMILIES.iter().map(|name| {
            let cf_opts = if *name == CF_EVENTS {
                events.clone()
            } else {
                Options::default()
            };
            ColumnFamilyDescriptor::new(*name, cf_opts)
        });
        let db = rocksdb::DB::open_cf_descriptors(&opts, &path, descriptors).map_err(|source| {
            if source.kind() == rocksdb::ErrorKind::Corruption {
                DbError::Corrupt {
                    path: path.clone(),
                    source,
                }
            } else {
                DbError::Open {
                    path: path.clone(),
                    source,
                }
            }
        })?;
        Ok(Db {
            inner: Arc::new(db),
            path: Arc::new(path),
            min_free_space: options.min_free_space,
            stopped: Arc::default(),
        })
    }

    /// The underlying RocksDB handle.
    pub fn raw(&self) -> &rocksdb::DB {
        &self.inner
    }

    /// The data directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A column family handle by name (one of [`COLUMN_FAMILIES`]).
    ///
    /// # Panics
    /// If `name` is not one of [`COLUMN_FAMILIES`]: that is a bug in the
    /// caller, every family is created by [`Db::open`].
    pub fn cf(&self, name: &str) -> Arc<BoundColumnFamily<'_>> {
        self.inner
            .cf_handle(name)
            .unwrap_or_else(|| panic!("column family `{name}` is not one of db::COLUMN_FAMILIES"))
    }

    /// Refuse a write of about `incoming` bytes (kind `NoSpace`) when it
    /// would leave less than the configured free space on the disk.
    pub fn check_space(
        &self,
        stage: &'static str,
        incoming: u64,
    ) -> Result<(), crate::storage::StorageError> {
        if let Some(failed) = self.stopped.get() {
            return Err(crate::storage::StorageError {
                stage,
                kind: crate::storage::StorageErrorKind::WritesStopped,
                source: failed.source.clone(),
            });
        }
        super::space::check(
            &self.path,
            self.min_free_space,
            self.unflushed_bytes(),
            incoming,
            stage,
        )
    }

    /// Bytes held in the memtables of every column family (active and
    /// not yet flushed): what opening the database after a restart writes
    /// out as table files before it takes a write.
    pub fn unflushed_bytes(&self) -> u64 {
        COLUMN_FAMILIES
            .iter()
            .filter_map(|name| self.inner.cf_handle(name))
            .filter_map(|cf| {
                self.inner
                    .property_int_value_cf(&cf, "rocksdb.cur-size-all-mem-tables")
                    .ok()
                    .flatten()
            })
            .sum()
    }

    /// Bytes the watermark keeps free now: `--min-free-space` plus the
    /// unflushed bytes (0 with the watermark off).
    pub fn reserve(&self) -> u64 {
        super::space::reserve(self.min_free_space, self.unflushed_bytes())
    }

    /// Refuse every later write (snapshots, deployments) after `failure`, a
    /// write or fsync error whose outcome on disk is unknown. A RocksDB
    /// write after such an error may also trip an assertion inside RocksDB.
    pub(super) fn stop_writes(&self, failure: crate::storage::StorageError) {
        let _ = self.stopped.set(failure);
    }

    /// Bytes free on the data directory's disk (`None` if unknown).
    pub fn free_space(&self) -> Option<u64> {
        super::space::free_bytes(&self.path).ok()
    }

    /// The configured free-space watermark (0 = off).
    pub fn min_free_space(&self) -> u64 {
        self.min_free_space
    }

    /// Write options for durable writes: fsync the WAL before returning.
    pub fn sync_write_options() -> rocksdb::WriteOptions {
        let mut w = rocksdb::WriteOptions::default();
        w.set_sync(true);
        w
    }
}
