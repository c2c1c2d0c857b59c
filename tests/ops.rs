//! The operator's side: `bedrud doctor` (every warning and failure induced for real and its line
//! asserted), the first-run setup link, readable logs, and automatic HTTPS from a real ACME
//! server (Pebble with its DNS test server, on loopback) with TURN/TLS reusing the certificate.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::daemon::{eventually, Daemon, Opts, API_KEY, API_SECRET};
use common::external::External;
use common::{free_port, pebble_binary, tls, wait_for};
use nix::sys::signal::Signal;
use serde_json::{json, Value};

const SECS: fn(u64) -> Duration = Duration::from_secs;

/// `bedrud doctor --json` for `config`: exit code and the report.
fn doctor(config: &Path) -> (i32, Value) {
    doctor_as(&[], config, &[])
}

/// `bedrud doctor --json` for `config` with `env` set: exit code and the report.
fn doctor_with(config: &Path, env: &[(&str, &str)]) -> (i32, Value) {
    doctor_as(&[], config, env)
}

/// `bedrud doctor --json` for `config`, started through `wrapper` (`faketime -f +3m`,
/// `unshare --net --`, ...; empty: directly) with `env` added and the variables that would
/// leak from the test's own environment removed (`NOTIFY_SOCKET`, `BEDRUD_CONFIG`, the
/// recording helpers' search variables `BEDRUD_EGRESS_BINARY`, `BEDRUD_REDIS_BINARY`).
fn doctor_as(wrapper: &[&str], config: &Path, env: &[(&str, &str)]) -> (i32, Value) {
    let mut cmd = match wrapper.split_first() {
        Some((w, args)) => {
            let mut c = Command::new(w);
            c.args(args).arg(common::daemon::BIN);
            c
        }
        None => Command::new(common::daemon::BIN),
    };
    cmd.args(["doctor", "--json", "--config"])
        .arg(config)
        .env_remove("NOTIFY_SOCKET")
        .env_remove("BEDRUD_CONFIG")
        .env_remove("BEDRUD_EGRESS_BINARY")
        .env_remove("BEDRUD_REDIS_BINARY")
        .envs(env.iter().copied())
        .stdin(Stdio::null());
    let o = cmd.output().unwrap_or_else(|e| panic!("{wrapper:?} must be installed: {e}"));
    let out = String::from_utf8_lossy(&o.stdout);
    let v: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("doctor printed no JSON ({e}):\n{out}\n{}", String::from_utf8_lossy(&o.stderr)));
    (o.status.code().unwrap_or(-1), v)
}

/// The findings of `check`.
fn lines<'a>(report: &'a Value, check: &str) -> Vec<&'a Value> {
    report["checks"].as_array().map(|a| a.iter().filter(|c| c["check"] == check).collect()).unwrap_or_default()
}

/// The one finding of `check` with `status` whose text contains `needle`; panics with the report.
fn finding<'a>(report: &'a Value, check: &str, status: &str, needle: &str) -> &'a Value {
    lines(report, check)
        .into_iter()
        .find(|c| c["status"] == status && c["found"].as_str().unwrap_or("").contains(needle))
        .unwrap_or_else(|| panic!("no `{status} {check}` line containing {needle:?} in:\n{}", serde_json::to_string_pretty(report).unwrap()))
}

// ---------------------------------------------------------------------------------------------
// doctor

#[test]
fn doctor_through_the_running_daemon_and_the_admin_api() {
    let d = Daemon::start(Opts::default());
    let t0 = Instant::now();
    let (code, r) = doctor(&d.config);
    eprintln!("figure: doctor through the control socket took {} ms", t0.elapsed().as_millis());
    assert_eq!(code, 0, "{r:#}");
    assert_eq!(r["throughDaemon"], true, "{r:#}");
    assert_eq!(r["summary"]["fail"], 0, "{r:#}");
    // Ports held by the daemon's own child are fine, and say so.
    finding(&r, "ports", "ok", &format!("TCP {} held by bedrud's livekit-server", d.lk_port));
    finding(&r, "ports", "ok", &format!("TCP {} held by bedrud (pid {})", d.port, d.pid()));
    finding(&r, "livekit-binary", "ok", "livekit-server 1.13.5");
    finding(&r, "livekit-api", "ok", "answers OK");
    finding(&r, "clock", "ok", "agree");
    finding(&r, "livekit-url", "ok", "answers the WebSocket handshake");
    // The webhook round trip went through LiveKit for real.
    finding(&r, "webhook", "ok", "room_started for the probe room reached bedrud");
    // The test config announces 127.0.0.1 to clients: a warning that names the seed row.
    let w = finding(&r, "node-ip", "warn", "127.0.0.1 (from livekit.nodeIP) is loopback");
    assert_eq!(w["seed"], "Media & TURN: Participants join but no audio/video");
    // The text form: one line per finding, fix and row below warnings.
    let (code, text, _) = d.cli(&["doctor"], None);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("checked by the running daemon"), "{text}");
    assert!(text.lines().any(|l| l.starts_with("ok    webhook")), "{text}");
    assert!(text.lines().any(|l| l.trim_start().starts_with("fix: set livekit.nodeIP")), "{text}");
    assert!(text.trim_end().ends_with("0 fail, 0 skipped"), "{text}");

    // The same report for an administrator over HTTP; nobody else gets it.
    let admin = d.admin();
    let (s, v) = d.get("/api/admin/doctor", Some(&admin));
    assert_eq!(s, 200, "{v}");
    finding(&v, "webhook", "ok", "reached bedrud");
    d.create_user("someone", "someone-password", false);
    let user = d.login("someone", "someone-password");
    assert_eq!(d.get("/api/admin/doctor", Some(&user)).0, 403);
    assert_eq!(d.get("/api/admin/doctor", None).0, 401);
}

/// A real process holding a port (a Python program; it prints `ready` once it does).
struct Holder(Child);

impl Holder {
    /// Listens on TCP `port` and never answers.
    fn tcp(port: u16) -> Holder {
        Self::python(&format!("import socket,time\ns=socket.socket()\ns.bind(('127.0.0.1',{port}))\ns.listen()\nprint('ready',flush=True)\ntime.sleep(120)"))
    }

    /// Binds UDP `port`.
    fn udp(port: u16) -> Holder {
        Self::python(&format!("import socket,time\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\ns.bind(('127.0.0.1',{port}))\nprint('ready',flush=True)\ntime.sleep(120)"))
    }

    /// An HTTP server on `port` answering every GET with `status` and `body`.
    fn http(port: u16, status: u16, body: &str) -> Holder {
        Self::python(&format!(
            "import http.server\nclass H(http.server.BaseHTTPRequestHandler):\n  def do_GET(self):\n    b={body:?}.encode()\n    self.send_response({status})\n    self.send_header('content-length',str(len(b)))\n    self.end_headers()\n    self.wfile.write(b)\n  def log_message(self,*a): pass\ns=http.server.HTTPServer(('127.0.0.1',{port}),H)\nprint('ready',flush=True)\ns.timeout=120\ns.serve_forever()"
        ))
    }

    fn python(code: &str) -> Holder {
        let mut c = Command::new("python3").args(["-c", code]).stdout(Stdio::piped()).spawn().expect("python3");
        let mut line = String::new();
        std::io::BufRead::read_line(&mut std::io::BufReader::new(c.stdout.as_mut().unwrap()), &mut line).unwrap();
        assert_eq!(line.trim(), "ready");
        Holder(c)
    }
}

