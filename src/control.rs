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
        .route("/v1/backup", get(backup))
        .with_state(Ctl { store, keys, app })
}

/// A consistent copy of the store, made next to the database and streamed to the caller.
async fn backup(State(s): State<Store>) -> Result<axum::response::Response, ApiError> {
    let tmp = s.path().with_extension(format!("backup-{}.tmp", uuid::Uuid::new_v4()));
    let t = tmp.clone();
    let made = tokio::task::spawn_blocking(move || s.backup_to(&t)).await.map_err(|e| ApiError::internal(e.to_string()))?;
    if let Err(e) = made {
        let _ = std::fs::remove_file(&tmp);
        return Err(e.into());
    }
    let file = tokio::fs::File::open(&tmp).await.map_err(|e| ApiError::internal(e.to_string()));
    // The open file stays readable after the name is gone.
    let _ = std::fs::remove_file(&tmp);
    let body = axum::body::Body::from_stream(tokio_util::io::ReaderStream::new(file?));
    Ok(axum::response::Response::builder()
        .header("content-type", "application/octet-stream")
        .body(body)
        .map_err(|e| ApiError::internal(e.to_string()))?)
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
    Ok(axum::Json(json!(accounts::list_users(&s, None, usize::MAX).await?)))
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

/// Sends one request to a running daemon's control socket; the answer's body is left to read.
async fn send(path: &Path, method: &str, uri: &str, body: Option<Value>) -> Result<hyper::Response<hyper::body::Incoming>, String> {
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
    sender.send_request(req).await.map_err(|e| e.to_string())
}

/// One request to a running daemon's control socket. Returns status and JSON body.
pub async fn call(path: &Path, method: &str, uri: &str, body: Option<Value>) -> Result<(StatusCode, Value), String> {
    let resp = send(path, method, uri, body).await?;
    let status = resp.status();
    let bytes = resp.into_body().collect().await.map_err(|e| e.to_string())?.to_bytes();
    let v = if bytes.is_empty() { Value::Null } else { serde_json::from_slice(&bytes).map_err(|e| e.to_string())? };
    Ok((status, v))
}

/// Streams the body of a GET on the control socket into the new file `dest`.
pub async fn download(path: &Path, uri: &str, dest: &Path) -> Result<(), String> {
    use tokio::io::AsyncWriteExt;
    let resp = send(path, "GET", uri, None).await?;
    let status = resp.status();
    let mut body = resp.into_body();
    if !status.is_success() {
        let bytes = body.collect().await.map_err(|e| e.to_string())?.to_bytes();
        let v: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        return Err(format!("{} ({})", v["error"]["message"].as_str().unwrap_or("request failed"), v["error"]["code"].as_str().unwrap_or("")));
    }
    let write_err = |e: std::io::Error| format!("cannot write {}: {e}", dest.display());
    let mut out = tokio::fs::OpenOptions::new().write(true).create_new(true).open(dest).await.map_err(write_err)?;
    let r: Result<(), String> = async {
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| format!("the daemon stopped sending: {e}"))?;
            if let Some(data) = frame.data_ref() {
                out.write_all(data).await.map_err(write_err)?;
            }
        }
        out.sync_all().await.map_err(write_err)
    }
    .await;
    if r.is_err() {
        let _ = tokio::fs::remove_file(dest).await;
    }
    r
}

fn bytes_of(body: Option<Value>) -> axum::body::Bytes {
    body.map(|b| axum::body::Bytes::from(b.to_string())).unwrap_or_default()
}
