//! The binary layout of the records kept in the store (schema 3 on).
//!
//! Every record is a sequence of fields in a fixed order: integers as LEB128 varints, strings
//! as a varint header and bytes, where a string that is a canonical (lower-case, hyphenated)
//! UUID takes its 16 raw bytes instead of 36 characters. There are no field names, so a
//! change to a record's fields is a schema change with a migration (see `migrate` in
//! `mod.rs`); decoding refuses truncated or trailing bytes instead of guessing.
//!
//! Participant history, the largest table by far, stores less than its [`HistoryEntry`]: the
//! room (as a number, table `participant_history_rooms`) and the id are the row's key, the
//! display name a flag when it equals the identity, the leave time a difference from the join
//! time and the usual leave reasons one byte.

use super::model::*;
use super::StoreError;
use crate::recording::record::{Recording, Status};

/// A record with a binary layout.
pub(crate) trait Record: Sized {
    fn put(&self, w: &mut Vec<u8>);
    fn take(r: &mut Reader<'_>) -> Result<Self, StoreError>;
}

/// Encodes a record.
pub(crate) fn to_bytes<T: Record>(v: &T) -> Vec<u8> {
    let mut w = Vec::with_capacity(64);
    v.put(&mut w);
    w
}

/// Decodes a record that must take all of `bytes`.
pub(crate) fn from_bytes<T: Record>(bytes: &[u8]) -> Result<T, StoreError> {
    let mut r = Reader { buf: bytes, pos: 0 };
    let v = T::take(&mut r)?;
    if r.pos != bytes.len() {
        return Err(bad(&r, "trailing bytes"));
    }
    Ok(v)
}

pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

fn bad(r: &Reader<'_>, what: &str) -> StoreError {
    StoreError::Db(format!("malformed record at byte {} of {}: {what}", r.pos, r.buf.len()))
}

impl<'a> Reader<'a> {
    fn byte(&mut self) -> Result<u8, StoreError> {
        let b = *self.buf.get(self.pos).ok_or_else(|| bad(self, "truncated"))?;
        self.pos += 1;
        Ok(b)
    }

    fn bytes(&mut self, n: usize) -> Result<&'a [u8], StoreError> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.buf.len()).ok_or_else(|| bad(self, "truncated"))?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    pub(crate) fn u64(&mut self) -> Result<u64, StoreError> {
        let mut v: u64 = 0;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            let part = u64::from(b & 0x7f);
            if shift == 63 && part > 1 {
                return Err(bad(self, "integer overflow"));
            }
            v |= part << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(bad(self, "integer too long"))
    }

    fn u32(&mut self) -> Result<u32, StoreError> {
        let v = self.u64()?;
        u32::try_from(v).map_err(|_| bad(self, "integer out of range"))
    }

    fn bool(&mut self) -> Result<bool, StoreError> {
        match self.byte()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(bad(self, "not a boolean")),
        }
    }

    /// A string, or `None` for the "same as before" marker (see [`put_str_or_same`]).
    fn str_or_same(&mut self) -> Result<Option<String>, StoreError> {
        let head = self.u64()?;
        match head {
            0 => Ok(None),
            1 => {
                let raw: [u8; 16] = self.bytes(16)?.try_into().map_err(|_| bad(self, "truncated"))?;
                Ok(Some(uuid::Uuid::from_bytes(raw).hyphenated().to_string()))
            }
            n => {
                let len = usize::try_from(n - 2).map_err(|_| bad(self, "string too long"))?;
                let raw = self.bytes(len)?;
                let s = std::str::from_utf8(raw).map_err(|_| bad(self, "string not UTF-8"))?;
                Ok(Some(s.to_string()))
            }
        }
    }

    pub(crate) fn str(&mut self) -> Result<String, StoreError> {
        self.str_or_same()?.ok_or_else(|| bad(self, "string expected"))
    }

    fn opt_str(&mut self) -> Result<Option<String>, StoreError> {
        match self.byte()? {
            0 => Ok(None),
            1 => Ok(Some(self.str()?)),
            _ => Err(bad(self, "not an optional string")),
        }
    }

    fn opt_u32(&mut self) -> Result<Option<u32>, StoreError> {
        self.opt_u64()?.map(|v| u32::try_from(v).map_err(|_| bad(self, "integer out of range"))).transpose()
    }

    /// A count, then that many items. The count cannot exceed the bytes left (every item
    /// takes at least one), so a corrupt count fails as truncated instead of allocating.
    fn list<T>(&mut self, mut item: impl FnMut(&mut Self) -> Result<T, StoreError>) -> Result<Vec<T>, StoreError> {
        let n = self.u64()?;
        if n > (self.buf.len() - self.pos) as u64 {
            return Err(bad(self, "truncated"));
        }
        (0..n).map(|_| item(self)).collect()
    }

    /// One byte naming one of `values`.
    fn choice<T: Copy>(&mut self, values: &[T], what: &str) -> Result<T, StoreError> {
        let b = self.byte()?;
        values.get(usize::from(b)).copied().ok_or_else(|| bad(self, what))
    }

    fn opt_u64(&mut self) -> Result<Option<u64>, StoreError> {
        match self.byte()? {
            0 => Ok(None),
            1 => Ok(Some(self.u64()?)),
            _ => Err(bad(self, "not an optional integer")),
        }
    }
}

