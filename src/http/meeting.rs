//! Running a meeting: invite links (`/api/room/{name}/invites`, `/api/invite/check`), the lock,
//! bans, ending it for all, raised hands, stage speakers and the spotlight.
//!
//! Invites are made by signed-in managers (owner, moderators, admins). Everything that acts on
//! the meeting itself is open to its "meeting managers": those, plus guests who came in
//! through a moderator invite. A participant raises and lowers their own hand.

use std::collections::HashMap;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use livekit_protocol as proto;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::{AnyCaller, AuthUser, Caller, Json};
use super::SharedState;
use crate::auth::token_key;
use crate::error::{ApiError, ErrorBody};
use crate::livekit::client::{source_value, LivekitError};
use crate::livekit::token::publish_sources;
use crate::mail::Lang;
use crate::meeting::{self, InviteView, HAND_ATTRIBUTE, MAX_INVITE_SECS, MAX_INVITE_USES};
use crate::rooms;
use crate::store::{self, now_ms, Ban, InviteRole, Room, StoreError};

pub fn routes() -> OpenApiRouter<SharedState> {
    OpenApiRouter::new()
        .routes(routes!(check_invite))
        .routes(routes!(list_invites, create_invite))
        .routes(routes!(revoke_invite))
        .routes(routes!(lock))
        .routes(routes!(list_bans))
        .routes(routes!(ban, unban))
        .routes(routes!(end))
        .routes(routes!(hands))
        .routes(routes!(hand))
        .routes(routes!(promote, demote))
        .routes(routes!(spotlight))
}

/// The identity a caller has in meetings: a user's id, a guest's session subject.
pub fn caller_identity(c: &Caller) -> Option<String> {
    match c {
        Caller::User { user, .. } => Some(user.id.clone()),
        Caller::Guest { session } => Some(session.subject.clone()),
        Caller::Anonymous => None,
    }
}

/// Someone allowed to run a room's meeting.
pub struct MeetingManager {
    pub room: Room,
    pub identity: String,
    /// Username, or the display name a guest moderator joined with (for logs and bans).
    pub name: String,
}

/// Checks that `caller` runs `room`'s meeting: a signed-in manager of the room, or a guest made
/// moderator by an invite (and not banned since). 401, then 404, then 403.
pub async fn meeting_manager(st: &SharedState, caller: &Caller, room: &str) -> Result<MeetingManager, ApiError> {
    let identity = caller_identity(caller).ok_or_else(|| ApiError::unauthorized("sign in first: send Authorization: Bearer <token>"))?;
    let (caller, name, id) = (caller.clone(), room.to_string(), identity.clone());
    let (room, label) = st
        .store
        .read(move |txn| {
            let room = store::room_get(txn, &name)?.ok_or(StoreError::NotFound("room"))?;
            let label = match &caller {
                Caller::User { user, .. } => rooms::can_manage(txn, user, &room)?.then(|| user.username.clone()),
                _ => match (store::attendee_get(txn, &name, &id)?, store::ban_get(txn, &name, &id)?) {
                    (Some(a), None) if a.moderator => Some(a.name),
                    _ => None,
                },
            };
            Ok((room, label))
        })
        .await?;
    let name = label.ok_or_else(|| ApiError::forbidden("only the room's owner, its moderators and admins may do this"))?;
    Ok(MeetingManager { room, identity, name })
}

/// Whether `identity` manages `room` (so cannot be banned, demoted or given the stage).
fn identity_manages(txn: &redb::ReadTransaction, room: &Room, identity: &str) -> Result<bool, StoreError> {
    if let Some(u) = store::user_by_id(txn, identity)? {
        return rooms::can_manage(txn, &u, room);
    }
    Ok(store::attendee_get(txn, &room.name, identity)?.is_some_and(|a| a.moderator))
}

/// Pushes the room's metadata (lock, spotlight, lobby, stage) to LiveKit. A room LiveKit does
/// not have yet gets it when it starts (see the webhook).
pub async fn sync_metadata(st: &SharedState, room: &Room) -> Result<(), ApiError> {
    match st.client.update_room_metadata(&room.name, meeting::room_metadata(room)).await {
        Ok(_) => Ok(()),
        Err(LivekitError::Twirp { ref code, .. }) if code == "not_found" => Ok(()),
        Err(e) => Err(e.into()),
    }
}

// ---- invites ------------------------------------------------------------------------------

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct NewInvite {
    /// Default `participant`.
    #[serde(default)]
    role: Option<InviteRole>,
    /// Seconds from now; 0: never expires. Default 7 days.
    #[serde(default)]
    expires_in: Option<u64>,
    /// How many people may come in through it; absent: no limit.
    #[serde(default)]
    max_uses: Option<u32>,
    /// Also send the link to this address (needs `smtp.host`). If the mail cannot be sent,
    /// no invite is made.
    #[serde(default)]
    email: Option<String>,
    /// The language of that mail; default English.
    #[serde(default)]
    lang: Option<Lang>,
}

