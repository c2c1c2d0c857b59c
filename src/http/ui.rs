//! The web client's files, embedded at build time (see `build.rs`): `/` and the client's own
//! routes answer `index.html`, hashed assets are cached for a year, pre-compressed variants are
//! sent to browsers that accept them, and every page carries a content security policy that
//! lets scripts talk only to bedrud and to the LiveKit server the join answer names.
//! Nothing else in the daemon knows that a UI exists.

use axum::extract::{Request, State};
use axum::http::header::{
    ACCEPT_ENCODING, CACHE_CONTROL, CONTENT_ENCODING, CONTENT_TYPE, ETAG, HOST, IF_NONE_MATCH, VARY,
};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};

use super::SharedState;
use crate::error::ApiError;

/// One file of the built client.
#[derive(Debug)]
pub struct Asset {
    pub path: &'static str,
    pub content_type: &'static str,
    pub etag: &'static str,
    pub body: &'static [u8],
    pub br: Option<&'static [u8]>,
    pub gzip: Option<&'static [u8]>,
}

/// The client built into this binary, sorted by path (empty when it was built without one).
pub static ASSETS: &[Asset] = include!(concat!(env!("OUT_DIR"), "/web_assets.rs"));

/// Shown instead of the client when the binary was built without it.
const NOT_BUILT: &str = "<!doctype html><html lang=\"en\"><meta charset=\"utf-8\"><title>bedrud</title>\
<body><h1>bedrud is running</h1><p>This build has no web client. Build it, then bedrud:</p>\
<pre>cd web &amp;&amp; npm ci &amp;&amp; npm run build\ncargo build --release</pre>\
<p>(<code>make run</code> does both.) The API answers under <code>/api/</code>.</p></body></html>\n";

/// Answers every request that no API route took.
pub async fn fallback(State(st): State<SharedState>, req: Request) -> Response {
    let path = req.uri().path();
    if path == "/api" || path.starts_with("/api/") {
        return ApiError::not_found("not_found", "no such endpoint").into_response();
    }
    if !matches!(*req.method(), Method::GET | Method::HEAD) {
        return ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", "only GET and HEAD are served here").into_response();
    }
    let livekit = st.config().livekit_public_url(req.headers().get(HOST).and_then(|h| h.to_str().ok()));
    serve(ASSETS, path, req.headers(), &livekit)
}

/// The response for `path` from `assets`.
fn serve(assets: &[Asset], path: &str, headers: &HeaderMap, livekit_url: &str) -> Response {
    let found = assets.binary_search_by(|a| a.path.cmp(path)).ok().map(|i| &assets[i]);
    let asset = match found {
        Some(a) => a,
        // A file name that is not there is a 404; any other path is one of the client's routes.
        None if last_segment_has_extension(path) => {
            return ApiError::not_found("not_found", "no such file").into_response();
        }
        None => match assets.binary_search_by(|a| a.path.cmp("/index.html")) {
            Ok(i) => &assets[i],
            Err(_) => return html_headers((StatusCode::OK, [(CONTENT_TYPE, "text/html; charset=utf-8")], NOT_BUILT).into_response(), livekit_url),
        },
    };
    let mut resp = if headers.get(IF_NONE_MATCH).is_some_and(|v| v.as_bytes() == asset.etag.as_bytes()) {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        let (body, encoding) = match preferred(headers, asset) {
            Some((b, e)) => (b, Some(e)),
            None => (asset.body, None),
        };
        let mut r = body.into_response();
        r.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static(asset.content_type));
        if let Some(e) = encoding {
            r.headers_mut().insert(CONTENT_ENCODING, HeaderValue::from_static(e));
        }
        r
    };
    let h = resp.headers_mut();
    h.insert(ETAG, HeaderValue::from_static(asset.etag));
    if asset.br.is_some() || asset.gzip.is_some() {
        h.insert(VARY, HeaderValue::from_static("accept-encoding"));
    }
    // Vite names assets by their content hash: they never change under the same name.
    let cache = if asset.path.starts_with("/assets/") { "public, max-age=31536000, immutable" } else { "no-cache" };
    h.insert(CACHE_CONTROL, HeaderValue::from_static(cache));
    if asset.content_type.starts_with("text/html") {
        resp = html_headers(resp, livekit_url);
    }
    resp
}

fn last_segment_has_extension(path: &str) -> bool {
    path.rsplit('/').next().is_some_and(|s| s.contains('.'))
}

/// The pre-compressed variant the client accepts, best first (brotli, then gzip).
fn preferred(headers: &HeaderMap, asset: &Asset) -> Option<(&'static [u8], &'static str)> {
    let accepted = |name: &str| {
        headers.get_all(ACCEPT_ENCODING).iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(',')).any(|item| {
            let mut parts = item.split(';').map(str::trim);
            let coding = parts.next().unwrap_or("");
            let refused = parts.any(|p| p.strip_prefix("q=").and_then(|q| q.parse::<f32>().ok()) == Some(0.0));
            coding.eq_ignore_ascii_case(name) && !refused
        })
    };
    match (asset.br, asset.gzip) {
        (Some(b), _) if accepted("br") => Some((b, "br")),
        (_, Some(g)) if accepted("gzip") => Some((g, "gzip")),
        _ => None,
    }
}

