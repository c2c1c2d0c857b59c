//! `POST /api/livekit/webhook`: verified, parsed, applied durably, then answered. LiveKit
//! retries on 5xx, so a failure to store answers 503 and a replay is harmless.

use std::sync::atomic::Ordering;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::SharedState;
use crate::error::{ApiError, ErrorBody};
use crate::livekit::webhook::{self, Applied};
use crate::store::{self, now_ms};

pub fn routes() -> OpenApiRouter<SharedState> {
    OpenApiRouter::new().routes(routes!(receive))
}

#[derive(Serialize, ToSchema)]
pub(super) struct WebhookAnswer {
    ok: bool,
    /// The event was applied before (LiveKit retries).
    duplicate: bool,
}

/// LiveKit's webhook: events signed with the API key (`Authorization` is a JWT over the body's
/// SHA-256). Point LiveKit's `webhook.urls` here; `bedrud livekit webhook-config` prints it.
#[utoipa::path(post, path = "/api/livekit/webhook", tag = "livekit", security(()),
    request_body(content = String, content_type = "application/webhook+json", description = "A LiveKit WebhookEvent"),
    responses(
        (status = 200, description = "Applied (or a replay)", body = WebhookAnswer),
        (status = 400, description = "`invalid_event`", body = ErrorBody),
        (status = 401, description = "`missing_authorization`, `unknown_api_key`, `invalid_signature`, `token_expired`, `token_not_yet_valid`, `invalid_token`, `body_hash_mismatch`", body = ErrorBody),
        (status = 413, description = "`payload_too_large`", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`", body = ErrorBody),
    ))]
async fn receive(State(st): State<SharedState>, headers: HeaderMap, body: Bytes) -> Result<axum::Json<WebhookAnswer>, ApiError> {
    let ctype = headers.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("");
    let mime = ctype.split(';').next().unwrap_or("").trim();
    if mime != "application/webhook+json" && mime != "application/json" {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "webhooks are application/webhook+json",
        ));
    }
    let auth = headers.get("authorization").and_then(|v| v.to_str().ok());
    if let Err(r) = webhook::verify(&st.keys, auth, &body) {
        tracing::warn!(reason = %r, code = r.code(), "rejected LiveKit webhook");
        st.metrics.webhooks_rejected.fetch_add(1, Ordering::Relaxed);
        return Err(ApiError::unauthorized(format!("webhook rejected: {r}")).with_code(r.code()));
    }
    let event = webhook::parse(&body).map_err(|m| {
        tracing::warn!(error = %m, "signed LiveKit webhook with a malformed body");
        st.metrics.webhooks_rejected.fetch_add(1, Ordering::Relaxed);
        ApiError::bad_request("invalid_event", m)
    })?;
    st.webhook_last_seen.store(now_ms(), Ordering::Relaxed);
    let (id, kind) = (event.id.clone(), event.event.clone());
    let room = event.room.as_ref().map(|r| r.name.clone()).unwrap_or_default();
    let outcome = st.store.write(move |txn| webhook::apply(txn, &event)).await?;
    if outcome == Applied::Applied {
        st.webhooks_applied.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(event = %kind, id = %id, room = %room, "webhook applied");
        match kind.as_str() {
            "room_started" => room_started(&st, room.clone()),
            "room_finished" => st.lobbies.notify(&room),
            _ => {}
        }
        let _ = st.webhook_events.send((kind, room));
    } else {
        st.metrics.webhooks_duplicate.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(event = %kind, id = %id, "webhook replay ignored");
    }
    Ok(axum::Json(WebhookAnswer { ok: true, duplicate: outcome == Applied::Duplicate }))
}

/// A room LiveKit has just created gets bedrud's metadata for it (lock, spotlight, lobby,
/// stage), without holding up the webhook's answer.
fn room_started(st: &SharedState, name: String) {
    let st = st.clone();
    tokio::spawn(async move {
        let n = name.clone();
        let room = match st.store.read(move |txn| store::room_get(txn, &n)).await {
            Ok(Some(r)) => r,
            Ok(None) => return,
            Err(e) => return tracing::warn!(room = %name, error = %e, "cannot read the room to send its metadata to LiveKit"),
        };
        if let Err(e) = super::meeting::sync_metadata(&st, &room).await {
            tracing::warn!(room = %name, error = %e, "cannot send the room's metadata to LiveKit");
        }
    });
}
