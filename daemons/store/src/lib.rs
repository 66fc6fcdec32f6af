//! The one place that touches LMDB (through `lmdb-rkv`).
//!
//! A [`Store`] is an LMDB environment in a directory with named [`Table`]s;
//! reads and writes go through [`ReadTxn`] and [`WriteTxn`]. Nothing else in
//! the workspace names `lmdb`, so the store could move to another binding
//! (e.g. `heed`) by changing this file only.
//!
//! Durability: a [`WriteTxn::commit`] returns after LMDB has synced the data
//! to disk; callers acknowledge a change only after that.

#![forbid(unsafe_code)]

use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

use lmdb::{Cursor, Transaction};

/// A store operation that failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// The directory could not be created or opened.
    #[error("cannot open store at {path}: {message}")]
    Open {
        /// The directory.
        path: PathBuf,
        /// Why.
        message: String,
    },
    /// The store is full (raise the map size).
    #[error("store is full (map size {map_size_bytes} bytes); raise the store map size")]
    Full {
        /// The configured map size.
        map_size_bytes: usize,
    },
    /// Any other LMDB error.
    #[error("store error during {op}: {error}")]
    Lmdb {
        /// What we were doing.
        op: &'static str,
        /// LMDB's error.
        error: lmdb::Error,
    },
}

/// A named table (an LMDB sub-database). Cheap to copy.
#[derive(Debug, Clone, Copy)]
pub struct Table(lmdb::Database);

/// An LMDB environment in one directory.
#[derive(Debug)]
pub struct Store {
    env: lmdb::Environment,
    map_size: usize,
}

/// Options for [`Store::open`].
#[derive(Debug, Clone)]
pub struct Options {
    /// Maximum size of the store on disk (LMDB's map size).
    pub map_size_bytes: usize,
    /// Maximum number of concurrent readers.
    pub max_readers: u32,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            map_size_bytes: 16 << 30,
            max_readers: 1024,
        }
    }
}

impl Store {
    /// Opens (creating if needed) the store in `dir` with the given tables.
    pub fn open(
        dir: &Path,
        tables: &[&str],
        options: &Options,
    ) -> Result<(Store, Vec<Table>), StoreError> {
        let open_err = |message: String| StoreError::Open {
            path: dir.to_path_buf(),
            message,
        };
        std::fs::create_dir_all(dir).map_err(|e| open_err(e.to_string()))?;
        let max_dbs =
            u32::try_from(tables.len()).map_err(|_| open_err("too many tables".into()))?;
        let env = lmdb::Environment::new()
            .set_flags(lmdb::EnvironmentFlags::NO_TLS | lmdb::EnvironmentFlags::NO_READAHEAD)
            .set_max_dbs(max_dbs)
            .set_max_readers(options.max_readers)
            .set_map_size(options.map_size_bytes)
            .open(dir)
            .map_err(|e| match e {
                lmdb::Error::Invalid | lmdb::Error::Corrupted | lmdb::Error::VersionMismatch => {
                    open_err(format!(
                        "{e}: the directory holds a damaged or foreign LMDB store"
                    ))
                }
                other => open_err(other.to_string()),
            })?;
        let mut handles = Vec::with_capacity(tables.len());
        for name in tables {
            let db = env
                .create_db(Some(name), lmdb::DatabaseFlags::empty())
                .map_err(|e| open_err(format!("table {name}: {e}")))?;
            handles.push(Table(db));
        }
        Ok((
            Store {
                env,
                map_size: options.map_size_bytes,
            },
            handles,
        ))
    }

    /// Starts a read-only transaction (a consistent snapshot).
    pub fn read(&self) -> Result<ReadTxn<'_>, StoreError> {
        self.env
            .begin_ro_txn()
            .map(ReadTxn)
            .map_err(|error| StoreError::Lmdb {
                op: "begin read",
                error,
            })
    }

    /// Starts the write transaction. Only one exists at a time; keep it on one thread.
    pub fn write(&self) -> Result<WriteTxn<'_>, StoreError> {
        self.env
            .begin_rw_txn()
            .map(|txn| WriteTxn {
                txn,
                map_size: self.map_size,
            })
            .map_err(|error| StoreError::Lmdb {
                op: "begin write",
                error,
            })
    }

    /// Bytes the store occupies on disk.
    pub fn disk_bytes(&self) -> Result<u64, StoreError> {
        let info = self
            .env
            .info()
            .map_err(|error| StoreError::Lmdb { op: "info", error })?;
        let stat = self
            .env
            .stat()
            .map_err(|error| StoreError::Lmdb { op: "stat", error })?;
        Ok((info.last_pgno() as u64 + 1) * u64::from(stat.page_size()))
    }
}

