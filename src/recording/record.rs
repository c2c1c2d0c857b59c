//! The recording record: one per start request, kept in the store and moved forward by
//! LiveKit's `egress_*` webhooks (and the egress reconciler), never backward: a late
//! `egress_updated` cannot reopen an ended recording.

use livekit_protocol as proto;
use redb::{MultimapTableDefinition, ReadTransaction, ReadableMultimapTable, ReadableTable, TableDefinition, WriteTransaction};
use serde::{Deserialize, Serialize};

use crate::store::{decode, encode, get_rec, StoreError};

/// recording id → [`Recording`].
pub(crate) const RECORDINGS: TableDefinition<&str, &[u8]> = TableDefinition::new("recordings");
/// room → recording ids.
pub(crate) const ROOM_RECORDINGS: MultimapTableDefinition<&str, &str> = MultimapTableDefinition::new("room_recordings");
/// egress id → recording id.
pub(crate) const EGRESS_RECORDINGS: TableDefinition<&str, &str> = TableDefinition::new("egress_recordings");

/// Creates the tables (part of the store's migration).
pub fn create_tables(txn: &WriteTransaction) -> Result<(), StoreError> {
    txn.open_table(RECORDINGS)?;
    txn.open_multimap_table(ROOM_RECORDINGS)?;
    txn.open_table(EGRESS_RECORDINGS)?;
    Ok(())
}

/// Where a recording is in its life. The last four are final.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = RecordingStatus)]
pub enum Status {
    /// Asked for; the worker has not started recording yet.
    Starting,
    Active,
    /// Stop asked; the worker is finishing the file.
    Ending,
    Complete,
    Failed,
    Aborted,
    /// Ended by the worker's time limit; the file is complete up to there.
    LimitReached,
}

impl Status {
    pub fn is_final(self) -> bool {
        matches!(self, Self::Complete | Self::Failed | Self::Aborted | Self::LimitReached)
    }

    fn rank(self) -> u8 {
        match self {
            Self::Starting => 0,
            Self::Active => 1,
            Self::Ending => 2,
            _ => 3,
        }
    }

    fn of_egress(status: i32) -> Self {
        match proto::EgressStatus::try_from(status) {
            Ok(proto::EgressStatus::EgressStarting) => Self::Starting,
            Ok(proto::EgressStatus::EgressActive) => Self::Active,
            Ok(proto::EgressStatus::EgressEnding) => Self::Ending,
            Ok(proto::EgressStatus::EgressComplete) => Self::Complete,
            Ok(proto::EgressStatus::EgressAborted) => Self::Aborted,
            Ok(proto::EgressStatus::EgressLimitReached) => Self::LimitReached,
            _ => Self::Failed,
        }
    }
}

/// One recording. Times are Unix milliseconds.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Recording {
    pub id: String,
    pub room: String,
    pub egress_id: Option<String>,
    /// User id and name of who started it.
    pub started_by: String,
    pub started_by_name: String,
    pub layout: String,
    pub audio_only: bool,
    pub status: Status,
    pub error: Option<String>,
    pub requested_at: u64,
    /// When the worker started and ended the recording (its own clock).
    pub started_at: Option<u64>,
    pub ended_at: Option<u64>,
    /// Local file (embedded mode), or the storage URL and object key (S3).
    pub file: Option<String>,
    pub url: Option<String>,
    pub s3_key: Option<String>,
    /// The object's URL as bedrud's storage settings name it (set when the worker uploads):
    /// egress builds its own location text, which is wrong for path-style endpoints.
    #[serde(default)]
    pub upload_url: Option<String>,
    pub size: Option<u64>,
    pub duration_ms: Option<u64>,
    pub updated_at: u64,
}

impl Recording {
    /// A new recording of `room`, asked for by `user` at `now`.
    pub fn new(room: &str, user: &crate::store::User, layout: &str, audio_only: bool, now: u64) -> Self {
        Self {
            id: new_id(),
            room: room.to_string(),
            egress_id: None,
            started_by: user.id.clone(),
            started_by_name: user.username.clone(),
            layout: layout.to_string(),
            audio_only,
            status: Status::Starting,
            error: None,
            requested_at: now,
            started_at: None,
            ended_at: None,
            file: None,
            url: None,
            s3_key: None,
            upload_url: None,
            size: None,
            duration_ms: None,
            updated_at: now,
        }
    }

    /// The id a recording's file name starts with: `<id>.mp4` (or `.ogg`).
    pub fn file_name(&self) -> String {
        format!("{}.{}", self.id, if self.audio_only { "ogg" } else { "mp4" })
    }
}

