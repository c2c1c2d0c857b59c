//! Typed operations for who gets into a room's meeting and who speaks: invites, attendees (lobby,
//! moderator by invite, stage speaker) and bans. Reads take either kind of transaction, so a
//! write job reads the same way a handler does.

use redb::{Key, ReadTransaction, ReadableTable, TableDefinition, Value, WriteTransaction};
use super::codec::Record;

use super::model::*;
use super::*;

/// A transaction that tables can be read from: a read transaction, or a write transaction
/// seeing its own changes.
pub trait Readable {
    fn table<K: Key + 'static, V: Value + 'static>(
        &self,
        def: TableDefinition<K, V>,
    ) -> Result<impl ReadableTable<K, V> + '_, StoreError>;
}

impl Readable for ReadTransaction {
    fn table<K: Key + 'static, V: Value + 'static>(
        &self,
        def: TableDefinition<K, V>,
    ) -> Result<impl ReadableTable<K, V> + '_, StoreError> {
        Ok(self.open_table(def)?)
    }
}

impl Readable for WriteTransaction {
    fn table<K: Key + 'static, V: Value + 'static>(
        &self,
        def: TableDefinition<K, V>,
    ) -> Result<impl ReadableTable<K, V> + '_, StoreError> {
        Ok(self.open_table(def)?)
    }
}

type PairTable = TableDefinition<'static, (&'static str, &'static str), &'static [u8]>;

fn pair_get<T: Record>(txn: &impl Readable, def: PairTable, room: &str, key: &str) -> Result<Option<T>, StoreError> {
    let t = txn.table(def)?;
    let v = t.get((room, key))?;
    match v {
        Some(v) => Ok(Some(decode(v.value())?)),
        None => Ok(None),
    }
}

/// Every value of a `(room, x)`-keyed table whose room is `room`, in key order.
fn pair_rows<T: Record>(txn: &impl Readable, def: PairTable, room: &str) -> Result<Vec<T>, StoreError> {
    room_rows(&txn.table(def)?, room)
}

fn pair_put<T: Record>(txn: &WriteTransaction, def: PairTable, room: &str, key: &str, v: &T) -> Result<(), StoreError> {
    txn.open_table(def)?.insert((room, key), encode(v).as_slice())?;
    Ok(())
}

fn pair_remove(txn: &WriteTransaction, def: PairTable, room: &str, key: &str) -> Result<bool, StoreError> {
    Ok(txn.open_table(def)?.remove((room, key))?.is_some())
}

fn pair_remove_room(txn: &WriteTransaction, def: PairTable, room: &str) -> Result<(), StoreError> {
    let mut t = txn.open_table(def)?;
    let keys: Vec<String> = {
        let mut v = Vec::new();
        for row in t.range((room, "")..)? {
            let (k, _) = row?;
            let (r, key) = k.value();
            if r != room {
                break;
            }
            v.push(key.to_string());
        }
        v
    };
    for k in keys {
        t.remove((room, k.as_str()))?;
    }
    Ok(())
}

// ---- invites ------------------------------------------------------------------------------

/// Stores a new invite and the index from its secret's hash.
pub fn invite_insert(txn: &WriteTransaction, inv: &Invite) -> Result<(), StoreError> {
    let mut tokens = txn.open_table(INVITE_TOKENS)?;
    if tokens.get(inv.token_hash.as_str())?.is_some() {
        return Err(StoreError::Conflict("invite secret collision".into()));
    }
    tokens.insert(inv.token_hash.as_str(), (inv.room.as_str(), inv.id.as_str()))?;
    drop(tokens);
    invite_put(txn, inv)
}

/// Replaces an invite's record (uses, revocation).
pub fn invite_put(txn: &WriteTransaction, inv: &Invite) -> Result<(), StoreError> {
    pair_put(txn, INVITES, &inv.room, &inv.id, inv)
}

/// Removes an invite and its secret's index entirely: for an invite whose creation is undone
/// (its mail could not be sent), so that nothing of it remains.
pub fn invite_remove(txn: &WriteTransaction, inv: &Invite) -> Result<(), StoreError> {
    txn.open_table(INVITE_TOKENS)?.remove(inv.token_hash.as_str())?;
    pair_remove(txn, INVITES, &inv.room, &inv.id)?;
    Ok(())
}

pub fn invite_get(txn: &impl Readable, room: &str, id: &str) -> Result<Option<Invite>, StoreError> {
    pair_get(txn, INVITES, room, id)
}

/// The invite whose secret hashes to `token_hash`.
pub fn invite_by_token(txn: &impl Readable, token_hash: &str) -> Result<Option<Invite>, StoreError> {
    let found = {
        let t = txn.table(INVITE_TOKENS)?;
        let v = t.get(token_hash)?;
        v.map(|v| {
            let (room, id) = v.value();
            (room.to_string(), id.to_string())
        })
    };
    match found {
        Some((room, id)) => invite_get(txn, &room, &id),
        None => Ok(None),
    }
}

