//! Abuse, faults and growth: sign-in throttling that cannot lock the owner out, trusted
//! proxies, bounded password hashing, slow and idle clients, connection caps, panics, a full
//! disk, kill -9 under load, backup and restore, old stores, metrics. Every test boots the real
//! daemon with a real livekit-server on loopback addresses (127.0.0.x).

mod common;

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use common::daemon::{Daemon, Opts};
use serde_json::{json, Value};

/// A client whose connections come from `ip` (any 127.0.0.x works on Linux loopback).
fn client_from(ip: &str) -> reqwest::blocking::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::blocking::Client::builder()
        .local_address(ip.parse::<IpAddr>().expect("ip"))
        .timeout(Duration::from_secs(30))
        .no_proxy()
        .build()
        .expect("client")
}

fn login_from(c: &reqwest::blocking::Client, d: &Daemon, user: &str, pw: &str, headers: &[(&str, &str)]) -> (u16, Option<String>, Value) {
    let mut req = c.post(d.url("/api/auth/login")).json(&json!({ "username": user, "password": pw }));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let r = req.send().expect("login request");
    let status = r.status().as_u16();
    let retry = r.headers().get("retry-after").map(|v| v.to_str().unwrap_or("").to_string());
    (status, retry, r.json().unwrap_or(Value::Null))
}

#[test]
fn attacker_is_throttled_and_the_owner_still_signs_in() {
    let d = Daemon::start(Opts { auth: "  maxFailedLogins: 5\n  lockout: 2m\n".into(), ..Default::default() });
    d.create_user("admin", "admin-password", true);
    let attacker = client_from("127.0.0.1");
    let (mut unauthorized, mut throttled) = (0, 0);
    for i in 0..1000 {
        let (s, retry, v) = login_from(&attacker, &d, "admin", &format!("guess-{i:04}"), &[]);
        match s {
            401 => unauthorized += 1,
            429 => {
                throttled += 1;
                assert_eq!(v["error"]["code"], "too_many_attempts");
                let secs: u64 = retry.expect("Retry-After on 429").parse().expect("Retry-After seconds");
                assert!((1..=120).contains(&secs), "Retry-After {secs}");
            }
            other => panic!("attempt {i}: unexpected {other}: {v}"),
        }
    }
    println!("1000 wrong passwords from 127.0.0.1: {unauthorized} checked (401), {throttled} refused (429)");
    // Five free attempts, then one more per doubling delay (1 s, 2 s, 4 s ...) at most.
    assert!(unauthorized >= 5 && unauthorized <= 12, "{unauthorized} passwords were checked");
    // The owner, from another address, gets in at the first try.
    let owner = client_from("127.0.0.2");
    let (s, _, v) = login_from(&owner, &d, "admin", "admin-password", &[]);
    assert_eq!(s, 200, "owner refused: {v}");
    // The attacker is still refused, even with the right password.
    let (s, _, _) = login_from(&attacker, &d, "admin", "admin-password", &[]);
    assert_eq!(s, 429);
}

#[test]
fn forwarded_addresses_are_believed_only_from_trusted_proxies() {
    let d = Daemon::start(Opts {
        server_extra: "  trustedProxies: [127.0.0.3]\n".into(),
        auth: "  maxFailedLogins: 3\n  lockout: 2m\n".into(),
        ..Default::default()
    });
    d.create_user("admin", "admin-password", true);
    let proxy = client_from("127.0.0.3");
    let spoofer = client_from("127.0.0.4");
    // A client talking to bedrud directly cannot pick its address with the header: changing
    // the header each time does not get it fresh attempts.
    let mut codes = Vec::new();
    for i in 0..6 {
        let fake = format!("198.51.100.{i}");
        codes.push(login_from(&spoofer, &d, "admin", "wrong-password", &[("x-forwarded-for", &fake), ("forwarded", &format!("for={fake}"))]).0);
    }
    assert_eq!(&codes[..3], &[401, 401, 401]);
    assert!(codes[3..].iter().all(|&c| c == 429), "spoofed headers escaped the limit: {codes:?}");
    // Through the proxy, each client is counted by the address the proxy saw (rightmost hop).
    for _ in 0..3 {
        let (s, _, _) = login_from(&proxy, &d, "admin", "wrong-password", &[("x-forwarded-for", "6.6.6.6, 192.0.2.10")]);
        assert_eq!(s, 401);
    }
    let (s, _, _) = login_from(&proxy, &d, "admin", "admin-password", &[("x-forwarded-for", "192.0.2.10")]);
    assert_eq!(s, 429, "192.0.2.10 behind the proxy is throttled");
    let (s, _, _) = login_from(&proxy, &d, "admin", "admin-password", &[("forwarded", "for=192.0.2.11")]);
    assert_eq!(s, 200, "another client behind the same proxy is not");
    // The proxy's own address was never throttled by what went through it.
    let (s, _, v) = login_from(&proxy, &d, "admin", "admin-password", &[]);
    assert_eq!(s, 200, "{v}");
}

