//! Keeps the store's live participant set equal to what LiveKit really has, so a lost webhook
//! heals: periodically and right after LiveKit (re)becomes ready, ListRooms + ListParticipants,
//! then one write that closes the departed and adds the unknown.

use std::collections::HashMap;
use std::time::Duration;

use livekit_protocol as proto;
use tokio_util::sync::CancellationToken;

use super::client::{LivekitError, RoomClient};
use super::status::StatusRx;
use super::webhook::track_info;
use crate::store::{self, now_ms, Store, StoreError};

/// What a reconciliation pass changed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Repairs {
    pub closed: usize,
    pub added: usize,
    pub updated: usize,
}

impl Repairs {
    pub fn total(&self) -> usize {
        self.closed + self.added + self.updated
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    #[error(transparent)]
    Livekit(#[from] LivekitError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// One pass. Participants that changed after the listing began are left to their webhooks.
pub async fn reconcile(client: &RoomClient, store: &Store) -> Result<Repairs, ReconcileError> {
    let listed_at = now_ms();
    let mut observed: HashMap<(String, String), proto::ParticipantInfo> = HashMap::new();
    for room in client.list_rooms().await? {
        for p in client.list_participants(&room.name).await? {
            if p.state != proto::participant_info::State::Disconnected as i32 {
                observed.insert((room.name.clone(), p.identity.clone()), p);
            }
        }
    }
    let repairs = store
        .write(move |txn| {
            let mut r = Repairs::default();
            let live = store::live_all_w(txn)?;
            for (room, p) in &live {
                let key = (room.clone(), p.identity.clone());
                match observed.get(&key) {
                    None if p.last_event_at < listed_at => {
                        store::participant_leave(txn, room, &p.identity, now_ms(), "reconciled")?;
                        r.closed += 1;
                    }
                    Some(o) if o.sid == p.sid => {
                        let tracks: Vec<_> = o.tracks.iter().map(track_info).collect();
                        if tracks != p.tracks {
                            let mut p = p.clone();
                            p.tracks = tracks;
                            store::live_put(txn, room, &p)?;
                            r.updated += 1;
                        }
                    }
                    _ => {}
                }
            }
            let known: std::collections::HashSet<(String, String, String)> =
                live.iter().map(|(room, p)| (room.clone(), p.identity.clone(), p.sid.clone())).collect();
            for ((room, identity), o) in &observed {
                if known.contains(&(room.clone(), identity.clone(), o.sid.clone())) {
                    continue;
                }
                // A leave applied after the listing wins over the listing.
                if store::tombstone_exists(txn, &format!("left:{}", o.sid))? {
                    continue;
                }
                let joined = if o.joined_at_ms > 0 { o.joined_at_ms as u64 } else { (o.joined_at.max(0) as u64) * 1000 };
                let mut p = store::participant_join(txn, room, identity, &o.sid, &o.name, joined, listed_at)?;
                p.tracks = o.tracks.iter().map(track_info).collect();
                store::live_put(txn, room, &p)?;
                r.added += 1;
            }
            Ok(r)
        })
        .await?;
    Ok(repairs)
}

/// Runs passes every `interval` and whenever LiveKit becomes ready again.
pub fn spawn(client: RoomClient, store: Store, mut status: StatusRx, interval: Duration, shutdown: CancellationToken) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut seen_ready = 0u64;
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tick.tick() => {}
                changed = status.changed() => {
                    if changed.is_err() { return; }
                    let s = status.borrow_and_update().clone();
                    if !(s.is_ready() && s.ready_count > seen_ready) { continue; }
                }
            }
            let s = status.borrow().clone();
            if !s.is_ready() {
                continue;
            }
            seen_ready = s.ready_count;
            match reconcile(&client, &store).await {
                Ok(r) if r.total() > 0 => tracing::info!(closed = r.closed, added = r.added, updated = r.updated, "reconciled room state with LiveKit"),
                Ok(_) => tracing::debug!("room state matches LiveKit"),
                Err(e) => tracing::warn!(error = %e, "reconciliation with LiveKit failed"),
            }
        }
    })
}
