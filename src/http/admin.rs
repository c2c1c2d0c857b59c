//! `/api/admin/*`: user management and the operator's view of LiveKit, rooms and participants.

use std::convert::Infallible;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::Stream;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::{AdminUser, Json};
use super::SharedState;
use crate::accounts;
use crate::error::{ApiError, ErrorBody};
use crate::livekit::status::Mode;
use crate::store::{self, HistoryEntry, LiveParticipant, Role, RoomSettings, StoreError, UserView};
use super::auth::UserAnswer;

pub fn routes() -> OpenApiRouter<SharedState> {
    OpenApiRouter::new()
        .routes(routes!(list_users, create_user))
        .routes(routes!(update_user, delete_user))
        .routes(routes!(overview))
        .routes(routes!(events))
        .routes(routes!(rooms))
        .routes(routes!(room_participants))
        .routes(routes!(doctor))
        .routes(routes!(metrics))
}

/// `bedrud doctor` run by the daemon itself: the same report as the CLI's `--json`.
#[utoipa::path(get, path = "/api/admin/doctor", tag = "admin", security(("bearer" = ["admin"]), ("cookie" = ["admin"])),
    responses(
        (status = 200, description = "Every check's finding", body = crate::doctor::Report),
        (status = 401, description = "`unauthorized`, `invalid_session`", body = ErrorBody),
        (status = 403, description = "`forbidden`: administrators only", body = ErrorBody),
    ))]
async fn doctor(State(st): State<SharedState>, _: AdminUser) -> axum::Json<crate::doctor::Report> {
    axum::Json(crate::doctor::live(&st).await)
}

#[derive(Serialize, ToSchema)]
pub(super) struct Users {
    users: Vec<UserView>,
    /// Pass as `after` for the next page; absent on the last.
    next: Option<String>,
}

/// Every user; with `limit` (1-1000) one page in name order after `after` (a username), read
/// from the name index only for that page.
#[utoipa::path(get, path = "/api/admin/users", tag = "admin", security(("bearer" = ["admin"]), ("cookie" = ["admin"])),
    params(Page),
    responses(
        (status = 200, description = "Users by name", body = Users),
        (status = 400, description = "`invalid_request`: bad limit or unknown parameter", body = ErrorBody),
        (status = 401, description = "`unauthorized`, `invalid_session`", body = ErrorBody),
        (status = 403, description = "`forbidden`: administrators only", body = ErrorBody),
    ))]
async fn list_users(State(st): State<SharedState>, _: AdminUser, super::extract::Query(p): super::extract::Query<Page>) -> Result<axum::Json<Users>, ApiError> {
    let limit = p.checked_limit()?;
    let users = accounts::list_users(&st.store, p.after, limit.unwrap_or(usize::MAX)).await?;
    let next = limit.filter(|&l| users.len() == l).and_then(|_| users.last().map(|u| u.username.clone()));
    Ok(axum::Json(Users { users, next }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct NewUser {
    username: String,
    password: String,
    /// `admin` or `user` (default).
    #[serde(default)]
    role: Option<String>,
}

/// Creates a user.
#[utoipa::path(post, path = "/api/admin/users", tag = "admin", security(("bearer" = ["admin"]), ("cookie" = ["admin"])),
    request_body = NewUser,
    responses(
        (status = 201, description = "Created", body = UserAnswer),
        (status = 400, description = "`invalid_username`, `invalid_password`, `invalid_role`, `invalid_json`, `invalid_request`", body = ErrorBody),
        (status = 401, description = "`unauthorized`, `invalid_session`", body = ErrorBody),
        (status = 403, description = "`forbidden`: administrators only", body = ErrorBody),
        (status = 409, description = "`user_exists`", body = ErrorBody),
        (status = 413, description = "`payload_too_large`", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`", body = ErrorBody),
        (status = 503, description = "`busy`: too many password hashes at once", body = ErrorBody),
    ))]
async fn create_user(State(st): State<SharedState>, _: AdminUser, Json(u): Json<NewUser>) -> Result<(StatusCode, axum::Json<UserAnswer>), ApiError> {
    let role = match u.role.as_deref() {
        Some(r) => accounts::parse_role(r)?,
        None => Role::User,
    };
    let user = accounts::create_user(&st.store, &u.username, &u.password, role).await?;
    Ok((StatusCode::CREATED, axum::Json(UserAnswer { user })))
}

/// Either or both.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct UserPatch {
    /// `admin` or `user`.
    role: Option<String>,
    /// A disabled user cannot sign in and their sessions end.
    disabled: Option<bool>,
}

/// Changes a user's role or disables them; the last enabled administrator stays one.
#[utoipa::path(put, path = "/api/admin/users/{name}", tag = "admin", security(("bearer" = ["admin"]), ("cookie" = ["admin"])),
    params(("name" = String, Path, description = "Username")),
    request_body = UserPatch,
    responses(
        (status = 200, description = "The user now", body = UserAnswer),
        (status = 400, description = "`invalid_role`, `invalid_json`, `invalid_request`", body = ErrorBody),
        (status = 401, description = "`unauthorized`, `invalid_session`", body = ErrorBody),
        (status = 403, description = "`forbidden`: administrators only", body = ErrorBody),
        (status = 404, description = "`user_not_found`", body = ErrorBody),
        (status = 409, description = "`last_admin`", body = ErrorBody),
        (status = 413, description = "`payload_too_large`", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`", body = ErrorBody),
    ))]
async fn update_user(State(st): State<SharedState>, _: AdminUser, Path(name): Path<String>, Json(p): Json<UserPatch>) -> Result<axum::Json<UserAnswer>, ApiError> {
    let role = p.role.as_deref().map(accounts::parse_role).transpose()?;
    if role.is_none() && p.disabled.is_none() {
        return Err(ApiError::bad_request("invalid_request", "nothing to change: send role and/or disabled"));
    }
    let user = accounts::update_user(&st.store, &name, role, p.disabled).await?;
    Ok(axum::Json(UserAnswer { user }))
}

/// Deletes a user and ends their sessions; the last enabled administrator stays.
#[utoipa::path(delete, path = "/api/admin/users/{name}", tag = "admin", security(("bearer" = ["admin"]), ("cookie" = ["admin"])),
    params(("name" = String, Path, description = "Username")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "`unauthorized`, `invalid_session`", body = ErrorBody),
        (status = 403, description = "`forbidden`: administrators only", body = ErrorBody),
        (status = 404, description = "`user_not_found`", body = ErrorBody),
        (status = 409, description = "`last_admin`", body = ErrorBody),
    ))]
