//! The store: one redb file with typed tables behind a small facade.
//!
//! Reads run on the blocking pool. Writes go to one writer thread that takes every job queued
//! at that moment into a single transaction and commits it once (group commit): each caller is
//! answered only after the commit is durable, and a busy webhook stream costs one fsync per
//! batch instead of one per event. A job that fails is isolated by replaying the batch one job
//! per transaction, so jobs must be repeatable (`FnMut`) and have no effect outside the store.

mod model;
mod ops;

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::Arc;

use redb::{
    Database, DatabaseError, MultimapTableDefinition, ReadTransaction, ReadableTable,
    TableDefinition, WriteTransaction,
};
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::sync::oneshot;

pub use model::*;
pub use ops::*;

/// Layout version of the file. Older files are migrated on open; newer ones are refused.
pub const SCHEMA_VERSION: u64 = 1;

pub(crate) const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
pub(crate) const USERS: TableDefinition<&str, &[u8]> = TableDefinition::new("users");
pub(crate) const USERNAMES: TableDefinition<&str, &str> = TableDefinition::new("usernames");
pub(crate) const SESSIONS: TableDefinition<&str, &[u8]> = TableDefinition::new("sessions");
pub(crate) const ROOMS: TableDefinition<&str, &[u8]> = TableDefinition::new("rooms");
/// room name → user ids of its moderators.
pub(crate) const MODERATORS: MultimapTableDefinition<&str, &str> =
    MultimapTableDefinition::new("room_moderators");
/// (room, identity) → live participant.
pub(crate) const LIVE: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("participants_live");
/// sequence → participant history row (join and leave times).
pub(crate) const HISTORY: TableDefinition<u64, &[u8]> = TableDefinition::new("participant_history");
/// (room, room sid) → one LiveKit session of a room.
pub(crate) const LK_ROOMS: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("livekit_rooms");
/// webhook event id → time applied (ms), for idempotency.
pub(crate) const EVENTS: TableDefinition<&str, u64> = TableDefinition::new("webhook_events");
/// "left:<participant sid>" / "track-gone:<track sid>" → when it ended, so that an event
/// delivered late cannot bring an ended connection or track back.
pub(crate) const TOMBSTONES: TableDefinition<&str, u64> = TableDefinition::new("tombstones");
/// egress id → the last egress info received.
pub(crate) const EGRESS: TableDefinition<&str, &[u8]> = TableDefinition::new("egress");

/// Errors of the store layer. Domain outcomes (`NotFound`, `Conflict`) are errors too so a
/// write job can refuse before it changes anything.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database {path} is in use by another process (is bedrud already running?)")]
    InUse { path: PathBuf },
    #[error("database {path} has schema version {found}, newer than this bedrud supports ({supported}); upgrade bedrud or restore a backup")]
    SchemaTooNew { path: PathBuf, found: u64, supported: u64 },
    #[error("cannot open database {path}: {message}")]
    Open { path: PathBuf, message: String },
    #[error("database error: {0}")]
    Db(String),
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Invalid(String),
    #[error("the database writer has stopped")]
    Closed,
}

macro_rules! db_err {
    ($($t:ty),*) => {$(
        impl From<$t> for StoreError {
            fn from(e: $t) -> Self { StoreError::Db(e.to_string()) }
        }
    )*};
}
db_err!(redb::TransactionError, redb::TableError, redb::StorageError, redb::CommitError, serde_json::Error);

impl From<DatabaseError> for StoreError {
    fn from(e: DatabaseError) -> Self {
        StoreError::Db(e.to_string())
    }
}

/// One queued write: applied inside the batch's transaction, answered after the commit.
trait WriteJob: Send {
    fn apply(&mut self, txn: &WriteTransaction) -> bool;
    fn finish(self: Box<Self>, commit: Result<(), String>);
}

struct Job<F, R> {
    f: F,
    result: Option<Result<R, StoreError>>,
    reply: oneshot::Sender<Result<R, StoreError>>,
}

impl<F, R> WriteJob for Job<F, R>
where
    F: FnMut(&WriteTransaction) -> Result<R, StoreError> + Send,
    R: Send,
{
    fn apply(&mut self, txn: &WriteTransaction) -> bool {
        let r = (self.f)(txn);
        let ok = r.is_ok();
        self.result = Some(r);
        ok
    }

    fn finish(self: Box<Self>, commit: Result<(), String>) {
        let out = match (commit, self.result) {
            (Ok(()), Some(r)) => r,
            (Err(e), Some(Err(StoreError::Db(_)))) | (Err(e), Some(Ok(_))) | (Err(e), None) => {
                Err(StoreError::Db(e))
            }
            (Err(_), Some(Err(e))) => Err(e),
            (Ok(()), None) => Err(StoreError::Db("write job was not applied".into())),
        };
        let _ = self.reply.send(out);
    }
}

