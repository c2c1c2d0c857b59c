//! Request extractors that answer in the API's JSON error format: the JSON body, the client's
//! address, and the caller's session.

use std::net::SocketAddr;

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use redb::ReadTransaction;
use serde::de::DeserializeOwned;

use super::cookie::session_cookie;
use super::SharedState;
use crate::auth::token_key;
use crate::error::ApiError;
use crate::store::{self, now_ms, Session, SessionKind, StoreError, User};

/// `axum::extract::Query`, with rejections (a bad value, an unknown parameter) as
/// `400 invalid_request`.
pub struct Query<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(v)) => Ok(Query(v)),
            Err(e) => Err(ApiError::bad_request("invalid_request", e.body_text())),
        }
    }
}

/// `axum::Json`, with rejections as API errors.
pub struct Json<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Json<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(Json(v)),
            Err(e) => Err(json_rejection(e)),
        }
    }
}

fn json_rejection(e: JsonRejection) -> ApiError {
    match e {
        JsonRejection::MissingJsonContentType(_) => ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send the body as JSON with Content-Type: application/json",
        ),
        JsonRejection::JsonSyntaxError(e) => ApiError::bad_request("invalid_json", format!("malformed JSON: {}", e.body_text())),
        JsonRejection::JsonDataError(e) => ApiError::bad_request("invalid_request", e.body_text()),
        other if other.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", "request body is too large")
        }
        other => ApiError::bad_request("invalid_request", other.body_text()),
    }
}

/// The peer address of the connection (set by the server loop).
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub Option<SocketAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(parts.extensions.get::<ClientAddr>().copied().unwrap_or(ClientAddr(None)))
    }
}

/// The bearer token of the request, if any.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    let v = headers.get(axum::http::header::AUTHORIZATION)?.to_str().ok()?;
    let t = v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer "))?.trim();
    (!t.is_empty()).then_some(t)
}

/// The session token of the request: the bearer token, else the browser's session cookie.
pub fn credential(headers: &HeaderMap) -> Option<&str> {
    bearer(headers).or_else(|| session_cookie(headers))
}

/// Who is calling, as found from the bearer token.
#[derive(Debug, Clone)]
pub enum Caller {
    User { user: User, token_key: String },
    Guest { session: Session },
    Anonymous,
}

/// Resolves a bearer token to a caller. Revocation is checked on every request: a deleted
/// session, a disabled user or a bumped session epoch all end the session at once.
pub async fn resolve(state: &SharedState, token: Option<&str>) -> Result<Caller, ApiError> {
    let Some(token) = token else { return Ok(Caller::Anonymous) };
    let key = token_key(token);
    let found = state.store.read_blocking(|txn| lookup_session(txn, &key))?;
    caller_of(found, key)
}

/// The session stored under a token key and, for a user session, its user. Part of
/// [`resolve`], for handlers that read it in the same transaction as the rest of their data.
pub fn lookup_session(txn: &ReadTransaction, key: &str) -> Result<Option<(Session, Option<User>)>, StoreError> {
    let Some(s) = store::session_get(txn, key)? else { return Ok(None) };
    let user = match s.kind {
        SessionKind::User => store::user_by_id(txn, &s.subject)?,
        SessionKind::Guest => None,
    };
    Ok(Some((s, user)))
}

/// The caller a looked-up session stands for: expired sessions, disabled users and sessions of
/// an older epoch are refused.
pub fn caller_of(found: Option<(Session, Option<User>)>, key: String) -> Result<Caller, ApiError> {
    let invalid = || ApiError::new(StatusCode::UNAUTHORIZED, "invalid_session", "session expired or revoked; sign in again");
    let Some((session, user)) = found else { return Err(invalid()) };
    if session.expires_at <= now_ms() {
        return Err(invalid());
    }
    match session.kind {
        SessionKind::Guest => Ok(Caller::Guest { session }),
        SessionKind::User => match user {
            Some(u) if !u.disabled && u.session_epoch == session.epoch => Ok(Caller::User { user: u, token_key: key }),
            _ => Err(invalid()),
        },
    }
}

/// A signed-in user (401 otherwise).
pub struct AuthUser {
    pub user: User,
    /// The session came in the browser's cookie (not a bearer token).
    pub via_cookie: bool,
}

impl FromRequestParts<SharedState> for AuthUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &SharedState) -> Result<Self, Self::Rejection> {
        let via_cookie = bearer(&parts.headers).is_none();
        match resolve(state, credential(&parts.headers)).await? {
            Caller::User { user, .. } => Ok(AuthUser { user, via_cookie }),
            Caller::Guest { .. } => Err(ApiError::forbidden("guests cannot do this; sign in")),
            Caller::Anonymous => Err(ApiError::unauthorized("sign in first: send Authorization: Bearer <token>")),
        }
    }
}

/// A signed-in administrator (401 / 403 otherwise).
pub struct AdminUser;

impl FromRequestParts<SharedState> for AdminUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &SharedState) -> Result<Self, Self::Rejection> {
        let u = AuthUser::from_request_parts(parts, state).await?;
        if !u.user.is_admin() {
            return Err(ApiError::forbidden("administrators only"));
        }
        Ok(AdminUser)
    }
}

/// The store key of the session token (bearer or cookie), not looked up yet: for handlers that read the session
/// together with their own data in one transaction (then [`caller_of`] judges it).
pub struct BearerKey(pub Option<String>);

impl<S: Send + Sync> FromRequestParts<S> for BearerKey {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(BearerKey(credential(&parts.headers).map(token_key)))
    }
}

/// Anyone: a user, a guest, or nobody.
pub struct AnyCaller(pub Caller);

impl FromRequestParts<SharedState> for AnyCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &SharedState) -> Result<Self, Self::Rejection> {
        Ok(AnyCaller(resolve(state, credential(&parts.headers)).await?))
    }
}
