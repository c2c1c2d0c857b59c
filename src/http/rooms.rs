//! `/api/room/*`: rooms and their settings and moderators, joining (token or lobby), the live
//! participant list, and moderation through LiveKit (kick, mute, permissions) by the meeting's
//! managers (see `meeting`).

use axum::extract::{Path, State};
use axum::http::header::HOST;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use livekit_protocol as proto;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::cookie::{set_session, with_cookie, Delivery};
use super::extract::{caller_of, lookup_session, AnyCaller, AuthUser, BearerKey, Caller, Json, Query};
use super::SharedState;
use super::lobby::{Place, PlaceStatus};
use super::meeting::{apply_stage, meeting_manager, sync_metadata};
use crate::auth::{guest_session, new_token, token_key};
use crate::error::{ApiError, ErrorBody};
use crate::livekit::client::{source_name, source_value};
use crate::livekit::token::{join_token, JoinRole};
use crate::meeting::{self, Admission, JoinFacts};
use crate::rooms::{self, RoomView};
use crate::store::{self, Attendee, Invite, InviteRole, LobbyStatus, Room, RoomSettings, StoreError, TrackInfo};

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
    lobby: Option<bool>,
    stage: Option<bool>,
}

/// Changes some of a room's settings (its managers). A meeting in progress follows: turning
/// the lobby off lets in everyone waiting, turning the stage on or off changes who may publish,
/// and every client sees the room's new metadata.
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
        (status = 502, description = "`livekit_unavailable`, `livekit_auth_failed`, `livekit_error`: the running meeting could not be told", body = ErrorBody),
    ))]
async fn settings(State(st): State<SharedState>, auth: AuthUser, Path(name): Path<String>, Json(p): Json<SettingsPatch>) -> Result<axum::Json<RoomAnswer>, ApiError> {
    let room = rooms::managed(&st.store, &auth.user, &name).await?;
    let before = room.settings.clone();
    let mut s = room.settings;
    s.public = p.public.unwrap_or(s.public);
    s.max_participants = p.max_participants.unwrap_or(s.max_participants);
    s.allow_audio = p.allow_audio.unwrap_or(s.allow_audio);
    s.allow_video = p.allow_video.unwrap_or(s.allow_video);
    s.allow_screen_share = p.allow_screen_share.unwrap_or(s.allow_screen_share);
    s.allow_chat = p.allow_chat.unwrap_or(s.allow_chat);
    s.lobby = p.lobby.unwrap_or(s.lobby);
    s.stage = p.stage.unwrap_or(s.stage);
    let room = rooms::update_settings(&st.store, &name, s).await?;
    if before.lobby && !room.settings.lobby {
        super::lobby::admit_everyone(&st, &name).await?;
    }
    if before.lobby != room.settings.lobby || before.stage != room.settings.stage {
        sync_metadata(&st, &room).await?;
    }
    if before.stage != room.settings.stage {
        let n = apply_stage(&st, &room).await?;
        tracing::info!(room = %name, stage = room.settings.stage, participants = n, "stage changed in a running meeting");
    }
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
    /// The secret of an invite link of this room.
    #[serde(default)]
    invite: Option<String>,
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
    /// Whether the token lets the participant publish (false: in the audience of a stage).
    can_publish: bool,
    /// A new guest's session token (when the session is not delivered as a cookie): send it as
    /// the bearer token to keep this identity on the next join.
    #[serde(skip_serializing_if = "Option::is_none")]
    guest_token: Option<String>,
}

/// A join that waits in the lobby: no token until a manager admits the caller.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(super) struct LobbyAnswer {
    lobby: Place,
    room: String,
    identity: String,
    name: String,
    role: JoinRole,
    /// As in a join's answer: a new guest's session token.
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

/// What one read of the store says about a join into an existing room.
struct JoinRead {
    room: Room,
    /// For a signed-in caller: whether they manage the room.
    manager: Option<bool>,
    live_others: u32,
    live_now: bool,
    attendee: Option<Attendee>,
    banned: bool,
    /// The invite the request names, if it names one: `None` inside when no invite of this
    /// room has that secret.
    invite: Option<Option<Invite>>,
}