#[test]
fn a_login_storm_waits_for_hash_slots_and_health_keeps_answering() {
    let d = Daemon::start(Opts { auth: "  maxConcurrentHashes: 2\n".into(), ..Default::default() });
    d.create_user("storm", "storm-password", false);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let health_url = d.url("/api/health");
    let s2 = stop.clone();
    let health = std::thread::spawn(move || {
        let c = common::daemon::http_client();
        let mut times = Vec::new();
        while !s2.load(std::sync::atomic::Ordering::Relaxed) {
            let t = Instant::now();
            let r = c.get(&health_url).timeout(Duration::from_secs(5)).send().expect("health during the storm");
            assert_eq!(r.status().as_u16(), 200);
            times.push(t.elapsed());
            std::thread::sleep(Duration::from_millis(20));
        }
        times
    });
    let url = d.url("/api/auth/login");
    let logins: Vec<_> = (0..200)
        .map(|_| {
            let url = url.clone();
            std::thread::spawn(move || {
                let c = common::daemon::http_client();
                let r = c.post(&url).json(&json!({"username": "storm", "password": "storm-password"})).send().expect("login");
                let s = r.status().as_u16();
                let retry = r.headers().get("retry-after").is_some();
                let v: Value = r.json().unwrap_or(Value::Null);
                (s, retry, v)
            })
        })
        .collect();
    let mut ok = 0;
    let mut busy = 0;
    for h in logins {
        let (s, retry, v) = h.join().expect("login thread");
        match s {
            200 => ok += 1,
            503 => {
                assert_eq!(v["error"]["code"], "busy");
                assert!(retry, "503 without Retry-After");
                busy += 1;
            }
            other => panic!("login answered {other}: {v}"),
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut times = health.join().expect("health thread");
    times.sort();
    let p99 = times[(times.len() * 99 / 100).min(times.len() - 1)];
    println!("200 concurrent logins, 2 hash slots: {ok} signed in, {busy} told to retry; /api/health {} answers, p99 {p99:?}", times.len());
    assert!(ok > 0, "no login got through");
    assert!(!times.is_empty());
}

/// Open descriptors of a process.
fn fd_count(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map(|d| d.count()).unwrap_or(0)
}

/// One timed `GET /api/health` and join by a normal client on a fresh connection.
fn normal_client_round(d: &Daemon, token: &str) -> Duration {
    let c = common::daemon::http_client();
    let t = Instant::now();
    let r = c.get(d.url("/api/health")).send().expect("health");
    assert_eq!(r.status().as_u16(), 200);
    let r = c.post(d.url("/api/room/join")).bearer_auth(token).json(&json!({"room": "steady"})).send().expect("join");
    assert_eq!(r.status().as_u16(), 200);
    t.elapsed()
}

#[test]
fn slow_and_idle_clients_do_not_starve_a_normal_one() {
    let mut d = Daemon::start(Opts { server_extra: "  maxConnectionsPerAddress: 200\n".into(), ..Default::default() });
    let token = d.admin();
    let (s, v) = d.post("/api/room/create", Some(&token), json!({"name": "steady"}));
    assert_eq!(s, 201, "{v}");
    normal_client_round(&d, &token);
    let pid = d.pid();
    std::thread::sleep(Duration::from_millis(300));
    let baseline = fd_count(pid);
    let addr: SocketAddr = format!("127.0.0.1:{}", d.port).parse().unwrap();
    let connect_from = |ip: String| -> TcpStream {
        let sock = socket2_connect(&ip, addr);
        sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        sock
    };
    // 1,000 slowloris connections from 127.0.0.10-19, 100 each: one header byte at a time.
    let request = b"GET /api/health HTTP/1.1\r\nHost: x\r\n\r\n";
    let mut slow: Vec<TcpStream> = (0..1000).map(|i| connect_from(format!("127.0.0.{}", 10 + i / 100))).collect();
    for s in &mut slow {
        s.write_all(&request[..1]).unwrap();
    }
    // 1,000 idle keep-alive connections from 127.0.0.20-29: one request each, then silence.
    let mut idle: Vec<TcpStream> = (0..1000).map(|i| connect_from(format!("127.0.0.{}", 20 + i / 100))).collect();
    for s in &mut idle {
        s.write_all(request).unwrap();
        let mut buf = [0u8; 512];
        let n = s.read(&mut buf).unwrap();
        assert!(buf[..n].starts_with(b"HTTP/1.1 200"), "{}", String::from_utf8_lossy(&buf[..n]));
    }
    // A third address over its cap is refused at once; its first 200 are served.
    let mut capped: Vec<TcpStream> = (0..230).map(|_| connect_from("127.0.0.30".into())).collect();
    let mut refused = 0;
    for s in &mut capped {
        s.set_read_timeout(Some(Duration::from_millis(300))).unwrap();
        let _ = s.write_all(request);
        let mut buf = [0u8; 512];
        match s.read(&mut buf) {
            Ok(0) | Err(_) => refused += 1,
            Ok(_) => {}
        }
    }
    assert_eq!(refused, 30, "server.maxConnectionsPerAddress: 200 of 230 served");
    drop(capped);
    // Keep the slow ones trickling (a byte every 5 s) while a normal client works.
    let mut worst = Duration::ZERO;
    let start = Instant::now();
    let mut sent = 1;
    while start.elapsed() < Duration::from_secs(11) {
        for _ in 0..5 {
            worst = worst.max(normal_client_round(&d, &token));
            std::thread::sleep(Duration::from_millis(200));
        }
        if start.elapsed().as_secs() >= 5 * sent as u64 && sent < request.len() {
            for s in &mut slow {
                let _ = s.write_all(&request[sent..sent + 1]);
            }
            sent += 1;
        }
    }
    println!("2,000 slow/idle connections open: worst health + join by a normal client {worst:?}; fds {} (baseline {baseline})", fd_count(pid));
    assert!(worst < Duration::from_secs(2), "normal client starved: {worst:?}");
    // server.headerTimeout (15 s) closes the trickling ones though they keep sending.
    let mut buf = [0u8; 64];
    std::thread::sleep(Duration::from_secs(5));
    let mut closed = 0;
    for s in &mut slow {
        let _ = s.write_all(b"x");
        if matches!(s.read(&mut buf), Ok(0) | Err(_)) {
            closed += 1;
        }
    }
    assert!(closed >= 990, "only {closed} of 1000 slowloris connections were closed by the header timeout");
    drop(slow);
    drop(idle);
    common::wait_for(Duration::from_secs(20), "descriptors back to the baseline", || (fd_count(pid) <= baseline + 5).then_some(()));
    assert_eq!(d.stop(), Some(0));
}

/// A TCP connection from a chosen loopback source address.
fn socket2_connect(ip: &str, to: SocketAddr) -> TcpStream {
    use socket2::{Domain, Socket, Type};
    let s = Socket::new(Domain::IPV4, Type::STREAM, None).expect("socket");
    let src: SocketAddr = format!("{ip}:0").parse().expect("source");
    s.bind(&src.into()).expect("bind source");
    s.connect(&to.into()).expect("connect");
    s.into()
}

#[test]
fn a_panicking_handler_answers_500_json_and_the_daemon_serves_on() {
    let d = Daemon::start(Opts { env: vec![("BEDRUD_TEST_PANIC_ROUTE".into(), "1".into())], ..Default::default() });
    for _ in 0..3 {
        let (s, v) = d.get("/api/test/panic", None);
        assert_eq!(s, 500);
        assert_eq!(v["error"]["code"], "internal", "{v}");
    }
    let (s, _) = d.get("/api/health", None);
    assert_eq!(s, 200);
    assert!(d.log_text().contains("a request handler panicked"));
}

// ---------------------------------------------------------------------------------------------
// A full disk

/// A tmpfs of `size` mounted for the test; unmounted (lazily) on drop.
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    fn mount(size: &str) -> SmallDisk {
        let dir = tempfile::tempdir().expect("tempdir");
        let st = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size},mode=0700"), "bedrud-test", &dir.path().display().to_string()])
            .status()
            .expect("run mount");
        assert!(st.success(), "mounting a tmpfs needs root (the tests run as root in CI)");
        SmallDisk { dir }
    }

    fn path(&self) -> &std::path::Path {
        self.dir.path()
    }

    /// Writes a file until the filesystem is full; returns its path.
    fn fill(&self) -> std::path::PathBuf {
        let p = self.path().join("filler");
        let mut f = std::fs::File::create(&p).expect("filler");
        let chunk = vec![0xa5u8; 64 * 1024];
        while f.write_all(&chunk).is_ok() {}
        // Whatever fits in the last partial page too.
        while f.write_all(&chunk[..512]).is_ok() {}
        let _ = f.sync_all();
        p
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg("-l").arg(self.dir.path()).status();
    }
}

