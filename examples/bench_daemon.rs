//! Daemon-side measurements for `scripts/bench`.
//!
//!   bench_daemon launch --bin BEDRUD --config FILE --log FILE
//!       Starts `BEDRUD run --config FILE` with NOTIFY_SOCKET pointing at a datagram socket of
//!       its own and prints `{"pid":N,"ready_ms":X}` once READY=1 arrives (X counted from the
//!       spawn). It then stays the daemon's parent and notification sink until the daemon
//!       exits, and exits with it.
//!   bench_daemon heal --url http://127.0.0.1:PORT --token ADMIN_TOKEN
//!       SIGKILLs the livekit-server child named by /api/admin/overview and prints how long
//!       until /api/ready answers 200 again with a new child.
//!   bench_daemon ports N
//!       Prints N distinct loopback ports that were free (TCP and UDP) a moment ago.

use std::os::unix::net::UnixDatagram;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

fn die(msg: &str) -> ! {
    eprintln!("bench_daemon: {msg}");
    std::process::exit(2)
}

fn flag(args: &[String], name: &str) -> String {
    args.windows(2)
        .find(|w| w[0] == name)
        .map(|w| w[1].clone())
        .unwrap_or_else(|| die(&format!("{name} is required")))
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("launch") => launch(&flag(&args, "--bin"), &flag(&args, "--config"), &flag(&args, "--log")),
        Some("heal") => heal(&flag(&args, "--url"), &flag(&args, "--token")),
        Some("ports") => ports(args.get(1).and_then(|n| n.parse().ok()).unwrap_or(1)),
        _ => die("usage: bench_daemon launch|heal ..."),
    }
}

fn launch(bin: &str, config: &str, log: &str) {
    let dir = tempfile::tempdir().unwrap_or_else(|e| die(&format!("tempdir: {e}")));
    let sock_path = dir.path().join("notify.sock");
    let sock = UnixDatagram::bind(&sock_path).unwrap_or_else(|e| die(&format!("bind {}: {e}", sock_path.display())));
    sock.set_read_timeout(Some(Duration::from_millis(100))).unwrap_or_else(|e| die(&e.to_string()));
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .unwrap_or_else(|e| die(&format!("{log}: {e}")));
    let mut cmd = Command::new(bin);
    cmd.arg("run").arg("--config").arg(config);
    cmd.env("NOTIFY_SOCKET", &sock_path).env_remove("JOURNAL_STREAM").env_remove("BEDRUD_CONFIG");
    cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(log);
    let spawned = Instant::now();
    let mut child = cmd.spawn().unwrap_or_else(|e| die(&format!("cannot start {bin}: {e}")));
    let mut buf = vec![0u8; 4096];
    let mut ready = false;
    loop {
        match sock.recv(&mut buf) {
            Ok(n) => {
                let msg = String::from_utf8_lossy(&buf[..n]);
                if !ready && msg.lines().any(|l| l == "READY=1") {
                    ready = true;
                    let ms = spawned.elapsed().as_secs_f64() * 1000.0;
                    println!("{}", json!({ "pid": child.id(), "ready_ms": (ms * 10.0).round() / 10.0 }));
                }
            }
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
            Err(e) => die(&format!("recv: {e}")),
        }
        if let Ok(Some(st)) = child.try_wait() {
            if !ready {
                die(&format!("bedrud exited before READY=1 ({st}); see its log"));
            }
            std::process::exit(st.code().unwrap_or(1));
        }
        if !ready && spawned.elapsed() > Duration::from_secs(90) {
            let _ = child.kill();
            let _ = child.wait();
            die("no READY=1 within 90 s");
        }
    }
}

fn heal(url: &str, token: &str) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = reqwest::blocking::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap_or_else(|e| die(&e.to_string()));
    let overview = || -> Value {
        http.get(format!("{url}/api/admin/overview"))
            .bearer_auth(token)
            .send()
            .and_then(|r| r.json())
            .unwrap_or(Value::Null)
    };
    let old = overview()["livekit"]["pid"].as_u64().unwrap_or(0);
    if old == 0 {
        die("the overview names no livekit-server pid");
    }
    let start = Instant::now();
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(old as i32), nix::sys::signal::Signal::SIGKILL)
        .unwrap_or_else(|e| die(&format!("kill {old}: {e}")));
    let mut detect_ms = None;
    loop {
        let code = http.get(format!("{url}/api/ready")).send().map(|r| r.status().as_u16()).unwrap_or(0);
        if code != 200 && detect_ms.is_none() {
            detect_ms = Some(start.elapsed().as_secs_f64() * 1000.0);
        }
        if code == 200 && detect_ms.is_some() {
            let new = overview()["livekit"]["pid"].as_u64().unwrap_or(0);
            if new != 0 && new != old {
                let ms = start.elapsed().as_secs_f64() * 1000.0;
                println!(
                    "{}",
                    json!({ "heal_ms": ms.round(), "detect_ms": detect_ms.map(f64::round), "old_pid": old, "new_pid": new })
                );
                return;
            }
        }
        if start.elapsed() > Duration::from_secs(60) {
            die("/api/ready did not come back within 60 s");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn ports(n: usize) {
    // Listeners stay open until all are picked, so the N ports differ.
    let mut held = Vec::new();
    let mut out = Vec::new();
    for _ in 0..n * 50 {
        if out.len() == n {
            break;
        }
        let Ok(l) = std::net::TcpListener::bind("127.0.0.1:0") else { continue };
        let Ok(port) = l.local_addr().map(|a| a.port()) else { continue };
        if port < 60000 && std::net::UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            out.push(port.to_string());
        }
        held.push(l);
    }
    if out.len() < n {
        die("not enough free ports on 127.0.0.1");
    }
    println!("{}", out.join(" "));
}