/// A new recording id.
pub fn new_id() -> String {
    format!("rec_{}", uuid::Uuid::new_v4().simple())
}

pub fn get(txn: &ReadTransaction, id: &str) -> Result<Option<Recording>, StoreError> {
    get_rec(&txn.open_table(RECORDINGS)?, id)
}

fn get_w(txn: &WriteTransaction, id: &str) -> Result<Option<Recording>, StoreError> {
    get_rec(&txn.open_table(RECORDINGS)?, id)
}

pub fn put(txn: &WriteTransaction, r: &Recording) -> Result<(), StoreError> {
    txn.open_table(RECORDINGS)?.insert(r.id.as_str(), encode(r).as_slice())?;
    txn.open_multimap_table(ROOM_RECORDINGS)?.insert(r.room.as_str(), r.id.as_str())?;
    if let Some(e) = &r.egress_id {
        txn.open_table(EGRESS_RECORDINGS)?.insert(e.as_str(), r.id.as_str())?;
    }
    Ok(())
}

pub fn delete(txn: &WriteTransaction, r: &Recording) -> Result<(), StoreError> {
    txn.open_table(RECORDINGS)?.remove(r.id.as_str())?;
    txn.open_multimap_table(ROOM_RECORDINGS)?.remove(r.room.as_str(), r.id.as_str())?;
    if let Some(e) = &r.egress_id {
        txn.open_table(EGRESS_RECORDINGS)?.remove(e.as_str())?;
    }
    Ok(())
}

fn ids_of_room(t: &impl ReadableMultimapTable<&'static str, &'static str>, room: &str) -> Result<Vec<String>, StoreError> {
    let mut ids = Vec::new();
    for v in t.get(room)? {
        ids.push(v?.value().to_string());
    }
    Ok(ids)
}

/// A room's recordings, newest first.
pub fn of_room(txn: &ReadTransaction, room: &str) -> Result<Vec<Recording>, StoreError> {
    let ids = ids_of_room(&txn.open_multimap_table(ROOM_RECORDINGS)?, room)?;
    let table = txn.open_table(RECORDINGS)?;
    let mut out: Vec<Recording> = Vec::new();
    for id in ids {
        if let Some(r) = get_rec(&table, &id)? {
            out.push(r);
        }
    }
    out.sort_by(|a: &Recording, b| b.requested_at.cmp(&a.requested_at).then_with(|| b.id.cmp(&a.id)));
    Ok(out)
}

/// Recordings that have not ended, in any room.
pub fn unfinished(txn: &ReadTransaction) -> Result<Vec<Recording>, StoreError> {
    unfinished_in(&txn.open_table(RECORDINGS)?)
}

fn unfinished_in(t: &impl ReadableTable<&'static str, &'static [u8]>) -> Result<Vec<Recording>, StoreError> {
    let mut out = Vec::new();
    for row in t.iter()? {
        let (_, v) = row?;
        let r: Recording = decode(v.value())?;
        if !r.status.is_final() {
            out.push(r);
        }
    }
    Ok(out)
}

/// Inserts `r` unless the room has a recording that has not ended (then that one's id).
pub fn insert_if_idle(txn: &WriteTransaction, r: &Recording) -> Result<Result<(), String>, StoreError> {
    let ids = ids_of_room(&txn.open_multimap_table(ROOM_RECORDINGS)?, &r.room)?;
    for id in ids {
        if let Some(other) = get_w(txn, &id)? {
            if !other.status.is_final() {
                return Ok(Err(other.id));
            }
        }
    }
    put(txn, r)?;
    Ok(Ok(()))
}

/// Ends `id` as failed with `error`, unless it has ended already. Returns the record.
pub fn fail(txn: &WriteTransaction, id: &str, error: &str, at: u64) -> Result<Option<Recording>, StoreError> {
    let Some(mut r) = get_w(txn, id)? else { return Ok(None) };
    if !r.status.is_final() {
        r.status = Status::Failed;
        r.error = Some(error.to_string());
        r.ended_at.get_or_insert(at);
        r.updated_at = at;
        put(txn, &r)?;
    }
    Ok(Some(r))
}

/// Ends every recording that has not ended as failed with `error` (the worker that made them
/// is gone). Returns their ids.
pub fn fail_unfinished(txn: &WriteTransaction, error: &str, at: u64) -> Result<Vec<String>, StoreError> {
    let open = unfinished_in(&txn.open_table(RECORDINGS)?)?;
    let mut ids = Vec::new();
    for r in open {
        fail(txn, &r.id, error, at)?;
        ids.push(r.id);
    }
    Ok(ids)
}