/// Collects sd_notify `STATUS=` lines sent to a datagram socket.
fn notify_socket(dir: &std::path::Path) -> (std::path::PathBuf, std::os::unix::net::UnixDatagram) {
    let path = dir.join("notify.sock");
    let sock = std::os::unix::net::UnixDatagram::bind(&path).expect("notify socket");
    sock.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
    (path, sock)
}

fn wait_status(sock: &std::os::unix::net::UnixDatagram, limit: Duration, pred: impl Fn(&str) -> bool) -> String {
    let start = Instant::now();
    let mut buf = vec![0u8; 8192];
    let mut seen = Vec::new();
    while start.elapsed() < limit {
        if let Ok(n) = sock.recv(&mut buf) {
            let text = String::from_utf8_lossy(&buf[..n]).into_owned();
            if let Some(status) = text.lines().find_map(|l| l.strip_prefix("STATUS=")) {
                if pred(status) {
                    return status.to_string();
                }
                seen.push(status.to_string());
            }
        }
    }
    panic!("no matching STATUS= within {limit:?}; saw {seen:?}");
}

#[test]
fn a_full_disk_refuses_writes_keeps_reads_and_recovers_without_restart() {
    let disk = SmallDisk::mount("12m");
    let notify_dir = tempfile::tempdir().unwrap();
    let (notify_path, notify) = notify_socket(notify_dir.path());
    let mut d = Daemon::start(Opts {
        env: vec![("NOTIFY_SOCKET".into(), notify_path.display().to_string())],
        wait_ready: false,
        ..Default::default()
    });
    // The configured database path leads onto the small disk.
    d.kill9();
    let link = d.dir.path().join("bedrud.redb");
    let _ = std::fs::remove_file(&link);
    std::os::unix::fs::symlink(disk.path().join("bedrud.redb"), &link).unwrap();
    d.spawn();
    d.wait_ready();
    let admin = d.admin();
    d.create_user("member", "member-password", false);
    let member = d.login("member", "member-password");
    let mut acked = Vec::new();
    for i in 0..5 {
        let name = format!("before-{i}");
        assert_eq!(d.post("/api/room/create", Some(&admin), json!({"name": name, "settings": {"public": true}})).0, 201);
        acked.push(name);
    }
    let filler = disk.fill();
    // Keep writing until the disk says no: a clear 507, never a hang or a crash.
    let mut refused = None;
    for i in 0..2000 {
        let name = format!("during-{i}");
        let (s, v) = d.post("/api/room/create", Some(&admin), json!({"name": name}));
        match s {
            201 => acked.push(name),
            507 => {
                refused = Some(v);
                break;
            }
            other => panic!("room create on a full disk answered {other}: {v}"),
        }
    }
    let v = refused.expect("2000 room creations on a full 12 MiB disk all succeeded");
    assert_eq!(v["error"]["code"], "insufficient_storage", "{v}");
    println!("disk full after {} acknowledged rooms", acked.len());
    // Further writes are refused the same way, at once.
    let t = Instant::now();
    let (s, v) = d.post("/api/room/create", Some(&admin), json!({"name": "refused-again"}));
    assert_eq!(s, 507, "{v}");
    assert!(t.elapsed() < Duration::from_secs(5));
    // Reads, joins and signed-in sessions keep working; LiveKit stays up.
    for _ in 0..3 {
        let (s, v) = d.get("/api/room/before-1", Some(&member));
        assert_eq!(s, 200, "room read on a full disk: {v}");
        let (s, v) = d.post("/api/room/join", Some(&member), json!({"room": "before-2"}));
        assert_eq!(s, 200, "join on a full disk: {v}");
        let (s, v) = d.get("/api/room/list?limit=500", Some(&admin));
        assert_eq!(s, 200, "{v}");
    }
    // Readiness and STATUS= say that the store cannot write.
    let (s, v) = d.get("/api/ready", None);
    assert_eq!(s, 503, "{v}");
    assert_eq!(v["store"], "read-only", "{v}");
    assert_eq!(v["livekit"]["state"], "ready", "{v}");
    assert!(v["notReady"].to_string().contains("cannot write: disk full"), "{v}");
    let status = wait_status(&notify, Duration::from_secs(15), |s| s.contains("store cannot write: disk full"));
    assert!(status.contains("livekit"), "{status}");
    assert!(d.log_text().contains("disk is almost full") || d.log_text().contains("database writes fail"));
    // Space comes back: writes work again without a restart.
    std::fs::remove_file(&filler).unwrap();
    common::wait_for(Duration::from_secs(15), "ready again after space was freed", || (d.get("/api/ready", None).0 == 200).then_some(()));
    let (s, v) = d.post("/api/room/create", Some(&admin), json!({"name": "after-space"}));
    assert_eq!(s, 201, "{v}");
    acked.push("after-space".into());
    wait_status(&notify, Duration::from_secs(15), |s| !s.contains("cannot write"));
    // Nothing acknowledged was lost, and the file opens cleanly after a restart.
    assert_eq!(d.stop(), Some(0));
    d.spawn();
    d.wait_ready();
    let (s, v) = d.get("/api/admin/rooms", Some(&admin));
    assert_eq!(s, 200);
    let names: Vec<&str> = v["rooms"].as_array().unwrap().iter().filter_map(|r| r["name"].as_str()).collect();
    for n in &acked {
        assert!(names.contains(&n.as_str()), "acknowledged room {n} is missing after the restart");
    }
    assert!(!names.contains(&"refused-again"));
    assert_eq!(d.stop(), Some(0));
}