const DEFAULT_INVITE_SECS: u64 = 7 * 24 * 3600;

/// A new invite and its link, whose secret is shown this once.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(super) struct NewInviteAnswer {
    invite: InviteView,
    /// The link's secret: only its hash is kept.
    token: String,
    /// The link's path on this site.
    path: String,
    /// The address the link was mailed to, when one was asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    mailed_to: Option<String>,
}

/// Makes an invite link to the room (its managers).
#[utoipa::path(post, path = "/api/room/{name}/invites", tag = "meeting", security(("bearer" = []), ("cookie" = [])),
    params(("name" = String, Path, description = "Room name")),
    request_body = NewInvite,
    responses(
        (status = 201, description = "Created; the secret is shown only now", body = NewInviteAnswer),
        (status = 400, description = "`invalid_invite`, `invalid_email`, `invalid_json`, `invalid_request`", body = ErrorBody),
        (status = 401, description = "`unauthorized`, `invalid_session`", body = ErrorBody),
        (status = 403, description = "`forbidden`: not a manager of the room", body = ErrorBody),
        (status = 404, description = "`room_not_found`; `mail_disabled`: an `email` was given and there is no `smtp.host`", body = ErrorBody),
        (status = 413, description = "`payload_too_large`", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`", body = ErrorBody),
        (status = 502, description = "`mail_failed`: the relay's answer in the message; no invite was made", body = ErrorBody),
    ))]
async fn create_invite(State(st): State<SharedState>, auth: AuthUser, Path(name): Path<String>, Json(r): Json<NewInvite>) -> Result<(StatusCode, axum::Json<NewInviteAnswer>), ApiError> {
    let secs = r.expires_in.unwrap_or(DEFAULT_INVITE_SECS);
    if secs > MAX_INVITE_SECS {
        return Err(ApiError::bad_request("invalid_invite", format!("expiresIn must be at most {MAX_INVITE_SECS} seconds, or 0 for no expiry")));
    }
    if r.max_uses.is_some_and(|m| !(1..=MAX_INVITE_USES).contains(&m)) {
        return Err(ApiError::bad_request("invalid_invite", format!("maxUses must be 1 to {MAX_INVITE_USES}; leave it out for no limit")));
    }
    let email = r.email.as_deref().map(super::mail::email_address).transpose()?;
    let mailer = match email {
        Some(_) => Some(super::mail::mailer(&st)?),
        None => None,
    };
    rooms::managed(&st.store, &auth.user, &name).await?;
    let now = now_ms();
    let expires_at = (secs > 0).then(|| now + secs * 1000);
    let (invite, secret) = meeting::new_invite(&name, &auth.user.username, r.role.unwrap_or(InviteRole::Participant), expires_at, r.max_uses, now);
    let i = invite.clone();
    st.store.write(move |txn| store::invite_insert(txn, &i)).await?;
    // Shown this once: only its hash is kept.
    let path = format!("/r/{name}?invite={secret}");
    if let (Some(m), Some(to)) = (mailer, &email) {
        if let Err(e) = m.send_invite(to, r.lang.unwrap_or_default(), &auth.user.username, &name, &path, expires_at).await {
            tracing::warn!(room = %name, relay = %m.relay, error = %e, "invite mail not sent; the invite is withdrawn");
            let i = invite.clone();
            st.store.write(move |txn| store::invite_remove(txn, &i)).await?;
            return Err(super::mail::mail_failed("the invite mail could not be sent, so no invite was made", e));
        }
    }
    tracing::info!(room = %name, invite = %invite.id, role = ?invite.role, by = %auth.user.username, mailed = email.is_some(), "invite created");
    Ok((
        StatusCode::CREATED,
        axum::Json(NewInviteAnswer { invite: meeting::invite_view(&invite, now), path, token: secret, mailed_to: email }),
    ))
}

#[derive(Serialize, ToSchema)]
pub(super) struct Invites {
    /// Newest first.
    invites: Vec<InviteView>,
}

/// The room's invite links, spent and revoked ones too (its managers).
#[utoipa::path(get, path = "/api/room/{name}/invites", tag = "meeting", security(("bearer" = []), ("cookie" = [])),
    params(("name" = String, Path, description = "Room name")),
    responses(
        (status = 200, description = "The invites", body = Invites),
        (status = 401, description = "`unauthorized`, `invalid_session`", body = ErrorBody),
        (status = 403, description = "`forbidden`: not a manager of the room", body = ErrorBody),
        (status = 404, description = "`room_not_found`", body = ErrorBody),
    ))]
async fn list_invites(State(st): State<SharedState>, auth: AuthUser, Path(name): Path<String>) -> Result<axum::Json<Invites>, ApiError> {
    rooms::managed(&st.store, &auth.user, &name).await?;
    let mut list = st.store.read(move |txn| store::invites_of_room(txn, &name)).await?;
    list.sort_by(|a, b| b.created_at.cmp(&a.created_at));
    let now = now_ms();
    Ok(axum::Json(Invites { invites: list.iter().map(|i| meeting::invite_view(i, now)).collect() }))
}

/// Revokes an invite link: nobody new comes in through it (its managers).
#[utoipa::path(delete, path = "/api/room/{name}/invites/{id}", tag = "meeting", security(("bearer" = []), ("cookie" = [])),
    params(("name" = String, Path, description = "Room name"), ("id" = String, Path, description = "Invite id")),
    responses(
        (status = 204, description = "Revoked (or already revoked)"),
        (status = 401, description = "`unauthorized`, `invalid_session`", body = ErrorBody),
        (status = 403, description = "`forbidden`: not a manager of the room", body = ErrorBody),
        (status = 404, description = "`room_not_found`, `invite_not_found`", body = ErrorBody),
    ))]
async fn revoke_invite(State(st): State<SharedState>, auth: AuthUser, Path((name, id)): Path<(String, String)>) -> Result<StatusCode, ApiError> {
    rooms::managed(&st.store, &auth.user, &name).await?;
    let room = name.clone();
    let iid = id.clone();
    st.store
        .write(move |txn| {
            let mut inv = store::invite_get(txn, &room, &iid)?.ok_or(StoreError::NotFound("invite"))?;
            if inv.revoked_at.is_none() {
                inv.revoked_at = Some(now_ms());
                store::invite_put(txn, &inv)?;
            }
            Ok(())
        })
        .await
        .map_err(|e| match e {
            StoreError::NotFound("invite") => meeting::invite_not_found(),
            e => e.into(),
        })?;
    tracing::info!(room = %name, invite = %id, by = %auth.user.username, "invite revoked");
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct InviteCheck {
    /// The link's secret.
    token: String,
}

/// Where an invite link leads.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(super) struct InviteTarget {
    room: String,
    role: InviteRole,
    /// Unix ms; `null`: never expires.
    expires_at: Option<u64>,
}

#[derive(Serialize, ToSchema)]
pub(super) struct InviteCheckAnswer {
    invite: InviteTarget,
}

/// What an invite link leads to, for the page that opens it: anyone holding the secret. A
/// caller banned from its room is told that rather than anything about the link.
#[utoipa::path(post, path = "/api/invite/check", tag = "meeting", security((), ("bearer" = []), ("cookie" = [])),
    request_body = InviteCheck,
    responses(
        (status = 200, description = "The link is valid", body = InviteCheckAnswer),
        (status = 400, description = "`invalid_json`, `invalid_request`", body = ErrorBody),
        (status = 401, description = "`invalid_session`", body = ErrorBody),
        (status = 403, description = "`banned`: the caller is banned from its room", body = ErrorBody),
        (status = 404, description = "`invite_not_found`", body = ErrorBody),
        (status = 410, description = "`invite_expired`, `invite_used_up`, `invite_revoked`, `invite_withdrawn`", body = ErrorBody),
        (status = 413, description = "`payload_too_large`", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`", body = ErrorBody),
    ))]
