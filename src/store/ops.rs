//! Typed operations over transactions. Write operations check everything before they change
//! anything, so a refused write leaves its transaction untouched.

use redb::{ReadTransaction, ReadableMultimapTable, ReadableTable, ReadableTableMetadata, WriteTransaction};

use super::codec::{HistoryRow, Record};
use super::model::*;
use super::*;

// ---- meta ---------------------------------------------------------------------------------

pub fn meta_get(txn: &ReadTransaction, key: &str) -> Result<Option<String>, StoreError> {
    let t = txn.open_table(META)?;
    let v = t.get(key)?.map(|v| String::from_utf8_lossy(v.value()).into_owned());
    Ok(v)
}

pub fn meta_put(txn: &WriteTransaction, key: &str, value: &str) -> Result<(), StoreError> {
    txn.open_table(META)?.insert(key, value.as_bytes())?;
    Ok(())
}

/// Stores `value` under `key` unless a value is already there; returns the one kept.
pub fn meta_put_once(txn: &WriteTransaction, key: &str, value: &str) -> Result<String, StoreError> {
    let mut t = txn.open_table(META)?;
    if let Some(v) = t.get(key)? {
        return Ok(String::from_utf8_lossy(v.value()).into_owned());
    }
    t.insert(key, value.as_bytes())?;
    Ok(value.to_string())
}

// ---- users --------------------------------------------------------------------------------

pub fn user_by_id(txn: &ReadTransaction, id: &str) -> Result<Option<User>, StoreError> {
    get_rec(&txn.open_table(USERS)?, id)
}

pub fn user_by_name(txn: &ReadTransaction, name: &str) -> Result<Option<User>, StoreError> {
    let Some(id) = txn.open_table(USERNAMES)?.get(name)?.map(|v| v.value().to_string()) else {
        return Ok(None);
    };
    user_by_id(txn, &id)
}

pub fn list_users(txn: &ReadTransaction) -> Result<Vec<User>, StoreError> {
    users_page(txn, None, usize::MAX)
}

/// Users in name order after `after`, at most `limit` (from the name index).
pub fn users_page(txn: &ReadTransaction, after: Option<&str>, limit: usize) -> Result<Vec<User>, StoreError> {
    let names = txn.open_table(USERNAMES)?;
    let users = txn.open_table(USERS)?;
    let iter = match after {
        Some(a) => names.range::<&str>((std::ops::Bound::Excluded(a), std::ops::Bound::Unbounded))?,
        None => names.range::<&str>(..)?,
    };
    let mut out = Vec::new();
    for row in iter.take(limit) {
        let (_, id) = row?;
        if let Some(u) = get_rec::<User>(&users, id.value())? {
            out.push(u);
        }
    }
    Ok(out)
}

pub fn count_users(txn: &ReadTransaction) -> Result<u64, StoreError> {
    Ok(txn.open_table(USERS)?.len()?)
}

/// Inserts a new user; `Conflict` when the name is taken.
pub fn insert_user(txn: &WriteTransaction, user: &User) -> Result<(), StoreError> {
    let mut names = txn.open_table(USERNAMES)?;
    if names.get(user.username.as_str())?.is_some() {
        return Err(StoreError::Conflict(format!("user {} already exists", user.username)));
    }
    names.insert(user.username.as_str(), user.id.as_str())?;
    txn.open_table(USERS)?.insert(user.id.as_str(), encode(user).as_slice())?;
    Ok(())
}

/// Reads a user by name inside a write transaction.
pub fn user_by_name_w(txn: &WriteTransaction, name: &str) -> Result<Option<User>, StoreError> {
    let Some(id) = txn.open_table(USERNAMES)?.get(name)?.map(|v| v.value().to_string()) else {
        return Ok(None);
    };
    get_rec(&txn.open_table(USERS)?, &id)
}

pub fn user_by_id_w(txn: &WriteTransaction, id: &str) -> Result<Option<User>, StoreError> {
    get_rec(&txn.open_table(USERS)?, id)
}

pub fn put_user(txn: &WriteTransaction, user: &User) -> Result<(), StoreError> {
    txn.open_table(USERS)?.insert(user.id.as_str(), encode(user).as_slice())?;
    Ok(())
}