/// A key and its value.
pub type Entry = (Vec<u8>, Vec<u8>);

/// Called with each key and value of a scan; breaks to stop it.
pub type Visit<'a> = dyn FnMut(&[u8], &[u8]) -> ControlFlow<()> + 'a;

/// Reads shared by read and write transactions.
pub trait Reader {
    /// The value under `key`, if any.
    fn get(&self, table: Table, key: &[u8]) -> Result<Option<&[u8]>, StoreError>;

    /// Visits entries in key order starting at the first key `>= start`,
    /// until `visit` breaks or the table ends.
    fn scan_from(
        &self,
        table: Table,
        start: &[u8],
        visit: &mut Visit<'_>,
    ) -> Result<(), StoreError>;

    /// The entry with the largest key `<= key`, if any.
    fn last_at_or_before(&self, table: Table, key: &[u8]) -> Result<Option<Entry>, StoreError>;

    /// The first entry whose key starts with `prefix`.
    fn first_with_prefix(&self, table: Table, prefix: &[u8]) -> Result<Option<Entry>, StoreError> {
        let mut found = None;
        self.scan_from(table, prefix, &mut |k, v| {
            if k.starts_with(prefix) {
                found = Some((k.to_vec(), v.to_vec()));
            }
            ControlFlow::Break(())
        })?;
        Ok(found)
    }

    /// Visits every entry whose key starts with `prefix`.
    fn scan_prefix(
        &self,
        table: Table,
        prefix: &[u8],
        visit: &mut Visit<'_>,
    ) -> Result<(), StoreError> {
        self.scan_from(table, prefix, &mut |k, v| {
            if !k.starts_with(prefix) {
                return ControlFlow::Break(());
            }
            visit(k, v)
        })
    }
}

fn get_in<'t, T: Transaction>(
    txn: &'t T,
    table: Table,
    key: &[u8],
) -> Result<Option<&'t [u8]>, StoreError> {
    match txn.get(table.0, &key) {
        Ok(v) => Ok(Some(v)),
        Err(lmdb::Error::NotFound) => Ok(None),
        Err(error) => Err(StoreError::Lmdb { op: "get", error }),
    }
}

fn scan_in<T: Transaction>(
    txn: &T,
    table: Table,
    start: &[u8],
    visit: &mut Visit<'_>,
) -> Result<(), StoreError> {
    let mut cursor = txn
        .open_ro_cursor(table.0)
        .map_err(|error| StoreError::Lmdb {
            op: "cursor",
            error,
        })?;
    let iter = if start.is_empty() {
        cursor.iter_start()
    } else {
        cursor.iter_from(start)
    };
    for item in iter {
        let (k, v) = match item {
            Ok(kv) => kv,
            Err(lmdb::Error::NotFound) => break,
            Err(error) => return Err(StoreError::Lmdb { op: "scan", error }),
        };
        if visit(k, v).is_break() {
            break;
        }
    }
    Ok(())
}

fn last_at_or_before_in<T: Transaction>(
    txn: &T,
    table: Table,
    key: &[u8],
) -> Result<Option<Entry>, StoreError> {
    let err = |error| StoreError::Lmdb {
        op: "seek back",
        error,
    };
    let cursor = txn
        .open_ro_cursor(table.0)
        .map_err(|error| StoreError::Lmdb {
            op: "cursor",
            error,
        })?;
    // The first key >= `key`; if it is above, the one before it; if there
    // is none, the last key of the table.
    let found = match cursor.get(Some(key), None, lmdb_sys::MDB_SET_RANGE) {
        Ok((k, v)) if k.unwrap_or(key) == key => Ok((k.unwrap_or(key), v)),
        Ok(_) => cursor
            .get(None, None, lmdb_sys::MDB_PREV)
            .map(|(k, v)| (k.unwrap_or_default(), v)),
        Err(lmdb::Error::NotFound) => cursor
            .get(None, None, lmdb_sys::MDB_LAST)
            .map(|(k, v)| (k.unwrap_or_default(), v)),
        Err(e) => Err(e),
    };
    match found {
        Ok((k, v)) => Ok(Some((k.to_vec(), v.to_vec()))),
        Err(lmdb::Error::NotFound) => Ok(None),
        Err(e) => Err(err(e)),
    }
}