async fn check_invite(State(st): State<SharedState>, AnyCaller(caller): AnyCaller, Json(c): Json<InviteCheck>) -> Result<axum::Json<InviteCheckAnswer>, ApiError> {
    let hash = token_key(c.token.trim());
    let me = caller_identity(&caller);
    let (inv, banned) = st
        .store
        .read(move |txn| {
            let Some(inv) = store::invite_by_token(txn, &hash)? else { return Ok((None, false)) };
            let banned = match &me {
                Some(id) => store::ban_get(txn, &inv.room, id)?.is_some(),
                None => false,
            };
            Ok((Some(inv), banned))
        })
        .await?;
    let inv = inv.ok_or_else(meeting::invite_not_found)?;
    if banned {
        return Err(meeting::banned());
    }
    meeting::invite_admits(&inv, None, now_ms())?;
    Ok(axum::Json(InviteCheckAnswer { invite: InviteTarget { room: inv.room, role: inv.role, expires_at: inv.expires_at } }))
}

// ---- lock ---------------------------------------------------------------------------------

/// Whether the meeting is locked: nobody new may join.
#[derive(Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct Lock {
    locked: bool,
}

/// Locks or unlocks the meeting: while locked nobody new may join (the meeting's managers).
#[utoipa::path(put, path = "/api/room/{name}/lock", tag = "meeting", security(("bearer" = []), ("cookie" = [])),
    params(("name" = String, Path, description = "Room name")),
    request_body = Lock,
    responses(
        (status = 200, description = "The lock now", body = Lock),
        (status = 400, description = "`invalid_json`, `invalid_request`", body = ErrorBody),
        (status = 401, description = "`unauthorized`, `invalid_session`", body = ErrorBody),
        (status = 403, description = "`forbidden`: does not run the meeting", body = ErrorBody),
        (status = 404, description = "`room_not_found`", body = ErrorBody),
        (status = 413, description = "`payload_too_large`", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`", body = ErrorBody),
        (status = 502, description = "`livekit_unavailable`, `livekit_auth_failed`, `livekit_error`", body = ErrorBody),
    ))]
async fn lock(State(st): State<SharedState>, AnyCaller(caller): AnyCaller, Path(name): Path<String>, Json(l): Json<Lock>) -> Result<axum::Json<Lock>, ApiError> {
    let m = meeting_manager(&st, &caller, &name).await?;
    let room = update_room(&st, &name, move |r| r.locked = l.locked).await?;
    sync_metadata(&st, &room).await?;
    st.lobbies.notify(&name);
    tracing::info!(room = %name, locked = l.locked, by = %m.name, "meeting lock set");
    Ok(axum::Json(Lock { locked: room.locked }))
}

/// Changes the room's record and returns it.
async fn update_room(st: &SharedState, name: &str, change: impl Fn(&mut Room) + Send + 'static) -> Result<Room, ApiError> {
    let name = name.to_string();
    Ok(st
        .store
        .write(move |txn| {
            let mut r = store::room_get_w(txn, &name)?.ok_or(StoreError::NotFound("room"))?;
            change(&mut r);
            store::room_put(txn, &r)?;
            Ok(r)
        })
        .await?)
}

// ---- bans ---------------------------------------------------------------------------------

#[derive(Serialize, ToSchema)]
pub(super) struct BanAnswer {
    ban: Ban,
}

/// Bans `identity`: they are removed from the meeting and the lobby, cannot come back, and the
/// invite they came through stops working (for anyone) until the ban is lifted.
#[utoipa::path(post, path = "/api/room/{name}/bans/{identity}", tag = "meeting", security(("bearer" = []), ("cookie" = [])),
    params(("name" = String, Path, description = "Room name"), ("identity" = String, Path, description = "Participant identity")),
    responses(
        (status = 201, description = "Banned", body = BanAnswer),
        (status = 200, description = "Already banned", body = BanAnswer),
        (status = 400, description = "`cannot_ban_self`, `invalid_identity`", body = ErrorBody),
        (status = 401, description = "`unauthorized`, `invalid_session`", body = ErrorBody),
        (status = 403, description = "`forbidden`: does not run the meeting, `cannot_ban_manager`", body = ErrorBody),
        (status = 404, description = "`room_not_found`", body = ErrorBody),
    ))]
async fn ban(State(st): State<SharedState>, AnyCaller(caller): AnyCaller, Path((name, identity)): Path<(String, String)>) -> Result<(StatusCode, axum::Json<BanAnswer>), ApiError> {
    let m = meeting_manager(&st, &caller, &name).await?;
    if identity == m.identity {
        return Err(ApiError::bad_request("cannot_ban_self", "you cannot ban yourself"));
    }
    if identity.is_empty() || identity.len() > 256 {
        return Err(ApiError::bad_request("invalid_identity", "identity must be 1-256 bytes"));
    }
    let (room, id) = (m.room.clone(), identity.clone());
    let (manages, live_name, user) = st
        .store
        .read(move |txn| {
            let live = store::live_in_room(txn, &room.name)?.into_iter().find(|p| p.identity == id).map(|p| p.name);
            Ok((identity_manages(txn, &room, &id)?, live, store::user_by_id(txn, &id)?))
        })
        .await?;
    if manages {
        return Err(ApiError::forbidden("the room's owner, moderators and admins cannot be banned").with_code("cannot_ban_manager"));
    }
    let (room, id, by) = (name.clone(), identity.clone(), m.name.clone());
    let (ban, created) = st
        .store
        .write(move |txn| {
            if let Some(b) = store::ban_get(txn, &room, &id)? {
                return Ok((b, false));
            }
            let attendee = store::attendee_get(txn, &room, &id)?;
            let name = live_name.clone().or_else(|| attendee.as_ref().map(|a| a.name.clone())).or_else(|| user.as_ref().map(|u| u.username.clone())).unwrap_or_else(|| id.clone());
            let invite = attendee.as_ref().and_then(|a| a.invite.clone());
            let ban = Ban { identity: id.clone(), name, guest: user.is_none(), invite: invite.clone(), by: by.clone(), at: now_ms() };
            if let Some(inv_id) = &invite {
                if let Some(mut inv) = store::invite_get(txn, &room, inv_id)? {
                    inv.banned = true;
                    store::invite_put(txn, &inv)?;
                }
            }
            store::attendee_remove(txn, &room, &id)?;
            store::ban_put(txn, &room, &ban)?;
            Ok((ban, true))
        })
        .await?;
    st.lobbies.notify(&name);
    // Out of the meeting too; someone not in it (in the lobby, or gone) is simply kept out.
    match st.client.remove_participant(&name, &identity).await {
        Ok(()) | Err(LivekitError::Twirp { .. }) => {}
        Err(e) => tracing::warn!(room = %name, identity = %identity, error = %e, "banned, but could not remove them from LiveKit"),
    }
    tracing::info!(room = %name, identity = %identity, invite = ?ban.invite, by = %m.name, "banned");
    Ok((if created { StatusCode::CREATED } else { StatusCode::OK }, axum::Json(BanAnswer { ban })))
}

/// Lifts a ban; the invite it withdrew works again (the meeting's managers).
#[utoipa::path(delete, path = "/api/room/{name}/bans/{identity}", tag = "meeting", security(("bearer" = []), ("cookie" = [])),
    params(("name" = String, Path, description = "Room name"), ("identity" = String, Path, description = "Participant identity")),
    responses(
        (status = 204, description = "Lifted"),
        (status = 401, description = "`unauthorized`, `invalid_session`", body = ErrorBody),
        (status = 403, description = "`forbidden`: does not run the meeting", body = ErrorBody),
        (status = 404, description = "`room_not_found`, `not_banned`", body = ErrorBody),
    ))]
async fn unban(State(st): State<SharedState>, AnyCaller(caller): AnyCaller, Path((name, identity)): Path<(String, String)>) -> Result<StatusCode, ApiError> {
    let m = meeting_manager(&st, &caller, &name).await?;
    let (room, id) = (name.clone(), identity.clone());
    st.store
        .write(move |txn| {
            let ban = store::ban_remove(txn, &room, &id)?.ok_or(StoreError::NotFound("ban"))?;
            // The invite works again unless another ban still holds it.
            if let Some(inv_id) = &ban.invite {
                let held = store::bans_of_room(txn, &room)?.iter().any(|b| b.invite.as_ref() == Some(inv_id));
                if let (false, Some(mut inv)) = (held, store::invite_get(txn, &room, inv_id)?) {
                    inv.banned = false;
                    store::invite_put(txn, &inv)?;
                }
            }
            Ok(())
        })
        .await
        .map_err(|e| match e {
            StoreError::NotFound("ban") => ApiError::not_found("not_banned", "that identity is not banned from this room"),
            e => e.into(),
        })?;
    tracing::info!(room = %name, identity = %identity, by = %m.name, "ban lifted");
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Serialize, ToSchema)]
pub(super) struct Bans {
    bans: Vec<Ban>,
}

/// Who is banned from the room (the meeting's managers).
#[utoipa::path(get, path = "/api/room/{name}/bans", tag = "meeting", security(("bearer" = []), ("cookie" = [])),
    params(("name" = String, Path, description = "Room name")),
    responses(
        (status = 200, description = "The bans", body = Bans),
        (status = 401, description = "`unauthorized`, `invalid_session`", body = ErrorBody),
        (status = 403, description = "`forbidden`: does not run the meeting", body = ErrorBody),
        (status = 404, description = "`room_not_found`", body = ErrorBody),
    ))]
async fn list_bans(State(st): State<SharedState>, AnyCaller(caller): AnyCaller, Path(name): Path<String>) -> Result<axum::Json<Bans>, ApiError> {
    meeting_manager(&st, &caller, &name).await?;
    let bans = st.store.read(move |txn| store::bans_of_room(txn, &name)).await?;
    Ok(axum::Json(Bans { bans }))
}

// ---- end for all --------------------------------------------------------------------------

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(super) struct Ended {
    ended: bool,
    /// Whether LiveKit had the meeting running.
    was_running: bool,
}

/// Ends the meeting for everyone: LiveKit deletes the room (each client is told), those in the
/// lobby are told, and the lock, spotlight, admissions and promotions of this meeting lapse.
#[utoipa::path(post, path = "/api/room/{name}/end", tag = "meeting", security(("bearer" = []), ("cookie" = [])),
    params(("name" = String, Path, description = "Room name")),
    responses(
        (status = 200, description = "Ended", body = Ended),
        (status = 401, description = "`unauthorized`, `invalid_session`", body = ErrorBody),
        (status = 403, description = "`forbidden`: does not run the meeting", body = ErrorBody),
        (status = 404, description = "`room_not_found`", body = ErrorBody),
        (status = 502, description = "`livekit_unavailable`, `livekit_auth_failed`, `livekit_error`", body = ErrorBody),
    ))]
async fn end(State(st): State<SharedState>, AnyCaller(caller): AnyCaller, Path(name): Path<String>) -> Result<axum::Json<Ended>, ApiError> {
    let m = meeting_manager(&st, &caller, &name).await?;
    let running = match st.client.delete_room(&name).await {
        Ok(()) => true,
        Err(LivekitError::Twirp { ref code, .. }) if code == "not_found" => false,
        Err(e) => return Err(e.into()),
    };
    let room = name.clone();
    st.store.write(move |txn| store::meeting_reset(txn, &room, true)).await?;
    st.lobbies.notify(&name);
    tracing::info!(room = %name, running, by = %m.name, "meeting ended for all");
    Ok(axum::Json(Ended { ended: true, was_running: running }))
}

// ---- hands --------------------------------------------------------------------------------

fn hand_of(p: &proto::ParticipantInfo) -> Option<u64> {
    p.attributes.get(HAND_ATTRIBUTE).and_then(|v| v.parse().ok())
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(super) struct RaisedHand {
    identity: String,
    name: String,
    /// Unix ms.
    raised_at: u64,
}

#[derive(Serialize, ToSchema)]
pub(super) struct Hands {
    /// In the order they went up.
    hands: Vec<RaisedHand>,
}

/// Raised hands in the order they went up (the room's managers and participants).
#[utoipa::path(get, path = "/api/room/{name}/hands", tag = "meeting", security(("bearer" = []), ("cookie" = [])),
    params(("name" = String, Path, description = "Room name")),
    responses(
        (status = 200, description = "The raised hands", body = Hands),
        (status = 401, description = "`unauthorized`, `invalid_session`", body = ErrorBody),
        (status = 403, description = "`forbidden`: neither in the meeting nor running it", body = ErrorBody),
        (status = 404, description = "`room_not_found`", body = ErrorBody),
        (status = 502, description = "`livekit_unavailable`, `livekit_auth_failed`, `livekit_error`", body = ErrorBody),
    ))]
async fn hands(State(st): State<SharedState>, AnyCaller(caller): AnyCaller, Path(name): Path<String>) -> Result<axum::Json<Hands>, ApiError> {
    if let Err(e) = meeting_manager(&st, &caller, &name).await {
        let Some(id) = caller_identity(&caller).filter(|_| e.status == StatusCode::FORBIDDEN) else { return Err(e) };
        let room = name.clone();
        if !st.store.read(move |txn| store::is_live(txn, &room, &id)).await? {
            return Err(ApiError::forbidden("only the room's managers and those in the meeting see its hands"));
        }
    }
    let mut up: Vec<(u64, proto::ParticipantInfo)> = match st.client.list_participants(&name).await {
        Ok(list) => list.into_iter().filter_map(|p| hand_of(&p).map(|t| (t, p))).collect(),
        Err(LivekitError::Twirp { ref code, .. }) if code == "not_found" => Vec::new(),
        Err(e) => return Err(e.into()),
    };
    up.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.identity.cmp(&b.1.identity)));
    let hands = up.into_iter().map(|(raised_at, p)| RaisedHand { identity: p.identity, name: p.name, raised_at }).collect();
    Ok(axum::Json(Hands { hands }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct Hand {
    raised: bool,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(super) struct HandAnswer {
    identity: String,
    raised: bool,
    /// Unix ms; `null` when down.
    raised_at: Option<u64>,
}

/// Raises or lowers `identity`'s hand: one's own either way; a manager may lower anyone's.
#[utoipa::path(put, path = "/api/room/{name}/hands/{identity}", tag = "meeting", security(("bearer" = []), ("cookie" = [])),
    params(("name" = String, Path, description = "Room name"), ("identity" = String, Path, description = "Participant identity")),
    request_body = Hand,
    responses(
        (status = 200, description = "The hand now", body = HandAnswer),
        (status = 400, description = "`livekit_invalid_argument`, `invalid_json`, `invalid_request`", body = ErrorBody),
        (status = 401, description = "`unauthorized`, `invalid_session`", body = ErrorBody),
        (status = 403, description = "`forbidden`: someone else's hand, which only the meeting's managers may lower", body = ErrorBody),
        (status = 404, description = "`room_not_found`, `participant_not_found`", body = ErrorBody),
        (status = 413, description = "`payload_too_large`", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`", body = ErrorBody),
        (status = 502, description = "`livekit_unavailable`, `livekit_auth_failed`, `livekit_error`", body = ErrorBody),
    ))]
