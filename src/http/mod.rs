//! The HTTP API: one router merged from one module per area, served over TCP (optionally TLS)
//! with header and request time limits, body limits, and graceful shutdown.

mod admin;
mod auth;
mod client;
mod cookie;
mod extract;
mod health;
mod mail;
mod oidc;
mod lobby;
mod meeting;
pub mod openapi;
mod passkeys;
mod recordings;
mod rooms;
pub mod serve;
mod setup;
pub mod ui;
mod webhook;

use std::net::SocketAddr;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, OnceLock, RwLock};
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::header::CACHE_CONTROL;
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Router;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use tokio_util::sync::CancellationToken;

use crate::auth::LoginLimiter;
use crate::config::Config;
use crate::error::ApiError;
use crate::livekit::client::RoomClient;
use crate::livekit::status::StatusRx;
use crate::livekit::ApiKeys;
use crate::livekit::cluster::Cluster;
use crate::livekit::configgen::RedisConn;
use crate::recording::Recorder;
use crate::mail::Mailer;
use crate::oidc::Oidc;
use crate::passkeys::Passkeys;
use crate::store::Store;

pub use extract::{ClientAddr, Json};

/// Background work of the API: clearing lobby entries of people who have gone.
pub fn spawn_background(state: SharedState) -> tokio::task::JoinHandle<()> {
    lobby::spawn_sweeper(state)
}

/// Everything a handler may need. Shared behind an `Arc`.
pub struct AppState {
    config: RwLock<Arc<Config>>,
    pub store: Store,
    pub keys: ApiKeys,
    pub limiter: LoginLimiter,
    pub livekit: StatusRx,
    pub client: RoomClient,
    /// Unix ms of the last valid webhook (0 = none yet).
    pub webhook_last_seen: AtomicU64,
    pub webhooks_applied: AtomicU64,
    pub recorder: Arc<Recorder>,
    /// LiveKit's node registry (external mode with `redis.address`).
    pub cluster: Arc<Cluster>,
    /// Open API connections (shared with the accept loops).
    pub connections: Arc<serve::Connections>,
    /// `server.trustedProxies`, parsed (replaced on reload).
    proxies: RwLock<Arc<Vec<ipnet::IpNet>>>,
    /// Cancelled at shutdown: long-lived answers (event streams) end with it.
    pub shutdown: CancellationToken,
    /// Live updates of lobbies, and who is still waiting in them.
    pub lobbies: Arc<lobby::Lobbies>,
    /// Request counters and latencies for `/metrics`.
    pub metrics: crate::metrics::Metrics,
    /// Every applied webhook as (event, room name): `bedrud doctor` watches for its probe room.
    pub webhook_events: tokio::sync::broadcast::Sender<(String, String)>,
    /// What the daemon set up around the API (set once at start).
    pub runtime: OnceLock<Runtime>,
    pub signin: Signin,
}

/// Facts of the running daemon that handlers and `bedrud doctor` need.
pub struct Runtime {
    /// Where the API listens.
    pub api_addr: SocketAddr,
    /// ACME, when `server.acme` is set.
    pub acme: Option<Arc<crate::acme::Acme>>,
    /// The configuration file (`None`: built-in defaults).
    pub config_file: Option<std::path::PathBuf>,
}

/// The ways to sign in besides a password, built once at start-up from `auth.*`, `smtp.*`
/// and `server.publicUrl` (a reload changes them at the next restart).
pub struct Signin {
    pub oidc: Oidc,
    /// `None`: passkeys are off.
    pub passkeys: Option<Passkeys>,
    /// `None`: no SMTP server is configured.
    pub mailer: Option<Mailer>,
    /// Password-reset requests per address and per client.
    pub mail_limiter: LoginLimiter,
}

impl Signin {
    pub fn from_config(config: &Config) -> Result<Signin, String> {
        Ok(Signin {
            oidc: Oidc::new(config),
            passkeys: Passkeys::from_config(config)?,
            mailer: Mailer::from_config(config)?,
            mail_limiter: LoginLimiter::new(5, Duration::from_secs(900)),
        })
    }
}

pub type SharedState = Arc<AppState>;

impl AppState {
    pub fn new(config: Arc<Config>, store: Store, keys: ApiKeys, livekit: StatusRx, shutdown: CancellationToken, signin: Signin) -> Self {
        let client = RoomClient::new(&config.livekit_internal_url(), keys.clone(), config.livekit.skip_tls_verify);
        let cluster = Arc::new(Cluster::new(cluster_redis(&config)));
        Self {
            limiter: LoginLimiter::new(config.auth.max_failed_logins, config.auth.lockout),
            proxies: RwLock::new(Arc::new(config.server.trusted_proxy_nets())),
            connections: Arc::new(serve::Connections::default()),
            config: RwLock::new(config),
            store: store.clone(),
            keys,
            livekit,
            client: client.clone(),
            webhook_last_seen: AtomicU64::new(0),
            webhooks_applied: AtomicU64::new(0),
            recorder: Arc::new(Recorder::new(store.clone(), client.clone())),
            cluster,
            shutdown,
            lobbies: Arc::new(lobby::Lobbies::new()),
            webhook_events: tokio::sync::broadcast::channel(64).0,
            runtime: OnceLock::new(),
            metrics: Default::default(),
            signin,
        }
    }

