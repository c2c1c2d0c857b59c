//! LiveKit as bedrud and its clients reach it: `livekit-api` (internalHost with the configured TLS
//! verification, and the clock against LiveKit's `Date`), `livekit-url` (the URL handed to
//! clients resolves and answers a WebSocket handshake), `webhook` (a probe room's `room_started`
//! arrives, signed, from LiveKit itself), `room-timeouts` and `token-ttl`.

use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime};

use livekit_protocol as proto;

use super::{rows, Ctx, Finding};
use crate::livekit::client::{error_chain, RoomClient};

/// How long the webhook of the probe room may take.
pub const WEBHOOK_WAIT: Duration = Duration::from_secs(10);
/// Clock difference that is worth a warning; LiveKit accepts tokens within one minute.
const SKEW_WARN: i64 = 5;
const SKEW_FAIL: i64 = 60;
/// Room timeouts above these keep empty rooms (and their participants' records) around long.
pub const EMPTY_TIMEOUT_MAX: u32 = 600;
pub const DEPARTURE_TIMEOUT_MAX: u32 = 120;

fn client(ctx: &Ctx, timeout: Duration) -> reqwest::Client {
    crate::livekit::http::client(ctx.config.livekit.skip_tls_verify, timeout)
}

/// `livekit-api` and `clock`.
pub async fn api(ctx: &Ctx) -> Vec<Finding> {
    const CHECK: &str = "livekit-api";
    let url = format!("{}/", ctx.config.livekit_internal_url());
    if !ctx.livekit_reachable_expected() {
        return vec![Finding::skip(CHECK, format!("{url}: bedrud is not running, and its livekit-server runs only with it"))];
    }
    if let Some(l) = &ctx.live {
        let st = l.state.livekit.borrow().clone();
        if let crate::livekit::status::LivekitState::Failed { error } = &st.state {
            return vec![Finding::fail(CHECK, format!("livekit-server failed to start: {}", error.replace('\n', " ")))
                .fix("correct what the message names, then `systemctl reload bedrud`")
                .row(rows::EMBEDDED_NOT_STARTING)];
        }
    }
    let sent = SystemTime::now();
    let resp = client(ctx, Duration::from_secs(5)).get(&url).send().await;
    let mut out = Vec::new();
    match resp {
        Err(e) => {
            let msg = error_chain(&e);
            let lower = msg.to_ascii_lowercase();
            let f = if lower.contains("certificate") || lower.contains("unknownissuer") || lower.contains("invalid peer") {
                Finding::fail(CHECK, format!("{url}: TLS verification failed: {msg}"))
                    .fix("set livekit.skipTLSVerify: true for a self-signed certificate, or give LiveKit a certificate this host trusts")
                    .row(rows::SELF_SIGNED)
            } else if ctx.embedded() {
                Finding::fail(CHECK, format!("{url} does not answer: {msg}"))
                    .fix("livekit-server crashed or is restarting: `journalctl -u bedrud` shows why")
                    .row(rows::CONNECTION_REFUSED)
            } else {
                Finding::fail(CHECK, format!("{url} does not answer: {msg}"))
                    .fix(format!("check livekit.internalHost; `curl {url}` from this host must print OK; check the firewall"))
                    .row(rows::LIVEKIT_DISCONNECTED)
            };
            out.push(f);
        }
        Ok(r) => {
            let status = r.status();
            let date = r.headers().get("date").and_then(|d| d.to_str().ok()).map(str::to_string);
            let body = r.text().await.unwrap_or_default();
            if status.as_u16() == 200 && body.trim() == "OK" {
                out.push(Finding::ok(CHECK, format!("{url} answers OK")));
            } else if status.as_u16() == 406 {
                out.push(Finding::warn(CHECK, format!("{url} answers 406 Not Ready: LiveKit is up but its node stats are stale")).fix("wait a few seconds; if it stays, the host is overloaded").row(rows::LIVEKIT_DISCONNECTED));
            } else {
                let body: String = body.trim().chars().take(80).collect();
                out.push(
                    Finding::fail(CHECK, format!("{url} answers {status} {body:?}, not LiveKit's OK"))
                        .fix("livekit.internalHost must be LiveKit's own HTTP port (7880 by default), not a proxy's or another service's")
                        .row(rows::LIVEKIT_DISCONNECTED),
                );
            }
            if let Some(f) = date.and_then(|d| clock(&d, sent)) {
                out.push(f);
            }
        }
    }
    out
}