/// Deletes a user and every room moderation entry naming them.
pub fn delete_user(txn: &WriteTransaction, name: &str) -> Result<User, StoreError> {
    let user = user_by_name_w(txn, name)?.ok_or(StoreError::NotFound("user"))?;
    txn.open_table(USERNAMES)?.remove(name)?;
    txn.open_table(USERS)?.remove(user.id.as_str())?;
    forget_signin(txn, &user)?;
    let rooms: Vec<(String, u8)> = {
        let t = txn.open_table(ROOMS_BY_MEMBER)?;
        let mut v = Vec::new();
        for row in t.range((user.id.as_str(), "")..)? {
            let (k, flags) = row?;
            let (u, room) = k.value();
            if u != user.id {
                break;
            }
            v.push((room.to_string(), flags.value()));
        }
        v
    };
    let mut mods = txn.open_multimap_table(MODERATORS)?;
    let mut members = txn.open_table(ROOMS_BY_MEMBER)?;
    for (r, flags) in rooms {
        mods.remove(r.as_str(), user.id.as_str())?;
        // An owned room keeps its owner record (the room outlives its owner's account).
        if flags & MEMBER_OWNER != 0 {
            members.insert((user.id.as_str(), r.as_str()), MEMBER_OWNER)?;
        } else {
            members.remove((user.id.as_str(), r.as_str()))?;
        }
    }
    Ok(user)
}

/// Sets or clears `flag` for (user, room) in the member index.
fn member_flag(txn: &WriteTransaction, user_id: &str, room: &str, flag: u8, on: bool) -> Result<(), StoreError> {
    let mut t = txn.open_table(ROOMS_BY_MEMBER)?;
    let old = t.get((user_id, room))?.map(|v| v.value()).unwrap_or(0);
    let new = if on { old | flag } else { old & !flag };
    if new == 0 {
        t.remove((user_id, room))?;
    } else if new != old {
        t.insert((user_id, room), new)?;
    }
    Ok(())
}

fn index_public(txn: &WriteTransaction, room: &Room) -> Result<(), StoreError> {
    let mut t = txn.open_table(ROOMS_PUBLIC)?;
    if room.settings.public {
        t.insert(room.name.as_str(), ())?;
    } else {
        t.remove(room.name.as_str())?;
    }
    Ok(())
}

/// Builds the room visibility indexes from the rooms and moderators (migration to schema 2).
pub fn rooms_reindex(txn: &WriteTransaction) -> Result<u64, StoreError> {
    let rooms: Vec<Room> = {
        let t = txn.open_table(ROOMS)?;
        let mut v = Vec::new();
        for row in t.iter()? {
            v.push(decode::<Room>(row?.1.value())?);
        }
        v
    };
    let mods: Vec<(String, String)> = {
        let t = txn.open_multimap_table(MODERATORS)?;
        let mut v = Vec::new();
        for row in t.iter()? {
            let (room, ids) = row?;
            for id in ids {
                v.push((room.value().to_string(), id?.value().to_string()));
            }
        }
        v
    };
    for r in &rooms {
        index_public(txn, r)?;
        member_flag(txn, &r.owner_id, &r.name, MEMBER_OWNER, true)?;
    }
    for (room, id) in &mods {
        member_flag(txn, id, room, MEMBER_MODERATOR, true)?;
    }
    Ok(rooms.len() as u64)
}

/// The rooms `user_id` may see (public, owned, moderated) in name order after `after`, at most
/// `limit`: a merge of two index ranges, so its cost follows the page, not the table.
pub fn rooms_visible(txn: &ReadTransaction, user_id: &str, after: Option<&str>, limit: usize) -> Result<Vec<Room>, StoreError> {
    use std::ops::Bound::{Excluded, Unbounded};
    let public = txn.open_table(ROOMS_PUBLIC)?;
    let members = txn.open_table(ROOMS_BY_MEMBER)?;
    let mut pub_it = match after {
        Some(a) => public.range::<&str>((Excluded(a), Unbounded))?,
        None => public.range::<&str>(..)?,
    }
    .map(|r| r.map(|(k, _)| k.value().to_string()));
    let start = (user_id, after.unwrap_or(""));
    let mut mem_it = members
        .range(start..)?
        .map(|r| {
            r.map(|(k, _)| {
                let (u, room) = k.value();
                (u == user_id).then(|| room.to_string())
            })
        })
        .filter(|r| !matches!(r, Ok(Some(room)) if Some(room.as_str()) == after))
        .map_while(|r| r.transpose());
    let rooms = txn.open_table(ROOMS)?;
    let mut out = Vec::new();
    let (mut p, mut m) = (pub_it.next().transpose()?, mem_it.next().transpose()?);
    while out.len() < limit {
        let name = match (&p, &m) {
            (None, None) => break,
            (Some(a), Some(b)) if a == b => {
                let n = a.clone();
                p = pub_it.next().transpose()?;
                m = mem_it.next().transpose()?;
                n
            }
            (Some(a), Some(b)) if a < b => {
                let n = a.clone();
                p = pub_it.next().transpose()?;
                n
            }
            (Some(a), None) => {
                let n = a.clone();
                p = pub_it.next().transpose()?;
                n
            }
            (_, Some(b)) => {
                let n = b.clone();
                m = mem_it.next().transpose()?;
                n
            }
        };
        if let Some(r) = get_rec::<Room>(&rooms, &name)? {
            out.push(r);
        }
    }
    Ok(out)
}