pub(crate) fn put_u64(w: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        w.push((v as u8 & 0x7f) | 0x80);
        v >>= 7;
    }
    w.push(v as u8);
}

fn put_bool(w: &mut Vec<u8>, b: bool) {
    w.push(u8::from(b));
}

/// Header 0: "same as before" (no bytes); 1: a UUID in 16 bytes; n ≥ 2: n - 2 bytes of UTF-8.
fn put_str_or_same(w: &mut Vec<u8>, s: &str, same: bool) {
    if same {
        put_u64(w, 0);
    } else if let Some(u) = canonical_uuid(s) {
        put_u64(w, 1);
        w.extend_from_slice(u.as_bytes());
    } else {
        put_u64(w, s.len() as u64 + 2);
        w.extend_from_slice(s.as_bytes());
    }
}

pub(crate) fn put_str(w: &mut Vec<u8>, s: &str) {
    put_str_or_same(w, s, false)
}

/// `s` as a UUID when it is exactly the canonical spelling, so that it decodes to itself.
fn canonical_uuid(s: &str) -> Option<uuid::Uuid> {
    if s.len() != 36 {
        return None;
    }
    let u = uuid::Uuid::try_parse(s).ok()?;
    let mut buf = uuid::Uuid::encode_buffer();
    (&*u.hyphenated().encode_lower(&mut buf) == s).then_some(u)
}

fn put_opt_str(w: &mut Vec<u8>, v: Option<&str>) {
    match v {
        None => w.push(0),
        Some(s) => {
            w.push(1);
            put_str(w, s);
        }
    }
}

/// The index of `v` in `values`, as one byte.
fn put_choice<T: PartialEq>(w: &mut Vec<u8>, values: &[T], v: &T) {
    w.push(values.iter().position(|x| x == v).expect("every variant is listed") as u8);
}

fn put_opt_u64(w: &mut Vec<u8>, v: Option<u64>) {
    match v {
        None => w.push(0),
        Some(n) => {
            w.push(1);
            put_u64(w, n);
        }
    }
}

impl Record for User {
    fn put(&self, w: &mut Vec<u8>) {
        put_str(w, &self.id);
        put_str(w, &self.username);
        put_str(w, &self.password_hash);
        w.push(match self.role {
            Role::Admin => 0,
            Role::User => 1,
        });
        put_bool(w, self.disabled);
        put_u64(w, self.created_at);
        put_u64(w, self.session_epoch);
        put_opt_str(w, self.email.as_deref());
        w.push(u8::from(self.email_verified) | u8::from(self.sso_admin) << 1);
        put_u64(w, self.identities.len() as u64);
        for i in &self.identities {
            put_str(w, &i.provider);
            put_str(w, &i.issuer);
            put_str(w, &i.subject);
        }
    }
    fn take(r: &mut Reader<'_>) -> Result<Self, StoreError> {
        let id = r.str()?;
        let username = r.str()?;
        let password_hash = r.str()?;
        let role = match r.byte()? {
            0 => Role::Admin,
            1 => Role::User,
            _ => return Err(bad(r, "unknown role")),
        };
        let disabled = r.bool()?;
        let created_at = r.u64()?;
        let session_epoch = r.u64()?;
        let email = r.opt_str()?;
        let flags = r.byte()?;
        if flags >> 2 != 0 {
            return Err(bad(r, "unknown user flag"));
        }
        let identities = r.list(|r| Ok(Identity { provider: r.str()?, issuer: r.str()?, subject: r.str()? }))?;
        Ok(User {
            id,
            username,
            password_hash,
            role,
            disabled,
            created_at,
            session_epoch,
            email,
            email_verified: flags & 1 != 0,
            identities,
            sso_admin: flags & 2 != 0,
        })
    }
}

