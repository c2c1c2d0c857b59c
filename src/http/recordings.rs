//! Recording: start and stop a room's recording, list a room's recordings, read one, download
//! its file (with range requests), delete it. All for the room's managers (owner, moderators)
//! and admins.

use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::AuthUser;
use super::SharedState;
use crate::error::{ApiError, ErrorBody};
use crate::recording::record::{Recording, Status};
use crate::rooms;
use crate::store::{self, User};

pub fn routes() -> OpenApiRouter<SharedState> {
    OpenApiRouter::new()
        .routes(routes!(start))
        .routes(routes!(stop))
        .routes(routes!(list))
        .routes(routes!(show, remove))
        .routes(routes!(file))
}

/// How to record; every field may be left out (and the whole body too).
#[derive(Deserialize, Default, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct StartRequest {
    /// LiveKit's composite layout: `grid`, `speaker` or `single-speaker` (default
    /// `recording.layout`).
    layout: Option<String>,
    /// Record sound only, into an OGG file (default false: an MP4 video).
    #[serde(default)]
    audio_only: bool,
}

/// One recording.
#[derive(Serialize, ToSchema)]
pub(super) struct RecordingAnswer {
    recording: Recording,
}

/// A room's recordings, newest first.
#[derive(Serialize, ToSchema)]
pub(super) struct RecordingList {
    recordings: Vec<Recording>,
}

/// Starts recording the room (its owner, moderators or an administrator). The body is optional:
/// an empty one records with the defaults.
#[utoipa::path(post, path = "/api/room/{name}/recording/start", operation_id = "start_recording", tag = "recording", security(("bearer" = []), ("cookie" = [])),
    params(("name" = String, Path, description = "Room name")),
    request_body = Option<StartRequest>,
    responses(
        (status = 201, description = "Started (status `starting` or `active`)", body = RecordingAnswer),
        (status = 400, description = "`invalid_layout`, `invalid_json`, `invalid_request`, `livekit_invalid_argument`", body = ErrorBody),
        (status = 401, description = "`unauthorized`, `invalid_session`", body = ErrorBody),
        (status = 403, description = "`forbidden`: not a manager of the room", body = ErrorBody),
        (status = 404, description = "`room_not_found`", body = ErrorBody),
        (status = 409, description = "`recording_active`: the room is being recorded already; `room_not_live`: nobody has joined yet", body = ErrorBody),
        (status = 413, description = "`payload_too_large`", body = ErrorBody),
        (status = 502, description = "`livekit_unavailable`, `livekit_auth_failed`, `livekit_error`", body = ErrorBody),
        (status = 503, description = "`recording_unavailable`: recording is off, or its helpers or an egress worker are missing", body = ErrorBody),
    ))]
async fn start(State(st): State<SharedState>, auth: AuthUser, Path(name): Path<String>, body: Bytes) -> Result<(StatusCode, axum::Json<RecordingAnswer>), ApiError> {
    rooms::managed(&st.store, &auth.user, &name).await?;
    let req: StartRequest = if body.iter().all(u8::is_ascii_whitespace) {
        StartRequest::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| match e.classify() {
            serde_json::error::Category::Data => ApiError::bad_request("invalid_request", e.to_string()),
            _ => ApiError::bad_request("invalid_json", format!("malformed JSON: {e}")),
        })?
    };
    let lk = st.livekit.borrow().clone();
    let recording = st.recorder.start(&st.config(), &lk, &auth.user, &name, req.layout, req.audio_only).await?;
    Ok((StatusCode::CREATED, axum::Json(RecordingAnswer { recording })))
}

/// Stops the room's recording; its file is finished shortly after (status `ending`, then
/// `complete`).
#[utoipa::path(post, path = "/api/room/{name}/recording/stop", operation_id = "stop_recording", tag = "recording", security(("bearer" = []), ("cookie" = [])),
    params(("name" = String, Path, description = "Room name")),
    responses(
        (status = 200, description = "Stop asked", body = RecordingAnswer),
        (status = 401, description = "`unauthorized`, `invalid_session`", body = ErrorBody),
        (status = 403, description = "`forbidden`: not a manager of the room", body = ErrorBody),
        (status = 404, description = "`room_not_found`, `recording_not_found`", body = ErrorBody),
        (status = 409, description = "`not_recording`: the room is not being recorded; `recording_starting`: try again in a moment", body = ErrorBody),
        (status = 502, description = "`livekit_unavailable`, `livekit_auth_failed`, `livekit_error`", body = ErrorBody),
    ))]
async fn stop(State(st): State<SharedState>, auth: AuthUser, Path(name): Path<String>) -> Result<axum::Json<RecordingAnswer>, ApiError> {
    rooms::managed(&st.store, &auth.user, &name).await?;
    Ok(axum::Json(RecordingAnswer { recording: st.recorder.stop(&name).await? }))
}

