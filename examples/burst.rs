//! A meeting that starts at 10:00: everyone joins one room at once, then LiveKit's webhooks
//! for all of them arrive.
//!
//!   burst seed PATH [--users 1000]            (offline: the daemon must not hold PATH)
//!   burst run --url URL --key K --secret S --tokens FILE [--spread-ms 1000] [--senders 16]
//!
//! `seed` adds users `burst-user-NNNN` (one shared password hash), a signed-in session for each
//! and for an admin `burst-admin`, and the room `burst-room`; it writes the bearer tokens to
//! `PATH.tokens` (the admin's first). `run` starts one thread per user, each joining
//! `burst-room` at its own moment spread evenly over `--spread-ms`, then sends one signed
//! `participant_joined` webhook per user the way LiveKit sends them (HS256 JWT in
//! `Authorization`, body SHA-256 claim) from `--senders` concurrent senders, and polls the
//! admin's participant list until all are there. Prints one JSON object: joins answered 2xx
//! and otherwise, join latency percentiles (ms), webhooks sent and acknowledged, and
//! `applied_ms`, from the first webhook sent until the list showed every participant.

use std::path::PathBuf;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine;
use bedrud::store::{self, now_ms, Role, Room, RoomSettings, Session, SessionKind, Store, User};
use hmac::Mac;
use serde_json::{json, Value};
use sha2::Digest;

fn die(msg: &str) -> ! {
    eprintln!("burst: {msg}");
    std::process::exit(2)
}

fn flag(args: &[String], name: &str) -> Option<String> {
    args.iter().position(|a| a == name).map(|i| args.get(i + 1).cloned().unwrap_or_else(|| die(&format!("{name} needs a value"))))
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("seed") => {
            let path = PathBuf::from(args.get(1).unwrap_or_else(|| die("usage: burst seed PATH [--users N]")));
            let users = flag(&args, "--users").map(|v| v.parse().unwrap_or_else(|_| die("--users: a number"))).unwrap_or(1000);
            seed(&path, users);
        }
        Some("run") => run(&args),
        _ => die("usage: burst seed PATH [--users N] | burst run --url URL --key K --secret S --tokens FILE"),
    }
}

fn seed(path: &std::path::Path, users: usize) {
    let store = Store::open(path).unwrap_or_else(|e| die(&e.to_string()));
    let hash = bedrud::auth::hash_password("burst-password").unwrap_or_else(|e| die(&e));
    let now = now_ms();
    let mut tokens = Vec::new();
    let mut rows = Vec::new();
    for i in 0..=users {
        let (name, role) = if i == 0 { ("burst-admin".to_string(), Role::Admin) } else { (format!("burst-user-{i:04}"), Role::User) };
        let user = User { created_at: now, ..User::new(&name, hash.clone(), role) };
        let (token, key) = bedrud::auth::new_token();
        let session = Session { kind: SessionKind::User, subject: user.id.clone(), epoch: 0, created_at: now, expires_at: now + 86_400_000 };
        tokens.push(token);
        rows.push((user, key, session));
    }
    let owner = rows[0].0.id.clone();
    store
        .write_blocking(move |txn| {
            for (u, key, s) in &rows {
                store::insert_user(txn, u)?;
                store::session_put(txn, key, s)?;
            }
            let room = Room::new("burst-room", &owner, now, RoomSettings::default());
            store::room_insert(txn, &room)
        })
        .unwrap_or_else(|e| die(&e.to_string()));
    let out = path.with_extension("tokens");
    std::fs::write(&out, tokens.join("\n")).unwrap_or_else(|e| die(&e.to_string()));
    println!("{}", json!({ "users": users, "tokens": out }));
}

fn client() -> reqwest::blocking::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::blocking::Client::builder().timeout(Duration::from_secs(30)).no_proxy().build().unwrap_or_else(|e| die(&e.to_string()))
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    (sorted[i] * 100.0).round() / 100.0
}

fn sign(body: &str, key: &str, secret: &str) -> String {
    let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let sha = base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(body.as_bytes()));
    let head = b64(br#"{"alg":"HS256","typ":"JWT"}"#);
    let claims = b64(json!({ "iss": key, "nbf": now - 5, "exp": now + 300, "sha256": sha }).to_string().as_bytes());
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap_or_else(|_| die("bad secret"));
    mac.update(format!("{head}.{claims}").as_bytes());
    format!("{head}.{claims}.{}", b64(&mac.finalize().into_bytes()))
}

