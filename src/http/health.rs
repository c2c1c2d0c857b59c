//! `/api/health` (the process answers), `/api/ready` (it can do its job: store open and
//! LiveKit healthy), each with a JSON body that says what is not ready, and `/api/info` (what a
//! sign-in page needs to know before anyone signs in).

use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::SharedState;
use crate::livekit::cluster::NodeInfo;
use crate::livekit::status::Mode;
use crate::recording::Availability;
use crate::store;

pub fn routes() -> OpenApiRouter<SharedState> {
    OpenApiRouter::new()
        .routes(routes!(health))
        .routes(routes!(ready))
        .routes(routes!(info))
        .routes(routes!(super::openapi::serve))
}

#[derive(Serialize, ToSchema)]
pub(super) struct Health {
    /// Always `ok`: the process answers.
    status: String,
    version: String,
}

/// Liveness: the daemon answers.
#[utoipa::path(get, path = "/api/health", tag = "health", security(()),
    responses((status = 200, description = "Alive", body = Health)))]
async fn health() -> axum::Json<Health> {
    axum::Json(Health { status: "ok".into(), version: env!("CARGO_PKG_VERSION").into() })
}

/// What the web client needs to know before anyone signs in.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(super) struct Info {
    version: String,
    /// Anyone may create an account.
    registration: bool,
    /// Visitors without an account may join public rooms.
    guest_join: bool,
    /// One sign-in button per configured OpenID provider.
    oidc: Vec<OidcButton>,
    /// Passkeys (WebAuthn) are enabled.
    passkeys: bool,
    /// Mail is configured: e-mail verification and password reset work.
    mail: bool,
}

/// An OpenID provider's sign-in button.
#[derive(Serialize, ToSchema)]
pub(super) struct OidcButton {
    /// The provider's name in `/api/auth/oidc/{provider}/start`.
    name: String,
    /// What the button says.
    label: String,
}

/// Public facts about this service: whether visitors may register or join as guests, and the
/// ways to sign in (a button per OpenID provider, passkeys, password reset by mail).
#[utoipa::path(get, path = "/api/info", tag = "health", security(()),
    responses((status = 200, description = "Public facts", body = Info)))]
async fn info(State(st): State<SharedState>) -> axum::Json<Info> {
    let cfg = st.config();
    let signin = &st.signin;
    let oidc = signin
        .oidc
        .providers()
        .iter()
        .map(|p| OidcButton { name: p.cfg.name.clone(), label: p.cfg.label.clone().unwrap_or_else(|| p.cfg.name.clone()) })
        .collect();
    axum::Json(Info {
        version: env!("CARGO_PKG_VERSION").into(),
        registration: cfg.auth.registration,
        guest_join: cfg.auth.guest_join,
        oidc,
        passkeys: signin.passkeys.is_some(),
        mail: signin.mailer.is_some(),
    })
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(super) struct Readiness {
    ready: bool,
    /// `ok`, `read-only` (cannot write) or `error`.
    store: String,
    livekit: ReadyLivekit,
    webhook: ReadyWebhook,
    /// Whether a recording can start now (recording never makes bedrud unready).
    recording: Availability,
    /// The LiveKit cluster's nodes as last read from its Redis; `null` when no cluster is
    /// watched (embedded LiveKit, or no `redis.address`).
    cluster: Option<ReadyCluster>,
    /// Why not ready, one line per part.
    not_ready: Vec<String>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(super) struct ReadyLivekit {
    mode: Mode,
    /// `starting`, `ready`, `restarting`, `failed: …`, `unreachable: …`, `stopped`.
    state: String,
    version: Option<String>,
    restarts: u32,
    last_error: Option<String>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(super) struct ReadyWebhook {
    /// Unix milliseconds of the last valid webhook.
    last_seen: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    note: Option<String>,
}

/// A watched cluster: its nodes, or why they could not be read.
#[derive(Serialize, ToSchema)]
pub(super) struct ReadyCluster {
    #[serde(skip_serializing_if = "Option::is_none")]
    nodes: Option<Vec<NodeInfo>>,
    /// The last read of the node registry failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

/// Readiness: the store can write and LiveKit is ready.
#[utoipa::path(get, path = "/api/ready", tag = "health", security(()),
    responses(
        (status = 200, description = "Ready", body = Readiness),
        (status = 503, description = "Not ready; `notReady` says why", body = Readiness),
    ))]
async fn ready(State(st): State<SharedState>) -> (StatusCode, axum::Json<Readiness>) {
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
    let webhook = ReadyWebhook {
        last_seen: (last_seen > 0).then_some(last_seen),
        note: (last_seen == 0).then(|| "no webhook seen yet; for an external LiveKit see `bedrud livekit webhook-config`".to_string()),
    };
    // Recording is reported, but does not make bedrud unready: meetings work without it.
    let recording = st.recorder.availability(&st.config(), &lk);
    // A watched cluster's nodes, as the reconciler last read them.
    let cluster = st.cluster.latest().map(|v| match v {
        Ok(v) => ReadyCluster { nodes: Some(v.nodes), error: None },
        Err(e) => ReadyCluster { nodes: None, error: Some(e) },
    });
    let status = if not_ready.is_empty() { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    let store = match (&store_ok, &write_failure) {
        (Err(_), _) => "error",
        (Ok(_), Some(_)) => "read-only",
        (Ok(_), None) => "ok",
    };
    (
        status,
        axum::Json(Readiness {
            ready: not_ready.is_empty(),
            store: store.into(),
            livekit: ReadyLivekit { mode: lk.mode, state: lk.state.to_string(), version: lk.version, restarts: lk.restarts, last_error: lk.last_error },
            webhook,
            recording,
            cluster,
            not_ready,
        }),
    )
}