// ---- sessions -----------------------------------------------------------------------------

pub fn session_get(txn: &ReadTransaction, token_hash: &str) -> Result<Option<Session>, StoreError> {
    get_rec(&txn.open_table(SESSIONS)?, token_hash)
}

pub fn session_put(txn: &WriteTransaction, token_hash: &str, s: &Session) -> Result<(), StoreError> {
    txn.open_table(SESSIONS)?.insert(token_hash, encode(s).as_slice())?;
    Ok(())
}

pub fn session_delete(txn: &WriteTransaction, token_hash: &str) -> Result<bool, StoreError> {
    Ok(txn.open_table(SESSIONS)?.remove(token_hash)?.is_some())
}

/// Removes sessions past their expiry; returns how many.
pub fn sessions_prune(txn: &WriteTransaction, now: u64) -> Result<usize, StoreError> {
    let mut t = txn.open_table(SESSIONS)?;
    let mut dead = Vec::new();
    for row in t.iter()? {
        let (k, v) = row?;
        let s: Session = decode(v.value())?;
        if s.expires_at <= now {
            dead.push(k.value().to_string());
        }
    }
    for k in &dead {
        t.remove(k.as_str())?;
    }
    Ok(dead.len())
}

// ---- rooms --------------------------------------------------------------------------------

pub fn room_get(txn: &ReadTransaction, name: &str) -> Result<Option<Room>, StoreError> {
    get_rec(&txn.open_table(ROOMS)?, name)
}

pub fn room_get_w(txn: &WriteTransaction, name: &str) -> Result<Option<Room>, StoreError> {
    get_rec(&txn.open_table(ROOMS)?, name)
}

pub fn room_insert(txn: &WriteTransaction, room: &Room) -> Result<(), StoreError> {
    let mut t = txn.open_table(ROOMS)?;
    if t.get(room.name.as_str())?.is_some() {
        return Err(StoreError::Conflict(format!("room {} already exists", room.name)));
    }
    t.insert(room.name.as_str(), encode(room).as_slice())?;
    drop(t);
    index_public(txn, room)?;
    member_flag(txn, &room.owner_id, &room.name, MEMBER_OWNER, true)
}

pub fn room_put(txn: &WriteTransaction, room: &Room) -> Result<(), StoreError> {
    txn.open_table(ROOMS)?.insert(room.name.as_str(), encode(room).as_slice())?;
    index_public(txn, room)
}

/// Deletes a room with its moderators, invites, attendees and bans. Live presence and history
/// stay as records.
pub fn room_delete(txn: &WriteTransaction, name: &str) -> Result<(), StoreError> {
    let Some(room) = txn.open_table(ROOMS)?.remove(name)?.map(|v| decode::<Room>(v.value())) else {
        return Err(StoreError::NotFound("room"));
    };
    let room = room?;
    let mods: Vec<String> = {
        let mut t = txn.open_multimap_table(MODERATORS)?;
        let ids = t.remove_all(name)?.map(|id| id.map(|v| v.value().to_string())).collect::<Result<Vec<_>, _>>()?;
        ids
    };
    txn.open_table(ROOMS_PUBLIC)?.remove(name)?;
    let mut members = txn.open_table(ROOMS_BY_MEMBER)?;
    members.remove((room.owner_id.as_str(), name))?;
    for id in &mods {
        members.remove((id.as_str(), name))?;
    }
    drop(members);
    meeting_forget_room(txn, name)
}

