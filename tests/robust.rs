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
