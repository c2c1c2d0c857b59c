//! The LiveKit supervisor against real livekit-server builds (v1.13.5 and v1.9.12), on
//! loopback and free ports. Figures (time to ready, kill to ready) are printed, not asserted.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bedrud::config::{Config, TlsConfig};
use bedrud::livekit::binary::{self, Version};
use bedrud::livekit::configgen::{self, GenInput};
use bedrud::livekit::status::{LivekitState, LivekitStatus, Mode, StatusRx};
use bedrud::livekit::supervisor::{
    self, LaunchParams, RestartPolicy, SupervisorError, SupervisorHandle,
};
use bedrud::livekit::ApiKeys;
use common::{free_port, livekit_binary, livekit_binary_old, pids_of, wait_for};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

const SECRET: &str = "0123456789abcdef0123456789abcdef0123";
const HELPER_ENV: &str = "BEDRUD_TEST_SUPERVISOR_HELPER_DIR";

fn keys() -> ApiKeys {
    ApiKeys { key: "testkey".into(), secret: SECRET.into() }
}

/// `n` ports free on 127.0.0.1 (TCP and UDP), all different.
fn ports(n: usize) -> Vec<u16> {
    let mut out: Vec<u16> = Vec::new();
    while out.len() < n {
        let p = free_port();
        if !out.contains(&p) {
            out.push(p);
        }
    }
    out
}

/// Embedded config on loopback and free ports.
fn embedded_config(bin: &Path) -> Config {
    let mut c = Config::default();
    let p = ports(3);
    let lk = &mut c.livekit;
    lk.binary = Some(bin.to_path_buf());
    lk.port = p[0];
    lk.tcp_port = p[1];
    lk.udp_port = p[2];
    lk.node_ip = Some("127.0.0.1".into());
    lk.interfaces = vec!["lo".into()];
    lk.enable_loopback_candidate = true;
    lk.start_timeout = Duration::from_secs(30);
    lk.stop_timeout = Duration::from_secs(5);
    lk.health_interval = Duration::from_secs(1);
    c
}

fn params(config: Config, dir: &Path) -> LaunchParams {
    let mut p = LaunchParams::new(Arc::new(config), keys(), "http://127.0.0.1:9/api/livekit/webhook");
    p.runtime_dir = Some(dir.to_path_buf());
    p
}

struct Sup {
    handle: SupervisorHandle,
    rx: StatusRx,
    _shutdown: CancellationToken,
}

/// bedrud's log lines (and LiveKit's, forwarded) in the test output; shown for failing tests.
fn init_logs() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()))
        .with_test_writer()
        .try_init();
}

async fn start(p: LaunchParams) -> Result<Sup, SupervisorError> {
    init_logs();
    let (tx, rx) = watch::channel(LivekitStatus::new(Mode::Embedded));
    let shutdown = CancellationToken::new();
    let handle = supervisor::start(p, tx, shutdown.clone()).await?;
    Ok(Sup { handle, rx, _shutdown: shutdown })
}

async fn wait_state(
    rx: &mut StatusRx,
    limit: Duration,
    what: &str,
    pred: impl Fn(&LivekitStatus) -> bool,
) -> LivekitStatus {
    let found = tokio::time::timeout(limit, async {
        loop {
            {
                let s = rx.borrow_and_update();
                if pred(&s) {
                    return Some(s.clone());
                }
            }
            if rx.changed().await.is_err() {
                return None;
            }
        }
    })
    .await;
    match found {
        Ok(Some(s)) => s,
        Ok(None) => panic!("status channel closed waiting for {what}; last: {:?}", *rx.borrow()),
        Err(_) => panic!("timed out after {limit:?} waiting for {what}; status: {:?}", *rx.borrow()),
    }
}

async fn get_root(port: u16) -> Result<(u16, String), String> {
    let c = bedrud::livekit::http::client(false, Duration::from_secs(2));
    let r = c.get(format!("http://127.0.0.1:{port}/")).send().await.map_err(|e| e.to_string())?;
    let status = r.status().as_u16();
    Ok((status, r.text().await.map_err(|e| e.to_string())?))
}

fn temp_configs(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.path())
                .filter(|p| {
                    let n = p.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
                    n.starts_with(configgen::TEMP_PREFIX) && n.ends_with(configgen::TEMP_SUFFIX)
                })
                .collect()
        })
        .unwrap_or_default()
}

fn sigkill(pid: u32) {
    let _ = kill(Pid::from_raw(pid as i32), Signal::SIGKILL);
}