impl Record for Session {
    fn put(&self, w: &mut Vec<u8>) {
        w.push(match self.kind {
            SessionKind::User => 0,
            SessionKind::Guest => 1,
        });
        put_str(w, &self.subject);
        put_u64(w, self.epoch);
        put_u64(w, self.created_at);
        put_u64(w, self.expires_at);
    }
    fn take(r: &mut Reader<'_>) -> Result<Self, StoreError> {
        Ok(Session {
            kind: match r.byte()? {
                0 => SessionKind::User,
                1 => SessionKind::Guest,
                _ => return Err(bad(r, "unknown session kind")),
            },
            subject: r.str()?,
            epoch: r.u64()?,
            created_at: r.u64()?,
            expires_at: r.u64()?,
        })
    }
}

/// Room settings' flags, one bit each.
const FLAGS: [fn(&mut RoomSettings) -> &mut bool; 7] = [
    |s| &mut s.public,
    |s| &mut s.allow_audio,
    |s| &mut s.allow_video,
    |s| &mut s.allow_screen_share,
    |s| &mut s.allow_chat,
    |s| &mut s.lobby,
    |s| &mut s.stage,
];

impl Record for Room {
    fn put(&self, w: &mut Vec<u8>) {
        put_str(w, &self.name);
        put_str(w, &self.owner_id);
        put_u64(w, self.created_at);
        let mut s = self.settings.clone();
        let bits = FLAGS.iter().enumerate().fold(0u8, |acc, (i, f)| acc | (u8::from(*f(&mut s)) << i));
        // The room's own flag (locked) takes the bit after the settings' ones.
        w.push(bits | u8::from(self.locked) << FLAGS.len());
        put_u64(w, u64::from(self.settings.max_participants));
        put_opt_str(w, self.spotlight.as_deref());
    }
    fn take(r: &mut Reader<'_>) -> Result<Self, StoreError> {
        let name = r.str()?;
        let owner_id = r.str()?;
        let created_at = r.u64()?;
        // Seven settings and `locked` take all eight bits.
        const _: () = assert!(FLAGS.len() + 1 == 8);
        let bits = r.byte()?;
        let mut settings = RoomSettings { max_participants: r.u32()?, ..RoomSettings::default() };
        for (i, f) in FLAGS.iter().enumerate() {
            *f(&mut settings) = bits & (1 << i) != 0;
        }
        let locked = bits & (1 << FLAGS.len()) != 0;
        Ok(Room { name, owner_id, created_at, settings, locked, spotlight: r.opt_str()? })
    }
}

impl Record for TrackInfo {
    fn put(&self, w: &mut Vec<u8>) {
        put_str(w, &self.sid);
        put_str(w, &self.source);
        put_bool(w, self.muted);
    }
    fn take(r: &mut Reader<'_>) -> Result<Self, StoreError> {
        Ok(TrackInfo { sid: r.str()?, source: r.str()?, muted: r.bool()? })
    }
}

impl Record for LiveParticipant {
    fn put(&self, w: &mut Vec<u8>) {
        put_str(w, &self.identity);
        put_str(w, &self.sid);
        put_str_or_same(w, &self.name, self.name == self.identity);
        put_u64(w, self.joined_at);
        put_u64(w, self.tracks.len() as u64);
        for t in &self.tracks {
            t.put(w);
        }
        put_u64(w, self.history_id);
        put_u64(w, self.last_event_at);
    }
    fn take(r: &mut Reader<'_>) -> Result<Self, StoreError> {
        let identity = r.str()?;
        let sid = r.str()?;
        let name = r.str_or_same()?.unwrap_or_else(|| identity.clone());
        let joined_at = r.u64()?;
        let tracks = r.list(TrackInfo::take)?;
        Ok(LiveParticipant { identity, sid, name, joined_at, tracks, history_id: r.u64()?, last_event_at: r.u64()? })
    }
}

