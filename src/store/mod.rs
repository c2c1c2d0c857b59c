//! The store: one redb file with typed tables behind a small facade.
//!
//! Reads run on the blocking pool. Writes go to one writer thread that takes every job queued
//! at that moment into a single transaction and commits it once (group commit): each caller is
//! answered only after the commit is durable, and a busy webhook stream costs one fsync per
//! batch instead of one per event. A job that fails is isolated by replaying the batch one job
//! per transaction, so jobs must be repeatable (`FnMut`) and have no effect outside the store.
//!
//! A commit that fails on an I/O error (a full disk, typically) leaves redb refusing every
//! later operation until the file is closed and opened again, so the writer does exactly that
//! at once: reads go on from the reopened file while writes are answered "cannot write" until a
//! probe write succeeds again (checked every second once there is free space again).

mod codec;
mod maint;
mod meeting;
mod model;
mod ops;
mod signin;

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use redb::{
    Database, DatabaseError, MultimapTableDefinition, ReadTransaction, ReadableTable,
    TableDefinition, WriteTransaction,
};
use serde::de::DeserializeOwned;
use tokio::sync::oneshot;

pub use maint::*;
pub use meeting::*;
pub use model::*;
pub use ops::*;
pub use signin::*;

/// Layout version of the file. Older files are migrated on open; newer ones are refused.
/// 2: indexes: `participant_history_by_room`, `rooms_public`, `rooms_by_member`.
/// 3: rooms gain `lobby`, `stage`, `locked` and `spotlight` (a bedrud that knows only 2 could
///    not read them), and the invite, attendee and ban tables.
/// 4: records in a binary layout instead of JSON (`codec.rs`); history rows name their room
///    by number (`participant_history_rooms`), indexed by `participant_history_by_room_no`.
pub const SCHEMA_VERSION: u64 = 4;

/// redb's page cache unless configured (`database.cacheSize`).
pub const DEFAULT_CACHE_SIZE: usize = 64 * 1024 * 1024;

pub(crate) const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
pub(crate) const USERS: TableDefinition<&str, &[u8]> = TableDefinition::new("users");
pub(crate) const USERNAMES: TableDefinition<&str, &str> = TableDefinition::new("usernames");
pub(crate) const SESSIONS: TableDefinition<&str, &[u8]> = TableDefinition::new("sessions");
pub(crate) const ROOMS: TableDefinition<&str, &[u8]> = TableDefinition::new("rooms");
/// room name → user ids of its moderators.
pub(crate) const MODERATORS: MultimapTableDefinition<&str, &str> =
    MultimapTableDefinition::new("room_moderators");
/// Names of the public rooms.
pub(crate) const ROOMS_PUBLIC: TableDefinition<&str, ()> = TableDefinition::new("rooms_public");
/// (user id, room) → how the user relates to the room ([`MEMBER_OWNER`] | [`MEMBER_MODERATOR`]):
/// the rooms a user may see besides the public ones, in name order.
pub(crate) const ROOMS_BY_MEMBER: TableDefinition<(&str, &str), u8> = TableDefinition::new("rooms_by_member");
pub(crate) const MEMBER_OWNER: u8 = 1;
pub(crate) const MEMBER_MODERATOR: u8 = 2;
/// (room, identity) → live participant.
pub(crate) const LIVE: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("participants_live");
/// (room number, sequence) → participant history row (join and leave times): one room's rows
/// are neighbours, in join order, so a room's history is one range read and needs no index.
/// The sequence is the row's id, unique in the store (meta `history_seq` holds the last one).
pub(crate) const HISTORY: TableDefinition<(u64, u64), &[u8]> = TableDefinition::new("participant_history_rows");
/// Schemas 1-3: sequence → history row as JSON; moved into [`HISTORY`] by the migration to 4.
pub(crate) const HISTORY_V3: TableDefinition<u64, &[u8]> = TableDefinition::new("participant_history");
/// Room name → the number history rows use for it. Never removed from, so a number is never
/// given twice (the next is the table's length + 1).
pub(crate) const HISTORY_ROOMS: TableDefinition<&str, u64> = TableDefinition::new("participant_history_rooms");
/// Schema 2's index, (room, sequence) → (); dropped by the migration to 3.
pub(crate) const HISTORY_BY_ROOM_V2: TableDefinition<(&str, u64), ()> = TableDefinition::new("participant_history_by_room");
/// (room, room sid) → one LiveKit session of a room.
pub(crate) const LK_ROOMS: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("livekit_rooms");
/// webhook event id → time applied (ms), for idempotency.
pub(crate) const EVENTS: TableDefinition<&str, u64> = TableDefinition::new("webhook_events");
/// "left:<participant sid>" / "track-gone:<track sid>" → when it ended, so that an event
/// delivered late cannot bring an ended connection or track back.
pub(crate) const TOMBSTONES: TableDefinition<&str, u64> = TableDefinition::new("tombstones");
/// egress id → the last egress info received.
pub(crate) const EGRESS: TableDefinition<&str, &[u8]> = TableDefinition::new("egress");
/// (issuer, subject) → user id: who signs in through an OpenID provider.
pub(crate) const OIDC_SUBJECTS: TableDefinition<(&str, &str), &str> = TableDefinition::new("oidc_subjects");
/// Verified e-mail address (lower case) → user id; each address verifies one account.
pub(crate) const EMAILS: TableDefinition<&str, &str> = TableDefinition::new("emails");
/// (user id, credential id) → passkey.
pub(crate) const PASSKEYS: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("passkeys");
/// SHA-256 of a mailed link's token → what it allows.
pub(crate) const MAIL_TOKENS: TableDefinition<&str, &[u8]> = TableDefinition::new("mail_tokens");
/// (room, invite id) → invite.
pub(crate) const INVITES: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("room_invites");
/// SHA-256 of an invite's secret → (room, invite id).
pub(crate) const INVITE_TOKENS: TableDefinition<&str, (&str, &str)> = TableDefinition::new("room_invite_tokens");
/// (room, identity) → that person's standing in the room (invite, lobby, moderator, speaker).
pub(crate) const ATTENDEES: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("room_attendees");
/// (room, identity) → ban.
pub(crate) const BANS: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("room_bans");

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
    /// Writes fail (disk full, I/O error); reads still work.
    #[error("the database cannot write: {message}")]
    WriteFailed { message: String, disk_full: bool },
    /// The file is being reopened after an I/O error.
    #[error("the database is unavailable: {0}")]
    Unavailable(String),
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
    fn finish(self: Box<Self>, commit: Result<(), StoreError>);
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

    fn finish(self: Box<Self>, commit: Result<(), StoreError>) {
        let out = match (commit, self.result) {
            (Ok(()), Some(r)) => r,
            // The job refused (an empty `Db` error is the sign): its own error.
            (Err(StoreError::Db(m)), Some(Err(e))) if m.is_empty() => Err(e),
            (Err(e), _) => Err(e),
            (Ok(()), None) => Err(StoreError::Db("write job was not applied".into())),
        };
        let _ = self.reply.send(out);
    }
}

