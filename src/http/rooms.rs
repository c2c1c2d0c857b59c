//! `/api/room/*`: rooms and their settings and moderators, join tokens, the live participant
//! list, and moderation through LiveKit (kick, mute, permissions).

use axum::extract::{Path, Query, State};
use axum::http::header::HOST;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use livekit_protocol as proto;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::cookie::{set_session, with_cookie, Delivery};
use super::extract::{caller_of, lookup_session, AnyCaller, AuthUser, BearerKey, Caller, Json};
use super::SharedState;
use crate::auth::{guest_session, new_token};
use crate::error::{ApiError, ErrorBody};
use crate::livekit::client::{source_name, source_value};
use crate::livekit::token::{join_token, JoinRole};
use crate::rooms::{self, RoomView};
use crate::store::{self, RoomSettings, Session, StoreError, TrackInfo};

pub fn routes() -> OpenApiRouter<SharedState> {
    OpenApiRouter::new()
        .routes(routes!(create))
        .routes(routes!(list))
        .routes(routes!(join))
        .routes(routes!(show, remove))
        .routes(routes!(settings))
        .routes(routes!(add_moderator, remove_moderator))
        .routes(routes!(participants))
        .routes(routes!(kick))
        .routes(routes!(mute))
        .routes(routes!(permissions))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct CreateRoom {
    /// 3-63 lowercase letters, digits and dashes; not `create`, `list` or `join`.
    name: String,
    #[serde(default)]
    settings: Option<RoomSettings>,
}

/// One room.
#[derive(Serialize, ToSchema)]
pub(super) struct RoomAnswer {
    room: RoomView,
}

/// Creates a room owned by the caller.
#[utoipa::path(post, path = "/api/room/create", tag = "rooms", security(("bearer" = []), ("cookie" = [])),
    request_body = CreateRoom,
    responses(
        (status = 201, description = "Created", body = RoomAnswer),
        (status = 400, description = "`invalid_room_name`, `invalid_settings`, `invalid_json`, `invalid_request`", body = ErrorBody),
        (status = 401, description = "`unauthorized`, `invalid_session`", body = ErrorBody),
        (status = 403, description = "`forbidden`: guests cannot create rooms", body = ErrorBody),
        (status = 409, description = "`room_exists`", body = ErrorBody),
        (status = 413, description = "`payload_too_large`", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`", body = ErrorBody),
    ))]
async fn create(State(st): State<SharedState>, auth: AuthUser, Json(r): Json<CreateRoom>) -> Result<(StatusCode, axum::Json<RoomAnswer>), ApiError> {
    let room = rooms::create(&st.store, &auth.user, &r.name, r.settings.unwrap_or_default()).await?;
    let view = rooms::get_view(&st.store, &room.name).await?;
    tracing::info!(room = %room.name, owner = %auth.user.username, "room created");
    Ok((StatusCode::CREATED, axum::Json(RoomAnswer { room: view })))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(super) struct Page {
    /// Page size, 1-500 (default 50).
    limit: Option<usize>,
    /// The last name of the previous page.
    after: Option<String>,
}

/// A page of rooms.
#[derive(Serialize, ToSchema)]
pub(super) struct RoomPage {
    rooms: Vec<RoomView>,
    /// Pass as `after` for the next page; absent on the last.
    next: Option<String>,
}

/// The rooms the caller owns or moderates, and public rooms, by name.
#[utoipa::path(get, path = "/api/room/list", tag = "rooms", security(("bearer" = []), ("cookie" = [])),
    params(Page),
    responses(
        (status = 200, description = "A page of rooms", body = RoomPage),
        (status = 400, description = "`invalid_request`: bad limit or unknown parameter", body = ErrorBody),
        (status = 401, description = "`unauthorized`, `invalid_session`", body = ErrorBody),
        (status = 403, description = "`forbidden`: guests have no room list", body = ErrorBody),
    ))]
async fn list(State(st): State<SharedState>, auth: AuthUser, Query(p): Query<Page>) -> Result<axum::Json<RoomPage>, ApiError> {
    let limit = p.limit.unwrap_or(50);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::bad_request("invalid_request", "limit must be 1-500"));
    }
    let rooms = rooms::list(&st.store, &auth.user, p.after, limit).await?;
    let next = (rooms.len() == limit).then(|| rooms.last().map(|r| r.name.clone())).flatten();
    Ok(axum::Json(RoomPage { rooms, next }))
}

/// One room's settings, owner, moderators and live count.
#[utoipa::path(get, path = "/api/room/{name}", tag = "rooms", security(("bearer" = []), ("cookie" = [])),
    params(("name" = String, Path, description = "Room name")),
    responses(
        (status = 200, description = "The room", body = RoomAnswer),
        (status = 401, description = "`unauthorized`, `invalid_session`", body = ErrorBody),
        (status = 403, description = "`forbidden`: guests", body = ErrorBody),
        (status = 404, description = "`room_not_found`", body = ErrorBody),
    ))]
async fn show(State(st): State<SharedState>, _: AuthUser, Path(name): Path<String>) -> Result<axum::Json<RoomAnswer>, ApiError> {
    Ok(axum::Json(RoomAnswer { room: rooms::get_view(&st.store, &name).await? }))
}

/// Deletes a room (its owner, moderators or an administrator).
#[utoipa::path(delete, path = "/api/room/{name}", tag = "rooms", security(("bearer" = []), ("cookie" = [])),
    params(("name" = String, Path, description = "Room name")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "`unauthorized`, `invalid_session`", body = ErrorBody),
        (status = 403, description = "`forbidden`: not a manager of the room", body = ErrorBody),
        (status = 404, description = "`room_not_found`", body = ErrorBody),
    ))]
async fn remove(State(st): State<SharedState>, auth: AuthUser, Path(name): Path<String>) -> Result<StatusCode, ApiError> {
    rooms::managed(&st.store, &auth.user, &name).await?;
    rooms::delete(&st.store, &name).await?;
    tracing::info!(room = %name, by = %auth.user.username, "room deleted");
    Ok(StatusCode::NO_CONTENT)
}

/// Settings sent to `PUT .../settings`: any subset; the rest stays.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct SettingsPatch {
    public: Option<bool>,
    max_participants: Option<u32>,
    allow_audio: Option<bool>,
    allow_video: Option<bool>,
    allow_screen_share: Option<bool>,
    allow_chat: Option<bool>,
}

/// Changes some of a room's settings (its managers).
#[utoipa::path(put, path = "/api/room/{name}/settings", tag = "rooms", security(("bearer" = []), ("cookie" = [])),
    params(("name" = String, Path, description = "Room name")),
    request_body = SettingsPatch,
    responses(
        (status = 200, description = "The room with its new settings", body = RoomAnswer),
        (status = 400, description = "`invalid_settings`, `invalid_json`, `invalid_request`", body = ErrorBody),
        (status = 401, description = "`unauthorized`, `invalid_session`", body = ErrorBody),
        (status = 403, description = "`forbidden`: not a manager of the room", body = ErrorBody),
        (status = 404, description = "`room_not_found`", body = ErrorBody),
        (status = 413, description = "`payload_too_large`", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`", body = ErrorBody),
    ))]