impl Record for RoomSession {
    fn put(&self, w: &mut Vec<u8>) {
        put_str(w, &self.room);
        put_str(w, &self.sid);
        put_u64(w, self.started_at);
        put_opt_u64(w, self.finished_at);
    }
    fn take(r: &mut Reader<'_>) -> Result<Self, StoreError> {
        Ok(RoomSession { room: r.str()?, sid: r.str()?, started_at: r.u64()?, finished_at: r.opt_u64()? })
    }
}

/// A passkey's credential is webauthn-rs's own type, whose fields that crate may change
/// between versions: it is kept as the JSON that crate writes, inside the binary record.
impl Record for PasskeyRecord {
    fn put(&self, w: &mut Vec<u8>) {
        put_str(w, &self.id);
        put_str(w, &self.user_id);
        put_str(w, &self.name);
        put_u64(w, self.created_at);
        put_opt_u64(w, self.last_used_at);
        let json = serde_json::to_string(&self.passkey).expect("a passkey serializes to JSON");
        put_str(w, &json);
    }
    fn take(r: &mut Reader<'_>) -> Result<Self, StoreError> {
        let id = r.str()?;
        let user_id = r.str()?;
        let name = r.str()?;
        let created_at = r.u64()?;
        let last_used_at = r.opt_u64()?;
        let passkey = serde_json::from_str(&r.str()?).map_err(|e| bad(r, &format!("passkey: {e}")))?;
        Ok(PasskeyRecord { id, user_id, name, created_at, last_used_at, passkey })
    }
}

const MAIL_PURPOSES: [MailPurpose; 2] = [MailPurpose::Reset, MailPurpose::Verify];

impl Record for MailToken {
    fn put(&self, w: &mut Vec<u8>) {
        put_choice(w, &MAIL_PURPOSES, &self.purpose);
        put_str(w, &self.user_id);
        put_str(w, &self.email);
        put_u64(w, self.epoch);
        put_u64(w, self.expires_at);
    }
    fn take(r: &mut Reader<'_>) -> Result<Self, StoreError> {
        Ok(MailToken {
            purpose: r.choice(&MAIL_PURPOSES, "unknown mail purpose")?,
            user_id: r.str()?,
            email: r.str()?,
            epoch: r.u64()?,
            expires_at: r.u64()?,
        })
    }
}

const INVITE_ROLES: [InviteRole; 2] = [InviteRole::Participant, InviteRole::Moderator];

impl Record for Invite {
    fn put(&self, w: &mut Vec<u8>) {
        put_str(w, &self.id);
        put_str(w, &self.room);
        put_str(w, &self.token_hash);
        put_choice(w, &INVITE_ROLES, &self.role);
        put_str(w, &self.created_by);
        put_u64(w, self.created_at);
        put_opt_u64(w, self.expires_at);
        put_opt_u64(w, self.max_uses.map(u64::from));
        put_u64(w, u64::from(self.uses));
        put_opt_u64(w, self.revoked_at);
        put_bool(w, self.banned);
    }
    fn take(r: &mut Reader<'_>) -> Result<Self, StoreError> {
        Ok(Invite {
            id: r.str()?,
            room: r.str()?,
            token_hash: r.str()?,
            role: r.choice(&INVITE_ROLES, "unknown invite role")?,
            created_by: r.str()?,
            created_at: r.u64()?,
            expires_at: r.opt_u64()?,
            max_uses: r.opt_u32()?,
            uses: r.u32()?,
            revoked_at: r.opt_u64()?,
            banned: r.bool()?,
        })
    }
}

/// `None` and the lobby states, one byte.
const LOBBY: [Option<LobbyStatus>; 5] =
    [None, Some(LobbyStatus::Waiting), Some(LobbyStatus::Admitted), Some(LobbyStatus::Denied), Some(LobbyStatus::Ended)];

impl Record for Attendee {
    fn put(&self, w: &mut Vec<u8>) {
        put_str(w, &self.identity);
        put_str_or_same(w, &self.name, self.name == self.identity);
        w.push(u8::from(self.guest) | u8::from(self.moderator) << 1 | u8::from(self.speaker) << 2);
        put_opt_str(w, self.invite.as_deref());
        put_choice(w, &LOBBY, &self.lobby);
        put_u64(w, self.knocked_at);
    }
    fn take(r: &mut Reader<'_>) -> Result<Self, StoreError> {
        let identity = r.str()?;
        let name = r.str_or_same()?.unwrap_or_else(|| identity.clone());
        let flags = r.byte()?;
        if flags >> 3 != 0 {
            return Err(bad(r, "unknown attendee flag"));
        }
        Ok(Attendee {
            identity,
            name,
            guest: flags & 1 != 0,
            moderator: flags & 2 != 0,
            speaker: flags & 4 != 0,
            invite: r.opt_str()?,
            lobby: r.choice(&LOBBY, "unknown lobby status")?,
            knocked_at: r.u64()?,
        })
    }
}