impl Drop for Holder {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn doctor_names_the_process_holding_a_port() {
    let lk = free_port();
    let d = Daemon::configure(Opts { livekit_port: Some(lk), ..Default::default() });
    let holder = Holder::tcp(lk);
    let (code, r) = doctor(&d.config);
    assert_eq!(code, 1, "{r:#}");
    assert_eq!(r["throughDaemon"], false);
    let f = finding(&r, "ports", "fail", &format!("TCP {lk} (livekit.port) is in use by pid {} (", holder.0.id()));
    assert!(f["found"].as_str().unwrap().contains("python3 -c import socket,time s=socket.socket()"), "{f}");
    assert_eq!(f["seed"], "Connectivity: Port 7880 already in use");
    assert!(f["fix"].as_str().unwrap().contains("set livekit.port to a free port"), "{f}");
    // Without the daemon, LiveKit cannot be asked: said, not failed.
    finding(&r, "livekit-api", "skip", "bedrud is not running");
    finding(&r, "webhook", "skip", "needs the running daemon");
    // And the daemon indeed cannot start on it.
    drop(d);
    let mut d = Daemon::start(Opts { livekit_port: Some(lk), wait_ready: false, ..Default::default() });
    assert_eq!(d.wait_exit(SECS(60)), Some(1));
    assert!(d.log_text().contains(&format!("TCP port {lk} is already in use (livekit.port)")), "{}", d.log_text());
}

fn static_file(dir: &Path, body: &str) -> PathBuf {
    let p = dir.join("livekit.yaml");
    let (port, tcp, udp) = (free_port(), free_port(), free_port());
    std::fs::write(
        &p,
        format!("port: {port}\nrtc:\n  tcp_port: {tcp}\n  udp_port: {udp}\n  node_ip: 127.0.0.1\nkeys:\n  {API_KEY}: {API_SECRET}\nwebhook:\n  api_key: {API_KEY}\n  urls: [http://127.0.0.1:1/api/livekit/webhook]\n{body}"),
    )
    .unwrap();
    p
}

#[test]
fn doctor_reads_a_static_livekit_config_as_its_version_would() {
    let dir = tempfile::tempdir().unwrap();
    // The seed's `tls:` block, given to livekit-server 1.13.5.
    let file = static_file(dir.path(), "tls:\n  cert_file: /etc/x.pem\n");
    let opts = || Opts { livekit_extra: format!("  configPath: {}\n", file.display()), wait_ready: false, ..Default::default() };
    let d = Daemon::configure(opts());
    let (code, r) = doctor(&d.config);
    assert_eq!(code, 1, "{r:#}");
    let f = finding(&r, "livekit-config", "fail", "`tls` is not a livekit-server 1.13.5 key");
    assert!(f["found"].as_str().unwrap().contains(&format!("{}:11", file.display())), "{f}");
    assert_eq!(f["seed"], "Startup & Config Crashes: field tls not found on startup");
    assert!(f["fix"].as_str().unwrap().starts_with("remove the tls: block"), "{f}");
    // livekit-server itself agrees.
    let mut d = Daemon::start(opts());
    assert_eq!(d.wait_exit(SECS(60)), Some(1));
    assert!(d.log_text().contains("field tls not found in type config.Config"), "{}", d.log_text());

    // TURN/TLS without a domain: the seed's "TURN domain required", said before LiveKit says it.
    let file2 = static_file(dir.path(), "turn:\n  enabled: true\n  tls_port: 5349\n  udp_port: 3478\n");
    let d = Daemon::configure(Opts { livekit_extra: format!("  configPath: {}\n", file2.display()), wait_ready: false, ..Default::default() });
    let (code, r) = doctor(&d.config);
    assert_eq!(code, 1, "{r:#}");
    let f = finding(&r, "livekit-config", "fail", "without turn.domain");
    assert_eq!(f["seed"], "Startup & Config Crashes: LiveKit exits with TURN domain required on v1.12+");
    finding(&r, "livekit-config", "fail", "turn.cert_file is not set");
}

#[test]
fn doctor_checks_the_certificate() {
    let host = "meet.localhost";
    let dir = tempfile::tempdir().unwrap();
    let run = |cert: &Path, key: &Path| {
        let d = Daemon::configure(Opts {
            server_extra: format!("  host: {host}\n  tls:\n    certFile: {}\n    keyFile: {}\n", cert.display(), key.display()),
            wait_ready: false,
            ..Default::default()
        });
        doctor(&d.config)
    };
    // Expired (made with `openssl ca`).
    let expired = dir.path().join("expired");
    std::fs::create_dir_all(&expired).unwrap();
    let (cert, key) = tls::ca_issued(&expired, host, "20240101000000Z", "20240201000000Z");
    let (code, r) = run(&cert, &key);
    assert_eq!(code, 1, "{r:#}");
    finding(&r, "tls-certificate", "fail", "EXPIRED on 2024-02-01 00:00 UTC");

    // Expires in three days.
    let soon = dir.path().join("soon");
    std::fs::create_dir_all(&soon).unwrap();
    let fmt = time::macros::format_description!("[year][month][day][hour][minute][second]Z");
    let now = time::OffsetDateTime::now_utc();
    let (start, end) = ((now - time::Duration::days(1)).format(&fmt).unwrap(), (now + time::Duration::days(3)).format(&fmt).unwrap());
    let (cert, key) = tls::ca_issued(&soon, host, &start, &end);
    let (code, r) = run(&cert, &key);
    assert_eq!(code, 0, "{r:#}");
    let f = finding(&r, "tls-certificate", "warn", "expires on");
    assert!(["(in 2 days)", "(in 3 days)"].iter().any(|d| f["found"].as_str().unwrap().contains(d)), "{f}");
    // Issued by a CA nobody trusts: a warning with the seed's self-signed row.
    let f = finding(&r, "tls-certificate", "warn", "does not lead to a CA this system trusts");
    assert_eq!(f["seed"], "Media & TURN: Self-signed cert errors with external LiveKit");
    // TURN/TLS goes on with it.
    finding(&r, "turn", "ok", &format!("with {}", cert.display()));

    // A certificate for another name than server.host.
    let other = dir.path().join("other");
    std::fs::create_dir_all(&other).unwrap();
    let (cert, key) = tls::ca_issued(&other, "other.localhost", &start, &end);
    let (_, r) = run(&cert, &key);
    finding(&r, "tls-certificate", "fail", "does not cover server.host meet.localhost");
}

#[test]
fn doctor_external_livekit_without_webhook_and_broken_urls() {
    // An operator's LiveKit with no webhook: block.
    let mut ext = External::start_with(None);
    let d = Daemon::start(Opts { external: Some((ext.port, String::new())), ..Default::default() });
    let (code, r) = doctor(&d.config);
    assert_eq!(code, 1, "{r:#}");
    let f = finding(&r, "webhook", "fail", "LiveKit does not send webhooks to bedrud");
    assert_eq!(f["seed"], "Webhook & State: Database shows stale active participants after disconnect");
    assert!(f["fix"].as_str().unwrap().contains("bedrud livekit webhook-config"), "{f}");
    // Its timeouts come from LiveKit's own answer for the probe room.
    finding(&r, "room-timeouts", "ok", "departure 20 s (LiveKit's answer for the probe room)");
    finding(&r, "livekit-api", "ok", "answers OK");

    // bedrud holds another secret than LiveKit: its API refuses bedrud's tokens.
    let wrong = Daemon::start(Opts {
        external: Some((ext.port, String::new())),
        env: vec![("BEDRUD_LIVEKIT_API_SECRET".into(), "not-the-secret-livekit-has-0123456789".into())],
        wait_ready: false,
        ..Default::default()
    });
    eventually(SECS(30), "bedrud ready", || wrong.log_text().contains("bedrud ready"));
    let (code, r) = doctor(&wrong.config);
    assert_eq!(code, 1, "{r:#}");
    let f = finding(&r, "webhook", "fail", "cannot create the probe room");
    assert!(f["fix"].as_str().unwrap().contains("livekit.apiKey/apiSecret"), "{f}");
    drop(wrong);

    // LiveKit gone: the API line fails with the seed's "LiveKit disconnected".
    ext.stop();
    let (code, r) = doctor(&d.config);
    assert_eq!(code, 1);
    let f = finding(&r, "livekit-api", "fail", "does not answer");
    assert_eq!(f["seed"], "Connectivity: Admin dashboard shows \"LiveKit disconnected\"");
}

#[test]
fn doctor_client_url_timeouts_and_token_ttl() {
    // Clients are sent to a port nobody listens on; rooms linger; tokens live 45 s.
    let nobody = free_port();
    let d = Daemon::start(Opts {
        livekit_extra: format!("  host: ws://127.0.0.1:{nobody}\n  emptyTimeout: 3600\n  departureTimeout: 300\n  tokenTtl: 45s\n"),
        ..Default::default()
    });
    let (code, r) = doctor(&d.config);
    assert_eq!(code, 1, "{r:#}");
    let f = finding(&r, "livekit-url", "fail", &format!("ws://127.0.0.1:{nobody}: nobody answers at 127.0.0.1:{nobody}"));
    assert_eq!(f["seed"], "Connectivity: Token generated but client connection times out");
    let f = finding(&r, "room-timeouts", "warn", "empty_timeout 3600 s, departure_timeout 300 s");
    assert_eq!(f["seed"], "Webhook & State: Room not cleaned up after all leave");
    let f = finding(&r, "token-ttl", "warn", "livekit.tokenTtl is 45 s");
    assert_eq!(f["seed"], "Connectivity: Token expired before client connected");
    finding(&r, "livekit-url", "warn", &format!("livekit.host ws://127.0.0.1:{nobody} points at loopback"));
}

#[test]
fn doctor_private_node_ip_and_turn_without_a_dns_name() {
    // Configuration alone: a private node IP, and TLS with an IP as server.host.
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = tls::self_signed(dir.path(), "localhost");
    std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let d = Daemon::configure(Opts {
        server_extra: format!("  host: 127.0.0.1\n  tls:\n    certFile: {}\n    keyFile: {}\n", cert.display(), key.display()),
        wait_ready: false,
        ..Default::default()
    });
    // The harness sets nodeIP: 127.0.0.1; the environment overrides it.
    let (_, r) = doctor_as(&[], &d.config, &[("BEDRUD_LIVEKIT_NODE_IP", "10.20.30.40")]);
    let f = finding(&r, "node-ip", "warn", "10.20.30.40 (from livekit.nodeIP) is a private address");
    assert_eq!(f["seed"], "Media & TURN: Clients connect via relay unnecessarily");
    let f = finding(&r, "turn", "warn", "server.host \"127.0.0.1\" is an IP address");
    assert_eq!(f["seed"], "Startup & Config Crashes: LiveKit exits with TURN domain required on v1.12+");
}

#[test]
fn doctor_clock_skew_against_livekit() {
    // bedrud's clock three minutes ahead (libfaketime on the doctor process only) against a
    // real LiveKit's Date header.
    let ext = External::start_with(None);
    let d = Daemon::configure(Opts { external: Some((ext.port, String::new())), wait_ready: false, ..Default::default() });
    // (faketime is the Debian package faketime.)
    let (code, r) = doctor_as(&["faketime", "-f", "+3m"], &d.config, &[]);
    assert_eq!(code, 1, "{r:#}");
    let f = finding(&r, "clock", "fail", "bedrud's clock is 3 min ahead of LiveKit's");
    assert_eq!(f["seed"], "Connectivity: Token expired before client connected");
    finding(&r, "livekit-api", "ok", "answers OK");
    // Twenty seconds behind: within LiveKit's minute, but worth a warning.
    let (code, r) = doctor_as(&["faketime", "-f", "-20s"], &d.config, &[]);
    assert_eq!(code, 0, "{r:#}");
    let f = finding(&r, "clock", "warn", "behind LiveKit's");
    assert!(f["fix"].as_str().unwrap().contains("NTP"), "{f}");
    drop(ext);
}

#[test]
fn doctor_self_signed_internal_host() {
    // A TLS server with a self-signed certificate where bedrud expects LiveKit's API.
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = tls::self_signed(dir.path(), "localhost");
    let port = free_port();
    let mut server = Command::new("openssl")
        .args(["s_server", "-quiet", "-www", "-accept", &port.to_string(), "-cert"])
        .arg(&cert)
        .arg("-key")
        .arg(&key)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("openssl s_server");
    wait_for(SECS(10), "openssl s_server listening", || std::net::TcpStream::connect(("127.0.0.1", port)).ok());
    let d = Daemon::configure(Opts { external: Some((port, String::new())), wait_ready: false, ..Default::default() });
    // The harness writes an http:// internalHost; the environment overrides it.
    let (code, r) = doctor_as(&[], &d.config, &[("BEDRUD_LIVEKIT_INTERNAL_HOST", &format!("https://127.0.0.1:{port}"))]);
    let _ = server.kill();
    let _ = server.wait();
    assert_eq!(code, 1, "{r:#}");
    let f = finding(&r, "livekit-api", "fail", "TLS verification failed");
    assert_eq!(f["seed"], "Media & TURN: Self-signed cert errors with external LiveKit");
    assert!(f["fix"].as_str().unwrap().contains("skipTLSVerify: true"), "{f}");
}

#[test]
fn doctor_use_external_ip_without_stun() {
    // A network namespace of our own with nothing in it: no DNS, no STUN, as on a host without
    // internet access.
    let d = Daemon::configure(Opts { livekit_extra: "  useExternalIP: true\n".into(), wait_ready: false, ..Default::default() });
    let (code, r) = doctor_as(&["unshare", "--net", "--"], &d.config, &[]);
    assert_eq!(code, 1, "{r:#}");
    let f = finding(&r, "node-ip", "fail", "no STUN server answers");
    assert!(f["found"].as_str().unwrap().contains("could not resolve external IP"), "{f}");
    assert_eq!(f["seed"], "Media & TURN: Could not resolve external IP on startup (non-Docker)");
}

/// A config file in a fresh directory: `database.path` there, then `body`.
fn config_file(dir: &Path, body: &str) -> PathBuf {
    let p = dir.join("config.yaml");
    std::fs::write(&p, format!("database:\n  path: {}/state/bedrud.redb\n{body}", dir.display())).unwrap();
    p
}

#[test]
fn doctor_recording_without_redis_egress_or_their_tools() {
    // Embedded recording where nothing it needs can be found: redis-server named where there
    // is none, an egress file that is not executable, a PATH with neither them nor chromium,
    // Xvfb and pulseaudio, and a runtime directory too long for Chrome's socket.
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("bin");
    std::fs::create_dir(&empty).unwrap();
    let egress = dir.path().join("egress");
    std::fs::write(&egress, "#!/bin/sh\n").unwrap();
    let runtime = dir.path().join("a-runtime-directory-of-more-than-thirty-one-bytes");
    std::fs::create_dir(&runtime).unwrap();
    let config = config_file(
        dir.path(),
        &format!("recording:\n  enabled: true\n  egressBinary: {}\nredis:\n  binary: {}/nothing/redis-server\n", egress.display(), dir.path().display()),
    );
    let (code, r) = doctor_with(&config, &[("PATH", empty.to_str().unwrap()), ("RUNTIME_DIRECTORY", runtime.to_str().unwrap())]);
    assert_eq!(code, 1, "{r:#}");
    let f = finding(&r, "redis", "fail", "redis-server not found");
    assert!(f["found"].as_str().unwrap().contains("redis.binary"), "{f}");
    assert!(f["fix"].as_str().unwrap().contains("apt install redis-server"), "{f}");
    let f = finding(&r, "egress", "fail", "egress not found");
    assert!(f["found"].as_str().unwrap().contains(&format!("recording.egressBinary ({}): not executable", egress.display())), "{f}");
    assert!(f["fix"].as_str().unwrap().contains("scripts/install-egress"), "{f}");
    let f = finding(&r, "egress-tools", "fail", "not on PATH: chromium, Xvfb, pulseaudio");
    assert!(f["fix"].as_str().unwrap().contains("apt install chromium xvfb pulseaudio"), "{f}");
    let f = finding(&r, "egress-runtime-dir", "fail", "too long for recording");
    assert!(f["fix"].as_str().unwrap().contains("RUNTIME_DIRECTORY"), "{f}");
    // No daemon runs, so no `recording` line.
    assert!(lines(&r, "recording").is_empty(), "{r:#}");

    // Redis named by address where nobody listens.
    let port = free_port();
    let config = config_file(dir.path(), &format!("recording:\n  enabled: true\nredis:\n  address: 127.0.0.1:{port}\n"));
    let (code, r) = doctor(&config);
    assert_eq!(code, 1, "{r:#}");
    let f = finding(&r, "redis", "fail", &format!("LiveKit's and egress's Redis at 127.0.0.1:{port}"));
    assert!(f["seed"].as_str().unwrap_or("").contains("Redis connection fails"), "{f}");
    assert!(f["fix"].as_str().unwrap().contains("redis.address"), "{f}");
}

#[test]
fn doctor_cluster_redis_empty_and_gone() {
    // An external LiveKit (nobody answers it here) whose cluster Redis has no node registered.
    let redis = common::cluster::Redis::start();
    let dir = tempfile::tempdir().unwrap();
    let lk = free_port();
    let external = |address: &str| {
        format!("livekit:\n  external: true\n  host: ws://127.0.0.1:{lk}\n  internalHost: http://127.0.0.1:{lk}\n  apiKey: {API_KEY}\n  apiSecret: {API_SECRET}\nredis:\n  address: {address}\n")
    };
    let config = config_file(dir.path(), &external(&redis.address()));
    let (_, r) = doctor(&config);
    finding(&r, "redis", "ok", &format!("the cluster's Redis at {} answers PING", redis.address()));
    let f = finding(&r, "cluster", "warn", "no LiveKit node is registered in this Redis");
    assert!(f["fix"].as_str().unwrap().contains("redis:"), "{f}");

    // The Redis gone: both lines fail.
    drop(redis);
    let port = free_port();
    let config = config_file(dir.path(), &external(&format!("127.0.0.1:{port}")));
    let (code, r) = doctor(&config);
    assert_eq!(code, 1, "{r:#}");
    finding(&r, "redis", "fail", &format!("the cluster's Redis at 127.0.0.1:{port}"));
    let f = finding(&r, "cluster", "fail", "");
    assert!(f["seed"].as_str().unwrap_or("").contains("Redis connection fails"), "{f}");
}

#[test]
fn doctor_running_daemon_whose_redis_cannot_start() {
    // Embedded recording, the embedded Redis's port taken by someone else: meetings run,
    // recording is unavailable, and the running daemon's doctor says why.
    let holder = std::net::TcpListener::bind(("127.0.0.1", 0)).unwrap();
    let port = holder.local_addr().unwrap().port();
    let extra = format!(
        "recording:\n  enabled: true\n  egressBinary: /nonexistent/egress\n  healthPort: {}\n  templatePort: {}\nredis:\n  port: {port}\n",
        free_port(),
        free_port()
    );
    let d = Daemon::start(Opts { server_extra: extra, env_remove: vec!["BEDRUD_EGRESS_BINARY".into(), "BEDRUD_REDIS_BINARY".into()], ..Default::default() });
    let (code, r) = doctor(&d.config);
    assert_eq!(code, 1, "{r:#}");
    let f = finding(&r, "redis", "fail", "bedrud's redis-server is failed");
    let found = f["found"].as_str().unwrap();
    assert!(found.contains(&format!("TCP port {port} is already in use (redis.port)")), "the port is named: {f}");
    assert_eq!(found.matches("already in use").count(), 1, "the error is said once: {f}");
    assert!(f["fix"].as_str().unwrap().contains("SOURCE=redis"), "{f}");
    finding(&r, "egress", "fail", "the egress worker is");
    finding(&r, "recording", "fail", "not available");
    drop(holder);
}

#[test]
fn doctor_on_a_broken_config_file() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("config.yaml");
    std::fs::write(&p, "livekit:\n  apiSecrte: x\n").unwrap();
    let (code, r) = doctor(&p);
    assert_eq!(code, 1, "{r:#}");
    let f = finding(&r, "config", "fail", "livekit.apiSecrte: unknown key");
    assert!(f["fix"].as_str().unwrap().contains("livekit.apiSecret"), "{f}");
}

