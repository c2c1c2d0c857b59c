//! Passkeys: `/api/auth/passkeys*` manages the signed-in user's own, `/api/auth/passkey/*`
//! signs in with one. Each ceremony is two calls: `options` gives the browser a challenge
//! (and a `ceremony` id), the second call sends what the authenticator made of it.
//!
//! | endpoint | who | answers |
//! |---|---|---|
//! | `GET /api/auth/passkeys` | user | `{passkeys: [{id, name, createdAt, lastUsedAt}]}` |
//! | `POST /api/auth/passkeys/options` | user | `{ceremony, publicKey}` (creation options) |
//! | `POST /api/auth/passkeys` `{ceremony, name, credential}` | user | 201 `{passkey}`; 400 `ceremony_expired` / `passkey_rejected` / `invalid_name`; 409 `too_many_passkeys` |
//! | `DELETE /api/auth/passkeys/{id}` | user | 204; 404 `passkey_not_found` |
//! | `POST /api/auth/passkey/options` `{username}` | anyone | `{ceremony, publicKey}` (request options); 400 `no_passkeys`; 429 |
//! | `POST /api/auth/passkey/login` `{ceremony, credential, session?}` | anyone | as `POST /api/auth/login`; 400 `ceremony_expired`; 401 `passkey_rejected`; 403 `user_disabled`; 429 |
//!
//! With passkeys off every one answers 404 `passkeys_disabled`.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use webauthn_rs::prelude::{PublicKeyCredential, RegisterPublicKeyCredential};

use super::auth::{start_session, SessionAnswer};
use super::cookie::Delivery;
use super::extract::{AuthUser, ClientAddr, Json};
use super::SharedState;
use crate::error::{ApiError, ErrorBody};
use crate::passkeys::{credential_id, PasskeyError, Passkeys, MAX_PER_USER};
use crate::store::{self, now_ms, PasskeyRecord, StoreError};

pub fn routes() -> OpenApiRouter<SharedState> {
    OpenApiRouter::new()
        .routes(routes!(list, register))
        .routes(routes!(register_options))
        .routes(routes!(remove))
        .routes(routes!(login_options))
        .routes(routes!(login))
}

fn enabled(st: &SharedState) -> Result<&Passkeys, ApiError> {
    st.signin.passkeys.as_ref().ok_or_else(|| {
        ApiError::not_found("passkeys_disabled", "passkeys are off on this server (auth.passkeys, or server.publicUrl is an IP address)")
    })
}

fn api_error(e: PasskeyError, rejected: StatusCode) -> ApiError {
    match e {
        PasskeyError::Expired => ApiError::bad_request("ceremony_expired", e.to_string()),
        PasskeyError::Rejected(_) => ApiError::new(rejected, "passkey_rejected", e.to_string()),
        PasskeyError::Busy => ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "busy", e.to_string()),
        PasskeyError::Internal(m) => ApiError::internal(m),
    }
}

/// One of the caller's passkeys.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(super) struct PasskeyView {
    /// The credential id (base64url).
    id: String,
    name: String,
    /// Unix milliseconds.
    created_at: u64,
    /// Unix milliseconds of the last sign-in with it.
    last_used_at: Option<u64>,
}

fn view(p: &PasskeyRecord) -> PasskeyView {
    PasskeyView { id: p.id.clone(), name: p.name.clone(), created_at: p.created_at, last_used_at: p.last_used_at }
}

#[derive(Serialize, ToSchema)]
pub(super) struct PasskeyList {
    passkeys: Vec<PasskeyView>,
}

#[derive(Serialize, ToSchema)]
pub(super) struct PasskeyAnswer {
    passkey: PasskeyView,
}

/// A WebAuthn challenge: the options for the browser (binary fields in base64url) and the
/// ceremony id to send back with the authenticator's answer.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(super) struct CeremonyAnswer {
    ceremony: String,
    /// `PublicKeyCredentialCreationOptions` or `PublicKeyCredentialRequestOptions` (WebAuthn).
    #[schema(value_type = std::collections::HashMap<String, serde_json::Value>)]
    public_key: Value,
    /// WebAuthn's `mediation`, when the ceremony asks for one.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    mediation: Option<Value>,
}

