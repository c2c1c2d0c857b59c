//! `bedrud run`: opens the store, binds the API, starts (embedded) or probes (external) LiveKit,
//! tells systemd the truth at every step, reloads on SIGHUP, and stops everything in order.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use rand::RngCore;
use tokio::net::TcpListener;
use tokio::signal::unix::{signal, Signal, SignalKind};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::acme::Acme;
use crate::config::{self, Config, Loaded};
use crate::control;
use crate::http::serve::{serve, Limits, Tls};
use crate::http::{self, AppState, SharedState};
use crate::livekit::status::{LivekitState, LivekitStatus, Mode, StatusRx};
use crate::livekit::supervisor::{self, LaunchParams, SupervisorHandle};
use crate::livekit::{configgen, reconciler, ApiKeys};
use crate::recording::{self, Helpers};
use crate::setup;
use crate::store::{self, Store};
use crate::supervise;
use crate::systemd::{self, Notifier};

/// A startup failure: the message says what to fix. `code` is the process exit status.
#[derive(Debug)]
pub struct Fatal {
    pub message: String,
    pub code: u8,
}

impl Fatal {
    fn new(message: impl Into<String>) -> Self {
        Self { message: message.into(), code: 1 }
    }
}

impl std::fmt::Display for Fatal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// The LiveKit key pair: configured, or (embedded mode) generated once and kept in the store.
pub async fn api_keys(config: &Config, store: &Store) -> Result<ApiKeys, Fatal> {
    if let (Some(key), Some(secret)) = (&config.livekit.api_key, &config.livekit.api_secret) {
        return Ok(ApiKeys { key: key.clone(), secret: secret.clone() });
    }
    let mut raw = [0u8; 36];
    rand::rng().fill_bytes(&mut raw);
    // 36 random bytes are 48 base64 characters.
    let secret = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw);
    let mut k = [0u8; 6];
    rand::rng().fill_bytes(&mut k);
    let key = format!("API{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(k).replace(['-', '_'], "x"));
    let (key, secret) = store
        .write(move |txn| {
            let key = store::meta_put_once(txn, "livekit_api_key", &key)?;
            let secret = store::meta_put_once(txn, "livekit_api_secret", &secret)?;
            Ok((key, secret))
        })
        .await
        .map_err(|e| Fatal::new(format!("cannot store generated LiveKit keys: {e}")))?;
    Ok(ApiKeys { key, secret })
}

/// Takes port and (unless configured) the key pair from a static LiveKit config file.
fn adopt_static(config: &Config, path: &std::path::Path) -> Result<Config, Fatal> {
    let info = configgen::read_static(path).map_err(|e| Fatal::new(format!("livekit.configPath: {e}")))?;
    for w in &info.warnings {
        tracing::warn!("{w}");
    }
    let mut c = config.clone();
    c.livekit.port = info.port;
    if c.livekit.api_key.is_none() {
        let (key, secret) = info.keys.first().cloned().ok_or_else(|| {
            Fatal::new(format!("livekit.configPath {}: no keys in the file; add `keys:` or set livekit.apiKey/apiSecret", path.display()))
        })?;
        c.livekit.api_key = Some(key);
        c.livekit.api_secret = Some(secret);
    }
    Ok(c)
}

/// Where LiveKit should send webhooks: the API on loopback (or the bound address).
fn webhook_url(bound: SocketAddr, tls: bool) -> String {
    let host = match bound.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    let scheme = if tls { "https" } else { "http" };
    format!("{scheme}://{}/api/livekit/webhook", SocketAddr::new(host, bound.port()))
}

async fn bind(addr: SocketAddr, key: &str) -> Result<TcpListener, Fatal> {
    TcpListener::bind(addr).await.map_err(|e| {
        if e.kind() == std::io::ErrorKind::AddrInUse {
            Fatal::new(format!("port {} on {} is already in use ({key}); stop the other process or set {key}", addr.port(), addr.ip()))
        } else {
            Fatal::new(format!("cannot listen on {addr} ({key}): {e}"))
        }
    })
}

