//! Rooms: names, settings, moderators and who may manage or join them. Creating a room makes no
//! LiveKit call; LiveKit creates its side when the first participant connects.

use serde::Serialize;

use crate::error::ApiError;
use crate::store::{self, Room, RoomSettings, Store, StoreError, User};

/// Names that are API paths under `/api/room/`.
const RESERVED: [&str; 3] = ["create", "list", "join"];

/// Room names: 3–63 of lowercase letters, digits and dashes.
pub fn validate_name(name: &str) -> Result<(), ApiError> {
    if RESERVED.contains(&name) {
        return Err(ApiError::bad_request("invalid_room_name", format!("{name:?} is reserved; choose another name")));
    }
    let ok = (3..=63).contains(&name.len())
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if ok {
        Ok(())
    } else {
        Err(ApiError::bad_request(
            "invalid_room_name",
            "room name must be 3-63 characters of lowercase letters, digits and dashes",
        ))
    }
}

pub fn validate_settings(s: &RoomSettings) -> Result<(), ApiError> {
    if s.max_participants > 10_000 {
        return Err(ApiError::bad_request("invalid_settings", "maxParticipants must be 0 (no limit) to 10000"));
    }
    Ok(())
}

/// A room as the API shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RoomView {
    pub name: String,
    pub owner: Option<String>,
    pub created_at: u64,
    pub settings: RoomSettings,
    pub moderators: Vec<String>,
    pub live_participants: u32,
    pub locked: bool,
    pub spotlight: Option<String>,
}

pub async fn create(store: &Store, owner: &User, name: &str, settings: RoomSettings) -> Result<Room, ApiError> {
    validate_name(name)?;
    validate_settings(&settings)?;
    let room = Room::new(name, &owner.id, store::now_ms(), settings);
    let r = room.clone();
    store
        .write(move |txn| store::room_insert(txn, &r))
        .await
        .map_err(|e| match e {
            StoreError::Conflict(_) => ApiError::conflict("room_exists", format!("room {} already exists", room.name)),
            e => e.into(),
        })?;
    Ok(room)
}

/// The room's full view: owner and moderator names, live participant count.
pub fn view(txn: &redb::ReadTransaction, room: &Room) -> Result<RoomView, StoreError> {
    let owner = store::user_by_id(txn, &room.owner_id)?.map(|u| u.username);
    let mut moderators = Vec::new();
    for id in store::moderators(txn, &room.name)? {
        if let Some(u) = store::user_by_id(txn, &id)? {
            moderators.push(u.username);
        }
    }
    Ok(RoomView {
        name: room.name.clone(),
        owner,
        created_at: room.created_at,
        settings: room.settings.clone(),
        moderators,
        live_participants: store::live_count(txn, &room.name, "")?,
        locked: room.locked,
        spotlight: room.spotlight.clone(),
    })
}

pub async fn get_view(store: &Store, name: &str) -> Result<RoomView, ApiError> {
    let name = name.to_string();
    Ok(store
        .read(move |txn| {
            let room = store::room_get(txn, &name)?.ok_or(StoreError::NotFound("room"))?;
            view(txn, &room)
        })
        .await?)
}

/// May `user` manage `room` (settings, moderators, moderation)? Owner, moderators, admins.
pub fn can_manage(txn: &redb::ReadTransaction, user: &User, room: &Room) -> Result<bool, StoreError> {
    Ok(user.is_admin() || room.owner_id == user.id || store::is_moderator(txn, &room.name, &user.id)?)
}

/// Loads a room and checks that `user` may manage it: 404 before 403.
pub async fn managed(store: &Store, user: &User, name: &str) -> Result<Room, ApiError> {
    let (name, user) = (name.to_string(), user.clone());
    let (room, ok) = store
        .read(move |txn| {
            let room = store::room_get(txn, &name)?.ok_or(StoreError::NotFound("room"))?;
            let ok = can_manage(txn, &user, &room)?;
            Ok((room, ok))
        })
        .await?;
    if !ok {
        return Err(ApiError::forbidden("only the room's owner, its moderators and admins may do this"));
    }
    Ok(room)
}

/// One page of the rooms `user` sees: all for admins; else public, owned and moderated ones.
pub async fn list(store: &Store, user: &User, after: Option<String>, limit: usize) -> Result<Vec<RoomView>, ApiError> {
    let user = user.clone();
    Ok(store
        .read(move |txn| {
            let rooms = if user.is_admin() {
                store::rooms_page(txn, after.as_deref(), limit)?
            } else {
                store::rooms_visible(txn, &user.id, after.as_deref(), limit)?
            };
            rooms.iter().map(|r| view(txn, r)).collect()
        })
        .await?)
}


pub async fn update_settings(store: &Store, name: &str, settings: RoomSettings) -> Result<Room, ApiError> {
    validate_settings(&settings)?;
    let name = name.to_string();
    Ok(store
        .write(move |txn| {
            let mut room = store::room_get_w(txn, &name)?.ok_or(StoreError::NotFound("room"))?;
            room.settings = settings.clone();
            store::room_put(txn, &room)?;
            Ok(room)
        })
        .await?)
}

pub async fn delete(store: &Store, name: &str) -> Result<(), ApiError> {
    let name = name.to_string();
    Ok(store.write(move |txn| store::room_delete(txn, &name)).await?)
}

/// Adds (`add`) or removes a moderator by username; true if anything changed.
pub async fn set_moderator(store: &Store, room: &str, username: &str, add: bool) -> Result<bool, ApiError> {
    let (room, username) = (room.to_string(), username.to_string());
    Ok(store
        .write(move |txn| {
            store::room_get_w(txn, &room)?.ok_or(StoreError::NotFound("room"))?;
            let u = store::user_by_name_w(txn, &username)?.ok_or(StoreError::NotFound("user"))?;
            if add {
                store::moderator_add(txn, &room, &u.id)
            } else {
                store::moderator_remove(txn, &room, &u.id)
            }
        })
        .await?)
}

/// Every room with its view (CLI and control socket).
pub async fn list_all(store: &Store) -> Result<Vec<RoomView>, ApiError> {
    Ok(store
        .read(|txn| {
            let rooms = store::rooms_page(txn, None, usize::MAX)?;
            rooms.iter().map(|r| view(txn, r)).collect()
        })
        .await?)
}