/// Why writes fail at the moment.
#[derive(Debug, Clone, PartialEq)]
pub struct WriteFailure {
    /// Unix ms of the first failure.
    pub since: u64,
    pub message: String,
    /// The filesystem is full (or over quota): the API answers 507.
    pub disk_full: bool,
}

impl WriteFailure {
    fn error(&self) -> StoreError {
        StoreError::WriteFailed { message: self.message.clone(), disk_full: self.disk_full }
    }
}

/// How the store is opened.
#[derive(Debug, Clone, Copy)]
pub struct StoreOptions {
    /// redb's page cache in bytes.
    pub cache_size: usize,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self { cache_size: DEFAULT_CACHE_SIZE }
    }
}

/// State shared by every handle and the writer thread.
struct Shared {
    /// `None` while the file is being reopened.
    db: RwLock<Option<Arc<Database>>>,
    path: PathBuf,
    opts: StoreOptions,
    failure: Mutex<Option<WriteFailure>>,
    stats: CommitStats,
}

/// Commit latencies, for metrics: a histogram over fixed bounds (seconds).
pub struct CommitStats {
    buckets: [std::sync::atomic::AtomicU64; COMMIT_BOUNDS.len()],
    count: std::sync::atomic::AtomicU64,
    sum_us: std::sync::atomic::AtomicU64,
    failed: std::sync::atomic::AtomicU64,
}

/// Upper bounds of the commit latency buckets, seconds.
pub const COMMIT_BOUNDS: [f64; 10] = [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.5, 2.0];

impl CommitStats {
    fn new() -> Self {
        Self {
            buckets: Default::default(),
            count: Default::default(),
            sum_us: Default::default(),
            failed: Default::default(),
        }
    }

    fn record(&self, took: Duration) {
        use std::sync::atomic::Ordering::Relaxed;
        let secs = took.as_secs_f64();
        for (b, bound) in self.buckets.iter().zip(COMMIT_BOUNDS) {
            if secs <= bound {
                b.fetch_add(1, Relaxed);
            }
        }
        self.count.fetch_add(1, Relaxed);
        self.sum_us.fetch_add(took.as_micros() as u64, Relaxed);
    }

    /// (cumulative bucket counts, count, sum in seconds, failed commits).
    pub fn snapshot(&self) -> (Vec<u64>, u64, f64, u64) {
        use std::sync::atomic::Ordering::Relaxed;
        (
            self.buckets.iter().map(|b| b.load(Relaxed)).collect(),
            self.count.load(Relaxed),
            self.sum_us.load(Relaxed) as f64 / 1e6,
            self.failed.load(Relaxed),
        )
    }
}

/// Handle to the open database. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    shared: Arc<Shared>,
    writer: mpsc::SyncSender<Msg>,
}

/// What the writer thread is asked to do.
enum Msg {
    Job(Box<dyn WriteJob>),
    /// Compact the file (needs the database to itself).
    Compact(oneshot::Sender<Result<bool, StoreError>>),
}

/// Most jobs taken into one transaction.
const MAX_BATCH: usize = 512;
/// While writes fail for lack of space, they are tried again only with this much free.
const RETRY_FREE_BYTES: u64 = 1024 * 1024;
/// How long a reopen waits for reads in flight to finish.
const REOPEN_WAIT: Duration = Duration::from_secs(10);

fn open_db(path: &Path, opts: &StoreOptions) -> Result<Database, StoreError> {
    match Database::builder().set_cache_size(opts.cache_size).create(path) {
        Ok(db) => Ok(db),
        Err(DatabaseError::DatabaseAlreadyOpen) => Err(StoreError::InUse { path: path.to_path_buf() }),
        Err(DatabaseError::Storage(redb::StorageError::Io(e))) if e.kind() == std::io::ErrorKind::WouldBlock => {
            Err(StoreError::InUse { path: path.to_path_buf() })
        }
        Err(e) => Err(StoreError::Open { path: path.to_path_buf(), message: e.to_string() }),
    }
}