/// One line for `systemctl status`.
fn status_line(state: &AppState, api: SocketAddr, lk: &LivekitStatus) -> String {
    let cfg = state.config();
    let version = lk.version.as_deref().unwrap_or("");
    let node = lk.node_ip.as_deref().map(|n| format!(", node_ip {n}")).unwrap_or_default();
    let mode = match lk.mode {
        Mode::Embedded => format!("livekit {version} {}", lk.state),
        Mode::External => {
            // An external LiveKit must be told where to send webhooks; say so until one arrives.
            let hook = if state.webhook_last_seen.load(std::sync::atomic::Ordering::Relaxed) == 0 {
                "; webhook: not seen yet (see `bedrud livekit webhook-config`)"
            } else {
                ""
            };
            format!("external livekit {} {}{hook}", cfg.livekit_internal_url(), lk.state)
        }
    };
    let ip = if api.ip().is_unspecified() { String::new() } else { api.ip().to_string() };
    let store = match state.store.write_failure() {
        Some(f) if f.disk_full => "; store cannot write: disk full".to_string(),
        Some(f) => format!("; store cannot write: {}", f.message),
        None => String::new(),
    };
    let recording = state.recorder.availability(&cfg, lk).status_note();
    format!("serving {ip}:{}; {mode}{node}{store}{recording}", api.port())
}

/// SIGTERM, SIGINT and SIGHUP, caught from the start: a stop request while LiveKit starts is
/// an orderly stop, and a reload request waits for the main loop.
struct Signals {
    term: Signal,
    int: Signal,
    hup: Signal,
}

impl Signals {
    fn install() -> Result<Self, Fatal> {
        let get = |k: SignalKind| signal(k).map_err(|e| Fatal::new(format!("cannot install signal handlers: {e}")));
        Ok(Self { term: get(SignalKind::terminate())?, int: get(SignalKind::interrupt())?, hup: get(SignalKind::hangup())? })
    }

    /// The next SIGTERM or SIGINT.
    async fn stop_requested(&mut self) -> &'static str {
        stop_requested(&mut self.term, &mut self.int).await
    }
}

async fn stop_requested(term: &mut Signal, int: &mut Signal) -> &'static str {
    tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    }
}

