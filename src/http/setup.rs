//! `/api/setup`: the first administrator, made through the one-time link the daemon logs while
//! none exists (see `crate::setup`).
//!
//! - `GET /api/setup` (anyone) → `{"needed": true|false}`: whether the web client should offer
//!   the setup form. Says nothing secret.
//! - `POST /api/setup` `{token, username, password, session?}` → 201 `{user, token, expiresAt}`
//!   (signed in), or with `"session": "cookie"` `{user, expiresAt}` plus the session cookie, as
//!   `POST /api/auth/login` does. 403 `invalid_setup_token`, 409 `setup_done` once an
//!   administrator exists, 400 `invalid_username` / `invalid_password`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::start_session;
use super::cookie::Delivery;
use super::extract::Json;
use super::SharedState;
use crate::error::{ApiError, ErrorBody};
use crate::setup;

pub fn routes() -> OpenApiRouter<SharedState> {
    OpenApiRouter::new().routes(routes!(needed, create_admin))
}

#[derive(Serialize, ToSchema)]
pub(super) struct SetupNeeded {
    /// No administrator exists yet: the setup link from the log creates one.
    needed: bool,
}

/// Whether the first administrator still has to be created.
#[utoipa::path(get, path = "/api/setup", tag = "setup", security(()),
    responses((status = 200, description = "Whether setup is pending", body = SetupNeeded)))]
async fn needed(State(st): State<SharedState>) -> Result<axum::Json<SetupNeeded>, ApiError> {
    Ok(axum::Json(SetupNeeded { needed: setup::needed(&st.store).await? }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct SetupRequest {
    /// The token of the setup link bedrud logs at start while no administrator exists.
    token: String,
    username: String,
    password: String,
    #[serde(default)]
    session: Delivery,
}

/// Creates the first administrator with the setup link's token and signs them in.
#[utoipa::path(post, path = "/api/setup", tag = "setup", security(()),
    request_body = SetupRequest,
    responses(
        (status = 201, description = "The administrator, signed in", body = super::auth::SessionAnswer),
        (status = 400, description = "`invalid_username`, `invalid_password`, `invalid_json`, `invalid_request`", body = ErrorBody),
        (status = 403, description = "`invalid_setup_token`", body = ErrorBody),
        (status = 409, description = "`setup_done`, `user_exists`", body = ErrorBody),
        (status = 413, description = "`payload_too_large`", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`", body = ErrorBody),
        (status = 503, description = "`busy`: too many password checks at once", body = ErrorBody),
    ))]
async fn create_admin(State(st): State<SharedState>, Json(r): Json<SetupRequest>) -> Result<Response, ApiError> {
    let user = setup::complete(&st.store, &r.token, r.username.trim(), &r.password).await?;
    let mut resp = start_session(&st, &user, r.session).await?;
    *resp.status_mut() = StatusCode::CREATED;
    Ok(resp.into_response())
}
