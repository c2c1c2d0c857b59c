//! LiveKit as a multi-node cluster (external mode with `redis.address`): the nodes registered
//! in its Redis, which room each hosts, and which nodes are alive.
//!
//! A node that dies keeps its rooms in Redis (LiveKit's other nodes go on listing them), so the
//! room listing alone cannot tell that their participants are gone. Every node rewrites its
//! entry in the `nodes` hash with fresh stats every two seconds; like LiveKit's own node
//! selector, bedrud counts a node whose stats are older than five seconds (or that is missing
//! from the hash) as dead, and its rooms as empty.

use std::collections::BTreeMap;
use std::sync::RwLock;
use std::time::Duration;

use livekit_protocol as proto;
use prost::Message;
use serde::Serialize;

use super::configgen::RedisConn;

/// LiveKit's `selector.AvailableSeconds`: stats older than this mean the node is gone.
pub const AVAILABLE_SECS: i64 = 5;
const TIMEOUT: Duration = Duration::from_secs(2);

/// One node as the registry shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct NodeInfo {
    pub id: String,
    pub ip: String,
    pub alive: bool,
    /// Unix seconds of its last stats (0: never, or not registered any more).
    pub last_seen: i64,
    /// Rooms the cluster assigns to it.
    pub rooms: Vec<String>,
}

/// The registry at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ClusterView {
    pub nodes: Vec<NodeInfo>,
    /// room → node id.
    #[serde(skip)]
    pub room_nodes: BTreeMap<String, String>,
}

impl ClusterView {
    /// Reads the registry from its two hashes (`nodes`: id → protobuf `Node`;
    /// `room_node_map`: room → node id) as of `now` (Unix seconds).
    pub fn from_hashes(nodes: &[(Vec<u8>, Vec<u8>)], rooms: &[(Vec<u8>, Vec<u8>)], now: i64) -> Self {
        let mut out: Vec<NodeInfo> = nodes
            .iter()
            .filter_map(|(_, v)| proto::Node::decode(v.as_slice()).ok())
            .map(|n| {
                // A node without stats yet has just registered: LiveKit counts it as available.
                let last_seen = n.stats.as_ref().map_or(now, |s| s.updated_at);
                NodeInfo { id: n.id, ip: n.ip, alive: now - last_seen < AVAILABLE_SECS, last_seen, rooms: Vec::new() }
            })
            .collect();
        let mut room_nodes = BTreeMap::new();
        for (room, node) in rooms {
            let (room, node) = (String::from_utf8_lossy(room).into_owned(), String::from_utf8_lossy(node).into_owned());
            match out.iter_mut().find(|n| n.id == node) {
                Some(n) => n.rooms.push(room.clone()),
                // Rooms of a node that was removed from the registry: it is gone too.
                None => out.push(NodeInfo { id: node.clone(), ip: String::new(), alive: false, last_seen: 0, rooms: vec![room.clone()] }),
            }
            room_nodes.insert(room, node);
        }
        for n in &mut out {
            n.rooms.sort();
        }
        out.sort_by(|a, b| a.id.cmp(&b.id));
        Self { nodes: out, room_nodes }
    }

    /// The dead node hosting `room`, if that is where the cluster put it.
    pub fn dead_host(&self, room: &str) -> Option<&NodeInfo> {
        let id = self.room_nodes.get(room)?;
        self.nodes.iter().find(|n| &n.id == id && !n.alive)
    }

    pub fn dead(&self) -> impl Iterator<Item = &NodeInfo> {
        self.nodes.iter().filter(|n| !n.alive)
    }
}

/// Where the registry is, and the last view read from it (for `/api/ready`).
#[derive(Debug, Default)]
pub struct Cluster {
    redis: Option<RedisConn>,
    latest: RwLock<Option<Result<ClusterView, String>>>,
}

impl Cluster {
    /// `redis`: LiveKit's Redis (`None`: not watched).
    pub fn new(redis: Option<RedisConn>) -> Self {
        Self { redis, latest: RwLock::new(None) }
    }

    pub fn watched(&self) -> bool {
        self.redis.is_some()
    }

    /// Reads the registry now (and keeps it as the latest view).
    pub async fn fetch(&self) -> Option<Result<ClusterView, String>> {
        let r = self.redis.as_ref()?;
        let read = async {
            let mut c = crate::redis::connect(&r.address, r.password.as_deref(), TIMEOUT).await?;
            let nodes = c.hgetall("nodes").await?;
            let rooms = c.hgetall("room_node_map").await?;
            let now = (crate::store::now_ms() / 1000) as i64;
            Ok(ClusterView::from_hashes(&nodes, &rooms, now))
        };
        let v = tokio::time::timeout(TIMEOUT * 2, read)
            .await
            .unwrap_or_else(|_| Err("no answer".into()))
            .map_err(|e: String| format!("cannot read LiveKit's node registry in Redis {}: {e}", r.address));
        *self.latest.write().unwrap_or_else(|e| e.into_inner()) = Some(v.clone());
        Some(v)
    }

    /// The last view read (`None` before the first, or when not watched).
    pub fn latest(&self) -> Option<Result<ClusterView, String>> {
        self.latest.read().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(id: &str, updated: i64) -> (Vec<u8>, Vec<u8>) {
        let n = proto::Node {
            id: id.into(),
            ip: "10.0.0.1".into(),
            stats: Some(proto::NodeStats { updated_at: updated, ..Default::default() }),
            ..Default::default()
        };
        (id.as_bytes().to_vec(), n.encode_to_vec())
    }

    fn pair(a: &str, b: &str) -> (Vec<u8>, Vec<u8>) {
        (a.as_bytes().to_vec(), b.as_bytes().to_vec())
    }

    #[test]
    fn stale_and_missing_nodes_are_dead() {
        let nodes = [node("ND_a", 1000), node("ND_b", 994)];
        let rooms = [pair("r1", "ND_a"), pair("r2", "ND_b"), pair("r3", "ND_gone"), pair("r4", "ND_a")];
        let v = ClusterView::from_hashes(&nodes, &rooms, 1001);
        let alive: Vec<(&str, bool)> = v.nodes.iter().map(|n| (n.id.as_str(), n.alive)).collect();
        assert_eq!(alive, vec![("ND_a", true), ("ND_b", false), ("ND_gone", false)]);
        assert_eq!(v.nodes[0].rooms, vec!["r1", "r4"]);
        assert!(v.dead_host("r1").is_none());
        assert_eq!(v.dead_host("r2").map(|n| n.id.as_str()), Some("ND_b"));
        assert_eq!(v.dead_host("r3").map(|n| n.id.as_str()), Some("ND_gone"));
        assert!(v.dead_host("unknown").is_none());
        assert_eq!(v.dead().count(), 2);
    }
}