/// Handle to the open database. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    db: Arc<Database>,
    writer: mpsc::SyncSender<Box<dyn WriteJob>>,
    path: Arc<PathBuf>,
}

/// Most jobs taken into one transaction.
const MAX_BATCH: usize = 512;

impl Store {
    /// Opens (or creates) the file, checks the schema version and starts the writer thread.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| StoreError::Open {
                path: path.to_path_buf(),
                message: format!("cannot create directory {}: {e}", dir.display()),
            })?;
        }
        let db = match Database::create(path) {
            Ok(db) => db,
            Err(DatabaseError::DatabaseAlreadyOpen) => {
                return Err(StoreError::InUse { path: path.to_path_buf() })
            }
            Err(DatabaseError::Storage(redb::StorageError::Io(e)))
                if e.kind() == std::io::ErrorKind::WouldBlock =>
            {
                return Err(StoreError::InUse { path: path.to_path_buf() })
            }
            Err(e) => {
                return Err(StoreError::Open { path: path.to_path_buf(), message: e.to_string() })
            }
        };
        migrate(&db, path)?;
        let db = Arc::new(db);
        let (tx, rx) = mpsc::sync_channel::<Box<dyn WriteJob>>(4096);
        // The writer holds the database weakly so the file closes when the last handle drops.
        let wdb = Arc::downgrade(&db);
        std::thread::Builder::new()
            .name("bedrud-store-writer".into())
            .spawn(move || writer_loop(&wdb, rx))
            .map_err(|e| StoreError::Db(format!("cannot start writer thread: {e}")))?;
        Ok(Store { db, writer: tx, path: Arc::new(path.to_path_buf()) })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs a read on the blocking pool.
    pub async fn read<R, F>(&self, f: F) -> Result<R, StoreError>
    where
        F: FnOnce(&ReadTransaction) -> Result<R, StoreError> + Send + 'static,
        R: Send + 'static,
    {
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || {
            let txn = db.begin_read()?;
            f(&txn)
        })
        .await
        .map_err(|e| StoreError::Db(format!("read task failed: {e}")))?
    }

    /// Runs a read on the current thread: the CLI, tests, and the point lookups of the request
    /// path (a session, a user, a room), which redb answers from its cache in microseconds,
    /// less than a trip to the blocking pool costs. Scans go through [`Store::read`].
    pub fn read_blocking<R>(
        &self,
        f: impl FnOnce(&ReadTransaction) -> Result<R, StoreError>,
    ) -> Result<R, StoreError> {
        let txn = self.db.begin_read()?;
        f(&txn)
    }

    /// Queues a write and waits until it is durably committed.
    pub async fn write<R, F>(&self, f: F) -> Result<R, StoreError>
    where
        F: FnMut(&WriteTransaction) -> Result<R, StoreError> + Send + 'static,
        R: Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let job: Box<dyn WriteJob> = Box::new(Job { f, result: None, reply: tx });
        // The channel is bounded; a full queue is waited out on the blocking pool.
        let writer = self.writer.clone();
        match writer.try_send(job) {
            Ok(()) => {}
            Err(mpsc::TrySendError::Full(job)) => {
                tokio::task::spawn_blocking(move || writer.send(job))
                    .await
                    .map_err(|_| StoreError::Closed)?
                    .map_err(|_| StoreError::Closed)?;
            }
            Err(mpsc::TrySendError::Disconnected(_)) => return Err(StoreError::Closed),
        }
        rx.await.map_err(|_| StoreError::Closed)?
    }

    /// Runs a write on the current thread, waiting for the commit (CLI, tests).
    pub fn write_blocking<R, F>(&self, f: F) -> Result<R, StoreError>
    where
        F: FnMut(&WriteTransaction) -> Result<R, StoreError> + Send + 'static,
        R: Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        self.writer
            .send(Box::new(Job { f, result: None, reply: tx }))
            .map_err(|_| StoreError::Closed)?;
        rx.blocking_recv().map_err(|_| StoreError::Closed)?
    }
}