/// The challenge answer: webauthn-rs's `{publicKey: {...}}` with the ceremony id beside it.
fn with_ceremony(ceremony: String, options: impl serde::Serialize) -> Result<axum::Json<CeremonyAnswer>, ApiError> {
    let v = serde_json::to_value(options).map_err(|e| ApiError::internal(e.to_string()))?;
    let Value::Object(mut m) = v else { return Err(ApiError::internal("WebAuthn options are not an object")) };
    let public_key = m.remove("publicKey").ok_or_else(|| ApiError::internal("WebAuthn options without publicKey"))?;
    Ok(axum::Json(CeremonyAnswer { ceremony, public_key, mediation: m.remove("mediation").filter(|v| !v.is_null()) }))
}

/// The caller's passkeys.
#[utoipa::path(get, path = "/api/auth/passkeys", operation_id = "list_passkeys", tag = "passkeys", security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 200, description = "The caller's passkeys", body = PasskeyList),
        (status = 401, description = "`unauthorized`, `invalid_session`", body = ErrorBody),
        (status = 403, description = "`forbidden`: guests have no account", body = ErrorBody),
        (status = 404, description = "`passkeys_disabled`", body = ErrorBody),
    ))]
async fn list(State(st): State<SharedState>, auth: AuthUser) -> Result<axum::Json<PasskeyList>, ApiError> {
    enabled(&st)?;
    let id = auth.user.id.clone();
    let keys = st.store.read(move |txn| store::passkeys_of(txn, &id)).await?;
    Ok(axum::Json(PasskeyList { passkeys: keys.iter().map(view).collect() }))
}

/// Starts adding a passkey: creation options for `navigator.credentials.create`.
#[utoipa::path(post, path = "/api/auth/passkeys/options", operation_id = "passkey_creation_options", tag = "passkeys", security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 200, description = "Creation options and the ceremony id", body = CeremonyAnswer),
        (status = 400, description = "`passkey_rejected`: WebAuthn refused to start", body = ErrorBody),
        (status = 401, description = "`unauthorized`, `invalid_session`", body = ErrorBody),
        (status = 403, description = "`forbidden`: guests have no account", body = ErrorBody),
        (status = 404, description = "`passkeys_disabled`", body = ErrorBody),
        (status = 409, description = "`too_many_passkeys`", body = ErrorBody),
        (status = 503, description = "`busy`: too many ceremonies at once", body = ErrorBody),
    ))]
