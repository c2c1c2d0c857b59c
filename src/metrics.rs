//! Prometheus metrics in the text exposition format: HTTP requests by route and status with
//! latency histograms, joins, webhook outcomes, sign-in throttling, LiveKit's state and
//! restarts, store commits, open connections. Served at `/metrics` on `server.metricsAddress`
//! (no authentication: bind it to loopback) and at `GET /api/admin/metrics` for admins.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;

use crate::http::SharedState;

/// Upper bounds of the HTTP latency buckets, seconds.
const HTTP_BOUNDS: [f64; 14] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

#[derive(Default)]
struct Histogram {
    /// Per bucket (not cumulative); the last slot is +Inf.
    buckets: Vec<u64>,
    count: u64,
    sum: f64,
}

impl Histogram {
    fn observe(&mut self, secs: f64) {
        if self.buckets.is_empty() {
            self.buckets = vec![0; HTTP_BOUNDS.len() + 1];
        }
        let i = HTTP_BOUNDS.iter().position(|b| secs <= *b).unwrap_or(HTTP_BOUNDS.len());
        self.buckets[i] += 1;
        self.count += 1;
        self.sum += secs;
    }
}

/// Counters kept by the daemon itself (the rest is read from its state when scraped).
#[derive(Default)]
pub struct Metrics {
    /// (route, method, status) → requests.
    requests: Mutex<HashMap<(String, String, u16), u64>>,
    /// route → latency.
    latency: Mutex<HashMap<String, Histogram>>,
    pub webhooks_duplicate: AtomicU64,
    pub webhooks_rejected: AtomicU64,
}

impl Metrics {
    fn record(&self, route: &str, method: &str, status: u16, took: Duration) {
        *self.requests.lock().unwrap_or_else(|e| e.into_inner()).entry((route.to_string(), method.to_string(), status)).or_default() += 1;
        self.latency.lock().unwrap_or_else(|e| e.into_inner()).entry(route.to_string()).or_default().observe(took.as_secs_f64());
    }

    /// Requests answered on `route` with `status` so far.
    fn count(&self, route: &str, status: impl Fn(u16) -> bool) -> u64 {
        let m = self.requests.lock().unwrap_or_else(|e| e.into_inner());
        m.iter().filter(|((r, _, s), _)| r == route && status(*s)).map(|(_, n)| n).sum()
    }
}

/// Counts every request by its route pattern (not the raw path, which would let clients mint
/// series), method and status, and times it.
pub async fn track(State(st): State<SharedState>, req: Request, next: Next) -> Response {
    let route = match req.extensions().get::<MatchedPath>() {
        Some(p) => p.as_str().to_string(),
        None if req.uri().path().starts_with("/api/") => "unmatched".to_string(),
        None => "ui".to_string(),
    };
    let method = req.method().as_str().to_string();
    let start = Instant::now();
    let resp = next.run(req).await;
    st.metrics.record(&route, &method, resp.status().as_u16(), start.elapsed());
    resp
}