async fn delete_user(State(st): State<SharedState>, _: AdminUser, Path(name): Path<String>) -> Result<StatusCode, ApiError> {
    accounts::delete_user(&st.store, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// LiveKit's state, the webhook and counts, for the admin console.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(super) struct Overview {
    livekit: OverviewLivekit,
    webhook: OverviewWebhook,
    live_rooms: usize,
    live_participants: usize,
    users: u64,
    rooms: u64,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(super) struct OverviewLivekit {
    mode: Mode,
    version: Option<String>,
    /// `starting`, `ready`, `restarting`, `failed: …`, `unreachable: …` (external), `stopped`.
    state: String,
    ready: bool,
    restarts: u32,
    last_error: Option<String>,
    node_ip: Option<String>,
    pid: Option<u32>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(super) struct OverviewWebhook {
    /// Unix milliseconds of the last valid webhook.
    last_seen: Option<u64>,
    applied: u64,
}

/// The state of the service at a glance.
#[utoipa::path(get, path = "/api/admin/overview", tag = "admin", security(("bearer" = ["admin"]), ("cookie" = ["admin"])),
    responses(
        (status = 200, description = "The overview", body = Overview),
        (status = 401, description = "`unauthorized`, `invalid_session`", body = ErrorBody),
        (status = 403, description = "`forbidden`: administrators only", body = ErrorBody),
    ))]
async fn overview(State(st): State<SharedState>, _: AdminUser) -> Result<axum::Json<Overview>, ApiError> {
    Ok(axum::Json(overview_of(&st).await?))
}

/// How often the event stream repeats the overview when nothing in LiveKit's state changed
/// (counts and the last webhook move without a state change).
const EVENTS_PERIOD: Duration = Duration::from_secs(5);

/// `text/event-stream` of `overview` events (the same JSON as `GET /api/admin/overview`): at
/// once, on every change of LiveKit's state, and every few seconds. Ends at shutdown.
#[utoipa::path(get, path = "/api/admin/events", tag = "admin", security(("bearer" = ["admin"]), ("cookie" = ["admin"])),
    responses(
        (status = 200, description = "An event stream of overviews", content_type = "text/event-stream", body = String),
        (status = 401, description = "`unauthorized`, `invalid_session`", body = ErrorBody),
        (status = 403, description = "`forbidden`: administrators only", body = ErrorBody),
    ))]
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
            Ok(v) => Event::default().event("overview").data(serde_json::to_string(&v).unwrap_or_default()),
            Err(e) => Event::default().event("error").data(json!({ "code": e.code, "message": e.message }).to_string()),
        };
        Some((Ok(event), (st, rx, false)))
    });
    Sse::new(stream).keep_alive(KeepAlive::default())
}

