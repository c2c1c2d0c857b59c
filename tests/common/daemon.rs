//! Boots the real `bedrud` binary on free loopback ports with a temporary state directory and
//! a real livekit-server child, and kills both on drop.
#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::{free_port, livekit_binary, wait_for};

pub const BIN: &str = env!("CARGO_BIN_EXE_bedrud");
/// Fixed test key pair (so tests can sign webhooks and check tokens).
pub const API_KEY: &str = "APItestkey";
pub const API_SECRET: &str = "test-secret-0123456789abcdefghijklmnopqrstuvwxyz";

/// How to start the daemon.
pub struct Opts {
    /// YAML appended under the generated config (top-level sections must not repeat ones
    /// written here: use `server_extra`, `livekit_extra`, `auth` for those).
    pub server_extra: String,
    pub livekit_extra: String,
    pub auth: String,
    pub with_keys: bool,
    pub external: Option<(u16, String)>,
    pub env: Vec<(String, String)>,
    pub wait_ready: bool,
    pub livekit_binary: Option<PathBuf>,
    /// API port (default: a free one).
    pub port: Option<u16>,
    /// LiveKit's HTTP port, `livekit.port` (default: a free one).
    pub livekit_port: Option<u16>,
    /// `logging.format` (default `text`).
    pub log_format: Option<String>,
    /// `logging.level` (default `debug,livekit=info`).
    pub log_level: Option<String>,
    /// Variables removed from the daemon's environment (after the harness's own removals).
    pub env_remove: Vec<String>,
    /// Top-level sections appended to the config (`smtp:` …).
    pub extra: String,
}

impl Default for Opts {
    fn default() -> Self {
        Self {
            server_extra: String::new(),
            livekit_extra: String::new(),
            auth: String::new(),
            with_keys: true,
            external: None,
            env: Vec::new(),
            wait_ready: true,
            livekit_binary: None,
            port: None,
            livekit_port: None,
            log_format: None,
            log_level: None,
            env_remove: Vec::new(),
            extra: String::new(),
        }
    }
}

pub struct Daemon {
    pub child: Option<Child>,
    pub dir: tempfile::TempDir,
    pub port: u16,
    pub lk_port: u16,
    pub config: PathBuf,
    pub log: PathBuf,
    env: Vec<(String, String)>,
    env_remove: Vec<String>,
    pub http: reqwest::blocking::Client,
}

pub fn http_client() -> reqwest::blocking::Client {
    // Plain HTTP only, but reqwest wants a TLS provider chosen.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(30))
        .no_proxy()
        .build()
        .expect("http client")
}

impl Daemon {
    /// Writes the config and starts the daemon (waiting for `/api/ready` unless told not to).
    pub fn start(opts: Opts) -> Daemon {
        let wait = opts.wait_ready;
        let mut d = Daemon::configure(opts);
        d.spawn();
        if wait {
            d.wait_ready();
        }
        d
    }

    /// Writes the config and state directory without starting anything (for the CLI alone,
    /// or to start later with [`Daemon::spawn`]).
    pub fn configure(opts: Opts) -> Daemon {
        let dir = tempfile::tempdir().expect("tempdir");
        let port = opts.port.unwrap_or_else(free_port);
        let (lk_port, tcp, udp) = (opts.livekit_port.unwrap_or_else(free_port), free_port(), free_port());
        let binary = opts.livekit_binary.clone().unwrap_or_else(livekit_binary);
        let keys = if opts.with_keys { format!("  apiKey: {API_KEY}\n  apiSecret: {API_SECRET}\n") } else { String::new() };
        let livekit = match &opts.external {
            Some((p, _)) => format!(
                "livekit:\n  external: true\n  host: ws://127.0.0.1:{p}\n  internalHost: http://127.0.0.1:{p}\n{keys}{}",
                opts.livekit_extra
            ),
            None => format!(
                "livekit:\n  binary: {}\n  port: {lk_port}\n  tcpPort: {tcp}\n  udpPort: {udp}\n  nodeIP: 127.0.0.1\n  interfaces: [lo]\n  enableLoopbackCandidate: true\n  stopTimeout: 3s\n{keys}{}",
                binary.display(),
                opts.livekit_extra
            ),
        };
        let config = dir.path().join("config.yaml");
        let text = format!(
            "server:\n  bind: 127.0.0.1\n  port: {port}\n{}database:\n  path: {}/bedrud.redb\n{livekit}auth:\n{}logging:\n  level: {}\n  format: {}\n{}",
            opts.server_extra,
            dir.path().display(),
            if opts.auth.is_empty() { "  registration: false\n".to_string() } else { opts.auth.clone() },
            opts.log_level.as_deref().unwrap_or("debug,livekit=info"),
            opts.log_format.as_deref().unwrap_or("text"),
            opts.extra,
        );
        std::fs::write(&config, text).expect("write config");
        std::fs::create_dir_all(dir.path().join("run")).expect("run dir");
        let mut env = opts.env.clone();
        env.push(("RUNTIME_DIRECTORY".into(), dir.path().join("run").display().to_string()));
        Daemon {
            child: None,
            log: dir.path().join("bedrud.log"),
            dir,
            port,
            lk_port: opts.external.as_ref().map(|e| e.0).unwrap_or(lk_port),
            config,
            env,
            env_remove: opts.env_remove.clone(),
            http: http_client(),
        }
    }