impl Store {
    /// Opens (or creates) the file with default options.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        Self::open_with(path, StoreOptions::default())
    }

    /// Opens (or creates) the file, checks the schema version, migrates older layouts and
    /// starts the writer thread.
    pub fn open_with(path: &Path, opts: StoreOptions) -> Result<Store, StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| StoreError::Open {
                path: path.to_path_buf(),
                message: format!("cannot create directory {}: {e}", dir.display()),
            })?;
        }
        let db = open_db(path, &opts)?;
        migrate(&db, path)?;
        let shared = Arc::new(Shared {
            db: RwLock::new(Some(Arc::new(db))),
            path: path.to_path_buf(),
            opts,
            failure: Mutex::new(None),
            stats: CommitStats::new(),
        });
        let (tx, rx) = mpsc::sync_channel::<Msg>(4096);
        // The writer holds the state weakly so the file closes when the last handle drops.
        let weak = Arc::downgrade(&shared);
        std::thread::Builder::new()
            .name("bedrud-store-writer".into())
            .spawn(move || writer_loop(&weak, rx))
            .map_err(|e| StoreError::Db(format!("cannot start writer thread: {e}")))?;
        Ok(Store { shared, writer: tx })
    }

    pub fn path(&self) -> &Path {
        &self.shared.path
    }

    /// Why writes fail now, if they do.
    pub fn write_failure(&self) -> Option<WriteFailure> {
        self.shared.failure.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Commit latencies and failures so far.
    pub fn commit_stats(&self) -> &CommitStats {
        &self.shared.stats
    }

    fn db(&self) -> Result<Arc<Database>, StoreError> {
        self.shared.current()
    }

    /// Runs a read on the blocking pool.
    pub async fn read<R, F>(&self, f: F) -> Result<R, StoreError>
    where
        F: FnOnce(&ReadTransaction) -> Result<R, StoreError> + Send + 'static,
        R: Send + 'static,
    {
        let store = self.clone();
        tokio::task::spawn_blocking(move || store.read_blocking(f))
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
        let db = self.db()?;
        let txn = db.begin_read()?;
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
        match writer.try_send(Msg::Job(job)) {
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
            .send(Msg::Job(Box::new(Job { f, result: None, reply: tx })))
            .map_err(|_| StoreError::Closed)?;
        rx.blocking_recv().map_err(|_| StoreError::Closed)?
    }

    /// Compacts the file (reads wait meanwhile); `Ok(false)` when nothing could be reclaimed.
    pub async fn compact(&self) -> Result<bool, StoreError> {
        let (tx, rx) = oneshot::channel();
        let writer = self.writer.clone();
        tokio::task::spawn_blocking(move || writer.send(Msg::Compact(tx)))
            .await
            .map_err(|_| StoreError::Closed)?
            .map_err(|_| StoreError::Closed)?;
        rx.await.map_err(|_| StoreError::Closed)?
    }

    /// Bytes free (for unprivileged users) and in total on the database's filesystem.
    pub fn disk_space(&self) -> Option<(u64, u64)> {
        disk_space(&self.shared.path)
    }
}

/// Whether `free` of `total` bytes is little enough to warn about: under 10% or 256 MiB.
pub fn disk_low(free: u64, total: u64) -> bool {
    free < total / 10 || free < 256 * 1024 * 1024
}

/// Bytes available and total on the filesystem holding `path`.
pub fn disk_space(path: &Path) -> Option<(u64, u64)> {
    // The file may be a symbolic link onto another filesystem.
    let real = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let dir = real.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let st = nix::sys::statvfs::statvfs(dir).ok()?;
    let frag = st.fragment_size() as u64;
    Some((st.blocks_available() as u64 * frag, st.blocks() as u64 * frag))
}

impl Shared {
    fn current(&self) -> Result<Arc<Database>, StoreError> {
        self.db.read().unwrap_or_else(|e| e.into_inner()).clone().ok_or_else(|| {
            StoreError::Unavailable("it is being reopened after a write error; try again shortly".into())
        })
    }

    fn failure(&self) -> Option<WriteFailure> {
        self.failure.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn set_failure(&self, f: Option<WriteFailure>) {
        let mut cur = self.failure.lock().unwrap_or_else(|e| e.into_inner());
        match (&*cur, &f) {
            (None, Some(f)) => tracing::error!(path = %self.path.display(), error = %f.message, disk_full = f.disk_full, "database writes fail; reads go on, writes are refused until this is fixed"),
            (Some(_), None) => tracing::info!(path = %self.path.display(), "database writes work again"),
            _ => {}
        }
        // Keep the time of the first failure.
        *cur = match (cur.take(), f) {
            (Some(old), Some(mut new)) => {
                new.since = old.since;
                Some(new)
            }
            (_, f) => f,
        };
    }

    /// With the database to itself (no reads in flight, none let in), runs `f` on it; the
    /// slot is left empty when `f` gives nothing back.
    fn exclusive<R>(&self, f: impl FnOnce(Option<Database>) -> (Option<Database>, R)) -> Result<R, StoreError> {
        let mut slot = self.db.write().unwrap_or_else(|e| e.into_inner());
        let db = match slot.take() {
            None => None,
            Some(mut arc) => {
                let start = Instant::now();
                loop {
                    match Arc::try_unwrap(arc) {
                        Ok(db) => break Some(db),
                        Err(back) if start.elapsed() < REOPEN_WAIT => {
                            arc = back;
                            std::thread::sleep(Duration::from_millis(2));
                        }
                        Err(back) => {
                            *slot = Some(back);
                            return Err(StoreError::Db("reads did not finish in time".into()));
                        }
                    }
                }
            }
        };
        let (db, r) = f(db);
        *slot = db.map(Arc::new);
        Ok(r)
    }

    /// Closes and opens the file again (redb refuses everything after an I/O error until then).
    fn reopen(&self) -> Result<(), StoreError> {
        let r = self.exclusive(|db| {
            drop(db);
            match open_db(&self.path, &self.opts) {
                Ok(db) => (Some(db), Ok(())),
                Err(e) => (None, Err(e)),
            }
        })?;
        match &r {
            Ok(()) => tracing::info!(path = %self.path.display(), "database reopened after a write error"),
            Err(e) => tracing::warn!(path = %self.path.display(), error = %e, "database cannot be reopened yet"),
        }
        r
    }
}

/// A failed storage operation, as the writer sees it.
struct Failure {
    message: String,
    disk_full: bool,
}

impl Failure {
    fn of_storage(e: &redb::StorageError) -> Failure {
        let disk_full = matches!(e, redb::StorageError::Io(io) if io.kind() == std::io::ErrorKind::StorageFull
            || io.raw_os_error().is_some_and(|c| c == nix::libc::ENOSPC || c == nix::libc::EDQUOT));
        Failure { message: e.to_string(), disk_full }
    }

    fn of_commit(e: redb::CommitError) -> Failure {
        match e {
            redb::CommitError::Storage(s) => Failure::of_storage(&s),
            other => Failure { message: other.to_string(), disk_full: false },
        }
    }

    fn of_begin(e: redb::TransactionError) -> Failure {
        match e {
            redb::TransactionError::Storage(s) => Failure::of_storage(&s),
            other => Failure { message: other.to_string(), disk_full: false },
        }
    }
}

fn writer_loop(weak: &std::sync::Weak<Shared>, rx: mpsc::Receiver<Msg>) {
    loop {
        let first = match rx.recv_timeout(Duration::from_secs(1)) {
            Ok(m) => Some(m),
            Err(mpsc::RecvTimeoutError::Timeout) => None,
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        };
        let Some(shared) = weak.upgrade() else {
            if let Some(Msg::Job(j)) = first {
                j.finish(Err(StoreError::Closed));
            }
            break;
        };
        let first = match first {
            // Idle: while writes fail, see whether they work again.
            None => {
                if shared.failure().is_some() {
                    probe(&shared);
                }
                continue;
            }
            Some(Msg::Compact(reply)) => {
                let _ = reply.send(compact(&shared));
                continue;
            }
            Some(Msg::Job(j)) => j,
        };
        let mut batch = vec![first];
        let mut deferred = None;
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(Msg::Job(j)) => batch.push(j),
                Ok(other) => {
                    deferred = Some(other);
                    break;
                }
                Err(_) => break,
            }
        }
        let results = run_jobs(&shared, &mut batch);
        // Let go of the database before answering: a caller that drops its last handle as soon
        // as it has its answer (the CLI, then exit) must be the one that closes the file, or
        // the process can end before the close is written and the next open has to repair
        // the whole file.
        drop(shared);
        for (job, r) in batch.into_iter().zip(results) {
            job.finish(r);
        }
        if let Some(Msg::Compact(reply)) = deferred {
            let r = match weak.upgrade() {
                Some(shared) => compact(&shared),
                None => Err(StoreError::Closed),
            };
            let _ = reply.send(r);
        }
    }
}