/// A room's invites, oldest id first.
pub fn invites_of_room(txn: &impl Readable, room: &str) -> Result<Vec<Invite>, StoreError> {
    pair_rows(txn, INVITES, room)
}

// ---- attendees ----------------------------------------------------------------------------

pub fn attendee_get(txn: &impl Readable, room: &str, identity: &str) -> Result<Option<Attendee>, StoreError> {
    pair_get(txn, ATTENDEES, room, identity)
}

pub fn attendee_put(txn: &WriteTransaction, room: &str, a: &Attendee) -> Result<(), StoreError> {
    pair_put(txn, ATTENDEES, room, &a.identity, a)
}

pub fn attendee_remove(txn: &WriteTransaction, room: &str, identity: &str) -> Result<bool, StoreError> {
    pair_remove(txn, ATTENDEES, room, identity)
}

pub fn attendees_of_room(txn: &impl Readable, room: &str) -> Result<Vec<Attendee>, StoreError> {
    pair_rows(txn, ATTENDEES, room)
}

/// The people waiting in a room's lobby, in the order they began to wait.
pub fn lobby_waiting(txn: &impl Readable, room: &str) -> Result<Vec<Attendee>, StoreError> {
    let mut v: Vec<Attendee> = attendees_of_room(txn, room)?.into_iter().filter(|a| a.lobby == Some(LobbyStatus::Waiting)).collect();
    v.sort_by(|a, b| a.knocked_at.cmp(&b.knocked_at).then_with(|| a.identity.cmp(&b.identity)));
    Ok(v)
}

/// Everyone with a lobby status in any room: (room, identity, status).
pub fn lobby_entries_all(txn: &ReadTransaction) -> Result<Vec<(String, String, LobbyStatus)>, StoreError> {
    let t = txn.table(ATTENDEES)?;
    let mut out = Vec::new();
    for row in t.iter()? {
        let (k, v) = row?;
        let a: Attendee = decode(v.value())?;
        if let Some(s) = a.lobby {
            out.push((k.value().0.to_string(), a.identity, s));
        }
    }
    Ok(out)
}

/// Whether `identity` is in `room`'s meeting right now (as LiveKit last reported it).
pub fn is_live(txn: &impl Readable, room: &str, identity: &str) -> Result<bool, StoreError> {
    Ok(txn.table(LIVE)?.get((room, identity))?.is_some())
}

// ---- bans ---------------------------------------------------------------------------------

pub fn ban_get(txn: &impl Readable, room: &str, identity: &str) -> Result<Option<Ban>, StoreError> {
    pair_get(txn, BANS, room, identity)
}

pub fn ban_put(txn: &WriteTransaction, room: &str, b: &Ban) -> Result<(), StoreError> {
    pair_put(txn, BANS, room, &b.identity, b)
}

pub fn ban_remove(txn: &WriteTransaction, room: &str, identity: &str) -> Result<Option<Ban>, StoreError> {
    let b = ban_get(txn, room, identity)?;
    if b.is_some() {
        pair_remove(txn, BANS, room, identity)?;
    }
    Ok(b)
}

pub fn bans_of_room(txn: &impl Readable, room: &str) -> Result<Vec<Ban>, StoreError> {
    pair_rows(txn, BANS, room)
}

// ---- the meeting as a whole ---------------------------------------------------------------

/// The end of a meeting: the lock and the spotlight go, admissions and stage promotions lapse.
/// `ended_for_all`: a manager ended it, and those still waiting are told so (their entries
/// become `Ended`); otherwise (LiveKit closed the empty room) they keep waiting for the next
/// one. Denials and end notices stay until the person has read them and gone. Returns whether
/// anything changed.
pub fn meeting_reset(txn: &WriteTransaction, room: &str, ended_for_all: bool) -> Result<bool, StoreError> {
    let mut changed = false;
    if let Some(mut r) = room_get_w(txn, room)? {
        if r.locked || r.spotlight.is_some() {
            r.locked = false;
            r.spotlight = None;
            room_put(txn, &r)?;
            changed = true;
        }
    }
    for mut a in attendees_of_room(txn, room)? {
        let lobby = match a.lobby {
            Some(LobbyStatus::Waiting) if ended_for_all => Some(LobbyStatus::Ended),
            Some(LobbyStatus::Admitted) => None,
            other => other,
        };
        if lobby != a.lobby || a.speaker {
            a.lobby = lobby;
            a.speaker = false;
            attendee_put(txn, room, &a)?;
            changed = true;
        }
    }
    Ok(changed)
}