// ---------------------------------------------------------------------------------------------
// Backup, restore, old stores

#[test]
fn backup_under_load_restores_to_a_consistent_store_and_restore_refuses_a_running_daemon() {
    let mut d = Daemon::start(Opts::default());
    let admin = d.admin();
    for i in 0..20 {
        assert_eq!(d.post("/api/room/create", Some(&admin), json!({"name": format!("base-{i:02}")})).0, 201);
    }
    // Every kind of row: an invite link, a guest who came through it and waits in the lobby
    // (attendee), and a banned guest (ban, invite withdrawn by it).
    d.api("PUT", "/api/room/base-00/settings", Some(&admin), Some(json!({"lobby": true})));
    let (s, inv) = d.post("/api/room/base-00/invites", Some(&admin), json!({"maxUses": 5}));
    assert_eq!(s, 201, "{inv}");
    let (s, wait) = d.post("/api/room/join", None, json!({"room": "base-00", "name": "Wendy", "invite": inv["token"]}));
    assert_eq!(s, 202, "{wait}");
    let (s, _) = d.post("/api/room/base-01/invites", Some(&admin), json!({}));
    assert_eq!(s, 201);
    let (_, inv1) = d.get("/api/room/base-01/invites", Some(&admin));
    let (s, ban) = d.api("POST", "/api/room/base-01/bans/someone", Some(&admin), None);
    assert_eq!(s, 201, "{ban}");
    // Writers keep going while the backup is taken.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let (url, token, stop) = (d.url("/api/room/create"), admin.clone(), stop.clone());
            std::thread::spawn(move || {
                let c = common::daemon::http_client();
                let mut acked = Vec::new();
                let mut i = 0;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let name = format!("load-{w}-{i:04}");
                    if c.post(&url).bearer_auth(&token).json(&json!({"name": name})).send().map(|r| r.status().as_u16()).ok() == Some(201) {
                        acked.push(name);
                    }
                    i += 1;
                }
                acked
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    let backup = d.dir.path().join("copy.redb");
    let (code, out, err) = d.cli(&["backup", &backup.display().to_string()], None);
    assert_eq!(code, 0, "backup failed: {out} {err}");
    assert!(out.contains("backup written"), "{out}");
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let acked: Vec<String> = writers.into_iter().flat_map(|w| w.join().unwrap()).collect();
    assert!(acked.len() > 20, "the load made only {} rooms", acked.len());
    // A second backup to the same name is refused.
    let (code, _, err) = d.cli(&["backup", &backup.display().to_string()], None);
    assert_ne!(code, 0);
    assert!(err.contains("already exists"), "{err}");
    // Restore refuses while the daemon runs, and changes nothing.
    let (code, _, err) = d.cli(&["restore", &backup.display().to_string()], None);
    assert_ne!(code, 0);
    assert!(err.contains("daemon running") || err.contains("in use"), "{err}");
    assert_eq!(d.get("/api/room/base-00", Some(&admin)).0, 200);
    // Stopped: restore, start, and the store is the backup's snapshot: every base room, a
    // prefix of each writer's rooms (a snapshot cannot hold a later room without an earlier one).
    assert_eq!(d.stop(), Some(0));
    let (code, out, err) = d.cli(&["restore", &backup.display().to_string()], None);
    assert_eq!(code, 0, "restore failed: {out} {err}");
    d.spawn();
    d.wait_ready();
    let admin = d.login("admin", "admin-password");
    let (_, v) = d.get("/api/admin/rooms", Some(&admin));
    let names: std::collections::BTreeSet<String> = v["rooms"].as_array().unwrap().iter().map(|r| r["name"].as_str().unwrap().to_string()).collect();
    for i in 0..20 {
        assert!(names.contains(&format!("base-{i:02}")));
    }
    // The meeting rows came back: the invite (its secret still lets people in), the one
    // waiting in the lobby, the ban.
    let (_, list) = d.get("/api/room/base-00/invites", Some(&admin));
    assert_eq!((list["invites"][0]["id"].clone(), list["invites"][0]["uses"].as_u64()), (inv["invite"]["id"].clone(), Some(1)), "{list}");
    assert_eq!(d.post("/api/invite/check", None, json!({"token": inv["token"]})).0, 200);
    let (_, lobby) = d.get("/api/room/base-00/lobby", Some(&admin));
    assert_eq!(lobby["waiting"][0]["name"], "Wendy", "{lobby}");
    let (_, bans) = d.get("/api/room/base-01/bans", Some(&admin));
    assert_eq!(bans["bans"][0]["identity"], "someone", "{bans}");
    let (_, list1) = d.get("/api/room/base-01/invites", Some(&admin));
    assert_eq!(list1["invites"][0]["id"], inv1["invites"][0]["id"], "{list1}");
    let restored_load = names.iter().filter(|n| n.starts_with("load-")).count();
    assert!(restored_load > 0 && restored_load < acked.len(), "backup holds {restored_load} of {} load rooms", acked.len());
    for w in 0..4 {
        let mine: Vec<&String> = acked.iter().filter(|n| n.starts_with(&format!("load-{w}-"))).collect();
        let present: Vec<bool> = mine.iter().map(|n| names.contains(*n)).collect();
        let first_missing = present.iter().position(|p| !p).unwrap_or(present.len());
        assert!(present[first_missing..].iter().all(|p| !p), "writer {w}: the backup is not one snapshot");
    }
    // The old file was kept aside.
    assert!(d.dir.path().join("bedrud.redb.before-restore").exists());
    assert_eq!(d.stop(), Some(0));
}

#[test]
fn a_store_from_bedrud_0_1_0_opens_migrated_and_a_newer_one_is_refused() {
    let mut d = Daemon::start(Opts { wait_ready: false, ..Default::default() });
    d.kill9();
    let db = d.dir.path().join("bedrud.redb");
    let _ = std::fs::remove_file(&db);
    std::fs::copy(common::repo_root().join("tests/data/store-v1.redb"), &db).expect("copy the committed store");
    d.spawn();
    d.wait_ready();
    let admin = d.login("admin", "fixture-admin-pw");
    assert!(d.log_text().contains("store migrated from schema 1 to 2"), "{}", d.log_text());
    let (s, v) = d.get("/api/room/weekly-sync", Some(&admin));
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["room"]["settings"]["maxParticipants"], 8);
    assert_eq!(v["room"]["settings"]["allowScreenShare"], false);
    let (_, v) = d.get("/api/admin/rooms/weekly-sync/participants", Some(&admin));
    let hist = v["history"].as_array().unwrap();
    assert_eq!(hist.len(), 2, "{v}");
    assert!(hist.iter().all(|h| h["room"] == "weekly-sync" && h["leaveReason"] == "left"));
    let (_, v) = d.get("/api/admin/rooms/board-room/participants", Some(&admin));
    assert_eq!(v["history"].as_array().unwrap().len(), 1, "{v}");
    // The room listing comes from indexes built by the migration: alice sees the public room
    // only, bob the one he moderates, the admin both.
    let alice = d.login("alice", "fixture-alice-pw");
    let names = |token: &str| -> Vec<String> {
        let (_, v) = d.get("/api/room/list", Some(token));
        v["rooms"].as_array().unwrap().iter().map(|r| r["name"].as_str().unwrap().to_string()).collect()
    };
    assert_eq!(names(&alice), ["weekly-sync"]);
    assert_eq!(names(&admin), ["board-room", "weekly-sync"]);
    // The moderator survived: bob manages weekly-sync.
    let bob = d.login("bob", "fixture-bob-pw");
    assert_eq!(names(&bob), ["weekly-sync"]);
    assert_eq!(d.api("PUT", "/api/room/weekly-sync/settings", Some(&bob), Some(json!({"maxParticipants": 9}))).0, 200);
    assert_eq!(d.stop(), Some(0));
    // A file marked as written by a newer bedrud is refused with a message saying so.
    {
        let rdb = redb::Database::create(&db).unwrap();
        let t = rdb.begin_write().unwrap();
        t.open_table(redb::TableDefinition::<&str, &[u8]>::new("meta")).unwrap().insert("schema_version", "99".as_bytes()).unwrap();
        t.commit().unwrap();
    }
    d.spawn();
    let code = d.wait_exit(Duration::from_secs(20));
    assert_eq!(code, Some(1));
    assert!(d.log_text().contains("newer than this bedrud supports"), "{}", d.log_text());
    let (code, _, err) = d.cli(&["restore", &db.display().to_string()], None);
    assert_ne!(code, 0);
    assert!(err.contains("newer than this bedrud supports"), "{err}");
}

