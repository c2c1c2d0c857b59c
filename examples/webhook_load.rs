//! Webhook load: signed LiveKit events sent to `/api/livekit/webhook` by N concurrent senders
//! in a closed loop, for a fixed time. Each sender owns its identities and sends a
//! `participant_joined` then a `participant_left` for each, so per-participant order holds;
//! every event id is unique. Bodies are signed the way LiveKit signs them: an HS256 JWT in
//! `Authorization` (no `Bearer`), with `iss` = API key, `exp`, and `sha256` = base64 of the
//! body's SHA-256.
//!
//!   webhook_load --url http://127.0.0.1:8090 --key K --secret S [--concurrency 32]
//!                [--seconds 15] [--rooms 100] [--prefix run1] [--ids-out FILE]
//!
//! Prints one JSON object: sent, acked (2xx, not a duplicate), duplicates, errors, seconds,
//! events_per_s and latency percentiles. `--ids-out` writes every id sent, one per line, so the
//! store can be checked for each of them afterwards.

use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine;
use hmac::Mac;
use serde_json::json;
use sha2::Digest;

struct Args {
    url: String,
    key: String,
    secret: String,
    concurrency: usize,
    seconds: f64,
    rooms: usize,
    prefix: String,
    ids_out: Option<String>,
    threads: usize,
}

fn parse_args() -> Args {
    let mut a = Args {
        url: String::new(),
        key: String::new(),
        secret: String::new(),
        concurrency: 32,
        seconds: 15.0,
        rooms: 100,
        prefix: format!("EV_load_{}", now_secs()),
        ids_out: None,
        threads: 1,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut val = || it.next().unwrap_or_else(|| die(&format!("{flag} needs a value")));
        match flag.as_str() {
            "--url" => a.url = val(),
            "--key" => a.key = val(),
            "--secret" => a.secret = val(),
            "--concurrency" => a.concurrency = val().parse().unwrap_or_else(|_| die("--concurrency: a number")),
            "--seconds" => a.seconds = val().parse().unwrap_or_else(|_| die("--seconds: a number")),
            "--rooms" => a.rooms = val().parse().unwrap_or_else(|_| die("--rooms: a number")),
            "--prefix" => a.prefix = val(),
            "--ids-out" => a.ids_out = Some(val()),
            "--threads" => a.threads = val().parse().unwrap_or_else(|_| die("--threads: a number")),
            _ => die(&format!("unknown argument {flag}")),
        }
    }
    if a.url.is_empty() || a.key.is_empty() || a.secret.is_empty() {
        die("usage: webhook_load --url URL --key KEY --secret SECRET [--concurrency N] [--seconds S] [--rooms N] [--prefix P] [--ids-out FILE]");
    }
    a.concurrency = a.concurrency.clamp(1, 1024);
    a.rooms = a.rooms.max(1);
    a.threads = a.threads.clamp(1, 16);
    a
}

fn die(msg: &str) -> ! {
    eprintln!("webhook_load: {msg}");
    std::process::exit(2)
}

fn now_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// The `Authorization` value LiveKit sends with `body`.
fn sign(body: &[u8], key: &str, secret: &str) -> String {
    let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
    let now = now_secs();
    let sha = base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(body));
    let claims = json!({ "iss": key, "nbf": now.saturating_sub(5), "exp": now + 300, "sha256": sha });
    let head = b64(br#"{"alg":"HS256","typ":"JWT"}"#);
    let payload = b64(claims.to_string().as_bytes());
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(format!("{head}.{payload}").as_bytes());
    format!("{head}.{payload}.{}", b64(&mac.finalize().into_bytes()))
}

fn event(id: &str, kind: &str, room: &str, identity: &str, psid: &str) -> String {
    let now = now_secs().to_string();
    json!({
        "event": kind,
        "id": id,
        "createdAt": now,
        "room": { "sid": format!("RM_{room}"), "name": room },
        "participant": { "sid": psid, "identity": identity, "name": identity, "joinedAt": now }
    })
    .to_string()
}

#[derive(Default)]
struct Counts {
    sent: AtomicU64,
    acked: AtomicU64,
    duplicates: AtomicU64,
    errors: AtomicU64,
}

