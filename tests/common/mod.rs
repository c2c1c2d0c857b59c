//! Shared test support: the real livekit-server, egress worker and Python client from the
//! project's own install scripts, free loopback ports, and bounded waiting.
#![allow(dead_code)]

pub mod browser;
pub mod cluster;
pub mod daemon;
pub mod external;
pub mod participant;
pub mod signin;
pub mod tls;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs one of the project's setup scripts and returns the path it prints last.
fn script_path(script: &str, arg: Option<&str>) -> PathBuf {
    let mut cmd = Command::new(repo_root().join("scripts").join(script));
    if let Some(a) = arg {
        cmd.arg(a);
    }
    let out = cmd.output().unwrap_or_else(|e| panic!("cannot run scripts/{script}: {e}"));
    assert!(
        out.status.success(),
        "scripts/{script} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    PathBuf::from(text.lines().last().unwrap_or("").trim())
}

/// `$env` when set, else what `scripts/<script> [arg]` prints last; found once per process.
fn tool(cell: &'static OnceLock<PathBuf>, env: &str, script: &str, arg: Option<&str>) -> PathBuf {
    cell.get_or_init(|| match std::env::var_os(env) {
        Some(p) => PathBuf::from(p),
        None => script_path(script, arg),
    })
    .clone()
}

/// The pinned livekit-server (`BEDRUD_TEST_LIVEKIT`, else built by `scripts/install-livekit`).
pub fn livekit_binary() -> PathBuf {
    static P: OnceLock<PathBuf> = OnceLock::new();
    tool(&P, "BEDRUD_TEST_LIVEKIT", "install-livekit", None)
}

/// The older livekit-server of the compatibility matrix (v1.9.x).
pub fn livekit_binary_old() -> PathBuf {
    static P: OnceLock<PathBuf> = OnceLock::new();
    tool(&P, "BEDRUD_TEST_LIVEKIT_OLD", "install-livekit", Some("v1.9.12"))
}

/// Pebble, the ACME test server (`BEDRUD_TEST_PEBBLE`, else built by `scripts/install-pebble`);
/// `pebble-challtestsrv` is beside it.
pub fn pebble_binary() -> PathBuf {
    static P: OnceLock<PathBuf> = OnceLock::new();
    P.get_or_init(|| match std::env::var_os("BEDRUD_TEST_PEBBLE") {
        Some(p) => PathBuf::from(p),
        None => script_path("install-pebble", None),
    })
    .clone()
}

/// Python interpreter with the pinned `livekit` SDK (`scripts/setup-test-env`).
pub fn python() -> PathBuf {
    static P: OnceLock<PathBuf> = OnceLock::new();
    tool(&P, "BEDRUD_TEST_PYTHON", "setup-test-env", None)
}

/// The pinned LiveKit Egress worker (`BEDRUD_TEST_EGRESS`, else built by `scripts/install-egress`).
pub fn egress_binary() -> PathBuf {
    static P: OnceLock<PathBuf> = OnceLock::new();
    tool(&P, "BEDRUD_TEST_EGRESS", "install-egress", None)
}

/// Python interpreter with moto, the S3-compatible server (`scripts/setup-s3-server`).
pub fn s3_python() -> PathBuf {
    static P: OnceLock<PathBuf> = OnceLock::new();
    tool(&P, "BEDRUD_TEST_S3_PYTHON", "setup-s3-server", None)
}

pub fn participant_script() -> PathBuf {
    repo_root().join("tests/py/participant.py")
}

/// A port free for TCP and UDP on 127.0.0.1, handed out once per test process. Taken below the
/// kernel's ephemeral range (32768-60999), so that the outgoing connections of everything
/// running meanwhile (clients, browsers, livekit-server itself) cannot take it between this
/// check and the daemon's bind; each test process starts at its own offset.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    const FIRST: u32 = 20_000;
    const SPAN: u32 = 12_000;
    static NEXT: AtomicU32 = AtomicU32::new(u32::MAX);
    if NEXT.load(Ordering::Relaxed) == u32::MAX {
        let seed = std::process::id().wrapping_mul(2_654_435_761) ^ std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
        let _ = NEXT.compare_exchange(u32::MAX, seed % SPAN, Ordering::Relaxed, Ordering::Relaxed);
    }
    for _ in 0..SPAN {
        let port = (FIRST + NEXT.fetch_add(1, Ordering::Relaxed) % SPAN) as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() && std::net::UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port found on 127.0.0.1 between {FIRST} and {}", FIRST + SPAN);
}

/// Waits until `f` returns `Some`, checking every 50 ms, for at most `limit`.
pub fn wait_for<T>(limit: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        if start.elapsed() > limit {
            panic!("timed out after {limit:?} waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Process ids of every running process whose executable is `exe`.
pub fn pids_of(exe: &Path) -> Vec<u32> {
    let mut out = Vec::new();
    let Ok(dir) = std::fs::read_dir("/proc") else { return out };
    for e in dir.flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else { continue };
        if let Ok(target) = std::fs::read_link(e.path().join("exe")) {
            if target == exe {
                // Zombies keep their exe link only while alive; check state.
                let stat = std::fs::read_to_string(e.path().join("stat")).unwrap_or_default();
                if !stat.contains(") Z ") {
                    out.push(pid);
                }
            }
        }
    }
    out
}

/// Checks API answers (`{"op": "METHOD /path/template", "status", "body"}`) against the OpenAPI
/// document with tests/py/validate_openapi.py, which closes every object schema (undocumented
/// fields fail): the status is documented and a JSON body matches its schema. Panics with the
/// problems; returns the validator's summary line.
pub fn validate_answers(doc: &serde_json::Value, answers: Vec<serde_json::Value>) -> String {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("doc.json"), doc.to_string()).unwrap();
    std::fs::write(dir.path().join("answers.json"), serde_json::Value::Array(answers).to_string()).unwrap();
    let out = Command::new(python())
        .arg(repo_root().join("tests/py/validate_openapi.py"))
        .arg(dir.path().join("doc.json"))
        .arg(dir.path().join("answers.json"))
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(out.status.success(), "answers that do not match the document:\n{report}{}", String::from_utf8_lossy(&out.stderr));
    report
}
