//! LiveKit's RoomService over Twirp (protobuf on HTTP POST), signed per call with a short-lived
//! admin token. Our own client so TLS follows `livekit.skipTLSVerify` and errors map cleanly.

use std::time::Duration;

use livekit_api::access_token::{AccessToken, VideoGrants};
use livekit_protocol as proto;
use prost::Message;

use super::ApiKeys;

/// What can go wrong talking to LiveKit.
#[derive(Debug, thiserror::Error)]
pub enum LivekitError {
    /// No connection, timeout, or a 5xx: LiveKit is not there to answer.
    #[error("LiveKit is unreachable at {url}: {message}")]
    Unavailable { url: String, message: String },
    /// LiveKit answered with a Twirp error (`not_found`, `permission_denied`, ...).
    #[error("LiveKit refused {method}: {code}: {message}")]
    Twirp { method: &'static str, code: String, message: String, status: u16 },
    #[error("cannot sign LiveKit request: {0}")]
    Token(String),
    #[error("unexpected answer from LiveKit for {method}: {message}")]
    Protocol { method: &'static str, message: String },
}

#[derive(Clone)]
pub struct RoomClient {
    http: reqwest::Client,
    base: String,
    keys: ApiKeys,
}

impl RoomClient {
    /// `base` is LiveKit's HTTP URL (`livekit.internalHost`).
    pub fn new(base: &str, keys: ApiKeys, skip_tls_verify: bool) -> Self {
        Self {
            http: super::http::client(skip_tls_verify, Duration::from_secs(10)),
            base: base.trim_end_matches('/').to_string(),
            keys,
        }
    }

    fn token(&self, grants: VideoGrants) -> Result<String, LivekitError> {
        AccessToken::with_api_key(&self.keys.key, &self.keys.secret)
            .with_ttl(Duration::from_secs(120))
            .with_grants(grants)
            .to_jwt()
            .map_err(|e| LivekitError::Token(e.to_string()))
    }

    async fn call<Req: Message, Resp: Message + Default>(
        &self,
        method: &'static str,
        req: Req,
        grants: VideoGrants,
    ) -> Result<Resp, LivekitError> {
        self.call_service("RoomService", method, req, grants).await
    }

    async fn call_service<Req: Message, Resp: Message + Default>(
        &self,
        service: &str,
        method: &'static str,
        req: Req,
        grants: VideoGrants,
    ) -> Result<Resp, LivekitError> {
        let url = format!("{}/twirp/livekit.{service}/{method}", self.base);
        let token = self.token(grants)?;
        let resp = self
            .http
            .post(&url)
            .header("Authorization", format!("Bearer {token}"))
            .header("Content-Type", "application/protobuf")
            .body(req.encode_to_vec())
            .send()
            .await
            .map_err(|e| LivekitError::Unavailable { url: self.base.clone(), message: error_chain(&e) })?;
        let status = resp.status();
        let body = resp
            .bytes()
            .await
            .map_err(|e| LivekitError::Unavailable { url: self.base.clone(), message: error_chain(&e) })?;
        if status.is_success() {
            return Resp::decode(body.as_ref())
                .map_err(|e| LivekitError::Protocol { method, message: e.to_string() });
        }
        #[derive(serde::Deserialize, Default)]
        struct TwirpError {
            #[serde(default)]
            code: String,
            #[serde(default)]
            msg: String,
        }
        let err: TwirpError = serde_json::from_slice(&body).unwrap_or_default();
        if status.is_server_error() && err.code.is_empty() {
            return Err(LivekitError::Unavailable {
                url: self.base.clone(),
                message: format!("HTTP {status}"),
            });
        }
        Err(LivekitError::Twirp {
            method,
            code: if err.code.is_empty() { status.as_str().to_string() } else { err.code },
            message: if err.msg.is_empty() { String::from_utf8_lossy(&body).trim().to_string() } else { err.msg },
            status: status.as_u16(),
        })
    }

    fn admin(room: &str) -> VideoGrants {
        VideoGrants { room_admin: true, room: room.to_string(), ..Default::default() }
    }

    pub async fn list_rooms(&self) -> Result<Vec<proto::Room>, LivekitError> {
        let grants = VideoGrants { room_list: true, ..Default::default() };
        let r: proto::ListRoomsResponse = self.call("ListRooms", proto::ListRoomsRequest::default(), grants).await?;
        Ok(r.rooms)
    }

    pub async fn list_participants(&self, room: &str) -> Result<Vec<proto::ParticipantInfo>, LivekitError> {
        let req = proto::ListParticipantsRequest { room: room.to_string() };
        let r: proto::ListParticipantsResponse = self.call("ListParticipants", req, Self::admin(room)).await?;
        Ok(r.participants)
    }

    pub async fn get_participant(&self, room: &str, identity: &str) -> Result<proto::ParticipantInfo, LivekitError> {
        let req = proto::RoomParticipantIdentity { room: room.into(), identity: identity.into(), ..Default::default() };
        self.call("GetParticipant", req, Self::admin(room)).await
    }

    pub async fn remove_participant(&self, room: &str, identity: &str) -> Result<(), LivekitError> {
        let req = proto::RoomParticipantIdentity { room: room.into(), identity: identity.into(), ..Default::default() };
        let _: proto::RemoveParticipantResponse = self.call("RemoveParticipant", req, Self::admin(room)).await?;
        Ok(())
    }

    pub async fn mute_published_track(
        &self,
        room: &str,
        identity: &str,
        track_sid: &str,
        muted: bool,
    ) -> Result<Option<proto::TrackInfo>, LivekitError> {
        let req = proto::MuteRoomTrackRequest {
            room: room.into(),
            identity: identity.into(),
            track_sid: track_sid.into(),
            muted,
        };
        let r: proto::MuteRoomTrackResponse = self.call("MutePublishedTrack", req, Self::admin(room)).await?;
        Ok(r.track)
    }

    pub async fn update_permission(
        &self,
        room: &str,
        identity: &str,
        permission: proto::ParticipantPermission,
    ) -> Result<proto::ParticipantInfo, LivekitError> {
        let req = proto::UpdateParticipantRequest {
            room: room.into(),
            identity: identity.into(),
            permission: Some(permission),
            ..Default::default()
        };
        self.call("UpdateParticipant", req, Self::admin(room)).await
    }

    /// Sets (or, with an empty value, removes) participant attributes, which every client in
    /// the room sees and which a client without `canUpdateOwnMetadata` cannot change.
    pub async fn update_attributes(
        &self,
        room: &str,
        identity: &str,
        attributes: std::collections::HashMap<String, String>,
        permission: Option<proto::ParticipantPermission>,
    ) -> Result<proto::ParticipantInfo, LivekitError> {
        let req = proto::UpdateParticipantRequest {
            room: room.into(),
            identity: identity.into(),
            attributes,
            permission,
            ..Default::default()
        };
        self.call("UpdateParticipant", req, Self::admin(room)).await
    }

    /// Replaces the room's metadata (every client sees it). The room must exist in LiveKit.
    pub async fn update_room_metadata(&self, room: &str, metadata: String) -> Result<proto::Room, LivekitError> {
        let req = proto::UpdateRoomMetadataRequest { room: room.into(), metadata };
        self.call("UpdateRoomMetadata", req, Self::admin(room)).await
    }

    /// Creates a room (`bedrud doctor`'s probe); LiveKit fills in its own defaults, such as the
    /// empty and departure timeouts, in the answer.
    pub async fn create_room(&self, name: &str, empty_timeout: u32) -> Result<proto::Room, LivekitError> {
        let req = proto::CreateRoomRequest { name: name.into(), empty_timeout, ..Default::default() };
        let grants = VideoGrants { room_create: true, ..Default::default() };
        self.call("CreateRoom", req, grants).await
    }

    /// Ends the room for everyone in it: each client is disconnected with `ROOM_DELETED`.
    pub async fn delete_room(&self, name: &str) -> Result<(), LivekitError> {
        let req = proto::DeleteRoomRequest { room: name.into() };
        let grants = VideoGrants { room_create: true, ..Default::default() };
        let _: proto::DeleteRoomResponse = self.call("DeleteRoom", req, grants).await?;
        Ok(())
    }
}

/// LiveKit's Egress service (recording), signed with `roomRecord` for the room.
impl RoomClient {
    fn recorder(room: &str) -> VideoGrants {
        VideoGrants { room_record: true, room: room.to_string(), ..Default::default() }
    }

    pub async fn start_room_composite(&self, req: proto::RoomCompositeEgressRequest) -> Result<proto::EgressInfo, LivekitError> {
        let grants = Self::recorder(&req.room_name);
        self.call_service("Egress", "StartRoomCompositeEgress", req, grants).await
    }

    pub async fn stop_egress(&self, room: &str, egress_id: &str) -> Result<proto::EgressInfo, LivekitError> {
        let req = proto::StopEgressRequest { egress_id: egress_id.to_string() };
        self.call_service("Egress", "StopEgress", req, Self::recorder(room)).await
    }

    /// One egress by id (empty when LiveKit no longer knows it).
    pub async fn list_egress(&self, room: &str, egress_id: &str) -> Result<Vec<proto::EgressInfo>, LivekitError> {
        let req = proto::ListEgressRequest { room_name: room.to_string(), egress_id: egress_id.to_string(), ..Default::default() };
        let r: proto::ListEgressResponse = self.call_service("Egress", "ListEgress", req, Self::recorder(room)).await?;
        Ok(r.items)
    }
}

/// The error with its causes, since reqwest's top-level message alone is vague.
pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

/// Our name of a track source (as used in the API and in tokens).
pub fn source_name(source: i32) -> &'static str {
    match proto::TrackSource::try_from(source) {
        Ok(proto::TrackSource::Camera) => "camera",
        Ok(proto::TrackSource::Microphone) => "microphone",
        Ok(proto::TrackSource::ScreenShare) => "screen_share",
        Ok(proto::TrackSource::ScreenShareAudio) => "screen_share_audio",
        _ => "unknown",
    }
}

/// The protobuf value of a source name, if it is one.
pub fn source_value(name: &str) -> Option<proto::TrackSource> {
    Some(match name {
        "camera" => proto::TrackSource::Camera,
        "microphone" => proto::TrackSource::Microphone,
        "screen_share" => proto::TrackSource::ScreenShare,
        "screen_share_audio" => proto::TrackSource::ScreenShareAudio,
        _ => return None,
    })
}