async fn hand(State(st): State<SharedState>, AnyCaller(caller): AnyCaller, Path((name, identity)): Path<(String, String)>, Json(h): Json<Hand>) -> Result<axum::Json<HandAnswer>, ApiError> {
    let me = caller_identity(&caller).ok_or_else(|| ApiError::unauthorized("sign in or join as a guest first"))?;
    if me != identity {
        meeting_manager(&st, &caller, &name).await?;
        if h.raised {
            return Err(ApiError::forbidden("only the participant raises their own hand; managers may lower it"));
        }
    } else {
        let room = name.clone();
        st.store.read(move |txn| store::room_get(txn, &room)?.ok_or(StoreError::NotFound("room"))).await?;
    }
    let at = now_ms();
    let value = if h.raised { at.to_string() } else { String::new() };
    let info = st.client.update_attributes(&name, &identity, HashMap::from([(HAND_ATTRIBUTE.to_string(), value)]), None).await?;
    tracing::debug!(room = %name, identity = %identity, raised = h.raised, by = %me, "hand");
    Ok(axum::Json(HandAnswer { raised_at: hand_of(&info), identity: info.identity, raised: h.raised }))
}

// ---- stage --------------------------------------------------------------------------------

/// The permission that lets a participant publish what the room allows (or nothing).
fn stage_permission(current: Option<proto::ParticipantPermission>, room: &Room, speaks: bool) -> proto::ParticipantPermission {
    let mut perm = current.unwrap_or(proto::ParticipantPermission { can_subscribe: true, ..Default::default() });
    let sources: Vec<i32> = if speaks { publish_sources(&room.settings).iter().filter_map(|s| source_value(s)).map(|s| s as i32).collect() } else { Vec::new() };
    perm.can_publish = !sources.is_empty();
    perm.can_publish_sources = sources;
    perm.can_publish_data = room.settings.allow_chat;
    perm
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(super) struct SpeakerAnswer {
    identity: String,
    speaker: bool,
    /// What LiveKit now lets them do.
    can_publish: Option<bool>,
}

/// Lets a participant of a stage speak (the meeting's managers).
#[utoipa::path(put, path = "/api/room/{name}/speakers/{identity}", tag = "meeting", security(("bearer" = []), ("cookie" = [])),
    params(("name" = String, Path, description = "Room name"), ("identity" = String, Path, description = "Participant identity")),
    responses(
        (status = 200, description = "The participant's right to speak now", body = SpeakerAnswer),
        (status = 400, description = "`livekit_invalid_argument`", body = ErrorBody),
        (status = 401, description = "`unauthorized`, `invalid_session`", body = ErrorBody),
        (status = 403, description = "`forbidden`: does not run the meeting", body = ErrorBody),
        (status = 404, description = "`room_not_found`, `participant_not_found`", body = ErrorBody),
        (status = 409, description = "`stage_off`: the room is not a stage, `is_manager`: managers always speak", body = ErrorBody),
        (status = 502, description = "`livekit_unavailable`, `livekit_auth_failed`, `livekit_error`", body = ErrorBody),
    ))]
