//! `/api/room/*`: rooms and their settings and moderators, join tokens, the live participant
//! list, and moderation through LiveKit (kick, mute, permissions).

use axum::extract::{Path, Query, State};
use axum::http::header::HOST;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use axum::Router;
use livekit_protocol as proto;
use serde::Deserialize;
use serde_json::{json, Value};

use super::cookie::{set_session, with_cookie, Delivery};
use super::extract::{caller_of, lookup_session, AnyCaller, AuthUser, BearerKey, Caller, Json};
use super::SharedState;
use crate::auth::{guest_session, new_token};
use crate::error::ApiError;
use crate::livekit::client::{source_name, source_value};
use crate::livekit::token::{join_token, JoinRole};
use crate::rooms;
use crate::store::{self, RoomSettings, Session, StoreError};

pub fn routes() -> Router<SharedState> {
    Router::new()
        .route("/api/room/create", post(create))
        .route("/api/room/list", get(list))
        .route("/api/room/join", post(join))
        .route("/api/room/{name}", get(show).delete(remove))
        .route("/api/room/{name}/settings", put(settings))
        .route("/api/room/{name}/moderators/{user}", post(add_moderator).delete(remove_moderator))
        .route("/api/room/{name}/participants", get(participants))
        .route("/api/room/{name}/kick/{identity}", post(kick))
        .route("/api/room/{name}/mute/{identity}", post(mute))
        .route("/api/room/{name}/permissions/{identity}", put(permissions))
        .route("/api/room/{name}/moderators", delete(no_user))
}

async fn no_user() -> ApiError {
    ApiError::bad_request("invalid_request", "name the user: /api/room/{name}/moderators/{user}")
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateRoom {
    name: String,
    #[serde(default)]
    settings: Option<RoomSettings>,
}

async fn create(State(st): State<SharedState>, auth: AuthUser, Json(r): Json<CreateRoom>) -> Result<(StatusCode, axum::Json<Value>), ApiError> {
    let room = rooms::create(&st.store, &auth.user, &r.name, r.settings.unwrap_or_default()).await?;
    let view = rooms::get_view(&st.store, &room.name).await?;
    tracing::info!(room = %room.name, owner = %auth.user.username, "room created");
    Ok((StatusCode::CREATED, axum::Json(json!({ "room": view }))))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Page {
    limit: Option<usize>,
    after: Option<String>,
}

async fn list(State(st): State<SharedState>, auth: AuthUser, Query(p): Query<Page>) -> Result<axum::Json<Value>, ApiError> {
    let limit = p.limit.unwrap_or(50);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::bad_request("invalid_request", "limit must be 1-500"));
    }
    let rooms = rooms::list(&st.store, &auth.user, p.after, limit).await?;
    let next = (rooms.len() == limit).then(|| rooms.last().map(|r| r.name.clone())).flatten();
    Ok(axum::Json(json!({ "rooms": rooms, "next": next })))
}

async fn show(State(st): State<SharedState>, _: AuthUser, Path(name): Path<String>) -> Result<axum::Json<Value>, ApiError> {
    Ok(axum::Json(json!({ "room": rooms::get_view(&st.store, &name).await? })))
}

async fn remove(State(st): State<SharedState>, auth: AuthUser, Path(name): Path<String>) -> Result<StatusCode, ApiError> {
    rooms::managed(&st.store, &auth.user, &name).await?;
    rooms::delete(&st.store, &name).await?;
    tracing::info!(room = %name, by = %auth.user.username, "room deleted");
    Ok(StatusCode::NO_CONTENT)
}

/// Settings sent to `PUT .../settings`: any subset; the rest stays.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct SettingsPatch {
    public: Option<bool>,
    max_participants: Option<u32>,
    allow_audio: Option<bool>,
    allow_video: Option<bool>,
    allow_screen_share: Option<bool>,
    allow_chat: Option<bool>,
}

async fn settings(State(st): State<SharedState>, auth: AuthUser, Path(name): Path<String>, Json(p): Json<SettingsPatch>) -> Result<axum::Json<Value>, ApiError> {
    let room = rooms::managed(&st.store, &auth.user, &name).await?;
    let mut s = room.settings;
    s.public = p.public.unwrap_or(s.public);
    s.max_participants = p.max_participants.unwrap_or(s.max_participants);
    s.allow_audio = p.allow_audio.unwrap_or(s.allow_audio);
    s.allow_video = p.allow_video.unwrap_or(s.allow_video);
    s.allow_screen_share = p.allow_screen_share.unwrap_or(s.allow_screen_share);
    s.allow_chat = p.allow_chat.unwrap_or(s.allow_chat);
    rooms::update_settings(&st.store, &name, s).await?;
    Ok(axum::Json(json!({ "room": rooms::get_view(&st.store, &name).await? })))
}