// ---------------------------------------------------------------------------------------------
// kill -9 under a mixed write load

/// Acknowledged writes of one round.
#[derive(Default)]
struct Acked {
    users: Vec<String>,
    rooms: Vec<String>,
    /// room → highest maxParticipants answered 200.
    settings: std::collections::HashMap<String, u64>,
    moderators: Vec<(String, String)>,
    /// (room, identity) of participant_joined events answered 200.
    joins: Vec<(String, String)>,
}

#[test]
fn twenty_kill9_rounds_under_mixed_writes_lose_nothing_acknowledged() {
    let mut d = Daemon::start(Opts { auth: "  registration: true\n  maxConcurrentHashes: 2\n".into(), ..Default::default() });
    d.create_user("admin", "admin-password", true);
    let admin = d.login("admin", "admin-password");
    assert_eq!(d.post("/api/room/create", Some(&admin), json!({"name": "hooks"})).0, 201);
    let acked = std::sync::Arc::new(std::sync::Mutex::new(Acked::default()));
    let mut open_times = Vec::new();
    let mut store_open_ms = Vec::new();
    let mut seed: u64 = 0x9e3779b97f4a7c15;
    for round in 0..20 {
        let admin = d.login("admin", "admin-password");
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let mut threads = Vec::new();
        // Registrations.
        {
            let (url, stop, acked) = (d.url("/api/auth/register"), stop.clone(), acked.clone());
            threads.push(std::thread::spawn(move || {
                let c = common::daemon::http_client();
                let mut i = 0;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let name = format!("user-{round}-{i}");
                    if let Ok(r) = c.post(&url).json(&json!({"username": name, "password": "password-123"})).send() {
                        if r.status().as_u16() == 201 {
                            acked.lock().unwrap().users.push(name);
                        }
                    }
                    i += 1;
                }
            }));
        }
        // Rooms, their settings and moderators.
        for w in 0..2 {
            let (base, token, stop, acked) = (d.url(""), admin.clone(), stop.clone(), acked.clone());
            threads.push(std::thread::spawn(move || {
                let c = common::daemon::http_client();
                let mut i = 0u64;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let room = format!("room-{round}-{w}-{i}");
                    let ok = |r: reqwest::Result<reqwest::blocking::Response>, code: u16| r.map(|r| r.status().as_u16() == code).unwrap_or(false);
                    if ok(c.post(format!("{base}/api/room/create")).bearer_auth(&token).json(&json!({"name": room})).send(), 201) {
                        acked.lock().unwrap().rooms.push(room.clone());
                        for m in 1..=3u64 {
                            if ok(c.put(format!("{base}/api/room/{room}/settings")).bearer_auth(&token).json(&json!({"maxParticipants": m})).send(), 200) {
                                acked.lock().unwrap().settings.insert(room.clone(), m);
                            }
                        }
                        if ok(c.post(format!("{base}/api/room/{room}/moderators/admin")).bearer_auth(&token).send(), 201) {
                            acked.lock().unwrap().moderators.push((room.clone(), "admin".into()));
                        }
                    }
                    i += 1;
                }
            }));
        }
        // Webhooks as LiveKit sends them.
        {
            let (url, stop, acked) = (d.url("/api/livekit/webhook"), stop.clone(), acked.clone());
            threads.push(std::thread::spawn(move || {
                let c = common::daemon::http_client();
                let mut i = 0;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) && i < 90 {
                    let ident = format!("p-{round}-{i}");
                    let body = common::daemon::participant_event(&format!("EV_{round}_{i}"), "participant_joined", "hooks", &ident, &format!("PA_{round}_{i}"));
                    let auth = common::daemon::webhook_auth(&body, common::daemon::API_KEY, common::daemon::API_SECRET, 60);
                    let r = c.post(&url).header("authorization", auth).header("content-type", "application/webhook+json").body(body).send();
                    if r.map(|r| r.status().as_u16() == 200).unwrap_or(false) {
                        acked.lock().unwrap().joins.push(("hooks".into(), ident));
                    }
                    i += 1;
                    std::thread::sleep(Duration::from_millis(5));
                }
            }));
        }
        // Kill at a pseudo-random moment 300-1200 ms into the load.
        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        std::thread::sleep(Duration::from_millis(300 + (seed >> 33) % 900));
        d.kill9();
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        for t in threads {
            t.join().unwrap();
        }
        let t = Instant::now();
        d.spawn();
        d.wait_ready();
        open_times.push(t.elapsed());
        let log = d.log_text();
        // The text log may colour its fields: take the digits after the name.
        let open_ms: String = log
            .lines()
            .rev()
            .find(|l| l.contains("database open"))
            .and_then(|l| l.split("open_ms").nth(1))
            .map(|v| v.chars().skip_while(|c| !c.is_ascii_digit()).take_while(|c| c.is_ascii_digit()).collect())
            .unwrap_or_default();
        store_open_ms.push(open_ms);
        verify_acked(&d, &acked.lock().unwrap(), round);
    }
    let mut sorted = open_times.clone();
    sorted.sort();
    println!("20 kill -9 rounds: restart to ready min {:?}, median {:?}, max {:?}; store open (ms) after each kill: {}", sorted[0], sorted[10], sorted[19], store_open_ms.join(" "));
    let a = acked.lock().unwrap();
    println!("acknowledged and found: {} users, {} rooms, {} settings, {} moderators, {} webhook joins", a.users.len(), a.rooms.len(), a.settings.len(), a.moderators.len(), a.joins.len());
    assert!(!a.rooms.is_empty() && !a.joins.is_empty() && !a.users.is_empty());
    assert_eq!(d.stop(), Some(0));
}

