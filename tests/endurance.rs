//! Endurance: minutes of mixed load against the real daemon with a real livekit-server and a
//! real LiveKit client connected, and a `kill -9` in the middle of writes. These assert
//! behaviour (no unexpected answer, nothing acknowledged is lost, memory levels off), never
//! wall-clock figures; `make bench` measures speed.

mod common;

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use bedrud::store::{self, Store};
use common::daemon::{eventually, http_client, webhook_auth, Daemon, Opts, API_KEY, API_SECRET};
use common::participant::Participant;
use serde_json::{json, Value};

const SECS: fn(u64) -> Duration = Duration::from_secs;

/// Length of the mixed load; `BEDRUD_ENDURANCE_SECS` shortens it for a quick local run.
fn load_duration() -> Duration {
    let s = std::env::var("BEDRUD_ENDURANCE_SECS").ok().and_then(|v| v.parse().ok()).unwrap_or(120u64);
    SECS(s.max(8))
}

/// One request that never panics: `None` when the daemon could not be reached.
fn call(c: &reqwest::blocking::Client, method: &str, url: &str, token: Option<&str>, body: Option<&Value>) -> Option<(u16, Value)> {
    let m = reqwest::Method::from_bytes(method.as_bytes()).ok()?;
    let mut req = c.request(m, url);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(b) = body {
        req = req.json(b);
    }
    let r = req.send().ok()?;
    let status = r.status().as_u16();
    let text = r.text().ok()?;
    Some((status, serde_json::from_str(&text).unwrap_or(Value::String(text))))
}

use common::daemon::participant_event as event;

