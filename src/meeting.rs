//! Who gets into a room's meeting and who speaks in it: invite links, the lobby, the lock, bans,
//! stage speakers, raised hands and the spotlight. The rules are plain functions over what the
//! store holds; `http::rooms` (join), `http::meeting` and `http::lobby` apply them.

use axum::http::StatusCode;
use base64::Engine;
use rand::RngCore;
use serde_json::json;

use crate::auth::new_token;
use crate::error::ApiError;
use crate::livekit::token::JoinRole;
use crate::store::{Attendee, Invite, InviteRole, InviteStatus, LobbyStatus, Room};

/// The participant attribute that holds a raised hand: when it was raised (Unix ms). Only
/// bedrud sets it (UpdateParticipant); clients without `canUpdateOwnMetadata` cannot.
pub const HAND_ATTRIBUTE: &str = "hand";

/// Longest time an invite may stay valid.
pub const MAX_INVITE_SECS: u64 = 366 * 24 * 3600;
/// Most uses an invite may allow.
pub const MAX_INVITE_USES: u32 = 100_000;

/// A new invite for `room` and the secret of its link (shown once; only its hash is kept).
pub fn new_invite(room: &str, created_by: &str, role: InviteRole, expires_at: Option<u64>, max_uses: Option<u32>, now: u64) -> (Invite, String) {
    let (secret, hash) = new_token();
    let mut id = [0u8; 8];
    rand::rng().fill_bytes(&mut id);
    let invite = Invite {
        id: base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(id),
        room: room.to_string(),
        token_hash: hash,
        role,
        created_by: created_by.to_string(),
        created_at: now,
        expires_at,
        max_uses,
        uses: 0,
        revoked_at: None,
        banned: false,
    };
    (invite, secret)
}

/// An invite as the API shows it (never the secret or its hash).
#[derive(serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct InviteView {
    pub id: String,
    pub room: String,
    pub role: InviteRole,
    /// Username of the manager who made it.
    pub created_by: String,
    /// Unix ms.
    pub created_at: u64,
    /// Unix ms; `null`: never expires.
    pub expires_at: Option<u64>,
    /// `null`: no limit.
    pub max_uses: Option<u32>,
    pub uses: u32,
    pub status: InviteStatus,
}

pub fn invite_view(i: &Invite, now: u64) -> InviteView {
    InviteView {
        id: i.id.clone(),
        room: i.room.clone(),
        role: i.role,
        created_by: i.created_by.clone(),
        created_at: i.created_at,
        expires_at: i.expires_at,
        max_uses: i.max_uses,
        uses: i.uses,
        status: i.status(now),
    }
}

/// The error for an invite that no longer lets anyone in.
pub fn invite_refused(status: InviteStatus) -> ApiError {
    let (code, message) = match status {
        InviteStatus::Expired => ("invite_expired", "this invite link has expired; ask the host for a new one"),
        InviteStatus::UsedUp => ("invite_used_up", "this invite link has been used as often as it allows; ask the host for a new one"),
        InviteStatus::Revoked => ("invite_revoked", "this invite link was revoked by the host"),
        InviteStatus::Banned => ("invite_withdrawn", "this invite link was withdrawn by the host after a ban"),
        InviteStatus::Active => ("invite_active", "this invite link is valid"),
    };
    ApiError::new(StatusCode::GONE, code, message)
}

pub fn banned() -> ApiError {
    ApiError::forbidden("you are banned from this room").with_code("banned")
}

pub fn invite_not_found() -> ApiError {
    ApiError::not_found("invite_not_found", "no such invite link for this room; check the link or ask the host for a new one")
}

/// Whether `invite` still lets `attendee` in. Someone who already came in through it may come
/// back although its uses are spent.
pub fn invite_admits(invite: &Invite, attendee: Option<&Attendee>, now: u64) -> Result<(), ApiError> {
    match invite.status(now) {
        InviteStatus::Active => Ok(()),
        InviteStatus::UsedUp if attendee.is_some_and(|a| a.invite.as_deref() == Some(invite.id.as_str())) => Ok(()),
        s => Err(invite_refused(s)),
    }
}