/// A self-signed certificate for `name` (openssl), key mode 0600.
fn self_signed(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    let cert = dir.join("cert.pem");
    let key = dir.join("key.pem");
    let out = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2"])
        .args(["-subj", &format!("/CN={name}"), "-addext", &format!("subjectAltName=DNS:{name}")])
        .args(["-addext", "basicConstraints=critical,CA:FALSE"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl must be installed for the TLS tests");
    assert!(out.status.success(), "openssl failed: {}", String::from_utf8_lossy(&out.stderr));
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    (cert, key)
}

// ---------------------------------------------------------------------------------------------
// Start, ready, stop

async fn start_ready_stop(bin: PathBuf, label: &str) {
    let dir = tempfile::tempdir().unwrap();
    let config = embedded_config(&bin);
    let port = config.livekit.port;
    let t0 = Instant::now();
    let mut sup = start(params(config, dir.path())).await.expect("preflight");
    let st = wait_state(&mut sup.rx, Duration::from_secs(40), "ready", |s| s.is_ready()).await;
    let took = t0.elapsed();
    eprintln!("FIGURE {label}: start() to Ready in {} ms", took.as_millis());

    assert_eq!(st.ready_count, 1);
    assert_eq!(st.restarts, 0);
    assert_eq!(st.node_ip.as_deref(), Some("127.0.0.1"));
    let version = binary::version(&bin).await.unwrap();
    assert_eq!(st.version, Some(version.to_string()));
    let pid = sup.handle.pid().expect("pid while running");
    assert_eq!(st.pid, Some(pid));
    assert!(pids_of(&bin).contains(&pid));
    assert_eq!(get_root(port).await.unwrap(), (200, "OK".to_string()));

    let file = sup.handle.config_path().expect("generated config path");
    assert_eq!(file.parent(), Some(dir.path()));
    let meta = std::fs::metadata(&file).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    let text = std::fs::read_to_string(&file).unwrap();
    // Every key bedrud writes was accepted by this version (it is ready).
    for key in ["enable_loopback_candidate: true", "includes:", "node_ip: 127.0.0.1", "webhook:", "empty_timeout:"] {
        assert!(text.contains(key), "{key} missing in\n{text}");
    }
    assert!(!text.contains("bind_addresses"));

    let Sup { handle, rx, .. } = sup;
    handle.stop().await;
    assert!(!pids_of(&bin).contains(&pid), "livekit-server {pid} still running after stop()");
    assert!(!file.exists(), "temp config left behind");
    assert!(temp_configs(dir.path()).is_empty());
    assert_eq!(rx.borrow().state, LivekitState::Stopped);
    assert_eq!(rx.borrow().pid, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_ready_stop_v1_13() {
    start_ready_stop(livekit_binary(), "v1.13.5").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_ready_stop_v1_9() {
    start_ready_stop(livekit_binary_old(), "v1.9.12").await;
}

/// `rtc.port_range_start/end` instead of `rtc.udp_port`, accepted by both versions.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn udp_port_range_both_versions() {
    for bin in [livekit_binary(), livekit_binary_old()] {
        let dir = tempfile::tempdir().unwrap();
        let mut config = embedded_config(&bin);
        let start_port = config.livekit.udp_port;
        config.livekit.udp_port_range_start = Some(start_port);
        config.livekit.udp_port_range_end = Some(start_port.saturating_add(20));
        let mut sup = start(params(config, dir.path())).await.unwrap();
        wait_state(&mut sup.rx, Duration::from_secs(40), "ready", |s| s.is_ready()).await;
        let text = std::fs::read_to_string(sup.handle.config_path().unwrap()).unwrap();
        assert!(text.contains(&format!("port_range_start: {start_port}")) && !text.contains("udp_port"), "{text}");
        let Sup { handle, .. } = sup;
        handle.stop().await;
    }
}

/// Cancelling bedrud's shutdown token stops the child too, without `stop()`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_token_stops_child() {
    let bin = livekit_binary();
    let dir = tempfile::tempdir().unwrap();
    let (tx, mut rx) = watch::channel(LivekitStatus::new(Mode::Embedded));
    let shutdown = CancellationToken::new();
    let handle = supervisor::start(params(embedded_config(&bin), dir.path()), tx, shutdown.clone())
        .await
        .unwrap();
    wait_state(&mut rx, Duration::from_secs(40), "ready", |s| s.is_ready()).await;
    let pid = handle.pid().unwrap();
    shutdown.cancel();
    wait_state(&mut rx, Duration::from_secs(20), "stopped", |s| s.state == LivekitState::Stopped).await;
    assert!(!pids_of(&bin).contains(&pid));
    assert!(temp_configs(dir.path()).is_empty());
    // stop() after the token was cancelled is harmless.
    handle.stop().await;
}

// ---------------------------------------------------------------------------------------------
// Crashes and restarts

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_restarts_v1_13() {
    let bin = livekit_binary();
    let dir = tempfile::tempdir().unwrap();
    let mut sup = start(params(embedded_config(&bin), dir.path())).await.unwrap();
    wait_state(&mut sup.rx, Duration::from_secs(40), "ready", |s| s.is_ready()).await;
    let pid1 = sup.handle.pid().unwrap();
    let file1 = sup.handle.config_path().unwrap();

    let t0 = Instant::now();
    sigkill(pid1);
    let st = wait_state(&mut sup.rx, Duration::from_secs(10), "restarting", |s| {
        matches!(s.state, LivekitState::Restarting { .. })
    })
    .await;
    match &st.state {
        LivekitState::Restarting { attempt, last_error } => {
            assert_eq!(*attempt, 1);
            assert!(last_error.contains("SIGKILL"), "{last_error}");
        }
        other => panic!("{other:?}"),
    }
    let st = wait_state(&mut sup.rx, Duration::from_secs(40), "ready again", |s| s.is_ready()).await;
    let took = t0.elapsed();
    eprintln!(
        "FIGURE v1.13.5: kill -9 to Ready again in {} ms (includes the {} ms first backoff)",
        took.as_millis(),
        RestartPolicy::default().initial.as_millis()
    );
    assert_eq!(st.restarts, 1);
    assert_eq!(st.ready_count, 2);
    let pid2 = sup.handle.pid().unwrap();
    assert_ne!(pid1, pid2);
    assert!(!file1.exists(), "the dead child's config was not removed");
    assert!(sup.handle.config_path().unwrap().exists());
    let Sup { handle, .. } = sup;
    handle.stop().await;
    assert!(!pids_of(&bin).contains(&pid2));
    assert!(temp_configs(dir.path()).is_empty());
}

/// 20 kills in a row, each right after the child was spawned: every one is restarted, the
/// attempt number grows and so does the delay, up to the cap.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_kills_back_off() {
    let bin = livekit_binary();
    let dir = tempfile::tempdir().unwrap();
    let policy = RestartPolicy {
        initial: Duration::from_millis(50),
        max: Duration::from_millis(800),
        reset_after: Duration::from_secs(60),
    };
    let mut p = params(embedded_config(&bin), dir.path());
    p.restart_policy = policy;
    let mut sup = start(p).await.unwrap();
    wait_state(&mut sup.rx, Duration::from_secs(40), "ready", |s| s.is_ready()).await;

    let t_all = Instant::now();
    let mut pid = sup.handle.pid().unwrap();
    let mut gaps = Vec::new();
    for i in 1..=20u32 {
        sigkill(pid);
        let killed = Instant::now();
        let st = wait_state(&mut sup.rx, Duration::from_secs(10), "restarting", |s| {
            matches!(s.state, LivekitState::Restarting { attempt, .. } if attempt == i)
        })
        .await;
        assert_eq!(st.restarts, i);
        let h = &sup.handle;
        let next = tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                if let Some(p) = h.pid() {
                    if p != pid {
                        return p;
                    }
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        })
        .await
        .unwrap_or_else(|_| panic!("no restart after kill {i}"));
        gaps.push(killed.elapsed());
        pid = next;
    }
    let ms: Vec<u128> = gaps.iter().map(|g| g.as_millis()).collect();
    eprintln!("FIGURE 20 kills: kill-to-respawn gaps (ms) {ms:?}; total {} ms", t_all.elapsed().as_millis());
    for (i, g) in gaps.iter().enumerate() {
        let expected = policy.delay(i as u32 + 1);
        assert!(*g >= expected, "gap {} ({g:?}) shorter than the backoff {expected:?}", i + 1);
    }
    assert!(gaps[19] > gaps[0] * 4, "backoff did not grow: {ms:?}");
    assert_eq!(policy.delay(20), policy.max);

    // Left alone, it comes back.
    let st = wait_state(&mut sup.rx, Duration::from_secs(40), "ready after the kills", |s| s.is_ready()).await;
    assert_eq!(st.restarts, 20);
    let last = sup.handle.pid().unwrap();
    let Sup { handle, .. } = sup;
    handle.stop().await;
    assert!(!pids_of(&bin).contains(&last));
    assert!(temp_configs(dir.path()).is_empty());
}

/// A child that stops answering (SIGSTOP) is killed after `healthFailures` failed probes and
/// restarted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hung_child_is_killed_and_restarted() {
    let bin = livekit_binary();
    let dir = tempfile::tempdir().unwrap();
    let mut config = embedded_config(&bin);
    config.livekit.health_interval = Duration::from_millis(300);
    config.livekit.health_failures = 2;
    let mut sup = start(params(config, dir.path())).await.unwrap();
    wait_state(&mut sup.rx, Duration::from_secs(40), "ready", |s| s.is_ready()).await;
    let pid = sup.handle.pid().unwrap();
    let t0 = Instant::now();
    kill(Pid::from_raw(pid as i32), Signal::SIGSTOP).unwrap();
    let st = wait_state(&mut sup.rx, Duration::from_secs(20), "restarting", |s| {
        matches!(s.state, LivekitState::Restarting { .. })
    })
    .await;
    let LivekitState::Restarting { last_error, .. } = &st.state else { unreachable!() };
    assert!(last_error.contains("stopped answering health checks (2 in a row"), "{last_error}");
    assert!(!pids_of(&bin).contains(&pid), "the hung child was not killed");
    wait_state(&mut sup.rx, Duration::from_secs(40), "ready again", |s| s.is_ready()).await;
    eprintln!("FIGURE hung child: SIGSTOP to Ready again in {} ms", t0.elapsed().as_millis());
    assert_ne!(sup.handle.pid(), Some(pid));
    let Sup { handle, .. } = sup;
    handle.stop().await;
}