/// Checks that the caller may join and signs a LiveKit token for them, or (a guest in a room
/// with a lobby) puts them in the lobby: 202 and no token until a manager admits them.
/// Anonymous callers join public rooms as guests when `auth.guestJoin` is on, and any room
/// through one of its invite links.
#[utoipa::path(post, path = "/api/room/join", tag = "rooms", security((), ("bearer" = []), ("cookie" = [])),
    request_body = JoinRequest,
    responses(
        (status = 200, description = "A LiveKit token and URL", body = JoinAnswer),
        (status = 202, description = "Waiting in the lobby: no token until a manager admits the caller (see `/api/room/{name}/lobby/wait`)", body = LobbyAnswer),
        (status = 400, description = "`invalid_name`, `invalid_json`, `invalid_request`", body = ErrorBody),
        (status = 401, description = "`unauthorized`: guest access is off, `invalid_session`", body = ErrorBody),
        (status = 403, description = "`forbidden`: the room is not public or guest access is off, `banned`, `room_locked`", body = ErrorBody),
        (status = 404, description = "`room_not_found`, `invite_not_found`", body = ErrorBody),
        (status = 409, description = "`room_full`", body = ErrorBody),
        (status = 410, description = "`invite_expired`, `invite_used_up`, `invite_revoked`, `invite_withdrawn`", body = ErrorBody),
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
    let invite_key = req.invite.as_deref().map(str::trim).filter(|s| !s.is_empty()).map(token_key);
    // One read for everything the decision needs: the caller's session and user, the room,
    // the caller's standing in it, the live count and the invite.
    let (found, read) = st.store.read_blocking(|txn| {
        let found = match &key {
            Some(k) => Some(lookup_session(txn, k)?),
            None => None,
        };
        let Some(room) = store::room_get(txn, &req.room)? else { return Ok((found, None)) };
        let session = found.as_ref().and_then(|f| f.as_ref());
        let user = session.and_then(|(_, u)| u.as_ref());
        let manager = match user {
            Some(u) => Some(rooms::can_manage(txn, u, &room)?),
            None => None,
        };
        let identity = match (user, session) {
            (Some(u), _) => u.id.as_str(),
            (None, Some((s, _))) => s.subject.as_str(),
            _ => "",
        };
        let live_others = if room.settings.max_participants > 0 { store::live_count(txn, &room.name, identity)? } else { 0 };
        let known = !identity.is_empty();
        let read = JoinRead {
            live_now: known && store::is_live(txn, &room.name, identity)?,
            attendee: if known { store::attendee_get(txn, &room.name, identity)? } else { None },
            banned: known && store::ban_get(txn, &room.name, identity)?.is_some(),
            invite: match &invite_key {
                Some(k) => Some(store::invite_by_token(txn, k)?.filter(|i| i.room == room.name)),
                None => None,
            },
            room,
            manager,
            live_others,
        };
        Ok((found, Some(read)))
    })?;
    let caller = match (found, key) {
        (Some(found), Some(key)) => caller_of(found, key)?,
        _ => Caller::Anonymous,
    };
    let caller_user = match &caller {
        Caller::User { user, .. } => Some(user.clone()),
        _ => None,
    };
    if caller_user.is_none() && !cfg.auth.guest_join && invite_key.is_none() {
        return Err(match caller {
            Caller::Anonymous => ApiError::unauthorized("sign in to join; guest access is off"),
            _ => ApiError::forbidden("guest access is off"),
        });
    }
    let r = read.ok_or(StoreError::NotFound("room"))?;
    let user_role = caller_user.as_ref().map(|u| {
        if r.room.owner_id == u.id {
            JoinRole::Owner
        } else if u.is_admin() {
            JoinRole::Admin
        } else if r.manager == Some(true) {
            JoinRole::Moderator
        } else {
            JoinRole::Member
        }
    });
    let now = store::now_ms();
    let admission = meeting::decide(&JoinFacts {
        room: &r.room,
        user_role,
        guest_join: cfg.auth.guest_join,
        attendee: r.attendee.as_ref(),
        banned: r.banned,
        invite: r.invite.as_ref().map(Option::as_ref),
        live_now: r.live_now,
        live_others: r.live_others,
        now,
    })?;
    // Who joins: identity, display name, and (for a new guest) the session to store.
    let (identity, name, new_guest) = match (&caller, &caller_user) {
        (_, Some(u)) => (u.id.clone(), display_name(req.name.as_deref(), &u.username)?, None),
        (Caller::Guest { session }, None) => (session.subject.clone(), display_name(req.name.as_deref(), "Guest")?, None),
        _ => {
            let session = guest_session(cfg.auth.session_ttl);
            let (token, key) = new_token();
            (session.subject.clone(), display_name(req.name.as_deref(), "Guest")?, Some((token, key, session)))
        }
    };
    let lobby = matches!(admission, Admission::Lobby { .. });
    let invite = r.invite.flatten();
    // Writes: a new guest's session, a use of the invite, a knock on the lobby door.
    let attendee_changes = lobby
        || invite.as_ref().is_some_and(|i| {
            let a = r.attendee.as_ref();
            a.and_then(|a| a.invite.as_deref()) != Some(i.id.as_str()) || (i.role == InviteRole::Moderator && !a.is_some_and(|a| a.moderator))
        });
    if attendee_changes || new_guest.is_some() {
        let (room, id, display, guest) = (r.room.name.clone(), identity.clone(), name.clone(), caller_user.is_none());
        let invite_id = invite.as_ref().map(|i| i.id.clone());
        let session = new_guest.as_ref().map(|(_, k, s)| (k.clone(), s.clone()));
        st.store
            .write(move |txn| {
                if attendee_changes {
                    let mut a = store::attendee_get(txn, &room, &id)?.unwrap_or_else(|| Attendee::new(&id, &display, guest));
                    if let Some(inv_id) = &invite_id {
                        // Checked again here: another join may have spent its last use.
                        let Some(mut inv) = store::invite_get(txn, &room, inv_id)? else { return Ok(Err(meeting::invite_not_found())) };
                        if let Err(e) = meeting::invite_admits(&inv, Some(&a), now) {
                            return Ok(Err(e));
                        }
                        if a.invite.as_deref() != Some(inv_id) {
                            inv.uses += 1;
                            store::invite_put(txn, &inv)?;
                            a.invite = Some(inv_id.clone());
                        }
                        a.moderator |= inv.role == InviteRole::Moderator;
                    }
                    if lobby && a.lobby != Some(LobbyStatus::Waiting) {
                        // The lobby's order is the order of knocks: one in the same millisecond
                        // as the last still comes after it.
                        let last = store::lobby_waiting(txn, &room)?.last().map_or(0, |w| w.knocked_at);
                        a.lobby = Some(LobbyStatus::Waiting);
                        a.knocked_at = now.max(last + 1);
                    }
                    a.name = display.clone();
                    store::attendee_put(txn, &room, &a)?;
                }
                if let Some((key, session)) = &session {
                    store::session_put(txn, key, session)?;
                }
                Ok(Ok(()))
            })
            .await??;
    }
    let role = admission.role();
    let (room, url) = (r.room.name.clone(), cfg.livekit_public_url(headers.get(HOST).and_then(|h| h.to_str().ok())));
    // A new guest's session, sent back as the bearer token (or kept in the cookie), keeps this
    // guest's identity on the next join.
    let session_token = new_guest.map(|(t, _, _)| t);
    let guest_token = session_token.clone().filter(|_| matches!(req.session, Delivery::Token));
    let answer = match admission {
        Admission::Lobby { .. } => {
            st.lobbies.seen(&r.room.name, &identity);
            st.lobbies.notify(&r.room.name);
            let (rn, id) = (r.room.name.clone(), identity.clone());
            let waiting = st.store.read(move |txn| store::lobby_waiting(txn, &rn)).await?;
            let position = waiting.iter().position(|a| a.identity == id).map(|i| i + 1);
            tracing::info!(room = %r.room.name, identity = %identity, "waiting in the lobby");
            let lobby = Place { status: PlaceStatus::Waiting, position, waiting: Some(waiting.len()) };
            let a = LobbyAnswer { lobby, room, identity, name, role, guest_token };
            (StatusCode::ACCEPTED, axum::Json(a)).into_response()
        }
        Admission::Enter { role, on_stage } => {
            let token = join_token(&st.keys, &r.room.name, &identity, &name, &r.room.settings, role, on_stage, cfg.livekit.token_ttl).map_err(ApiError::internal)?;
            let a = JoinAnswer { token, url, can_publish: on_stage, room, identity, name, role, guest_token };
            axum::Json(a).into_response()
        }
    };
    Ok(match session_token {
        Some(t) if matches!(req.session, Delivery::Cookie) => with_cookie(answer, set_session(&t, cfg.auth.session_ttl.as_secs(), cfg.server.tls_enabled())),
        _ => answer,
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
                // A guest made moderator by an invite.
                None => store::attendee_get(txn, &name, &identity)?.is_some_and(|a| a.moderator) && store::ban_get(txn, &name, &identity)?.is_none(),
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
async fn kick(State(st): State<SharedState>, AnyCaller(caller): AnyCaller, Path((name, identity)): Path<(String, String)>) -> Result<axum::Json<Removed>, ApiError> {
    let m = meeting_manager(&st, &caller, &name).await?;
    st.client.remove_participant(&name, &identity).await?;
    tracing::info!(room = %name, identity = %identity, by = %m.name, "participant removed");
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
async fn mute(State(st): State<SharedState>, AnyCaller(caller): AnyCaller, Path((name, identity)): Path<(String, String)>, Json(m): Json<MuteRequest>) -> Result<axum::Json<MutedTracks>, ApiError> {
    let source = match m.source.as_str() {
        "microphone" | "camera" | "screen_share" => source_value(&m.source),
        _ => None,
    }
    .ok_or_else(|| ApiError::bad_request("invalid_source", "source must be microphone, camera or screen_share"))?;
    let by = meeting_manager(&st, &caller, &name).await?.name;
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
    tracing::info!(room = %name, identity = %identity, source = %m.source, muted = m.muted, by = %by, "track mute set");
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
async fn permissions(State(st): State<SharedState>, AnyCaller(caller): AnyCaller, Path((name, identity)): Path<(String, String)>, Json(p): Json<PermissionRequest>) -> Result<axum::Json<PermissionAnswer>, ApiError> {
    let sources = match &p.can_publish_sources {
        Some(list) => Some(
            list.iter()
                .map(|s| source_value(s).map(|v| v as i32).ok_or_else(|| ApiError::bad_request("invalid_source", format!("unknown source {s:?}"))))
                .collect::<Result<Vec<i32>, _>>()?,
        ),
        None => None,
    };
    let m = meeting_manager(&st, &caller, &name).await?;
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
    tracing::info!(room = %name, identity = %identity, by = %m.name, "permissions updated");
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