fn writer_loop(weak: &std::sync::Weak<Database>, rx: mpsc::Receiver<Box<dyn WriteJob>>) {
    while let Ok(first) = rx.recv() {
        let Some(db) = weak.upgrade() else {
            first.finish(Err("the database is closed".into()));
            break;
        };
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(j) => batch.push(j),
                Err(_) => break,
            }
        }
        let results: Vec<Result<(), String>> = if batch.len() == 1 || !run_batch(&db, &mut batch) {
            // Either a single job, or a job in the batch failed: one transaction per job so
            // one job's refusal never undoes another's write.
            batch.iter_mut().map(|job| run_one(&db, &mut **job)).collect()
        } else {
            vec![Ok(()); batch.len()]
        };
        // Let go of the database before answering: a caller that drops its last handle as soon
        // as it has its answer (the CLI, then exit) must be the one that closes the file, or
        // the process can end before the close is written and the next open has to repair
        // the whole file.
        drop(db);
        for (job, r) in batch.into_iter().zip(results) {
            job.finish(r);
        }
    }
}

/// Applies the whole batch in one transaction; false (and nothing committed) if any job failed.
fn run_batch(db: &Database, batch: &mut [Box<dyn WriteJob>]) -> bool {
    let Ok(txn) = db.begin_write() else { return false };
    for job in batch.iter_mut() {
        if !job.apply(&txn) {
            let _ = txn.abort();
            return false;
        }
    }
    txn.commit().is_ok()
}

fn run_one(db: &Database, job: &mut dyn WriteJob) -> Result<(), String> {
    let txn = db.begin_write().map_err(|e| e.to_string())?;
    if job.apply(&txn) {
        txn.commit().map_err(|e| e.to_string())
    } else {
        let _ = txn.abort();
        // The job's own error is what the caller sees.
        Err(String::new())
    }
}

/// Creates missing tables and moves older layouts forward; refuses newer files.
fn migrate(db: &Database, path: &Path) -> Result<(), StoreError> {
    let txn = db.begin_write()?;
    let found = {
        let meta = txn.open_table(META)?;
        let v = meta.get("schema_version")?.map(|v| v.value().to_vec());
        v.and_then(|b| String::from_utf8(b).ok()).and_then(|s| s.parse::<u64>().ok())
    };
    if let Some(found) = found {
        if found > SCHEMA_VERSION {
            let _ = txn.abort();
            return Err(StoreError::SchemaTooNew {
                path: path.to_path_buf(),
                found,
                supported: SCHEMA_VERSION,
            });
        }
    }
    // Version 1 is the first layout: creating the tables is the whole migration.
    txn.open_table(USERS)?;
    txn.open_table(USERNAMES)?;
    txn.open_table(SESSIONS)?;
    txn.open_table(ROOMS)?;
    txn.open_multimap_table(MODERATORS)?;
    txn.open_table(LIVE)?;
    txn.open_table(HISTORY)?;
    txn.open_table(LK_ROOMS)?;
    txn.open_table(EVENTS)?;
    txn.open_table(EGRESS)?;
    txn.open_table(TOMBSTONES)?;
    crate::recording::record::create_tables(&txn)?;
    if found != Some(SCHEMA_VERSION) {
        let mut meta = txn.open_table(META)?;
        meta.insert("schema_version", SCHEMA_VERSION.to_string().as_bytes())?;
    }
    txn.commit()?;
    Ok(())
}

/// Decodes a JSON value stored in a table.
pub(crate) fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, StoreError> {
    Ok(serde_json::from_slice(bytes)?)
}

pub(crate) fn encode<T: Serialize>(v: &T) -> Result<Vec<u8>, StoreError> {
    Ok(serde_json::to_vec(v)?)
}

/// Reads and decodes one JSON value by `&str` key.
pub(crate) fn get_json<T: DeserializeOwned>(
    table: &impl ReadableTable<&'static str, &'static [u8]>,
    key: &str,
) -> Result<Option<T>, StoreError> {
    match table.get(key)? {
        Some(v) => Ok(Some(decode(v.value())?)),
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_open_is_in_use_and_newer_schema_refused() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("x.redb");
        let s = Store::open(&p).unwrap();
        match Store::open(&p) {
            Err(StoreError::InUse { .. }) => {}
            other => panic!("expected InUse, got {:?}", other.err()),
        }
        drop(s);
        // Mark the file as written by a newer bedrud.
        {
            let db = Database::create(&p).unwrap();
            let t = db.begin_write().unwrap();
            t.open_table(META).unwrap().insert("schema_version", "99".as_bytes()).unwrap();
            t.commit().unwrap();
        }
        match Store::open(&p) {
            Err(StoreError::SchemaTooNew { found: 99, .. }) => {}
            other => panic!("expected SchemaTooNew, got {:?}", other.err()),
        }
    }
}