/// A child that ignores SIGTERM gets the second SIGTERM after `stopTimeout`, then SIGKILL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_escalates_to_sigkill() {
    let bin = livekit_binary();
    let dir = tempfile::tempdir().unwrap();
    let mut config = embedded_config(&bin);
    config.livekit.stop_timeout = Duration::from_secs(1);
    config.livekit.health_interval = Duration::from_secs(60);
    let mut sup = start(params(config, dir.path())).await.unwrap();
    wait_state(&mut sup.rx, Duration::from_secs(40), "ready", |s| s.is_ready()).await;
    let pid = sup.handle.pid().unwrap();
    // A stopped process leaves SIGTERM pending; only SIGKILL ends it.
    kill(Pid::from_raw(pid as i32), Signal::SIGSTOP).unwrap();
    let t0 = Instant::now();
    let Sup { handle, .. } = sup;
    handle.stop().await;
    let took = t0.elapsed();
    assert!(!pids_of(&bin).contains(&pid));
    assert!(took >= Duration::from_secs(4), "SIGKILL came before grace + forced-stop wait: {took:?}");
    assert!(took < Duration::from_secs(10), "{took:?}");
    assert!(temp_configs(dir.path()).is_empty());
}

/// A static `livekit.configPath` is passed as is: no generated file, its port is probed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn static_config_starts() {
    let bin = livekit_binary();
    let dir = tempfile::tempdir().unwrap();
    let (path, port) = static_config(dir.path(), "");
    let mut config = embedded_config(&bin);
    config.livekit.config_path = Some(path);
    let mut sup = start(params(config, dir.path())).await.unwrap();
    wait_state(&mut sup.rx, Duration::from_secs(40), "ready", |s| s.is_ready()).await;
    assert_eq!(sup.handle.config_path(), None);
    assert!(temp_configs(dir.path()).is_empty());
    assert_eq!(get_root(port).await.unwrap(), (200, "OK".to_string()));
    let info = configgen::read_static(&dir.path().join("livekit.yaml")).unwrap();
    assert_eq!(info.port, port);
    assert_eq!(info.keys, vec![("testkey".to_string(), SECRET.to_string())]);
    let Sup { handle, .. } = sup;
    handle.stop().await;
}

