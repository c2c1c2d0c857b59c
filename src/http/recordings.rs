//! Recording: start and stop a room's recording, list a room's recordings, read one, download
//! its file (with range requests), delete it. All for the room's managers (owner, moderators)
//! and admins.

use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use super::extract::AuthUser;
use super::SharedState;
use crate::error::ApiError;
use crate::recording::record::{Recording, Status};
use crate::rooms;
use crate::store::{self, User};

pub fn routes() -> Router<SharedState> {
    Router::new()
        .route("/api/room/{name}/recording/start", post(start))
        .route("/api/room/{name}/recording/stop", post(stop))
        .route("/api/room/{name}/recordings", get(list))
        .route("/api/recordings/{id}", get(show).delete(remove))
        .route("/api/recordings/{id}/file", get(file))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct StartRequest {
    layout: Option<String>,
    #[serde(default)]
    audio_only: bool,
}

/// The body is optional: an empty one starts a recording with the defaults.
async fn start(State(st): State<SharedState>, auth: AuthUser, Path(name): Path<String>, body: Bytes) -> Result<(StatusCode, axum::Json<Value>), ApiError> {
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
    let r = st.recorder.start(&st.config(), &lk, &auth.user, &name, req.layout, req.audio_only).await?;
    Ok((StatusCode::CREATED, axum::Json(json!({ "recording": r }))))
}

async fn stop(State(st): State<SharedState>, auth: AuthUser, Path(name): Path<String>) -> Result<axum::Json<Value>, ApiError> {
    rooms::managed(&st.store, &auth.user, &name).await?;
    let r = st.recorder.stop(&name).await?;
    Ok(axum::Json(json!({ "recording": r })))
}

async fn list(State(st): State<SharedState>, auth: AuthUser, Path(name): Path<String>) -> Result<axum::Json<Value>, ApiError> {
    rooms::managed(&st.store, &auth.user, &name).await?;
    Ok(axum::Json(json!({ "recordings": st.recorder.list(&name).await? })))
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

async fn show(State(st): State<SharedState>, auth: AuthUser, Path(id): Path<String>) -> Result<axum::Json<Value>, ApiError> {
    Ok(axum::Json(json!({ "recording": visible(&st, &auth.user, &id).await? })))
}

async fn remove(State(st): State<SharedState>, auth: AuthUser, Path(id): Path<String>) -> Result<StatusCode, ApiError> {
    let r = visible(&st, &auth.user, &id).await?;
    st.recorder.delete(&st.config(), &r).await?;
    tracing::info!(recording = %r.id, room = %r.room, by = %auth.user.username, "recording deleted");
    Ok(StatusCode::NO_CONTENT)
}

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