/// Commits a batch: all in one transaction, or (when one job refuses) one transaction each.
fn run_jobs(shared: &Shared, batch: &mut [Box<dyn WriteJob>]) -> Vec<Result<(), StoreError>> {
    if let Some(f) = shared.failure() {
        // Writes failed before: try again only once there is room (else answer at once and
        // leave the file alone), and reopen first if the last failure left it closed.
        let room = !f.disk_full || disk_space(&shared.path).is_none_or(|(free, _)| free >= RETRY_FREE_BYTES);
        if !room || (shared.current().is_err() && shared.reopen().is_err()) {
            return batch.iter().map(|_| Err(f.error())).collect();
        }
    }
    let db = match shared.current() {
        Ok(db) => db,
        Err(e) => return batch.iter().map(|_| Err(StoreError::Unavailable(e.to_string()))).collect(),
    };
    let outcome = if batch.len() == 1 { None } else { Some(run_batch(&shared.stats, &db, batch)) };
    let results: Vec<Result<(), StoreError>> = match outcome {
        Some(Ok(true)) => batch.iter().map(|_| Ok(())).collect(),
        Some(Err(f)) => batch.iter().map(|_| Err(StoreError::WriteFailed { message: f.message.clone(), disk_full: f.disk_full })).collect(),
        // A single job, or a job in the batch refused: one transaction per job so one job's
        // refusal never undoes another's write.
        None | Some(Ok(false)) => batch.iter_mut().map(|job| run_one(&shared.stats, &db, &mut **job)).collect(),
    };
    drop(db);
    let failed = results.iter().find_map(|r| match r {
        Err(StoreError::WriteFailed { message, disk_full }) => Some((message.clone(), *disk_full)),
        _ => None,
    });
    match failed {
        Some((message, disk_full)) => {
            shared.stats.failed.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            shared.set_failure(Some(WriteFailure { since: now_ms(), message, disk_full }));
            // redb refuses everything after an I/O error until the file is opened again.
            let _ = shared.reopen();
        }
        None => {
            if results.iter().any(|r| r.is_ok()) && shared.failure().is_some() {
                shared.set_failure(None);
            }
        }
    }
    results
}

/// Applies the whole batch in one transaction. `Ok(false)` (nothing committed) if a job
/// refused; `Err` if storage failed.
fn run_batch(stats: &CommitStats, db: &Database, batch: &mut [Box<dyn WriteJob>]) -> Result<bool, Failure> {
    let txn = db.begin_write().map_err(Failure::of_begin)?;
    for job in batch.iter_mut() {
        if !job.apply(&txn) {
            let _ = txn.abort();
            return Ok(false);
        }
    }
    let t = Instant::now();
    txn.commit().map_err(Failure::of_commit)?;
    stats.record(t.elapsed());
    Ok(true)
}