/// What the store and the request say about one person joining one room.
pub struct JoinFacts<'a> {
    pub room: &'a Room,
    /// A signed-in user's role from their account (owner, admin, moderator, member); `None`
    /// for a guest.
    pub user_role: Option<JoinRole>,
    /// `auth.guestJoin`: guests may join public rooms without an invite.
    pub guest_join: bool,
    pub attendee: Option<&'a Attendee>,
    pub banned: bool,
    /// The invite the request names: `None` when it names none, `Some(None)` when no invite
    /// of this room has that secret.
    pub invite: Option<Option<&'a Invite>>,
    /// The joiner is in the meeting right now (a rejoin, not someone new).
    pub live_now: bool,
    /// Others in the meeting right now.
    pub live_others: u32,
    pub now: u64,
}

/// The outcome of a join.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// A LiveKit token with this role; `on_stage`: may publish.
    Enter { role: JoinRole, on_stage: bool },
    /// Waits in the lobby; no token.
    Lobby { role: JoinRole },
}

impl Admission {
    pub fn role(self) -> JoinRole {
        match self {
            Admission::Enter { role, .. } | Admission::Lobby { role } => role,
        }
    }
}

/// Decides a join. The order is the order of the answers a person sees: banned, a bad invite,
/// not allowed in, locked, full; a guest in a room with a lobby waits there.
pub fn decide(f: &JoinFacts) -> Result<Admission, ApiError> {
    if f.banned {
        return Err(banned());
    }
    let invite = match f.invite {
        None => None,
        Some(None) => return Err(invite_not_found()),
        Some(Some(i)) => {
            invite_admits(i, f.attendee, f.now)?;
            Some(i)
        }
    };
    let by_invite = invite.is_some_and(|i| i.role == InviteRole::Moderator) || f.attendee.is_some_and(|a| a.moderator);
    let role = match f.user_role {
        Some(r) if r.is_manager() => r,
        _ if by_invite => JoinRole::Moderator,
        Some(r) => r,
        None => JoinRole::Guest,
    };
    if f.user_role.is_none() && invite.is_none() && !(f.room.settings.public && f.guest_join) {
        return Err(if f.guest_join {
            ApiError::forbidden("this room is not open to guests; sign in, or ask the host for an invite link")
        } else {
            ApiError::forbidden("guest access is off; sign in, or ask the host for an invite link")
        });
    }
    let manager = role.is_manager();
    let admitted = f.attendee.is_some_and(|a| a.lobby == Some(LobbyStatus::Admitted));
    if f.room.locked && !manager && !f.live_now && !admitted {
        return Err(ApiError::forbidden("this meeting is locked: no one new may join until a host unlocks it").with_code("room_locked"));
    }
    if f.room.settings.lobby && f.user_role.is_none() && !manager && !admitted && !f.live_now {
        return Ok(Admission::Lobby { role });
    }
    let max = f.room.settings.max_participants;
    if max > 0 && f.live_others >= max {
        return Err(ApiError::conflict("room_full", format!("room {} is full ({max} participants)", f.room.name)));
    }
    let speaker = f.attendee.is_some_and(|a| a.speaker);
    Ok(Admission::Enter { role, on_stage: !f.room.settings.stage || manager || speaker })
}

