//! LiveKit's webhook: verification (JWT in `Authorization`, HS256 with our key's secret, issuer
//! = the key, `sha256` claim = the body's hash, compared in constant time) and applying each
//! event to the store exactly once, in a way that tolerates out-of-order delivery.

use base64::Engine;
use livekit_api::access_token::{AccessTokenError, Claims, TokenVerifier};
use livekit_protocol as proto;
use redb::WriteTransaction;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::client::source_name;
use super::ApiKeys;
use crate::store::{self, now_ms, RoomSession, StoreError, TrackInfo};

/// Why a webhook was refused. `code()` is the stable API code; none of them reveal the secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    #[error("no Authorization header")]
    MissingAuth,
    #[error("token was not issued with this server's API key")]
    UnknownKey,
    #[error("token signature does not verify with the API secret")]
    BadSignature,
    #[error("token has expired")]
    Expired,
    #[error("token is not valid yet")]
    NotYetValid,
    #[error("token is malformed: {0}")]
    BadToken(String),
    #[error("body hash does not match the token's sha256 claim")]
    BodyMismatch,
}

impl Rejection {
    pub fn code(&self) -> &'static str {
        match self {
            Self::MissingAuth => "missing_authorization",
            Self::UnknownKey => "unknown_api_key",
            Self::BadSignature => "invalid_signature",
            Self::Expired => "token_expired",
            Self::NotYetValid => "token_not_yet_valid",
            Self::BadToken(_) => "invalid_token",
            Self::BodyMismatch => "body_hash_mismatch",
        }
    }
}

/// Checks the `Authorization` header against the body.
pub fn verify(keys: &ApiKeys, authorization: Option<&str>, body: &[u8]) -> Result<(), Rejection> {
    let token = authorization.map(str::trim).filter(|t| !t.is_empty()).ok_or(Rejection::MissingAuth)?;
    // LiveKit sends the bare token; accept the Bearer form too.
    let token = token.strip_prefix("Bearer ").unwrap_or(token).trim();
    let unverified = Claims::from_unverified(token).map_err(|e| Rejection::BadToken(short(&e)))?;
    if unverified.iss != keys.key {
        return Err(Rejection::UnknownKey);
    }
    let claims = TokenVerifier::with_api_key(&keys.key, &keys.secret).verify(token).map_err(|e| match e {
        AccessTokenError::Encoding(e) => {
            use jsonwebtoken::errors::ErrorKind;
            match e.kind() {
                ErrorKind::ExpiredSignature => Rejection::Expired,
                ErrorKind::ImmatureSignature => Rejection::NotYetValid,
                ErrorKind::InvalidSignature => Rejection::BadSignature,
                ErrorKind::InvalidIssuer => Rejection::UnknownKey,
                _ => Rejection::BadToken(e.to_string()),
            }
        }
        other => Rejection::BadToken(other.to_string()),
    })?;
    let claimed = base64::engine::general_purpose::STANDARD
        .decode(claims.sha256.as_bytes())
        .map_err(|_| Rejection::BodyMismatch)?;
    let actual = Sha256::digest(body);
    if claimed.len() != actual.len() || !bool::from(claimed.as_slice().ct_eq(actual.as_slice())) {
        return Err(Rejection::BodyMismatch);
    }
    Ok(())
}

fn short(e: &AccessTokenError) -> String {
    e.to_string().chars().take(120).collect()
}

/// Parses LiveKit's protojson body.
pub fn parse(body: &[u8]) -> Result<proto::WebhookEvent, String> {
    let ev: proto::WebhookEvent = serde_json::from_slice(body).map_err(|e| format!("malformed event: {e}"))?;
    if ev.id.is_empty() || ev.event.is_empty() {
        return Err("event has no id or no type".into());
    }
    Ok(ev)
}

/// What applying an event did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    Applied,
    /// The id was applied before; nothing changed.
    Duplicate,
}

fn secs_to_ms(s: i64) -> u64 {
    if s <= 0 {
        now_ms()
    } else {
        (s as u64).saturating_mul(1000)
    }
}