fn run_one(stats: &CommitStats, db: &Database, job: &mut dyn WriteJob) -> Result<(), StoreError> {
    let failed = |f: Failure| StoreError::WriteFailed { message: f.message, disk_full: f.disk_full };
    let txn = db.begin_write().map_err(|e| failed(Failure::of_begin(e)))?;
    if job.apply(&txn) {
        let t = Instant::now();
        txn.commit().map_err(|e| failed(Failure::of_commit(e)))?;
        stats.record(t.elapsed());
        Ok(())
    } else {
        let _ = txn.abort();
        // The job's own error is what the caller sees.
        Err(StoreError::Db(String::new()))
    }
}

/// While writes fail: reopen if needed and try a small write; success ends the failure.
fn probe(shared: &Shared) {
    let Some(f) = shared.failure() else { return };
    if f.disk_full && disk_space(&shared.path).is_some_and(|(free, _)| free < RETRY_FREE_BYTES) {
        return;
    }
    if shared.current().is_err() && shared.reopen().is_err() {
        return;
    }
    let Ok(db) = shared.current() else { return };
    let r = db.begin_write().map_err(Failure::of_begin).and_then(|txn| {
        {
            let mut meta = txn.open_table(META).map_err(|e| Failure { message: e.to_string(), disk_full: false })?;
            meta.insert("write_probe", now_ms().to_string().as_bytes()).map_err(|e| Failure::of_storage(&e))?;
        }
        txn.commit().map_err(Failure::of_commit)
    });
    drop(db);
    match r {
        Ok(()) => shared.set_failure(None),
        Err(e) => {
            shared.set_failure(Some(WriteFailure { since: now_ms(), message: e.message, disk_full: e.disk_full }));
            let _ = shared.reopen();
        }
    }
}

fn compact(shared: &Shared) -> Result<bool, StoreError> {
    shared.exclusive(|db| match db {
        None => (None, Err(StoreError::Unavailable("the database is not open".into()))),
        Some(mut db) => {
            let r = db.compact().map_err(|e| StoreError::Db(format!("compaction failed: {e}")));
            (Some(db), r)
        }
    })?
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
    // Version 1 is the first layout: creating the tables is its whole migration. 1 → 2
    // indexed rooms by visibility; 2 → 3 added tables and room fields with serde defaults;
    // 3 → 4 changed records from JSON to a binary layout and keyed history by room number.
    // All of it is done here on the JSON records, in this one transaction.
    if let Some(from @ 1..=3) = found {
        let t = Instant::now();
        let records = ops::records_from_json(&txn)?;
        let rows = ops::history_from_json(&txn)?;
        if from == 1 {
            let r = ops::rooms_reindex(&txn)?;
            tracing::info!(rooms = r, "store migrated from schema 1 to 2: rooms indexed by visibility");
        }
        txn.delete_table(HISTORY_V3)?;
        txn.delete_table(HISTORY_BY_ROOM_V2)?;
        tracing::info!(records, history_rows = rows, ms = t.elapsed().as_millis() as u64,
            "store migrated from schema {from} to {SCHEMA_VERSION}: records in a binary layout, history by room");
    }
    txn.open_table(USERS)?;
    txn.open_table(USERNAMES)?;
    txn.open_table(SESSIONS)?;
    txn.open_table(ROOMS)?;
    txn.open_multimap_table(MODERATORS)?;
    txn.open_table(LIVE)?;
    txn.open_table(HISTORY)?;
    txn.open_table(HISTORY_ROOMS)?;
    txn.open_table(ROOMS_PUBLIC)?;
    txn.open_table(ROOMS_BY_MEMBER)?;
    txn.open_table(LK_ROOMS)?;
    txn.open_table(EVENTS)?;
    txn.open_table(EGRESS)?;
    txn.open_table(TOMBSTONES)?;
    crate::recording::record::create_tables(&txn)?;
    txn.open_table(OIDC_SUBJECTS)?;
    txn.open_table(EMAILS)?;
    txn.open_table(PASSKEYS)?;
    txn.open_table(MAIL_TOKENS)?;
    txn.open_table(INVITES)?;
    txn.open_table(INVITE_TOKENS)?;
    txn.open_table(ATTENDEES)?;
    txn.open_table(BANS)?;
    if found != Some(SCHEMA_VERSION) {
        let mut meta = txn.open_table(META)?;
        meta.insert("schema_version", SCHEMA_VERSION.to_string().as_bytes())?;
    }
    txn.commit()?;
    Ok(())
}

/// Decodes a record stored in a table.
pub(crate) fn decode<T: codec::Record>(bytes: &[u8]) -> Result<T, StoreError> {
    codec::from_bytes(bytes)
}

pub(crate) fn encode<T: codec::Record>(v: &T) -> Vec<u8> {
    codec::to_bytes(v)
}

/// Decodes a record stored as JSON by schema 2 and older (for the migration).
pub(crate) fn decode_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, StoreError> {
    Ok(serde_json::from_slice(bytes)?)
}

