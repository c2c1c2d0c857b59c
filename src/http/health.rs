//! `/api/health` (the process answers), `/api/ready` (it can do its job: store open and
//! LiveKit healthy), each with a JSON body that says what is not ready, and `/api/info` (what a
//! sign-in page needs to know before anyone signs in).

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use serde_json::{json, Value};

use super::SharedState;
use crate::store;

pub fn routes() -> Router<SharedState> {
    Router::new()
        .route("/api/health", get(health))
        .route("/api/ready", get(ready))
        .route("/api/info", get(info))
}

async fn health() -> axum::Json<Value> {
    axum::Json(json!({ "status": "ok", "version": env!("CARGO_PKG_VERSION") }))
}

/// Public facts about this service: whether visitors may register or join as guests.
async fn info(State(st): State<SharedState>) -> axum::Json<Value> {
    let cfg = st.config();
    axum::Json(json!({
        "version": env!("CARGO_PKG_VERSION"),
        "registration": cfg.auth.registration,
        "guestJoin": cfg.auth.guest_join,
    }))
}

async fn ready(State(st): State<SharedState>) -> (StatusCode, axum::Json<Value>) {
    let store_ok = st.store.read(|txn| store::meta_get(txn, "schema_version")).await;
    let lk = st.livekit.borrow().clone();
    let last_seen = st.webhook_last_seen.load(std::sync::atomic::Ordering::Relaxed);
    let mut not_ready = Vec::new();
    let write_failure = st.store.write_failure();
    if let Err(e) = &store_ok {
        not_ready.push(format!("store: {e}"));
    } else if let Some(f) = &write_failure {
        not_ready.push(format!("store: cannot write: {}", if f.disk_full { "disk full".to_string() } else { f.message.clone() }));
    }
    if !lk.is_ready() {
        not_ready.push(format!("livekit: {}", lk.state));
    }
    let webhook = if last_seen > 0 {
        json!({ "lastSeen": last_seen })
    } else {
        json!({ "lastSeen": null, "note": "no webhook seen yet; for an external LiveKit see `bedrud livekit webhook-config`" })
    };
    // Recording is reported, but does not make bedrud unready: meetings work without it.
    let recording = st.recorder.availability(&st.config(), &lk);
    // A watched cluster's nodes, as the reconciler last read them.
    let cluster = match st.cluster.latest() {
        Some(Ok(v)) => json!({ "nodes": v.nodes }),
        Some(Err(e)) => json!({ "error": e }),
        None => Value::Null,
    };
    let status = if not_ready.is_empty() { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (
        status,
        axum::Json(json!({
            "ready": not_ready.is_empty(),
            "store": match (&store_ok, &write_failure) {
                (Err(_), _) => "error",
                (Ok(_), Some(_)) => "read-only",
                (Ok(_), None) => "ok",
            },
            "livekit": {
                "mode": lk.mode,
                "state": lk.state.to_string(),
                "version": lk.version,
                "restarts": lk.restarts,
                "lastError": lk.last_error,
            },
            "webhook": webhook,
            "recording": recording,
            "cluster": cluster,
            "notReady": not_ready,
        })),
    )
}