/// `clock`: bedrud's clock against the `Date` LiveKit sent (one-second resolution).
fn clock(date: &str, sent: SystemTime) -> Option<Finding> {
    const CHECK: &str = "clock";
    let theirs = httpdate_secs(date)?;
    let ours = sent.duration_since(SystemTime::UNIX_EPOCH).ok()?.as_secs() as i64;
    let skew = ours - theirs;
    let f = if skew.abs() >= SKEW_FAIL {
        Finding::fail(CHECK, format!("bedrud's clock is {} {} LiveKit's: LiveKit refuses join tokens that are not valid yet or already expired (it allows one minute)", crate::certs::span(skew), if skew > 0 { "ahead of" } else { "behind" }))
    } else if skew.abs() >= SKEW_WARN {
        Finding::warn(CHECK, format!("bedrud's clock is {} {} LiveKit's", crate::certs::span(skew), if skew > 0 { "ahead of" } else { "behind" }))
    } else {
        return Some(Finding::ok(CHECK, format!("bedrud's and LiveKit's clocks agree (within {SKEW_WARN} s)")));
    };
    Some(f.fix("run NTP (systemd-timesyncd or chrony) on both hosts").row(rows::TOKEN_EXPIRED))
}

/// Unix seconds of an HTTP date (`Tue, 01 Dec 2026 15:32:06 GMT`).
fn httpdate_secs(s: &str) -> Option<i64> {
    let f = time::macros::format_description!("[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT");
    let t = time::PrimitiveDateTime::parse(s.trim(), &f).ok()?;
    Some(t.assume_utc().unix_timestamp())
}

/// `livekit-url`: the URL clients get resolves and answers a WebSocket handshake on `/rtc`
/// (LiveKit refuses one without a token with 401, which is the answer wanted here).
pub async fn client_url(ctx: &Ctx) -> Vec<Finding> {
    const CHECK: &str = "livekit-url";
    let c = &ctx.config;
    let url = c.livekit_public_url(None);
    let configured = c.livekit.host.is_some();
    let Some(rest) = url.strip_prefix("ws://").map(|r| ("http", r)).or_else(|| url.strip_prefix("wss://").map(|r| ("https", r))) else {
        return vec![Finding::fail(CHECK, format!("{url} is not a ws:// or wss:// URL")).row(rows::CLIENT_TIMEOUT)];
    };
    let (scheme, rest) = rest;
    let authority = rest.split('/').next().unwrap_or("");
    let path = rest[authority.len()..].trim_end_matches('/');
    let default_port = if scheme == "https" { 443 } else { 80 };
    let (host, port) = split_authority(authority, default_port);
    if !ctx.livekit_reachable_expected() {
        return vec![Finding::skip(CHECK, format!("{url}: bedrud is not running, and its livekit-server runs only with it"))];
    }
    let mut out = Vec::new();
    let addrs: Vec<SocketAddr> = match tokio::time::timeout(Duration::from_secs(5), tokio::net::lookup_host((host.as_str(), port))).await {
        Ok(Ok(a)) => a.collect(),
        Ok(Err(e)) => {
            return vec![Finding::fail(CHECK, format!("{url}: {host} does not resolve ({e})"))
                .fix("create the DNS record for it, or set livekit.host to a name or address clients can reach")
                .row(rows::CLIENT_TIMEOUT)]
        }
        Err(_) => return vec![Finding::fail(CHECK, format!("{url}: resolving {host} timed out")).fix("check DNS").row(rows::CLIENT_TIMEOUT)],
    };
    if configured && addrs.iter().all(|a| a.ip().is_loopback()) {
        out.push(
            Finding::warn(CHECK, format!("livekit.host {url} points at loopback: browsers on other machines cannot reach it"))
                .fix("set livekit.host to the name or address clients use (or leave it unset: then it follows the address the browser used for bedrud)")
                .row(rows::CLIENT_TIMEOUT),
        );
    }
    let target = format!("{scheme}://{authority}{path}/rtc");
    let req = client(ctx, Duration::from_secs(5))
        .get(&target)
        .header("connection", "Upgrade")
        .header("upgrade", "websocket")
        .header("sec-websocket-version", "13")
        .header("sec-websocket-key", "YmVkcnVkLWRvY3Rvci1wcm9iZQ==")
        .send()
        .await;
    match req {
        Err(e) => out.push(
            Finding::fail(CHECK, format!("{url}: nobody answers at {host}:{port}: {}", error_chain(&e)))
                .fix("clients are handed this URL: point livekit.host at LiveKit's port (7880 by default, or the proxy before it) and open it in the firewall")
                .row(rows::CLIENT_TIMEOUT),
        ),
        Ok(r) => {
            let status = r.status().as_u16();
            let body = r.text().await.unwrap_or_default();
            let livekit_like = status == 101 || (status == 401 && (body.contains("permission") || body.contains("token") || body.contains("access")));
            if livekit_like {
                out.push(Finding::ok(CHECK, format!("{url} answers the WebSocket handshake (HTTP {status} without a token, as LiveKit does)")));
            } else {
                let b: String = body.trim().chars().take(80).collect();
                out.push(
                    Finding::warn(CHECK, format!("{url}: the handshake on /rtc got HTTP {status} {b:?}, which is not LiveKit's answer"))
                        .fix("livekit.host must lead to LiveKit itself (a proxy must pass WebSocket upgrades on /rtc)")
                        .row(rows::CLIENT_TIMEOUT),
                );
            }
        }
    }
    out
}

