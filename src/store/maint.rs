//! Keeping the file healthy: consistent backups of a running store, restores, and the facts
//! that decide when to compact.

use std::path::Path;

use redb::{Database, Key, MultimapTableDefinition, MultimapTableHandle, ReadTransaction, ReadableTable, TableDefinition, TableHandle, Value, WriteTransaction};

use super::*;
use crate::recording::record::{EGRESS_RECORDINGS, RECORDINGS, ROOM_RECORDINGS};

/// What a backup holds.
#[derive(Debug, Clone, serde::Serialize)]
pub struct BackupInfo {
    pub rows: u64,
    pub bytes: u64,
    pub schema_version: u64,
}

fn copy_table<K: Key + 'static, V: Value + 'static>(
    src: &ReadTransaction,
    dst: &WriteTransaction,
    def: TableDefinition<K, V>,
) -> Result<u64, StoreError> {
    let from = src.open_table(def)?;
    let mut to = dst.open_table(def)?;
    let mut n = 0;
    for row in from.iter()? {
        let (k, v) = row?;
        to.insert(k.value(), v.value())?;
        n += 1;
    }
    Ok(n)
}

fn copy_multimap<K: Key + 'static, V: Key + 'static>(
    src: &ReadTransaction,
    dst: &WriteTransaction,
    def: MultimapTableDefinition<K, V>,
) -> Result<u64, StoreError> {
    use redb::ReadableMultimapTable;
    let from = src.open_multimap_table(def)?;
    let mut to = dst.open_multimap_table(def)?;
    let mut n = 0;
    for row in from.iter()? {
        let (k, vs) = row?;
        for v in vs {
            to.insert(k.value(), v?.value())?;
            n += 1;
        }
    }
    Ok(n)
}

/// Copies every table of the store; refuses a source holding a table it does not know, so a
/// table added later cannot be left out of backups silently.
fn copy_all(src: &ReadTransaction, dst: &WriteTransaction) -> Result<u64, StoreError> {
    let known = [
        META.name(),
        USERS.name(),
        USERNAMES.name(),
        SESSIONS.name(),
        ROOMS.name(),
        MODERATORS.name(),
        LIVE.name(),
        HISTORY.name(),
        HISTORY_ROOMS.name(),
        ROOMS_PUBLIC.name(),
        ROOMS_BY_MEMBER.name(),
        LK_ROOMS.name(),
        EVENTS.name(),
        TOMBSTONES.name(),
        EGRESS.name(),
        RECORDINGS.name(),
        ROOM_RECORDINGS.name(),
        EGRESS_RECORDINGS.name(),
        OIDC_SUBJECTS.name(),
        EMAILS.name(),
        PASSKEYS.name(),
        MAIL_TOKENS.name(),
        INVITES.name(),
        INVITE_TOKENS.name(),
        ATTENDEES.name(),
        BANS.name(),
    ];
    let present: Vec<String> = src
        .list_tables()?
        .map(|t| t.name().to_string())
        .chain(src.list_multimap_tables()?.map(|t| t.name().to_string()))
        .collect();
    if let Some(unknown) = present.iter().find(|t| !known.contains(&t.as_str())) {
        return Err(StoreError::Db(format!("table {unknown} is not known to the backup; this bedrud cannot copy it")));
    }
    Ok(copy_table(src, dst, META)?
        + copy_table(src, dst, USERS)?
        + copy_table(src, dst, USERNAMES)?
        + copy_table(src, dst, SESSIONS)?
        + copy_table(src, dst, ROOMS)?
        + copy_multimap(src, dst, MODERATORS)?
        + copy_table(src, dst, LIVE)?
        + copy_table(src, dst, HISTORY)?
        + copy_table(src, dst, HISTORY_ROOMS)?
        + copy_table(src, dst, ROOMS_PUBLIC)?
        + copy_table(src, dst, ROOMS_BY_MEMBER)?
        + copy_table(src, dst, LK_ROOMS)?
        + copy_table(src, dst, EVENTS)?
        + copy_table(src, dst, TOMBSTONES)?
        + copy_table(src, dst, EGRESS)?
        + copy_table(src, dst, RECORDINGS)?
        + copy_multimap(src, dst, ROOM_RECORDINGS)?
        + copy_table(src, dst, EGRESS_RECORDINGS)?
        + copy_table(src, dst, OIDC_SUBJECTS)?
        + copy_table(src, dst, EMAILS)?
        + copy_table(src, dst, PASSKEYS)?
        + copy_table(src, dst, MAIL_TOKENS)?
        + copy_table(src, dst, INVITES)?
        + copy_table(src, dst, INVITE_TOKENS)?
        + copy_table(src, dst, ATTENDEES)?
        + copy_table(src, dst, BANS)?)
}

impl Store {
    /// Writes a consistent copy of the store to `dest` (which must not exist) from one read
    /// snapshot, while writes go on; the copy is compacted. Runs on the calling thread.
    pub fn backup_to(&self, dest: &Path) -> Result<BackupInfo, StoreError> {
        if dest.exists() {
            return Err(StoreError::Invalid(format!("{} already exists; choose a new file", dest.display())));
        }
        let db = self.db()?;
        let src = db.begin_read()?;
        let out = Database::builder()
            .set_cache_size(self.shared.opts.cache_size)
            .create(dest)
            .map_err(|e| StoreError::Open { path: dest.to_path_buf(), message: e.to_string() })?;
        let rows = {
            let txn = out.begin_write()?;
            let rows = copy_all(&src, &txn)?;
            txn.commit()?;
            rows
        };
        drop(src);
        drop(db);
        let mut out = out;
        // A fresh file has no garbage; compaction only trims the tail the copy left.
        let _ = out.compact();
        drop(out);
        let schema_version = schema_of(dest)?;
        let bytes = std::fs::metadata(dest).map(|m| m.len()).unwrap_or(0);
        Ok(BackupInfo { rows, bytes, schema_version })
    }
}