/// A port taken while LiveKit is down: LiveKit's own "address already in use" becomes the
/// same error as the preflight's, and it recovers once the port is free.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn port_taken_during_restart_is_named() {
    let bin = livekit_binary();
    let dir = tempfile::tempdir().unwrap();
    let config = embedded_config(&bin);
    let port = config.livekit.port;
    let mut p = params(config, dir.path());
    p.restart_policy = RestartPolicy {
        initial: Duration::from_millis(1500),
        max: Duration::from_millis(1500),
        reset_after: Duration::from_secs(60),
    };
    let mut sup = start(p).await.unwrap();
    wait_state(&mut sup.rx, Duration::from_secs(40), "ready", |s| s.is_ready()).await;
    sigkill(sup.handle.pid().unwrap());
    wait_state(&mut sup.rx, Duration::from_secs(10), "restarting", |s| matches!(s.state, LivekitState::Restarting { .. })).await;
    let squatter = wait_for(Duration::from_secs(5), "binding the port", || {
        std::net::TcpListener::bind(("0.0.0.0", port)).ok()
    });
    let st = wait_state(&mut sup.rx, Duration::from_secs(20), "second restart", |s| {
        matches!(s.state, LivekitState::Restarting { attempt: 2, .. })
    })
    .await;
    let LivekitState::Restarting { last_error, .. } = &st.state else { unreachable!() };
    assert_eq!(
        last_error,
        &format!("TCP port {port} is already in use (livekit.port); stop the other process or set livekit.port to a free port")
    );
    drop(squatter);
    wait_state(&mut sup.rx, Duration::from_secs(40), "ready after the port was freed", |s| s.is_ready()).await;
    let Sup { handle, .. } = sup;
    handle.stop().await;
}