/// Runs until SIGTERM/SIGINT. Everything that can fail at startup fails before READY=1.
pub async fn run(loaded: Loaded) -> Result<(), Fatal> {
    let notify = Notifier::from_env();
    let started = Instant::now();
    let mut signals = Signals::install()?;
    let file = loaded.file.clone();
    let config = Arc::new(loaded.config);
    for w in &loaded.warnings {
        tracing::warn!("{w}");
    }
    tracing::info!(version = env!("CARGO_PKG_VERSION"), config = %file.as_ref().map(|f| f.display().to_string()).unwrap_or_else(|| "built-in defaults".into()), "bedrud starting");
    notify.status("opening database");

    // A static LiveKit config (livekit.configPath) is authoritative for LiveKit's port and keys.
    let config = match (&config.livekit.config_path, config.livekit.is_external()) {
        (Some(path), false) => Arc::new(adopt_static(&config, path)?),
        _ => config,
    };

    raise_fd_limit();
    crate::accounts::limit_hashes(config.auth.max_concurrent_hashes.unwrap_or_else(crate::accounts::default_hash_slots));
    let db_path = config.database_path();
    let opened = Instant::now();
    let store = Store::open_with(&db_path, store::StoreOptions { cache_size: config.database.cache_size }).map_err(|e| Fatal::new(e.to_string()))?;
    tracing::info!(path = %db_path.display(), open_ms = opened.elapsed().as_millis() as u64, "database open");
    let keys = api_keys(&config, &store).await?;
    let setup_token = setup::prepare(&store).await.map_err(|e| Fatal::new(format!("cannot prepare the first-run setup: {e}")))?;

    let shutdown = CancellationToken::new();
    let mode = if config.livekit.is_external() { Mode::External } else { Mode::Embedded };
    let (status_tx, status_rx) = watch::channel(LivekitStatus::new(mode));

    // API listener first: LiveKit's webhook needs its address.
    let ip: IpAddr = config.server.bind.parse().map_err(|_| Fatal::new("server.bind is not an IP address"))?;
    let listener = bind(SocketAddr::new(ip, config.server.port), "server.port").await?;
    let api_addr = listener.local_addr().map_err(|e| Fatal::new(e.to_string()))?;
    let acme = match &config.server.acme {
        Some(_) => Some(Acme::new(&config).map_err(|e| Fatal::new(format!("server.acme: {e}")))?),
        None => None,
    };
    let tls = match (&config.server.tls, &acme) {
        (_, Some(a)) => Some(Tls::from_config(crate::acme::server_config(a.resolver.clone()).map_err(|e| Fatal::new(format!("server.acme: {e}")))?)),
        (Some(t), None) if config.server.tls_enabled() => {
            let (cert, key) = (t.cert_file.clone().unwrap_or_default(), t.key_file.clone().unwrap_or_default());
            Some(Tls::load(&cert, &key).map_err(|e| Fatal::new(format!("server.tls: {e}")))?)
        }
        _ => None,
    };
    let signin = http::Signin::from_config(&config).map_err(Fatal::new)?;
    let state: SharedState = Arc::new(AppState::new(config.clone(), store.clone(), keys.clone(), status_rx.clone(), shutdown.clone(), signin));
    let _ = state.runtime.set(http::Runtime { api_addr, acme: acme.clone(), config_file: file.clone() });
    let app = http::router(state.clone());
    let limits = Limits::from_config(&config.server);
    let mut tasks = Vec::new();
    tasks.push(tokio::spawn(serve(listener, tls.clone(), app.clone(), limits, state.connections.clone(), shutdown.clone())));
    // With TLS on the API, LiveKit's webhook client would reject a certificate issued for a DNS
    // name when calling 127.0.0.1, so webhooks get a plain listener bound to loopback only.
    let hook_url = if tls.is_some() {
        let internal = bind(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0), "internal webhook listener").await?;
        let addr = internal.local_addr().map_err(|e| Fatal::new(e.to_string()))?;
        tasks.push(tokio::spawn(serve(internal, None, app.clone(), limits, state.connections.clone(), shutdown.clone())));
        webhook_url(addr, false)
    } else {
        webhook_url(api_addr, false)
    };
    tracing::info!(address = %api_addr, tls = tls.is_some(), "API listening");
    if let Some(a) = &acme {
        tasks.push(a.clone().spawn(config.clone(), shutdown.clone()));
        if let Some(ac) = config.server.acme.as_ref().filter(|a| a.challenge == "http-01") {
            let l = bind(SocketAddr::new(ip, ac.http_port), "server.acme.httpPort").await?;
            tasks.push(tokio::spawn(serve(l, None, crate::acme::http01_router(a.clone(), api_addr.port()), limits, state.connections.clone(), shutdown.clone())));
            tracing::info!(port = ac.http_port, "answering ACME http-01 challenges (other requests are redirected to HTTPS)");
        }
    }
    if let Some(token) = &setup_token {
        tracing::warn!(
            "no administrator yet: open {} to create one (the link works until an administrator exists and changes at every start), or run `bedrud user create NAME --admin`",
            setup_url(&config, api_addr, tls.is_some(), token)
        );
    }
    // Each OpenID provider is asked for its discovery document and keys; one that does not
    // answer is logged and retried at each sign-in, and holds up nothing else.
    {
        let st = state.clone();
        tasks.push(tokio::spawn(async move { st.signin.oidc.discover_all().await }));
    }
    if let Some(addr) = config.server.metrics_socket() {
        let l = bind(addr, "server.metricsAddress").await?;
        tracing::info!(address = %l.local_addr().unwrap_or(addr), "metrics listening at /metrics");
        tasks.push(crate::metrics::serve(l, state.clone(), shutdown.clone()));
    }

    let sock = control::socket_path(&db_path);
    match control::serve(&sock, store.clone(), keys.clone(), Some(state.clone()), shutdown.clone()) {
        Ok(t) => tasks.push(t),
        Err(e) => tracing::warn!(path = %sock.display(), error = %e, "control socket unavailable; the CLI cannot reach this daemon"),
    }

    // Recording's helpers have their own stop signal: they stop in order around LiveKit
    // (egress before it, Redis after it).
    let helpers_stop = CancellationToken::new();
    let mut helpers = Helpers::default();
    let runtime = supervise::runtime_dir(None);
    let redis = if mode == Mode::Embedded {
        helpers.start_redis(&config, &store, &state.recorder, &runtime, &helpers_stop).await
    } else {
        None
    };

    // LiveKit.
    let params = |c: Arc<Config>| {
        let mut p = LaunchParams::new(c, keys.clone(), hook_url.clone());
        p.redis = redis.clone();
        p
    };
    let mut supervisor: Option<SupervisorHandle> = None;
    match mode {
        Mode::Embedded => {
            notify.status("starting livekit-server");
            let handle = match supervisor::start(params(config.clone()), status_tx.clone(), shutdown.clone()).await {
                Ok(h) => h,
                Err(e) => {
                    shutdown.cancel();
                    helpers.stop_redis().await;
                    return Err(Fatal::new(format!("LiveKit cannot start: {e}")));
                }
            };
            supervisor = Some(handle);
            let outcome = tokio::select! {
                r = wait_livekit_ready(&notify, status_rx.clone(), &config) => r.map(|()| None),
                sig = signals.stop_requested() => Ok(Some(sig)),
            };
            let stop_request = match outcome {
                Ok(s) => s,
                Err(e) => {
                    if let Some(h) = supervisor.take() {
                        h.stop().await;
                    }
                    helpers.stop_redis().await;
                    shutdown.cancel();
                    return Err(e);
                }
            };
            if let Some(sig) = stop_request {
                notify.stopping("stopping");
                tracing::info!("{sig} received while livekit-server was starting; stopping");
                shutdown.cancel();
                if let Some(h) = supervisor.take() {
                    h.stop().await;
                }
                helpers.stop_redis().await;
                for t in tasks {
                    let _ = tokio::time::timeout(Duration::from_secs(15), t).await;
                }
                tracing::info!("stopped");
                return Ok(());
            }
            helpers.start_workers(&config, &keys, redis.as_ref(), &state.recorder, &runtime, &helpers_stop);
        }
        Mode::External => {
            tasks.push(supervisor::spawn_external_probe(config.clone(), status_tx.clone(), shutdown.clone()));
        }
    }
    tasks.push(reconciler::spawn(state.client.clone(), store.clone(), status_rx.clone(), config.livekit.reconcile_interval, state.cluster.clone(), shutdown.clone()));
    tasks.push(spawn_maintenance(state.clone(), shutdown.clone()));
    if config.recording.enabled {
        tasks.push(recording::spawn_reconciler(state.recorder.clone(), config.livekit.reconcile_interval, shutdown.clone()));
    }
    tasks.push(http::spawn_background(state.clone()));

    let lk = status_rx.borrow().clone();
    let notes = Notes { setup_pending: setup_token.is_some(), ..Notes::default() };
    let line = format!("{}{}", status_line(&state, api_addr, &lk), notes.text(acme.as_deref()));
    notify.ready(&line);
    tracing::info!(ready_ms = started.elapsed().as_millis() as u64, livekit = %lk.state, "bedrud ready: {line}");

    let acme_rx = acme.as_ref().map(|a| a.subscribe());
    main_loop(MainLoop { notify, state: state.clone(), status_rx, supervisor: &supervisor, tls: &tls, file, api_addr, params: &params, acme, acme_rx, notes }, signals).await;

    notify.stopping("stopping");
    tracing::info!("stopping");
    // Recordings end first, while LiveKit and the API (its webhooks) still run.
    if config.recording.enabled {
        state.recorder.stop_all(config.recording.stop_timeout).await;
    }
    shutdown.cancel();
    helpers.stop_workers().await;
    if let Some(h) = supervisor {
        h.stop().await;
    }
    helpers.stop_redis().await;
    for t in tasks {
        let _ = tokio::time::timeout(Duration::from_secs(15), t).await;
    }
    let _ = status_tx.send_modify(|s| s.state = LivekitState::Stopped);
    tracing::info!("stopped");
    Ok(())
}

