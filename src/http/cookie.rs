//! The browser's session cookie and the cross-site request check that goes with it.
//!
//! API clients send `Authorization: Bearer <token>`; the web client keeps the same kind of
//! session token in an `HttpOnly`, `SameSite=Lax` cookie that its scripts never see (`Secure`
//! when bedrud serves TLS). A cookie is sent by the browser on its own, so a state-changing
//! request that relies on it is accepted only when its `Origin` is bedrud's own.

use axum::extract::Request;
use axum::http::header::{COOKIE, HOST, ORIGIN, SET_COOKIE};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::extract::bearer;
use crate::error::ApiError;

pub const SESSION_COOKIE: &str = "bedrud_session";

/// How a sign-in hands over its session: as a token in the JSON answer (API clients, the
/// default) or as the session cookie (the web client), in which case the answer has no token.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Delivery {
    #[default]
    Token,
    Cookie,
}

/// The cookie that ties an OpenID Connect sign-in to the browser that started it.
pub const FLOW_COOKIE: &str = "bedrud_oidc";

/// The value of the cookie `name` in the request's `Cookie` header, if any.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, value)| value.trim_matches('"'))
        .filter(|v| !v.is_empty())
}

/// The session token in the request's `Cookie` header, if any.
pub fn session_cookie(headers: &HeaderMap) -> Option<&str> {
    cookie(headers, SESSION_COOKIE)
}

/// `Set-Cookie` for an OpenID flow: sent only to the sign-in endpoints, for `max_age_secs`
/// (`0` removes it). `SameSite=Lax` lets it travel with the provider's redirect back, which is
/// a top-level GET.
pub fn flow_cookie(id: &str, max_age_secs: u64, secure: bool) -> HeaderValue {
    let flag = if secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!("{FLOW_COOKIE}={id}; Path=/api/auth/oidc/; HttpOnly; SameSite=Lax; Max-Age={max_age_secs}{flag}"))
        .unwrap_or(HeaderValue::from_static("bedrud_oidc=; Path=/api/auth/oidc/; Max-Age=0"))
}

/// `Set-Cookie` for a session that lives `max_age_secs`.
pub fn set_session(token: &str, max_age_secs: u64, secure: bool) -> HeaderValue {
    let flag = if secure { "; Secure" } else { "" };
    let v = format!("{SESSION_COOKIE}={token}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age_secs}{flag}");
    // The token is URL-safe base64, so the value is always a valid header.
    HeaderValue::from_str(&v).unwrap_or_else(|_| clear_session(secure))
}

/// `Set-Cookie` that removes the session cookie.
pub fn clear_session(secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!("{SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0{secure}"))
        .unwrap_or(HeaderValue::from_static("bedrud_session=; Path=/; Max-Age=0"))
}

/// Adds a `Set-Cookie` to a response.
pub fn with_cookie(mut resp: Response, cookie: HeaderValue) -> Response {
    resp.headers_mut().append(SET_COOKIE, cookie);
    resp
}

/// Refuses state-changing requests from other sites: a request that carries an `Origin` other
/// than bedrud's own, or that relies on the session cookie without saying where it comes from.
/// Requests with a bearer token are not ambient and pass.
pub async fn guard(req: Request, next: Next) -> Response {
    if matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS) {
        return next.run(req).await;
    }
    let headers = req.headers();
    if bearer(headers).is_none() {
        let verdict = match headers.get(ORIGIN) {
            Some(origin) => same_origin(origin, headers.get(HOST)).then_some(()).ok_or("its Origin is another site"),
            None if session_cookie(headers).is_some() => Err("it uses the session cookie without an Origin header"),
            None => Ok(()),
        };
        if let Err(why) = verdict {
            return ApiError::new(StatusCode::FORBIDDEN, "csrf_rejected", format!("request refused: {why}; send it from bedrud's own pages or with a bearer token"))
                .into_response();
        }
    }
    next.run(req).await
}

/// Whether `Origin` names the host (and port) the request was sent to. The scheme is not
/// compared: behind a TLS-terminating proxy bedrud itself sees plain HTTP.
fn same_origin(origin: &HeaderValue, host: Option<&HeaderValue>) -> bool {
    let (Ok(origin), Some(Ok(host))) = (origin.to_str(), host.map(HeaderValue::to_str)) else { return false };
    let Some((scheme, authority)) = origin.split_once("://") else { return false };
    let default_port = match scheme {
        "http" => "80",
        "https" => "443",
        _ => return false,
    };
    let split = |a: &str| -> (String, String) {
        let a = a.to_ascii_lowercase();
        // `[v6]:port`, `[v6]`, `name:port`, `name`
        let (h, p) = match a.rfind(':') {
            Some(i) if !a[i..].contains(']') => (a[..i].to_string(), a[i + 1..].to_string()),
            _ => (a.clone(), default_port.to_string()),
        };
        (h, p)
    };
    !authority.contains('/') && split(authority) == split(host)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hv(s: &str) -> HeaderValue {
        HeaderValue::from_str(s).unwrap()
    }

    #[test]
    fn origin_matches_host_and_port() {
        assert!(same_origin(&hv("http://127.0.0.1:8090"), Some(&hv("127.0.0.1:8090"))));
        assert!(same_origin(&hv("https://meet.example.org"), Some(&hv("meet.example.org"))));
        assert!(same_origin(&hv("https://meet.example.org:443"), Some(&hv("Meet.Example.org"))));
        assert!(same_origin(&hv("http://[::1]:8090"), Some(&hv("[::1]:8090"))));
        assert!(!same_origin(&hv("http://127.0.0.1:8091"), Some(&hv("127.0.0.1:8090"))));
        assert!(!same_origin(&hv("https://evil.example"), Some(&hv("meet.example.org"))));
        assert!(!same_origin(&hv("null"), Some(&hv("meet.example.org"))));
        assert!(!same_origin(&hv("http://meet.example.org"), None));
        assert!(!same_origin(&hv("https://meet.example.org:8443"), Some(&hv("meet.example.org"))));
    }

    #[test]
    fn finds_the_session_cookie() {
        let mut h = HeaderMap::new();
        h.insert(COOKIE, hv("theme=dark; bedrud_session=abc_-1; other=x"));
        assert_eq!(session_cookie(&h), Some("abc_-1"));
        h.insert(COOKIE, hv("bedrud_session="));
        assert_eq!(session_cookie(&h), None);
        assert!(set_session("tok", 60, true).to_str().unwrap().ends_with("Max-Age=60; Secure"));
    }
}