// ---------------------------------------------------------------------------------------------
// Failures carry LiveKit's own message

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn port_in_use_is_a_preflight_error() {
    let bin = livekit_binary();
    let dir = tempfile::tempdir().unwrap();
    let config = embedded_config(&bin);
    let port = config.livekit.port;
    let l = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
    let e = start(params(config.clone(), dir.path())).await.err().expect("must fail");
    assert!(matches!(e, SupervisorError::PortInUse { port: p, .. } if p == port), "{e:?}");
    assert_eq!(
        e.to_string(),
        format!("TCP port {port} is already in use (livekit.port); stop the other process or set livekit.port to a free port")
    );
    drop(l);
    let udp = config.livekit.udp_port;
    let u = std::net::UdpSocket::bind(("127.0.0.1", udp)).unwrap();
    let e = start(params(config, dir.path())).await.err().expect("must fail");
    assert!(e.to_string().starts_with(&format!("UDP port {udp} is already in use (livekit.udpPort)")), "{e}");
    drop(u);
    assert!(temp_configs(dir.path()).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_binary_lists_every_place() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = embedded_config(Path::new("/nonexistent/bin/livekit-server"));
    config.livekit.binary = Some("/nonexistent/bin/livekit-server".into());
    let e = binary::find_in(
        config.livekit.binary.as_deref(),
        Some("/nonexistent/env/livekit-server".into()),
        Path::new("/nonexistent/usr/lib/bedrud/livekit-server"),
        Some("/nonexistent/a:/nonexistent/b".into()),
    )
    .unwrap_err();
    let text = e.to_string();
    for needle in [
        "livekit.binary (/nonexistent/bin/livekit-server): missing",
        "$BEDRUD_LIVEKIT_BINARY (/nonexistent/env/livekit-server): missing",
        "/nonexistent/usr/lib/bedrud/livekit-server): missing",
        "livekit-server on PATH: missing in every PATH directory (/nonexistent/a:/nonexistent/b)",
        "scripts/install-livekit",
        "/usr/lib/bedrud/livekit-server",
        "set livekit.binary",
    ] {
        assert!(text.contains(needle), "{needle:?} missing in:\n{text}");
    }
    // Through start(), when this machine has no other livekit-server to fall back on.
    let elsewhere = std::env::var_os("BEDRUD_LIVEKIT_BINARY").is_some()
        || Path::new(binary::PACKAGED_PATH).exists()
        || std::env::var_os("PATH")
            .map(|p| std::env::split_paths(&p).any(|d| d.join("livekit-server").exists()))
            .unwrap_or(false);
    if elsewhere {
        eprintln!("a livekit-server is installed on this machine: start() would use it; skipped");
        return;
    }
    let e = start(params(config, dir.path())).await.err().expect("must fail");
    assert!(matches!(e, SupervisorError::BinaryNotFound { .. }), "{e:?}");
    assert!(e.to_string().contains("/nonexistent/bin/livekit-server"), "{e}");
}

/// Writes a static LiveKit config on free ports with `extra` appended.
fn static_config(dir: &Path, extra: &str) -> (PathBuf, u16) {
    let p = ports(3);
    let path = dir.join("livekit.yaml");
    let text = format!(
        "port: {}\nrtc:\n  tcp_port: {}\n  udp_port: {}\n  node_ip: 127.0.0.1\n  interfaces:\n    includes: [lo]\nkeys:\n  testkey: {SECRET}\nwebhook:\n  urls: [\"http://127.0.0.1:9/api/livekit/webhook\"]\n  api_key: testkey\n{extra}",
        p[0], p[1], p[2]
    );
    std::fs::write(&path, text).unwrap();
    (path, p[0])
}

async fn static_start_fails(bin: &Path, extra: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let (path, _) = static_config(dir.path(), extra);
    let mut config = embedded_config(bin);
    config.livekit.config_path = Some(path);
    let mut sup = start(params(config, dir.path())).await.expect("preflight passes");
    let st = wait_state(&mut sup.rx, Duration::from_secs(30), "failed", |s| {
        matches!(s.state, LivekitState::Failed { .. })
    })
    .await;
    assert_eq!(st.pid, None);
    assert_eq!(st.ready_count, 0);
    let LivekitState::Failed { error } = st.state else { unreachable!() };
    assert_eq!(st.last_error.as_deref(), Some(error.as_str()));
    let Sup { handle, .. } = sup;
    handle.stop().await;
    error
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn static_config_unknown_key_both_versions() {
    for bin in [livekit_binary(), livekit_binary_old()] {
        let e = static_start_fails(&bin, "bogus_key: 1\n").await;
        eprintln!("{}: {e}", bin.display());
        assert!(e.contains("could not parse config"), "{e}");
        assert!(e.contains("field bogus_key not found in type config.Config"), "{e}");
        assert!(e.contains("livekit.configPath has a key"), "{e}");
    }
}

/// LiveKit's TURN checks: a name without a dot is "not correct"; `127.0.0.1` passes LiveKit's
/// domain rule (digits and dots) and then fails on the missing certificate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn static_config_turn_errors_both_versions() {
    for bin in [livekit_binary(), livekit_binary_old()] {
        let tls = free_port();
        let e = static_start_fails(&bin, &format!("turn:\n  enabled: true\n  domain: localhost\n  tls_port: {tls}\n")).await;
        eprintln!("{}: {e}", bin.display());
        assert!(e.contains("TURN domain is not correct"), "{e}");
        assert!(e.contains("turn.domain in the livekit.configPath file"), "the hint points at the static file: {e}");
        let e = static_start_fails(&bin, &format!("turn:\n  enabled: true\n  domain: 127.0.0.1\n  tls_port: {tls}\n")).await;
        eprintln!("{}: {e}", bin.display());
        assert!(e.contains("TURN tls cert required"), "{e}");
        assert!(e.contains("turn.cert_file"), "{e}");
    }
}

/// bedrud with TLS and an IP as server.host: TURN/TLS is left off with a warning, and LiveKit
/// starts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_with_ip_host_leaves_turn_off() {
    let bin = livekit_binary();
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = self_signed(dir.path(), "bedrud.test");
    let mut config = embedded_config(&bin);
    config.server.host = Some("127.0.0.1".into());
    config.server.tls = Some(TlsConfig { cert_file: Some(cert), key_file: Some(key) });
    let generated = configgen::generate(&GenInput {
        config: &config,
        keys: &keys(),
        version: binary::version(&bin).await.unwrap(),
        webhook_url: "http://127.0.0.1:9/api/livekit/webhook",
        node_ip: "127.0.0.1".parse().unwrap(),
        redis: None,
    })
    .unwrap();
    assert!(!generated.turn);
    assert!(!generated.yaml.contains("turn:"));
    let w = generated.warnings.join("\n");
    assert!(w.contains("TURN/TLS stays off") && w.contains("\"127.0.0.1\" is an IP address"), "{w}");
    let mut sup = start(params(config, dir.path())).await.unwrap();
    wait_state(&mut sup.rx, Duration::from_secs(40), "ready", |s| s.is_ready()).await;
    let Sup { handle, .. } = sup;
    handle.stop().await;
}

