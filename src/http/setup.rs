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
use axum::routing::get;
use axum::Router;
use serde::Deserialize;
use serde_json::{json, Value};

use super::auth::start_session;
use super::cookie::Delivery;
use super::extract::Json;
use super::SharedState;
use crate::error::ApiError;
use crate::setup;

pub fn routes() -> Router<SharedState> {
    Router::new().route("/api/setup", get(needed).post(create_admin))
}

async fn needed(State(st): State<SharedState>) -> Result<axum::Json<Value>, ApiError> {
    Ok(axum::Json(json!({ "needed": setup::needed(&st.store).await? })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SetupRequest {
    token: String,
    username: String,
    password: String,
    #[serde(default)]
    session: Delivery,
}

async fn create_admin(State(st): State<SharedState>, Json(r): Json<SetupRequest>) -> Result<Response, ApiError> {
    let user = setup::complete(&st.store, &r.token, r.username.trim(), &r.password).await?;
    let mut resp = start_session(&st, &user, r.session).await?;
    *resp.status_mut() = StatusCode::CREATED;
    Ok(resp.into_response())
}
