//! Records kept in the store. Times are milliseconds since the Unix epoch.

use serde::{Deserialize, Serialize};

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Admin,
    User,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct User {
    pub id: String,
    pub username: String,
    /// Argon2id hash; empty for an account that signs in only through single sign-on.
    pub password_hash: String,
    pub role: Role,
    pub disabled: bool,
    pub created_at: u64,
    /// Bumped on password change and disabling: sessions of an older epoch are void.
    pub session_epoch: u64,
    /// Lower-case e-mail address, verified or not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// The address was proven (a verification link, or a provider that says so); only
    /// verified addresses receive password resets and link accounts.
    #[serde(default)]
    pub email_verified: bool,
    /// OpenID Connect identities that sign into this account.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub identities: Vec<Identity>,
    /// The admin role came from a provider's admin group, and goes when the group does.
    #[serde(default)]
    pub sso_admin: bool,
}

/// An account at an OpenID provider: the provider's issuer and its subject identifier.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Identity {
    /// `auth.oidc[].name` at the time of linking.
    pub provider: String,
    pub issuer: String,
    pub subject: String,
}

/// What the API shows of a user.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UserView {
    pub id: String,
    pub username: String,
    pub role: Role,
    pub disabled: bool,
    pub created_at: u64,
    #[serde(default)]
    #[schema(required = true)]
    pub email: Option<String>,
    #[serde(default)]
    #[schema(required = true)]
    pub email_verified: bool,
    /// Whether the account can sign in with a password.
    #[serde(default)]
    #[schema(required = true)]
    pub has_password: bool,
    /// Names of the providers linked to the account.
    #[serde(default)]
    #[schema(required = true)]
    pub sso: Vec<String>,
}

impl User {
    /// A new, enabled account with no e-mail and no linked provider.
    pub fn new(username: &str, password_hash: String, role: Role) -> User {
        User {
            id: uuid::Uuid::new_v4().to_string(),
            username: username.to_string(),
            password_hash,
            role,
            disabled: false,
            created_at: now_ms(),
            session_epoch: 0,
            email: None,
            email_verified: false,
            identities: Vec::new(),
            sso_admin: false,
        }
    }

    pub fn view(&self) -> UserView {
        UserView {
            id: self.id.clone(),
            username: self.username.clone(),
            role: self.role,
            disabled: self.disabled,
            created_at: self.created_at,
            email: self.email.clone(),
            email_verified: self.email_verified,
            has_password: !self.password_hash.is_empty(),
            sso: self.identities.iter().map(|i| i.provider.clone()).collect(),
        }
    }
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }
}

/// A passkey registered on an account.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PasskeyRecord {
    /// The credential id, base64url: also its id in the API.
    pub id: String,
    pub user_id: String,
    /// What the user called it ("Laptop", "Phone").
    pub name: String,
    pub created_at: u64,
    pub last_used_at: Option<u64>,
    pub passkey: webauthn_rs::prelude::Passkey,
}

/// What a link sent by mail allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MailPurpose {
    /// Set a new password.
    Reset,
    /// Prove the account's e-mail address.
    Verify,
}

/// A link sent by mail, stored under the SHA-256 of its token; used once.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MailToken {
    pub purpose: MailPurpose,
    pub user_id: String,
    /// The address it was sent to: a verification link proves only that one.
    pub email: String,
    /// The user's session epoch when sent: a password change since then voids a reset link.
    pub epoch: u64,
    pub expires_at: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum SessionKind {
    User,
    /// A visitor without an account; keeps one identity for the session's life.
    Guest,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Session {
    pub kind: SessionKind,
    /// User id, or the guest's identity.
    pub subject: String,
    pub epoch: u64,
    pub created_at: u64,
    pub expires_at: u64,
}

/// Room settings; every field has a default so clients may send a subset.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct RoomSettings {
    /// Guests may join (when `auth.guestJoin` is on) and any signed-in user sees it listed.
    pub public: bool,
    /// 0 = no limit.
    pub max_participants: u32,
    pub allow_audio: bool,
    pub allow_video: bool,
    pub allow_screen_share: bool,
    pub allow_chat: bool,
    /// Guests wait in the lobby until a manager admits them.
    pub lobby: bool,
    /// Only managers and the speakers they promote may publish.
    pub stage: bool,
}