fn run(args: &[String]) {
    let url = flag(args, "--url").unwrap_or_else(|| die("--url"));
    let key = flag(args, "--key").unwrap_or_else(|| die("--key"));
    let secret = flag(args, "--secret").unwrap_or_else(|| die("--secret"));
    let tokens_file = flag(args, "--tokens").unwrap_or_else(|| die("--tokens"));
    let spread = Duration::from_millis(flag(args, "--spread-ms").map(|v| v.parse().unwrap_or(1000)).unwrap_or(1000));
    let senders: usize = flag(args, "--senders").map(|v| v.parse().unwrap_or(16)).unwrap_or(16);
    let text = std::fs::read_to_string(&tokens_file).unwrap_or_else(|e| die(&format!("{tokens_file}: {e}")));
    let mut tokens: Vec<String> = text.lines().map(String::from).collect();
    if tokens.len() < 2 {
        die("the token file holds no users");
    }
    let admin = tokens.remove(0);
    let n = tokens.len();

    // 1. Everyone joins within `spread`.
    let barrier = Arc::new(Barrier::new(n));
    let threads: Vec<_> = tokens
        .into_iter()
        .enumerate()
        .map(|(i, token)| {
            let (url, barrier) = (url.clone(), barrier.clone());
            std::thread::Builder::new()
                .stack_size(256 * 1024)
                .spawn(move || {
                    let c = client();
                    barrier.wait();
                    std::thread::sleep(spread * i as u32 / n as u32);
                    let t = Instant::now();
                    let r = c.post(format!("{url}/api/room/join")).bearer_auth(&token).json(&json!({"room": "burst-room"})).send();
                    let ms = t.elapsed().as_secs_f64() * 1000.0;
                    let (status, identity) = match r {
                        Ok(r) => {
                            let s = r.status().as_u16();
                            let v: Value = r.json().unwrap_or(Value::Null);
                            (s, v["identity"].as_str().unwrap_or("").to_string())
                        }
                        Err(_) => (0, String::new()),
                    };
                    (status, ms, identity)
                })
                .unwrap_or_else(|e| die(&format!("cannot start a thread: {e}")))
        })
        .collect();
    let started = Instant::now();
    let results: Vec<(u16, f64, String)> = threads.into_iter().map(|t| t.join().unwrap_or((0, 0.0, String::new()))).collect();
    let join_wall_ms = started.elapsed().as_millis() as u64;
    let ok: Vec<&(u16, f64, String)> = results.iter().filter(|r| (200..300).contains(&r.0)).collect();
    let mut lat: Vec<f64> = results.iter().map(|r| r.1).collect();
    lat.sort_by(|a, b| a.total_cmp(b));

    // 2. LiveKit's participant_joined webhooks for all of them.
    let identities: Vec<String> = ok.iter().map(|r| r.2.clone()).filter(|i| !i.is_empty()).collect();
    let stamp = now_ms();
    let t0 = Instant::now();
    let chunks: Vec<Vec<(usize, String)>> = {
        let mut c = vec![Vec::new(); senders.max(1)];
        for (i, id) in identities.iter().enumerate() {
            c[i % senders.max(1)].push((i, id.clone()));
        }
        c
    };
    let senders: Vec<_> = chunks
        .into_iter()
        .map(|chunk| {
            let (url, key, secret) = (url.clone(), key.clone(), secret.clone());
            std::thread::spawn(move || {
                let c = client();
                let mut acked = 0;
                for (i, identity) in chunk {
                    let now = (stamp / 1000).to_string();
                    let body = json!({
                        "event": "participant_joined",
                        "id": format!("EV_burst_{stamp}_{i}"),
                        "createdAt": now,
                        "room": { "sid": "RM_burst", "name": "burst-room" },
                        "participant": { "sid": format!("PA_burst_{i}"), "identity": identity, "name": format!("user {i}"), "joinedAt": now, "state": "ACTIVE" }
                    })
                    .to_string();
                    let r = c
                        .post(format!("{url}/api/livekit/webhook"))
                        .header("authorization", sign(&body, &key, &secret))
                        .header("content-type", "application/webhook+json")
                        .body(body)
                        .send();
                    if r.map(|r| r.status().is_success()).unwrap_or(false) {
                        acked += 1;
                    }
                }
                acked
            })
        })
        .collect();
    // Poll the participant list meanwhile.
    let c = client();
    let mut applied_ms = None;
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        let v: Value = c
            .get(format!("{url}/api/admin/rooms/burst-room/participants"))
            .bearer_auth(&admin)
            .send()
            .and_then(|r| r.json())
            .unwrap_or(Value::Null);
        if v["participants"].as_array().map(|a| a.len()).unwrap_or(0) >= identities.len() {
            applied_ms = Some(t0.elapsed().as_millis() as u64);
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let acked: usize = senders.into_iter().map(|s| s.join().unwrap_or(0)).sum();
    println!(
        "{}",
        json!({
            "users": n,
            "joins_ok": ok.len(),
            "joins_other": n - ok.len(),
            "join_wall_ms": join_wall_ms,
            "join_p50_ms": percentile(&lat, 0.5),
            "join_p99_ms": percentile(&lat, 0.99),
            "join_max_ms": percentile(&lat, 1.0),
            "webhooks_sent": identities.len(),
            "webhooks_acked": acked,
            "applied_ms": applied_ms,
        })
    );
}