async fn settings(State(st): State<SharedState>, auth: AuthUser, Path(name): Path<String>, Json(p): Json<SettingsPatch>) -> Result<axum::Json<RoomAnswer>, ApiError> {
    let room = rooms::managed(&st.store, &auth.user, &name).await?;
    let mut s = room.settings;
    s.public = p.public.unwrap_or(s.public);
    s.max_participants = p.max_participants.unwrap_or(s.max_participants);
    s.allow_audio = p.allow_audio.unwrap_or(s.allow_audio);
    s.allow_video = p.allow_video.unwrap_or(s.allow_video);
    s.allow_screen_share = p.allow_screen_share.unwrap_or(s.allow_screen_share);
    s.allow_chat = p.allow_chat.unwrap_or(s.allow_chat);
    rooms::update_settings(&st.store, &name, s).await?;
    Ok(axum::Json(RoomAnswer { room: rooms::get_view(&st.store, &name).await? }))
}

/// Makes a user a moderator of the room (its managers).
#[utoipa::path(post, path = "/api/room/{name}/moderators/{user}", tag = "rooms", security(("bearer" = []), ("cookie" = [])),
    params(("name" = String, Path, description = "Room name"), ("user" = String, Path, description = "Username")),
    responses(
        (status = 201, description = "Added"),
        (status = 204, description = "Already a moderator"),
        (status = 401, description = "`unauthorized`, `invalid_session`", body = ErrorBody),
        (status = 403, description = "`forbidden`: not a manager of the room", body = ErrorBody),
        (status = 404, description = "`room_not_found`, `user_not_found`", body = ErrorBody),
    ))]