impl Default for RoomSettings {
    fn default() -> Self {
        Self {
            public: false,
            max_participants: 0,
            allow_audio: true,
            allow_video: true,
            allow_screen_share: true,
            allow_chat: true,
            lobby: false,
            stage: false,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Room {
    pub name: String,
    pub owner_id: String,
    pub created_at: u64,
    pub settings: RoomSettings,
    /// No one new is let in (managers excepted) until a manager unlocks it. Cleared when the
    /// meeting ends.
    #[serde(default)]
    pub locked: bool,
    /// The identity everyone's layout shows large. Cleared when the meeting ends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spotlight: Option<String>,
}

impl Room {
    /// A new room: unlocked, nobody in the spotlight.
    pub fn new(name: &str, owner_id: &str, created_at: u64, settings: RoomSettings) -> Self {
        Self { name: name.to_string(), owner_id: owner_id.to_string(), created_at, settings, locked: false, spotlight: None }
    }
}

/// A track a live participant publishes.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TrackInfo {
    pub sid: String,
    /// microphone, camera, screen_share, screen_share_audio, unknown
    pub source: String,
    pub muted: bool,
}

/// A participant LiveKit reports in a room right now.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LiveParticipant {
    pub identity: String,
    pub sid: String,
    pub name: String,
    pub joined_at: u64,
    pub tracks: Vec<TrackInfo>,
    /// Row in the history this presence opened.
    pub history_id: u64,
    /// LiveKit time (ms) of the newest event applied to this participant.
    pub last_event_at: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct HistoryEntry {
    pub id: u64,
    pub room: String,
    pub identity: String,
    pub sid: String,
    pub name: String,
    pub joined_at: u64,
    pub left_at: Option<u64>,
    /// left, aborted, reconciled, ...
    pub leave_reason: Option<String>,
}

/// One LiveKit session of a room, from `room_started` to `room_finished`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RoomSession {
    pub room: String,
    pub sid: String,
    pub started_at: u64,
    pub finished_at: Option<u64>,
}

/// What an invite link makes of the person who opens it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum InviteRole {
    Participant,
    Moderator,
}

/// An invite link of a room. Only the SHA-256 of the link's secret is kept.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Invite {
    pub id: String,
    pub room: String,
    pub token_hash: String,
    pub role: InviteRole,
    /// Username of the manager who made it.
    pub created_by: String,
    pub created_at: u64,
    pub expires_at: Option<u64>,
    /// `None`: no limit. A use is a new person coming in through the link.
    pub max_uses: Option<u32>,
    pub uses: u32,
    pub revoked_at: Option<u64>,
    /// Withdrawn because a person who came through it was banned; lifting that ban restores it.
    #[serde(default)]
    pub banned: bool,
}

/// Whether an invite still lets people in, and if not, why.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum InviteStatus {
    Active,
    Expired,
    UsedUp,
    Revoked,
    Banned,
}

impl Invite {
    pub fn status(&self, now: u64) -> InviteStatus {
        if self.revoked_at.is_some() {
            InviteStatus::Revoked
        } else if self.banned {
            InviteStatus::Banned
        } else if self.expires_at.is_some_and(|e| e <= now) {
            InviteStatus::Expired
        } else if self.max_uses.is_some_and(|m| self.uses >= m) {
            InviteStatus::UsedUp
        } else {
            InviteStatus::Active
        }
    }
}

/// Where a person stands in a room's lobby.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum LobbyStatus {
    Waiting,
    Admitted,
    Denied,
    /// The meeting was ended for all while they waited.
    Ended,
}

/// One person's standing in one room, kept when it matters: who came through which invite,
/// who waits in (or was let out of) the lobby, who is a moderator by invite, who may speak on
/// a stage. Keyed by (room, identity).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Attendee {
    pub identity: String,
    pub name: String,
    pub guest: bool,
    /// Id of the invite this person came in through.
    pub invite: Option<String>,
    /// Moderator of this room's meeting through a moderator invite.
    pub moderator: bool,
    /// Promoted to speak while the room is a stage.
    pub speaker: bool,
    pub lobby: Option<LobbyStatus>,
    /// When they (last) began to wait: the lobby's order.
    pub knocked_at: u64,
}

impl Attendee {
    pub fn new(identity: &str, name: &str, guest: bool) -> Self {
        Self {
            identity: identity.to_string(),
            name: name.to_string(),
            guest,
            invite: None,
            moderator: false,
            speaker: false,
            lobby: None,
            knocked_at: 0,
        }
    }
}

/// A person kept out of a room.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Ban {
    pub identity: String,
    pub name: String,
    pub guest: bool,
    /// The invite they came through, withdrawn with the ban.
    pub invite: Option<String>,
    /// Who banned them (username, or a guest moderator's name).
    pub by: String,
    pub at: u64,
}