/// A read-only snapshot.
pub struct ReadTxn<'e>(lmdb::RoTransaction<'e>);

impl Reader for ReadTxn<'_> {
    fn get(&self, table: Table, key: &[u8]) -> Result<Option<&[u8]>, StoreError> {
        get_in(&self.0, table, key)
    }
    fn scan_from(
        &self,
        table: Table,
        start: &[u8],
        visit: &mut Visit<'_>,
    ) -> Result<(), StoreError> {
        scan_in(&self.0, table, start, visit)
    }
    fn last_at_or_before(&self, table: Table, key: &[u8]) -> Result<Option<Entry>, StoreError> {
        last_at_or_before_in(&self.0, table, key)
    }
}

/// The write transaction. Dropped without [`WriteTxn::commit`], it changes nothing.
pub struct WriteTxn<'e> {
    txn: lmdb::RwTransaction<'e>,
    map_size: usize,
}

impl Reader for WriteTxn<'_> {
    fn get(&self, table: Table, key: &[u8]) -> Result<Option<&[u8]>, StoreError> {
        get_in(&self.txn, table, key)
    }
    fn scan_from(
        &self,
        table: Table,
        start: &[u8],
        visit: &mut Visit<'_>,
    ) -> Result<(), StoreError> {
        scan_in(&self.txn, table, start, visit)
    }
    fn last_at_or_before(&self, table: Table, key: &[u8]) -> Result<Option<Entry>, StoreError> {
        last_at_or_before_in(&self.txn, table, key)
    }
}

impl<'e> WriteTxn<'e> {
    fn err(&self, op: &'static str, error: lmdb::Error) -> StoreError {
        match error {
            lmdb::Error::MapFull => StoreError::Full {
                map_size_bytes: self.map_size,
            },
            error => StoreError::Lmdb { op, error },
        }
    }

    /// Stores `value` under `key`, replacing any previous value.
    pub fn put(&mut self, table: Table, key: &[u8], value: &[u8]) -> Result<(), StoreError> {
        self.txn
            .put(table.0, &key, &value, lmdb::WriteFlags::empty())
            .map_err(|e| self.err("put", e))
    }

    /// Removes `key`; returns whether it was there.
    pub fn del(&mut self, table: Table, key: &[u8]) -> Result<bool, StoreError> {
        match self.txn.del(table.0, &key, None) {
            Ok(()) => Ok(true),
            Err(lmdb::Error::NotFound) => Ok(false),
            Err(e) => Err(self.err("del", e)),
        }
    }

    /// Removes every entry of `table`.
    pub fn clear(&mut self, table: Table) -> Result<(), StoreError> {
        self.txn.clear_db(table.0).map_err(|e| self.err("clear", e))
    }