fn verify_acked(d: &Daemon, a: &Acked, round: usize) {
    let admin = d.login("admin", "admin-password");
    let (_, v) = d.get("/api/admin/users", Some(&admin));
    let users: std::collections::HashSet<&str> = v["users"].as_array().unwrap().iter().filter_map(|u| u["username"].as_str()).collect();
    for u in &a.users {
        assert!(users.contains(u.as_str()), "round {round}: registered user {u} lost");
    }
    let (_, v) = d.get("/api/admin/rooms", Some(&admin));
    let rooms: std::collections::HashMap<&str, &Value> = v["rooms"].as_array().unwrap().iter().map(|r| (r["name"].as_str().unwrap(), r)).collect();
    for r in &a.rooms {
        assert!(rooms.contains_key(r.as_str()), "round {round}: room {r} lost");
    }
    for (r, m) in &a.settings {
        let got = rooms[r.as_str()]["settings"]["maxParticipants"].as_u64().unwrap();
        assert!(got >= *m, "round {round}: room {r} has maxParticipants {got}, {m} was acknowledged");
    }
    for (r, _) in &a.moderators {
        let (_, v) = d.get(&format!("/api/room/{r}"), Some(&admin));
        assert_eq!(v["room"]["moderators"].as_array().map(|m| m.len()), Some(1), "round {round}: moderator of {r} lost: {v}");
    }
    let (_, v) = d.get("/api/admin/rooms/hooks/participants", Some(&admin));
    let mut seen: std::collections::HashSet<String> = v["participants"].as_array().unwrap().iter().filter_map(|p| p["identity"].as_str().map(String::from)).collect();
    seen.extend(v["history"].as_array().unwrap().iter().filter_map(|p| p["identity"].as_str().map(String::from)));
    for (_, ident) in a.joins.iter().filter(|(_, i)| i.starts_with(&format!("p-{round}-"))) {
        assert!(seen.contains(ident), "round {round}: webhook join of {ident} lost");
    }
}

