//! `bedrud run` as systemd and an operator see it, with a real livekit-server child: sd_notify
//! (STATUS, EXTEND_TIMEOUT_USEC, READY only once LiveKit is healthy, WATCHDOG, RELOADING on
//! SIGHUP, STOPPING), the child killed once and many times (API up throughout, backoff), stop
//! and SIGKILL clean-up, the start failures an operator meets (port in use, missing binary,
//! LiveKit's own config errors), external mode losing and regaining its server, JSON logs that
//! carry LiveKit's lines, and TLS on the API with TURN/TLS reusing the certificate.
//!
//! Timing figures are printed (`figure:` lines), never asserted.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::daemon::{eventually, http_client, Daemon, Opts, API_KEY, API_SECRET};
use common::external::External;
use common::participant::Participant;
use common::{free_port, livekit_binary, pids_of, tls, wait_for};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde_json::{json, Value};

const SECS: fn(u64) -> Duration = Duration::from_secs;

// ---------------------------------------------------------------------------------------------
// Helpers

/// `GET http://127.0.0.1:<port>/` over a bare socket: `(status, body)`.
fn livekit_root(port: u16) -> Result<(u16, String), String> {
    let mut s = TcpStream::connect_timeout(&SocketAddr::from(([127, 0, 0, 1], port)), SECS(5)).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(SECS(5))).map_err(|e| e.to_string())?;
    s.write_all(b"GET / HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").map_err(|e| e.to_string())?;
    let mut text = String::new();
    s.read_to_string(&mut text).map_err(|e| e.to_string())?;
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| format!("not an HTTP answer: {text:?}"))?;
    let body = text.split("\r\n\r\n").nth(1).unwrap_or("").trim().to_string();
    Ok((status, body))
}

fn sigkill(pid: u32) {
    kill(Pid::from_raw(pid as i32), Signal::SIGKILL).expect("SIGKILL livekit-server");
}

fn alive(pid: u32) -> bool {
    pids_of(&livekit_binary()).contains(&pid)
}

/// The admin overview's `livekit` object.
fn overview(d: &Daemon, admin: &str) -> Value {
    let (s, v) = d.get("/api/admin/overview", Some(admin));
    assert_eq!(s, 200, "{v}");
    v["livekit"].clone()
}

/// Polls `/api/health` every 25 ms on its own thread; counts answers that were not 200.
struct HealthPoller {
    stop: Arc<AtomicBool>,
    polls: Arc<AtomicU64>,
    bad: Arc<Mutex<Vec<String>>>,
    thread: Option<JoinHandle<()>>,
}

impl HealthPoller {
    fn start(url: String) -> HealthPoller {
        let stop = Arc::new(AtomicBool::new(false));
        let polls = Arc::new(AtomicU64::new(0));
        let bad = Arc::new(Mutex::new(Vec::new()));
        let (s, p, b) = (stop.clone(), polls.clone(), bad.clone());
        let thread = std::thread::spawn(move || {
            let http = http_client();
            while !s.load(Ordering::SeqCst) {
                match http.get(&url).send() {
                    Ok(r) if r.status().as_u16() == 200 => {}
                    Ok(r) => b.lock().unwrap().push(format!("status {}", r.status())),
                    Err(e) => b.lock().unwrap().push(e.to_string()),
                }
                p.fetch_add(1, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(25));
            }
        });
        HealthPoller { stop, polls, bad, thread: Some(thread) }
    }

    /// Stops polling; (polls, failures).
    fn finish(mut self) -> (u64, Vec<String>) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        (self.polls.load(Ordering::SeqCst), self.bad.lock().unwrap().clone())
    }
}

impl Drop for HealthPoller {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

// ---------------------------------------------------------------------------------------------
// sd_notify

/// One datagram bedrud sent to `NOTIFY_SOCKET`.
#[derive(Debug, Clone)]
struct Msg {
    at: Instant,
    text: String,
    /// For a datagram with READY=1: LiveKit's `GET /` answer, asked on receipt.
    livekit_root: Option<Result<(u16, String), String>>,
}

impl Msg {
    fn has(&self, line: &str) -> bool {
        self.text.lines().any(|l| l == line)
    }

    fn value(&self, key: &str) -> Option<&str> {
        self.text.lines().find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
    }

    fn status(&self) -> &str {
        self.value("STATUS").unwrap_or("")
    }
}

/// A fake service manager: a datagram socket that records what it receives.
struct NotifySocket {
    path: PathBuf,
    msgs: Arc<Mutex<Vec<Msg>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    _dir: tempfile::TempDir,
}

impl NotifySocket {
    /// `livekit_port`: whose `GET /` to check the moment READY=1 arrives.
    fn bind(livekit_port: u16) -> NotifySocket {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify.sock");
        let sock = UnixDatagram::bind(&path).expect("bind notify socket");
        sock.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
        let msgs = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (m, s) = (msgs.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            let mut buf = vec![0u8; 64 * 1024];
            while !s.load(Ordering::SeqCst) {
                let Ok(n) = sock.recv(&mut buf) else { continue };
                let at = Instant::now();
                let text = String::from_utf8_lossy(&buf[..n]).into_owned();
                let ready = text.lines().any(|l| l == "READY=1");
                let livekit_root = ready.then(|| livekit_root(livekit_port));
                m.lock().unwrap().push(Msg { at, text, livekit_root });
            }
        });
        NotifySocket { path, msgs, stop, thread: Some(thread), _dir: dir }
    }

    fn all(&self) -> Vec<Msg> {
        self.msgs.lock().unwrap().clone()
    }