/// The recording an egress belongs to: by its egress id, else by the file name bedrud gave it
/// (the start answer and the first webhook can cross).
fn owner_of(txn: &WriteTransaction, info: &proto::EgressInfo) -> Result<Option<Recording>, StoreError> {
    let known = txn.open_table(EGRESS_RECORDINGS)?.get(info.egress_id.as_str())?.map(|v| v.value().to_string());
    if let Some(id) = known {
        return get_w(txn, &id);
    }
    let Some(path) = requested_path(info) else { return Ok(None) };
    let name = path.rsplit('/').next().unwrap_or("");
    let id = name.split('.').next().unwrap_or("");
    if !id.starts_with("rec_") {
        return Ok(None);
    }
    Ok(get_w(txn, id)?.filter(|r| r.room == info.room_name))
}

/// The file path bedrud asked for in the egress request.
fn requested_path(info: &proto::EgressInfo) -> Option<String> {
    use proto::egress_info::Request;
    #[allow(deprecated)]
    match info.request.as_ref()? {
        Request::RoomComposite(r) => r.file_outputs.first().map(|f| f.filepath.clone()).or_else(|| match &r.output {
            Some(proto::room_composite_egress_request::Output::File(f)) => Some(f.filepath.clone()),
            _ => None,
        }),
        _ => None,
    }
}

/// Applies an egress info (from a webhook, or LiveKit's listing) to the recording it belongs
/// to. `None`: not a recording bedrud started.
pub fn apply_egress(txn: &WriteTransaction, info: &proto::EgressInfo, at: u64) -> Result<Option<Recording>, StoreError> {
    let Some(mut r) = owner_of(txn, info)? else { return Ok(None) };
    if r.egress_id.is_none() && !info.egress_id.is_empty() {
        r.egress_id = Some(info.egress_id.clone());
    }
    let status = Status::of_egress(info.status);
    if r.status.is_final() || status.rank() < r.status.rank() {
        // Final is final; an older state arriving late changes nothing but the id.
        put(txn, &r)?;
        return Ok(Some(r));
    }
    r.status = status;
    if info.started_at > 0 {
        r.started_at = Some(ns_to_ms(info.started_at));
    }
    if info.ended_at > 0 {
        r.ended_at = Some(ns_to_ms(info.ended_at));
    }
    if !info.error.is_empty() {
        r.error = Some(info.error.clone());
    }
    if let Some(f) = file_result(info) {
        if f.size > 0 {
            r.size = Some(f.size as u64);
        }
        if f.duration > 0 {
            r.duration_ms = Some(ns_to_ms(f.duration));
        }
        if !f.location.is_empty() {
            place_file(&mut r, &f.location);
        }
    }
    r.updated_at = at;
    put(txn, &r)?;
    Ok(Some(r))
}

/// Files are either local to bedrud (no `s3Key`: the embedded worker wrote into bedrud's
/// directory) or uploaded (a URL). A worker that was to upload but reports a local path has
/// left the file where bedrud cannot reach it: that is reported as the recording's error.
fn place_file(r: &mut Recording, location: &str) {
    let is_url = ["http://", "https://", "s3://", "gs://"].iter().any(|p| location.starts_with(p));
    match (&r.s3_key, is_url) {
        (None, false) => r.file = Some(location.to_string()),
        (Some(_), true) => r.url = Some(r.upload_url.clone().unwrap_or_else(|| location.to_string())),
        (Some(_), false) => {
            r.status = Status::Failed;
            r.error = Some(format!(
                "the egress worker reported the file at its local path {location:?} instead of an upload URL: bedrud cannot serve it; \
                 check the worker's storage settings (bedrud asks for recording.s3 with every request)"
            ));
        }
        (None, true) => r.url = Some(location.to_string()),
    }
}

fn file_result(info: &proto::EgressInfo) -> Option<&proto::FileInfo> {
    #[allow(deprecated)]
    info.file_results.first().or(match &info.result {
        Some(proto::egress_info::Result::File(f)) => Some(f),
        _ => None,
    })
}