/// `host:port` / `[v6]:port` / `host`.
fn split_authority(a: &str, default_port: u16) -> (String, u16) {
    if let Some(rest) = a.strip_prefix('[') {
        let (h, p) = rest.split_once(']').unwrap_or((rest, ""));
        return (h.to_string(), p.strip_prefix(':').and_then(|p| p.parse().ok()).unwrap_or(default_port));
    }
    match a.rsplit_once(':') {
        Some((h, p)) => (h.to_string(), p.parse().unwrap_or(default_port)),
        None => (a.to_string(), default_port),
    }
}

/// The webhook probe's findings, and the room LiveKit created (its timeouts are LiveKit's own).
pub struct Probe {
    pub findings: Vec<Finding>,
    pub room: Option<proto::Room>,
}

/// `webhook`: creates a short-lived probe room through LiveKit's API and waits for LiveKit's
/// signed `room_started` for it to reach bedrud; then deletes the room.
pub async fn webhook(ctx: &Ctx) -> Probe {
    const CHECK: &str = "webhook";
    let Some(live) = &ctx.live else {
        return Probe { findings: vec![Finding::skip(CHECK, "the round trip needs the running daemon to receive the webhook")], room: None };
    };
    let st = &live.state;
    if !st.livekit.borrow().is_ready() {
        return Probe { findings: vec![Finding::skip(CHECK, "LiveKit is not ready: see livekit-api")], room: None };
    }
    let name = format!("bedrud-doctor-{:08x}", rand::random::<u32>());
    let mut events = st.webhook_events.subscribe();
    let client = RoomClient::new(&st.config().livekit_internal_url(), st.keys.clone(), st.config().livekit.skip_tls_verify);
    let started = Instant::now();
    let room = match client.create_room(&name, 30).await {
        Ok(r) => r,
        Err(e) => {
            return Probe {
                findings: vec![Finding::fail(CHECK, format!("cannot create the probe room {name}: {e}")).fix("see livekit-api; check livekit.apiKey/apiSecret against LiveKit's keys").row(rows::LIVEKIT_DISCONNECTED)],
                room: None,
            }
        }
    };
    let deadline = tokio::time::Instant::now() + WEBHOOK_WAIT;
    let arrived = loop {
        match tokio::time::timeout_at(deadline, events.recv()).await {
            Ok(Ok((kind, room))) if kind == "room_started" && room == name => break Some(started.elapsed()),
            Ok(Ok(_)) | Ok(Err(tokio::sync::broadcast::error::RecvError::Lagged(_))) => continue,
            Ok(Err(_)) | Err(_) => break None,
        }
    };
    if let Err(e) = client.delete_room(&name).await {
        tracing::warn!("doctor: cannot delete the probe room {name}: {e}");
    }
    let finding = match arrived {
        Some(d) => Finding::ok(CHECK, format!("LiveKit's signed room_started for the probe room reached bedrud in {} ms", d.as_millis())),
        None if ctx.embedded() => Finding::fail(CHECK, format!("no room_started from LiveKit within {} s for the probe room {name}", WEBHOOK_WAIT.as_secs()))
            .fix("`journalctl -u bedrud` shows LiveKit's webhook delivery errors; with livekit.configPath, its webhook: must point at bedrud with bedrud's API key")
            .row(rows::WEBHOOK_BLOCKED),
        None => Finding::fail(CHECK, format!("no room_started from LiveKit within {} s for the probe room {name}: LiveKit does not send webhooks to bedrud", WEBHOOK_WAIT.as_secs()))
            .fix("add the webhook: block that `bedrud livekit webhook-config` prints to LiveKit's YAML (URL https://<bedrud>/api/livekit/webhook, api_key = livekit.apiKey); check that LiveKit can reach that URL through the firewall")
            .row(rows::STALE),
    };
    Probe { findings: vec![finding], room: Some(room) }
}

