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
    /// Refuse to open if any WAL record is damaged (RocksDB's
    /// `kAbsoluteConsistency`). The default: an acknowledged append is never
    /// dropped silently.
    #[default]
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
    /// WAL recovery mode (default [`WalRecovery::Strict`]).
    pub wal_recovery: WalRecovery,
}

impl Default for DbOptions {
    fn default() -> Self {
        DbOptions {
            create_if_missing: true,
            wal_recovery: WalRecovery::Strict,
        }
    }
}

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
        let mut opts = Options::default();
        opts.create_if_missing(options.create_if_missing);
        opts.create_missing_column_families(true);
        // Why the WAL recovery mode is pinned: every append is fsynced to the
        // WAL before it is acknowledged, so after a process crash or power
        // loss the WAL holds every acknowledged append intact. The only way a
        // record can then be damaged is a real fault (disk, filesystem, an
        // operator's editor). RocksDB's default (kPointInTimeRecovery) would
        // silently stop at the damage and drop every later record — including
        // acknowledged appends — and then carry on as if nothing happened.
        // kAbsoluteConsistency instead fails the open with a corruption error,
        // which we turn into a message telling the operator what to do. The
        // salvage mode is there, but only as an explicit opt-in.
        opts.set_wal_recovery_mode(match options.wal_recovery {
            WalRecovery::Strict => DBRecoveryMode::AbsoluteConsistency,
            WalRecovery::PointInTime => DBRecoveryMode::PointInTime,
        });
        // One WriteBatch spans several column families (event, index,
        // stream revision); flush them together so the SST files never hold
        // half of a batch if the WAL is ever lost.
        opts.set_atomic_flush(true);
        opts.set_paranoid_checks(true);
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

    /// Write options for durable writes: fsync the WAL before returning.
    pub fn sync_write_options() -> rocksdb::WriteOptions {
        let mut w = rocksdb::WriteOptions::default();
        w.set_sync(true);
        w
    }
}