async fn register_options(State(st): State<SharedState>, auth: AuthUser) -> Result<axum::Json<CeremonyAnswer>, ApiError> {
    let pk = enabled(&st)?;
    let id = auth.user.id.clone();
    let existing = st.store.read(move |txn| store::passkeys_of(txn, &id)).await?;
    if existing.len() >= MAX_PER_USER {
        return Err(ApiError::conflict("too_many_passkeys", format!("an account holds at most {MAX_PER_USER} passkeys; remove one first")));
    }
    let (ceremony, ccr) = pk.start_registration(&auth.user, &existing).map_err(|e| api_error(e, StatusCode::BAD_REQUEST))?;
    with_ceremony(ceremony, ccr)
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct Register {
    /// From `/api/auth/passkeys/options`.
    ceremony: String,
    /// 1-64 characters, e.g. "Laptop".
    name: String,
    /// What `navigator.credentials.create` made (WebAuthn `RegistrationResponseJSON`).
    #[schema(value_type = std::collections::HashMap<String, serde_json::Value>)]
    credential: RegisterPublicKeyCredential,
}

/// Finishes adding a passkey with the authenticator's answer.
#[utoipa::path(post, path = "/api/auth/passkeys", operation_id = "add_passkey", tag = "passkeys", security(("bearer" = []), ("cookie" = [])),
    request_body = Register,
    responses(
        (status = 201, description = "Added", body = PasskeyAnswer),
        (status = 400, description = "`ceremony_expired`, `passkey_rejected`, `invalid_name`, `invalid_json`, `invalid_request`", body = ErrorBody),
        (status = 401, description = "`unauthorized`, `invalid_session`", body = ErrorBody),
        (status = 403, description = "`forbidden`: guests have no account", body = ErrorBody),
        (status = 404, description = "`passkeys_disabled`", body = ErrorBody),
        (status = 409, description = "`too_many_passkeys`", body = ErrorBody),
        (status = 413, description = "`payload_too_large`", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`", body = ErrorBody),
        (status = 503, description = "`busy`: too many ceremonies at once", body = ErrorBody),
    ))]
async fn register(State(st): State<SharedState>, auth: AuthUser, Json(r): Json<Register>) -> Result<(StatusCode, axum::Json<PasskeyAnswer>), ApiError> {
    let pk = enabled(&st)?;
    let name = r.name.trim().to_string();
    if name.is_empty() || name.chars().count() > 64 || name.chars().any(char::is_control) {
        return Err(ApiError::bad_request("invalid_name", "name the passkey with 1-64 characters, e.g. \"Laptop\""));
    }
    let passkey = pk.finish_registration(&auth.user, &r.ceremony, &r.credential).map_err(|e| api_error(e, StatusCode::BAD_REQUEST))?;
    let rec = PasskeyRecord { id: credential_id(passkey.cred_id()), user_id: auth.user.id.clone(), name, created_at: now_ms(), last_used_at: None, passkey };
    let out = view(&rec);
    st.store
        .write(move |txn| {
            let mine = store::passkeys_of_w(txn, &rec.user_id)?;
            if mine.len() >= MAX_PER_USER {
                return Err(StoreError::Conflict("too_many_passkeys".into()));
            }
            store::passkey_put(txn, &rec)
        })
        .await
        .map_err(|e| match e {
            StoreError::Conflict(_) => ApiError::conflict("too_many_passkeys", format!("an account holds at most {MAX_PER_USER} passkeys")),
            e => e.into(),
        })?;
    tracing::info!(user = %auth.user.username, "passkey registered");
    Ok((StatusCode::CREATED, axum::Json(PasskeyAnswer { passkey: out })))
}

/// Removes one of the caller's passkeys.
#[utoipa::path(delete, path = "/api/auth/passkeys/{id}", operation_id = "remove_passkey", tag = "passkeys", security(("bearer" = []), ("cookie" = [])),
    params(("id" = String, Path, description = "The passkey's id")),
    responses(
        (status = 204, description = "Removed"),
        (status = 401, description = "`unauthorized`, `invalid_session`", body = ErrorBody),
        (status = 403, description = "`forbidden`: guests have no account", body = ErrorBody),
        (status = 404, description = "`passkeys_disabled`, `passkey_not_found` (only the caller's own are found)", body = ErrorBody),
    ))]
async fn remove(State(st): State<SharedState>, auth: AuthUser, Path(id): Path<String>) -> Result<StatusCode, ApiError> {
    enabled(&st)?;
    let user = auth.user.id.clone();
    let removed = st.store.write(move |txn| store::passkey_delete(txn, &user, &id)).await?;
    if !removed {
        return Err(ApiError::not_found("passkey_not_found", "you have no passkey with this id"));
    }
    tracing::info!(user = %auth.user.username, "passkey removed");
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct LoginOptions {
    username: String,
}

fn too_many(wait: u64) -> ApiError {
    let mut e = ApiError::new(StatusCode::TOO_MANY_REQUESTS, "too_many_attempts", format!("too many failed sign-ins; try again in {wait} s"));
    e.retry_after = Some(wait);
    e
}

/// Starts signing in with a passkey: request options listing that account's passkeys.
#[utoipa::path(post, path = "/api/auth/passkey/options", operation_id = "passkey_request_options", tag = "passkeys", security(()),
    request_body = LoginOptions,
    responses(
        (status = 200, description = "Request options and the ceremony id", body = CeremonyAnswer),
        (status = 400, description = "`no_passkeys` (also for an unknown username), `invalid_json`, `invalid_request`", body = ErrorBody),
        (status = 401, description = "`passkey_rejected`: WebAuthn refused to start", body = ErrorBody),
        (status = 404, description = "`passkeys_disabled`", body = ErrorBody),
        (status = 413, description = "`payload_too_large`", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`", body = ErrorBody),
        (status = 429, description = "`too_many_attempts` (with Retry-After)", body = ErrorBody),
        (status = 503, description = "`busy`: too many ceremonies at once", body = ErrorBody),
    ))]