/// Applies one event inside a write transaction. The id is recorded in the same transaction,
/// so the effect and the "seen" mark are durable together or not at all.
pub fn apply(txn: &WriteTransaction, ev: &proto::WebhookEvent) -> Result<Applied, StoreError> {
    if !store::event_mark(txn, &ev.id, now_ms())? {
        return Ok(Applied::Duplicate);
    }
    let at = secs_to_ms(ev.created_at);
    let room_name = ev.room.as_ref().map(|r| r.name.as_str()).unwrap_or("");
    match ev.event.as_str() {
        "room_started" | "room_finished" => {
            let Some(room) = &ev.room else { return Ok(Applied::Applied) };
            let mut s = store::room_session_get_w(txn, &room.name, &room.sid)?.unwrap_or(RoomSession {
                room: room.name.clone(),
                sid: room.sid.clone(),
                started_at: if room.creation_time > 0 { secs_to_ms(room.creation_time) } else { at },
                finished_at: None,
            });
            if ev.event == "room_finished" {
                s.finished_at = Some(at);
                // Everyone still listed in this LiveKit session has gone with it.
                for p in store::live_in_room_w(txn, &room.name)? {
                    if p.last_event_at <= at {
                        store::participant_leave(txn, &room.name, &p.identity, at, "room_finished")?;
                    }
                }
                // So has this meeting's lock, spotlight, admissions and stage promotions.
                store::meeting_reset(txn, &room.name, false)?;
            }
            store::room_session_put(txn, &s)?;
        }
        "participant_joined" => {
            let Some(p) = &ev.participant else { return Ok(Applied::Applied) };
            // A leave for this connection may have arrived first: then the join is history.
            if left_before(txn, &p.sid)? {
                return Ok(Applied::Applied);
            }
            if let Some(cur) = store::live_get_w(txn, room_name, &p.identity)? {
                if cur.sid != p.sid && cur.last_event_at > at {
                    // A newer connection of the same identity is already live.
                    return Ok(Applied::Applied);
                }
            }
            let joined = if p.joined_at_ms > 0 { p.joined_at_ms as u64 } else { secs_to_ms(p.joined_at) };
            let mut live = store::participant_join(txn, room_name, &p.identity, &p.sid, &p.name, joined, at)?;
            if live.tracks.is_empty() && !p.tracks.is_empty() {
                live.tracks = p.tracks.iter().map(track_info).collect();
                store::live_put(txn, room_name, &live)?;
            }
        }
        "participant_left" | "participant_connection_aborted" => {
            let Some(p) = &ev.participant else { return Ok(Applied::Applied) };
            mark_left(txn, &p.sid, at)?;
            if let Some(cur) = store::live_get_w(txn, room_name, &p.identity)? {
                if cur.sid == p.sid {
                    let reason = if ev.event == "participant_left" { "left" } else { "aborted" };
                    store::participant_leave(txn, room_name, &p.identity, at, reason)?;
                }
            }
        }
        "track_published" | "track_unpublished" => {
            let (Some(p), Some(t)) = (&ev.participant, &ev.track) else { return Ok(Applied::Applied) };
            if let Some(mut cur) = store::live_get_w(txn, room_name, &p.identity)? {
                if cur.sid == p.sid {
                    cur.tracks.retain(|x| x.sid != t.sid);
                    if ev.event == "track_published" && !track_gone(txn, &t.sid)? {
                        cur.tracks.push(track_info(t));
                    } else {
                        mark_track_gone(txn, &t.sid, at)?;
                    }
                    cur.last_event_at = cur.last_event_at.max(at);
                    store::live_put(txn, room_name, &cur)?;
                }
            } else if ev.event == "track_unpublished" {
                mark_track_gone(txn, &t.sid, at)?;
            }
        }
        e if e.starts_with("egress_") => {
            if let Some(info) = &ev.egress_info {
                // A recording bedrud started moves forward; any other egress is kept as is.
                if crate::recording::record::apply_egress(txn, info, now_ms())?.is_none() {
                    store::egress_put(txn, &info.egress_id, &serde_json::to_vec(info)?)?;
                }
            }
        }
        // ingress_* and events added by newer LiveKit versions: recorded as seen only.
        _ => {}
    }
    Ok(Applied::Applied)
}

pub fn track_info(t: &proto::TrackInfo) -> TrackInfo {
    TrackInfo { sid: t.sid.clone(), source: source_name(t.source).to_string(), muted: t.muted }
}

fn mark_left(txn: &WriteTransaction, sid: &str, at: u64) -> Result<(), StoreError> {
    store::tombstone_put(txn, &format!("left:{sid}"), at)
}

fn left_before(txn: &WriteTransaction, sid: &str) -> Result<bool, StoreError> {
    store::tombstone_exists(txn, &format!("left:{sid}"))
}

fn mark_track_gone(txn: &WriteTransaction, sid: &str, at: u64) -> Result<(), StoreError> {
    store::tombstone_put(txn, &format!("track-gone:{sid}"), at)
}

fn track_gone(txn: &WriteTransaction, sid: &str) -> Result<bool, StoreError> {
    store::tombstone_exists(txn, &format!("track-gone:{sid}"))
}