    /// Waits for the first message at index `from` or later that matches; (index, message).
    fn wait(&self, from: usize, limit: Duration, what: &str, pred: impl Fn(&Msg) -> bool) -> (usize, Msg) {
        let start = Instant::now();
        loop {
            let found = self.all().into_iter().enumerate().skip(from).find(|(_, m)| pred(m));
            if let Some(f) = found {
                return f;
            }
            if start.elapsed() > limit {
                panic!("no sd_notify message {what} within {limit:?}; received: {:#?}", self.all().iter().map(|m| &m.text).collect::<Vec<_>>());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for NotifySocket {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[test]
fn sd_notify_start_watchdog_reload_stop() {
    let lk_port = free_port();
    let notify = NotifySocket::bind(lk_port);
    let spawned = Instant::now();
    let mut d = Daemon::start(Opts {
        env: vec![
            ("NOTIFY_SOCKET".into(), notify.path.display().to_string()),
            ("WATCHDOG_USEC".into(), "2000000".into()),
        ],
        livekit_port: Some(lk_port),
        auth: "  registration: false\n  guestJoin: false\n".into(),
        wait_ready: false,
        ..Default::default()
    });

    // Start: STATUS lines and EXTEND_TIMEOUT_USEC first, READY=1 once LiveKit answers 200 OK.
    let (ready_i, ready) = notify.wait(0, SECS(60), "READY=1", |m| m.has("READY=1"));
    eprintln!("figure: READY=1 {} ms after spawning bedrud", ready.at.duration_since(spawned).as_millis());
    let before = &notify.all()[..ready_i];
    let statuses: Vec<&str> = before.iter().map(Msg::status).filter(|s| !s.is_empty()).collect();
    assert!(statuses.contains(&"starting livekit-server"), "STATUS before READY: {statuses:?}");
    let starting_i = before.iter().position(|m| m.status() == "starting livekit-server").unwrap();
    assert!(
        before[starting_i..].iter().any(|m| m.value("EXTEND_TIMEOUT_USEC").is_some_and(|v| v.parse::<u64>().is_ok_and(|u| u > 0))),
        "EXTEND_TIMEOUT_USEC while LiveKit starts: {before:?}"
    );
    assert!(!before.iter().any(|m| m.has("READY=1") || m.has("WATCHDOG=1")), "nothing but STATUS/EXTEND before READY: {before:?}");
    match &ready.livekit_root {
        Some(Ok((200, body))) if body == "OK" => {}
        other => panic!("LiveKit was not healthy when READY=1 arrived: {other:?}"),
    }
    assert!(ready.status().contains("ready"), "READY's STATUS: {:?}", ready.status());
    assert!(ready.status().contains(&format!(":{}", d.port)), "READY's STATUS names the API port: {:?}", ready.status());
    if let Some(first) = before.first() {
        eprintln!("figure: first STATUS to READY=1: {} ms", ready.at.duration_since(first.at).as_millis());
    }
    d.wait_ready();

    // The child inherits none of the service manager's variables.
    let admin = d.admin();
    let lk_pid = d.livekit_pid(&admin);
    let environ = std::fs::read(format!("/proc/{lk_pid}/environ")).unwrap_or_default();
    let environ = String::from_utf8_lossy(&environ);
    assert!(!environ.contains("NOTIFY_SOCKET") && !environ.contains("WATCHDOG_USEC"), "livekit-server environment: {environ:?}");

    // Watchdog: WATCHDOG=1 again and again (every WATCHDOG_USEC/2).
    notify.wait(ready_i, SECS(30), "third WATCHDOG=1", |_| {
        notify.all()[ready_i..].iter().filter(|m| m.has("WATCHDOG=1")).count() >= 3
    });
    let dogs: Vec<Instant> = notify.all().iter().filter(|m| m.has("WATCHDOG=1")).map(|m| m.at).collect();
    let gaps: Vec<u128> = dogs.windows(2).map(|w| w[1].duration_since(w[0]).as_millis()).collect();
    eprintln!("figure: WATCHDOG=1 intervals (WATCHDOG_USEC=2000000): {gaps:?} ms");

    // A public room; guests are refused while guestJoin is off.
    let (s, v) = d.post("/api/room/create", Some(&admin), json!({ "name": "lobby", "settings": { "public": true } }));
    assert_eq!(s, 201, "{v}");
    let guest_join = |d: &Daemon| d.post("/api/room/join", None, json!({ "room": "lobby", "name": "Guest" }));
    let (s, v) = guest_join(&d);
    assert_eq!(s, 401, "guest join with guestJoin off: {v}");

    // SIGHUP with the same file: RELOADING=1 + MONOTONIC_USEC, then READY=1 "reloaded".
    let reload = |from: usize| -> (usize, Msg, Msg) {
        d.signal(Signal::SIGHUP);
        let (ri, r) = notify.wait(from, SECS(30), "RELOADING=1", |m| m.has("RELOADING=1"));
        let (i, ok) = notify.wait(ri + 1, SECS(60), "READY=1 after RELOADING=1", |m| m.has("READY=1"));
        (i, r, ok)
    };
    let n = notify.all().len();
    let (i, reloading, done) = reload(n);
    let mono: u64 = reloading.value("MONOTONIC_USEC").and_then(|v| v.parse().ok()).unwrap_or_else(|| panic!("MONOTONIC_USEC with RELOADING=1: {reloading:?}"));
    assert!(mono > 0);
    assert!(done.status().contains("reloaded"), "{done:?}");
    assert!(!done.status().contains("rejected"), "{done:?}");
    assert!(matches!(&done.livekit_root, Some(Ok((200, _)))), "{done:?}");
    eprintln!("figure: SIGHUP reload (unchanged) RELOADING→READY {} ms", done.at.duration_since(reloading.at).as_millis());

    // A bad file (unknown key, and guestJoin turned on): rejected, the old config stays.
    let good_text = std::fs::read_to_string(&d.config).unwrap();
    assert!(good_text.contains("  guestJoin: false\n"));
    std::fs::write(&d.config, good_text.replace("  guestJoin: false\n", "  guestJoin: true\n  bogusKey: 1\n")).unwrap();
    let (i, reloading2, rejected) = reload(i + 1);
    let mono2: u64 = reloading2.value("MONOTONIC_USEC").and_then(|v| v.parse().ok()).expect("MONOTONIC_USEC");
    assert!(mono2 > mono, "MONOTONIC_USEC grows: {mono} then {mono2}");
    assert!(rejected.status().contains("reload rejected"), "{rejected:?}");
    assert!(rejected.status().contains("auth.bogusKey"), "the STATUS names the key: {rejected:?}");
    assert!(d.log_text().contains("new configuration rejected"), "{}", d.log_text());
    assert_eq!(d.get("/api/health", None).0, 200);
    assert_eq!(d.get("/api/ready", None).0, 200);
    let (s, v) = guest_join(&d);
    assert_eq!(s, 401, "guestJoin from the rejected file must not apply: {v}");

    // A good change: guestJoin on takes effect without a restart.
    std::fs::write(&d.config, good_text.replace("  guestJoin: false\n", "  guestJoin: true\n")).unwrap();
    let (_, _, applied) = reload(i + 1);
    assert!(applied.status().contains("reloaded") && !applied.status().contains("rejected"), "{applied:?}");
    let (s, v) = guest_join(&d);
    assert_eq!(s, 200, "guest join after the reload: {v}");
    assert!(v["token"].is_string() && v["guestToken"].is_string(), "{v}");
    assert_eq!(d.livekit_pid(&admin), lk_pid, "an auth change does not restart livekit-server");

    // SIGTERM: STOPPING=1 and exit 0.
    let n = notify.all().len();
    let t = Instant::now();
    assert_eq!(d.stop(), Some(0), "{}", d.log_text());
    eprintln!("figure: SIGTERM to exit {} ms", t.elapsed().as_millis());
    let (_, stopping) = notify.wait(n, SECS(5), "STOPPING=1", |m| m.has("STOPPING=1"));
    assert!(!stopping.status().is_empty(), "{stopping:?}");
    assert!(!alive(lk_pid), "livekit-server {lk_pid} still running");
}

/// A reload that restarts livekit-server waits for it to drain a participant (up to
/// `livekit.stopTimeout`): the watchdog must be fed meanwhile.
#[test]
fn watchdog_is_fed_during_a_slow_reload() {
    let lk_port = free_port();
    let notify = NotifySocket::bind(lk_port);
    let mut d = Daemon::start(Opts {
        env: vec![
            ("NOTIFY_SOCKET".into(), notify.path.display().to_string()),
            ("WATCHDOG_USEC".into(), "1000000".into()),
        ],
        livekit_port: Some(lk_port),
        livekit_extra: "  emptyTimeout: 300\n".into(),
        ..Default::default()
    });
    let admin = d.admin();
    let old = d.livekit_pid(&admin);
    let (s, v) = d.post("/api/room/create", Some(&admin), json!({ "name": "busy" }));
    assert_eq!(s, 201, "{v}");
    let (s, j) = d.post("/api/room/join", Some(&admin), json!({ "room": "busy" }));
    assert_eq!(s, 200, "{j}");
    let _p = Participant::connect(j["url"].as_str().unwrap(), j["token"].as_str().unwrap(), 60);

    // A LiveKit setting changes: the child is restarted with the new config.
    let text = std::fs::read_to_string(&d.config).unwrap();
    std::fs::write(&d.config, text.replace("  emptyTimeout: 300\n", "  emptyTimeout: 301\n")).unwrap();
    let n = notify.all().len();
    d.signal(Signal::SIGHUP);
    let (ri, reloading) = notify.wait(n, SECS(30), "RELOADING=1", |m| m.has("RELOADING=1"));
    let (di, done) = notify.wait(ri + 1, SECS(90), "READY=1 after RELOADING=1", |m| m.has("READY=1"));
    assert!(done.status().contains("livekit-server restarted with the new configuration"), "{done:?}");
    assert!(matches!(&done.livekit_root, Some(Ok((200, _)))), "{done:?}");
    let new = d.livekit_pid(&admin);
    assert!(new != 0 && new != old, "livekit-server restarted: {old} -> {new}");

    let took = done.at.duration_since(reloading.at);
    let pings = notify.all()[ri..di].iter().filter(|m| m.has("WATCHDOG=1")).count();
    let dogs: Vec<Instant> = notify.all().iter().filter(|m| m.has("WATCHDOG=1")).map(|m| m.at).collect();
    let max_gap = dogs.windows(2).map(|w| w[1].duration_since(w[0]).as_millis()).max().unwrap_or(0);
    eprintln!("figure: reload restarting livekit-server took {} ms; {pings} WATCHDOG=1 meanwhile; longest gap between pings {max_gap} ms (period 500 ms)", took.as_millis());
    // Pings every 500 ms: a reload longer than two periods must contain at least one.
    if took > Duration::from_millis(1000) {
        assert!(pings >= 1, "no WATCHDOG=1 during a {} ms reload", took.as_millis());
    }
    assert_eq!(d.stop(), Some(0));
}

/// True while `pid` exists and is not a zombie.
fn process_running(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| !s.contains(") Z "))
}

/// SIGHUP and then SIGTERM while bedrud still waits for LiveKit's first start: the first is
/// held, the second is an orderly stop (exit 0, child stopped, config removed, STOPPING=1 and
/// never READY=1). Stand-in: the "livekit-server" here is a shell script that answers
/// `--version` and then never becomes healthy, so the signal surely lands in that window. The
/// real server cannot be held in its start on demand on this machine (its slow path, the STUN
/// lookup of `use_external_ip`, fails at once without DNS); every other test uses the real one.
#[test]
fn sigterm_during_startup_stops_cleanly() {
    let bin = tempfile::tempdir().unwrap();
    let fake = bin.path().join("livekit-server");
    std::fs::write(&fake, "#!/bin/sh\nif [ \"$1\" = --version ]; then echo 'livekit-server version 1.13.5'; exit 0; fi\nexec sleep 300\n").unwrap();
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    let lk_port = free_port();
    let notify = NotifySocket::bind(lk_port);
    let mut d = Daemon::start(Opts {
        env: vec![("NOTIFY_SOCKET".into(), notify.path.display().to_string())],
        livekit_port: Some(lk_port),
        livekit_binary: Some(fake),
        wait_ready: false,
        ..Default::default()
    });
    notify.wait(0, SECS(60), "STATUS=starting livekit-server", |m| m.status() == "starting livekit-server");
    let admin = d.admin();
    let child = wait_for(SECS(30), "the child's pid", || {
        let o = overview(&d, &admin);
        assert_eq!(o["state"], "starting", "{o}");
        o["pid"].as_u64().filter(|p| *p != 0).map(|p| p as u32)
    });
    assert!(process_running(child));
    assert_eq!(d.temp_configs().len(), 1);
    // A reload request this early is held for the main loop, not fatal (SIGHUP's default).
    d.signal(Signal::SIGHUP);
    std::thread::sleep(Duration::from_millis(500));
    assert!(d.child.as_mut().unwrap().try_wait().unwrap().is_none(), "SIGHUP during startup ended bedrud:\n{}", d.log_text());
    assert!(process_running(child));
    let t = Instant::now();
    let code = d.stop();
    eprintln!("figure: SIGTERM during LiveKit's start to exit {} ms", t.elapsed().as_millis());
    let log = d.log_text();
    assert_eq!(code, Some(0), "exit status after SIGTERM during startup:\n{log}");
    assert!(log.contains("SIGTERM received while livekit-server was starting"), "{log}");
    wait_for(SECS(10), "the child gone", || (!process_running(child)).then_some(()));
    assert!(d.temp_configs().is_empty(), "{:?}", d.temp_configs());
    let all = notify.all();
    assert!(!all.iter().any(|m| m.has("READY=1")), "no READY=1 after a stop request: {all:?}");
    assert!(all.iter().any(|m| m.has("STOPPING=1")), "{all:?}");
}

// ---------------------------------------------------------------------------------------------
// The child dies

#[test]
fn kill_9_of_livekit_is_restarted_while_the_api_keeps_serving() {
    let d = Daemon::start(Opts::default());
    let admin = d.admin();
    let before = overview(&d, &admin);
    assert_eq!((before["state"].as_str(), before["restarts"].as_u64()), (Some("ready"), Some(0)), "{before}");
    let old = d.livekit_pid(&admin);
    assert!(old != 0 && alive(old));

    let health = HealthPoller::start(d.url("/api/health"));
    std::thread::sleep(Duration::from_millis(200));
    let t0 = Instant::now();
    sigkill(old);
    let lk = wait_for(SECS(60), "livekit-server restarted and ready", || {
        let o = overview(&d, &admin);
        let pid = o["pid"].as_u64().unwrap_or(0) as u32;
        (o["state"] == "ready" && pid != 0 && pid != old).then_some(o)
    });
    eprintln!("figure: kill -9 of livekit-server to ready again: {} ms", t0.elapsed().as_millis());
    std::thread::sleep(Duration::from_millis(200));
    let (polls, bad) = health.finish();
    eprintln!("figure: /api/health polled {polls} times during the restart, {} failures", bad.len());
    assert!(polls > 0);
    assert!(bad.is_empty(), "/api/health failed during the restart: {bad:?}");
    assert_eq!(lk["restarts"].as_u64(), Some(1), "{lk}");
    assert_eq!(lk["ready"], true, "{lk}");
    assert!(lk["lastError"].as_str().unwrap_or("").contains("SIGKILL"), "{lk}");
    let new = lk["pid"].as_u64().unwrap() as u32;
    assert!(alive(new) && !alive(old));
    let (s, r) = d.get("/api/ready", None);
    assert_eq!((s, r["livekit"]["restarts"].as_u64()), (200, Some(1)), "{r}");
    let log = d.log_text();
    assert!(log.contains("livekit-server crashed: killed by signal SIGKILL"), "{log}");

    // A fresh token from bedrud works against the new child.
    let (s, v) = d.post("/api/room/create", Some(&admin), json!({ "name": "after-restart" }));
    assert_eq!(s, 201, "{v}");
    let (s, j) = d.post("/api/room/join", Some(&admin), json!({ "room": "after-restart" }));
    assert_eq!(s, 200, "{j}");
    let mut p = Participant::connect(j["url"].as_str().unwrap(), j["token"].as_str().unwrap(), 60);
    let identity = j["identity"].as_str().unwrap().to_string();
    eventually(SECS(20), "participant listed after the restart", || {
        let (_, v) = d.get("/api/room/after-restart/participants", Some(&admin));
        v["participants"].as_array().is_some_and(|a| a.iter().any(|x| x["identity"] == identity.as_str()))
    });
    p.leave();
}

/// `restart N (attempt M in a row) in D ms` lines of the log: (M, D).
fn restart_lines(log: &str) -> Vec<(u32, u64)> {
    log.lines()
        .filter_map(|l| {
            let rest = &l[l.find("(attempt ")? + "(attempt ".len()..];
            let attempt = rest.split_whitespace().next()?.parse().ok()?;
            let after = &rest[rest.find("in a row) in ")? + "in a row) in ".len()..];
            let ms = after.split_whitespace().next()?.parse().ok()?;
            Some((attempt, ms))
        })
        .collect()
}

#[test]
fn repeated_kills_back_off_and_recover() {
    const KILLS: u32 = 6;
    let d = Daemon::start(Opts::default());
    let admin = d.admin();
    let first = d.livekit_pid(&admin);
    let http = http_client();
    let start = Instant::now();
    let mut killed = vec![first];
    sigkill(first);
    let mut last_kill = Instant::now();
    let mut attempts_seen: Vec<u32> = Vec::new();
    let mut health_polls = 0u32;
    let mut health_bad = Vec::new();
    loop {
        assert!(
            start.elapsed() < SECS(90),
            "not ready again within 90 s after {} kills; attempts seen {attempts_seen:?}\n{}",
            killed.len(),
            d.log_text()
        );
        match http.get(d.url("/api/health")).send() {
            Ok(r) if r.status().as_u16() == 200 => {}
            Ok(r) => health_bad.push(format!("status {}", r.status())),
            Err(e) => health_bad.push(e.to_string()),
        }
        health_polls += 1;
        let (_, r) = d.get("/api/ready", None);
        let state = r["livekit"]["state"].as_str().unwrap_or("").to_string();
        if let Some(rest) = state.strip_prefix("restarting (attempt ") {
            let n: u32 = rest.split(',').next().and_then(|n| n.parse().ok()).unwrap_or(0);
            if attempts_seen.last() != Some(&n) {
                attempts_seen.push(n);
            }
        }
        let o = overview(&d, &admin);
        let pid = o["pid"].as_u64().unwrap_or(0) as u32;
        if pid != 0 && !killed.contains(&pid) {
            if (killed.len() as u32) < KILLS {
                // Kill each new child as soon as it appears (often before it is ready).
                sigkill(pid);
                killed.push(pid);
                last_kill = Instant::now();
            } else if o["state"] == "ready" {
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    eprintln!(
        "figure: {KILLS} kills in a row, ready again {} ms after the last kill, {} ms in all",
        last_kill.elapsed().as_millis(),
        start.elapsed().as_millis()
    );
    eprintln!("figure: /ready showed restarting attempts {attempts_seen:?}");
    assert!(health_bad.is_empty(), "/api/health failed during the restarts: {health_bad:?}");
    assert!(health_polls > 10);
    assert!(attempts_seen.len() >= 3, "restarting (attempt n…) seen: {attempts_seen:?}");
    assert!(attempts_seen.windows(2).all(|w| w[0] < w[1]), "attempts only grow: {attempts_seen:?}");
    assert_eq!(attempts_seen.last(), Some(&KILLS), "{attempts_seen:?}");

    let lines = restart_lines(&d.log_text());
    eprintln!("figure: restart delays (attempt, ms): {lines:?}");
    assert!(lines.len() >= KILLS as usize, "{lines:?}\n{}", d.log_text());
    let delays: Vec<u64> = lines.iter().take(KILLS as usize).map(|(_, ms)| *ms).collect();
    assert!(delays.windows(2).all(|w| w[0] < w[1]), "backoff grows: {delays:?}");
    assert_eq!(lines.iter().map(|(a, _)| *a).take(KILLS as usize).collect::<Vec<_>>(), (1..=KILLS).collect::<Vec<_>>());

    let o = overview(&d, &admin);
    assert_eq!((o["state"].as_str(), o["restarts"].as_u64()), (Some("ready"), Some(KILLS as u64)), "{o}");
    assert_eq!(d.get("/api/ready", None).0, 200);
    for pid in &killed {
        assert!(!alive(*pid), "killed child {pid} still there");
    }
}

// ---------------------------------------------------------------------------------------------
// Stop and clean-up

#[test]
fn stop_and_sigkill_leave_nothing_behind() {
    let mut d = Daemon::start(Opts::default());
    let admin = d.admin();
    let lk = d.livekit_pid(&admin);
    assert!(alive(lk));
    let files = d.temp_configs();
    assert_eq!(files.len(), 1, "one generated config while running: {files:?}");
    let mode = std::fs::metadata(&files[0]).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "{}", files[0].display());

    // SIGTERM: exit 0, child gone, temporary config removed.
    let t = Instant::now();
    assert_eq!(d.stop(), Some(0), "{}", d.log_text());
    eprintln!("figure: SIGTERM to bedrud exit {} ms", t.elapsed().as_millis());
    assert!(!alive(lk), "livekit-server {lk} survived bedrud's stop");
    assert!(d.temp_configs().is_empty(), "{:?}", d.temp_configs());

    // Same state again; then SIGKILL: the child dies with its parent.
    d.spawn();
    d.wait_ready();
    let admin = d.login("admin", "admin-password");
    let lk = d.livekit_pid(&admin);
    let stale = d.temp_configs();
    assert_eq!(stale.len(), 1, "{stale:?}");
    let t = Instant::now();
    d.kill9();
    wait_for(SECS(10), "livekit-server to die with bedrud", || (!alive(lk)).then_some(()));
    eprintln!("figure: bedrud SIGKILL, livekit-server gone after {} ms", t.elapsed().as_millis());
    assert_eq!(d.temp_configs(), stale, "a killed bedrud cannot remove its config");

    // The next start removes the stale file and works.
    d.spawn();
    d.wait_ready();
    let log = d.log_text();
    assert!(log.contains(&format!("removed stale LiveKit config {}", stale[0].display())), "{log}");
    let now = d.temp_configs();
    assert_eq!(now.len(), 1, "{now:?}");
    assert!(!stale[0].exists());
    let admin = d.login("admin", "admin-password");
    let lk = d.livekit_pid(&admin);
    assert_eq!(d.stop(), Some(0));
    assert!(!alive(lk));
    assert!(d.temp_configs().is_empty());
}

// ---------------------------------------------------------------------------------------------
// Start failures, as `bedrud run` reports them

/// Runs bedrud until it exits by itself (it must fail); (exit code, log).
fn failed_run(opts: Opts) -> (Option<i32>, String) {
    let mut d = Daemon::start(Opts { wait_ready: false, ..opts });
    let t = Instant::now();
    let code = d.wait_exit(SECS(90));
    eprintln!("figure: failed start reported after {} ms", t.elapsed().as_millis());
    let log = d.log_text();
    assert!(d.temp_configs().is_empty(), "no generated config left: {:?}", d.temp_configs());
    (code, log)
}

/// The `bedrud: …` line(s) printed on exit.
fn error_text(log: &str) -> String {
    let start = log.find("\nbedrud: ").map(|i| i + 1).or_else(|| log.starts_with("bedrud: ").then_some(0));
    match start {
        Some(i) => log[i..].to_string(),
        None => panic!("no `bedrud: ` error line in:\n{log}"),
    }
}

#[test]
fn livekit_port_in_use_is_named() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let (code, log) = failed_run(Opts { livekit_port: Some(port), ..Default::default() });
    let err = error_text(&log);
    eprintln!("{err}");
    assert!(code.is_some_and(|c| c != 0), "exit {code:?}");
    assert!(err.contains(&format!("port {port}")) && err.contains("livekit.port") && err.contains("already in use"), "{err}");
    drop(taken);
}

#[test]
fn missing_binary_lists_every_place_looked() {
    let empty = tempfile::tempdir().unwrap();
    let (code, log) = failed_run(Opts {
        livekit_binary: Some(PathBuf::from("/nonexistent/livekit-server")),
        env: vec![("PATH".into(), empty.path().display().to_string())],
        env_remove: vec!["BEDRUD_LIVEKIT_BINARY".into()],
        ..Default::default()
    });
    let err = error_text(&log);
    eprintln!("{err}");
    assert!(code.is_some_and(|c| c != 0), "exit {code:?}");
    for want in [
        "livekit-server not found",
        "livekit.binary (/nonexistent/livekit-server)",
        "bedrud package (/usr/lib/bedrud/livekit-server)",
        "livekit-server on PATH",
        &empty.path().display().to_string(),
        "scripts/install-livekit",
    ] {
        assert!(err.contains(want), "{want:?} not in:\n{err}");
    }
}

/// A static LiveKit config on free loopback ports with bedrud's keys, plus `extra`.
fn static_livekit_config(dir: &Path, extra: &str) -> PathBuf {
    let (port, tcp, udp) = (free_port(), free_port(), free_port());
    let path = dir.join("livekit.yaml");
    std::fs::write(
        &path,
        format!(
            "port: {port}\nrtc:\n  tcp_port: {tcp}\n  udp_port: {udp}\n  node_ip: 127.0.0.1\n  use_external_ip: false\n  enable_loopback_candidate: true\n  interfaces:\n    includes: [lo]\nkeys:\n  {API_KEY}: {API_SECRET}\n{extra}"
        ),
    )
    .unwrap();
    path
}

fn static_config_failure(extra: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = static_livekit_config(dir.path(), extra);
    let (code, log) = failed_run(Opts { livekit_extra: format!("  configPath: {}\n", path.display()), ..Default::default() });
    let err = error_text(&log);
    eprintln!("{err}");
    assert!(code.is_some_and(|c| c != 0), "exit {code:?}");
    assert!(err.contains("LiveKit failed to start") && err.contains("livekit-server failed to start"), "{err}");
    err
}

#[test]
fn static_config_unknown_key_shows_livekits_parse_error() {
    let err = static_config_failure("bogus_key: 1\n");
    assert!(err.contains("could not parse config"), "{err}");
    assert!(err.contains("field bogus_key not found"), "{err}");
    assert!(err.contains("livekit.configPath"), "the fix names the setting: {err}");
}

#[test]
fn static_config_turn_errors_show_livekits_messages() {
    let tls = free_port();
    let err = static_config_failure(&format!("turn:\n  enabled: true\n  domain: localhost\n  tls_port: {tls}\n  udp_port: {}\n", free_port()));
    assert!(err.contains("TURN domain is not correct"), "{err}");
    // 127.0.0.1 passes LiveKit's domain pattern; then the missing certificate is the error.
    let err = static_config_failure(&format!("turn:\n  enabled: true\n  domain: 127.0.0.1\n  tls_port: {tls}\n  udp_port: {}\n", free_port()));
    assert!(err.contains("TURN tls cert required"), "{err}");
}

// ---------------------------------------------------------------------------------------------
// External mode

#[test]
fn external_livekit_lost_and_regained() {
    let hook = free_port();
    let mut lk = External::start(hook);
    let d = Daemon::start(Opts {
        external: Some((lk.port, String::new())),
        port: Some(hook),
        livekit_extra: "  healthInterval: 500ms\n".into(),
        ..Default::default()
    });
    let admin = d.admin();
    let (s, r) = d.get("/api/ready", None);
    assert_eq!((s, r["livekit"]["state"].as_str(), r["livekit"]["mode"].as_str()), (200, Some("ready"), Some("external")), "{r}");
    let o = overview(&d, &admin);
    assert_eq!((o["mode"].as_str(), o["pid"].as_u64()), (Some("external"), None), "{o}");

    let t = Instant::now();
    lk.stop();
    let r = wait_for(SECS(15), "/api/ready 503 unreachable", || {
        let (s, r) = d.get("/api/ready", None);
        (s == 503 && r["livekit"]["state"].as_str().is_some_and(|st| st.starts_with("unreachable"))).then_some(r)
    });
    eprintln!("figure: external LiveKit stopped, /api/ready 503 after {} ms (healthInterval 500ms)", t.elapsed().as_millis());
    assert!(r["notReady"].as_array().is_some_and(|a| a.iter().any(|x| x.as_str().unwrap_or("").starts_with("livekit: unreachable"))), "{r}");
    assert_eq!(d.get("/api/health", None).0, 200, "the API itself still answers");
    assert_eq!(overview(&d, &admin)["ready"], false);

    lk.spawn();
    let t = Instant::now();
    eventually(SECS(15), "/api/ready 200 again", || d.get("/api/ready", None).0 == 200);
    eprintln!("figure: external LiveKit healthy again, /api/ready 200 after {} ms", t.elapsed().as_millis());
    assert!(d.log_text().contains("does not answer"), "the loss is logged");
}

// ---------------------------------------------------------------------------------------------
// Logs

#[test]
fn json_logs_carry_livekit_lines_with_source_pid_and_level() {
    // `debug` for bedrud makes LiveKit log at debug too (its level follows logging.level).
    let d = Daemon::start(Opts { log_format: Some("json".into()), log_level: Some("debug".into()), ..Default::default() });
    let admin = d.admin();
    let pid = d.livekit_pid(&admin);
    let log = d.log_text();
    let mut lines = Vec::new();
    for l in log.lines().filter(|l| !l.trim().is_empty()) {
        let v: Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON log line ({e}): {l}"));
        lines.push(v);
    }
    let lk: Vec<&Value> = lines.iter().filter(|v| v["fields"]["source"] == "livekit").collect();
    assert!(!lk.is_empty(), "no LiveKit line in:\n{log}");
    assert!(log.contains("\"source\":\"livekit\""), "{log}");
    for v in &lk {
        assert!(v["fields"]["livekit_pid"].is_u64(), "{v}");
        assert_eq!(v["target"], "livekit", "{v}");
        assert!(["ERROR", "WARN", "INFO", "DEBUG", "TRACE"].contains(&v["level"].as_str().unwrap_or("")), "{v}");
    }
    // LiveKit's own "starting LiveKit server" (level info in its JSON) arrives at INFO, with
    // LiveKit's fields kept.
    let starting = lk
        .iter()
        .find(|v| v["fields"]["message"] == "starting LiveKit server")
        .unwrap_or_else(|| panic!("LiveKit's start line not forwarded:\n{log}"));
    assert_eq!(starting["level"], "INFO", "{starting}");
    assert_eq!(starting["fields"]["livekit_pid"].as_u64(), Some(pid as u64), "{starting}");
    // LiveKit's own fields arrive as fields of their own, not as one escaped JSON string.
    assert_eq!(starting["fields"]["portHttp"].as_u64(), Some(d.lk_port as u64), "{starting}");
    assert_eq!(starting["fields"]["nodeIP"], "127.0.0.1", "{starting}");
    assert!(starting["fields"].get("lk_fields").is_none(), "{starting}");
    // Its per-request API lines (the reconciler's ListRooms after every start) are debug.
    let api: Vec<&&Value> = lk.iter().filter(|v| v["fields"]["message"].as_str().is_some_and(|m| m.starts_with("API RoomService."))).collect();
    assert!(!api.is_empty(), "no LiveKit API line at debug level:\n{log}");
    assert!(api.iter().all(|v| v["level"] == "DEBUG"), "{api:?}");
    for v in &lk {
        eprintln!("livekit line: {} {}", v["level"].as_str().unwrap_or(""), v["fields"]["message"].as_str().unwrap_or(""));
    }
    let levels: std::collections::BTreeSet<&str> = lk.iter().filter_map(|v| v["level"].as_str()).collect();
    eprintln!("figure: {} LiveKit lines forwarded, levels {levels:?}", lk.len());
    // LiveKit's debug lines (e.g. "UDP receive buffer size") arrive at DEBUG, not as INFO.
    assert!(levels.contains("DEBUG") && levels.contains("INFO"), "{levels:?}");
    // bedrud's own lines are JSON too and not marked as LiveKit's.
    assert!(lines.iter().any(|v| v["fields"]["message"].as_str().is_some_and(|m| m.starts_with("bedrud ready")) && v["fields"]["source"].is_null()));
}

// ---------------------------------------------------------------------------------------------
// TLS on the API

/// bedrud's `server.host`. TURN/TLS needs a name LiveKit accepts as `turn.domain` (with a dot;
/// plain `localhost` leaves TURN off with a warning); the clients find it through `resolve`.
const TLS_HOST: &str = "meet.localhost";

#[test]
fn tls_api_with_turn_and_webhooks() {
    let certs = tempfile::tempdir().unwrap();
    let (cert, key) = tls::self_signed(certs.path(), TLS_HOST);
    let roots = std::fs::read_to_string(&cert).unwrap();
    let (turn_udp, turn_tls) = (free_port(), free_port());
    let opts = || Opts {
        server_extra: format!("  host: {TLS_HOST}\n  tls:\n    certFile: {}\n    keyFile: {}\n", cert.display(), key.display()),
        livekit_extra: format!("  turnUdpPort: {turn_udp}\n  turnTlsPort: {turn_tls}\n"),
        wait_ready: false,
        ..Default::default()
    };

    // A private key other users can read is refused before anything starts.
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let mut d = Daemon::start(opts());
    let code = d.wait_exit(SECS(60));
    let log = d.log_text();
    assert_eq!(code, Some(2), "{log}");
    assert!(log.contains("server.tls.keyFile") && log.contains("accessible by other users") && log.contains("chmod 600"), "{log}");
    drop(d);

    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    let spawned = Instant::now();
    let mut d = Daemon::start(opts());
    let https = tls::https_client(&roots, TLS_HOST, d.port);
    let base = format!("https://{TLS_HOST}:{}", d.port);
    wait_for(SECS(60), "bedrud ready over https", || {
        if let Some(Ok(Some(st))) = d.child.as_mut().map(|c| c.try_wait()) {
            panic!("bedrud exited ({st}):\n{}", d.log_text());
        }
        https.get(format!("{base}/api/ready")).send().ok().filter(|r| r.status().as_u16() == 200).map(|_| ())
    });
    eprintln!("figure: bedrud with TLS and TURN ready after {} ms", spawned.elapsed().as_millis());
    let call = |method: &str, path: &str, token: Option<&str>, body: Option<Value>| -> (u16, Value) {
        let mut req = https.request(reqwest::Method::from_bytes(method.as_bytes()).unwrap(), format!("{base}{path}"));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        let s = r.status().as_u16();
        (s, r.json().unwrap_or(Value::Null))
    };
    let (s, v) = call("GET", "/api/health", None, None);
    assert_eq!((s, v["status"].as_str()), (200, Some("ok")), "{v}");
    assert!(http_client().get(d.url("/api/health")).send().map(|r| r.status().as_u16() != 200).unwrap_or(true), "no plain HTTP on the TLS port");

    // TURN on, with our certificate: in the running child's config and in print-config.
    let files = d.temp_configs();
    assert_eq!(files.len(), 1, "{files:?}");
    let running: serde_norway::Value = serde_norway::from_str(&std::fs::read_to_string(&files[0]).unwrap()).unwrap();
    let (code, out, err) = d.cli(&["livekit", "print-config"], None);
    assert_eq!(code, 0, "{err}");
    let printed: serde_norway::Value = serde_norway::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    for (what, doc) in [("runtime config", &running), ("print-config", &printed)] {
        let t = &doc["turn"];
        assert_eq!(t["enabled"].as_bool(), Some(true), "{what}: {t:?}");
        assert_eq!(t["domain"].as_str(), Some(TLS_HOST), "{what}: {t:?}");
        assert_eq!(t["cert_file"].as_str(), Some(cert.to_str().unwrap()), "{what}: {t:?}");
        assert_eq!(t["key_file"].as_str(), Some(key.to_str().unwrap()), "{what}: {t:?}");
        assert_eq!(t["tls_port"].as_u64(), Some(turn_tls as u64), "{what}: {t:?}");
        assert_eq!(t["udp_port"].as_u64(), Some(turn_udp as u64), "{what}: {t:?}");
    }
    assert_eq!(running["turn"], printed["turn"]);
    // LiveKit's TURN/TLS listener presents the same certificate.
    tls::peer_certificate(&roots, TLS_HOST, turn_tls).unwrap_or_else(|e| panic!("TURN/TLS handshake on {turn_tls}: {e}"));

    // Webhooks still arrive (over bedrud's loopback listener): a real participant is listed.
    d.create_user("admin", "admin-password", true);
    let (s, v) = call("POST", "/api/auth/login", None, Some(json!({ "username": "admin", "password": "admin-password" })));
    assert_eq!(s, 200, "{v}");
    let admin = v["token"].as_str().unwrap().to_string();
    let (s, v) = call("POST", "/api/room/create", Some(&admin), Some(json!({ "name": "secure" })));
    assert_eq!(s, 201, "{v}");
    let (s, j) = call("POST", "/api/room/join", Some(&admin), Some(json!({ "room": "secure" })));
    assert_eq!(s, 200, "{j}");
    eprintln!("join URL handed to clients: {}", j["url"]);
    let mut p = Participant::connect(&format!("ws://127.0.0.1:{}", d.lk_port), j["token"].as_str().unwrap(), 60);
    let identity = j["identity"].as_str().unwrap().to_string();
    eventually(SECS(20), "participant listed through the webhook", || {
        let (_, v) = call("GET", "/api/room/secure/participants", Some(&admin), None);
        v["participants"].as_array().is_some_and(|a| a.iter().any(|x| x["identity"] == identity.as_str()))
    });
    let (_, o) = call("GET", "/api/admin/overview", Some(&admin), None);
    assert!(o["webhook"]["lastSeen"].is_u64(), "{o}");
    p.leave();
    assert_eq!(d.stop(), Some(0), "{}", d.log_text());
}