/// Rooms in name order, starting after `after`, at most `limit`.
pub fn rooms_page(txn: &ReadTransaction, after: Option<&str>, limit: usize) -> Result<Vec<Room>, StoreError> {
    rooms_filtered(txn, after, limit, |_| true)
}

/// Rooms matching `keep`, in name order after `after`, at most `limit` (for filtered listings).
pub fn rooms_filtered(
    txn: &ReadTransaction,
    after: Option<&str>,
    limit: usize,
    mut keep: impl FnMut(&Room) -> bool,
) -> Result<Vec<Room>, StoreError> {
    let t = txn.open_table(ROOMS)?;
    let iter = match after {
        Some(a) => t.range::<&str>((std::ops::Bound::Excluded(a), std::ops::Bound::Unbounded))?,
        None => t.range::<&str>(..)?,
    };
    let mut out = Vec::new();
    for row in iter {
        let (_, v) = row?;
        let r: Room = decode(v.value())?;
        if keep(&r) {
            out.push(r);
            if out.len() >= limit {
                break;
            }
        }
    }
    Ok(out)
}

pub fn count_rooms(txn: &ReadTransaction) -> Result<u64, StoreError> {
    Ok(txn.open_table(ROOMS)?.len()?)
}

pub fn moderators(txn: &ReadTransaction, room: &str) -> Result<Vec<String>, StoreError> {
    let t = txn.open_multimap_table(MODERATORS)?;
    let mut out = Vec::new();
    for id in t.get(room)? {
        out.push(id?.value().to_string());
    }
    Ok(out)
}

pub fn is_moderator(txn: &ReadTransaction, room: &str, user_id: &str) -> Result<bool, StoreError> {
    let t = txn.open_multimap_table(MODERATORS)?;
    for id in t.get(room)? {
        if id?.value() == user_id {
            return Ok(true);
        }
    }
    Ok(false)
}

pub fn moderator_add(txn: &WriteTransaction, room: &str, user_id: &str) -> Result<bool, StoreError> {
    let added = !txn.open_multimap_table(MODERATORS)?.insert(room, user_id)?;
    member_flag(txn, user_id, room, MEMBER_MODERATOR, true)?;
    Ok(added)
}

pub fn moderator_remove(txn: &WriteTransaction, room: &str, user_id: &str) -> Result<bool, StoreError> {
    let removed = txn.open_multimap_table(MODERATORS)?.remove(room, user_id)?;
    member_flag(txn, user_id, room, MEMBER_MODERATOR, false)?;
    Ok(removed)
}

// ---- live participants and history --------------------------------------------------------

/// Rows of a `(room, x)`-keyed table whose room is `room`, decoded.
pub(super) fn room_rows<T: Record>(
    t: &impl ReadableTable<(&'static str, &'static str), &'static [u8]>,
    room: &str,
) -> Result<Vec<T>, StoreError> {
    let mut out = Vec::new();
    for row in t.range((room, "")..)? {
        let (k, v) = row?;
        if k.value().0 != room {
            break;
        }
        out.push(decode(v.value())?);
    }
    Ok(out)
}

/// Every row of a `(room, x)`-keyed table as (room, value).
fn all_room_rows<T: Record>(
    t: &impl ReadableTable<(&'static str, &'static str), &'static [u8]>,
) -> Result<Vec<(String, T)>, StoreError> {
    let mut out = Vec::new();
    for row in t.iter()? {
        let (k, v) = row?;
        out.push((k.value().0.to_string(), decode(v.value())?));
    }
    Ok(out)
}

pub fn live_in_room(txn: &ReadTransaction, room: &str) -> Result<Vec<LiveParticipant>, StoreError> {
    room_rows(&txn.open_table(LIVE)?, room)
}

pub fn live_in_room_w(txn: &WriteTransaction, room: &str) -> Result<Vec<LiveParticipant>, StoreError> {
    room_rows(&txn.open_table(LIVE)?, room)
}

/// Live participants of a room, not counting `except` (a participant re-joining).
pub fn live_count(txn: &ReadTransaction, room: &str, except: &str) -> Result<u32, StoreError> {
    let t = txn.open_table(LIVE)?;
    let mut n = 0;
    for row in t.range((room, "")..)? {
        let (k, _) = row?;
        let (r, identity) = k.value();
        if r != room {
            break;
        }
        if identity != except {
            n += 1;
        }
    }
    Ok(n)
}

/// Every live participant: (room, participant).
pub fn live_all(txn: &ReadTransaction) -> Result<Vec<(String, LiveParticipant)>, StoreError> {
    all_room_rows(&txn.open_table(LIVE)?)
}

