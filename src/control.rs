//! The local control socket. redb lets one process hold the database file, so while the daemon
//! runs, the CLI's user and room commands go through this Unix socket (mode 0600, next to the
//! database) and the daemon applies them with the same functions as the HTTP API.

use std::path::{Path, PathBuf};

use axum::extract::{Path as UrlPath, State};
use axum::http::StatusCode;
use axum::routing::{get, put};
use axum::Router;
use http_body_util::BodyExt;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tokio::net::{UnixListener, UnixStream};
use tokio_util::sync::CancellationToken;

use crate::accounts;
use crate::error::ApiError;
use crate::http::{Json, SharedState};
use crate::livekit::ApiKeys;
use crate::rooms;
use crate::store::{Role, Store};

/// The socket that belongs to a database file.
pub fn socket_path(db: &Path) -> PathBuf {
    let mut s = db.as_os_str().to_owned();
    s.push(".sock");
    PathBuf::from(s)
}

#[derive(Serialize, Deserialize)]
pub struct NewUser {
    pub username: String,
    pub password: String,
    pub admin: bool,
}

#[derive(Serialize, Deserialize)]
pub struct Password {
    pub password: String,
}

#[derive(Serialize, Deserialize)]
pub struct UserPatch {
    pub disabled: Option<bool>,
    pub admin: Option<bool>,
}

#[derive(Clone)]
struct Ctl {
    store: Store,
    keys: ApiKeys,
    /// The daemon's state, for `bedrud doctor`'s live checks.
    app: Option<SharedState>,
}

impl axum::extract::FromRef<Ctl> for Store {
    fn from_ref(c: &Ctl) -> Store {
        c.store.clone()
    }
}

fn router(store: Store, keys: ApiKeys, app: Option<SharedState>) -> Router {
    Router::new()
        .route("/v1/users", get(list_users).post(create_user))
        .route("/v1/users/{name}", put(update_user).delete(delete_user))
        .route("/v1/users/{name}/password", put(set_password))
        .route("/v1/rooms", get(list_rooms))
        .route("/v1/rooms/{name}", get(show_room))
        .route("/v1/livekit/keys", get(livekit_keys))
        .route("/v1/doctor", get(doctor))
        .with_state(Ctl { store, keys, app })
}

/// The LiveKit key pair in use (for `bedrud livekit print-config` while the daemon runs).
async fn livekit_keys(State(c): State<Ctl>) -> axum::Json<Value> {
    axum::Json(json!({ "key": c.keys.key, "secret": c.keys.secret }))
}

/// `bedrud doctor` run by the daemon (the CLI prints the report).
async fn doctor(State(c): State<Ctl>) -> Result<axum::Json<crate::doctor::Report>, ApiError> {
    let app = c.app.ok_or_else(|| ApiError::internal("this control socket has no daemon state"))?;
    Ok(axum::Json(crate::doctor::live(&app).await))
}

async fn list_users(State(s): State<Store>) -> Result<axum::Json<Value>, ApiError> {
    Ok(axum::Json(json!(accounts::list_users(&s).await?)))
}

async fn create_user(State(s): State<Store>, Json(u): Json<NewUser>) -> Result<(StatusCode, axum::Json<Value>), ApiError> {
    let role = if u.admin { Role::Admin } else { Role::User };
    let v = accounts::create_user(&s, &u.username, &u.password, role).await?;
    Ok((StatusCode::CREATED, axum::Json(json!(v))))
}

async fn update_user(State(s): State<Store>, UrlPath(name): UrlPath<String>, Json(p): Json<UserPatch>) -> Result<axum::Json<Value>, ApiError> {
    let role = p.admin.map(|a| if a { Role::Admin } else { Role::User });
    Ok(axum::Json(json!(accounts::update_user(&s, &name, role, p.disabled).await?)))
}

async fn delete_user(State(s): State<Store>, UrlPath(name): UrlPath<String>) -> Result<StatusCode, ApiError> {
    accounts::delete_user(&s, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn set_password(State(s): State<Store>, UrlPath(name): UrlPath<String>, Json(p): Json<Password>) -> Result<StatusCode, ApiError> {
    accounts::set_password(&s, &name, &p.password).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn list_rooms(State(s): State<Store>) -> Result<axum::Json<Value>, ApiError> {
    Ok(axum::Json(json!(rooms::list_all(&s).await?)))
}

async fn show_room(State(s): State<Store>, UrlPath(name): UrlPath<String>) -> Result<axum::Json<Value>, ApiError> {
    Ok(axum::Json(json!(rooms::get_view(&s, &name).await?)))
}

/// Binds the socket (replacing a stale one) and serves it until `shutdown`.
pub fn serve(path: &Path, store: Store, keys: ApiKeys, app: Option<SharedState>, shutdown: CancellationToken) -> std::io::Result<tokio::task::JoinHandle<()>> {
    use std::os::unix::fs::PermissionsExt;
    if path.exists() {
        // Only a daemon holding the database lock gets here, so a socket left behind is stale.
        std::fs::remove_file(path)?;
    }
    let listener = UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    let app = router(store, keys, app);
    let owned = path.to_path_buf();
    Ok(tokio::spawn(async move {
        let serve = axum::serve(listener, app).with_graceful_shutdown(shutdown.cancelled_owned());
        if let Err(e) = serve.await {
            tracing::warn!(error = %e, "control socket stopped");
        }
        let _ = std::fs::remove_file(&owned);
    }))
}

/// One request to a running daemon's control socket. Returns status and JSON body.
pub async fn call(path: &Path, method: &str, uri: &str, body: Option<Value>) -> Result<(StatusCode, Value), String> {
    let stream = UnixStream::connect(path)
        .await
        .map_err(|e| format!("cannot reach the running daemon at {}: {e}", path.display()))?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(conn);
    let req = hyper::Request::builder()
        .method(method)
        .uri(uri)
        .header("host", "bedrud")
        .header("content-type", "application/json")
        .body(http_body_util::Full::new(bytes_of(body)))
        .map_err(|e| e.to_string())?;
    let resp = sender.send_request(req).await.map_err(|e| e.to_string())?;
    let status = resp.status();
    let bytes = resp.into_body().collect().await.map_err(|e| e.to_string())?.to_bytes();
    let v = if bytes.is_empty() { Value::Null } else { serde_json::from_slice(&bytes).map_err(|e| e.to_string())? };
    Ok((status, v))
}

fn bytes_of(body: Option<Value>) -> axum::body::Bytes {
    body.map(|b| axum::body::Bytes::from(b.to_string())).unwrap_or_default()
}