/// Raises the soft limit on open files to the hard one (as Go programs such as livekit-server
/// do): every API connection is a descriptor, and server.maxConnections should be what binds.
fn raise_fd_limit() {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    if let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) {
        if soft < hard && setrlimit(Resource::RLIMIT_NOFILE, hard, hard).is_err() {
            tracing::debug!(soft, hard, "cannot raise the open-file limit");
        }
    }
}

/// Waits for the first start of the child, keeping systemd's start timeout extended.
async fn wait_livekit_ready(notify: &Notifier, mut rx: StatusRx, config: &Config) -> Result<(), Fatal> {
    let deadline = config.livekit.start_timeout + Duration::from_secs(5);
    let start = Instant::now();
    loop {
        let s = rx.borrow_and_update().clone();
        match s.state {
            LivekitState::Ready => return Ok(()),
            LivekitState::Failed { error } => return Err(Fatal::new(format!("LiveKit failed to start: {error}"))),
            _ => {}
        }
        if start.elapsed() > deadline {
            return Err(Fatal::new(format!(
                "LiveKit did not become ready within {:?} (livekit.startTimeout)",
                config.livekit.start_timeout
            )));
        }
        notify.extend_timeout(Duration::from_secs(10));
        let _ = tokio::time::timeout(Duration::from_secs(2), rx.changed()).await;
    }
}