/// The room's recordings, newest first.
#[utoipa::path(get, path = "/api/room/{name}/recordings", operation_id = "list_recordings", tag = "recording", security(("bearer" = []), ("cookie" = [])),
    params(("name" = String, Path, description = "Room name")),
    responses(
        (status = 200, description = "The room's recordings", body = RecordingList),
        (status = 401, description = "`unauthorized`, `invalid_session`", body = ErrorBody),
        (status = 403, description = "`forbidden`: not a manager of the room", body = ErrorBody),
        (status = 404, description = "`room_not_found`", body = ErrorBody),
    ))]
async fn list(State(st): State<SharedState>, auth: AuthUser, Path(name): Path<String>) -> Result<axum::Json<RecordingList>, ApiError> {
    rooms::managed(&st.store, &auth.user, &name).await?;
    Ok(axum::Json(RecordingList { recordings: st.recorder.list(&name).await? }))
}

/// The recording, if `user` may see it: a manager of its room, or an admin (also once the room
/// is gone). Others get 404, as if it did not exist.
async fn visible(st: &SharedState, user: &User, id: &str) -> Result<Recording, ApiError> {
    let r = st.recorder.get(id).await?;
    let (room, u) = (r.room.clone(), user.clone());
    let allowed = st
        .store
        .read(move |txn| match store::room_get(txn, &room)? {
            Some(room) => rooms::can_manage(txn, &u, &room),
            None => Ok(u.is_admin()),
        })
        .await?;
    if !allowed {
        return Err(ApiError::not_found("recording_not_found", "no such recording"));
    }
    Ok(r)
}

/// One recording (for its room's managers; administrators also once the room is gone).
#[utoipa::path(get, path = "/api/recordings/{id}", operation_id = "show_recording", tag = "recording", security(("bearer" = []), ("cookie" = [])),
    params(("id" = String, Path, description = "Recording id")),
    responses(
        (status = 200, description = "The recording", body = RecordingAnswer),
        (status = 401, description = "`unauthorized`, `invalid_session`", body = ErrorBody),
        (status = 403, description = "`forbidden`: guests", body = ErrorBody),
        (status = 404, description = "`recording_not_found`: no such recording, or not the caller's to see", body = ErrorBody),
    ))]
async fn show(State(st): State<SharedState>, auth: AuthUser, Path(id): Path<String>) -> Result<axum::Json<RecordingAnswer>, ApiError> {
    Ok(axum::Json(RecordingAnswer { recording: visible(&st, &auth.user, &id).await? }))
}

/// Deletes an ended recording and its file (local or in the storage bucket).
#[utoipa::path(delete, path = "/api/recordings/{id}", operation_id = "delete_recording", tag = "recording", security(("bearer" = []), ("cookie" = [])),
    params(("id" = String, Path, description = "Recording id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "`unauthorized`, `invalid_session`", body = ErrorBody),
        (status = 403, description = "`forbidden`: guests", body = ErrorBody),
        (status = 404, description = "`recording_not_found`: no such recording, or not the caller's to see", body = ErrorBody),
        (status = 409, description = "`recording_active`: it has not ended; stop it first", body = ErrorBody),
        (status = 502, description = "`storage_error`: the storage bucket refused the deletion", body = ErrorBody),
    ))]
async fn remove(State(st): State<SharedState>, auth: AuthUser, Path(id): Path<String>) -> Result<StatusCode, ApiError> {
    let r = visible(&st, &auth.user, &id).await?;
    st.recorder.delete(&st.config(), &r).await?;
    tracing::info!(recording = %r.id, room = %r.room, by = %auth.user.username, "recording deleted");
    Ok(StatusCode::NO_CONTENT)
}

/// The recording's file: `video/mp4`, or `audio/ogg` for audio-only recordings, as an
/// attachment. One byte range (`Range: bytes=…`) is served; several are answered with the first.
/// Recordings kept in a storage bucket redirect to a presigned URL valid for 15 minutes.
#[utoipa::path(get, path = "/api/recordings/{id}/file", operation_id = "recording_file", tag = "recording", security(("bearer" = []), ("cookie" = [])),
    params(
        ("id" = String, Path, description = "Recording id"),
        ("Range" = Option<String>, Header, description = "One byte range, e.g. `bytes=0-1023`, `bytes=1024-` or `bytes=-500`"),
    ),
    responses(
        (status = 200, description = "The whole file", content(("video/mp4"), ("audio/ogg")),
            headers(("Accept-Ranges" = String, description = "`bytes`"), ("Content-Disposition" = String, description = "`attachment` with the room and file name"))),
        (status = 206, description = "The requested range", content(("video/mp4"), ("audio/ogg")),
            headers(("Content-Range" = String, description = "`bytes START-END/LENGTH`"), ("Accept-Ranges" = String, description = "`bytes`"))),
        (status = 302, description = "The file is in the storage bucket: `Location` is a presigned URL valid for 15 minutes",
            headers(("Location" = String, description = "Presigned download URL"))),
        (status = 401, description = "`unauthorized`, `invalid_session`", body = ErrorBody),
        (status = 403, description = "`forbidden`: guests", body = ErrorBody),
        (status = 404, description = "`recording_not_found`: no such recording, or not the caller's to see; `file_not_found`: its file is gone", body = ErrorBody),
        (status = 409, description = "`recording_not_ready`: it has no finished file (yet)", body = ErrorBody),
        (status = 416, description = "`range_not_satisfiable`: the range lies outside the file; `Content-Range: bytes */LENGTH` gives its size", body = ErrorBody,
            headers(("Content-Range" = String, description = "`bytes */LENGTH`"))),
    ))]