/// Posts a webhook signed as LiveKit signs it; `None` when unreachable.
fn hook(c: &reqwest::blocking::Client, d_url: &str, body: &str) -> Option<(u16, Value)> {
    let r = c
        .post(d_url)
        .header("content-type", "application/webhook+json")
        .header("authorization", webhook_auth(body, API_KEY, API_SECRET, 300))
        .body(body.to_string())
        .send()
        .ok()?;
    let s = r.status().as_u16();
    Some((s, r.json().unwrap_or(Value::Null)))
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// True while `pid` is a live (not zombie) process running `exe`.
fn running(pid: u32, exe: &std::path::Path) -> bool {
    let same_exe = std::fs::read_link(format!("/proc/{pid}/exe")).map(|p| p == exe).unwrap_or(false);
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    same_exe && !stat.is_empty() && !stat.contains(") Z ")
}

/// Unexpected answers seen by the workers, kept for the failure message.
#[derive(Default)]
struct Tally {
    requests: AtomicU64,
    unexpected: Mutex<Vec<String>>,
}

impl Tally {
    /// Records one answer; anything not in `ok` is an error.
    fn check(&self, what: &str, got: Option<(u16, Value)>, ok: &[u16]) -> Option<(u16, Value)> {
        self.requests.fetch_add(1, Ordering::Relaxed);
        match &got {
            Some((s, _)) if ok.contains(s) => {}
            Some((s, v)) => self.unexpected.lock().unwrap().push(format!("{what}: {s} {v}")),
            None => self.unexpected.lock().unwrap().push(format!("{what}: no answer")),
        }
        got
    }
}

#[test]
fn two_minutes_of_mixed_load_with_a_real_participant() {
    let mut d = Daemon::start(Opts::default());
    let admin = d.admin();
    let users: Vec<String> = (0..3)
        .map(|i| {
            let name = format!("member{i}");
            d.create_user(&name, "member-password", false);
            d.login(&name, "member-password")
        })
        .collect();
    for i in 0..8 {
        let (s, v) = d.post("/api/room/create", Some(&admin), json!({ "name": format!("hall-{i}"), "settings": { "public": true } }));
        assert_eq!(s, 201, "{v}");
    }

    // A real client stays in hall-0 for the whole run, publishing audio.
    let (s, j) = d.post("/api/room/join", Some(&users[0]), json!({ "room": "hall-0" }));
    assert_eq!(s, 200, "{j}");
    let identity = j["identity"].as_str().unwrap().to_string();
    let timeout = load_duration().as_secs() as u32 + 120;
    let mut p = Participant::connect(j["url"].as_str().unwrap(), j["token"].as_str().unwrap(), timeout);
    p.publish_audio();
    let listed = |d: &Daemon| -> Vec<Value> {
        let (_, v) = d.get("/api/room/hall-0/participants", Some(&admin));
        v["participants"].as_array().cloned().unwrap_or_default()
    };
    eventually(SECS(20), "the real participant listed with its track", || {
        listed(&d).iter().any(|x| x["identity"] == identity.as_str() && x["tracks"].as_array().is_some_and(|t| !t.is_empty()))
    });

    let tally = Arc::new(Tally::default());
    let acked_hooks = Arc::new(Mutex::new(Vec::<String>::new()));
    let created = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let deadline = start + load_duration();
    let base = d.url("");
    let mut workers = Vec::new();

    // Joins: members and the admin into the public halls.
    {
        let (tally, base, users, admin) = (tally.clone(), base.clone(), users.clone(), admin.clone());
        workers.push(thread::spawn(move || {
            let c = http_client();
            let mut n = 0usize;
            while Instant::now() < deadline {
                let token = if n % 4 == 3 { &admin } else { &users[n % users.len()] };
                let body = json!({ "room": format!("hall-{}", n % 8), "name": format!("Caller {n}") });
                let r = tally.check("join", call(&c, "POST", &format!("{base}/api/room/join"), Some(token), Some(&body)), &[200]);
                if let Some((_, v)) = r {
                    assert!(v["token"].as_str().is_some_and(|t| t.split('.').count() == 3), "join token: {v}");
                }
                n += 1;
                thread::sleep(Duration::from_millis(5));
            }
        }));
    }
    // Room creation, with a duplicate name on purpose every 10th time (409 room_exists).
    {
        let (tally, base, users, created) = (tally.clone(), base.clone(), users.clone(), created.clone());
        workers.push(thread::spawn(move || {
            let c = http_client();
            let mut n = 0usize;
            while Instant::now() < deadline {
                let token = &users[n % users.len()];
                if n % 10 == 9 {
                    let body = json!({ "name": format!("endure-{}", n - 1) });
                    let r = tally.check("duplicate room", call(&c, "POST", &format!("{base}/api/room/create"), Some(token), Some(&body)), &[409]);
                    if let Some((409, v)) = r {
                        assert_eq!(v["error"]["code"], "room_exists", "{v}");
                    }
                } else {
                    let body = json!({ "name": format!("endure-{n}"), "settings": { "maxParticipants": 10 } });
                    if let Some((201, _)) = tally.check("create room", call(&c, "POST", &format!("{base}/api/room/create"), Some(token), Some(&body)), &[201]) {
                        created.fetch_add(1, Ordering::Relaxed);
                    }
                }
                n += 1;
                thread::sleep(Duration::from_millis(10));
            }
        }));
    }
    // Webhooks: joined/left pairs with unique ids; every 20th event is a replay of an applied
    // one, which must answer `duplicate: true` and change nothing.
    {
        let (tally, base, acked) = (tally.clone(), base.clone(), acked_hooks.clone());
        workers.push(thread::spawn(move || {
            let c = http_client();
            let url = format!("{base}/api/livekit/webhook");
            let mut n = 0usize;
            let mut last: Option<String> = None;
            while Instant::now() < deadline {
                let room = format!("hook-{}", n % 16);
                let (who, sid) = (format!("ghost-{n}"), format!("PA_endure_{n}"));
                for (kind, tag) in [("participant_joined", "j"), ("participant_left", "l")] {
                    let id = format!("EV_endure_{n}_{tag}");
                    let body = event(&id, kind, &room, &who, &sid);
                    if let Some((200, v)) = tally.check("webhook", hook(&c, &url, &body), &[200]) {
                        assert_eq!(v["duplicate"], false, "{id}: {v}");
                        acked.lock().unwrap().push(id);
                        last = Some(body);
                    }
                    thread::sleep(Duration::from_millis(5));
                }
                if n % 10 == 9 {
                    if let Some(body) = &last {
                        if let Some((200, v)) = tally.check("webhook replay", hook(&c, &url, body), &[200]) {
                            assert_eq!(v["duplicate"], true, "replay: {v}");
                        }
                    }
                }
                n += 1;
            }
        }));
    }
    // Reads: listings, one room, its live participants, the overview.
    {
        let (tally, base, users, admin) = (tally.clone(), base.clone(), users.clone(), admin.clone());
        workers.push(thread::spawn(move || {
            let c = http_client();
            let mut n = 0usize;
            while Instant::now() < deadline {
                let token = &users[n % users.len()];
                let paths: [(&str, &str); 4] = [
                    ("/api/room/list?limit=50", token.as_str()),
                    ("/api/room/hall-0", token.as_str()),
                    ("/api/room/hall-0/participants", admin.as_str()),
                    ("/api/admin/overview", admin.as_str()),
                ];
                let (path, t) = paths[n % paths.len()];
                tally.check(path, call(&c, "GET", &format!("{base}{path}"), Some(t), None), &[200]);
                n += 1;
                thread::sleep(Duration::from_millis(10));
            }
        }));
    }

    // Memory after warm-up, then at the end (sampled every 5 s for the failure message).
    let warm = (load_duration() / 4).min(SECS(30));
    let pid = d.pid();
    let mut samples = Vec::new();
    let mut rss_warm = 0;
    while Instant::now() < deadline {
        thread::sleep(SECS(5).min(deadline.saturating_duration_since(Instant::now())));
        let kib = rss_kib(pid);
        samples.push((start.elapsed().as_secs(), kib));
        if rss_warm == 0 && start.elapsed() >= warm {
            rss_warm = kib;
        }
    }
    for w in workers {
        w.join().expect("a load worker panicked");
    }
    let rss_end = rss_kib(pid);
    let requests = tally.requests.load(Ordering::Relaxed);
    let unexpected = tally.unexpected.lock().unwrap().clone();
    assert!(unexpected.is_empty(), "{} unexpected answers of {requests}, first ones: {:?}", unexpected.len(), &unexpected[..unexpected.len().min(10)]);
    assert!(created.load(Ordering::Relaxed) > 0 && requests > 1000, "the load ran ({requests} requests)");

    // The real participant is still in, still listed, and still receives: its state answers.
    let st = p.state();
    assert_eq!(st["connected"], true, "{st}");
    assert!(listed(&d).iter().any(|x| x["identity"] == identity.as_str()), "real participant still listed");

    // Every acknowledged webhook was applied once: the counter saw at least all of them (LiveKit's
    // own events for the real client come on top), and each id is durably in the store.
    let acked: Vec<String> = acked_hooks.lock().unwrap().clone();
    let (_, o) = d.get("/api/admin/overview", Some(&admin));
    let applied = o["webhook"]["applied"].as_u64().unwrap_or(0);
    assert!(applied >= acked.len() as u64, "applied {applied} < acknowledged {}", acked.len());
    p.leave();
    assert_eq!(d.stop(), Some(0), "clean stop:\n{}", d.log_text());
    let s = Store::open(&d.dir.path().join("bedrud.redb")).expect("the store opens after the run");
    let ids = acked.clone();
    let found = s
        .read_blocking(move |txn| {
            let mut n = 0usize;
            for id in &ids {
                n += store::event_seen(txn, id)? as usize;
            }
            Ok(n)
        })
        .unwrap();
    assert_eq!(found, acked.len(), "every acknowledged webhook is in the store");

    // Memory levels off after warm-up. Allowed: +25% or +8 MiB, whichever is larger. The store's
    // page cache legitimately grows with the data written during the run (a few MiB here), and
    // allocator arenas settle late; a leak of ~200 bytes per request over the tens of
    // thousands of requests after warm-up would exceed the allowance.
    let allowed = (rss_warm / 4).max(8 * 1024);
    eprintln!("endurance: {requests} requests, {} webhooks, RSS {rss_warm} KiB at {warm:?} -> {rss_end} KiB at the end; samples {samples:?}", acked.len());
    assert!(rss_warm > 0, "RSS sampled");
    assert!(rss_end <= rss_warm + allowed, "RSS grew from {rss_warm} KiB to {rss_end} KiB (allowed +{allowed} KiB); samples {samples:?}");
}

#[test]
fn kill_9_during_writes_loses_no_acknowledged_write() {
    let mut d = Daemon::start(Opts::default());
    let admin = d.admin();
    let old_lk = d.livekit_pid(&admin);
    assert_ne!(old_lk, 0, "livekit-server runs");
    let lk_exe = std::fs::read_link(format!("/proc/{old_lk}/exe")).expect("livekit-server exe");

    let stop = Arc::new(AtomicBool::new(false));
    let rooms = Arc::new(Mutex::new(Vec::<String>::new()));
    let users = Arc::new(Mutex::new(Vec::<String>::new()));
    let hooks = Arc::new(Mutex::new(Vec::<String>::new()));
    let base = d.url("");
    let mut workers = Vec::new();
    // Each worker writes until the daemon stops answering, recording what got a 2xx.
    for t in 0..2 {
        let (stop, rooms, base, admin) = (stop.clone(), rooms.clone(), base.clone(), admin.clone());
        workers.push(thread::spawn(move || {
            let c = http_client();
            for n in 0..100_000 {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let name = format!("crash-{t}-{n}");
                match call(&c, "POST", &format!("{base}/api/room/create"), Some(&admin), Some(&json!({ "name": name }))) {
                    Some((201, _)) => rooms.lock().unwrap().push(name),
                    Some((s, v)) => panic!("room create answered {s} {v}"),
                    None => break,
                }
            }
        }));
    }
    {
        let (stop, users, base, admin) = (stop.clone(), users.clone(), base.clone(), admin.clone());
        workers.push(thread::spawn(move || {
            let c = http_client();
            for n in 0..10_000 {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let name = format!("crash-user-{n}");
                let body = json!({ "username": name, "password": "crash-password" });
                match call(&c, "POST", &format!("{base}/api/admin/users"), Some(&admin), Some(&body)) {
                    Some((201, _)) => users.lock().unwrap().push(name),
                    Some((s, v)) => panic!("user create answered {s} {v}"),
                    None => break,
                }
            }
        }));
    }
    for t in 0..2 {
        let (stop, hooks, base) = (stop.clone(), hooks.clone(), base.clone());
        workers.push(thread::spawn(move || {
            let c = http_client();
            let url = format!("{base}/api/livekit/webhook");
            for n in 0..100_000 {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let kind = if n % 2 == 0 { "participant_joined" } else { "participant_left" };
                let body = event(&format!("EV_crash_{t}_{n}"), kind, "crash-hooks", &format!("p-{t}-{}", n / 2), &format!("PA_{t}_{}", n / 2));
                match hook(&c, &url, &body) {
                    Some((200, v)) if v["duplicate"] == false => hooks.lock().unwrap().push(body),
                    // The answer was cut by the kill: not acknowledged.
                    Some((200, Value::Null)) => break,
                    Some((s, v)) => panic!("webhook answered {s} {v}"),
                    None => break,
                }
            }
        }));
    }

    // Kill once every kind of write has been acknowledged a few times, mid-stream.
    eventually(SECS(60), "writes of every kind acknowledged", || {
        rooms.lock().unwrap().len() >= 20 && users.lock().unwrap().len() >= 3 && hooks.lock().unwrap().len() >= 20
    });
    d.kill9();
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.join().expect("a write worker panicked");
    }
    let (rooms, users, hooks) = (rooms.lock().unwrap().clone(), users.lock().unwrap().clone(), hooks.lock().unwrap().clone());

    // The old child died with its parent (parent-death signal), and its port is free again.
    eventually(SECS(15), "the old livekit-server gone", || !running(old_lk, &lk_exe));

    // Restart on the same state: the store opens (redb recovers after the unclean stop).
    d.spawn();
    d.wait_ready();
    let admin = d.login("admin", "admin-password");
    for name in &rooms {
        let (s, v) = d.get(&format!("/api/room/{name}"), Some(&admin));
        assert_eq!(s, 200, "acknowledged room {name} lost: {v}");
    }
    let (s, v) = d.get("/api/admin/users", Some(&admin));
    assert_eq!(s, 200, "{v}");
    let present: HashSet<&str> = v["users"].as_array().unwrap().iter().filter_map(|u| u["username"].as_str()).collect();
    for name in &users {
        assert!(present.contains(name.as_str()), "acknowledged user {name} lost");
    }
    let c = http_client();
    for body in &hooks {
        let (s, v) = hook(&c, &d.url("/api/livekit/webhook"), body).expect("webhook replay answered");
        assert_eq!((s, v["duplicate"].as_bool()), (200, Some(true)), "acknowledged webhook not remembered: {body} -> {v}");
    }

    // A new child runs.
    let (_, o) = d.get("/api/admin/overview", Some(&admin));
    let new_lk = o["livekit"]["pid"].as_u64().unwrap_or(0) as u32;
    assert!(new_lk != 0 && new_lk != old_lk, "new livekit-server pid {new_lk} (old {old_lk}): {o}");
    assert_eq!(o["livekit"]["state"], "ready", "{o}");
    assert!(running(new_lk, &lk_exe), "the new livekit-server runs");
    assert!(!running(old_lk, &lk_exe), "the old livekit-server stays gone");
    eprintln!(
        "kill -9: {} rooms, {} users, {} webhooks acknowledged before the kill, all present after restart",
        rooms.len(),
        users.len(),
        hooks.len()
    );
}