async fn overview_of(st: &SharedState) -> Result<Overview, ApiError> {
    let lk = st.livekit.borrow().clone();
    let (users, rooms, live) = st
        .store
        .read(|txn| Ok((store::count_users(txn)?, store::count_rooms(txn)?, store::live_all(txn)?)))
        .await?;
    let live_rooms: std::collections::BTreeSet<&str> = live.iter().map(|(r, _)| r.as_str()).collect();
    let last_seen = st.webhook_last_seen.load(Ordering::Relaxed);
    Ok(Overview {
        livekit: OverviewLivekit {
            mode: lk.mode,
            version: lk.version.clone(),
            state: lk.state.to_string(),
            ready: lk.is_ready(),
            restarts: lk.restarts,
            last_error: lk.last_error.clone(),
            node_ip: lk.node_ip.clone(),
            pid: lk.pid,
        },
        webhook: OverviewWebhook { last_seen: (last_seen > 0).then_some(last_seen), applied: st.webhooks_applied.load(Ordering::Relaxed) },
        live_rooms: live_rooms.len(),
        live_participants: live.len(),
        users,
        rooms,
    })
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(super) struct Page {
    /// Page size, 1-1000 (default: all of them).
    limit: Option<usize>,
    /// The last name of the previous page.
    after: Option<String>,
}

impl Page {
    /// The page size asked for, checked; `None`: all of them.
    fn checked_limit(&self) -> Result<Option<usize>, ApiError> {
        if self.limit.is_some_and(|l| !(1..=1000).contains(&l)) {
            return Err(ApiError::bad_request("invalid_request", "limit must be 1-1000"));
        }
        Ok(self.limit)
    }
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(super) struct AdminRoom {
    name: String,
    owner_id: String,
    created_at: u64,
    settings: RoomSettings,
    live_participants: u32,
}

#[derive(Serialize, ToSchema)]
pub(super) struct AdminRooms {
    rooms: Vec<AdminRoom>,
    /// Pass as `after` for the next page; absent on the last.
    next: Option<String>,
}

/// Every room with its live count; with `limit` (1-1000) one page in name order after `after`,
/// read from the room table and the live index only for that page.
#[utoipa::path(get, path = "/api/admin/rooms", tag = "admin", security(("bearer" = ["admin"]), ("cookie" = ["admin"])),
    params(Page),
    responses(
        (status = 200, description = "Rooms by name", body = AdminRooms),
        (status = 400, description = "`invalid_request`: bad limit or unknown parameter", body = ErrorBody),
        (status = 401, description = "`unauthorized`, `invalid_session`", body = ErrorBody),
        (status = 403, description = "`forbidden`: administrators only", body = ErrorBody),
    ))]
async fn rooms(State(st): State<SharedState>, _: AdminUser, super::extract::Query(p): super::extract::Query<Page>) -> Result<axum::Json<AdminRooms>, ApiError> {
    let paged = p.checked_limit()?.is_some();
    let limit = p.limit.unwrap_or(usize::MAX);
    let rows = st
        .store
        .read(move |txn| {
            let rooms = store::rooms_page(txn, p.after.as_deref(), limit)?;
            rooms.into_iter().map(|r| Ok((store::live_count(txn, &r.name, "")?, r))).collect::<Result<Vec<_>, StoreError>>()
        })
        .await?;
    let next = (paged && rows.len() == limit).then(|| rows.last().map(|(_, r)| r.name.clone())).flatten();
    let rooms = rows
        .into_iter()
        .map(|(live, r)| AdminRoom { name: r.name, owner_id: r.owner_id, created_at: r.created_at, settings: r.settings, live_participants: live })
        .collect();
    Ok(axum::Json(AdminRooms { rooms, next }))
}

#[derive(Serialize, ToSchema)]
pub(super) struct RoomPresence {
    participants: Vec<LiveParticipant>,
    /// The latest 100 joins, newest first.
    history: Vec<HistoryEntry>,
}

/// Who is in a room now and who was.
#[utoipa::path(get, path = "/api/admin/rooms/{name}/participants", tag = "admin", security(("bearer" = ["admin"]), ("cookie" = ["admin"])),
    params(("name" = String, Path, description = "Room name")),
    responses(
        (status = 200, description = "Live participants and history", body = RoomPresence),
        (status = 401, description = "`unauthorized`, `invalid_session`", body = ErrorBody),
        (status = 403, description = "`forbidden`: administrators only", body = ErrorBody),
        (status = 404, description = "`room_not_found`", body = ErrorBody),
    ))]
async fn room_participants(State(st): State<SharedState>, _: AdminUser, Path(name): Path<String>) -> Result<axum::Json<RoomPresence>, ApiError> {
    let (live, history) = st
        .store
        .read(move |txn| {
            store::room_get(txn, &name)?.ok_or(StoreError::NotFound("room"))?;
            Ok((store::live_in_room(txn, &name)?, store::history_for_room(txn, &name, 100)?))
        })
        .await?;
    Ok(axum::Json(RoomPresence { participants: live, history }))
}

/// The Prometheus exposition, for admins (the same as `/metrics` on `server.metricsAddress`).
#[utoipa::path(get, path = "/api/admin/metrics", tag = "admin", security(("bearer" = ["admin"]), ("cookie" = ["admin"])),
    responses(
        (status = 200, description = "Prometheus text exposition", content_type = "text/plain", body = String),
        (status = 401, description = "`unauthorized`, `invalid_session`", body = ErrorBody),
        (status = 403, description = "`forbidden`: administrators only", body = ErrorBody),
    ))]
async fn metrics(State(st): State<SharedState>, _: AdminUser) -> axum::response::Response {
    crate::metrics::response(&st)
}