struct MainLoop<'a, P: Fn(Arc<Config>) -> LaunchParams> {
    notify: Notifier,
    state: SharedState,
    status_rx: StatusRx,
    supervisor: &'a Option<SupervisorHandle>,
    tls: &'a Option<Tls>,
    file: Option<PathBuf>,
    api_addr: SocketAddr,
    params: &'a P,
    acme: Option<Arc<Acme>>,
    acme_rx: Option<watch::Receiver<crate::acme::Status>>,
    notes: Notes,
}

/// What `STATUS=` says besides the API and LiveKit: first-run setup, certificates, and a
/// LiveKit restart waiting for a quiet moment.
#[derive(Default)]
struct Notes {
    setup_pending: bool,
    /// A new certificate LiveKit's TURN/TLS should use: since when, and the latest restart time.
    turn_pending: Option<(Instant, Instant)>,
    /// The last thing said about LiveKit and the certificate.
    turn: Option<String>,
    /// Serial of the certificate LiveKit was last (re)started with.
    serial: Option<String>,
}

impl Notes {
    fn text(&self, acme: Option<&Acme>) -> String {
        let mut s = String::new();
        if self.setup_pending {
            s.push_str("; no administrator yet: open the setup link from the log");
        }
        if let Some(st) = acme.map(Acme::status) {
            if let Some(e) = &st.last_error {
                let e: String = e.chars().take(80).collect();
                match st.not_after {
                    None => s.push_str(&format!("; ACME: no certificate yet ({e})")),
                    Some(_) => s.push_str(&format!("; ACME renewal failing ({e})")),
                }
            } else if st.not_after.is_none() {
                s.push_str("; ACME: ordering the certificate");
            }
        }
        if let Some(t) = &self.turn {
            s.push_str("; ");
            s.push_str(t);
        }
        s
    }
}

/// Waits for a change of the ACME status (never without ACME).
async fn acme_changed(rx: &mut Option<watch::Receiver<crate::acme::Status>>) -> bool {
    match rx {
        Some(rx) => rx.changed().await.is_ok(),
        None => std::future::pending().await,
    }
}