/// Runs a command as the user nobody (setpriv, util-linux).
const NOBODY: [&str; 5] = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "--"];

/// An executable shell script `name` in `dir`.
fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let p = dir.join(name);
    std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    p
}

/// The report for a configuration that is only written, never started.
fn doctor_configured(opts: Opts, env: &[(&str, &str)]) -> (i32, Value) {
    let d = Daemon::configure(Opts { wait_ready: false, ..opts });
    doctor_as(&[], &d.config, env)
}

#[test]
fn doctor_livekit_binary_and_static_config_mistakes() {
    let dir = tempfile::tempdir().unwrap();
    let with_binary = |p: PathBuf| doctor_configured(Opts { livekit_binary: Some(p), ..Default::default() }, &[]);
    // No livekit-server where the configuration says.
    let (code, r) = with_binary(dir.path().join("nowhere/livekit-server"));
    assert_eq!(code, 1, "{r:#}");
    let f = finding(&r, "livekit-binary", "fail", "nowhere/livekit-server");
    assert_eq!(f["seed"], "Connectivity: Embedded LiveKit not starting");
    assert!(f["fix"].as_str().unwrap().contains("scripts/install-livekit"), "{f}");
    // A program there that is not livekit-server: it answers --version with nothing.
    let (code, r) = with_binary(script(dir.path(), "broken", "exit 3"));
    assert_eq!(code, 1, "{r:#}");
    finding(&r, "livekit-binary", "fail", "does not report a version");
    // Versions bedrud does not know. Only 1.9.12 and 1.13.5 are built here: these two scripts
    // stand in for other releases and answer --version exactly as livekit-server does.
    let (code, r) = with_binary(script(dir.path(), "old", "echo 'livekit-server version 1.8.3'"));
    assert_eq!(code, 0, "{r:#}");
    finding(&r, "livekit-binary", "warn", "livekit-server 1.8.3 (");
    finding(&r, "livekit-binary", "warn", "is older than 1.9.0");
    let (_, r) = with_binary(script(dir.path(), "new", "echo 'livekit-server version 1.14.0'"));
    finding(&r, "livekit-binary", "warn", "is newer than 1.13.5");

    // Static LiveKit configurations (livekit.configPath) with the operator's usual mistakes.
    let with_file = |binary: Option<PathBuf>, file: &Path| {
        doctor_configured(Opts { livekit_binary: binary, livekit_extra: format!("  configPath: {}\n", file.display()), ..Default::default() }, &[])
    };
    let (code, r) = with_file(None, &dir.path().join("missing.yaml"));
    assert_eq!(code, 1, "{r:#}");
    finding(&r, "livekit-config", "fail", "cannot read livekit.configPath");
    let raw = |name: &str, text: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p
    };
    let (_, r) = with_file(None, &raw("list.yaml", "- port: 7880\n"));
    assert_eq!(finding(&r, "livekit-config", "fail", "is not a YAML mapping")["seed"], "Startup & Config Crashes: YAML parsing error");
    let (_, r) = with_file(None, &raw("bad.yaml", "port: 7880\nrtc:\n  tcp_port: [7881\n"));
    finding(&r, "livekit-config", "fail", "is not valid YAML");
    let (_, r) = with_file(None, &raw("nokeys.yaml", &format!("port: {}\n", free_port())));
    finding(&r, "livekit-config", "fail", "has no `keys:`");
    // Keys, but not bedrud's; no webhook: block.
    let sub = tempfile::tempdir().unwrap();
    let other = static_file(sub.path(), "");
    let text = std::fs::read_to_string(&other).unwrap().replace(API_KEY, "APIotherkey");
    let text = text[..text.find("webhook:").unwrap()].to_string();
    std::fs::write(&other, text).unwrap();
    let (code, r) = with_file(None, &other);
    assert_eq!(code, 1, "{r:#}");
    finding(&r, "livekit-config", "fail", &format!("does not hold bedrud's API key \"{API_KEY}\""));
    let f = finding(&r, "livekit-config", "warn", "has no webhook.urls");
    assert_eq!(f["seed"], "Webhook & State: Database shows stale active participants after disconnect");
    assert!(f["fix"].as_str().unwrap().contains("bedrud livekit webhook-config"), "{f}");
    // TURN/TLS with an IP for a domain and a certificate file that is not there.
    let sub = tempfile::tempdir().unwrap();
    let turn = static_file(sub.path(), "turn:\n  enabled: true\n  domain: 127.0.0.1\n  tls_port: 5349\n  cert_file: /nonexistent/turn.pem\n  key_file: /nonexistent/turn.key\n");
    let (_, r) = with_file(None, &turn);
    let f = finding(&r, "livekit-config", "fail", "turn.domain \"127.0.0.1\" is not a DNS name");
    assert_eq!(f["seed"], "Startup & Config Crashes: LiveKit exits with TURN domain required on v1.12+");
    finding(&r, "livekit-config", "fail", "turn.cert_file /nonexistent/turn.pem cannot be read");
    // A key of 1.12 given to a real livekit-server 1.9.12, which indeed refuses it.
    let sub = tempfile::tempdir().unwrap();
    let ttl = static_file(sub.path(), "turn:\n  enabled: false\n  ttl_seconds: 600\n");
    let (code, r) = with_file(Some(common::livekit_binary_old()), &ttl);
    assert_eq!(code, 1, "{r:#}");
    let f = finding(&r, "livekit-config", "fail", "`turn.ttl_seconds` is not a livekit-server 1.9.12 key");
    assert!(f["fix"].as_str().unwrap().contains("remove `turn.ttl_seconds` or upgrade livekit-server"), "{f}");
    let o = Command::new(common::livekit_binary_old()).arg("--config").arg(&ttl).output().unwrap();
    let said = String::from_utf8_lossy(&o.stdout).to_string() + &String::from_utf8_lossy(&o.stderr);
    assert!(said.contains("field ttl_seconds not found"), "{said}");

    // A node IP that is not an address, and a setting that is ignored in embedded mode.
    let (code, r) = doctor_configured(Opts { livekit_extra: "  skipTLSVerify: true\n".into(), ..Default::default() }, &[("BEDRUD_LIVEKIT_NODE_IP", "meet.example.org")]);
    assert_eq!(code, 1, "{r:#}");
    let f = finding(&r, "node-ip", "fail", "livekit.nodeIP: invalid value \"meet.example.org\"");
    assert_eq!(f["seed"], "Media & TURN: Participants join but no audio/video");
    finding(&r, "config", "warn", "livekit.skipTLSVerify only applies in external mode");
}