async fn file(State(st): State<SharedState>, auth: AuthUser, Path(id): Path<String>, headers: HeaderMap) -> Result<Response, ApiError> {
    let r = visible(&st, &auth.user, &id).await?;
    if !matches!(r.status, Status::Complete | Status::LimitReached) {
        return Err(ApiError::conflict("recording_not_ready", format!("recording {} is {:?}: there is no finished file", r.id, r.status)));
    }
    if let Some(url) = st.recorder.download_url(&st.config(), &r) {
        let mut resp = StatusCode::FOUND.into_response();
        let loc = HeaderValue::from_str(&url).map_err(|_| ApiError::internal("the storage URL is not a valid header"))?;
        resp.headers_mut().insert(header::LOCATION, loc);
        return Ok(resp);
    }
    let Some(path) = r.file.clone() else {
        return Err(ApiError::not_found("file_not_found", "this recording has no file bedrud can serve"));
    };
    let mut f = match tokio::fs::File::open(&path).await {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(ApiError::not_found("file_not_found", format!("the file of recording {} is gone from {path}", r.id)))
        }
        Err(e) => return Err(ApiError::internal(format!("cannot open {path}: {e}"))),
    };
    let len = f.metadata().await.map_err(|e| ApiError::internal(format!("cannot read {path}: {e}")))?.len();
    let range = headers.get(header::RANGE).and_then(|v| v.to_str().ok());
    let (status, start, end) = match range.map(|r| parse_range(r, len)) {
        None => (StatusCode::OK, 0, len),
        Some(Some((s, e))) => (StatusCode::PARTIAL_CONTENT, s, e),
        Some(None) => {
            let mut resp = ApiError::new(StatusCode::RANGE_NOT_SATISFIABLE, "range_not_satisfiable", format!("the file has {len} bytes")).into_response();
            if let Ok(v) = HeaderValue::from_str(&format!("bytes */{len}")) {
                resp.headers_mut().insert(header::CONTENT_RANGE, v);
            }
            return Ok(resp);
        }
    };
    f.seek(std::io::SeekFrom::Start(start)).await.map_err(|e| ApiError::internal(format!("cannot read {path}: {e}")))?;
    let body = Body::from_stream(tokio_util::io::ReaderStream::new(f.take(end - start)));
    let mime = if r.audio_only { "audio/ogg" } else { "video/mp4" };
    let mut resp = (status, body).into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(mime));
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(end - start));
    if status == StatusCode::PARTIAL_CONTENT {
        if let Ok(v) = HeaderValue::from_str(&format!("bytes {start}-{}/{len}", end - 1)) {
            h.insert(header::CONTENT_RANGE, v);
        }
    }
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{}-{}\"", r.room, r.file_name())) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(resp)
}

/// One `bytes=` range of a `len`-byte file as `[start, end)`; `None` when it cannot be served.
/// Several ranges are answered with the first (a client may always get less than it asked).
fn parse_range(header: &str, len: u64) -> Option<(u64, u64)> {
    let spec = header.trim().strip_prefix("bytes=")?.split(',').next()?.trim();
    let (a, b) = spec.split_once('-')?;
    let (start, end) = match (a.trim(), b.trim()) {
        ("", "") => return None,
        ("", n) => {
            let n: u64 = n.parse().ok()?;
            if n == 0 {
                return None;
            }
            (len.saturating_sub(n), len)
        }
        (s, "") => (s.parse().ok()?, len),
        (s, e) => {
            let (s, e): (u64, u64) = (s.parse().ok()?, e.parse().ok()?);
            if e < s {
                return None;
            }
            (s, e.saturating_add(1).min(len))
        }
    };
    (start < len && start < end).then_some((start, end))
}

#[cfg(test)]
mod tests {
    use super::parse_range;

    #[test]
    fn ranges() {
        assert_eq!(parse_range("bytes=0-99", 1000), Some((0, 100)));
        assert_eq!(parse_range("bytes=900-", 1000), Some((900, 1000)));
        assert_eq!(parse_range("bytes=-100", 1000), Some((900, 1000)));
        assert_eq!(parse_range("bytes=990-2000", 1000), Some((990, 1000)));
        assert_eq!(parse_range("bytes=0-0,5-9", 1000), Some((0, 1)));
        assert_eq!(parse_range("bytes=1000-", 1000), None);
        assert_eq!(parse_range("bytes=5-1", 1000), None);
        assert_eq!(parse_range("bytes=-0", 1000), None);
        assert_eq!(parse_range("items=0-1", 1000), None);
        assert_eq!(parse_range("bytes=x-1", 1000), None);
    }
}
