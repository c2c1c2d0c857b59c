//! `/api/admin/*`: user management and the operator's view of LiveKit, rooms and participants.

use std::convert::Infallible;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::routing::{get, put};
use futures_util::Stream;
use axum::Router;
use serde::Deserialize;
use serde_json::{json, Value};

use super::extract::{AdminUser, Json};
use super::SharedState;
use crate::accounts;
use crate::error::ApiError;
use crate::store::{self, Role, StoreError};

pub fn routes() -> Router<SharedState> {
    Router::new()
        .route("/api/admin/users", get(list_users).post(create_user))
        .route("/api/admin/users/{name}", put(update_user).delete(delete_user))
        .route("/api/admin/overview", get(overview))
        .route("/api/admin/events", get(events))
        .route("/api/admin/rooms", get(rooms))
        .route("/api/admin/rooms/{name}/participants", get(room_participants))
        .route("/api/admin/doctor", get(doctor))
        .route("/api/admin/metrics", get(metrics))
}

/// `bedrud doctor` run by the daemon itself: the same report as the CLI's `--json`.
async fn doctor(State(st): State<SharedState>, _: AdminUser) -> axum::Json<crate::doctor::Report> {
    axum::Json(crate::doctor::live(&st).await)
}

async fn list_users(State(st): State<SharedState>, _: AdminUser) -> Result<axum::Json<Value>, ApiError> {
    Ok(axum::Json(json!({ "users": accounts::list_users(&st.store).await? })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewUser {
    username: String,
    password: String,
    #[serde(default)]
    role: Option<String>,
}

async fn create_user(State(st): State<SharedState>, _: AdminUser, Json(u): Json<NewUser>) -> Result<(StatusCode, axum::Json<Value>), ApiError> {
    let role = match u.role.as_deref() {
        Some(r) => accounts::parse_role(r)?,
        None => Role::User,
    };
    let user = accounts::create_user(&st.store, &u.username, &u.password, role).await?;
    Ok((StatusCode::CREATED, axum::Json(json!({ "user": user }))))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UserPatch {
    role: Option<String>,
    disabled: Option<bool>,
}

async fn update_user(State(st): State<SharedState>, _: AdminUser, Path(name): Path<String>, Json(p): Json<UserPatch>) -> Result<axum::Json<Value>, ApiError> {
    let role = p.role.as_deref().map(accounts::parse_role).transpose()?;
    if role.is_none() && p.disabled.is_none() {
        return Err(ApiError::bad_request("invalid_request", "nothing to change: send role and/or disabled"));
    }
    let user = accounts::update_user(&st.store, &name, role, p.disabled).await?;
    Ok(axum::Json(json!({ "user": user })))
}

async fn delete_user(State(st): State<SharedState>, _: AdminUser, Path(name): Path<String>) -> Result<StatusCode, ApiError> {
    accounts::delete_user(&st.store, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn overview(State(st): State<SharedState>, _: AdminUser) -> Result<axum::Json<Value>, ApiError> {
    Ok(axum::Json(overview_of(&st).await?))
}

/// How often the event stream repeats the overview when nothing in LiveKit's state changed
/// (counts and the last webhook move without a state change).
const EVENTS_PERIOD: Duration = Duration::from_secs(5);

/// `text/event-stream` of `overview` events (the same JSON as `GET /api/admin/overview`): at
/// once, on every change of LiveKit's state, and every few seconds. Ends at shutdown.
async fn events(State(st): State<SharedState>, _: AdminUser) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let rx = st.livekit.clone();
    let stream = futures_util::stream::unfold((st, rx, true), |(st, mut rx, first)| async move {
        if !first {
            tokio::select! {
                changed = rx.changed() => if changed.is_err() { return None },
                _ = tokio::time::sleep(EVENTS_PERIOD) => {}
                _ = st.shutdown.cancelled() => return None,
            }
        }
        rx.mark_unchanged();
        let event = match overview_of(&st).await {
            Ok(v) => Event::default().event("overview").data(v.to_string()),
            Err(e) => Event::default().event("error").data(json!({ "code": e.code, "message": e.message }).to_string()),
        };
        Some((Ok(event), (st, rx, false)))
    });
    Sse::new(stream).keep_alive(KeepAlive::default())
}

async fn overview_of(st: &SharedState) -> Result<Value, ApiError> {
    let lk = st.livekit.borrow().clone();
    let (users, rooms, live) = st
        .store
        .read(|txn| Ok((store::count_users(txn)?, store::count_rooms(txn)?, store::live_all(txn)?)))
        .await?;
    let live_rooms: std::collections::BTreeSet<&str> = live.iter().map(|(r, _)| r.as_str()).collect();
    let last_seen = st.webhook_last_seen.load(Ordering::Relaxed);
    Ok(json!({
        "livekit": {
            "mode": lk.mode,
            "version": lk.version,
            "state": lk.state.to_string(),
            "ready": lk.is_ready(),
            "restarts": lk.restarts,
            "lastError": lk.last_error,
            "nodeIp": lk.node_ip,
            "pid": lk.pid,
        },
        "webhook": {
            "lastSeen": (last_seen > 0).then_some(last_seen),
            "applied": st.webhooks_applied.load(Ordering::Relaxed),
        },
        "liveRooms": live_rooms.len(),
        "liveParticipants": live.len(),
        "users": users,
        "rooms": rooms,
    }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Page {
    limit: Option<usize>,
    after: Option<String>,
}

/// Every room with its live count; with `limit` (1-1000) one page in name order after `after`,
/// read from the room table and the live index only for that page.
async fn rooms(State(st): State<SharedState>, _: AdminUser, axum::extract::Query(p): axum::extract::Query<Page>) -> Result<axum::Json<Value>, ApiError> {
    if p.limit.is_some_and(|l| !(1..=1000).contains(&l)) {
        return Err(ApiError::bad_request("invalid_request", "limit must be 1-1000"));
    }
    let paged = p.limit.is_some();
    let limit = p.limit.unwrap_or(usize::MAX);
    let rows = st
        .store
        .read(move |txn| {
            let rooms = store::rooms_page(txn, p.after.as_deref(), limit)?;
            rooms.into_iter().map(|r| Ok((store::live_count(txn, &r.name, "")?, r))).collect::<Result<Vec<_>, StoreError>>()
        })
        .await?;
    let next = (paged && rows.len() == limit).then(|| rows.last().map(|(_, r)| r.name.clone())).flatten();
    let list: Vec<Value> = rows
        .iter()
        .map(|(live, r)| json!({
            "name": r.name,
            "ownerId": r.owner_id,
            "createdAt": r.created_at,
            "settings": r.settings,
            "liveParticipants": live,
        }))
        .collect();
    Ok(axum::Json(json!({ "rooms": list, "next": next })))
}

async fn room_participants(State(st): State<SharedState>, _: AdminUser, Path(name): Path<String>) -> Result<axum::Json<Value>, ApiError> {
    let (live, history) = st
        .store
        .read(move |txn| {
            store::room_get(txn, &name)?.ok_or(StoreError::NotFound("room"))?;
            Ok((store::live_in_room(txn, &name)?, store::history_for_room(txn, &name, 100)?))
        })
        .await?;
    Ok(axum::Json(json!({ "participants": live, "history": history })))
}

/// The Prometheus exposition, for admins (the same as `/metrics` on `server.metricsAddress`).
async fn metrics(State(st): State<SharedState>, _: AdminUser) -> axum::response::Response {
    crate::metrics::response(&st)
}