async fn main_loop<P: Fn(Arc<Config>) -> LaunchParams>(mut m: MainLoop<'_, P>, signals: Signals) {
    let Signals { mut term, mut int, mut hup } = signals;
    let watchdog = systemd::watchdog_period();
    let mut wd = tokio::time::interval(watchdog.unwrap_or(Duration::from_secs(3600)));
    let mut last_line = String::new();
    let mut refresh = tokio::time::interval(Duration::from_secs(5));
    m.notes.serial = m.acme.as_ref().and_then(|a| a.status().serial);
    loop {
        tokio::select! {
            sig = stop_requested(&mut term, &mut int) => { tracing::info!("{sig} received"); return; }
            _ = hup.recv() => {
                // A reload that restarts livekit-server lasts as long as its drain and start:
                // keep feeding the watchdog meanwhile, and let a stop request end it.
                let r = reload(&m);
                tokio::pin!(r);
                loop {
                    tokio::select! {
                        _ = &mut r => break,
                        _ = wd.tick() => if watchdog.is_some() { m.notify.watchdog() },
                        sig = stop_requested(&mut term, &mut int) => { tracing::info!("{sig} received during a reload"); return; }
                    }
                }
            }
            _ = wd.tick() => if watchdog.is_some() { m.notify.watchdog() },
            changed = m.status_rx.changed() => {
                if changed.is_err() { continue; }
                m.status_rx.borrow_and_update();
            }
            changed = acme_changed(&mut m.acme_rx) => {
                if !changed { m.acme_rx = None; }
                certificate_changed(&mut m);
            }
            // Some parts of the line (the first webhook) change without a status event.
            _ = refresh.tick() => {
                if m.notes.setup_pending {
                    m.notes.setup_pending = setup::needed(&m.state.store).await.unwrap_or(true);
                }
                restart_for_certificate(&mut m).await;
            }
        }
        let lk = m.status_rx.borrow().clone();
        let line = format!("{}{}", status_line(&m.state, m.api_addr, &lk), m.notes.text(m.acme.as_deref()));
        if line != last_line {
            m.notify.status(&line);
            last_line = line;
        }
    }
}

/// ACME installed a new certificate: LiveKit's TURN/TLS (which reads it only at start) needs a
/// restart, which waits for a quiet moment.
fn certificate_changed<P: Fn(Arc<Config>) -> LaunchParams>(m: &mut MainLoop<'_, P>) {
    let Some(st) = m.acme.as_ref().map(|a| a.status()) else { return };
    if st.serial.is_none() || st.serial == m.notes.serial || m.supervisor.is_none() {
        return;
    }
    let now = Instant::now();
    // The certificate LiveKit still serves must not expire first: restart anyway when a tenth
    // of its lifetime is left, and within a day at most.
    let old = m.notes.serial.is_some();
    let lifetime = st.not_after.zip(st.not_before).map(|(a, b)| (a - b).max(0)).unwrap_or(0);
    let margin = if old { Duration::from_secs(u64::try_from(lifetime / 3 - lifetime / 10).unwrap_or(0)) } else { Duration::from_secs(86_400) };
    let deadline = now + margin.min(Duration::from_secs(86_400));
    m.notes.turn_pending = Some((now, deadline));
    m.notes.serial = st.serial.clone();
    m.notes.turn = Some("new certificate: livekit restart for TURN/TLS pending".into());
}

/// Restarts LiveKit for a new certificate once no participant is live (or the deadline came).
async fn restart_for_certificate<P: Fn(Arc<Config>) -> LaunchParams>(m: &mut MainLoop<'_, P>) {
    let (Some((since, deadline)), Some(sup)) = (m.notes.turn_pending, m.supervisor) else { return };
    let live = m.state.store.read(|txn| Ok(store::live_all(txn)?.len())).await.unwrap_or(usize::MAX);
    let now = Instant::now();
    if live > 0 && now < deadline {
        let n = if live == usize::MAX { "the".to_string() } else { live.to_string() };
        m.notes.turn = Some(format!("new certificate: livekit restart for TURN/TLS waits for {n} participant(s) to leave"));
        return;
    }
    m.notes.turn_pending = None;
    let why = if live == 0 { "no participant is connected" } else { "the old certificate is about to expire" };
    tracing::info!("restarting livekit-server to use the new certificate for TURN/TLS ({why}; pending for {} s)", since.elapsed().as_secs());
    match sup.reload((m.params)(m.state.config())).await {
        Ok(true) => {
            tracing::info!("livekit-server restarted with the new TURN/TLS certificate");
            let at = time::OffsetDateTime::now_utc().format(time::macros::format_description!("[hour]:[minute]:[second] UTC")).unwrap_or_default();
            m.notes.turn = Some(format!("livekit restarted at {at} for the new TURN/TLS certificate"));
        }
        Ok(false) => m.notes.turn = None,
        Err(e) => {
            tracing::error!("livekit-server could not be restarted with the new certificate: {e}");
            m.notes.turn = Some("livekit restart for the new certificate failed: see the log".into());
        }
    }
}