#[test]
fn doctor_certificate_dates_names_keys_and_chain() {
    let host = "meet.localhost";
    let fmt = time::macros::format_description!("[year][month][day][hour][minute][second]Z");
    let at = |days: i64| (time::OffsetDateTime::now_utc() + time::Duration::days(days)).format(&fmt).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let sub = |name: &str| {
        let p = dir.path().join(name);
        std::fs::create_dir_all(&p).unwrap();
        p
    };
    let tls = |host: Option<&str>, cert: &Path, key: &Path| {
        format!("{}  tls:\n    certFile: {}\n    keyFile: {}\n", host.map(|h| format!("  host: {h}\n")).unwrap_or_default(), cert.display(), key.display())
    };
    let run = |server_extra: String, env: &[(&str, &str)]| doctor_configured(Opts { server_extra, ..Default::default() }, env);

    // Not valid before the day after tomorrow.
    let (cert, key) = tls::ca_issued(&sub("future"), host, &at(2), &at(30));
    let (code, r) = run(tls(Some(host), &cert, &key), &[]);
    assert_eq!(code, 1, "{r:#}");
    let f = finding(&r, "tls-certificate", "fail", "is not valid before");
    assert!(f["fix"].as_str().unwrap().contains("clock"), "{f}");

    // A good certificate, trusted because its CA is this run's system store (SSL_CERT_FILE):
    // without server.host doctor cannot tell whether it is for the right name.
    let good = sub("good");
    let (cert, key) = tls::ca_issued(&good, host, &at(-1), &at(60));
    let ca = good.join("ca.pem");
    let trust = [("SSL_CERT_FILE", ca.to_str().unwrap())];
    let (code, r) = run(tls(Some(host), &cert, &key), &trust);
    assert_eq!(code, 0, "{r:#}");
    finding(&r, "tls-certificate", "ok", "chain trusted, key matches");
    let (_, r) = run(tls(None, &cert, &key), &trust);
    finding(&r, "tls-certificate", "warn", "server.host is not set");

    // The key of another certificate.
    let (_, other_key) = tls::ca_issued(&sub("other"), host, &at(-1), &at(60));
    let (code, r) = run(tls(Some(host), &cert, &other_key), &trust);
    assert_eq!(code, 1, "{r:#}");
    let f = lines(&r, "tls-certificate").into_iter().find(|f| f["status"] == "fail").unwrap_or_else(|| panic!("{r:#}"));
    assert_eq!(f["fix"], "server.tls.keyFile must be the key of server.tls.certFile", "{f}");

    // A file that holds no certificate.
    let junk = dir.path().join("junk.pem");
    std::fs::write(&junk, "this is not a certificate\n").unwrap();
    let (code, r) = run(tls(Some(host), &junk, &key), &trust);
    assert_eq!(code, 1, "{r:#}");
    let f = finding(&r, "tls-certificate", "fail", "no certificate found in");
    assert!(f["fix"].as_str().unwrap().contains("PEM certificate chain"), "{f}");

    // A trusted chain, but the certificate is for TLS clients, not servers.
    let client = sub("client");
    let (cert2, key2) = tls::ca_issued_with(&client, host, &at(-1), &at(60), &["extendedKeyUsage=clientAuth"]);
    let ca2 = client.join("ca.pem");
    let (code, r) = run(tls(Some(host), &cert2, &key2), &[("SSL_CERT_FILE", ca2.to_str().unwrap())]);
    assert_eq!(code, 1, "{r:#}");
    finding(&r, "tls-certificate", "fail", "the certificate chain is not valid");

    // Run as root: the key (root's, mode 600) is unreadable for the user the service runs as.
    assert!(nix::unistd::geteuid().is_root(), "this check is made by root");
    let (code, r) = run(tls(Some(host), &cert, &key), &[("SSL_CERT_FILE", ca.to_str().unwrap()), ("BEDRUD_SERVICE_USER", "nobody")]);
    assert_eq!(code, 1, "{r:#}");
    let f = finding(&r, "tls-certificate", "fail", "(mode 600) cannot be read by the service user nobody");
    assert!(f["fix"].as_str().unwrap().contains("LoadCredential=tls-key:"), "{f}");

    // An ACME certificate left in the state directory, three days from expiry, not renewed
    // (bedrud is not running).
    let d = Daemon::configure(Opts {
        server_extra: format!("  host: {host}\n  acme:\n    email: ops@bedrud.test\n    directoryUrl: https://127.0.0.1:{}/dir\n", free_port()),
        wait_ready: false,
        ..Default::default()
    });
    let (cert, key) = tls::ca_issued(&sub("acme"), host, &at(-87), &at(3));
    let state = d.dir.path().join("acme");
    std::fs::create_dir_all(&state).unwrap();
    std::fs::copy(&cert, state.join("cert.pem")).unwrap();
    std::fs::copy(&key, state.join("key.pem")).unwrap();
    let (_, r) = doctor(&d.config);
    let f = finding(&r, "acme", "warn", &format!("the certificate for {host} expires in"));
    assert!(f["found"].as_str().unwrap().contains("was not renewed"), "{f}");
    assert!(f["fix"].as_str().unwrap().contains("is bedrud running?"), "{f}");
}