/// Reads and decodes one record by `&str` key.
pub(crate) fn get_rec<T: codec::Record>(
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
    use redb::TableHandle;

    #[test]
    fn visible_rooms_come_from_the_indexes_in_name_order() {
        let d = tempfile::tempdir().unwrap();
        let s = Store::open(&d.path().join("v.redb")).unwrap();
        let room = |name: &str, owner: &str, public: bool| Room::new(name, owner, 0, RoomSettings { public, ..Default::default() });
        let rooms = vec![
            room("a-public", "u1", true),
            room("b-mine", "me", false),
            room("c-other", "u1", false),
            room("d-moderated", "u2", false),
            room("e-public-mine", "me", true),
            room("f-other", "u2", false),
            room("g-public", "u2", true),
        ];
        s.write_blocking(move |t| {
            for r in &rooms {
                room_insert(t, r)?;
            }
            moderator_add(t, "d-moderated", "me")?;
            moderator_add(t, "f-other", "someone-else")?;
            Ok(())
        })
        .unwrap();
        let names = |after: Option<&'static str>, limit: usize| -> Vec<String> {
            s.read_blocking(|t| rooms_visible(t, "me", after, limit)).unwrap().into_iter().map(|r| r.name).collect()
        };
        assert_eq!(names(None, 100), ["a-public", "b-mine", "d-moderated", "e-public-mine", "g-public"]);
        assert_eq!(names(None, 2), ["a-public", "b-mine"]);
        assert_eq!(names(Some("b-mine"), 2), ["d-moderated", "e-public-mine"]);
        assert_eq!(names(Some("e-public-mine"), 10), ["g-public"]);
        // Changes keep the indexes right: unmoderate, make private, delete.
        s.write_blocking(|t| {
            moderator_remove(t, "d-moderated", "me")?;
            let mut r = room_get_w(t, "g-public")?.unwrap();
            r.settings.public = false;
            room_put(t, &r)?;
            room_delete(t, "b-mine")
        })
        .unwrap();
        assert_eq!(names(None, 100), ["a-public", "e-public-mine"]);
        // Rebuilding the indexes from the tables gives the same answer.
        s.write_blocking(|t| {
            t.delete_table(ROOMS_PUBLIC)?;
            t.delete_table(ROOMS_BY_MEMBER)?;
            rooms_reindex(t).map(|_| ())
        })
        .unwrap();
        assert_eq!(names(None, 100), ["a-public", "e-public-mine"]);
    }

    #[test]
    fn history_is_indexed_by_room_pruned_by_age_and_the_file_compacts() {
        let d = tempfile::tempdir().unwrap();
        let s = Store::open(&d.path().join("h.redb")).unwrap();
        // 3 rooms x 2,000 closed presences, joined at t = 1..6000; one still present.
        s.write_blocking(|txn| {
            for i in 0..6000u64 {
                let room = format!("room-{}", i % 3);
                let ident = format!("user-{i}");
                participant_join(txn, &room, &ident, &format!("PA_{i}"), "x", i + 1, i + 1)?;
                participant_leave(txn, &room, &ident, i + 2, "left")?;
            }
            participant_join(txn, "room-0", "stays", "PA_stay", "x", 10, 10)?;
            Ok(())
        })
        .unwrap();
        let h = s.read_blocking(|t| history_for_room(t, "room-1", 5)).unwrap();
        assert_eq!(h.len(), 5);
        assert!(h.iter().all(|e| e.room == "room-1"));
        assert!(h.windows(2).all(|w| w[0].id > w[1].id), "newest first");
        // Everything that ended before t = 3000 goes, in bounded steps; the open row stays.
        let mut removed = 0;
        loop {
            let keys = s.read_blocking(|t| history_expired(t, 3000, 500)).unwrap();
            let n = s.write_blocking(move |t| history_remove(t, &keys)).unwrap();
            removed += n;
            if n < 500 {
                break;
            }
        }
        assert_eq!(removed, 2998);
        let (left, oldest) = s
            .read_blocking(|t| Ok((count_history(t)?, history_for_room(t, "room-0", 10_000)?)))
            .unwrap();
        assert_eq!(left, 6001 - 2998);
        assert!(oldest.iter().any(|e| e.identity == "stays"));
        assert!(oldest.iter().all(|e| e.identity == "stays" || e.left_at.unwrap() >= 3000));
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        assert!(rt.block_on(s.compact()).is_ok());
        assert_eq!(s.read_blocking(|t| count_history(t)).unwrap(), left);
        // A backup is a complete, separate store.
        let copy = d.path().join("copy.redb");
        let info = s.backup_to(&copy).unwrap();
        assert_eq!(info.schema_version, SCHEMA_VERSION);
        assert!(s.backup_to(&copy).is_err(), "an existing file is never overwritten");
        drop(s);
        let c = Store::open(&copy).unwrap();
        assert_eq!(c.read_blocking(|t| count_history(t)).unwrap(), left);
        assert_eq!(c.read_blocking(|t| history_for_room(t, "room-2", 3)).unwrap().len(), 3);
    }

    /// Sign-in records travel with a backup: an OpenID identity, a verified address, a
    /// passkey row and a mailed link are all in the copy, and the copy finds them by key.
    #[test]
    fn backup_keeps_sign_in_records() {
        let d = tempfile::tempdir().unwrap();
        let s = Store::open(&d.path().join("s.redb")).unwrap();
        let mut user = User::new("ines", String::new(), Role::User);
        let id = user.id.clone();
        s.write_blocking(move |t| {
            oidc_link(t, &mut user, Identity { provider: "corp".into(), issuer: "https://id.example.org".into(), subject: "sub-1".into() })?;
            set_email(t, &mut user, Some("ines@example.org"), true)?;
            put_user(t, &user)?;
            // The passkey's value is opaque to the backup: any bytes under its key.
            t.open_table(PASSKEYS)?.insert((user.id.as_str(), "cred-1"), b"{}".as_slice())?;
            let token = MailToken { purpose: MailPurpose::Reset, user_id: user.id.clone(), email: "ines@example.org".into(), epoch: 0, expires_at: u64::MAX };
            mail_token_put(t, "link-key", &token)
        })
        .unwrap();
        let copy = d.path().join("copy.redb");
        s.backup_to(&copy).unwrap();
        drop(s);
        let c = Store::open(&copy).unwrap();
        let want = id.clone();
        c.read_blocking(move |t| {
            assert_eq!(email_owner(t, "ines@example.org")?.as_deref(), Some(want.as_str()));
            assert_eq!(t.open_table(OIDC_SUBJECTS)?.get(("https://id.example.org", "sub-1"))?.map(|v| v.value().to_string()), Some(want.clone()));
            assert!(t.open_table(PASSKEYS)?.get((want.as_str(), "cred-1"))?.is_some());
            Ok(())
        })
        .unwrap();
        let taken = c.write_blocking(|t| mail_token_take(t, "link-key")).unwrap();
        assert_eq!(taken.map(|t| t.user_id), Some(id));
    }

    #[test]
    fn a_schema_2_store_is_migrated_to_the_binary_layout() {
        // tests/data/store-v2.redb: written by examples/seed_store.rs of schema 2 (20 users,
        // 10 rooms, 60 closed history rows, all JSON).
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("v2.redb");
        std::fs::copy(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/store-v2.redb"), &p).unwrap();
        let (users, rooms, history) = {
            let db = Database::open(&p).unwrap();
            let t = db.begin_read().unwrap();
            let all = |def: TableDefinition<&str, &[u8]>| -> Vec<serde_json::Value> {
                let tab = t.open_table(def).unwrap();
                tab.iter().unwrap().map(|r| serde_json::from_slice(r.unwrap().1.value()).unwrap()).collect()
            };
            let hist = t.open_table(HISTORY_V3).unwrap();
            let history: Vec<HistoryEntry> =
                hist.iter().unwrap().map(|r| serde_json::from_slice(r.unwrap().1.value()).unwrap()).collect();
            (all(USERS), all(ROOMS), history)
        };
        assert_eq!((users.len(), rooms.len(), history.len()), (20, 10, 60));
        let s = Store::open(&p).unwrap();
        let (version, tables) = s
            .read_blocking(|t| Ok((meta_get(t, "schema_version")?, t.list_tables()?.map(|h| h.name().to_string()).collect::<Vec<_>>())))
            .unwrap();
        assert_eq!(version, Some(SCHEMA_VERSION.to_string()));
        assert!(!tables.iter().any(|t| t == HISTORY_BY_ROOM_V2.name()), "{tables:?}");
        // Every record reads back as the JSON said.
        for u in &users {
            // Compared as today's type reads the JSON (fields added since take their defaults).
            let got = s.read_blocking(|t| user_by_id(t, u["id"].as_str().unwrap())).unwrap().unwrap();
            let want: User = serde_json::from_value(u.clone()).unwrap();
            assert_eq!(serde_json::to_value(&got).unwrap(), serde_json::to_value(&want).unwrap());
        }
        for r in &rooms {
            let got = s.read_blocking(|t| room_get(t, r["name"].as_str().unwrap())).unwrap().unwrap();
            let want: Room = serde_json::from_value(r.clone()).unwrap();
            assert_eq!(serde_json::to_value(&got).unwrap(), serde_json::to_value(&want).unwrap());
        }
        let mut by_room: std::collections::BTreeMap<String, Vec<HistoryEntry>> = Default::default();
        for e in &history {
            by_room.entry(e.room.clone()).or_default().push(e.clone());
        }
        assert_eq!(by_room.len(), 10);
        for (room, mut want) in by_room {
            want.reverse();
            let room2 = room.clone();
            assert_eq!(s.read_blocking(move |t| history_for_room(t, &room2, 1000)).unwrap(), want, "{room}");
        }
        // New rows go on after the migrated ones, in the same rooms' numbering.
        let last = history.iter().map(|e| e.id).max().unwrap();
        let room = history[0].room.clone();
        let r2 = room.clone();
        s.write_blocking(move |t| {
            participant_join(t, &r2, "new-one", "PA_new", "New One", 5, 5)?;
            participant_leave(t, &r2, "new-one", 6, "aborted").map(|_| ())
        })
        .unwrap();
        let newest = s.read_blocking(move |t| history_for_room(t, &room, 1)).unwrap();
        assert_eq!(newest[0].id, last + 1);
        assert_eq!((newest[0].name.as_str(), newest[0].left_at, newest[0].leave_reason.as_deref()), ("New One", Some(6), Some("aborted")));
        // Opening again migrates nothing more; a backup of the migrated store copies every table.
        drop(s);
        let s = Store::open(&p).unwrap();
        assert_eq!(s.read_blocking(|t| count_history(t)).unwrap(), 61);
        let info = s.backup_to(&d.path().join("b.redb")).unwrap();
        assert_eq!(info.schema_version, SCHEMA_VERSION);
    }

    /// tests/data/store-v3.redb: written by examples/store_fixture.rs of schema 3 (records as
    /// JSON, with the meeting and sign-in tables). Every kind of record comes back after the
    /// migration to the binary layout, and the indexes still find them.
    #[test]
    fn a_schema_3_store_is_migrated_with_every_record() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("v3.redb");
        std::fs::copy(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/store-v3.redb"), &p).unwrap();
        assert_eq!(schema_of(&p).unwrap(), 3);
        let s = Store::open(&p).unwrap();
        assert_eq!(s.read_blocking(|t| meta_get(t, "schema_version")).unwrap(), Some(SCHEMA_VERSION.to_string()));
        s.read_blocking(|t| {
            let alice = user_by_name(t, "alice")?.expect("alice");
            assert_eq!((alice.email.as_deref(), alice.email_verified, alice.sso_admin), (Some("alice@example.org"), true, false));
            assert_eq!(alice.identities, [Identity { provider: "Corp".into(), issuer: "https://id.example.org".into(), subject: "alice-sub-1".into() }]);
            assert_eq!(email_owner(t, "alice@example.org")?.as_deref(), Some(alice.id.as_str()));
            let bob = user_by_name(t, "bob")?.expect("bob");
            assert_eq!((bob.email.as_deref(), bob.email_verified, bob.session_epoch), (Some("bob@example.org"), false, 3));
            assert!(user_by_name(t, "admin")?.expect("admin").is_admin());
            let keys = passkeys_of(t, &alice.id)?;
            assert_eq!(keys.len(), 1);
            assert_eq!((keys[0].name.as_str(), keys[0].last_used_at), ("Laptop", Some(1_764_000_000_020)));
            assert_eq!(serde_json::to_value(keys[0].passkey.cred_id()).unwrap().as_array().map(Vec::len), Some(64));
            let room = room_get(t, "weekly-sync")?.expect("weekly-sync");
            assert_eq!(
                (room.settings.public, room.settings.max_participants, room.settings.allow_screen_share, room.settings.lobby, room.settings.stage),
                (true, 8, false, true, true)
            );
            assert_eq!((room.locked, room.spotlight.as_deref(), room.owner_id.as_str()), (true, Some("alice"), alice.id.as_str()));
            let board = room_get(t, "board-room")?.expect("board-room");
            assert_eq!((board.locked, board.spotlight, board.settings), (false, None, RoomSettings::default()));
            assert_eq!(moderators(t, "weekly-sync")?, [bob.id.clone()]);
            let invites = invites_of_room(t, "weekly-sync")?;
            assert_eq!(invites.iter().map(|i| i.id.as_str()).collect::<Vec<_>>(), ["inv-banned", "inv-mod", "inv-open"]);
            let now = 1_764_000_001_000;
            assert_eq!(invites.iter().map(|i| i.status(now)).collect::<Vec<_>>(), [InviteStatus::Banned, InviteStatus::Revoked, InviteStatus::Active]);
            assert_eq!((invites[2].max_uses, invites[2].uses, invites[1].role), (Some(10), 2, InviteRole::Moderator));
            let by_token = invite_by_token(t, "2222222222222222222222222222222222222222222222222222222222222222")?.expect("by token");
            assert_eq!(by_token.id, "inv-mod");
            let waiting = lobby_waiting(t, "weekly-sync")?;
            assert_eq!(waiting.iter().map(|a| (a.identity.as_str(), a.guest, a.knocked_at)).collect::<Vec<_>>(), [("guest-waiting", true, 1_764_000_000_070)]);
            let gm = attendee_get(t, "weekly-sync", "guest-mod")?.expect("guest-mod");
            assert_eq!((gm.moderator, gm.speaker, gm.lobby, gm.invite.as_deref()), (true, true, Some(LobbyStatus::Admitted), Some("inv-mod")));
            assert_eq!(attendees_of_room(t, "weekly-sync")?.len(), 3);
            let bans = bans_of_room(t, "weekly-sync")?;
            assert_eq!(bans.iter().map(|b| (b.identity.as_str(), b.name.as_str(), b.by.as_str(), b.invite.as_deref())).collect::<Vec<_>>(),
                [("guest-banned", "Banned Guest", "alice", Some("inv-banned"))]);
            let recs = crate::recording::record::of_room(t, "weekly-sync")?;
            assert_eq!(
                recs.iter().map(|r| (r.id.as_str(), r.status, r.audio_only, r.size, r.error.as_deref())).collect::<Vec<_>>(),
                [
                    ("rec_fixture2", crate::recording::record::Status::Failed, true, None, Some("the recording worker stopped")),
                    ("rec_fixture1", crate::recording::record::Status::Complete, false, Some(1_234_567), None),
                ]
            );
            assert_eq!((recs[1].started_by.as_str(), recs[1].egress_id.as_deref()), (alice.id.as_str(), Some("EG_fixture1")));
            assert!(crate::recording::record::unfinished(t)?.is_empty());
            let live = live_in_room(t, "weekly-sync")?;
            assert_eq!(live.len(), 1);
            assert_eq!((live[0].identity.as_str(), live[0].tracks.len(), live[0].tracks[0].muted), ("guest-mod", 1, true));
            let hist = history_for_room(t, "weekly-sync", 10)?;
            assert_eq!(hist.iter().map(|h| (h.identity.as_str(), h.left_at.is_some(), h.leave_reason.as_deref())).collect::<Vec<_>>(),
                [("guest-mod", false, None), ("alice", true, Some("left"))]);
            let hist = history_for_room(t, "board-room", 10)?;
            assert_eq!(hist.iter().map(|h| (h.name.as_str(), h.left_at, h.leave_reason.as_deref())).collect::<Vec<_>>(),
                [("bob", Some(1_764_000_000_210), Some("aborted"))]);
            assert_eq!(room_sessions(t, "board-room")?[0].finished_at, Some(1_764_000_000_250));
            assert!(event_seen(t, "EV_fixture1")?);
            assert!(egress_get(t, "EG_fixture1")?.is_some());
            assert!(session_get(t, "5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8")?.is_some());
            Ok(())
        })
        .unwrap();
        let token = s.write_blocking(|t| mail_token_take(t, "d2a84f4b8b650937ec8f73cd8be2c74add5a911ba64df27458ed8229da804a26")).unwrap().expect("mail token");
        assert_eq!((token.purpose, token.email.as_str(), token.epoch), (MailPurpose::Verify, "bob@example.org", 3));
        // A backup copies every table of the migrated store.
        let info = s.backup_to(&d.path().join("b.redb")).unwrap();
        assert_eq!(info.schema_version, SCHEMA_VERSION);
    }

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