/// The room metadata bedrud keeps in LiveKit, which every client reads: the lock, the
/// spotlight, and whether the room has a lobby or a stage.
pub fn room_metadata(room: &Room) -> String {
    json!({
        "locked": room.locked,
        "spotlight": room.spotlight,
        "lobby": room.settings.lobby,
        "stage": room.settings.stage,
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::RoomSettings;

    fn facts<'a>(room: &'a Room) -> JoinFacts<'a> {
        JoinFacts { room, user_role: None, guest_join: true, attendee: None, banned: false, invite: None, live_now: false, live_others: 0, now: 1_000 }
    }

    fn invite(role: InviteRole) -> Invite {
        new_invite("r", "owner", role, Some(2_000), Some(1), 0).0
    }

    #[test]
    fn guests_need_a_public_room_or_an_invite() {
        let private = Room::new("r", "o", 0, RoomSettings::default());
        assert_eq!(decide(&facts(&private)).unwrap_err().status, StatusCode::FORBIDDEN);
        let inv = invite(InviteRole::Participant);
        let f = JoinFacts { invite: Some(Some(&inv)), guest_join: false, ..facts(&private) };
        assert_eq!(decide(&f).unwrap(), Admission::Enter { role: JoinRole::Guest, on_stage: true });
        let f = JoinFacts { invite: Some(None), ..facts(&private) };
        assert_eq!(decide(&f).unwrap_err().code, "invite_not_found");
        let public = Room::new("r", "o", 0, RoomSettings { public: true, ..Default::default() });
        assert!(decide(&facts(&public)).is_ok());
        let f = JoinFacts { guest_join: false, ..facts(&public) };
        assert!(decide(&f).is_err());
        // Members need neither.
        let f = JoinFacts { user_role: Some(JoinRole::Member), guest_join: false, ..facts(&private) };
        assert_eq!(decide(&f).unwrap(), Admission::Enter { role: JoinRole::Member, on_stage: true });
    }

    #[test]
    fn spent_invites_say_why_but_let_their_own_people_back() {
        let room = Room::new("r", "o", 0, RoomSettings::default());
        let mut inv = invite(InviteRole::Moderator);
        inv.uses = 1;
        let f = JoinFacts { invite: Some(Some(&inv)), ..facts(&room) };
        assert_eq!(decide(&f).unwrap_err().code, "invite_used_up");
        let mut back = Attendee::new("g", "G", true);
        back.invite = Some(inv.id.clone());
        let f = JoinFacts { invite: Some(Some(&inv)), attendee: Some(&back), ..facts(&room) };
        assert_eq!(decide(&f).unwrap(), Admission::Enter { role: JoinRole::Moderator, on_stage: true });
        let f = JoinFacts { invite: Some(Some(&inv)), attendee: Some(&back), now: 2_000, ..facts(&room) };
        assert_eq!(decide(&f).unwrap_err().code, "invite_expired");
        inv.revoked_at = Some(5);
        let f = JoinFacts { invite: Some(Some(&inv)), attendee: Some(&back), ..facts(&room) };
        assert_eq!(decide(&f).unwrap_err().code, "invite_revoked");
    }

    #[test]
    fn ban_lock_lobby_stage() {
        let mut room = Room::new("r", "o", 0, RoomSettings { public: true, lobby: true, stage: true, ..Default::default() });
        let f = JoinFacts { banned: true, user_role: Some(JoinRole::Member), ..facts(&room) };
        assert_eq!(decide(&f).unwrap_err().code, "banned");
        // Guests wait; members and managers do not; the stage's audience does not publish.
        assert_eq!(decide(&facts(&room)).unwrap(), Admission::Lobby { role: JoinRole::Guest });
        let f = JoinFacts { user_role: Some(JoinRole::Member), ..facts(&room) };
        assert_eq!(decide(&f).unwrap(), Admission::Enter { role: JoinRole::Member, on_stage: false });
        let f = JoinFacts { user_role: Some(JoinRole::Owner), ..facts(&room) };
        assert_eq!(decide(&f).unwrap(), Admission::Enter { role: JoinRole::Owner, on_stage: true });
        let mut a = Attendee::new("g", "G", true);
        a.lobby = Some(LobbyStatus::Admitted);
        a.speaker = true;
        let f = JoinFacts { attendee: Some(&a), ..facts(&room) };
        assert_eq!(decide(&f).unwrap(), Admission::Enter { role: JoinRole::Guest, on_stage: true });
        // Locked: nobody new, except managers, those already in, and those admitted.
        room.locked = true;
        room.settings.lobby = false;
        let f = JoinFacts { user_role: Some(JoinRole::Member), ..facts(&room) };
        assert_eq!(decide(&f).unwrap_err().code, "room_locked");
        let f = JoinFacts { user_role: Some(JoinRole::Member), live_now: true, ..facts(&room) };
        assert!(decide(&f).is_ok());
        let f = JoinFacts { user_role: Some(JoinRole::Moderator), ..facts(&room) };
        assert!(decide(&f).is_ok());
        let f = JoinFacts { attendee: Some(&a), ..facts(&room) };
        assert!(decide(&f).is_ok());
        // Full counts the others only.
        room.locked = false;
        room.settings.max_participants = 2;
        let f = JoinFacts { user_role: Some(JoinRole::Member), live_others: 2, ..facts(&room) };
        assert_eq!(decide(&f).unwrap_err().code, "room_full");
    }
}