async fn add_moderator(State(st): State<SharedState>, auth: AuthUser, Path((name, user)): Path<(String, String)>) -> Result<StatusCode, ApiError> {
    rooms::managed(&st.store, &auth.user, &name).await?;
    let added = rooms::set_moderator(&st.store, &name, &user, true).await?;
    Ok(if added { StatusCode::CREATED } else { StatusCode::NO_CONTENT })
}

/// Removes a moderator (the room's managers).
#[utoipa::path(delete, path = "/api/room/{name}/moderators/{user}", tag = "rooms", security(("bearer" = []), ("cookie" = [])),
    params(("name" = String, Path, description = "Room name"), ("user" = String, Path, description = "Username")),
    responses(
        (status = 204, description = "Removed"),
        (status = 401, description = "`unauthorized`, `invalid_session`", body = ErrorBody),
        (status = 403, description = "`forbidden`: not a manager of the room", body = ErrorBody),
        (status = 404, description = "`room_not_found`, `user_not_found`, `not_a_moderator`", body = ErrorBody),
    ))]
async fn remove_moderator(State(st): State<SharedState>, auth: AuthUser, Path((name, user)): Path<(String, String)>) -> Result<StatusCode, ApiError> {
    rooms::managed(&st.store, &auth.user, &name).await?;
    if !rooms::set_moderator(&st.store, &name, &user, false).await? {
        return Err(ApiError::not_found("not_a_moderator", format!("{user} is not a moderator of {name}")));
    }
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct JoinRequest {
    room: String,
    /// Display name, 1-64 characters (default: the username, or "Guest").
    #[serde(default)]
    name: Option<String>,
    /// `"cookie"`: a new guest's session goes into the browser's cookie, not the answer.
    #[serde(default)]
    session: Delivery,
}

/// What a participant needs to connect to LiveKit.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(super) struct JoinAnswer {
    /// LiveKit access token for this room.
    token: String,
    /// LiveKit's WebSocket URL as seen from the caller.
    url: String,
    room: String,
    identity: String,
    name: String,
    role: JoinRole,
    /// A new guest's session token (when the session is not delivered as a cookie): send it as
    /// the bearer token to keep this identity on the next join.
    #[serde(skip_serializing_if = "Option::is_none")]
    guest_token: Option<String>,
}

fn display_name(given: Option<&str>, fallback: &str) -> Result<String, ApiError> {
    let n = given.map(str::trim).filter(|s| !s.is_empty()).unwrap_or(fallback);
    if n.chars().count() > 64 || n.chars().any(char::is_control) {
        return Err(ApiError::bad_request("invalid_name", "display name must be 1-64 characters without control characters"));
    }
    Ok(n.to_string())
}