#[test]
fn doctor_services_that_are_not_livekit() {
    // Another web service where LiveKit's API is expected, and as the clients' URL.
    let port = free_port();
    let _web = Holder::http(port, 200, "<html>an intranet page</html>");
    let external = Some((port, String::new()));
    let (code, r) = doctor_configured(Opts { external: external.clone(), ..Default::default() }, &[]);
    assert_eq!(code, 1, "{r:#}");
    let f = finding(&r, "livekit-api", "fail", "answers 200 OK \"<html>an intranet page</html>\", not LiveKit's OK");
    assert_eq!(f["seed"], "Connectivity: Admin dashboard shows \"LiveKit disconnected\"");
    let f = finding(&r, "livekit-url", "warn", "the handshake on /rtc got HTTP 200");
    assert!(f["fix"].as_str().unwrap().contains("WebSocket upgrades"), "{f}");
    // LiveKit's 406 Not Ready (its node stats are stale) cannot be provoked from outside: a
    // stand-in answers as LiveKit does then. Clients get a name that does not resolve.
    let not_ready = free_port();
    let _lk = Holder::http(not_ready, 406, "Not Ready");
    let (_, r) = doctor_configured(
        Opts { external, ..Default::default() },
        &[("BEDRUD_LIVEKIT_INTERNAL_HOST", &format!("http://127.0.0.1:{not_ready}")), ("BEDRUD_LIVEKIT_HOST", "ws://livekit.bedrud-doctor.invalid:7880")],
    );
    finding(&r, "livekit-api", "warn", "answers 406 Not Ready");
    let f = finding(&r, "livekit-url", "fail", "livekit.bedrud-doctor.invalid does not resolve");
    assert_eq!(f["seed"], "Connectivity: Token generated but client connection times out");
}