/// Everything a deleted room leaves behind in these tables.
pub fn meeting_forget_room(txn: &WriteTransaction, room: &str) -> Result<(), StoreError> {
    for inv in invites_of_room(txn, room)? {
        txn.open_table(INVITE_TOKENS)?.remove(inv.token_hash.as_str())?;
    }
    pair_remove_room(txn, INVITES, room)?;
    pair_remove_room(txn, ATTENDEES, room)?;
    pair_remove_room(txn, BANS, room)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn invite(room: &str, id: &str, hash: &str) -> Invite {
        Invite {
            id: id.into(),
            room: room.into(),
            token_hash: hash.into(),
            role: InviteRole::Participant,
            created_by: "owner".into(),
            created_at: 1,
            expires_at: Some(100),
            max_uses: Some(2),
            uses: 0,
            revoked_at: None,
            banned: false,
        }
    }

    #[test]
    fn invites_attendees_and_bans_round_trip_and_go_with_the_room() {
        let d = tempfile::tempdir().unwrap();
        let s = Store::open(&d.path().join("m.redb")).unwrap();
        s.write_blocking(|txn| {
            room_insert(txn, &Room { locked: true, spotlight: Some("x".into()), ..Room::new("aa", "o", 1, RoomSettings::default()) })?;
            room_insert(txn, &Room::new("ab", "o", 1, RoomSettings::default()))?;
            invite_insert(txn, &invite("aa", "i1", "h1"))?;
            invite_insert(txn, &invite("ab", "i2", "h2"))?;
            let mut w = Attendee::new("g1", "Gina", true);
            w.lobby = Some(LobbyStatus::Waiting);
            w.knocked_at = 5;
            attendee_put(txn, "aa", &w)?;
            let mut a = Attendee::new("g2", "Al", true);
            a.lobby = Some(LobbyStatus::Admitted);
            a.speaker = true;
            attendee_put(txn, "aa", &a)?;
            ban_put(txn, "aa", &Ban { identity: "g3".into(), name: "Bo".into(), guest: true, invite: Some("i1".into()), by: "owner".into(), at: 1 })?;
            Ok(())
        })
        .unwrap();
        assert!(matches!(s.write_blocking(|txn| invite_insert(txn, &invite("ab", "i3", "h1"))), Err(StoreError::Conflict(_))));
        let (by_token, waiting, all) = s
            .read_blocking(|t| Ok((invite_by_token(t, "h2")?, lobby_waiting(t, "aa")?, lobby_entries_all(t)?)))
            .unwrap();
        assert_eq!(by_token.unwrap().id, "i2");
        assert_eq!(waiting.iter().map(|a| a.identity.as_str()).collect::<Vec<_>>(), ["g1"]);
        assert_eq!(all, vec![("aa".into(), "g1".into(), LobbyStatus::Waiting), ("aa".into(), "g2".into(), LobbyStatus::Admitted)]);

        // A natural end keeps the waiting; an end for all tells them.
        assert!(s.write_blocking(|txn| meeting_reset(txn, "aa", false)).unwrap());
        let (room, people) = s.read_blocking(|t| Ok((room_get(t, "aa")?.unwrap(), attendees_of_room(t, "aa")?))).unwrap();
        assert!(!room.locked && room.spotlight.is_none());
        assert_eq!(people.iter().map(|a| (a.lobby, a.speaker)).collect::<Vec<_>>(), [(Some(LobbyStatus::Waiting), false), (None, false)]);
        assert!(!s.write_blocking(|txn| meeting_reset(txn, "ab", false)).unwrap(), "nothing to reset");
        s.write_blocking(|txn| meeting_reset(txn, "aa", true)).unwrap();
        assert_eq!(s.read_blocking(|t| attendee_get(t, "aa", "g1")).unwrap().unwrap().lobby, Some(LobbyStatus::Ended));

        // Deleting the room takes its invites (and their secrets' index), attendees and bans.
        s.write_blocking(|txn| room_delete(txn, "aa")).unwrap();
        let left = s
            .read_blocking(|t| Ok((invite_by_token(t, "h1")?, attendees_of_room(t, "aa")?.len(), bans_of_room(t, "aa")?.len(), invite_by_token(t, "h2")?)))
            .unwrap();
        assert_eq!((left.0, left.1, left.2), (None, 0, 0));
        assert!(left.3.is_some(), "another room's invite stays");
    }

    #[test]
    fn invite_status_says_why() {
        let mut i = invite("r", "i", "h");
        assert_eq!(i.status(50), InviteStatus::Active);
        assert_eq!(i.status(100), InviteStatus::Expired);
        i.uses = 2;
        assert_eq!(i.status(50), InviteStatus::UsedUp);
        i.banned = true;
        assert_eq!(i.status(50), InviteStatus::Banned);
        i.revoked_at = Some(3);
        assert_eq!(i.status(50), InviteStatus::Revoked);
    }
}
