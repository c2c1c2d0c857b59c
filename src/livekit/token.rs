//! Client join tokens: HS256 JWTs that livekit-server verifies, with grants derived from the
//! room's settings and the joiner's role. Never `roomAdmin` in a client token.

use std::time::Duration;

use livekit_api::access_token::{AccessToken, VideoGrants};
use serde::Serialize;

use super::ApiKeys;
use crate::store::RoomSettings;

/// How the joiner relates to the room.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum JoinRole {
    Admin,
    Owner,
    Moderator,
    Member,
    Guest,
}

impl JoinRole {
    /// Owners, admins and moderators manage the meeting (and may always publish).
    pub fn is_manager(self) -> bool {
        matches!(self, JoinRole::Admin | JoinRole::Owner | JoinRole::Moderator)
    }
}

/// The sources a participant may publish in a room with these settings.
pub fn publish_sources(s: &RoomSettings) -> Vec<String> {
    let mut v = Vec::new();
    if s.allow_audio {
        v.push("microphone".to_string());
    }
    if s.allow_video {
        v.push("camera".to_string());
    }
    if s.allow_screen_share {
        v.push("screen_share".to_string());
        if s.allow_audio {
            v.push("screen_share_audio".to_string());
        }
    }
    v
}

/// The video grant of a client token. `on_stage`: the joiner may publish at all (false for the
/// audience of a stage).
pub fn grants(room: &str, settings: &RoomSettings, role: JoinRole, on_stage: bool) -> VideoGrants {
    let sources = if on_stage { publish_sources(settings) } else { Vec::new() };
    VideoGrants {
        room_join: true,
        room: room.to_string(),
        can_publish: Some(!sources.is_empty()),
        can_subscribe: Some(true),
        can_publish_data: Some(settings.allow_chat),
        can_publish_sources: sources,
        // Moderators may rename themselves in the room; others keep the name bedrud gave them.
        can_update_own_metadata: Some(role.is_manager()),
        ..Default::default()
    }
}

/// Signs a client token for `identity` in `room`.
pub fn join_token(
    keys: &ApiKeys,
    room: &str,
    identity: &str,
    display_name: &str,
    settings: &RoomSettings,
    role: JoinRole,
    on_stage: bool,
    ttl: Duration,
) -> Result<String, String> {
    let metadata = serde_json::json!({ "role": role }).to_string();
    AccessToken::with_api_key(&keys.key, &keys.secret)
        .with_identity(identity)
        .with_name(display_name)
        .with_metadata(&metadata)
        .with_ttl(ttl)
        .with_grants(grants(room, settings, role, on_stage))
        .to_jwt()
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use livekit_api::access_token::TokenVerifier;

    #[test]
    fn grants_follow_settings() {
        let keys = ApiKeys { key: "k".into(), secret: "0123456789abcdef0123456789abcdef".into() };
        let mut s = RoomSettings { allow_screen_share: false, allow_chat: false, ..Default::default() };
        let t = join_token(&keys, "r", "id-1", "Ann", &s, JoinRole::Member, true, Duration::from_secs(600)).unwrap();
        let c = TokenVerifier::with_api_key("k", &keys.secret).verify(&t).unwrap();
        assert_eq!(c.sub, "id-1");
        assert_eq!(c.name, "Ann");
        assert!(c.video.room_join && !c.video.room_admin);
        assert_eq!(c.video.can_publish_sources, vec!["microphone", "camera"]);
        assert_eq!(c.video.can_publish_data, Some(false));
        assert!(c.exp - c.nbf >= 599 && c.exp - c.nbf <= 601);
        s.allow_audio = false;
        s.allow_video = false;
        let g = grants("r", &s, JoinRole::Guest, true);
        assert_eq!(g.can_publish, Some(false));
        assert!(g.can_publish_sources.is_empty());
        // The audience of a stage publishes nothing, whatever the room allows.
        let g = grants("r", &RoomSettings::default(), JoinRole::Member, false);
        assert_eq!((g.can_publish, g.can_publish_sources.len(), g.can_subscribe), (Some(false), 0, Some(true)));
    }
}