pub fn live_all_w(txn: &WriteTransaction) -> Result<Vec<(String, LiveParticipant)>, StoreError> {
    all_room_rows(&txn.open_table(LIVE)?)
}

pub fn live_get_w(txn: &WriteTransaction, room: &str, identity: &str) -> Result<Option<LiveParticipant>, StoreError> {
    let t = txn.open_table(LIVE)?;
    let v = t.get((room, identity))?;
    match v {
        Some(v) => Ok(Some(decode(v.value())?)),
        None => Ok(None),
    }
}

pub fn live_put(txn: &WriteTransaction, room: &str, p: &LiveParticipant) -> Result<(), StoreError> {
    txn.open_table(LIVE)?.insert((room, p.identity.as_str()), encode(p).as_slice())?;
    Ok(())
}

/// Records a participant as present, opening a history row.
pub fn participant_join(
    txn: &WriteTransaction,
    room: &str,
    identity: &str,
    sid: &str,
    name: &str,
    joined_at: u64,
    event_at: u64,
) -> Result<LiveParticipant, StoreError> {
    if let Some(existing) = live_get_w(txn, room, identity)? {
        if existing.sid == sid {
            return Ok(existing);
        }
        // A new connection of the same identity replaces the old one.
        participant_leave(txn, room, identity, joined_at, "replaced")?;
    }
    let room_no = history_room_no_w(txn, room)?;
    let id = history_next_id(txn)?;
    let row = HistoryRow {
        identity: identity.to_string(),
        sid: sid.to_string(),
        name: name.to_string(),
        joined_at,
        left_at: None,
        leave_reason: None,
    };
    txn.open_table(HISTORY)?.insert((room_no, id), encode(&row).as_slice())?;
    let p = LiveParticipant {
        identity: identity.to_string(),
        sid: sid.to_string(),
        name: name.to_string(),
        joined_at,
        tracks: Vec::new(),
        history_id: id,
        last_event_at: event_at,
    };
    live_put(txn, room, &p)?;
    Ok(p)
}

/// Closes a participant's presence: removed from the live set, history row closed.
pub fn participant_leave(
    txn: &WriteTransaction,
    room: &str,
    identity: &str,
    left_at: u64,
    reason: &str,
) -> Result<Option<LiveParticipant>, StoreError> {
    let Some(p) = txn.open_table(LIVE)?.remove((room, identity))?.map(|v| decode::<LiveParticipant>(v.value())) else {
        return Ok(None);
    };
    let p = p?;
    let room_no = history_room_no_w(txn, room)?;
    let mut hist = txn.open_table(HISTORY)?;
    let row = hist.get((room_no, p.history_id))?.map(|v| decode::<HistoryRow>(v.value()));
    if let Some(row) = row {
        let mut row = row?;
        row.left_at = Some(left_at);
        row.leave_reason = Some(reason.to_string());
        hist.insert((room_no, p.history_id), encode(&row).as_slice())?;
    }
    Ok(Some(p))
}

/// The next history row id: one more than the last given (meta `history_seq`).
fn history_next_id(txn: &WriteTransaction) -> Result<u64, StoreError> {
    let mut meta = txn.open_table(META)?;
    let last = match meta.get("history_seq")? {
        Some(v) => std::str::from_utf8(v.value())
            .ok()
            .and_then(|s| s.parse::<u64>().ok())
            .ok_or_else(|| StoreError::Db("meta history_seq is not a number".into()))?,
        None => 0,
    };
    let id = last + 1;
    meta.insert("history_seq", id.to_string().as_bytes())?;
    Ok(id)
}

/// The number history rows use for `room`, given one if it has none yet.
fn history_room_no_w(txn: &WriteTransaction, room: &str) -> Result<u64, StoreError> {
    let mut t = txn.open_table(HISTORY_ROOMS)?;
    if let Some(n) = t.get(room)?.map(|v| v.value()) {
        return Ok(n);
    }
    let n = t.len()? + 1;
    t.insert(room, n)?;
    Ok(n)
}