// ---------------------------------------------------------------------------------------------
// Metrics

/// Parses a Prometheus text exposition with the `prometheus_client` Python package's parser;
/// returns (name, labels, value) of every sample.
fn parse_exposition(text: &str) -> Vec<(String, std::collections::BTreeMap<String, String>, f64)> {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("scrape.txt");
    std::fs::write(&file, text).unwrap();
    let script = "import json, sys\nfrom prometheus_client.parser import text_string_to_metric_families\n\
                  out = []\n\
                  for fam in text_string_to_metric_families(open(sys.argv[1]).read()):\n\
                  \x20   for s in fam.samples:\n\
                  \x20       out.append([s.name, s.labels, s.value])\n\
                  print(json.dumps(out))\n";
    let out = std::process::Command::new(common::python()).arg("-c").arg(script).arg(&file).output().expect("run python");
    assert!(out.status.success(), "prometheus_client could not parse the scrape: {}\n{text}", String::from_utf8_lossy(&out.stderr));
    let v: Vec<(String, std::collections::BTreeMap<String, String>, f64)> = serde_json::from_slice(&out.stdout).expect("parser output");
    v
}

fn sample(samples: &[(String, std::collections::BTreeMap<String, String>, f64)], name: &str, labels: &[(&str, &str)]) -> f64 {
    samples
        .iter()
        .find(|(n, l, _)| n == name && labels.iter().all(|(k, v)| l.get(*k).map(String::as_str) == Some(*v)))
        .map(|s| s.2)
        .unwrap_or_else(|| panic!("no sample {name} {labels:?}"))
}

