//! Keeps the store's live participant set equal to what LiveKit really has, so a lost webhook
//! heals: periodically and right after LiveKit (re)becomes ready, ListRooms + ListParticipants,
//! then one write that closes the departed and adds the unknown.
//!
//! In a cluster whose Redis bedrud watches ([`Cluster`]), rooms of a dead node count as empty
//! (LiveKit goes on listing them), and a node going dead starts a pass at once: its
//! participants are closed within seconds, not at the next period.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use livekit_protocol as proto;
use tokio_util::sync::CancellationToken;

use super::client::{LivekitError, RoomClient};
use super::cluster::{Cluster, ClusterView};
use super::status::StatusRx;
use super::webhook::track_info;
use crate::store::{self, now_ms, Store, StoreError};

/// What a reconciliation pass changed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Repairs {
    pub closed: usize,
    pub added: usize,
    pub updated: usize,
    /// Closed because their room's node is dead (included in `closed`).
    pub lost: usize,
}

impl Repairs {
    pub fn total(&self) -> usize {
        self.closed + self.added + self.updated
    }
}

/// How often node liveness is read from a watched cluster's Redis.
const LIVENESS_POLL: Duration = Duration::from_secs(1);

#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    #[error(transparent)]
    Livekit(#[from] LivekitError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// One pass. Participants that changed after the listing began are left to their webhooks.
/// With a cluster view, rooms on dead nodes count as empty.
pub async fn reconcile(client: &RoomClient, store: &Store, cluster: Option<&ClusterView>) -> Result<Repairs, ReconcileError> {
    let listed_at = now_ms();
    let mut observed: HashMap<(String, String), proto::ParticipantInfo> = HashMap::new();
    let dead_rooms: BTreeSet<String> = cluster.map(|c| c.room_nodes.keys().filter(|r| c.dead_host(r).is_some()).cloned().collect()).unwrap_or_default();
    for room in client.list_rooms().await? {
        if dead_rooms.contains(&room.name) {
            continue;
        }
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
                        let lost = dead_rooms.contains(room);
                        store::participant_leave(txn, room, &p.identity, now_ms(), if lost { "node_lost" } else { "reconciled" })?;
                        r.closed += 1;
                        r.lost += usize::from(lost);
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

/// Runs passes every `interval`, whenever LiveKit becomes ready again, and (with a watched
/// cluster) as soon as a node is seen dead.
pub fn spawn(client: RoomClient, store: Store, mut status: StatusRx, interval: Duration, cluster: Arc<Cluster>, shutdown: CancellationToken) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut seen_ready = 0u64;
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut liveness = tokio::time::interval(LIVENESS_POLL);
        liveness.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut dead: BTreeSet<String> = BTreeSet::new();
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tick.tick() => {}
                changed = status.changed() => {
                    if changed.is_err() { return; }
                    let s = status.borrow_and_update().clone();
                    if !(s.is_ready() && s.ready_count > seen_ready) { continue; }
                }
                _ = liveness.tick(), if cluster.watched() => {
                    let Some(Ok(view)) = cluster.fetch().await else { continue };
                    if !report_liveness(&view, &mut dead) { continue; }
                }
            }
            let s = status.borrow().clone();
            if !s.is_ready() {
                continue;
            }
            seen_ready = s.ready_count;
            let view = match cluster.fetch().await {
                Some(Ok(v)) => {
                    report_liveness(&v, &mut dead);
                    Some(v)
                }
                Some(Err(e)) => {
                    tracing::warn!("{e}; reconciling without node liveness");
                    None
                }
                None => None,
            };
            match reconcile(&client, &store, view.as_ref()).await {
                Ok(r) if r.lost > 0 => tracing::warn!(
                    closed = r.closed, added = r.added, updated = r.updated, lost = r.lost,
                    "reconciled room state with LiveKit: {} participants were on dead LiveKit nodes", r.lost
                ),
                Ok(r) if r.total() > 0 => tracing::info!(closed = r.closed, added = r.added, updated = r.updated, "reconciled room state with LiveKit"),
                Ok(_) => tracing::debug!("room state matches LiveKit"),
                Err(e) => tracing::warn!(error = %e, "reconciliation with LiveKit failed"),
            }
        }
    })
}

/// Logs nodes that died or came back since `dead` was last updated; true when one died.
fn report_liveness(view: &ClusterView, dead: &mut BTreeSet<String>) -> bool {
    let now: BTreeSet<String> = view.dead().map(|n| n.id.clone()).collect();
    let mut died = false;
    for n in view.dead().filter(|n| !dead.contains(&n.id)) {
        died = true;
        let since = if n.last_seen > 0 { format!("no stats since {} s ago", (now_ms() / 1000) as i64 - n.last_seen) } else { "gone from the registry".into() };
        tracing::warn!(node = %n.id, ip = %n.ip, rooms = ?n.rooms, "LiveKit node {} is down ({since}); its rooms count as empty", n.id);
    }
    for id in dead.difference(&now) {
        tracing::info!(node = %id, "LiveKit node {id} is back or gone from the registry");
    }
    *dead = now;
    died
}