    /// Starts the process (again) with the same config and state.
    pub fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&self.log).expect("log file");
        let mut cmd = Command::new(BIN);
        cmd.arg("run").arg("--config").arg(&self.config);
        cmd.env_remove("NOTIFY_SOCKET").env_remove("JOURNAL_STREAM").env_remove("BEDRUD_CONFIG");
        for k in &self.env_remove {
            cmd.env_remove(k);
        }
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        cmd.stdout(Stdio::null()).stderr(log);
        self.child = Some(cmd.spawn().expect("spawn bedrud"));
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(|c| c.id()).unwrap_or(0)
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until `/api/ready` answers 200 (or panics with the log).
    pub fn wait_ready(&mut self) {
        let start = Instant::now();
        loop {
            if let Some(c) = self.child.as_mut() {
                if let Ok(Some(st)) = c.try_wait() {
                    panic!("bedrud exited early ({st}):\n{}", self.log_text());
                }
            }
            if let Ok(r) = self.http.get(self.url("/api/ready")).send() {
                if r.status().as_u16() == 200 {
                    return;
                }
            }
            if start.elapsed() > Duration::from_secs(45) {
                panic!("bedrud not ready after 45 s:\n{}", self.log_text());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Sends a request with an optional bearer token and JSON body; panics if it cannot.
    fn send(&self, method: &str, path: &str, token: Option<&str>, body: Option<Value>) -> reqwest::blocking::Response {
        let m = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut req = self.http.request(m, self.url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        req.send().unwrap_or_else(|e| panic!("{method} {path}: {e}"))
    }

    /// Any request; returns status and JSON body (Null when empty).
    pub fn api(&self, method: &str, path: &str, token: Option<&str>, body: Option<Value>) -> (u16, Value) {
        let resp = self.send(method, path, token, body);
        let status = resp.status().as_u16();
        let text = resp.text().unwrap_or_default();
        let v = if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap_or(Value::String(text)) };
        (status, v)
    }

    pub fn get(&self, path: &str, token: Option<&str>) -> (u16, Value) {
        self.api("GET", path, token, None)
    }

    pub fn post(&self, path: &str, token: Option<&str>, body: Value) -> (u16, Value) {
        self.api("POST", path, token, Some(body))
    }

    /// Only the status of a request (the body is not read: for event streams).
    pub fn status(&self, method: &str, path: &str, token: Option<&str>, body: Option<Value>) -> u16 {
        self.send(method, path, token, body).status().as_u16()
    }

    /// Opens a server-sent event stream; its events arrive through the returned reader.
    /// Panics unless the answer is 200 `text/event-stream`.
    pub fn events(&self, path: &str, token: Option<&str>) -> EventReader {
        let _ = rustls::crypto::ring::default_provider().install_default();
        // No overall time limit: the stream stays open as long as the test reads it.
        let client = reqwest::blocking::Client::builder().timeout(None).no_proxy().build().expect("http client");
        let mut req = client.get(self.url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().unwrap_or_else(|e| panic!("GET {path}: {e}"));
        let status = resp.status().as_u16();
        assert_eq!(status, 200, "GET {path}: {status} {}", resp.text().unwrap_or_default());
        assert_eq!(resp.headers()["content-type"], "text/event-stream");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            use std::io::BufRead;
            let mut event = String::from("message");
            for line in std::io::BufReader::new(resp).lines().map_while(Result::ok) {
                if let Some(e) = line.strip_prefix("event: ") {
                    event = e.to_string();
                } else if let Some(d) = line.strip_prefix("data: ") {
                    let v = serde_json::from_str(d).unwrap_or(Value::String(d.to_string()));
                    if tx.send((std::mem::replace(&mut event, "message".into()), v)).is_err() {
                        break;
                    }
                }
            }
        });
        EventReader { rx, path: path.to_string() }
    }

    /// Runs the CLI against this daemon's config; returns (exit code, stdout, stderr).
    pub fn cli(&self, args: &[&str], stdin: Option<&str>) -> (i32, String, String) {
        cli(&self.config, args, stdin)
    }

    /// Creates a user through the CLI (which talks to the running daemon).
    pub fn create_user(&self, name: &str, password: &str, admin: bool) {
        let mut args = vec!["user", "create", name, "--password-stdin"];
        if admin {
            args.push("--admin");
        }
        let (code, out, err) = self.cli(&args, Some(password));
        assert_eq!(code, 0, "user create failed: {out} {err}");
    }

    pub fn login(&self, name: &str, password: &str) -> String {
        let (s, v) = self.post("/api/auth/login", None, json!({ "username": name, "password": password }));
        assert_eq!(s, 200, "login {name}: {v}");
        v["token"].as_str().expect("token").to_string()
    }

    /// Admin `admin`/`admin-password` plus its token.
    pub fn admin(&self) -> String {
        self.create_user("admin", "admin-password", true);
        self.login("admin", "admin-password")
    }

    /// SIGTERM and wait (bounded); returns the exit status code.
    pub fn stop(&mut self) -> Option<i32> {
        let mut child = self.child.take()?;
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), nix::sys::signal::Signal::SIGTERM);
        let start = Instant::now();
        loop {
            if let Ok(Some(st)) = child.try_wait() {
                return st.code();
            }
            if start.elapsed() > Duration::from_secs(30) {
                let _ = child.kill();
                let _ = child.wait();
                panic!("bedrud did not stop within 30 s after SIGTERM:\n{}", self.log_text());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL and reap.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Waits (bounded) for the process to end by itself; its exit code (`None`: killed by a
    /// signal). Panics with the log when it is still running after `limit`.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<i32> {
        let mut child = self.child.take().expect("bedrud is not running");
        let start = Instant::now();
        loop {
            if let Ok(Some(st)) = child.try_wait() {
                return st.code();
            }
            if start.elapsed() > limit {
                let _ = child.kill();
                let _ = child.wait();
                panic!("bedrud still running after {limit:?}:\n{}", self.log_text());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends `sig` to the daemon.
    pub fn signal(&self, sig: nix::sys::signal::Signal) {
        let pid = self.pid();
        assert!(pid != 0, "bedrud is not running");
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), sig).expect("signal bedrud");
    }

    /// `$RUNTIME_DIRECTORY` of the daemon (where the generated LiveKit config lives).
    pub fn runtime_dir(&self) -> PathBuf {
        self.dir.path().join("run")
    }

    /// The generated LiveKit configs (`bedrud-livekit-*.yaml`) in the runtime directory.
    pub fn temp_configs(&self) -> Vec<PathBuf> {
        let mut out: Vec<PathBuf> = std::fs::read_dir(self.runtime_dir())
            .map(|d| d.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        out.retain(|p| {
            let n = p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            n.starts_with("bedrud-livekit-") && n.ends_with(".yaml")
        });
        out.sort();
        out
    }

    /// The livekit-server child's pid, from the admin overview.
    pub fn livekit_pid(&self, admin: &str) -> u32 {
        let (_, v) = self.get("/api/admin/overview", Some(admin));
        v["livekit"]["pid"].as_u64().unwrap_or(0) as u32
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.kill9();
    }
}

pub fn cli(config: &Path, args: &[&str], stdin: Option<&str>) -> (i32, String, String) {
    let mut cmd = Command::new(BIN);
    cmd.args(args).arg("--config").arg(config);
    cmd.env_remove("NOTIFY_SOCKET").env_remove("BEDRUD_CONFIG");
    cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn cli");
    if let Some(s) = stdin {
        let mut i = child.stdin.take().expect("stdin");
        let _ = writeln!(i, "{s}");
    }
    drop(child.stdin.take());
    let out = child.wait_with_output().expect("cli output");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Decodes a JWT's claims without verifying (the test checks them separately).
pub fn jwt_claims(token: &str) -> Value {
    use base64::Engine;
    let part = token.split('.').nth(1).expect("jwt payload");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(part).expect("base64");
    serde_json::from_slice(&bytes).expect("claims json")
}

/// Signs an HS256 JWT with `claims` (for webhook tests).
pub fn sign_jwt(claims: &Value, secret: &str) -> String {
    use base64::Engine;
    use hmac::Mac;
    let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
    let head = b64(br#"{"alg":"HS256","typ":"JWT"}"#);
    let body = b64(claims.to_string().as_bytes());
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).expect("hmac key");
    mac.update(format!("{head}.{body}").as_bytes());
    format!("{head}.{body}.{}", b64(&mac.finalize().into_bytes()))
}

/// The Authorization value LiveKit would send for `body`.
pub fn webhook_auth(body: &str, key: &str, secret: &str, exp_offset: i64) -> String {
    use base64::Engine;
    use sha2::Digest;
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    let sha = base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(body.as_bytes()));
    sign_jwt(&json!({ "iss": key, "nbf": now - 5, "exp": now + exp_offset, "sha256": sha }), secret)
}

/// Runs every (method, path, body, expected status per caller) case as each caller; the
/// mismatches, one line each. Event streams (paths ending in `/events` or `/wait`) are judged
/// by their status only.
pub fn authorization_mismatches<const N: usize>(d: &Daemon, callers: &[(&str, Option<&str>); N], cases: &[(&str, &str, Option<Value>, [u16; N])]) -> Vec<String> {
    let mut failures = Vec::new();
    for (method, path, body, expected) in cases {
        for (i, (who, tok)) in callers.iter().enumerate() {
            let (s, v) = if path.ends_with("/events") || path.ends_with("/wait") {
                (d.status(method, path, *tok, body.clone()), Value::Null)
            } else {
                d.api(method, path, *tok, body.clone())
            };
            if s != expected[i] {
                failures.push(format!("{method} {path} as {who}: {s} (expected {}) {v}", expected[i]));
            }
        }
    }
    failures
}

/// Waits until `f` is true (bounded).
pub fn eventually(limit: Duration, what: &str, mut f: impl FnMut() -> bool) {
    wait_for(limit, what, || f().then_some(()))
}

/// A LiveKit-shaped participant event (protojson: int64 as strings).
pub fn participant_event(id: &str, kind: &str, room: &str, identity: &str, psid: &str) -> String {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    json!({
        "event": kind,
        "id": id,
        "createdAt": now.to_string(),
        "room": { "sid": format!("RM_{room}"), "name": room },
        "participant": { "sid": psid, "identity": identity, "name": identity, "joinedAt": now.to_string() }
    })
    .to_string()
}

/// The events of one server-sent event stream, as (event name, JSON data). Dropping it closes
/// the connection at the next line the server sends.
pub struct EventReader {
    rx: std::sync::mpsc::Receiver<(String, Value)>,
    path: String,
}

impl EventReader {
    /// The next event (panics after `limit`).
    pub fn next(&self, limit: Duration) -> (String, Value) {
        self.rx.recv_timeout(limit).unwrap_or_else(|_| panic!("no event on {} within {limit:?}", self.path))
    }

    /// The data of the first event for which `want` holds, skipping others (panics after `limit`).
    pub fn until(&self, limit: Duration, what: &str, want: impl Fn(&str, &Value) -> bool) -> Value {
        let start = Instant::now();
        let mut seen = Vec::new();
        loop {
            let left = limit.checked_sub(start.elapsed()).unwrap_or_default();
            match self.rx.recv_timeout(left.max(Duration::from_millis(1))) {
                Ok((e, v)) if want(&e, &v) => return v,
                Ok(other) => seen.push(other),
                Err(_) => panic!("{what}: not seen on {} within {limit:?}; seen: {seen:?}", self.path),
            }
        }
    }
}