async fn add_moderator(State(st): State<SharedState>, auth: AuthUser, Path((name, user)): Path<(String, String)>) -> Result<StatusCode, ApiError> {
    rooms::managed(&st.store, &auth.user, &name).await?;
    let added = rooms::set_moderator(&st.store, &name, &user, true).await?;
    Ok(if added { StatusCode::CREATED } else { StatusCode::NO_CONTENT })
}

async fn remove_moderator(State(st): State<SharedState>, auth: AuthUser, Path((name, user)): Path<(String, String)>) -> Result<StatusCode, ApiError> {
    rooms::managed(&st.store, &auth.user, &name).await?;
    if !rooms::set_moderator(&st.store, &name, &user, false).await? {
        return Err(ApiError::not_found("not_a_moderator", format!("{user} is not a moderator of {name}")));
    }
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct JoinRequest {
    room: String,
    #[serde(default)]
    name: Option<String>,
    /// `"cookie"`: a new guest's session goes into the browser's cookie, not the answer.
    #[serde(default)]
    session: Delivery,
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

/// Checks that the caller may join and signs a LiveKit token for them.
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
    let mut answer = json!({
        "token": token,
        "url": cfg.livekit_public_url(headers.get(HOST).and_then(|h| h.to_str().ok())),
        "room": room.name,
        "identity": joiner.identity,
        "name": joiner.name,
        "role": joiner.role,
    });
    let Some((guest_token, key, session)) = joiner.new_guest else { return Ok(axum::Json(answer).into_response()) };
    st.store.write(move |txn| store::session_put(txn, &key, &session)).await?;
    // Sent back as the bearer token (or kept in the cookie), it keeps this guest's identity on
    // the next join.
    Ok(match req.session {
        Delivery::Token => {
            answer["guestToken"] = json!(guest_token);
            axum::Json(answer).into_response()
        }
        Delivery::Cookie => with_cookie(
            axum::Json(answer).into_response(),
            set_session(&guest_token, cfg.auth.session_ttl.as_secs(), cfg.server.tls_enabled()),
        ),
    })
}

/// The live participants, for the room's managers and for whoever is in it.
async fn participants(State(st): State<SharedState>, AnyCaller(caller): AnyCaller, Path(name): Path<String>) -> Result<axum::Json<Value>, ApiError> {
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
    let list: Vec<Value> = live
        .iter()
        .map(|p| json!({ "identity": p.identity, "name": p.name, "joinedAt": p.joined_at, "tracks": p.tracks }))
        .collect();
    Ok(axum::Json(json!({ "participants": list })))
}

async fn kick(State(st): State<SharedState>, auth: AuthUser, Path((name, identity)): Path<(String, String)>) -> Result<axum::Json<Value>, ApiError> {
    rooms::managed(&st.store, &auth.user, &name).await?;
    st.client.remove_participant(&name, &identity).await?;
    tracing::info!(room = %name, identity = %identity, by = %auth.user.username, "participant removed");
    Ok(axum::Json(json!({ "removed": identity })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MuteRequest {
    source: String,
    muted: bool,
}

async fn mute(State(st): State<SharedState>, auth: AuthUser, Path((name, identity)): Path<(String, String)>, Json(m): Json<MuteRequest>) -> Result<axum::Json<Value>, ApiError> {
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
            tracks.push(json!({ "sid": t.sid, "source": source_name(t.source), "muted": t.muted }));
        }
    }
    tracing::info!(room = %name, identity = %identity, source = %m.source, muted = m.muted, by = %auth.user.username, "track mute set");
    Ok(axum::Json(json!({ "tracks": tracks })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct PermissionRequest {
    can_publish: Option<bool>,
    can_subscribe: Option<bool>,
    can_publish_data: Option<bool>,
    can_publish_sources: Option<Vec<String>>,
}

async fn permissions(State(st): State<SharedState>, auth: AuthUser, Path((name, identity)): Path<(String, String)>, Json(p): Json<PermissionRequest>) -> Result<axum::Json<Value>, ApiError> {
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
    Ok(axum::Json(json!({
        "identity": info.identity,
        "permission": {
            "canPublish": perm.can_publish,
            "canSubscribe": perm.can_subscribe,
            "canPublishData": perm.can_publish_data,
            "canPublishSources": perm.can_publish_sources.iter().map(|s| source_name(*s)).collect::<Vec<_>>(),
        }
    })))
}