impl Record for Ban {
    fn put(&self, w: &mut Vec<u8>) {
        put_str(w, &self.identity);
        put_str_or_same(w, &self.name, self.name == self.identity);
        put_bool(w, self.guest);
        put_opt_str(w, self.invite.as_deref());
        put_str(w, &self.by);
        put_u64(w, self.at);
    }
    fn take(r: &mut Reader<'_>) -> Result<Self, StoreError> {
        let identity = r.str()?;
        let name = r.str_or_same()?.unwrap_or_else(|| identity.clone());
        Ok(Ban { identity, name, guest: r.bool()?, invite: r.opt_str()?, by: r.str()?, at: r.u64()? })
    }
}

/// Leave reasons stored as one byte; others are stored as text.
const REASONS: [&str; 5] = ["left", "aborted", "replaced", "reconciled", "room_finished"];

/// A history row as stored: [`HistoryEntry`] without its room and id (both in the key).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct HistoryRow {
    pub identity: String,
    pub sid: String,
    pub name: String,
    pub joined_at: u64,
    pub left_at: Option<u64>,
    pub leave_reason: Option<String>,
}

impl HistoryRow {
    pub fn of(e: &HistoryEntry) -> HistoryRow {
        HistoryRow {
            identity: e.identity.clone(),
            sid: e.sid.clone(),
            name: e.name.clone(),
            joined_at: e.joined_at,
            left_at: e.left_at,
            leave_reason: e.leave_reason.clone(),
        }
    }

    pub fn entry(self, id: u64, room: &str) -> HistoryEntry {
        HistoryEntry {
            id,
            room: room.to_string(),
            identity: self.identity,
            sid: self.sid,
            name: self.name,
            joined_at: self.joined_at,
            left_at: self.left_at,
            leave_reason: self.leave_reason,
        }
    }
}

const RECORDING_STATUS: [Status; 7] = [
    Status::Starting,
    Status::Active,
    Status::Ending,
    Status::Complete,
    Status::Failed,
    Status::Aborted,
    Status::LimitReached,
];

impl Record for Recording {
    fn put(&self, w: &mut Vec<u8>) {
        put_str(w, &self.id);
        put_str(w, &self.room);
        put_opt_str(w, self.egress_id.as_deref());
        put_str(w, &self.started_by);
        put_str(w, &self.started_by_name);
        put_str(w, &self.layout);
        put_bool(w, self.audio_only);
        put_choice(w, &RECORDING_STATUS, &self.status);
        put_opt_str(w, self.error.as_deref());
        put_u64(w, self.requested_at);
        put_opt_u64(w, self.started_at);
        put_opt_u64(w, self.ended_at);
        put_opt_str(w, self.file.as_deref());
        put_opt_str(w, self.url.as_deref());
        put_opt_str(w, self.s3_key.as_deref());
        put_opt_str(w, self.upload_url.as_deref());
        put_opt_u64(w, self.size);
        put_opt_u64(w, self.duration_ms);
        put_u64(w, self.updated_at);
    }
    fn take(r: &mut Reader<'_>) -> Result<Self, StoreError> {
        Ok(Recording {
            id: r.str()?,
            room: r.str()?,
            egress_id: r.opt_str()?,
            started_by: r.str()?,
            started_by_name: r.str()?,
            layout: r.str()?,
            audio_only: r.bool()?,
            status: r.choice(&RECORDING_STATUS, "unknown recording status")?,
            error: r.opt_str()?,
            requested_at: r.u64()?,
            started_at: r.opt_u64()?,
            ended_at: r.opt_u64()?,
            file: r.opt_str()?,
            url: r.opt_str()?,
            s3_key: r.opt_str()?,
            upload_url: r.opt_str()?,
            size: r.opt_u64()?,
            duration_ms: r.opt_u64()?,
            updated_at: r.u64()?,
        })
    }
}