/// Who joins: identity, display name, role, and (for a new guest) the session to store.
struct Joiner {
    identity: String,
    name: String,
    role: JoinRole,
    new_guest: Option<(String, String, Session)>,
}

/// Checks that the caller may join and signs a LiveKit token for them. Anonymous callers join
/// public rooms as guests when `auth.guestJoin` is on.
#[utoipa::path(post, path = "/api/room/join", tag = "rooms", security((), ("bearer" = []), ("cookie" = [])),
    request_body = JoinRequest,
    responses(
        (status = 200, description = "A LiveKit token and URL", body = JoinAnswer),
        (status = 400, description = "`invalid_name`, `invalid_json`, `invalid_request`", body = ErrorBody),
        (status = 401, description = "`unauthorized`: guest access is off, `invalid_session`", body = ErrorBody),
        (status = 403, description = "`forbidden`: the room is not public or guest access is off", body = ErrorBody),
        (status = 404, description = "`room_not_found`", body = ErrorBody),
        (status = 409, description = "`room_full`", body = ErrorBody),
        (status = 413, description = "`payload_too_large`", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`", body = ErrorBody),
    ))]
async fn join(State(st): State<SharedState>, BearerKey(key): BearerKey, headers: HeaderMap, body: Result<Json<JoinRequest>, ApiError>) -> Result<Response, ApiError> {
    let cfg = st.config();
    let req = match body {
        Ok(Json(r)) => r,
        Err(e) => {
            // As with every endpoint, a revoked session is reported before a bad body.
            if let Some(k) = key {
                let found = st.store.read_blocking(|txn| lookup_session(txn, &k))?;
                caller_of(found, String::new())?;
            }
            return Err(e);
        }
    };
    // One read for everything the decision needs: the caller's session and user, the room,
    // the caller's role in it and the live count.
    let (found, room) = st.store.read_blocking(|txn| {
        let found = match &key {
            Some(k) => Some(lookup_session(txn, k)?),
            None => None,
        };
        let Some(room) = store::room_get(txn, &req.room)? else { return Ok((found, None)) };
        let user = found.as_ref().and_then(|f| f.as_ref()).and_then(|(_, u)| u.as_ref());
        let (manager, identity) = match user {
            Some(u) => (Some(rooms::can_manage(txn, u, &room)?), u.id.as_str()),
            None => (None, ""),
        };
        let live = if room.settings.max_participants > 0 { store::live_count(txn, &room.name, identity)? } else { 0 };
        Ok((found, Some((room, manager, live))))
    })?;
    let caller = match (found, key) {
        (Some(found), Some(key)) => caller_of(found, key)?,
        _ => Caller::Anonymous,
    };
    let caller_user = match &caller {
        Caller::User { user, .. } => Some(user.clone()),
        _ => None,
    };
    if caller_user.is_none() && !cfg.auth.guest_join {
        return Err(match caller {
            Caller::Anonymous => ApiError::unauthorized("sign in to join; guest access is off"),
            _ => ApiError::forbidden("guest access is off"),
        });
    }
    let (room, manager, live) = room.ok_or(StoreError::NotFound("room"))?;
    let joiner = match (&caller, caller_user) {
        (_, Some(u)) => {
            let role = if room.owner_id == u.id {
                JoinRole::Owner
            } else if u.is_admin() {
                JoinRole::Admin
            } else if manager == Some(true) {
                JoinRole::Moderator
            } else {
                JoinRole::Member
            };
            Joiner { identity: u.id.clone(), name: display_name(req.name.as_deref(), &u.username)?, role, new_guest: None }
        }
        (Caller::Guest { session, .. }, None) => {
            if !room.settings.public {
                return Err(ApiError::forbidden("this room is not open to guests; sign in"));
            }
            Joiner { identity: session.subject.clone(), name: display_name(req.name.as_deref(), "Guest")?, role: JoinRole::Guest, new_guest: None }
        }
        _ => {
            if !room.settings.public {
                return Err(ApiError::forbidden("this room is not open to guests; sign in"));
            }
            let session = guest_session(cfg.auth.session_ttl);
            let (token, key) = new_token();
            Joiner {
                identity: session.subject.clone(),
                name: display_name(req.name.as_deref(), "Guest")?,
                role: JoinRole::Guest,
                new_guest: Some((token, key, session)),
            }
        }
    };
    let max = room.settings.max_participants;
    if max > 0 && live >= max {
        return Err(ApiError::conflict("room_full", format!("room {} is full ({max} participants)", room.name)));
    }
    let token = join_token(&st.keys, &room.name, &joiner.identity, &joiner.name, &room.settings, joiner.role, cfg.livekit.token_ttl)
        .map_err(ApiError::internal)?;
    let mut answer = JoinAnswer {
        token,
        url: cfg.livekit_public_url(headers.get(HOST).and_then(|h| h.to_str().ok())),
        room: room.name,
        identity: joiner.identity,
        name: joiner.name,
        role: joiner.role,
        guest_token: None,
    };
    let Some((guest_token, key, session)) = joiner.new_guest else { return Ok(axum::Json(answer).into_response()) };
    st.store.write(move |txn| store::session_put(txn, &key, &session)).await?;
    // Sent back as the bearer token (or kept in the cookie), it keeps this guest's identity on
    // the next join.
    Ok(match req.session {
        Delivery::Token => {
            answer.guest_token = Some(guest_token);
            axum::Json(answer).into_response()
        }
        Delivery::Cookie => with_cookie(
            axum::Json(answer).into_response(),
            set_session(&guest_token, cfg.auth.session_ttl.as_secs(), cfg.server.tls_enabled()),
        ),
    })
}

/// A participant in the room now.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(super) struct Participant {
    identity: String,
    name: String,
    joined_at: u64,
    tracks: Vec<TrackInfo>,
}

#[derive(Serialize, ToSchema)]
pub(super) struct Participants {
    participants: Vec<Participant>,
}

/// The live participants, for the room's managers and for whoever is in it (guests too).
#[utoipa::path(get, path = "/api/room/{name}/participants", tag = "rooms", security(("bearer" = []), ("cookie" = [])),
    params(("name" = String, Path, description = "Room name")),
    responses(
        (status = 200, description = "Who is in the room", body = Participants),
        (status = 401, description = "`unauthorized`, `invalid_session`", body = ErrorBody),
        (status = 403, description = "`forbidden`: neither in the room nor a manager of it", body = ErrorBody),
        (status = 404, description = "`room_not_found`", body = ErrorBody),
    ))]
async fn participants(State(st): State<SharedState>, AnyCaller(caller): AnyCaller, Path(name): Path<String>) -> Result<axum::Json<Participants>, ApiError> {
    let (user, identity) = match &caller {
        Caller::User { user, .. } => (Some(user.clone()), user.id.clone()),
        Caller::Guest { session, .. } => (None, session.subject.clone()),
        Caller::Anonymous => return Err(ApiError::unauthorized("sign in first")),
    };
    let (allowed, live) = st
        .store
        .read(move |txn| {
            let room = store::room_get(txn, &name)?.ok_or(StoreError::NotFound("room"))?;
            let live = store::live_in_room(txn, &name)?;
            let manager = match &user {
                Some(u) => rooms::can_manage(txn, u, &room)?,
                None => false,
            };
            Ok((manager || live.iter().any(|p| p.identity == identity), live))
        })
        .await?;
    if !allowed {
        return Err(ApiError::forbidden("only the room's members and managers see its participants"));
    }
    let participants = live
        .into_iter()
        .map(|p| Participant { identity: p.identity, name: p.name, joined_at: p.joined_at, tracks: p.tracks })
        .collect();
    Ok(axum::Json(Participants { participants }))
}

#[derive(Serialize, ToSchema)]
pub(super) struct Removed {
    /// The identity removed.
    removed: String,
}

/// Removes a participant from the meeting (the room's managers).
#[utoipa::path(post, path = "/api/room/{name}/kick/{identity}", tag = "rooms", security(("bearer" = []), ("cookie" = [])),
    params(("name" = String, Path, description = "Room name"), ("identity" = String, Path, description = "Participant identity")),
    responses(
        (status = 200, description = "Removed", body = Removed),
        (status = 401, description = "`unauthorized`, `invalid_session`", body = ErrorBody),
        (status = 403, description = "`forbidden`: not a manager of the room", body = ErrorBody),
        (status = 404, description = "`room_not_found`, `participant_not_found`", body = ErrorBody),
        (status = 502, description = "`livekit_unavailable`, `livekit_auth_failed`, `livekit_error`", body = ErrorBody),
    ))]
async fn kick(State(st): State<SharedState>, auth: AuthUser, Path((name, identity)): Path<(String, String)>) -> Result<axum::Json<Removed>, ApiError> {
    rooms::managed(&st.store, &auth.user, &name).await?;
    st.client.remove_participant(&name, &identity).await?;
    tracing::info!(room = %name, identity = %identity, by = %auth.user.username, "participant removed");
    Ok(axum::Json(Removed { removed: identity }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct MuteRequest {
    /// `microphone`, `camera` or `screen_share`.
    source: String,
    muted: bool,
}

#[derive(Serialize, ToSchema)]
pub(super) struct MutedTracks {
    tracks: Vec<MutedTrack>,
}

#[derive(Serialize, ToSchema)]
pub(super) struct MutedTrack {
    sid: String,
    source: String,
    muted: bool,
}

/// Mutes (or unmutes) a participant's tracks of one source (the room's managers).
#[utoipa::path(post, path = "/api/room/{name}/mute/{identity}", tag = "rooms", security(("bearer" = []), ("cookie" = [])),
    params(("name" = String, Path, description = "Room name"), ("identity" = String, Path, description = "Participant identity")),
    request_body = MuteRequest,
    responses(
        (status = 200, description = "The tracks changed", body = MutedTracks),
        (status = 400, description = "`invalid_source`, `livekit_invalid_argument`, `invalid_json`, `invalid_request`", body = ErrorBody),
        (status = 401, description = "`unauthorized`, `invalid_session`", body = ErrorBody),
        (status = 403, description = "`forbidden`: not a manager of the room", body = ErrorBody),
        (status = 404, description = "`room_not_found`, `participant_not_found`, `track_not_found`", body = ErrorBody),
        (status = 413, description = "`payload_too_large`", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`", body = ErrorBody),
        (status = 502, description = "`livekit_unavailable`, `livekit_auth_failed`, `livekit_error`", body = ErrorBody),
    ))]