async fn login_options(State(st): State<SharedState>, ClientAddr(addr): ClientAddr, Json(o): Json<LoginOptions>) -> Result<axum::Json<CeremonyAnswer>, ApiError> {
    let pk = enabled(&st)?;
    let name = o.username.trim().to_ascii_lowercase();
    if let Some(wait) = st.limiter.check(&name, addr.map(|a| a.ip())) {
        return Err(too_many(wait));
    }
    let n = name.clone();
    let found = st
        .store
        .read(move |txn| match store::user_by_name(txn, &n)? {
            Some(u) => Ok(Some((u.id.clone(), store::passkeys_of(txn, &u.id)?))),
            None => Ok(None),
        })
        .await?;
    // An unknown name and a name without passkeys answer alike.
    let Some((user_id, keys)) = found.filter(|(_, k)| !k.is_empty()) else {
        return Err(ApiError::bad_request("no_passkeys", "no passkey is registered for this username; sign in with the password"));
    };
    let (ceremony, rcr) = pk.start_login(&user_id, &keys).map_err(|e| api_error(e, StatusCode::UNAUTHORIZED))?;
    with_ceremony(ceremony, rcr)
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct PasskeyLogin {
    /// From `/api/auth/passkey/options`.
    ceremony: String,
    /// What `navigator.credentials.get` made (WebAuthn `AuthenticationResponseJSON`).
    #[schema(value_type = std::collections::HashMap<String, serde_json::Value>)]
    credential: PublicKeyCredential,
    /// `"cookie"`: the web client's sign-in; the session goes into the cookie, not the answer.
    #[serde(default)]
    session: Delivery,
}

/// Signs in with the authenticator's answer; answers as `/api/auth/login`.
#[utoipa::path(post, path = "/api/auth/passkey/login", operation_id = "passkey_login", tag = "passkeys", security(()),
    request_body = PasskeyLogin,
    responses(
        (status = 200, description = "A new session (no token when it went into the cookie)", body = SessionAnswer),
        (status = 400, description = "`ceremony_expired`, `invalid_json`, `invalid_request`", body = ErrorBody),
        (status = 401, description = "`passkey_rejected`", body = ErrorBody),
        (status = 403, description = "`user_disabled`", body = ErrorBody),
        (status = 404, description = "`passkeys_disabled`", body = ErrorBody),
        (status = 413, description = "`payload_too_large`", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`", body = ErrorBody),
        (status = 429, description = "`too_many_attempts` (with Retry-After)", body = ErrorBody),
        (status = 503, description = "`busy`: too many ceremonies at once", body = ErrorBody),
    ))]
async fn login(State(st): State<SharedState>, ClientAddr(addr): ClientAddr, Json(l): Json<PasskeyLogin>) -> Result<Response, ApiError> {
    let pk = enabled(&st)?;
    let ip = addr.map(|a| a.ip());
    let (user_id, result) = pk.finish_login(&l.ceremony, &l.credential).map_err(|e| api_error(e, StatusCode::UNAUTHORIZED))?;
    let result = match result {
        Ok(r) => r,
        Err(e) => {
            // The ceremony named the account: the failure counts against it.
            tracing::info!(client = ?ip, "passkey sign-in rejected: {e}");
            let uid = user_id.clone();
            if let Ok(Some(u)) = st.store.read(move |txn| store::user_by_id(txn, &uid)).await {
                st.limiter.failed(&u.username, ip);
            }
            return Err(api_error(e, StatusCode::UNAUTHORIZED));
        }
    };
    let cred = credential_id(result.cred_id());
    let user = st
        .store
        .write(move |txn| {
            let user = store::user_by_id_w(txn, &user_id)?.ok_or(StoreError::NotFound("user"))?;
            let mut rec = store::passkeys_of_w(txn, &user_id)?.into_iter().find(|p| p.id == cred).ok_or(StoreError::NotFound("passkey"))?;
            rec.passkey.update_credential(&result);
            rec.last_used_at = Some(now_ms());
            store::passkey_put(txn, &rec)?;
            Ok(user)
        })
        .await
        .map_err(|e| match e {
            // Removed (or its account deleted) between the two calls.
            StoreError::NotFound(_) => ApiError::new(StatusCode::UNAUTHORIZED, "passkey_rejected", "this passkey is no longer registered"),
            e => e.into(),
        })?;
    if user.disabled {
        return Err(ApiError::forbidden("this account is disabled").with_code("user_disabled"));
    }
    st.limiter.succeeded(&user.username, ip);
    tracing::info!(user = %user.username, "signed in with a passkey");
    start_session(&st, &user, l.session).await
}