/// The newest `limit` history rows of a room, newest first (one range of the room's rows).
pub fn history_for_room(txn: &ReadTransaction, room: &str, limit: usize) -> Result<Vec<HistoryEntry>, StoreError> {
    let Some(room_no) = txn.open_table(HISTORY_ROOMS)?.get(room)?.map(|v| v.value()) else {
        return Ok(Vec::new());
    };
    let rows = txn.open_table(HISTORY)?;
    let mut out = Vec::new();
    for row in rows.range((room_no, 0)..=(room_no, u64::MAX))?.rev().take(limit) {
        let (k, v) = row?;
        out.push(decode::<HistoryRow>(v.value())?.entry(k.value().1, room));
    }
    Ok(out)
}

/// Rewrites every record table's JSON values (schema 3 and older) in the binary layout;
/// returns how many rows. History has its own step, [`history_from_json`].
pub(crate) fn records_from_json(txn: &WriteTransaction) -> Result<u64, StoreError> {
    Ok(reencode::<&str, User>(txn, USERS)?
        + reencode::<&str, Session>(txn, SESSIONS)?
        + reencode::<&str, Room>(txn, ROOMS)?
        + reencode::<(&str, &str), LiveParticipant>(txn, LIVE)?
        + reencode::<(&str, &str), RoomSession>(txn, LK_ROOMS)?
        + reencode::<(&str, &str), PasskeyRecord>(txn, PASSKEYS)?
        + reencode::<&str, MailToken>(txn, MAIL_TOKENS)?
        + reencode::<(&str, &str), Invite>(txn, INVITES)?
        + reencode::<(&str, &str), Attendee>(txn, ATTENDEES)?
        + reencode::<(&str, &str), Ban>(txn, BANS)?
        + reencode::<&str, crate::recording::record::Recording>(txn, crate::recording::record::RECORDINGS)?)
}

fn reencode<K: redb::Key + 'static, T: serde::de::DeserializeOwned + Record>(
    txn: &WriteTransaction,
    def: redb::TableDefinition<K, &'static [u8]>,
) -> Result<u64, StoreError> {
    let rows: Vec<(Vec<u8>, Vec<u8>)> = {
        let t = txn.open_table(def)?;
        let mut v = Vec::new();
        for row in t.iter()? {
            let (k, val) = row?;
            let key = K::as_bytes(&k.value()).as_ref().to_vec();
            v.push((key, encode(&decode_json::<T>(val.value())?)));
        }
        v
    };
    let mut t = txn.open_table(def)?;
    for (k, v) in &rows {
        t.insert(K::from_bytes(k), v.as_slice())?;
    }
    Ok(rows.len() as u64)
}

/// Moves the JSON history rows of schemas 1-3 (table `participant_history`, by sequence) into
/// the binary rows keyed by room number and sequence, a chunk at a time; returns how many.
/// The old table is dropped by the caller.
pub(crate) fn history_from_json(txn: &WriteTransaction) -> Result<u64, StoreError> {
    const CHUNK: usize = 20_000;
    let mut next = 0u64;
    let mut n = 0;
    loop {
        let chunk: Vec<(u64, HistoryEntry)> = {
            let t = txn.open_table(HISTORY_V3)?;
            let mut v = Vec::with_capacity(CHUNK);
            for row in t.range(next..)?.take(CHUNK) {
                let (k, val) = row?;
                v.push((k.value(), decode_json::<HistoryEntry>(val.value())?));
            }
            v
        };
        let Some(&(last, _)) = chunk.last() else { break };
        let mut rows = txn.open_table(HISTORY)?;
        for (id, e) in &chunk {
            let room_no = history_room_no_w(txn, &e.room)?;
            rows.insert((room_no, *id), encode(&HistoryRow::of(e)).as_slice())?;
        }
        n += chunk.len() as u64;
        next = last + 1;
    }
    if next > 0 {
        meta_put(txn, "history_seq", &(next - 1).to_string())?;
    }
    Ok(n)
}

/// At most `max` closed history rows that ended before `before`, as keys for
/// [`history_remove`]; read from a snapshot so that writes go on meanwhile. Rows of
/// participants still present stay.
pub fn history_expired(txn: &ReadTransaction, before: u64, max: usize) -> Result<Vec<(u64, u64)>, StoreError> {
    let rows = txn.open_table(HISTORY)?;
    let mut out = Vec::new();
    let mut from = (0u64, 0u64);
    'rooms: loop {
        for row in rows.range(from..)? {
            let (k, v) = row?;
            let (room_no, id) = k.value();
            let e: HistoryRow = decode(v.value())?;
            if e.joined_at >= before {
                // A room's rows are in join order: the rest of this room is recent.
                match room_no.checked_add(1) {
                    Some(next) => {
                        from = (next, 0);
                        continue 'rooms;
                    }
                    None => break 'rooms,
                }
            }
            if e.left_at.is_some_and(|l| l < before) {
                out.push((room_no, id));
                if out.len() >= max {
                    break 'rooms;
                }
            }
        }
        break;
    }
    Ok(out)
}