/// bedrud with TLS for a DNS name: TURN/UDP and TURN/TLS (bedrud's certificate) on
/// unprivileged ports, and LiveKit starts with them.
async fn tls_turn_starts(bin: PathBuf, label: &str) {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = self_signed(dir.path(), "bedrud.test");
    let mut config = embedded_config(&bin);
    let tp = ports(2);
    config.server.host = Some("bedrud.test".into());
    config.server.tls = Some(TlsConfig { cert_file: Some(cert.clone()), key_file: Some(key.clone()) });
    config.livekit.turn_udp_port = tp[0];
    config.livekit.turn_tls_port = tp[1];
    let t0 = Instant::now();
    let mut sup = start(params(config, dir.path())).await.unwrap();
    wait_state(&mut sup.rx, Duration::from_secs(40), "ready", |s| s.is_ready()).await;
    eprintln!("FIGURE {label}: with TURN/TLS, start() to Ready in {} ms", t0.elapsed().as_millis());
    let text = std::fs::read_to_string(sup.handle.config_path().unwrap()).unwrap();
    for needle in [
        "domain: bedrud.test".to_string(),
        format!("udp_port: {}", tp[0]),
        format!("tls_port: {}", tp[1]),
        format!("cert_file: {}", cert.display()),
        format!("key_file: {}", key.display()),
    ] {
        assert!(text.contains(&needle), "{needle} missing in\n{text}");
    }
    // TURN/TLS serves bedrud's certificate.
    let tls_port = tp[1];
    let out = tokio::task::spawn_blocking(move || {
        Command::new("openssl")
            .args(["s_client", "-connect", &format!("127.0.0.1:{tls_port}"), "-servername", "bedrud.test"])
            .stdin(Stdio::null())
            .output()
    })
    .await
    .unwrap()
    .unwrap();
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(shown.contains("CN=bedrud.test") || shown.contains("CN = bedrud.test"), "{shown}");
    let Sup { handle, .. } = sup;
    handle.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_turn_starts_v1_13() {
    tls_turn_starts(livekit_binary(), "v1.13.5").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_turn_starts_v1_9() {
    tls_turn_starts(livekit_binary_old(), "v1.9.12").await;
}

// ---------------------------------------------------------------------------------------------
// Reload

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_restarts_only_on_change() {
    let bin = livekit_binary();
    let dir = tempfile::tempdir().unwrap();
    let config = embedded_config(&bin);
    let mut sup = start(params(config.clone(), dir.path())).await.unwrap();
    wait_state(&mut sup.rx, Duration::from_secs(40), "ready", |s| s.is_ready()).await;
    let pid = sup.handle.pid().unwrap();

    // Only supervisor settings changed: same child.
    let mut same = config.clone();
    same.livekit.health_interval = Duration::from_secs(2);
    assert!(!sup.handle.reload(params(same, dir.path())).await.unwrap());
    assert_eq!(sup.handle.pid(), Some(pid));

    // A LiveKit setting changed: new child, ready before reload() returns.
    let mut changed = config.clone();
    changed.livekit.empty_timeout = 42;
    assert!(sup.handle.reload(params(changed.clone(), dir.path())).await.unwrap());
    let pid2 = sup.handle.pid().unwrap();
    assert_ne!(pid, pid2);
    assert!(!pids_of(&bin).contains(&pid));
    assert!(sup.rx.borrow().is_ready());
    assert!(std::fs::read_to_string(sup.handle.config_path().unwrap()).unwrap().contains("empty_timeout: 42"));

    // A config LiveKit rejects: the error comes back and the previous config runs again.
    let mut bad = changed.clone();
    let dir2 = tempfile::tempdir().unwrap();
    let (cert, _key) = self_signed(dir2.path(), "bedrud.test");
    bad.server.host = Some("bedrud.test".into());
    bad.server.tls = Some(TlsConfig { cert_file: Some(cert), key_file: Some("/nonexistent/key.pem".into()) });
    let tp = ports(2);
    bad.livekit.turn_udp_port = tp[0];
    bad.livekit.turn_tls_port = tp[1];
    let e = sup.handle.reload(params(bad, dir.path())).await.unwrap_err();
    assert!(e.to_string().contains("TURN tls cert required"), "{e}");
    let st = wait_state(&mut sup.rx, Duration::from_secs(40), "ready on the previous config", |s| s.is_ready()).await;
    assert!(st.ready_count >= 3);
    assert!(std::fs::read_to_string(sup.handle.config_path().unwrap()).unwrap().contains("empty_timeout: 42"));
    let Sup { handle, .. } = sup;
    handle.stop().await;
    assert!(temp_configs(dir.path()).is_empty());
}

// ---------------------------------------------------------------------------------------------
// bedrud killed with SIGKILL: the child goes too

/// Acts as the supervising bedrud when run by `bedrud_sigkill_takes_child_along`; a no-op
/// otherwise.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn helper_supervising_parent() {
    let Some(dir) = std::env::var_os(HELPER_ENV).map(PathBuf::from) else { return };
    let bin = PathBuf::from(std::fs::read_to_string(dir.join("binary")).unwrap());
    let mut sup = start(params(embedded_config(&bin), &dir)).await.unwrap();
    wait_state(&mut sup.rx, Duration::from_secs(40), "ready", |s| s.is_ready()).await;
    let pid = sup.handle.pid().unwrap();
    std::fs::write(dir.join("livekit.pid.tmp"), pid.to_string()).unwrap();
    std::fs::rename(dir.join("livekit.pid.tmp"), dir.join("livekit.pid")).unwrap();
    // Wait to be killed.
    tokio::time::sleep(Duration::from_secs(120)).await;
}

#[test]
fn bedrud_sigkill_takes_child_along() {
    let bin = livekit_binary();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("binary"), bin.display().to_string()).unwrap();
    let mut helper = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "helper_supervising_parent", "--nocapture", "--test-threads=1"])
        .env(HELPER_ENV, dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid_file = dir.path().join("livekit.pid");
    let lk_pid: u32 = wait_for(Duration::from_secs(60), "the helper's livekit-server", || {
        if let Ok(Some(st)) = helper.try_wait() {
            panic!("helper exited early: {st}");
        }
        std::fs::read_to_string(&pid_file).ok()?.trim().parse().ok()
    });
    assert!(pids_of(&bin).contains(&lk_pid));
    assert_eq!(temp_configs(dir.path()).len(), 1);

    let t0 = Instant::now();
    sigkill(helper.id());
    let _ = helper.wait();
    wait_for(Duration::from_secs(5), "livekit-server to die with its parent", || {
        (!pids_of(&bin).contains(&lk_pid)).then_some(())
    });
    eprintln!("FIGURE parent SIGKILL: child gone after {} ms", t0.elapsed().as_millis());

    // The killed bedrud could not remove its config; the next start does.
    let removed = configgen::remove_stale(dir.path());
    assert_eq!(removed.len(), 1, "{removed:?}");
    assert!(temp_configs(dir.path()).is_empty());
}