/// `room-timeouts`: how long LiveKit keeps empty rooms.
pub fn timeouts(ctx: &Ctx, probe: Option<&proto::Room>) -> Vec<Finding> {
    const CHECK: &str = "room-timeouts";
    let c = &ctx.config;
    let (empty, departure, source) = if let Some(r) = probe.filter(|_| !ctx.embedded()) {
        // The probe asked for its own empty timeout; departure is LiveKit's configured one.
        (None, Some(r.departure_timeout), "LiveKit's answer for the probe room".to_string())
    } else if !ctx.embedded() {
        return vec![Finding::skip(CHECK, "an external LiveKit's room timeouts are read from the webhook probe, which needs the running daemon")];
    } else if let Some(path) = &c.livekit.config_path {
        let doc: serde_norway::Value = std::fs::read_to_string(path).ok().and_then(|t| serde_norway::from_str(&t).ok()).unwrap_or(serde_norway::Value::Null);
        let get = |k: &str, d: u32| doc.get("room").and_then(|r| r.get(k)).and_then(serde_norway::Value::as_u64).map(|v| v as u32).unwrap_or(d);
        (Some(get("empty_timeout", 300)), Some(get("departure_timeout", 20)), format!("room: in {}", path.display()))
    } else {
        (Some(c.livekit.empty_timeout), Some(c.livekit.departure_timeout), "livekit.emptyTimeout / departureTimeout".to_string())
    };
    let mut high = Vec::new();
    if let Some(e) = empty.filter(|e| *e > EMPTY_TIMEOUT_MAX) {
        high.push(format!("empty_timeout {e} s"));
    }
    if let Some(d) = departure.filter(|d| *d > DEPARTURE_TIMEOUT_MAX) {
        high.push(format!("departure_timeout {d} s"));
    }
    if high.is_empty() {
        let shown: Vec<String> = [empty.map(|e| format!("empty {e} s")), departure.map(|d| format!("departure {d} s"))].into_iter().flatten().collect();
        return vec![Finding::ok(CHECK, format!("{} ({source})", shown.join(", ")))];
    }
    vec![Finding::warn(CHECK, format!("{} ({source}): rooms stay open that long after everyone left", high.join(", ")))
        .fix(format!("lower them (LiveKit's defaults: 300 and 20 s; bedrud warns above {EMPTY_TIMEOUT_MAX} and {DEPARTURE_TIMEOUT_MAX} s)"))
        .row(rows::NOT_CLEANED)]
}

/// `token-ttl`: join tokens live long enough for a client to connect.
pub fn token_ttl(ctx: &Ctx) -> Vec<Finding> {
    const CHECK: &str = "token-ttl";
    let ttl = ctx.config.livekit.token_ttl;
    if ttl < Duration::from_secs(60) {
        return vec![Finding::warn(CHECK, format!("livekit.tokenTtl is {} s: a client that takes longer than that between join and connect is refused", ttl.as_secs()))
            .fix("set livekit.tokenTtl to at least 1m (default 10m); clients ask POST /api/room/join again before each connection")
            .row(rows::TOKEN_EXPIRED)];
    }
    vec![Finding::ok(CHECK, format!("join tokens are valid for {} s", ttl.as_secs()))]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_dates_and_authorities() {
        assert_eq!(httpdate_secs("Tue, 01 Dec 2026 15:32:06 GMT"), Some(1796139126));
        assert_eq!(httpdate_secs("yesterday"), None);
        assert_eq!(split_authority("127.0.0.1:7880", 80), ("127.0.0.1".into(), 7880));
        assert_eq!(split_authority("[::1]:7880", 80), ("::1".into(), 7880));
        assert_eq!(split_authority("lk.example.org", 443), ("lk.example.org".into(), 443));
    }
}