fn main() {
    let args = parse_args();
    let _ = rustls::crypto::ring::default_provider().install_default();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.threads)
        .enable_all()
        .build()
        .unwrap_or_else(|e| die(&format!("runtime: {e}")));
    rt.block_on(run(args));
}

async fn run(args: Args) {
    let client = reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(args.concurrency)
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap_or_else(|e| die(&format!("http client: {e}")));
    let endpoint = format!("{}/api/livekit/webhook", args.url.trim_end_matches('/'));
    let counts = Arc::new(Counts::default());
    let args = Arc::new(args);
    let start = Instant::now();
    let deadline = start + Duration::from_secs_f64(args.seconds);
    let mut tasks = Vec::new();
    for worker in 0..args.concurrency {
        let (client, endpoint, counts, args) = (client.clone(), endpoint.clone(), counts.clone(), args.clone());
        tasks.push(tokio::spawn(async move {
            let mut ids = Vec::new();
            let mut lat_us = Vec::new();
            let mut n = worker;
            // Each pair is finished even past the deadline, so no participant is left open.
            while Instant::now() < deadline {
                let room = format!("hook-room-{}", n % args.rooms);
                let identity = format!("hook-user-{n}");
                let psid = format!("PA_{}_{n}", args.prefix);
                for (kind, tag) in [("participant_joined", "j"), ("participant_left", "l")] {
                    let id = format!("{}-{n}-{tag}", args.prefix);
                    let body = event(&id, kind, &room, &identity, &psid);
                    let auth = sign(body.as_bytes(), &args.key, &args.secret);
                    counts.sent.fetch_add(1, Ordering::Relaxed);
                    let t0 = Instant::now();
                    let r = client
                        .post(&endpoint)
                        .header("content-type", "application/webhook+json")
                        .header("authorization", auth)
                        .body(body)
                        .send()
                        .await;
                    let outcome = match r {
                        Ok(resp) if resp.status().is_success() => match resp.json::<serde_json::Value>().await {
                            Ok(v) if v["duplicate"] == false => Some(false),
                            Ok(_) => Some(true),
                            Err(_) => None,
                        },
                        Ok(resp) => {
                            eprintln!("webhook_load: {id}: HTTP {}", resp.status());
                            None
                        }
                        Err(e) => {
                            eprintln!("webhook_load: {id}: {e}");
                            None
                        }
                    };
                    lat_us.push(t0.elapsed().as_micros() as u64);
                    match outcome {
                        Some(false) => counts.acked.fetch_add(1, Ordering::Relaxed),
                        Some(true) => counts.duplicates.fetch_add(1, Ordering::Relaxed),
                        None => counts.errors.fetch_add(1, Ordering::Relaxed),
                    };
                    ids.push(id);
                }
                n += args.concurrency;
            }
            (ids, lat_us)
        }));
    }
    let mut ids = Vec::new();
    let mut lat = Vec::new();
    for t in tasks {
        match t.await {
            Ok((i, l)) => {
                ids.extend(i);
                lat.extend(l);
            }
            Err(e) => die(&format!("sender failed: {e}")),
        }
    }
    let secs = start.elapsed().as_secs_f64();
    lat.sort_unstable();
    let pct = |p: f64| -> f64 {
        if lat.is_empty() {
            return 0.0;
        }
        let i = ((lat.len() as f64 * p).ceil() as usize).clamp(1, lat.len()) - 1;
        lat[i] as f64 / 1000.0
    };
    if let Some(path) = &args.ids_out {
        let mut f = std::io::BufWriter::new(std::fs::File::create(path).unwrap_or_else(|e| die(&format!("{path}: {e}"))));
        for id in &ids {
            let _ = writeln!(f, "{id}");
        }
        f.flush().unwrap_or_else(|e| die(&format!("{path}: {e}")));
    }
    let acked = counts.acked.load(Ordering::Relaxed);
    println!(
        "{}",
        json!({
            "sent": counts.sent.load(Ordering::Relaxed),
            "acked": acked,
            "duplicates": counts.duplicates.load(Ordering::Relaxed),
            "errors": counts.errors.load(Ordering::Relaxed),
            "seconds": (secs * 1000.0).round() / 1000.0,
            "events_per_s": (acked as f64 / secs).round(),
            "concurrency": args.concurrency,
            "p50_ms": pct(0.50),
            "p99_ms": pct(0.99),
        })
    );
}
