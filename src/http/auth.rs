//! `/api/auth/*`: registration (when open), login, logout, the caller's account, password change.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::cookie::{clear_session, session_cookie, set_session, with_cookie, Delivery};
use super::extract::{bearer, credential, resolve, AuthUser, Caller, ClientAddr, Json};
use super::SharedState;
use crate::accounts;
use crate::auth::{dummy_hash, new_token, token_key, user_session};
use crate::error::{ApiError, ErrorBody};
use crate::store::{self, Role, User, UserView};

pub fn routes() -> OpenApiRouter<SharedState> {
    OpenApiRouter::new()
        .routes(routes!(register))
        .routes(routes!(login))
        .routes(routes!(logout))
        .routes(routes!(me))
        .routes(routes!(change_password))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct Credentials {
    /// 3-32 lowercase letters, digits, `.`, `_` and `-`.
    username: String,
    /// At least 8 characters.
    password: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct Login {
    username: String,
    password: String,
    /// `"cookie"`: the web client's sign-in; the session goes into the cookie, not the answer.
    #[serde(default)]
    session: Delivery,
}

/// One user.
#[derive(Serialize, ToSchema)]
pub(super) struct UserAnswer {
    pub user: UserView,
}

/// A new session: the token is absent when it went into the session cookie.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(super) struct SessionAnswer {
    #[serde(skip_serializing_if = "Option::is_none")]
    token: Option<String>,
    /// Unix milliseconds.
    expires_at: u64,
    user: UserView,
}

/// Creates an account (when `auth.registration` is on). Does not sign in.
#[utoipa::path(post, path = "/api/auth/register", tag = "auth", security(()),
    request_body = Credentials,
    responses(
        (status = 201, description = "Created", body = UserAnswer),
        (status = 400, description = "`invalid_username`, `invalid_password`, `invalid_json`, `invalid_request`", body = ErrorBody),
        (status = 403, description = "`registration_closed`", body = ErrorBody),
        (status = 409, description = "`user_exists`", body = ErrorBody),
        (status = 413, description = "`payload_too_large`", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`", body = ErrorBody),
        (status = 503, description = "`busy`: too many password checks at once", body = ErrorBody),
    ))]
async fn register(State(st): State<SharedState>, Json(c): Json<Credentials>) -> Result<(StatusCode, axum::Json<UserAnswer>), ApiError> {
    if !st.config().auth.registration {
        return Err(ApiError::forbidden("registration is closed; ask an administrator for an account").with_code("registration_closed"));
    }
    let user = accounts::create_user(&st.store, &c.username, &c.password, Role::User).await?;
    Ok((StatusCode::CREATED, axum::Json(UserAnswer { user })))
}

/// Stores a new session for `user`: its token and when it expires.
pub(super) async fn issue_session(st: &SharedState, user: &User) -> Result<(String, u64), ApiError> {
    let (token, key) = new_token();
    let session = user_session(user, st.config().auth.session_ttl);
    let expires_at = session.expires_at;
    st.store.write(move |txn| store::session_put(txn, &key, &session)).await?;
    Ok((token, expires_at))
}

/// `Set-Cookie` with a new session's token.
pub(super) fn session_cookie_for(st: &SharedState, token: &str) -> axum::http::HeaderValue {
    let cfg = st.config();
    set_session(token, cfg.auth.session_ttl.as_secs(), cfg.server.tls_enabled())
}

/// Issues a new session for `user` and answers with it: the token in the body, or for the
/// web client in the session cookie.
pub(super) async fn start_session(st: &SharedState, user: &User, delivery: Delivery) -> Result<Response, ApiError> {
    let (token, expires_at) = issue_session(st, user).await?;
    Ok(match delivery {
        Delivery::Token => axum::Json(SessionAnswer { token: Some(token), expires_at, user: user.view() }).into_response(),
        Delivery::Cookie => with_cookie(
            axum::Json(SessionAnswer { token: None, expires_at, user: user.view() }).into_response(),
            session_cookie_for(st, &token),
        ),
    })
}

/// Signs in with a username and password.
#[utoipa::path(post, path = "/api/auth/login", tag = "auth", security(()),
    request_body = Login,
    responses(
        (status = 200, description = "A new session", body = SessionAnswer),
        (status = 400, description = "`invalid_json`, `invalid_request`", body = ErrorBody),
        (status = 401, description = "`invalid_credentials`", body = ErrorBody),
        (status = 403, description = "`user_disabled`", body = ErrorBody),
        (status = 413, description = "`payload_too_large`", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`", body = ErrorBody),
        (status = 429, description = "`too_many_attempts` (with Retry-After)", body = ErrorBody),
        (status = 503, description = "`busy`: too many password checks at once", body = ErrorBody),
    ))]