/// Headers of a page: the content security policy (LiveKit's URL is the one place scripts may
/// connect to besides bedrud) and no framing by other sites.
fn html_headers(mut resp: Response, livekit_url: &str) -> Response {
    let csp = content_security_policy(livekit_url);
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&csp) {
        h.insert("content-security-policy", v);
    }
    h.insert("x-frame-options", HeaderValue::from_static("DENY"));
    h.insert("cross-origin-opener-policy", HeaderValue::from_static("same-origin"));
    h.insert(
        "permissions-policy",
        HeaderValue::from_static("camera=(self), microphone=(self), display-capture=(self), fullscreen=(self), geolocation=()"),
    );
    resp
}

/// The page's CSP. livekit-client opens a WebSocket to LiveKit and, when that fails, asks the
/// same server over HTTP why: both schemes of LiveKit's origin are allowed.
pub fn content_security_policy(livekit_url: &str) -> String {
    let origin = livekit_url.trim_end_matches('/');
    let http = origin.replacen("wss://", "https://", 1).replacen("ws://", "http://", 1);
    let connect = if origin.chars().all(|c| !c.is_whitespace() && c != ';' && c != ',') {
        format!(" {origin} {http}")
    } else {
        String::new()
    };
    format!(
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; \
         media-src 'self' blob:; font-src 'self'; connect-src 'self'{connect}; worker-src 'self' blob:; \
         frame-ancestors 'none'; base-uri 'self'; form-action 'self'; object-src 'none'"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const JS: &[u8] = b"console.log(1)";
    static FAKE: &[Asset] = &[
        Asset { path: "/assets/app-1234.js", content_type: "text/javascript; charset=utf-8", etag: "\"a\"", body: JS, br: Some(b"BR"), gzip: Some(b"GZ") },
        Asset { path: "/favicon.svg", content_type: "image/svg+xml", etag: "\"f\"", body: b"<svg/>", br: None, gzip: None },
        Asset { path: "/index.html", content_type: "text/html; charset=utf-8", etag: "\"i\"", body: b"<html>", br: None, gzip: None },
    ];

    fn get(assets: &[Asset], path: &str, headers: &[(&'static str, &str)]) -> Response {
        let mut h = HeaderMap::new();
        for (k, v) in headers {
            h.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        serve(assets, path, &h, "ws://10.0.0.5:7880")
    }

    fn header<'a>(r: &'a Response, name: &str) -> &'a str {
        r.headers().get(name).map(|v| v.to_str().unwrap()).unwrap_or("")
    }

    #[test]
    fn client_routes_fall_back_to_the_page() {
        for path in ["/", "/r/team-sync", "/admin"] {
            let r = get(FAKE, path, &[]);
            assert_eq!(r.status(), StatusCode::OK, "{path}");
            assert_eq!(header(&r, "content-type"), "text/html; charset=utf-8");
            assert_eq!(header(&r, "cache-control"), "no-cache");
            assert!(header(&r, "content-security-policy").contains("connect-src 'self' ws://10.0.0.5:7880 http://10.0.0.5:7880;"));
            assert!(header(&r, "content-security-policy").contains("frame-ancestors 'none'"));
        }
        assert_eq!(get(FAKE, "/assets/missing-1.js", &[]).status(), StatusCode::NOT_FOUND);
        assert_eq!(get(FAKE, "/robots.txt", &[]).status(), StatusCode::NOT_FOUND);
    }

    #[test]
    fn assets_are_cached_and_negotiated() {
        let r = get(FAKE, "/assets/app-1234.js", &[("accept-encoding", "gzip, deflate, br")]);
        assert_eq!(header(&r, "content-encoding"), "br");
        assert_eq!(header(&r, "cache-control"), "public, max-age=31536000, immutable");
        assert_eq!(header(&r, "vary"), "accept-encoding");
        assert_eq!(header(&r, "content-security-policy"), "");
        let r = get(FAKE, "/assets/app-1234.js", &[("accept-encoding", "br;q=0, gzip")]);
        assert_eq!(header(&r, "content-encoding"), "gzip");
        let r = get(FAKE, "/assets/app-1234.js", &[]);
        assert_eq!(header(&r, "content-encoding"), "");
        let r = get(FAKE, "/favicon.svg", &[("accept-encoding", "br")]);
        assert_eq!(header(&r, "content-type"), "image/svg+xml");
        assert_eq!(header(&r, "content-encoding"), "");
        let r = get(FAKE, "/assets/app-1234.js", &[("if-none-match", "\"a\"")]);
        assert_eq!(r.status(), StatusCode::NOT_MODIFIED);
    }

    #[test]
    fn without_a_client_the_page_says_how_to_build_it() {
        let r = get(&[], "/", &[]);
        assert_eq!(r.status(), StatusCode::OK);
        assert!(header(&r, "content-security-policy").starts_with("default-src 'self'"));
        assert_eq!(get(&[], "/assets/app.js", &[]).status(), StatusCode::NOT_FOUND);
    }

    #[test]
    fn embedded_assets_are_sorted() {
        assert!(ASSETS.windows(2).all(|w| w[0].path < w[1].path));
    }
}