#[test]
fn doctor_udp_ports_held_and_a_full_disk() {
    // LiveKit's UDP port bound by another process.
    let d = Daemon::configure(Opts { wait_ready: false, ..Default::default() });
    let text = std::fs::read_to_string(&d.config).unwrap();
    let udp: u16 = text.lines().find_map(|l| l.trim().strip_prefix("udpPort: ")).unwrap().parse().unwrap();
    let h = Holder::udp(udp);
    let (code, r) = doctor(&d.config);
    assert_eq!(code, 1, "{r:#}");
    let f = finding(&r, "ports", "fail", &format!("UDP {udp} (livekit.udpPort) is in use by pid {} (", h.0.id()));
    assert_eq!(f["seed"], "Connectivity: Port 7880 already in use");
    drop(h);
    // The first port of a media range.
    let range: Vec<u16> = (0..5).map(|_| free_port()).collect();
    let (first, last) = (range[0], range[4]);
    let h = Holder::udp(first);
    let (_, r) = doctor_configured(Opts { livekit_extra: format!("  udpPortRangeStart: {first}\n  udpPortRangeEnd: {last}\n"), ..Default::default() }, &[]);
    let f = finding(&r, "ports", "fail", &format!("UDP {first} in the media range {first}-{last} (livekit.udpPortRangeStart-End)"));
    assert!(f["found"].as_str().unwrap().contains(&format!("is in use by pid {}", h.0.id())), "{f}");
    assert!(f["fix"].as_str().unwrap().contains("set livekit.udpPortRangeStart-End to a free port"), "{f}");

    // The database on a filesystem with 4 MiB: a tmpfs mounted in a mount namespace of the
    // doctor's own.
    let small = d.dir.path().join("small");
    std::fs::create_dir_all(&small).unwrap();
    let db = small.join("bedrud.redb");
    let bin = common::daemon::BIN;
    let o = Command::new("unshare")
        .args(["--mount", "--", "sh", "-c", "mount -t tmpfs -o size=4m bedrud-test \"$1\" && exec \"$2\" doctor --json --config \"$3\"", "sh"])
        .arg(&small)
        .arg(bin)
        .arg(&d.config)
        .env("BEDRUD_DATABASE_PATH", &db)
        .output()
        .unwrap();
    let r: Value = serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&o.stderr)));
    let f = finding(&r, "disk", "warn", "MiB of 4 MiB free on the filesystem of");
    assert!(f["found"].as_str().unwrap().contains("refuses every change"), "{f}");
}

#[test]
fn doctor_run_by_an_unprivileged_user() {
    // root holds LiveKit's port; doctor runs as nobody, who cannot see root's sockets.
    use std::os::unix::fs::PermissionsExt;
    let lk = free_port();
    let d = Daemon::configure(Opts { livekit_port: Some(lk), wait_ready: false, ..Default::default() });
    std::fs::set_permissions(d.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&d.config, std::fs::Permissions::from_mode(0o644)).unwrap();
    let _holder = Holder::tcp(lk);
    let (code, r) = doctor_as(&NOBODY, &d.config, &[]);
    assert_eq!(code, 1, "{r:#}");
    let f = finding(&r, "ports", "fail", &format!("TCP {lk} (livekit.port) is in use by a process this user cannot see"));
    assert!(f["fix"].as_str().unwrap().contains("run doctor as root"), "{f}");
    // A key file nobody may read is refused when the configuration is loaded, as the daemon
    // would refuse it.
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let (cert, key) = tls::self_signed(dir.path(), "localhost");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    let d = Daemon::configure(Opts {
        server_extra: format!("  host: localhost\n  tls:\n    certFile: {}\n    keyFile: {}\n", cert.display(), key.display()),
        wait_ready: false,
        ..Default::default()
    });
    std::fs::set_permissions(d.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&d.config, std::fs::Permissions::from_mode(0o644)).unwrap();
    let (code, r) = doctor_as(&NOBODY, &d.config, &[]);
    assert_eq!(code, 1, "{r:#}");
    finding(&r, "config", "fail", &format!("{}: server.tls.keyFile: cannot read secret file: Permission denied", key.display()));
}

#[test]
fn doctor_against_a_running_daemon_in_trouble() {
    // A static LiveKit file whose webhook points where nobody listens, and a setting that
    // embedded mode ignores.
    let dir = tempfile::tempdir().unwrap();
    let file = static_file(dir.path(), "");
    let d = Daemon::start(Opts { livekit_extra: format!("  configPath: {}\n  skipTLSVerify: true\n", file.display()), ..Default::default() });
    let (code, r) = doctor(&d.config);
    assert_eq!(code, 1, "{r:#}");
    assert_eq!(r["throughDaemon"], true);
    let f = finding(&r, "webhook", "fail", "no room_started from LiveKit within 10 s for the probe room");
    assert_eq!(f["seed"], "Webhook & State: Participants never marked inactive");
    finding(&r, "config", "warn", "livekit.skipTLSVerify only applies in external mode");
    finding(&r, "livekit-api", "ok", "answers OK");

    // A second configuration on the same API port, with its own state: a running bedrud holds
    // the port, and this doctor cannot ask it.
    let other = Daemon::configure(Opts { port: Some(d.port), wait_ready: false, ..Default::default() });
    let (_, r) = doctor(&other.config);
    let f = finding(&r, "ports", "warn", &format!("TCP {} (server.port) is held by a running bedrud, pid {} (", d.port, d.pid()));
    assert!(f["fix"].as_str().unwrap().contains("runuser -u bedrud -- bedrud doctor"), "{f}");

    // Someone without access to the control socket asks.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(d.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&d.config, std::fs::Permissions::from_mode(0o644)).unwrap();
    let (_, r) = doctor_as(&NOBODY, &d.config, &[]);
    assert_eq!(r["throughDaemon"], false, "{r:#}");
    let f = finding(&r, "daemon", "warn", "checked from the configuration only");
    assert!(f["fix"].as_str().unwrap().contains("runuser -u bedrud"), "{f}");

    // LiveKit hangs (stopped): its API does not answer. (The daemon's health watch may kill
    // and restart it meanwhile; then the stopped process is gone.)
    let lk = d.livekit_pid(&d.admin());
    assert!(lk > 0);
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(lk as i32), Signal::SIGSTOP).unwrap();
    let (code, r) = doctor(&d.config);
    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(lk as i32), Signal::SIGCONT);
    assert_eq!(code, 1, "{r:#}");
    let f = finding(&r, "livekit-api", "fail", "does not answer");
    assert_eq!(f["seed"], "Connectivity: curl http://127.0.0.1:7880 returns connection refused");
}

// ---------------------------------------------------------------------------------------------
// first run

/// The setup token from the daemon's log (the last one logged).
fn setup_token(d: &Daemon) -> String {
    wait_for(SECS(10), "setup link in the log", || {
        let log = d.log_text();
        let i = log.rfind("/setup?token=")?;
        Some(log[i + 13..].split(|c: char| c.is_whitespace()).next()?.to_string())
    })
}

