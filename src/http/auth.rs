//! `/api/auth/*`: registration (when open), login, logout, the caller's account, password change.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post, put};
use axum::Router;
use serde::Deserialize;
use serde_json::{json, Value};

use super::extract::{AuthUser, ClientAddr, Json};
use super::SharedState;
use crate::accounts;
use crate::auth::{dummy_hash, new_token, user_session};
use crate::error::ApiError;
use crate::store::{self, Role, User};

pub fn routes() -> Router<SharedState> {
    Router::new()
        .route("/api/auth/register", post(register))
        .route("/api/auth/login", post(login))
        .route("/api/auth/logout", post(logout))
        .route("/api/auth/me", get(me))
        .route("/api/auth/password", put(change_password))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Credentials {
    username: String,
    password: String,
}

async fn register(State(st): State<SharedState>, Json(c): Json<Credentials>) -> Result<(StatusCode, axum::Json<Value>), ApiError> {
    if !st.config().auth.registration {
        return Err(ApiError::forbidden("registration is closed; ask an administrator for an account").with_code("registration_closed"));
    }
    let user = accounts::create_user(&st.store, &c.username, &c.password, Role::User).await?;
    Ok((StatusCode::CREATED, axum::Json(json!({ "user": user }))))
}

/// Issues a new session for `user` and returns the login answer.
pub(super) async fn start_session(st: &SharedState, user: &User) -> Result<Value, ApiError> {
    let (token, key) = new_token();
    let session = user_session(user, st.config().auth.session_ttl);
    let expires_at = session.expires_at;
    st.store.write(move |txn| store::session_put(txn, &key, &session)).await?;
    Ok(json!({ "token": token, "expiresAt": expires_at, "user": user.view() }))
}

async fn login(State(st): State<SharedState>, ClientAddr(addr): ClientAddr, Json(c): Json<Credentials>) -> Result<axum::Json<Value>, ApiError> {
    let ip = addr.map(|a| a.ip());
    let name = c.username.trim().to_ascii_lowercase();
    if let Some(wait) = st.limiter.check(&name, ip) {
        let mut e = ApiError::new(StatusCode::TOO_MANY_REQUESTS, "too_many_attempts", format!("too many failed logins; try again in {wait} s"));
        e.retry_after = Some(wait);
        return Err(e);
    }
    let n = name.clone();
    let user = st.store.read(move |txn| store::user_by_name(txn, &n)).await?;
    // Verify against a dummy hash for unknown users so timing does not reveal which names exist.
    let hash = user.as_ref().map(|u| u.password_hash.clone()).unwrap_or_else(|| dummy_hash().to_string());
    let ok = accounts::verify(c.password, hash).await?;
    let user = match user {
        Some(u) if ok => u,
        _ => {
            st.limiter.failed(&name, ip);
            tracing::info!(username = %name, client = ?ip, "failed login");
            return Err(ApiError::new(StatusCode::UNAUTHORIZED, "invalid_credentials", "wrong username or password"));
        }
    };
    if user.disabled {
        return Err(ApiError::forbidden("this account is disabled").with_code("user_disabled"));
    }
    st.limiter.succeeded(&name, ip);
    Ok(axum::Json(start_session(&st, &user).await?))
}

async fn logout(State(st): State<SharedState>, auth: AuthUser) -> Result<StatusCode, ApiError> {
    let key = auth.token_key;
    st.store.write(move |txn| store::session_delete(txn, &key)).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn me(auth: AuthUser) -> axum::Json<Value> {
    axum::Json(json!({ "user": auth.user.view() }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct PasswordChange {
    current_password: String,
    new_password: String,
}

/// Changes the caller's password; every session ends and a fresh one is returned.
async fn change_password(State(st): State<SharedState>, auth: AuthUser, Json(p): Json<PasswordChange>) -> Result<axum::Json<Value>, ApiError> {
    if !accounts::verify(p.current_password, auth.user.password_hash.clone()).await? {
        return Err(ApiError::new(StatusCode::UNAUTHORIZED, "invalid_credentials", "current password is wrong"));
    }
    let user = accounts::set_password(&st.store, &auth.user.username, &p.new_password).await?;
    Ok(axum::Json(start_session(&st, &user).await?))
}