/// Label values are quoted with `\`, `"` and newlines escaped.
fn esc(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

fn head(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// Writes cumulative buckets, sum and count of one histogram series.
fn histogram(out: &mut String, name: &str, labels: &str, bounds: &[f64], cumulative: &[u64], count: u64, sum: f64) {
    let sep = if labels.is_empty() { "" } else { "," };
    for (b, n) in bounds.iter().zip(cumulative) {
        let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"{b}\"}} {n}");
    }
    let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {count}");
    let braces = if labels.is_empty() { String::new() } else { format!("{{{labels}}}") };
    let _ = writeln!(out, "{name}_sum{braces} {sum}\n{name}_count{braces} {count}");
}

/// The whole exposition.
pub fn render(st: &SharedState) -> String {
    let m = &st.metrics;
    let mut out = String::with_capacity(8 * 1024);

    head(&mut out, "bedrud_http_requests_total", "counter", "HTTP requests answered, by route pattern, method and status.");
    {
        let reqs = m.requests.lock().unwrap_or_else(|e| e.into_inner());
        let mut rows: Vec<_> = reqs.iter().collect();
        rows.sort();
        for ((route, method, status), n) in rows {
            let _ = writeln!(out, "bedrud_http_requests_total{{route=\"{}\",method=\"{}\",status=\"{status}\"}} {n}", esc(route), esc(method));
        }
    }
    head(&mut out, "bedrud_http_request_duration_seconds", "histogram", "Time to answer HTTP requests, by route pattern.");
    {
        let lat = m.latency.lock().unwrap_or_else(|e| e.into_inner());
        let mut rows: Vec<_> = lat.iter().collect();
        rows.sort_by(|a, b| a.0.cmp(b.0));
        for (route, h) in rows {
            let mut acc = 0;
            let cumulative: Vec<u64> = h.buckets.iter().take(HTTP_BOUNDS.len()).map(|n| { acc += n; acc }).collect();
            histogram(&mut out, "bedrud_http_request_duration_seconds", &format!("route=\"{}\"", esc(route)), &HTTP_BOUNDS, &cumulative, h.count, h.sum);
        }
    }

    head(&mut out, "bedrud_joins_total", "counter", "Join requests: ok = a token was issued, refused = any other answer.");
    let ok = m.count("/api/room/join", |s| s == 200);
    let refused = m.count("/api/room/join", |s| s != 200);
    let _ = writeln!(out, "bedrud_joins_total{{result=\"ok\"}} {ok}\nbedrud_joins_total{{result=\"refused\"}} {refused}");

    head(&mut out, "bedrud_login_throttled_total", "counter", "Sign-ins refused with 429 by the failed-login throttle.");
    let _ = writeln!(out, "bedrud_login_throttled_total {}", m.count("/api/auth/login", |s| s == 429));
    head(&mut out, "bedrud_login_throttle_tracked", "gauge", "Clients and (account, client) pairs with failed sign-ins being counted.");
    let _ = writeln!(out, "bedrud_login_throttle_tracked {}", st.limiter.tracked());

    head(&mut out, "bedrud_webhook_events_total", "counter", "LiveKit webhooks: applied, duplicate (already applied), rejected (bad signature or body).");
    let _ = writeln!(
        out,
        "bedrud_webhook_events_total{{outcome=\"applied\"}} {}\nbedrud_webhook_events_total{{outcome=\"duplicate\"}} {}\nbedrud_webhook_events_total{{outcome=\"rejected\"}} {}",
        st.webhooks_applied.load(Relaxed),
        m.webhooks_duplicate.load(Relaxed),
        m.webhooks_rejected.load(Relaxed)
    );

    let lk = st.livekit.borrow().clone();
    head(&mut out, "bedrud_livekit_ready", "gauge", "1 when LiveKit answers healthy.");
    let _ = writeln!(out, "bedrud_livekit_ready {}", u8::from(lk.is_ready()));
    head(&mut out, "bedrud_livekit_state", "gauge", "LiveKit's state (1 for the current one).");
    let state = lk.state.to_string();
    let state = state.split([' ', '(']).next().unwrap_or("");
    let _ = writeln!(out, "bedrud_livekit_state{{state=\"{}\"}} 1", esc(state));
    head(&mut out, "bedrud_livekit_restarts_total", "counter", "Restarts of the supervised livekit-server.");
    let _ = writeln!(out, "bedrud_livekit_restarts_total {}", lk.restarts);

    let (buckets, count, sum, failed) = st.store.commit_stats().snapshot();
    head(&mut out, "bedrud_store_commit_duration_seconds", "histogram", "Time of each durable store commit (one per batch of writes).");
    histogram(&mut out, "bedrud_store_commit_duration_seconds", "", &crate::store::COMMIT_BOUNDS, &buckets, count, sum);
    head(&mut out, "bedrud_store_commit_failures_total", "counter", "Store commits that failed (disk full, I/O errors).");
    let _ = writeln!(out, "bedrud_store_commit_failures_total {failed}");
    head(&mut out, "bedrud_store_writable", "gauge", "0 while the store refuses writes.");
    let _ = writeln!(out, "bedrud_store_writable {}", u8::from(st.store.write_failure().is_none()));

    head(&mut out, "bedrud_connections_open", "gauge", "Open API connections.");
    let _ = writeln!(out, "bedrud_connections_open {}", st.connections.open());
    head(&mut out, "bedrud_connections_refused_total", "counter", "API connections closed at once because a connection cap was reached.");
    let _ = writeln!(out, "bedrud_connections_refused_total {}", st.connections.refused());
    out
}

/// The answer to a scrape.
pub fn response(st: &SharedState) -> Response {
    Response::builder()
        .header("content-type", "text/plain; version=0.0.4; charset=utf-8")
        .body(axum::body::Body::from(render(st)))
        .unwrap_or_default()
}

/// Serves `/metrics` alone on its own listener until `shutdown`.
pub fn serve(listener: tokio::net::TcpListener, st: SharedState, shutdown: tokio_util::sync::CancellationToken) -> tokio::task::JoinHandle<()> {
    let app = axum::Router::new()
        .route("/metrics", axum::routing::get(|State(st): State<SharedState>| async move { response(&st) }))
        .with_state(st);
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).with_graceful_shutdown(shutdown.cancelled_owned()).await {
            tracing::warn!(error = %e, "metrics listener stopped");
        }
    })
}