async fn login(State(st): State<SharedState>, ClientAddr(addr): ClientAddr, Json(c): Json<Login>) -> Result<Response, ApiError> {
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
    start_session(&st, &user, c.session).await
}

/// Ends the caller's session (a user's or a guest's) and removes the session cookie. A stale
/// cookie is removed too: the browser is signed out either way.
#[utoipa::path(post, path = "/api/auth/logout", tag = "auth", security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 204, description = "Signed out"),
        (status = 401, description = "`unauthorized`, `invalid_session`", body = ErrorBody),
    ))]
async fn logout(State(st): State<SharedState>, headers: HeaderMap) -> Result<Response, ApiError> {
    let clear = |resp: Response| match (bearer(&headers), session_cookie(&headers)) {
        (None, Some(_)) => with_cookie(resp, clear_session(st.config().server.tls_enabled())),
        _ => resp,
    };
    let key = match resolve(&st, credential(&headers)).await {
        Ok(Caller::User { token_key, .. }) => Some(token_key),
        Ok(Caller::Guest { .. }) => credential(&headers).map(token_key),
        Ok(Caller::Anonymous) => return Err(ApiError::unauthorized("not signed in")),
        Err(_) if bearer(&headers).is_none() => return Ok(clear(StatusCode::NO_CONTENT.into_response())),
        Err(e) => return Err(e),
    };
    if let Some(key) = key {
        st.store.write(move |txn| store::session_delete(txn, &key)).await?;
    }
    Ok(clear(StatusCode::NO_CONTENT.into_response()))
}

/// The signed-in user.
#[utoipa::path(get, path = "/api/auth/me", tag = "auth", security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 200, description = "The caller's account", body = UserAnswer),
        (status = 401, description = "`unauthorized`, `invalid_session`", body = ErrorBody),
        (status = 403, description = "`forbidden`: guests have no account", body = ErrorBody),
    ))]
async fn me(auth: AuthUser) -> axum::Json<UserAnswer> {
    axum::Json(UserAnswer { user: auth.user.view() })
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct PasswordChange {
    current_password: String,
    new_password: String,
}

/// Changes the caller's password; every session ends and a fresh one is returned.
#[utoipa::path(put, path = "/api/auth/password", tag = "auth", security(("bearer" = []), ("cookie" = [])),
    request_body = PasswordChange,
    responses(
        (status = 200, description = "A new session (the others ended)", body = SessionAnswer),
        (status = 400, description = "`invalid_password`, `invalid_json`, `invalid_request`", body = ErrorBody),
        (status = 401, description = "`unauthorized`, `invalid_session`, `invalid_credentials`", body = ErrorBody),
        (status = 403, description = "`forbidden`: guests have no password", body = ErrorBody),
        (status = 413, description = "`payload_too_large`", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`", body = ErrorBody),
        (status = 503, description = "`busy`: too many password checks at once", body = ErrorBody),
    ))]
async fn change_password(State(st): State<SharedState>, auth: AuthUser, Json(p): Json<PasswordChange>) -> Result<Response, ApiError> {
    if !accounts::verify(p.current_password, auth.user.password_hash.clone()).await? {
        return Err(ApiError::new(StatusCode::UNAUTHORIZED, "invalid_credentials", "current password is wrong"));
    }
    let user = accounts::set_password(&st.store, &auth.user.username, &p.new_password).await?;
    let delivery = if auth.via_cookie { Delivery::Cookie } else { Delivery::Token };
    start_session(&st, &user, delivery).await
}