async fn mute(State(st): State<SharedState>, auth: AuthUser, Path((name, identity)): Path<(String, String)>, Json(m): Json<MuteRequest>) -> Result<axum::Json<MutedTracks>, ApiError> {
    let source = match m.source.as_str() {
        "microphone" | "camera" | "screen_share" => source_value(&m.source),
        _ => None,
    }
    .ok_or_else(|| ApiError::bad_request("invalid_source", "source must be microphone, camera or screen_share"))?;
    rooms::managed(&st.store, &auth.user, &name).await?;
    let p = st.client.get_participant(&name, &identity).await?;
    let sids: Vec<String> = p.tracks.iter().filter(|t| t.source == source as i32).map(|t| t.sid.clone()).collect();
    if sids.is_empty() {
        return Err(ApiError::not_found("track_not_found", format!("{identity} publishes no {} track", m.source)));
    }
    let mut tracks = Vec::new();
    for sid in sids {
        let t = st.client.mute_published_track(&name, &identity, &sid, m.muted).await?;
        if let Some(t) = t {
            tracks.push(MutedTrack { sid: t.sid, source: source_name(t.source).to_string(), muted: t.muted });
        }
    }
    tracing::info!(room = %name, identity = %identity, source = %m.source, muted = m.muted, by = %auth.user.username, "track mute set");
    Ok(axum::Json(MutedTracks { tracks }))
}