// ---------------------------------------------------------------------------------------------
// External mode

/// A livekit-server started directly (not by the supervisor), killed on drop.
struct External {
    child: std::process::Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Drop for External {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn external_livekit(bin: &Path) -> External {
    let dir = tempfile::tempdir().unwrap();
    let (path, port) = static_config(dir.path(), "");
    let child = Command::new(bin)
        .arg("--config")
        .arg(&path)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    External { child, port, _dir: dir }
}

fn external_config(internal: String, skip_verify: bool) -> Config {
    let mut c = Config::default();
    c.livekit.external = Some(true);
    c.livekit.host = Some("ws://127.0.0.1:1".into());
    c.livekit.internal_host = Some(internal);
    c.livekit.api_key = Some("testkey".into());
    c.livekit.api_secret = Some(SECRET.into());
    c.livekit.skip_tls_verify = skip_verify;
    c.livekit.health_interval = Duration::from_millis(200);
    c
}

/// Minimal TLS terminator in front of `backend` with a self-signed certificate.
async fn tls_proxy(backend: u16, cert: &Path, key: &Path) -> (u16, tokio::task::JoinHandle<()>) {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs: Vec<_> = CertificateDer::pem_file_iter(cert).unwrap().collect::<Result<_, _>>().unwrap();
    let key = PrivateKeyDer::from_pem_file(key).unwrap();
    let server = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(server));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let task = tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else { return };
                let Ok(mut up) = tokio::net::TcpStream::connect(("127.0.0.1", backend)).await else { return };
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut up).await;
            });
        }
    });
    (port, task)
}