    /// The current configuration (replaced on reload).
    pub fn config(&self) -> Arc<Config> {
        self.config.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn set_config(&self, c: Arc<Config>) {
        *self.proxies.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(c.server.trusted_proxy_nets());
        *self.config.write().unwrap_or_else(|e| e.into_inner()) = c;
    }

    /// The reverse proxies whose forwarding headers are believed.
    pub fn trusted_proxies(&self) -> Arc<Vec<ipnet::IpNet>> {
        self.proxies.read().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// An external LiveKit's Redis, when given: its node registry is watched.
fn cluster_redis(config: &Config) -> Option<RedisConn> {
    let address = config.redis.address.clone().filter(|_| config.livekit.is_external())?;
    Some(RedisConn { address, password: config.redis.password.clone() })
}

/// Largest webhook body accepted (LiveKit's events carry room and participant info).
pub const WEBHOOK_BODY_LIMIT: usize = 1024 * 1024;

/// Every API route with its description, in two parts that get different body limits: the
/// router and the OpenAPI document both come from here.
fn api_parts() -> (OpenApiRouter<SharedState>, OpenApiRouter<SharedState>) {
    let api = OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .merge(health::routes())
        .merge(auth::routes())
        .merge(oidc::routes())
        .merge(passkeys::routes())
        .merge(mail::routes())
        .merge(admin::routes())
        .merge(rooms::routes())
        .merge(recordings::routes())
        .merge(meeting::routes())
        .merge(lobby::routes())
        .merge(setup::routes());
    (api, webhook::routes())
}

/// The whole API, described (for the OpenAPI document).
pub(crate) fn api_routes() -> OpenApiRouter<SharedState> {
    let (api, webhook) = api_parts();
    api.merge(webhook)
}

/// The whole API, and the web client for every other path.
pub fn router(state: SharedState) -> Router {
    let cfg = state.config();
    let timeout = cfg.server.request_timeout;
    let (api, webhook) = api_parts();
    let (api, _) = api.split_for_parts();
    let (webhook, _) = webhook.split_for_parts();
    let mut api = api.layer(DefaultBodyLimit::max(cfg.server.body_limit));
    // A failpoint for the test that a panicking handler answers 500 and the daemon serves on;
    // only present when the daemon is started with BEDRUD_TEST_PANIC_ROUTE=1.
    if std::env::var_os("BEDRUD_TEST_PANIC_ROUTE").is_some_and(|v| v == "1") {
        api = api.route("/api/test/panic", axum::routing::get(failpoint_panic));
    }
    api
        // The webhook gets its own, larger body limit.
        .merge(webhook.layer(DefaultBodyLimit::max(WEBHOOK_BODY_LIMIT)))
        .fallback(ui::fallback)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn(cookie::guard))
        .layer(axum::middleware::from_fn(common_headers))
        .layer(axum::middleware::from_fn_with_state(timeout, request_timeout))
        .layer(axum::middleware::from_fn_with_state(state.clone(), crate::metrics::track))
        .layer(axum::middleware::from_fn_with_state(state.clone(), client::forwarded_client))
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(panic_response))
        .with_state(state)
}

async fn failpoint_panic() -> &'static str {
    panic!("failpoint /api/test/panic")
}

/// A handler that panicked: 500 in the API's format; the connection and the daemon go on.
fn panic_response(err: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let what = err
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| err.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into());
    tracing::error!(panic = %what, "a request handler panicked");
    ApiError::internal("internal error; the server logged the details").into_response()
}

/// Headers on every answer: no content sniffing, no referrer leaving bedrud's pages, and API
/// answers (which carry personal data and tokens) never cached.
async fn common_headers(req: Request, next: Next) -> Response {
    let api = req.uri().path().starts_with("/api/");
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    h.insert("x-content-type-options", HeaderValue::from_static("nosniff"));
    h.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    if api && !h.contains_key(CACHE_CONTROL) {
        h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    resp
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", "method not allowed on this endpoint")
}

async fn request_timeout(State(limit): State<Duration>, req: Request, next: Next) -> Response {
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(r) => r,
        Err(_) => ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "timeout", "the request took too long").into_response(),
    }
}