    /// A nested transaction: its changes join this one on commit, or vanish if dropped.
    pub fn nested(&mut self) -> Result<WriteTxn<'_>, StoreError> {
        let map_size = self.map_size;
        match self.txn.begin_nested_txn() {
            Ok(txn) => Ok(WriteTxn { txn, map_size }),
            Err(error) => Err(StoreError::Lmdb {
                op: "begin nested",
                error,
            }),
        }
    }

    /// Commits; for the outermost transaction, returns after the data is on disk.
    pub fn commit(self) -> Result<(), StoreError> {
        let map_size = self.map_size;
        self.txn.commit().map_err(|e| match e {
            lmdb::Error::MapFull => StoreError::Full {
                map_size_bytes: map_size,
            },
            error => StoreError::Lmdb {
                op: "commit",
                error,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open(dir: &Path) -> (Store, Table) {
        let (s, t) = Store::open(
            dir,
            &["t"],
            &Options {
                map_size_bytes: 1 << 24,
                max_readers: 8,
            },
        )
        .unwrap();
        (s, t[0])
    }

    #[test]
    fn committed_writes_survive_reopen_and_dropped_ones_do_not() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (s, t) = open(dir.path());
            let mut w = s.write().unwrap();
            w.put(t, b"a", b"1").unwrap();
            w.commit().unwrap();
            let mut w = s.write().unwrap();
            w.put(t, b"b", b"2").unwrap();
            drop(w);
        }
        let (s, t) = open(dir.path());
        let r = s.read().unwrap();
        assert_eq!(r.get(t, b"a").unwrap(), Some(&b"1"[..]));
        assert_eq!(r.get(t, b"b").unwrap(), None);
    }

    #[test]
    fn nested_transaction_rolls_back_alone() {
        let dir = tempfile::tempdir().unwrap();
        let (s, t) = open(dir.path());
        let mut w = s.write().unwrap();
        w.put(t, b"outer", b"1").unwrap();
        {
            let mut n = w.nested().unwrap();
            n.put(t, b"inner", b"2").unwrap();
        }
        {
            let mut n = w.nested().unwrap();
            n.put(t, b"kept", b"3").unwrap();
            n.commit().unwrap();
        }
        w.commit().unwrap();
        let r = s.read().unwrap();
        assert!(r.get(t, b"outer").unwrap().is_some());
        assert!(r.get(t, b"inner").unwrap().is_none());
        assert!(r.get(t, b"kept").unwrap().is_some());
    }

    #[test]
    fn prefix_scans_stop_at_the_prefix() {
        let dir = tempfile::tempdir().unwrap();
        let (s, t) = open(dir.path());
        let mut w = s.write().unwrap();
        for k in [&b"a1"[..], b"b1", b"b2", b"c1"] {
            w.put(t, k, b"").unwrap();
        }
        w.commit().unwrap();
        let r = s.read().unwrap();
        let mut seen = vec![];
        r.scan_prefix(t, b"b", &mut |k, _| {
            seen.push(k.to_vec());
            ControlFlow::Continue(())
        })
        .unwrap();
        assert_eq!(seen, vec![b"b1".to_vec(), b"b2".to_vec()]);
        assert_eq!(
            r.first_with_prefix(t, b"c").unwrap().unwrap().0,
            b"c1".to_vec()
        );
        assert!(r.first_with_prefix(t, b"d").unwrap().is_none());
    }

    #[test]
    fn seeking_back_finds_the_largest_key_at_or_before() {
        let dir = tempfile::tempdir().unwrap();
        let (s, t) = open(dir.path());
        let r = s.read().unwrap();
        assert_eq!(r.last_at_or_before(t, b"m").unwrap(), None);
        drop(r);
        let mut w = s.write().unwrap();
        for k in [&b"b"[..], b"d", b"f"] {
            w.put(t, k, k).unwrap();
        }
        w.commit().unwrap();
        let r = s.read().unwrap();
        let key = |q: &[u8]| r.last_at_or_before(t, q).unwrap().map(|(k, _)| k);
        assert_eq!(key(b"a"), None);
        assert_eq!(key(b"b"), Some(b"b".to_vec()));
        assert_eq!(key(b"c"), Some(b"b".to_vec()));
        assert_eq!(key(b"d"), Some(b"d".to_vec()));
        assert_eq!(key(b"e"), Some(b"d".to_vec()));
        assert_eq!(key(b"z"), Some(b"f".to_vec()));
        drop(r);
        let mut w = s.write().unwrap();
        w.clear(t).unwrap();
        w.commit().unwrap();
        assert_eq!(s.read().unwrap().last_at_or_before(t, b"z").unwrap(), None);
    }

    #[test]
    fn a_file_that_is_not_a_store_is_refused_clearly() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("data.mdb"), vec![0x42u8; 8192]).unwrap();
        let err = Store::open(dir.path(), &["t"], &Options::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("cannot open store"), "{err}");
    }

    #[test]
    fn full_store_is_reported_as_full() {
        let dir = tempfile::tempdir().unwrap();
        let (s, t) = Store::open(
            dir.path(),
            &["t"],
            &Options {
                map_size_bytes: 1 << 20,
                max_readers: 8,
            },
        )
        .unwrap();
        let big = vec![7u8; 64 << 10];
        let mut w = s.write().unwrap();
        let mut result = Ok(());
        for i in 0u32..64 {
            result = w.put(t[0], &i.to_be_bytes(), &big);
            if result.is_err() {
                break;
            }
        }
        assert!(matches!(result, Err(StoreError::Full { .. })), "{result:?}");
    }
}