#[test]
fn first_run_setup_link_creates_the_admin_once() {
    let mut d = Daemon::start(Opts::default());
    let log = d.log_text();
    assert!(log.contains(&format!("no administrator yet: open http://127.0.0.1:{}/setup?token=", d.port)), "{log}");
    let token = setup_token(&d);
    assert_eq!(token.len(), 43, "{token}");
    // The token is stored only as its hash.
    let (s, v) = d.get("/api/setup", None);
    assert_eq!((s, v["needed"].as_bool()), (200, Some(true)), "{v}");
    let body = |t: &str, name: &str| json!({ "token": t, "username": name, "password": "first-admin-pw", "session": "cookie" });
    let (s, v) = d.post("/api/setup", None, body("not-the-token", "boss"));
    assert_eq!((s, v["error"]["code"].as_str()), (403, Some("invalid_setup_token")), "{v}");
    let (s, v) = d.post("/api/setup", None, json!({ "token": token, "username": "boss", "password": "short" }));
    assert_eq!((s, v["error"]["code"].as_str()), (400, Some("invalid_password")), "{v}");

    // A restart makes a new link; the old one stops working.
    d.stop();
    d.spawn();
    d.wait_ready();
    let token2 = setup_token(&d);
    assert_ne!(token, token2);
    let (s, _) = d.post("/api/setup", None, body(&token, "boss"));
    assert_eq!(s, 403);

    // The web client's way: the session arrives as the cookie and works at once.
    let http = common::daemon::http_client();
    let resp = http.post(d.url("/api/setup")).json(&body(&token2, "boss")).send().unwrap();
    assert_eq!(resp.status().as_u16(), 201);
    let cookie = resp.headers().get("set-cookie").unwrap().to_str().unwrap().to_string();
    assert!(cookie.starts_with("bedrud_session=") && cookie.contains("HttpOnly"), "{cookie}");
    let v: Value = resp.json().unwrap();
    assert_eq!((v["user"]["username"].as_str(), v["user"]["role"].as_str()), (Some("boss"), Some("admin")), "{v}");
    assert!(v.get("token").is_none(), "{v}");
    let me: Value = http.get(d.url("/api/auth/me")).header("cookie", cookie.split(';').next().unwrap()).send().unwrap().json().unwrap();
    assert_eq!(me["user"]["username"], "boss", "{me}");
    // Used up: the link does nothing more, and the API says setup is done.
    let (s, v) = d.post("/api/setup", None, json!({ "token": token2, "username": "second", "password": "first-admin-pw" }));
    assert_eq!((s, v["error"]["code"].as_str()), (409, Some("setup_done")), "{v}");
    assert_eq!(d.get("/api/setup", None).1["needed"], false);
    // The next start says nothing about setup.
    d.stop();
    let before = d.log_text().len();
    d.spawn();
    d.wait_ready();
    assert!(!d.log_text()[before..].contains("/setup?token="), "{}", d.log_text());
}

#[test]
fn an_admin_made_on_the_command_line_ends_the_setup_link() {
    let d = Daemon::start(Opts::default());
    let token = setup_token(&d);
    d.create_user("admin", "admin-password", true);
    let (s, v) = d.post("/api/setup", None, json!({ "token": token, "username": "late", "password": "late-password" }));
    assert_eq!((s, v["error"]["code"].as_str()), (409, Some("setup_done")), "{v}");
}

// ---------------------------------------------------------------------------------------------
// logs

#[test]
fn text_logs_to_a_file_have_no_colour_and_livekit_fields_spread_out() {
    let d = Daemon::start(Opts { log_format: Some("text".into()), log_level: Some("info".into()), ..Default::default() });
    let admin = d.admin();
    let _ = d.get("/api/admin/overview", Some(&admin));
    let log = d.log_text();
    assert!(!log.contains('\u{1b}'), "colour codes in a log file:\n{log}");
    let start = log.lines().find(|l| l.contains("starting LiveKit server")).unwrap_or_else(|| panic!("{log}"));
    assert!(start.contains(&format!("portHttp={}", d.lk_port)) && start.contains("source=livekit"), "{start}");
    assert!(!start.contains("lk_fields") && !start.contains("\\\""), "{start}");
    // The reconciler's ListRooms is not news at info.
    assert!(!log.contains("API RoomService.ListRooms"), "{log}");
}

// ---------------------------------------------------------------------------------------------
// ACME against Pebble

const ACME_HOST: &str = "meet.bedrud.test";

/// Pebble and its DNS test server on loopback; every name resolves to 127.0.0.1 unless told.
struct Pebble {
    pebble: Child,
    dns: Child,
    dir: tempfile::TempDir,
    port: u16,
    mgmt: u16,
    dns_mgmt: u16,
    /// Pebble's own HTTPS certificate (PEM): `server.acme.caRoots`.
    listener_cert: PathBuf,
}

impl Pebble {
    /// Validates on `tls_port` (TLS-ALPN-01) and `http_port` (HTTP-01); certificates live
    /// `validity` seconds.
    fn start(tls_port: u16, http_port: u16, validity: u64) -> Pebble {
        let bin = pebble_binary();
        let chall = bin.with_file_name("pebble-challtestsrv");
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = tls::self_signed(dir.path(), "localhost");
        let (port, mgmt, dns, dns_mgmt) = (free_port(), free_port(), free_port(), free_port());
        let log = |name: &str| std::fs::File::create(dir.path().join(name)).unwrap();
        let dns_child = Command::new(&chall)
            .args(["-dnsserver", &format!("127.0.0.1:{dns}"), "-management", &format!("127.0.0.1:{dns_mgmt}")])
            .args(["-http01", "", "-https01", "", "-tlsalpn01", "", "-doh", "", "-defaultIPv4", "127.0.0.1", "-defaultIPv6", ""])
            .stdout(log("challtestsrv.log"))
            .stderr(Stdio::null())
            .spawn()
            .expect("pebble-challtestsrv");
        let config = json!({ "pebble": {
            "listenAddress": format!("127.0.0.1:{port}"),
            "managementListenAddress": format!("127.0.0.1:{mgmt}"),
            "certificate": cert, "privateKey": key,
            "httpPort": http_port, "tlsPort": tls_port,
            "ocspResponderURL": "", "externalAccountBindingRequired": false,
            "retryAfter": { "authz": 1, "order": 1 },
            "keyAlgorithm": "ecdsa",
            "profiles": { "default": { "description": "short-lived test certificates", "validityPeriod": validity } }
        }});
        std::fs::write(dir.path().join("pebble.json"), config.to_string()).unwrap();
        let pebble = Command::new(&bin)
            .arg("-config")
            .arg(dir.path().join("pebble.json"))
            .args(["-dnsserver", &format!("127.0.0.1:{dns}")])
            // No random waits or random nonce rejections; every order validates afresh.
            .env("PEBBLE_VA_NOSLEEP", "1")
            .env("PEBBLE_WFE_NONCEREJECT", "0")
            .env("PEBBLE_AUTHZREUSE", "0")
            .stdout(log("pebble.log"))
            .stderr(Stdio::null())
            .spawn()
            .expect("pebble");
        let p = Pebble { pebble, dns: dns_child, dir, port, mgmt, dns_mgmt, listener_cert: cert };
        let roots = std::fs::read_to_string(&p.listener_cert).unwrap();
        let https = tls::https_client(&roots, "localhost", port);
        let t0 = Instant::now();
        loop {
            // Pebble, like any ACME server, wants a User-Agent.
            match https.get(format!("https://localhost:{port}/dir")).header("user-agent", "bedrud-test").send() {
                Ok(r) if r.status().is_success() => break,
                other if t0.elapsed() > SECS(20) => panic!("pebble's directory does not answer ({other:?}):\n{}", p.log()),
                _ => std::thread::sleep(Duration::from_millis(100)),
            }
        }
        p
    }

    fn directory(&self) -> String {
        format!("https://127.0.0.1:{}/dir", self.port)
    }

    /// The root of the certificates Pebble issues (PEM).
    fn issuing_root(&self) -> String {
        let roots = std::fs::read_to_string(&self.listener_cert).unwrap();
        let https = tls::https_client(&roots, "localhost", self.mgmt);
        https.get(format!("https://localhost:{}/roots/0", self.mgmt)).header("user-agent", "bedrud-test").send().unwrap().text().unwrap()
    }

    /// Makes `host` resolve to `ip` (only) for Pebble's validation.
    fn set_address(&self, host: &str, ip: &str) {
        let http = common::daemon::http_client();
        for (path, body) in [("clear-a", json!({ "host": host })), ("add-a", json!({ "host": host, "addresses": [ip] }))] {
            let r = http.post(format!("http://127.0.0.1:{}/{path}", self.dns_mgmt)).json(&body).send().unwrap();
            assert!(r.status().is_success(), "{path}: {}", r.status());
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("pebble.log")).unwrap_or_default()
    }
}