/// The schema version recorded in a store file (opened read-only in effect: nothing written).
pub fn schema_of(path: &Path) -> Result<u64, StoreError> {
    let db = Database::open(path).map_err(|e| StoreError::Open { path: path.to_path_buf(), message: e.to_string() })?;
    let txn = db.begin_read()?;
    let t = match txn.open_table(META) {
        Ok(t) => t,
        Err(redb::TableError::TableDoesNotExist(_)) => {
            return Err(StoreError::Invalid(format!("{} is not a bedrud store (no meta table)", path.display())))
        }
        Err(e) => return Err(e.into()),
    };
    let v = t.get("schema_version")?.map(|v| String::from_utf8_lossy(v.value()).into_owned());
    v.and_then(|s| s.parse().ok())
        .ok_or_else(|| StoreError::Invalid(format!("{} is not a bedrud store (no schema version)", path.display())))
}

/// Replaces the store at `db_path` with the backup `src` (the daemon must not be running: the
/// caller holds no handle and the file lock proves nobody else does). The old file is kept as
/// `<db>.before-restore`.
pub fn restore_from(src: &Path, db_path: &Path) -> Result<BackupInfo, StoreError> {
    let version = schema_of(src)?;
    if version > SCHEMA_VERSION {
        return Err(StoreError::SchemaTooNew { path: src.to_path_buf(), found: version, supported: SCHEMA_VERSION });
    }
    // Refuse while anyone holds the store: opening it takes its lock.
    if db_path.exists() {
        let held = open_db(db_path, &StoreOptions::default())?;
        drop(held);
    }
    let dir = db_path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| StoreError::Db(format!("cannot create {}: {e}", dir.display())))?;
    let tmp = dir.join(format!(".{}.restore", db_path.file_name().and_then(|n| n.to_str()).unwrap_or("bedrud.redb")));
    let io = |what: &str, e: std::io::Error| StoreError::Db(format!("{what}: {e}"));
    std::fs::copy(src, &tmp).map_err(|e| io("cannot copy the backup", e))?;
    // The daemon's user must own the restored file as it owned the old one.
    if let Ok(old) = std::fs::metadata(db_path) {
        use std::os::unix::fs::MetadataExt;
        let _ = nix::unistd::chown(&tmp, Some(nix::unistd::Uid::from_raw(old.uid())), Some(nix::unistd::Gid::from_raw(old.gid())));
        let _ = std::fs::set_permissions(&tmp, old.permissions());
    }
    std::fs::File::open(&tmp).and_then(|f| f.sync_all()).map_err(|e| io("cannot sync the copy", e))?;
    // The copy must open (and migrate) before it replaces anything.
    let rows = {
        let s = Store::open(&tmp)?;
        s.read_blocking(|txn| Ok(count_users(txn)? + count_rooms(txn)? + count_history(txn)?))?
    };
    if db_path.exists() {
        let keep = db_path.with_extension("redb.before-restore");
        std::fs::rename(db_path, &keep).map_err(|e| io("cannot set the old store aside", e))?;
    }
    std::fs::rename(&tmp, db_path).map_err(|e| io("cannot put the restored store in place", e))?;
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    let bytes = std::fs::metadata(db_path).map(|m| m.len()).unwrap_or(0);
    Ok(BackupInfo { rows, bytes, schema_version: SCHEMA_VERSION })
}

/// Bytes of the file in use by live data (inside a write job, so it sees the latest commit).
pub fn used_bytes(txn: &WriteTransaction) -> Result<u64, StoreError> {
    let stats = txn.stats()?;
    Ok(stats.allocated_pages() * stats.page_size() as u64)
}

/// One table's share of the file (redb's own accounting).
#[derive(Debug, Clone, serde::Serialize)]
pub struct TableSize {
    pub name: String,
    pub rows: u64,
    pub leaf_pages: u64,
    pub branch_pages: u64,
    /// Key and value bytes stored, and the bytes of page headers and offsets.
    pub stored_bytes: u64,
    pub metadata_bytes: u64,
    /// Unused bytes inside the table's pages.
    pub fragmented_bytes: u64,
}

/// Every table's rows, pages and bytes, largest first: where the file's space goes.
pub fn table_sizes(txn: &ReadTransaction) -> Result<Vec<TableSize>, StoreError> {
    use redb::ReadableTableMetadata;
    let size = |name: String, s: redb::TableStats, rows: u64| TableSize {
        name,
        rows,
        leaf_pages: s.leaf_pages(),
        branch_pages: s.branch_pages(),
        stored_bytes: s.stored_bytes(),
        metadata_bytes: s.metadata_bytes(),
        fragmented_bytes: s.fragmented_bytes(),
    };
    let mut out = Vec::new();
    for h in txn.list_tables()? {
        let name = h.name().to_string();
        let t = txn.open_untyped_table(h)?;
        out.push(size(name, t.stats()?, t.len()?));
    }
    for h in txn.list_multimap_tables()? {
        let name = h.name().to_string();
        let t = txn.open_untyped_multimap_table(h)?;
        out.push(size(name, t.stats()?, t.len()?));
    }
    out.sort_by(|a, b| (b.leaf_pages + b.branch_pages).cmp(&(a.leaf_pages + a.branch_pages)));
    Ok(out)
}