/// The first-run link: `server.host` when set, else the address the API listens on.
fn setup_url(config: &Config, api: SocketAddr, tls: bool, token: &str) -> String {
    let scheme = if tls { "https" } else { "http" };
    let host = match config.server.host.as_deref().map(str::trim).filter(|h| !h.is_empty()) {
        Some(h) if h.contains(':') && !h.starts_with('[') => format!("[{h}]"),
        Some(h) => h.to_string(),
        None => match api.ip() {
            IpAddr::V4(ip) if ip.is_unspecified() => "127.0.0.1".to_string(),
            IpAddr::V6(ip) if ip.is_unspecified() => "[::1]".to_string(),
            IpAddr::V6(ip) => format!("[{ip}]"),
            ip => ip.to_string(),
        },
    };
    let port = match (tls, api.port()) {
        (true, 443) | (false, 80) => String::new(),
        (_, p) => format!(":{p}"),
    };
    format!("{scheme}://{host}{port}/setup?token={token}")
}

/// SIGHUP: re-read and validate the config; keep the old one if the new one is bad.
async fn reload<P: Fn(Arc<Config>) -> LaunchParams>(m: &MainLoop<'_, P>) {
    m.notify.reloading();
    tracing::info!("SIGHUP: reloading configuration");
    if let Some(a) = &m.acme {
        a.retry_now();
    }
    let outcome = match config::load(m.file.as_deref()) {
        Err(e) => Err(format!("new configuration rejected, keeping the previous one: {e}")),
        Ok(l) => apply_reload(m, l).await,
    };
    let lk = m.status_rx.borrow().clone();
    let base = status_line(&m.state, m.api_addr, &lk);
    match outcome {
        Ok(note) => {
            tracing::info!("configuration reloaded{note}");
            m.notify.ready(&format!("{base}; reloaded{note}"));
        }
        Err(e) => {
            tracing::error!("{e}");
            m.notify.ready(&format!("{base}; reload rejected: {}", e.lines().next().unwrap_or("")));
        }
    }
}

async fn apply_reload<P: Fn(Arc<Config>) -> LaunchParams>(m: &MainLoop<'_, P>, l: Loaded) -> Result<String, String> {
    for w in &l.warnings {
        tracing::warn!("{w}");
    }
    let old = m.state.config();
    let new = Arc::new(l.config);
    let mut notes = Vec::new();
    if new.server.port != old.server.port || new.server.bind != old.server.bind || new.database.path != old.database.path {
        notes.push("server.port, server.bind and database.path take effect at the next restart");
    }
    if new.recording != old.recording || new.redis != old.redis {
        notes.push("recording and redis settings take effect at the next restart");
    }
    if new.auth.oidc != old.auth.oidc || new.smtp != old.smtp || new.server.public_url != old.server.public_url || new.auth.passkeys != old.auth.passkeys {
        notes.push("auth.oidc, auth.passkeys, smtp and server.publicUrl take effect at the next restart");
    }
    if new.livekit.api_key != old.livekit.api_key || new.livekit.api_secret != old.livekit.api_secret || new.livekit.is_external() != old.livekit.is_external() {
        notes.push("LiveKit keys and mode take effect at the next restart");
    }
    if let (Some(tls), Some(t)) = (m.tls, new.server.tls.as_ref()) {
        if let (Some(c), Some(k)) = (&t.cert_file, &t.key_file) {
            tls.reload(c, k).map_err(|e| format!("new TLS certificate rejected, keeping the previous configuration: {e}"))?;
        }
    }
    if let Some(sup) = m.supervisor {
        match sup.reload((m.params)(new.clone())).await {
            Ok(true) => notes.push("livekit-server restarted with the new configuration"),
            Ok(false) => {}
            Err(e) => return Err(format!("new LiveKit configuration rejected, keeping the previous one: {e}")),
        }
    }
    m.state.set_config(new);
    Ok(if notes.is_empty() { String::new() } else { format!(" ({})", notes.join("; ")) })
}