#[test]
fn metrics_count_what_was_driven_and_parse_with_prometheus_client() {
    let mport = common::free_port();
    let d = Daemon::start(Opts {
        server_extra: format!("  metricsAddress: 127.0.0.1:{mport}\n"),
        auth: "  maxFailedLogins: 2\n".into(),
        ..Default::default()
    });
    let admin = d.admin();
    assert_eq!(d.post("/api/room/create", Some(&admin), json!({"name": "metered"})).0, 201);
    for _ in 0..3 {
        assert_eq!(d.post("/api/room/join", Some(&admin), json!({"room": "metered"})).0, 200);
    }
    assert_eq!(d.post("/api/room/join", Some(&admin), json!({"room": "no-such-room"})).0, 404);
    // Two wrong passwords, then the throttle.
    for want in [401, 401, 429, 429] {
        assert_eq!(d.post("/api/auth/login", None, json!({"username": "admin", "password": "wrong-password"})).0, want);
    }
    // Webhooks: applied, a duplicate, a forged one.
    let body = common::daemon::participant_event("EV_metrics_1", "participant_joined", "metered", "someone", "PA_m1");
    let auth = common::daemon::webhook_auth(&body, common::daemon::API_KEY, common::daemon::API_SECRET, 60);
    let c = common::daemon::http_client();
    for _ in 0..2 {
        let r = c.post(d.url("/api/livekit/webhook")).header("authorization", &auth).header("content-type", "application/webhook+json").body(body.clone()).send().unwrap();
        assert_eq!(r.status().as_u16(), 200);
    }
    let forged = common::daemon::webhook_auth(&body, common::daemon::API_KEY, "not-the-secret-0123456789abcdefghijkl", 60);
    let r = c.post(d.url("/api/livekit/webhook")).header("authorization", forged).header("content-type", "application/webhook+json").body(body).send().unwrap();
    assert_eq!(r.status().as_u16(), 401);
    // One connection held open while scraping.
    let _held = TcpStream::connect(("127.0.0.1", d.port)).unwrap();
    std::thread::sleep(Duration::from_millis(100));

    let text = c.get(format!("http://127.0.0.1:{mport}/metrics")).send().unwrap().text().unwrap();
    let s = parse_exposition(&text);
    assert_eq!(sample(&s, "bedrud_http_requests_total", &[("route", "/api/room/join"), ("status", "200"), ("method", "POST")]), 3.0);
    assert_eq!(sample(&s, "bedrud_http_requests_total", &[("route", "/api/room/join"), ("status", "404")]), 1.0);
    assert_eq!(sample(&s, "bedrud_joins_total", &[("result", "ok")]), 3.0);
    assert_eq!(sample(&s, "bedrud_joins_total", &[("result", "refused")]), 1.0);
    assert_eq!(sample(&s, "bedrud_http_request_duration_seconds_count", &[("route", "/api/room/join")]), 4.0);
    assert_eq!(sample(&s, "bedrud_http_request_duration_seconds_bucket", &[("route", "/api/room/join"), ("le", "+Inf")]), 4.0);
    assert_eq!(sample(&s, "bedrud_login_throttled_total", &[]), 2.0);
    assert_eq!(sample(&s, "bedrud_webhook_events_total", &[("outcome", "applied")]), 1.0);
    assert_eq!(sample(&s, "bedrud_webhook_events_total", &[("outcome", "duplicate")]), 1.0);
    assert_eq!(sample(&s, "bedrud_webhook_events_total", &[("outcome", "rejected")]), 1.0);
    assert_eq!(sample(&s, "bedrud_livekit_ready", &[]), 1.0);
    assert_eq!(sample(&s, "bedrud_livekit_state", &[("state", "ready")]), 1.0);
    assert_eq!(sample(&s, "bedrud_livekit_restarts_total", &[]), 0.0);
    // Session writes, the room, the webhook: at least three commits, none failed.
    assert!(sample(&s, "bedrud_store_commit_duration_seconds_count", &[]) >= 3.0);
    assert_eq!(sample(&s, "bedrud_store_commit_failures_total", &[]), 0.0);
    assert_eq!(sample(&s, "bedrud_store_writable", &[]), 1.0);
    assert!(sample(&s, "bedrud_connections_open", &[]) >= 1.0);
    // Raw paths never become labels.
    assert!(!text.contains("no-such-room"));
    // The same exposition for an admin on the API; others are refused.
    let (code, _) = d.get("/api/admin/metrics", None);
    assert_eq!(code, 401);
    let r = c.get(d.url("/api/admin/metrics")).bearer_auth(&admin).send().unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert!(r.text().unwrap().contains("bedrud_joins_total{result=\"ok\"} 3"));
}

// ---------------------------------------------------------------------------------------------
// Fuzzing: the committed corpus and every input that once failed, replayed

#[test]
fn fuzz_corpus_and_regressions_replay_without_failures() {
    let repo = common::repo_root();
    let targets: [(&str, fn(&[u8])); 4] = [
        ("config", bedrud::fuzzing::config),
        ("webhook", bedrud::fuzzing::webhook),
        ("json_bodies", bedrud::fuzzing::json_body),
        ("livekit_version", bedrud::fuzzing::livekit_version),
    ];
    for (name, run) in targets {
        let inputs = bedrud::fuzzing::saved_inputs(&repo, name);
        assert!(!inputs.is_empty(), "fuzz/corpus/{name} is empty: run `make fuzz` and commit the corpus");
        for input in &inputs {
            let data = std::fs::read(input).unwrap();
            run(&data);
        }
        println!("fuzz target {name}: {} saved inputs replayed", inputs.len());
    }
}
