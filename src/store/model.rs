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
    pub password_hash: String,
    pub role: Role,
    pub disabled: bool,
    pub created_at: u64,
    /// Bumped on password change and disabling: sessions of an older epoch are void.
    pub session_epoch: u64,
}

/// What the API shows of a user.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct UserView {
    pub id: String,
    pub username: String,
    pub role: Role,
    pub disabled: bool,
    #[serde(rename = "createdAt")]
    pub created_at: u64,
}

impl User {
    pub fn view(&self) -> UserView {
        UserView {
            id: self.id.clone(),
            username: self.username.clone(),
            role: self.role,
            disabled: self.disabled,
            created_at: self.created_at,
        }
    }
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }
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