impl Drop for Pebble {
    fn drop(&mut self) {
        for c in [&mut self.pebble, &mut self.dns] {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A daemon on `port` that gets its certificate for `host` from `pebble`.
fn acme_daemon(pebble: &Pebble, port: u16, host: &str, turn: (u16, u16)) -> Daemon {
    let lk = free_port();
    Daemon::start(Opts {
        port: Some(port),
        livekit_port: Some(lk),
        server_extra: format!(
            "  host: {host}\n  acme:\n    email: ops@bedrud.test\n    directoryUrl: {}\n    caRoots: {}\n",
            pebble.directory(),
            pebble.listener_cert.display()
        ),
        // Clients are sent to loopback: the test names exist only in Pebble's DNS.
        livekit_extra: format!("  host: ws://127.0.0.1:{lk}\n  turnUdpPort: {}\n  turnTlsPort: {}\n", turn.0, turn.1),
        wait_ready: false,
        ..Default::default()
    })
}

fn count(log: &str, needle: &str) -> usize {
    log.matches(needle).count()
}

/// The serial of the certificate served on `port` for `host`, verified against `roots`.
fn served_serial(roots: &str, host: &str, port: u16) -> Result<String, String> {
    let c = tls::peer_certificate(roots, host, port)?;
    Ok(bedrud::certs::info(&c)?.serial)
}

#[test]
fn acme_issues_renews_and_turn_tls_follows() {
    let port = free_port();
    let pebble = Pebble::start(port, free_port(), 30);
    let turn = (free_port(), free_port());
    let t0 = Instant::now();
    let d = acme_daemon(&pebble, port, ACME_HOST, turn);
    let issued = "ACME: certificate for meet.bedrud.test issued";
    eventually(SECS(60), "the first certificate", || count(&d.log_text(), issued) >= 1);
    eprintln!("figure: first certificate {} ms after the daemon started", t0.elapsed().as_millis());
    let root = pebble.issuing_root();
    // HTTPS serves it without a restart, and it verifies against Pebble's root.
    let first = served_serial(&root, ACME_HOST, port).unwrap_or_else(|e| panic!("{e}\n{}", d.log_text()));
    let https = tls::https_client(&root, ACME_HOST, port);
    let r: Value = https.get(format!("https://{ACME_HOST}:{port}/api/health")).send().unwrap().json().unwrap();
    assert_eq!(r["status"], "ok");
    // Files in the state directory: key 0600.
    let acme = d.dir.path().join("acme");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(acme.join("key.pem")).unwrap().permissions().mode() & 0o777, 0o600);
    assert!(std::fs::read_to_string(acme.join("cert.pem")).unwrap().contains("BEGIN CERTIFICATE"));
    // LiveKit is restarted (nobody is in a meeting) with TURN/TLS on the same certificate.
    eventually(SECS(30), "livekit restarted for TURN/TLS", || d.log_text().contains("livekit-server restarted with the new TURN/TLS certificate"));
    let turn_serial = wait_for(SECS(20), "TURN/TLS serving", || served_serial(&root, ACME_HOST, turn.1).ok());
    assert_eq!(turn_serial, first);
    let (_, r) = doctor(&d.config);
    finding(&r, "acme", "ok", "certificate for meet.bedrud.test from");
    finding(&r, "turn", "ok", "TURN on");

    // Renewal when a third of the 30 s lifetime is left: new serial on HTTPS, then on TURN/TLS.
    eventually(SECS(60), "the renewal", || count(&d.log_text(), issued) >= 2);
    let second = served_serial(&root, ACME_HOST, port).unwrap();
    assert_ne!(first, second);
    let turn_serial = wait_for(SECS(30), "TURN/TLS with the renewed certificate", || {
        served_serial(&root, ACME_HOST, turn.1).ok().filter(|s| *s != first)
    });
    eprintln!("figure: renewed certificate on TURN/TLS {} ms after the daemon started", t0.elapsed().as_millis());
    assert!(turn_serial == second || count(&d.log_text(), issued) >= 3, "TURN/TLS serves {turn_serial}, HTTPS {second}");
    assert!(pebble.log().contains("Issued certificate"), "{}", pebble.log());

    // The ACME server goes away: the next renewal fails, and doctor says so while the
    // certificate still works.
    let mut pebble = pebble;
    let _ = pebble.pebble.kill();
    let _ = pebble.pebble.wait();
    eventually(SECS(60), "a failed renewal", || d.log_text().contains("ACME: cannot obtain a certificate for meet.bedrud.test"));
    let (_, r) = doctor(&d.config);
    let f = finding(&r, "acme", "warn", "renewing the certificate for meet.bedrud.test (valid until");
    assert!(f["found"].as_str().unwrap().contains("fails: "), "{f}");
}

#[test]
fn acme_first_order_under_way() {
    // An ACME directory that accepts the connection and never answers.
    let dir_port = free_port();
    let _hang = Holder::tcp(dir_port);
    let lk = free_port();
    let d = Daemon::start(Opts {
        livekit_port: Some(lk),
        server_extra: format!("  host: {ACME_HOST}\n  acme:\n    email: ops@bedrud.test\n    directoryUrl: https://127.0.0.1:{dir_port}/dir\n"),
        livekit_extra: format!("  host: ws://127.0.0.1:{lk}\n"),
        wait_ready: false,
        ..Default::default()
    });
    eventually(SECS(30), "bedrud ready", || d.log_text().contains("bedrud ready"));
    let (_, r) = doctor(&d.config);
    assert_eq!(r["throughDaemon"], true, "{r:#}");
    finding(&r, "acme", "warn", "no certificate for meet.bedrud.test yet: the first order is under way");
}

#[test]
fn acme_failing_challenge_is_reported_and_retried() {
    let host = "fail.bedrud.test";
    let port = free_port();
    let pebble = Pebble::start(port, free_port(), 3600);
    // The name points elsewhere: Pebble's validation connects to 127.0.0.3, where nobody listens.
    pebble.set_address(host, "127.0.0.3");
    let mut d = acme_daemon(&pebble, port, host, (free_port(), free_port()));
    eventually(SECS(60), "the failed attempt", || d.log_text().contains("ACME: cannot obtain a certificate for fail.bedrud.test"));
    let log = d.log_text();
    let line = log.lines().find(|l| l.contains("ACME: cannot obtain")).unwrap();
    assert!(line.contains("validation failed") && line.contains("next in 60 s"), "{line}");
    eprintln!("failure as logged: {line}");
    // HTTPS still answers, with the self-signed stand-in.
    eventually(SECS(30), "bedrud ready", || d.log_text().contains("bedrud ready"));
    let (code, r) = doctor(&d.config);
    assert_eq!(code, 1, "{r:#}");
    let f = finding(&r, "acme", "fail", "no certificate for fail.bedrud.test yet: the last 1 attempt(s) failed: validation failed");
    assert!(f["fix"].as_str().unwrap().contains("resolve to this server"), "{f}");
    // Fixed DNS, and a reload retries at once instead of after the backoff.
    pebble.set_address(host, "127.0.0.1");
    d.signal(Signal::SIGHUP);
    eventually(SECS(60), "the certificate after the retry", || d.log_text().contains("ACME: certificate for fail.bedrud.test issued"));
    let (_, r) = doctor(&d.config);
    finding(&r, "acme", "ok", "certificate for fail.bedrud.test");
    assert_eq!(d.stop(), Some(0));
}

#[test]
fn acme_http01_on_its_own_port() {
    let (port, http_port) = (free_port(), free_port());
    let pebble = Pebble::start(free_port(), http_port, 3600);
    let lk = free_port();
    let d = Daemon::start(Opts {
        port: Some(port),
        livekit_port: Some(lk),
        server_extra: format!(
            "  host: {ACME_HOST}\n  acme:\n    directoryUrl: {}\n    caRoots: {}\n    challenge: http-01\n    httpPort: {http_port}\n",
            pebble.directory(),
            pebble.listener_cert.display()
        ),
        livekit_extra: format!("  host: ws://127.0.0.1:{lk}\n"),
        wait_ready: false,
        ..Default::default()
    });
    eventually(SECS(60), "the certificate", || d.log_text().contains("ACME: certificate for meet.bedrud.test issued"));
    let root = pebble.issuing_root();
    served_serial(&root, ACME_HOST, port).unwrap();
    // The plain port sends everything else to HTTPS.
    let r = reqwest::blocking::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .build()
        .unwrap()
        .get(format!("http://127.0.0.1:{http_port}/rooms?x=1"))
        .header("host", format!("{ACME_HOST}:{http_port}"))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 308);
    assert_eq!(r.headers()["location"], format!("https://{ACME_HOST}:{port}/rooms?x=1").as_str());
}
