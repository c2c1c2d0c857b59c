//! `/api/auth/oidc/{provider}/*`: single sign-on with an OpenID Connect provider. Both are
//! top-level browser navigations and answer with redirects (303):
//!
//! - `GET start?next=/path` (anyone): to the provider's login, with the flow cookie set.
//! - `GET callback?code&state` (the provider sends the browser here): to `next` with the
//!   session cookie set; on any failure to `/signin?sso_error=<code>&provider=<name>`, codes
//!   `invalid_state`, `provider_unavailable`, `provider_refused`, `token_exchange_failed`,
//!   `invalid_id_token`, `wrong_audience`, `not_allowed`, `user_disabled`, `busy`.
//!
//! An unknown provider is a JSON 404 (`provider_not_found`).

use axum::extract::{Path, RawQuery, State};
use axum::http::header::{HOST, LOCATION};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::{issue_session, session_cookie_for};
use super::cookie::{cookie, flow_cookie, with_cookie, FLOW_COOKIE};
use super::SharedState;
use crate::error::{ApiError, ErrorBody};
use crate::oidc::{self, OidcError, FLOW_TTL};

pub fn routes() -> OpenApiRouter<SharedState> {
    OpenApiRouter::new().routes(routes!(start)).routes(routes!(callback))
}

fn redirect(location: &str) -> Response {
    let mut r = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(location) {
        r.headers_mut().insert(LOCATION, v);
    }
    r
}

/// A path of the web client to return to: relative, on this site, no scheme tricks.
fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n) if n.starts_with('/') && !n.starts_with("//") && !n.contains('\\') && !n.chars().any(char::is_control) && !n.starts_with("/api/") => n.to_string(),
        _ => "/".to_string(),
    }
}

fn query(raw: &Option<String>, key: &str) -> Option<String> {
    url::form_urlencoded::parse(raw.as_deref().unwrap_or("").as_bytes()).find(|(k, _)| k == key).map(|(_, v)| v.into_owned())
}

fn secure(st: &SharedState) -> bool {
    st.signin.oidc.redirect_uri("x").starts_with("https://")
}

/// Back to the sign-in page with the reason, the flow cookie removed.
fn failed(st: &SharedState, provider: &str, e: &OidcError) -> Response {
    tracing::warn!(provider, code = e.code(), "single sign-on failed: {e}");
    let to = format!("/signin?sso_error={}&provider={}", e.code(), url::form_urlencoded::byte_serialize(provider.as_bytes()).collect::<String>());
    with_cookie(redirect(&to), flow_cookie("", 0, secure(st)))
}

/// Starts single sign-on (a browser navigation): to the provider's login with PKCE, `state`
/// and `nonce`, and a 10-minute `HttpOnly` flow cookie.
#[utoipa::path(get, path = "/api/auth/oidc/{provider}/start", operation_id = "oidc_start", tag = "sso", security(()),
    params(
        ("provider" = String, Path, description = "The provider's `name` (see `/api/info`)"),
        ("next" = Option<String>, Query, description = "A path of this site to return to (default `/`)"),
    ),
    responses(
        (status = 303, description = "To the provider's login with the flow cookie set; on a request to another host than             `server.publicUrl`'s, first to this endpoint there; when the provider cannot be reached, to             `/signin?sso_error=provider_unavailable&provider=<name>`"),
        (status = 404, description = "`provider_not_found`", body = ErrorBody),
    ))]