/// Every minute: warn when the disk runs low. Hourly: drop expired sessions, old webhook
/// bookkeeping and participant history past `database.historyRetention`, then compact the
/// file when at least a quarter of it (and 16 MiB) is free pages.
fn spawn_maintenance(state: SharedState, shutdown: CancellationToken) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let store = state.store.clone();
        let mut tick = tokio::time::interval(Duration::from_secs(60));
        let mut minutes = 0u64;
        let mut low_disk = false;
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tick.tick() => {}
            }
            low_disk = warn_low_disk(&store, low_disk);
            minutes += 1;
            if minutes % 60 != 1 {
                continue;
            }
            let now = store::now_ms();
            let r = store
                .write(move |txn| {
                    Ok(store::sessions_prune(txn, now)? + store::prune_webhook_state(txn, now.saturating_sub(86_400_000))? + store::mail_tokens_prune(txn, now)?)
                })
                .await;
            match r {
                Ok(n) if n > 0 => tracing::info!(removed = n, "pruned expired sessions and old webhook records"),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "maintenance failed"),
            }
            let retention = state.config().database.history_retention;
            match prune_history(&store, now.saturating_sub(retention.as_millis() as u64)).await {
                Ok(n) if n > 0 => tracing::info!(removed = n, retention = ?retention, "removed participant history past its retention"),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "history retention failed"),
            }
            if let Err(e) = compact_if_worthwhile(&store).await {
                tracing::warn!(error = %e, "compaction failed");
            }
        }
    })
}

/// Removes history rows that ended before `before`, found on a snapshot and removed in
/// transactions of 10,000 rows, so joins wait for the removal only.
pub async fn prune_history(store: &Store, before: u64) -> Result<usize, store::StoreError> {
    const CHUNK: usize = 10_000;
    let mut total = 0;
    loop {
        let keys = store.read(move |txn| store::history_expired(txn, before, CHUNK)).await?;
        let found = keys.len();
        total += store.write(move |txn| store::history_remove(txn, &keys)).await?;
        if found < CHUNK {
            return Ok(total);
        }
    }
}

/// Compacts when a quarter of the file (and at least 16 MiB) holds no live data; true if it did.
pub async fn compact_if_worthwhile(store: &Store) -> Result<bool, store::StoreError> {
    let used = store.write(|txn| store::used_bytes(txn)).await?;
    let size = std::fs::metadata(store.path()).map(|m| m.len()).unwrap_or(0);
    let free = size.saturating_sub(used);
    if free < 16 * 1024 * 1024 || free < size / 4 {
        return Ok(false);
    }
    let started = Instant::now();
    let done = store.compact().await?;
    let after = std::fs::metadata(store.path()).map(|m| m.len()).unwrap_or(0);
    tracing::info!(before = size, after, ms = started.elapsed().as_millis() as u64, "database compacted");
    Ok(done)
}

/// Warns once when free space on the database's filesystem falls under 10% or 256 MiB, and
/// once when it is back; returns whether it is low.
fn warn_low_disk(store: &Store, was_low: bool) -> bool {
    let Some((free, total)) = store.disk_space() else { return was_low };
    let low = crate::store::disk_low(free, total);
    if low && !was_low {
        tracing::warn!(path = %store.path().display(), free_bytes = free, total_bytes = total, "the database's disk is almost full: writes will be refused when it is");
    } else if !low && was_low {
        tracing::info!(free_bytes = free, "the database's disk has room again");
    }
    low
}