/// Any subset; LiveKit's current values stay for the rest.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct PermissionRequest {
    can_publish: Option<bool>,
    can_subscribe: Option<bool>,
    can_publish_data: Option<bool>,
    can_publish_sources: Option<Vec<String>>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(super) struct Permission {
    can_publish: bool,
    can_subscribe: bool,
    can_publish_data: bool,
    /// Empty: every source allowed.
    can_publish_sources: Vec<String>,
}

#[derive(Serialize, ToSchema)]
pub(super) struct PermissionAnswer {
    identity: String,
    permission: Permission,
}

/// Changes what a participant may publish or subscribe to (the room's managers).
#[utoipa::path(put, path = "/api/room/{name}/permissions/{identity}", tag = "rooms", security(("bearer" = []), ("cookie" = [])),
    params(("name" = String, Path, description = "Room name"), ("identity" = String, Path, description = "Participant identity")),
    request_body = PermissionRequest,
    responses(
        (status = 200, description = "The participant's permission now", body = PermissionAnswer),
        (status = 400, description = "`invalid_source`, `livekit_invalid_argument`, `invalid_json`, `invalid_request`", body = ErrorBody),
        (status = 401, description = "`unauthorized`, `invalid_session`", body = ErrorBody),
        (status = 403, description = "`forbidden`: not a manager of the room", body = ErrorBody),
        (status = 404, description = "`room_not_found`, `participant_not_found`", body = ErrorBody),
        (status = 413, description = "`payload_too_large`", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`", body = ErrorBody),
        (status = 502, description = "`livekit_unavailable`, `livekit_auth_failed`, `livekit_error`", body = ErrorBody),
    ))]
async fn permissions(State(st): State<SharedState>, auth: AuthUser, Path((name, identity)): Path<(String, String)>, Json(p): Json<PermissionRequest>) -> Result<axum::Json<PermissionAnswer>, ApiError> {
    let sources = match &p.can_publish_sources {
        Some(list) => Some(
            list.iter()
                .map(|s| source_value(s).map(|v| v as i32).ok_or_else(|| ApiError::bad_request("invalid_source", format!("unknown source {s:?}"))))
                .collect::<Result<Vec<i32>, _>>()?,
        ),
        None => None,
    };
    rooms::managed(&st.store, &auth.user, &name).await?;
    // LiveKit replaces the whole permission: start from the participant's current one.
    let current = st.client.get_participant(&name, &identity).await?;
    let mut perm = current.permission.unwrap_or(proto::ParticipantPermission {
        can_subscribe: true,
        can_publish: true,
        can_publish_data: true,
        ..Default::default()
    });
    perm.can_publish = p.can_publish.unwrap_or(perm.can_publish);
    perm.can_subscribe = p.can_subscribe.unwrap_or(perm.can_subscribe);
    perm.can_publish_data = p.can_publish_data.unwrap_or(perm.can_publish_data);
    if let Some(s) = sources {
        perm.can_publish_sources = s;
    }
    let info = st.client.update_permission(&name, &identity, perm).await?;
    let perm = info.permission.unwrap_or_default();
    tracing::info!(room = %name, identity = %identity, by = %auth.user.username, "permissions updated");
    Ok(axum::Json(PermissionAnswer {
        identity: info.identity,
        permission: Permission {
            can_publish: perm.can_publish,
            can_subscribe: perm.can_subscribe,
            can_publish_data: perm.can_publish_data,
            can_publish_sources: perm.can_publish_sources.iter().map(|s| source_name(*s).to_string()).collect(),
        },
    }))
}
