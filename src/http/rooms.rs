//! `/api/room/*`: rooms and their settings and moderators, joining (token or lobby), the live
//! participant list, and moderation through LiveKit (kick, mute, permissions) by the meeting's
//! managers (see `meeting`).

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
use super::meeting::{apply_stage, meeting_manager, sync_metadata};
use crate::auth::{guest_session, new_token, token_key};
use crate::error::ApiError;
use crate::livekit::client::{source_name, source_value};
use crate::livekit::token::{join_token, JoinRole};
use crate::meeting::{self, Admission, JoinFacts};
use crate::rooms;
use crate::store::{self, Attendee, Invite, InviteRole, LobbyStatus, Room, RoomSettings, StoreError};

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
    lobby: Option<bool>,
    stage: Option<bool>,
}

/// Changes settings. A meeting in progress follows: turning the lobby off lets in everyone
/// waiting, turning the stage on or off changes who may publish, and every client sees the
/// room's new metadata.
async fn settings(State(st): State<SharedState>, auth: AuthUser, Path(name): Path<String>, Json(p): Json<SettingsPatch>) -> Result<axum::Json<Value>, ApiError> {
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
    /// The secret of an invite link of this room.
    #[serde(default)]
    invite: Option<String>,
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
                        a.lobby = Some(LobbyStatus::Waiting);
                        a.knocked_at = now;
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
    let mut answer = match admission {
        Admission::Lobby { .. } => {
            st.lobbies.seen(&r.room.name, &identity);
            st.lobbies.notify(&r.room.name);
            let (room, id) = (r.room.name.clone(), identity.clone());
            let position = st.store.read(move |txn| Ok(store::lobby_waiting(txn, &room)?.iter().position(|a| a.identity == id).map(|i| i + 1))).await?;
            tracing::info!(room = %r.room.name, identity = %identity, "waiting in the lobby");
            json!({ "lobby": { "status": "waiting", "position": position } })
        }
        Admission::Enter { role, on_stage } => {
            let token = join_token(&st.keys, &r.room.name, &identity, &name, &r.room.settings, role, on_stage, cfg.livekit.token_ttl).map_err(ApiError::internal)?;
            json!({ "token": token, "url": cfg.livekit_public_url(headers.get(HOST).and_then(|h| h.to_str().ok())), "canPublish": on_stage })
        }
    };
    answer["room"] = json!(r.room.name);
    answer["identity"] = json!(identity);
    answer["name"] = json!(name);
    answer["role"] = json!(role);
    let status = if lobby { StatusCode::ACCEPTED } else { StatusCode::OK };
    let Some((guest_token, _, _)) = new_guest else { return Ok((status, axum::Json(answer)).into_response()) };
    // Sent back as the bearer token (or kept in the cookie), it keeps this guest's identity on
    // the next join.
    Ok(match req.session {
        Delivery::Token => {
            answer["guestToken"] = json!(guest_token);
            (status, axum::Json(answer)).into_response()
        }
        Delivery::Cookie => with_cookie(
            (status, axum::Json(answer)).into_response(),
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
                // A guest made moderator by an invite.
                None => store::attendee_get(txn, &name, &identity)?.is_some_and(|a| a.moderator) && store::ban_get(txn, &name, &identity)?.is_none(),
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

async fn kick(State(st): State<SharedState>, AnyCaller(caller): AnyCaller, Path((name, identity)): Path<(String, String)>) -> Result<axum::Json<Value>, ApiError> {
    let m = meeting_manager(&st, &caller, &name).await?;
    st.client.remove_participant(&name, &identity).await?;
    tracing::info!(room = %name, identity = %identity, by = %m.name, "participant removed");
    Ok(axum::Json(json!({ "removed": identity })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MuteRequest {
    source: String,
    muted: bool,
}

async fn mute(State(st): State<SharedState>, AnyCaller(caller): AnyCaller, Path((name, identity)): Path<(String, String)>, Json(m): Json<MuteRequest>) -> Result<axum::Json<Value>, ApiError> {
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
            tracks.push(json!({ "sid": t.sid, "source": source_name(t.source), "muted": t.muted }));
        }
    }
    tracing::info!(room = %name, identity = %identity, source = %m.source, muted = m.muted, by = %by, "track mute set");
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

async fn permissions(State(st): State<SharedState>, AnyCaller(caller): AnyCaller, Path((name, identity)): Path<(String, String)>, Json(p): Json<PermissionRequest>) -> Result<axum::Json<Value>, ApiError> {
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