async fn promote(st: State<SharedState>, caller: AnyCaller, path: Path<(String, String)>) -> Result<axum::Json<SpeakerAnswer>, ApiError> {
    set_speaker(st, caller, path, true).await
}

/// Sends a speaker of a stage back to the audience (the meeting's managers).
#[utoipa::path(delete, path = "/api/room/{name}/speakers/{identity}", tag = "meeting", security(("bearer" = []), ("cookie" = [])),
    params(("name" = String, Path, description = "Room name"), ("identity" = String, Path, description = "Participant identity")),
    responses(
        (status = 200, description = "The participant's right to speak now", body = SpeakerAnswer),
        (status = 400, description = "`livekit_invalid_argument`", body = ErrorBody),
        (status = 401, description = "`unauthorized`, `invalid_session`", body = ErrorBody),
        (status = 403, description = "`forbidden`: does not run the meeting", body = ErrorBody),
        (status = 404, description = "`room_not_found`, `participant_not_found`", body = ErrorBody),
        (status = 409, description = "`stage_off`: the room is not a stage, `is_manager`: managers always speak", body = ErrorBody),
        (status = 502, description = "`livekit_unavailable`, `livekit_auth_failed`, `livekit_error`", body = ErrorBody),
    ))]
async fn demote(st: State<SharedState>, caller: AnyCaller, path: Path<(String, String)>) -> Result<axum::Json<SpeakerAnswer>, ApiError> {
    set_speaker(st, caller, path, false).await
}

