//! The API described as an OpenAPI 3.1 document, generated from the handlers' `#[utoipa::path]`
//! attributes: the router and the document come from the same `routes!` calls, so every route
//! served under `/api/` is described. Served at `/api/openapi.json` and printed by
//! `bedrud openapi`.
//!
//! Conventions every operation follows (checked by the API tests):
//! - `security` is always present: `[]`-scoped `bearer`/`cookie` for any signed-in user,
//!   `["admin"]` for administrators, and an empty requirement `{}` where anonymous callers are
//!   served too.
//! - Each error answer's description lists its codes in backquotes, e.g. "`room_not_found`".

use std::sync::OnceLock;

use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::cookie::SESSION_COOKIE;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "bedrud",
        description = "bedrud's HTTP API: accounts and sessions, single sign-on, passkeys, mail links, rooms and join tokens, moderation, \
                       invite links, lobbies and running meetings, recording, \
                       administration and LiveKit's webhook. Errors are `{\"error\": {\"code\", \"message\"}}` \
                       with the codes each operation lists; any operation may also answer `csrf_rejected` (403), \
                       `method_not_allowed` (405), `internal` (500), `timeout`, `store_unavailable`, \
                       `store_read_only` (503) and `insufficient_storage` (507). Browsers use the session cookie \
                       and must send `Origin` on writes; other clients send `Authorization: Bearer <token>`.",
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    components(schemas(crate::error::ErrorBody)),
    modifiers(&Security),
    tags(
        (name = "health", description = "Liveness, readiness and public facts"),
        (name = "auth", description = "Accounts and sessions"),
        (name = "sso", description = "Single sign-on with OpenID Connect providers (browser navigations)"),
        (name = "passkeys", description = "Passkeys (WebAuthn): managing the caller's own, and signing in with one"),
        (name = "mail", description = "The account's e-mail address: verification and password reset links"),
        (name = "setup", description = "First-run creation of the administrator"),
        (name = "rooms", description = "Rooms, join tokens and moderation"),
        (name = "recording", description = "Recording rooms through LiveKit Egress, and the recordings' files"),
        (name = "meeting", description = "Running a meeting: invite links, lock, bans, ending it for all, raised hands, the stage and the spotlight"),
        (name = "lobby", description = "The people waiting to be let into a meeting"),
        (name = "admin", description = "Administration (administrators only)"),
        (name = "livekit", description = "LiveKit's webhook"),
    )
)]
pub struct ApiDoc;

struct Security;

impl Modify for Security {
    fn modify(&self, api: &mut utoipa::openapi::OpenApi) {
        let c = api.components.get_or_insert_with(Default::default);
        c.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).description(Some("A session token from /api/auth/login")).build()),
        );
        c.add_security_scheme("cookie", SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(SESSION_COOKIE, "The web client's session (HttpOnly)"))));
    }
}

/// The document as JSON (built once).
pub fn json() -> &'static str {
    static DOC: OnceLock<String> = OnceLock::new();
    DOC.get_or_init(|| {
        let (_, doc) = super::api_routes().split_for_parts();
        doc.to_pretty_json().expect("the API document serializes")
    })
}

/// This document.
#[utoipa::path(get, path = "/api/openapi.json", tag = "health", security(()),
    responses((status = 200, description = "The OpenAPI 3.1 document", content_type = "application/json")))]
pub(super) async fn serve() -> impl axum::response::IntoResponse {
    ([(axum::http::header::CONTENT_TYPE, "application/json")], json())
}