fn ns_to_ms(ns: i64) -> u64 {
    (ns.max(0) / 1_000_000) as u64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{now_ms, Store};

    fn rec(room: &str) -> Recording {
        let user = crate::store::User::new("ann", String::new(), crate::store::Role::User);
        Recording::new(room, &user, "grid", false, now_ms())
    }

    fn info(r: &Recording, egress: &str, status: proto::EgressStatus) -> proto::EgressInfo {
        proto::EgressInfo {
            egress_id: egress.into(),
            room_name: r.room.clone(),
            status: status as i32,
            request: Some(proto::egress_info::Request::RoomComposite(proto::RoomCompositeEgressRequest {
                room_name: r.room.clone(),
                file_outputs: vec![proto::EncodedFileOutput { filepath: format!("/x/{}/{}", r.room, r.file_name()), ..Default::default() }],
                ..Default::default()
            })),
            ..Default::default()
        }
    }

    #[test]
    fn backups_keep_recordings() {
        let d = tempfile::tempdir().unwrap();
        let s = Store::open(&d.path().join("s.redb")).unwrap();
        let mut r = rec("team");
        r.egress_id = Some("EG_1".into());
        let r2 = r.clone();
        s.write_blocking(move |t| put(t, &r2)).unwrap();
        let copy = d.path().join("copy.redb");
        s.backup_to(&copy).unwrap();
        drop(s);
        let c = Store::open(&copy).unwrap();
        let listed = c.read_blocking(|t| of_room(t, "team")).unwrap();
        assert_eq!(listed.iter().map(|x| x.id.as_str()).collect::<Vec<_>>(), vec![r.id.as_str()]);
        let known = c.read_blocking(|t| Ok(t.open_table(EGRESS_RECORDINGS)?.get("EG_1")?.map(|v| v.value().to_string()))).unwrap();
        assert_eq!(known.as_deref(), Some(r.id.as_str()));
    }

    #[test]
    fn one_unfinished_recording_per_room_and_status_only_moves_forward() {
        let d = tempfile::tempdir().unwrap();
        let s = Store::open(&d.path().join("s.redb")).unwrap();
        let a = rec("team");
        let b = rec("team");
        let (a2, b2) = (a.clone(), b.clone());
        assert_eq!(s.write_blocking(move |t| insert_if_idle(t, &a2)).unwrap(), Ok(()));
        assert_eq!(s.write_blocking(move |t| insert_if_idle(t, &b2)).unwrap(), Err(a.id.clone()));

        // The webhook finds the recording by the file name before the start answer stored the id.
        let mut done = info(&a, "EG_1", proto::EgressStatus::EgressComplete);
        done.file_results = vec![proto::FileInfo { location: "/x/team/f.mp4".into(), size: 1234, duration: 5_500_000_000, ..Default::default() }];
        let active = info(&a, "EG_1", proto::EgressStatus::EgressActive);
        let r = s.write_blocking(move |t| apply_egress(t, &done, 7)).unwrap().unwrap();
        assert_eq!((r.status, r.size, r.duration_ms, r.file.as_deref()), (Status::Complete, Some(1234), Some(5500), Some("/x/team/f.mp4")));
        // A late "active" does not reopen it.
        let r = s.write_blocking(move |t| apply_egress(t, &active, 8)).unwrap().unwrap();
        assert_eq!(r.status, Status::Complete);
        // Now the room is free again.
        let b3 = b.clone();
        assert_eq!(s.write_blocking(move |t| insert_if_idle(t, &b3)).unwrap(), Ok(()));
        let listed = s.read_blocking(|t| of_room(t, "team")).unwrap();
        assert_eq!(listed.len(), 2);
        // An egress bedrud did not start is not taken for one of its recordings.
        let mut stranger = info(&b, "EG_2", proto::EgressStatus::EgressActive);
        stranger.room_name = "other".into();
        assert!(s.write_blocking(move |t| apply_egress(t, &stranger, 9)).unwrap().is_none());
        // A lost worker fails what has not ended.
        let ids = s.write_blocking(|t| fail_unfinished(t, "worker gone", 10)).unwrap();
        assert_eq!(ids, vec![b.id.clone()]);
        let got = s.read_blocking(move |t| get(t, &b.id)).unwrap().unwrap();
        assert_eq!((got.status, got.error.as_deref()), (Status::Failed, Some("worker gone")));
    }

    #[test]
    fn an_upload_reported_as_a_local_path_is_an_error() {
        let mut r = rec("team");
        r.s3_key = Some("recordings/team/x.mp4".into());
        place_file(&mut r, "/home/egress/tmp/x.mp4");
        assert_eq!(r.status, Status::Failed);
        assert!(r.error.as_deref().unwrap().contains("local path"), "{r:?}");
        // The worker's own location text is not trusted for uploads (egress v1.8.6 writes
        // `https://bucket.http://host/key` for a path-style endpoint).
        let mut r = rec("team");
        r.s3_key = Some("k".into());
        r.upload_url = Some("http://127.0.0.1:9000/bucket/k".into());
        place_file(&mut r, "https://bucket.http://127.0.0.1:9000/k");
        assert_eq!((r.status, r.url.as_deref()), (Status::Starting, Some("http://127.0.0.1:9000/bucket/k")));
    }
}