/// Removes the history rows `keys` (from [`history_expired`]); returns how many were there.
pub fn history_remove(txn: &WriteTransaction, keys: &[(u64, u64)]) -> Result<usize, StoreError> {
    let mut rows = txn.open_table(HISTORY)?;
    let mut n = 0;
    for k in keys {
        if rows.remove(*k)?.is_some() {
            n += 1;
        }
    }
    Ok(n)
}

pub fn count_history(txn: &ReadTransaction) -> Result<u64, StoreError> {
    Ok(txn.open_table(HISTORY)?.len()?)
}

// ---- LiveKit room sessions, webhook events, egress ---------------------------------------

pub fn room_session_put(txn: &WriteTransaction, s: &RoomSession) -> Result<(), StoreError> {
    txn.open_table(LK_ROOMS)?.insert((s.room.as_str(), s.sid.as_str()), encode(s).as_slice())?;
    Ok(())
}

pub fn room_session_get_w(txn: &WriteTransaction, room: &str, sid: &str) -> Result<Option<RoomSession>, StoreError> {
    let t = txn.open_table(LK_ROOMS)?;
    let v = t.get((room, sid))?;
    match v {
        Some(v) => Ok(Some(decode(v.value())?)),
        None => Ok(None),
    }
}

pub fn room_sessions(txn: &ReadTransaction, room: &str) -> Result<Vec<RoomSession>, StoreError> {
    room_rows(&txn.open_table(LK_ROOMS)?, room)
}

/// Marks an event id as applied; false if it was applied before.
pub fn event_mark(txn: &WriteTransaction, id: &str, at: u64) -> Result<bool, StoreError> {
    let mut t = txn.open_table(EVENTS)?;
    if t.get(id)?.is_some() {
        return Ok(false);
    }
    t.insert(id, at)?;
    Ok(true)
}

pub fn event_seen(txn: &ReadTransaction, id: &str) -> Result<bool, StoreError> {
    Ok(txn.open_table(EVENTS)?.get(id)?.is_some())
}

pub fn count_events(txn: &ReadTransaction) -> Result<u64, StoreError> {
    Ok(txn.open_table(EVENTS)?.len()?)
}

pub fn egress_put(txn: &WriteTransaction, id: &str, json: &[u8]) -> Result<(), StoreError> {
    txn.open_table(EGRESS)?.insert(id, json)?;
    Ok(())
}

pub fn egress_get(txn: &ReadTransaction, id: &str) -> Result<Option<Vec<u8>>, StoreError> {
    Ok(txn.open_table(EGRESS)?.get(id)?.map(|v| v.value().to_vec()))
}

pub fn tombstone_put(txn: &WriteTransaction, key: &str, at: u64) -> Result<(), StoreError> {
    txn.open_table(TOMBSTONES)?.insert(key, at)?;
    Ok(())
}

pub fn tombstone_exists(txn: &WriteTransaction, key: &str) -> Result<bool, StoreError> {
    Ok(txn.open_table(TOMBSTONES)?.get(key)?.is_some())
}

/// Forgets webhook ids and tombstones recorded before `before` (LiveKit never delivers an
/// event older than 30 s, so a day is ample). Returns how many rows went.
pub fn prune_webhook_state(txn: &WriteTransaction, before: u64) -> Result<usize, StoreError> {
    let mut n = 0;
    let mut events = txn.open_table(EVENTS)?;
    let old: Vec<String> = events
        .iter()?
        .filter_map(|r| r.ok())
        .filter(|(_, v)| v.value() < before)
        .map(|(k, _)| k.value().to_string())
        .collect();
    for k in &old {
        events.remove(k.as_str())?;
    }
    n += old.len();
    drop(events);
    let mut tomb = txn.open_table(TOMBSTONES)?;
    let old: Vec<String> = tomb
        .iter()?
        .filter_map(|r| r.ok())
        .filter(|(_, v)| v.value() < before)
        .map(|(k, _)| k.value().to_string())
        .collect();
    for k in &old {
        tomb.remove(k.as_str())?;
    }
    Ok(n + old.len())
}