async fn probe_until(config: Config, what: &str, pred: impl Fn(&LivekitStatus) -> bool) -> LivekitStatus {
    let (tx, mut rx) = watch::channel(LivekitStatus::new(Mode::External));
    let shutdown = CancellationToken::new();
    let task = supervisor::spawn_external_probe(Arc::new(config), tx, shutdown.clone());
    let st = wait_state(&mut rx, Duration::from_secs(20), what, pred).await;
    shutdown.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
    assert_eq!(rx.borrow().state, LivekitState::Stopped);
    st
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn external_probe_http_and_https() {
    let bin = livekit_binary();
    let lk = external_livekit(&bin);
    let st = probe_until(external_config(format!("http://127.0.0.1:{}", lk.port), false), "ready over http", |s| {
        s.is_ready()
    })
    .await;
    assert_eq!(st.mode, Mode::External);
    assert_eq!(st.ready_count, 1);
    assert_eq!(st.pid, None);

    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = self_signed(dir.path(), "bedrud.test");
    let (tls_port, proxy) = tls_proxy(lk.port, &cert, &key).await;
    let url = format!("https://127.0.0.1:{tls_port}");
    let st = probe_until(external_config(url.clone(), false), "unreachable over https", |s| {
        matches!(s.state, LivekitState::Unreachable { .. })
    })
    .await;
    let LivekitState::Unreachable { error } = &st.state else { unreachable!() };
    eprintln!("self-signed without skipTLSVerify: {error}");
    assert!(error.contains("certificate") && error.contains("skipTLSVerify"), "{error}");
    let st = probe_until(external_config(url, true), "ready over https with skipTLSVerify", |s| s.is_ready()).await;
    assert_eq!(st.ready_count, 1);

    // Nothing listening at all.
    let dead = free_port();
    let st = probe_until(external_config(format!("http://127.0.0.1:{dead}"), false), "unreachable", |s| {
        matches!(s.state, LivekitState::Unreachable { .. })
    })
    .await;
    assert!(st.last_error.is_some());
    proxy.abort();
}

/// The parse of a real `--version` answer, and the known-version gate, for both builds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn versions_of_both_builds() {
    assert_eq!(binary::version(&livekit_binary()).await.unwrap(), Version::new(1, 13, 5));
    assert_eq!(binary::version(&livekit_binary_old()).await.unwrap(), Version::new(1, 9, 12));
    let e = binary::version(Path::new("/bin/true")).await.unwrap_err();
    assert!(e.to_string().contains("/bin/true"), "{e}");
}