async fn start(State(st): State<SharedState>, Path(provider): Path<String>, headers: HeaderMap, RawQuery(raw): RawQuery) -> Result<Response, ApiError> {
    let oidc = &st.signin.oidc;
    oidc.provider(&provider).map_err(|e| ApiError::not_found("provider_not_found", e.to_string()))?;
    // The flow cookie must be set on the host the provider sends the browser back to.
    let callback = oidc.redirect_uri(&provider);
    let public_host = url::Url::parse(&callback).ok().map(|u| match u.port() {
        Some(p) => format!("{}:{p}", u.host_str().unwrap_or("")),
        None => u.host_str().unwrap_or("").to_string(),
    });
    let host = headers.get(HOST).and_then(|h| h.to_str().ok()).map(str::to_ascii_lowercase);
    if let (Some(public), Some(host)) = (public_host, host) {
        if public != host {
            let base = callback.trim_end_matches("/callback");
            let q = raw.as_deref().map(|q| format!("?{q}")).unwrap_or_default();
            return Ok(redirect(&format!("{base}/start{q}")));
        }
    }
    let next = safe_next(query(&raw, "next").as_deref());
    Ok(match oidc.begin(&provider, next).await {
        Ok((flow, url)) => with_cookie(redirect(&url), flow_cookie(&flow, FLOW_TTL.as_secs(), secure(&st))),
        Err(e) => failed(&st, &provider, &e),
    })
}

/// Where the provider sends the browser back: signs in (linking or creating the account) and
/// continues to `next` with the session cookie.
#[utoipa::path(get, path = "/api/auth/oidc/{provider}/callback", operation_id = "oidc_callback", tag = "sso", security(()),
    params(
        ("provider" = String, Path, description = "The provider's `name`"),
        ("code" = Option<String>, Query, description = "The authorization code"),
        ("state" = Option<String>, Query, description = "The flow's `state`"),
        ("iss" = Option<String>, Query, description = "The issuer (RFC 9207), checked when sent"),
        ("error" = Option<String>, Query, description = "The provider's refusal"),
        ("error_description" = Option<String>, Query, description = "Why the provider refused"),
    ),
    responses(
        (status = 303, description = "Signed in: to `next` with the session cookie. Failed: to             `/signin?sso_error=<code>&provider=<name>` with one of the codes `invalid_state`, `provider_unavailable`,             `provider_refused`, `token_exchange_failed`, `invalid_id_token`, `wrong_audience`, `not_allowed`,             `user_disabled`, `busy`"),
        (status = 404, description = "`provider_not_found`", body = ErrorBody),
    ))]
async fn callback(State(st): State<SharedState>, Path(provider): Path<String>, headers: HeaderMap, RawQuery(raw): RawQuery) -> Result<Response, ApiError> {
    let oidc = &st.signin.oidc;
    let p = oidc.provider(&provider).map_err(|e| ApiError::not_found("provider_not_found", e.to_string()))?;
    let outcome = async {
        let flow = oidc.take_flow(cookie(&headers, FLOW_COOKIE), &provider)?;
        if let Some(err) = query(&raw, "error") {
            let desc = query(&raw, "error_description").unwrap_or_default();
            return Err(OidcError::Refused(format!("{err} {desc}").trim().to_string()));
        }
        let (Some(code), Some(state)) = (query(&raw, "code"), query(&raw, "state")) else { return Err(OidcError::InvalidState) };
        let (issuer, person) = oidc.complete(&p, &flow, &state, &code, query(&raw, "iss").as_deref()).await?;
        let admin = oidc::admit(&p.cfg, &person)?;
        let user = oidc::sign_in(&st.store, &p.cfg, &issuer, person, admin).await?;
        Ok((user, flow.next))
    }
    .await;
    let (user, next) = match outcome {
        Ok(v) => v,
        Err(e) => return Ok(failed(&st, &provider, &e)),
    };
    let (token, _) = issue_session(&st, &user).await?;
    tracing::info!(user = %user.username, provider = %provider, "signed in through single sign-on");
    let resp = with_cookie(redirect(&next), session_cookie_for(&st, &token));
    Ok(with_cookie(resp, flow_cookie("", 0, secure(&st))))
}

#[cfg(test)]
mod tests {
    use super::safe_next;

    #[test]
    fn next_stays_on_this_site() {
        assert_eq!(safe_next(Some("/r/team-sync")), "/r/team-sync");
        for bad in ["//evil.example", "https://evil.example", "/\\evil.example", "r/x", "/api/auth/logout", "/a\nb"] {
            assert_eq!(safe_next(Some(bad)), "/", "{bad:?}");
        }
        assert_eq!(safe_next(None), "/");
    }
}