impl Record for HistoryRow {
    fn put(&self, w: &mut Vec<u8>) {
        put_str(w, &self.identity);
        put_str(w, &self.sid);
        put_str_or_same(w, &self.name, self.name == self.identity);
        put_u64(w, self.joined_at);
        // Left: 0 = still present; 1 + (left - joined) when it left after it joined, else
        // the time itself after a 1 bit.
        match self.left_at {
            None => put_u64(w, 0),
            Some(l) if l >= self.joined_at && l - self.joined_at < u64::MAX / 4 => put_u64(w, (l - self.joined_at) * 2 + 2),
            Some(l) => {
                put_u64(w, 1);
                put_u64(w, l);
            }
        }
        match self.leave_reason.as_deref() {
            None => put_u64(w, 0),
            Some(r) => match REASONS.iter().position(|k| *k == r) {
                Some(i) => put_u64(w, i as u64 + 1),
                None => {
                    put_u64(w, REASONS.len() as u64 + 1);
                    put_str(w, r);
                }
            },
        }
    }
    fn take(r: &mut Reader<'_>) -> Result<Self, StoreError> {
        let identity = r.str()?;
        let sid = r.str()?;
        let name = r.str_or_same()?.unwrap_or_else(|| identity.clone());
        let joined_at = r.u64()?;
        let left_at = match r.u64()? {
            0 => None,
            1 => Some(r.u64()?),
            n if n % 2 == 0 => Some(joined_at.checked_add((n - 2) / 2).ok_or_else(|| bad(r, "time out of range"))?),
            _ => return Err(bad(r, "unknown leave time")),
        };
        let leave_reason = match r.u64()? {
            0 => None,
            n if n as usize <= REASONS.len() => Some(REASONS[n as usize - 1].to_string()),
            n if n as usize == REASONS.len() + 1 => Some(r.str()?),
            _ => return Err(bad(r, "unknown leave reason")),
        };
        Ok(HistoryRow { identity, sid, name, joined_at, left_at, leave_reason })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round<T: Record + std::fmt::Debug + Clone>(v: &T) -> (T, usize) {
        let b = to_bytes(v);
        let back = from_bytes::<T>(&b).unwrap();
        // Every shorter prefix, and an extra byte, is refused rather than misread.
        for n in 0..b.len() {
            assert!(from_bytes::<T>(&b[..n]).is_err(), "prefix of {n} bytes accepted");
        }
        let mut longer = b.clone();
        longer.push(0);
        assert!(from_bytes::<T>(&longer).is_err());
        (back, b.len())
    }

    #[test]
    fn records_round_trip_and_history_rows_are_small() {
        let uid = "0f8fad5b-d9cb-469f-a165-70867728950e";
        let u = User {
            id: uid.into(),
            username: "ünïcode-name".into(),
            password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
            role: Role::Admin,
            disabled: true,
            created_at: 1_764_000_000_000,
            session_epoch: 3,
            email: Some("ana@example.org".into()),
            email_verified: true,
            identities: vec![
                Identity { provider: "Corp".into(), issuer: "https://id.example.org".into(), subject: "sub-1".into() },
                Identity { provider: "".into(), issuer: "x".into(), subject: uid.into() },
            ],
            sso_admin: true,
        };
        let (b, _) = round(&u);
        assert_eq!(format!("{b:?}"), format!("{u:?}"));
        for (email, email_verified, sso_admin) in [(None, false, false), (Some(""), false, true), (Some("b@c"), true, false)] {
            let v = User { email: email.map(str::to_string), email_verified, sso_admin, identities: vec![], ..u.clone() };
            assert_eq!(format!("{:?}", round(&v).0), format!("{v:?}"));
        }
        // Upper-case or braced spellings are not canonical: kept as text, so they come back as written.
        for id in ["0F8FAD5B-D9CB-469F-A165-70867728950E", "0f8fad5bd9cb469fa16570867728950e", "", "x"] {
            let (b, _) = round(&User { id: id.into(), ..u.clone() });
            assert_eq!(b.id, id);
        }
        let s = Session { kind: SessionKind::Guest, subject: "guest-1".into(), epoch: 0, created_at: 1, expires_at: u64::MAX };
        assert_eq!(format!("{:?}", round(&s).0), format!("{s:?}"));
        for settings in [
            RoomSettings::default(),
            RoomSettings { public: true, max_participants: u32::MAX, allow_audio: false, allow_video: true, allow_screen_share: false, allow_chat: false, lobby: true, stage: false },
            RoomSettings { lobby: false, stage: true, allow_video: false, ..RoomSettings::default() },
        ] {
            for (locked, spotlight) in [(false, None), (true, Some("alice")), (true, Some("")), (false, Some(uid))] {
                let room = Room { name: "weekly".into(), owner_id: uid.into(), created_at: 5, settings: settings.clone(), locked, spotlight: spotlight.map(str::to_string) };
                let (b, _) = round(&room);
                assert_eq!(format!("{b:?}"), format!("{room:?}"));
            }
        }
        let p = LiveParticipant {
            identity: "alice".into(),
            sid: "PA_x".into(),
            name: "Alice".into(),
            joined_at: 9,
            tracks: vec![TrackInfo { sid: "TR_a".into(), source: "microphone".into(), muted: true }],
            history_id: 77,
            last_event_at: 10,
        };
        assert_eq!(round(&p).0, p);
        let p2 = LiveParticipant { name: "alice".into(), tracks: vec![], ..p.clone() };
        assert_eq!(round(&p2).0, p2);
        for finished_at in [None, Some(0), Some(u64::MAX)] {
            let rs = RoomSession { room: "r".into(), sid: "RM_1".into(), started_at: 3, finished_at };
            assert_eq!(round(&rs).0, rs);
        }
        let row = HistoryRow {
            identity: uid.into(),
            sid: "PA_Fz3kWq9pLx2v".into(),
            name: uid.into(),
            joined_at: 1_764_000_000_000,
            left_at: Some(1_764_000_060_000),
            leave_reason: Some("left".into()),
        };
        let (back, len) = round(&row);
        assert_eq!(back, row);
        // 17 identity + 16 sid + 1 name + 6 join + 3 leave + 1 reason.
        assert!(len <= 44, "{len} bytes");
        for (left_at, reason) in [(None, None), (Some(0), Some("odd reason")), (Some(u64::MAX), Some("")), (Some(row.joined_at), Some("room_finished"))] {
            let r = HistoryRow { left_at, leave_reason: reason.map(str::to_string), name: "Bob".into(), ..row.clone() };
            assert_eq!(round(&r).0, r);
        }
    }

    #[test]
    fn meeting_and_sign_in_records_round_trip() {
        for purpose in [MailPurpose::Reset, MailPurpose::Verify] {
            let t = MailToken { purpose, user_id: "0f8fad5b-d9cb-469f-a165-70867728950e".into(), email: "a@b.c".into(), epoch: 7, expires_at: u64::MAX };
            assert_eq!(format!("{:?}", round(&t).0), format!("{t:?}"));
        }
        let inv = Invite {
            id: "inv-1".into(),
            room: "weekly".into(),
            token_hash: "ab".repeat(32),
            role: InviteRole::Moderator,
            created_by: "alice".into(),
            created_at: 1_764_000_000_000,
            expires_at: Some(1_764_000_600_000),
            max_uses: Some(u32::MAX),
            uses: 3,
            revoked_at: Some(0),
            banned: true,
        };
        assert_eq!(round(&inv).0, inv);
        let inv2 = Invite { role: InviteRole::Participant, expires_at: None, max_uses: None, uses: 0, revoked_at: None, banned: false, ..inv.clone() };
        assert_eq!(round(&inv2).0, inv2);
        let statuses = [None, Some(LobbyStatus::Waiting), Some(LobbyStatus::Admitted), Some(LobbyStatus::Denied), Some(LobbyStatus::Ended)];
        for (i, lobby) in statuses.into_iter().enumerate() {
            let a = Attendee {
                invite: (i % 2 == 0).then(|| "inv-1".to_string()),
                moderator: i & 1 != 0,
                speaker: i & 2 != 0,
                guest: i & 4 == 0,
                lobby,
                knocked_at: i as u64 * 1_000_000_007,
                ..Attendee::new("guest-7", if i == 3 { "guest-7" } else { "Gäst Seven" }, true)
            };
            assert_eq!(round(&a).0, a);
        }
        for (name, invite) in [("Banned One", Some("inv-1")), ("guest-9", None)] {
            let b = Ban { identity: "guest-9".into(), name: name.into(), guest: invite.is_some(), invite: invite.map(str::to_string), by: "alice".into(), at: 42 };
            assert_eq!(round(&b).0, b);
        }
        // A passkey's credential keeps every field webauthn-rs serializes.
        let passkey: webauthn_rs::prelude::Passkey = serde_json::from_value(serde_json::json!({"cred": {
            "cred_id": "uZcVDBVS68E_MtAgeQpElJxldF_6cY9sSvbWqx_qRh8wiu42lyRBRmh5yFeD_r9k130dMbFHBHI9RTFgdJQIzQ",
            "cred": {"type_": "ES256", "key": {"EC_EC2": {"curve": "SECP256R1",
                "x": [194,126,127,109,252,23,131,21,252,6,223,99,44,254,140,27,230,17,94,5,133,28,104,41,144,69,171,149,161,26,200,243],
                "y": [143,123,183,156,24,178,21,248,117,159,162,69,171,52,188,252,26,59,6,47,103,92,19,58,117,103,249,0,219,8,95,196]}}},
            "counter": 9, "transports": null, "user_verified": true, "backup_eligible": true,
            "backup_state": false, "registration_policy": "required",
            "extensions": {"cred_protect": "NotRequested", "hmac_create_secret": "NotRequested", "appid": "NotRequested", "cred_props": "Ignored"},
            "attestation": {"data": "None", "metadata": "None"}, "attestation_format": "none"}}))
        .unwrap();
        for last_used_at in [None, Some(5)] {
            let p = PasskeyRecord { id: "cred".into(), user_id: "u".into(), name: "Laptop".into(), created_at: 1, last_used_at, passkey: passkey.clone() };
            let back = round(&p).0;
            assert_eq!(serde_json::to_value(&back).unwrap(), serde_json::to_value(&p).unwrap());
        }
        // A credential that is not webauthn-rs's JSON is an error.
        let mut w = Vec::new();
        for s in ["cred", "u", "Laptop"] {
            put_str(&mut w, s);
        }
        put_u64(&mut w, 1);
        put_opt_u64(&mut w, None);
        put_str(&mut w, "{}");
        assert!(from_bytes::<PasskeyRecord>(&w).is_err());
    }

    #[test]
    fn recordings_round_trip() {
        let full = Recording {
            id: "rec_0f8fad5bd9cb469fa16570867728950e".into(),
            room: "weekly".into(),
            egress_id: Some("EG_abc".into()),
            started_by: "0f8fad5b-d9cb-469f-a165-70867728950e".into(),
            started_by_name: "ana".into(),
            layout: "grid".into(),
            audio_only: true,
            status: Status::LimitReached,
            error: Some("worker gone".into()),
            requested_at: 1_764_000_000_000,
            started_at: Some(1_764_000_001_000),
            ended_at: Some(u64::MAX),
            file: Some("/var/lib/bedrud/recordings/x.ogg".into()),
            url: Some("https://s3.example.org/b".into()),
            s3_key: Some("rec/x.ogg".into()),
            upload_url: Some("https://s3.example.org/b/rec/x.ogg".into()),
            size: Some(0),
            duration_ms: Some(10_000),
            updated_at: 7,
        };
        assert_eq!(round(&full).0, full);
        for status in RECORDING_STATUS {
            let bare = Recording::new("r", &User::new("u", String::new(), Role::User), "speaker", false, 5);
            let r = Recording { status, ..bare };
            assert_eq!(round(&r).0, r);
        }
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        for len in 0..400 {
            let bytes: Vec<u8> = (0..len % 60)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    seed as u8
                })
                .collect();
            let _ = from_bytes::<User>(&bytes);
            let _ = from_bytes::<Room>(&bytes);
            let _ = from_bytes::<LiveParticipant>(&bytes);
            let _ = from_bytes::<HistoryRow>(&bytes);
            let _ = from_bytes::<RoomSession>(&bytes);
            let _ = from_bytes::<Session>(&bytes);
            let _ = from_bytes::<MailToken>(&bytes);
            let _ = from_bytes::<PasskeyRecord>(&bytes);
            let _ = from_bytes::<Invite>(&bytes);
            let _ = from_bytes::<Attendee>(&bytes);
            let _ = from_bytes::<Ban>(&bytes);
            let _ = from_bytes::<Recording>(&bytes);
        }
        // A varint longer than 64 bits and a string longer than the record.
        assert!(from_bytes::<RoomSession>(&[0xff; 12]).is_err());
        assert!(from_bytes::<RoomSession>(&[0xff, 0xff, 0xff, 0x0f]).is_err());
    }
}