/// Gives a participant of a stage the right to publish (their raised hand goes down), or takes
/// it back (LiveKit stops what they publish). Their client's controls follow at once.
async fn set_speaker(State(st): State<SharedState>, AnyCaller(caller): AnyCaller, Path((name, identity)): Path<(String, String)>, speaks: bool) -> Result<axum::Json<SpeakerAnswer>, ApiError> {
    let m = meeting_manager(&st, &caller, &name).await?;
    if !m.room.settings.stage {
        return Err(ApiError::conflict("stage_off", "this room is not a stage: everyone may publish; turn the stage on in its settings"));
    }
    let (room, id) = (m.room.clone(), identity.clone());
    let (manages, guest) = st.store.read(move |txn| Ok((identity_manages(txn, &room, &id)?, store::user_by_id(txn, &id)?.is_none()))).await?;
    if manages {
        return Err(ApiError::conflict("is_manager", "the room's owner, moderators and admins always speak"));
    }
    let current = st.client.get_participant(&name, &identity).await?;
    let (room, id, display) = (name.clone(), identity.clone(), current.name.clone());
    st.store
        .write(move |txn| {
            let mut a = store::attendee_get(txn, &room, &id)?.unwrap_or_else(|| store::Attendee::new(&id, &display, guest));
            a.speaker = speaks;
            store::attendee_put(txn, &room, &a)
        })
        .await?;
    let mut attrs = HashMap::new();
    if speaks {
        attrs.insert(HAND_ATTRIBUTE.to_string(), String::new());
    }
    let info = st.client.update_attributes(&name, &identity, attrs, Some(stage_permission(current.permission, &m.room, speaks))).await?;
    tracing::info!(room = %name, identity = %identity, speaks, by = %m.name, "stage");
    Ok(axum::Json(SpeakerAnswer { can_publish: info.permission.map(|p| p.can_publish), identity: info.identity, speaker: speaks }))
}

/// After the stage was turned on or off: everyone in the meeting who does not manage it gets
/// the publish right the stage now gives them (managers' metadata carries their role).
pub async fn apply_stage(st: &SharedState, room: &Room) -> Result<usize, ApiError> {
    let people = match st.client.list_participants(&room.name).await {
        Ok(p) => p,
        Err(LivekitError::Twirp { ref code, .. }) if code == "not_found" => return Ok(0),
        Err(e) => return Err(e.into()),
    };
    let name = room.name.clone();
    let speakers: std::collections::HashSet<String> =
        st.store.read(move |txn| Ok(store::attendees_of_room(txn, &name)?.into_iter().filter(|a| a.speaker).map(|a| a.identity).collect())).await?;
    let mut changed = 0;
    for p in people {
        let role = serde_json::from_str::<Value>(&p.metadata).ok().and_then(|m| m["role"].as_str().map(str::to_string)).unwrap_or_default();
        if matches!(role.as_str(), "owner" | "admin" | "moderator") {
            continue;
        }
        let speaks = !room.settings.stage || speakers.contains(&p.identity);
        st.client.update_permission(&room.name, &p.identity, stage_permission(p.permission, room, speaks)).await?;
        changed += 1;
    }
    Ok(changed)
}

// ---- spotlight ----------------------------------------------------------------------------

/// Who is in the spotlight; `null`: nobody.
#[derive(Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct Spotlight {
    identity: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub(super) struct SpotlightAnswer {
    /// The identity shown large; `null`: nobody.
    spotlight: Option<String>,
}

/// Shows one participant large in everyone's layout (`null`: nobody; the meeting's managers).
#[utoipa::path(put, path = "/api/room/{name}/spotlight", tag = "meeting", security(("bearer" = []), ("cookie" = [])),
    params(("name" = String, Path, description = "Room name")),
    request_body = Spotlight,
    responses(
        (status = 200, description = "The spotlight now", body = SpotlightAnswer),
        (status = 400, description = "`livekit_invalid_argument`, `invalid_json`, `invalid_request`", body = ErrorBody),
        (status = 401, description = "`unauthorized`, `invalid_session`", body = ErrorBody),
        (status = 403, description = "`forbidden`: does not run the meeting", body = ErrorBody),
        (status = 404, description = "`room_not_found`, `participant_not_found`", body = ErrorBody),
        (status = 413, description = "`payload_too_large`", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`", body = ErrorBody),
        (status = 502, description = "`livekit_unavailable`, `livekit_auth_failed`, `livekit_error`", body = ErrorBody),
    ))]
async fn spotlight(State(st): State<SharedState>, AnyCaller(caller): AnyCaller, Path(name): Path<String>, Json(s): Json<Spotlight>) -> Result<axum::Json<SpotlightAnswer>, ApiError> {
    let m = meeting_manager(&st, &caller, &name).await?;
    if let Some(id) = &s.identity {
        st.client.get_participant(&name, id).await?;
    }
    let who = s.identity.clone();
    let room = update_room(&st, &name, move |r| r.spotlight = who.clone()).await?;
    sync_metadata(&st, &room).await?;
    tracing::info!(room = %name, spotlight = ?room.spotlight, by = %m.name, "spotlight");
    Ok(axum::Json(SpotlightAnswer { spotlight: room.spotlight }))
}
