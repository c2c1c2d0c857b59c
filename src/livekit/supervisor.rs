//! Embedded mode: runs `livekit-server` as bedrud's child and keeps it healthy; external mode:
//! probes the operator's LiveKit.
//!
//! [`start`] does every check that can fail fast (binary, version, node IP, config, ports) and
//! returns an error for those. It then spawns a task that owns the child: the first start's
//! outcome is published on the status channel only (`Ready`, or `Failed` when LiveKit exits or
//! stays unhealthy before `livekit.startTimeout`), so the daemon can keep systemd informed while
//! it waits. A crash after readiness is restarted with backoff; a failed first start is not
//! retried until a reload.
//!
//! livekit-server exits 0 on fatal errors and prints them on stdout, so "exited before it
//! answered `GET /` with 200 OK" is the failure test, and its stdout is the message shown.

use std::collections::VecDeque;
use std::fmt;
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::Child;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::Level;

use crate::config::Config;
use crate::livekit::binary::{self, Version};
use crate::livekit::configgen::{self, GenInput, PortUse, Proto, TempConfig};
use crate::livekit::nodeip::{self, NodeIp};
use crate::livekit::status::{LivekitState, LivekitStatus, Mode, StatusTx};
use crate::livekit::ApiKeys;

/// Wait after the second SIGTERM (LiveKit's forced stop) before SIGKILL.
const FORCE_GRACE: Duration = Duration::from_secs(3);
/// livekit-server ignores a stop signal that arrives before it marks itself running, about
/// 100 ms after it starts answering `GET /`; the first SIGTERM is held back until this long
/// after readiness.
const SETTLE_AFTER_READY: Duration = Duration::from_millis(300);
/// Grace after SIGTERM for a child that never became ready (it has no participants to drain).
const NOT_READY_GRACE: Duration = Duration::from_secs(1);
/// Readiness is polled this often while the child starts.
const READY_POLL: Duration = Duration::from_millis(100);
/// Time allowed for the output readers to drain after the child exited.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(2);
/// Stdout lines kept while the child is not ready yet (the fatal message is among them).
const MAX_PENDING: usize = 200;
const MAX_LINE: usize = 64 * 1024;

/// What [`start`] and [`SupervisorHandle::reload`] need.
#[derive(Clone)]
pub struct LaunchParams {
    pub config: Arc<Config>,
    pub keys: ApiKeys,
    /// Where LiveKit posts webhooks: bedrud's own listener on loopback,
    /// e.g. `http://127.0.0.1:8090/api/livekit/webhook`.
    pub webhook_url: String,
    /// Directory of the temporary config; `None`: `$RUNTIME_DIRECTORY`, else the temp dir.
    pub runtime_dir: Option<PathBuf>,
    /// Restart backoff (tests shrink it).
    pub restart_policy: RestartPolicy,
}

impl fmt::Debug for LaunchParams {
    // The config holds the API secret; only what identifies the launch is shown.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LaunchParams")
            .field("keys", &self.keys)
            .field("webhook_url", &self.webhook_url)
            .field("runtime_dir", &self.runtime_dir)
            .field("restart_policy", &self.restart_policy)
            .finish_non_exhaustive()
    }
}

impl LaunchParams {
    pub fn new(config: Arc<Config>, keys: ApiKeys, webhook_url: impl Into<String>) -> Self {
        Self {
            config,
            keys,
            webhook_url: webhook_url.into(),
            runtime_dir: None,
            restart_policy: RestartPolicy::default(),
        }
    }
}

/// Backoff between restarts after crashes: `initial`, doubling up to `max`; back to `initial`
/// once the child stayed ready for `reset_after`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RestartPolicy {
    pub initial: Duration,
    pub max: Duration,
    pub reset_after: Duration,
}

impl Default for RestartPolicy {
    fn default() -> Self {
        Self {
            initial: Duration::from_millis(500),
            max: Duration::from_secs(30),
            reset_after: Duration::from_secs(60),
        }
    }
}

impl RestartPolicy {
    /// Delay before restart number `attempt` (1-based) of a row of failures.
    pub fn delay(&self, attempt: u32) -> Duration {
        let doublings = attempt.saturating_sub(1).min(31);
        self.initial.saturating_mul(1u32 << doublings).min(self.max)
    }
}

/// One place [`binary::find`] looked, and what was wrong there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tried {
    pub place: String,
    pub path: Option<PathBuf>,
    pub problem: String,
}

impl fmt::Display for Tried {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.path {
            Some(p) => write!(f, "{} ({}): {}", self.place, p.display(), self.problem),
            None => write!(f, "{}: {}", self.place, self.problem),
        }
    }
}

/// Why LiveKit could not be started or supervised; each message says what to fix.
#[derive(Debug, thiserror::Error)]
pub enum SupervisorError {
    #[error("livekit-server not found; looked at:\n{}\n  fix: run scripts/install-livekit (development), install the bedrud package (it ships {}), or set livekit.binary to the executable",
        .tried.iter().map(|t| format!("  - {t}")).collect::<Vec<_>>().join("\n"), binary::PACKAGED_PATH)]
    BinaryNotFound { tried: Vec<Tried> },

    #[error("cannot get the version of {}: {message}\n  fix: check that it is livekit-server (`{} --version` prints `livekit-server version X.Y.Z`), or reinstall it",
        .path.display(), .path.display())]
    Version { path: PathBuf, message: String },

    #[error("{proto} port {port} is already in use ({key}); stop the other process or set {key} to a free port")]
    PortInUse { port: u16, proto: Proto, key: String },

    #[error("livekit-server failed to start ({status}): {message}{}", .hint.as_deref().map(|h| format!("\n  fix: {h}")).unwrap_or_default())]
    StartFailed { message: String, status: String, hint: Option<String> },

    #[error("livekit-server did not answer GET / with 200 OK within {}s (livekit.startTimeout) and was killed{}",
        .timeout.as_secs_f32(), if .last_output.is_empty() { String::new() } else { format!("; its last output: {}", .last_output) })]
    StartTimeout { timeout: Duration, last_output: String },

    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },

    #[error("{0}")]
    Config(String),

    #[error("the LiveKit supervisor has stopped")]
    Stopped,
}

/// The running supervisor. Dropping it stops LiveKit in the background; [`Self::stop`] waits.
#[derive(Debug)]
pub struct SupervisorHandle {
    cmds: mpsc::Sender<Cmd>,
    stop: CancellationToken,
    task: Option<JoinHandle<()>>,
    shared: Arc<Shared>,
}

#[derive(Debug, Default)]
struct Shared {
    pid: AtomicU32,
    config_path: Mutex<Option<PathBuf>>,
}

enum Cmd {
    Reload { plan: Box<Plan>, reply: oneshot::Sender<Result<bool, SupervisorError>> },
}

/// Preflight (binary, version, node IP, config generation, stale temp files, ports), then
/// spawns the supervising task. Preflight problems are returned here; the outcome of the
/// first start is published on `status` (`Ready` or `Failed`).
pub async fn start(
    params: LaunchParams,
    status: StatusTx,
    shutdown: CancellationToken,
) -> Result<SupervisorHandle, SupervisorError> {
    let plan = prepare(&params).await?;
    for p in configgen::remove_stale(&plan.runtime_dir) {
        tracing::info!("removed stale LiveKit config {} left by an earlier run", p.display());
    }
    check_ports(&plan.ports, &[])?;
    status.send_modify(|s| {
        s.mode = Mode::Embedded;
        s.state = LivekitState::Starting;
        s.version = Some(plan.version.to_string());
        s.node_ip = plan.node_ip.as_ref().map(|n| n.ip.to_string());
        s.pid = None;
    });
    let shared = Arc::new(Shared::default());
    let stop = shutdown.child_token();
    let (tx, rx) = mpsc::channel(4);
    let http = crate::livekit::http::client(false, Duration::from_secs(2));
    let sup = Supervisor { plan, status, stop: stop.clone(), cmds: rx, shared: shared.clone(), http };
    let task = tokio::spawn(sup.run());
    Ok(SupervisorHandle { cmds: tx, stop, task: Some(task), shared })
}

impl SupervisorHandle {
    /// Regenerates the config from `params`; restarts the child only if what it would be
    /// started with changed (`Ok(true)` once the new child is ready). A new config LiveKit
    /// rejects is reported as the error, and the previous one is started again.
    pub async fn reload(&self, params: LaunchParams) -> Result<bool, SupervisorError> {
        let plan = prepare(&params).await?;
        let (tx, rx) = oneshot::channel();
        self.cmds
            .send(Cmd::Reload { plan: Box::new(plan), reply: tx })
            .await
            .map_err(|_| SupervisorError::Stopped)?;
        rx.await.map_err(|_| SupervisorError::Stopped)?
    }

    /// Graceful stop: SIGTERM to the child's process group, `livekit.stopTimeout` of grace,
    /// a second SIGTERM (LiveKit's forced stop), SIGKILL after a few more seconds. Returns once
    /// the child is reaped and its temporary config removed.
    pub async fn stop(mut self) {
        self.stop.cancel();
        if let Some(task) = self.task.take() {
            if let Err(e) = task.await {
                tracing::error!("LiveKit supervisor task failed: {e}");
            }
        }
    }

    /// The child's process id while it runs.
    pub fn pid(&self) -> Option<u32> {
        match self.shared.pid.load(Ordering::SeqCst) {
            0 => None,
            p => Some(p),
        }
    }

    /// The temporary config the current child was started with (`None` for a static config).
    pub fn config_path(&self) -> Option<PathBuf> {
        self.shared.config_path.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

impl Drop for SupervisorHandle {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// Everything one child is started with.
#[derive(Clone)]
struct Plan {
    config: Arc<Config>,
    binary: PathBuf,
    version: Version,
    body: Body,
    ports: Vec<PortUse>,
    http_port: u16,
    node_ip: Option<NodeIp>,
    runtime_dir: PathBuf,
    policy: RestartPolicy,
}

#[derive(Clone, PartialEq, Eq)]
enum Body {
    Generated(String),
    Static { path: PathBuf, text: String },
}

impl Plan {
    /// Would the child be started the same way?
    fn same_child(&self, other: &Plan) -> bool {
        self.binary == other.binary && self.version == other.version && self.body == other.body
    }
}

async fn prepare(params: &LaunchParams) -> Result<Plan, SupervisorError> {
    let config = params.config.clone();
    if config.livekit.is_external() {
        return Err(SupervisorError::Config(
            "livekit.external is set: no livekit-server is started (use the external probe)".into(),
        ));
    }
    let binary = binary::find(&config)?;
    let version = binary::version_cached(&binary, &config.database_path().with_extension("livekit-version")).await?;
    let runtime_dir = configgen::runtime_dir(params.runtime_dir.as_deref());
    let plan = if let Some(path) = &config.livekit.config_path {
        let info = configgen::read_static(path)?;
        for w in &info.warnings {
            tracing::warn!("{w}");
        }
        if !info.keys.iter().any(|(k, s)| *k == params.keys.key && *s == params.keys.secret) {
            tracing::warn!(
                "{} does not contain bedrud's LiveKit API key {:?} with its secret: LiveKit will reject bedrud's tokens and webhooks",
                path.display(),
                params.keys.key
            );
        }
        let text = std::fs::read_to_string(path).map_err(|e| SupervisorError::Io {
            what: format!("cannot read livekit.configPath {}", path.display()),
            source: e,
        })?;
        tracing::info!("livekit-server {version} ({}) with the static config {}", binary.display(), path.display());
        Plan {
            config: config.clone(),
            binary,
            version,
            body: Body::Static { path: path.clone(), text },
            ports: info.ports,
            http_port: info.port,
            node_ip: None,
            runtime_dir,
            policy: params.restart_policy,
        }
    } else {
        let node = nodeip::resolve(&config)?;
        if let Some(w) = &node.warning {
            tracing::warn!("{w}");
        }
        let generated = configgen::generate(&GenInput {
            config: &config,
            keys: &params.keys,
            version,
            webhook_url: &params.webhook_url,
            node_ip: node.ip,
        })?;
        for w in &generated.warnings {
            tracing::warn!("{w}");
        }
        tracing::info!(
            "livekit-server {version} ({}); node_ip {} (from {}); TURN {}",
            binary.display(),
            node.ip,
            node.source,
            if generated.turn { "on" } else { "off" }
        );
        Plan {
            config: config.clone(),
            binary,
            version,
            body: Body::Generated(generated.yaml),
            ports: generated.ports,
            http_port: config.livekit.port,
            node_ip: Some(node),
            runtime_dir,
            policy: params.restart_policy,
        }
    };
    Ok(plan)
}

/// Fails when a port the child needs is taken, except those in `ours` (held by our own child).
pub fn check_ports(ports: &[PortUse], ours: &[PortUse]) -> Result<(), SupervisorError> {
    for p in ports {
        if ours.iter().any(|o| o.port == p.port && o.proto == p.proto) {
            continue;
        }
        let bound = match p.proto {
            Proto::Tcp => std::net::TcpListener::bind(("0.0.0.0", p.port)).map(drop),
            Proto::Udp => std::net::UdpSocket::bind(("0.0.0.0", p.port)).map(drop),
        };
        match bound {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
                return Err(SupervisorError::PortInUse { port: p.port, proto: p.proto, key: p.key.clone() })
            }
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
                return Err(SupervisorError::Io {
                    what: format!(
                        "cannot bind {} port {} ({}): ports below 1024 need CAP_NET_BIND_SERVICE (AmbientCapabilities= in the unit); or set {} to a port above 1023",
                        p.proto, p.port, p.key, p.key
                    ),
                    source: e,
                })
            }
            Err(e) => {
                return Err(SupervisorError::Io {
                    what: format!("cannot check {} port {} ({})", p.proto, p.port, p.key),
                    source: e,
                })
            }
        }
    }
    Ok(())
}

/// A reload waiting for the new child's outcome, with the config to go back to.
struct PendingReload {
    reply: oneshot::Sender<Result<bool, SupervisorError>>,
    previous: Option<Box<Plan>>,
}

enum Wake {
    Stop,
    Elapsed,
    Reloaded(PendingReload),
}

enum End {
    Stop,
    Crashed(String),
    Reload(PendingReload),
}

struct Supervisor {
    plan: Plan,
    status: StatusTx,
    stop: CancellationToken,
    cmds: mpsc::Receiver<Cmd>,
    shared: Arc<Shared>,
    http: reqwest::Client,
}

impl Supervisor {
    async fn run(mut self) {
        // Until the current plan has been ready once, a failure is final (no restart loop on
        // a config LiveKit rejects).
        let mut first = true;
        let mut attempt: u32 = 0;
        let mut pending: Option<PendingReload> = None;
        'outer: loop {
            if self.stop.is_cancelled() {
                break;
            }
            let started = match self.spawn_child().await {
                Ok(mut run) => {
                    let stop = self.stop.clone();
                    let r = tokio::select! {
                        r = self.await_ready(&mut run) => Some(r),
                        _ = stop.cancelled() => None,
                    };
                    match r {
                        None => {
                            self.stop_child(run).await;
                            break 'outer;
                        }
                        Some(Ok(())) => Ok(run),
                        Some(Err(e)) => {
                            drop(run);
                            Err(e)
                        }
                    }
                }
                Err(e) => Err(e),
            };
            let mut run = match started {
                Ok(run) => run,
                Err(e) => {
                    self.clear_pid();
                    let msg = e.to_string();
                    if first {
                        if let Some(p) = pending.take() {
                            if let Some(old) = p.previous {
                                tracing::error!("the new LiveKit config was rejected, going back to the previous one: {msg}");
                                let _ = p.reply.send(Err(e));
                                self.plan = *old;
                                self.set_state(LivekitState::Starting, None);
                                continue 'outer;
                            }
                            let _ = p.reply.send(Err(e));
                        }
                        tracing::error!("{msg}");
                        self.set_state(LivekitState::Failed { error: msg.clone() }, Some(msg));
                        // Stay down until a reload or the end.
                        match self.wait(None).await {
                            Wake::Stop => break 'outer,
                            Wake::Elapsed => continue 'outer,
                            Wake::Reloaded(p) => {
                                pending = Some(p);
                                attempt = 0;
                                self.set_state(LivekitState::Starting, None);
                                continue 'outer;
                            }
                        }
                    }
                    match self.after_failure(&mut attempt, msg, false).await {
                        Wake::Stop => break 'outer,
                        Wake::Elapsed => continue 'outer,
                        Wake::Reloaded(p) => {
                            pending = Some(p);
                            first = true;
                            attempt = 0;
                            continue 'outer;
                        }
                    }
                }
            };

            let ready_at = Instant::now();
            run.ready_at = Some(ready_at);
            run.output.mark_ready(run.pid);
            tracing::info!(
                livekit_pid = run.pid,
                "livekit-server is ready (pid {}, {} ms after start)",
                run.pid,
                run.started.elapsed().as_millis()
            );
            self.status.send_modify(|s| {
                s.state = LivekitState::Ready;
                s.ready_count += 1;
            });
            if let Some(p) = pending.take() {
                let _ = p.reply.send(Ok(true));
            }
            first = false;

            match self.watch(&mut run).await {
                End::Stop => {
                    self.stop_child(run).await;
                    break 'outer;
                }
                End::Reload(p) => {
                    tracing::info!("the LiveKit config changed: restarting livekit-server");
                    self.set_state(LivekitState::Starting, None);
                    self.stop_child(run).await;
                    pending = Some(p);
                    first = true;
                    attempt = 0;
                }
                End::Crashed(reason) => {
                    drop(run);
                    self.clear_pid();
                    if ready_at.elapsed() >= self.plan.policy.reset_after {
                        attempt = 0;
                    }
                    match self.after_failure(&mut attempt, reason, true).await {
                        Wake::Stop => break 'outer,
                        Wake::Elapsed => {}
                        Wake::Reloaded(p) => {
                            pending = Some(p);
                            first = true;
                            attempt = 0;
                        }
                    }
                }
            }
        }
        self.clear_pid();
        self.status.send_modify(|s| {
            s.state = LivekitState::Stopped;
            s.pid = None;
        });
        tracing::info!("LiveKit supervisor stopped");
    }

    /// Counts a failure, publishes `Restarting`, and waits out the backoff.
    async fn after_failure(&mut self, attempt: &mut u32, reason: String, was_ready: bool) -> Wake {
        *attempt += 1;
        let delay = self.plan.policy.delay(*attempt);
        let n = *attempt;
        let mut restarts = 0;
        self.status.send_modify(|s| {
            s.restarts += 1;
            restarts = s.restarts;
            s.state = LivekitState::Restarting { attempt: n, last_error: reason.clone() };
            s.last_error = Some(reason.clone());
        });
        let what = if was_ready { "crashed" } else { "failed again before it was ready" };
        tracing::warn!(
            "livekit-server {what}: {reason}; restart {restarts} (attempt {n} in a row) in {} ms",
            delay.as_millis()
        );
        self.wait(Some(Instant::now() + delay)).await
    }

    fn set_state(&self, state: LivekitState, error: Option<String>) {
        let node_ip = self.plan.node_ip.as_ref().map(|n| n.ip.to_string());
        let version = self.plan.version.to_string();
        self.status.send_modify(|s| {
            s.state = state;
            s.version = Some(version);
            s.node_ip = node_ip;
            if error.is_some() {
                s.last_error = error;
            }
        });
    }

    fn clear_pid(&self) {
        self.shared.pid.store(0, Ordering::SeqCst);
        *self.shared.config_path.lock().unwrap_or_else(|e| e.into_inner()) = None;
        self.status.send_modify(|s| s.pid = None);
    }

    /// Waits until `until` (forever with `None`), the end, or a reload with a new config.
    async fn wait(&mut self, until: Option<Instant>) -> Wake {
        let stop = self.stop.clone();
        loop {
            let sleep = async {
                match until {
                    Some(t) => tokio::time::sleep_until(t.into()).await,
                    None => std::future::pending().await,
                }
            };
            let cmd = tokio::select! {
                _ = stop.cancelled() => return Wake::Stop,
                _ = sleep => return Wake::Elapsed,
                cmd = self.cmds.recv() => cmd,
            };
            let Some(Cmd::Reload { plan, reply }) = cmd else { return Wake::Stop };
            // No child is running: the last one's ports are free again, so check them all.
            if let Err(e) = check_ports(&plan.ports, &[]) {
                let _ = reply.send(Err(e));
                continue;
            }
            let failed = until.is_none();
            if !failed && plan.same_child(&self.plan) {
                self.plan.config = plan.config.clone();
                self.plan.policy = plan.policy;
                let _ = reply.send(Ok(false));
                continue;
            }
            let old = std::mem::replace(&mut self.plan, *plan);
            // After a failed first start there is no known-good config to go back to.
            let previous = (!failed).then(|| Box::new(old));
            return Wake::Reloaded(PendingReload { reply, previous });
        }
    }

    async fn spawn_child(&self) -> Result<Running, SupervisorError> {
        let plan = &self.plan;
        let (file, config_arg) = match &plan.body {
            Body::Generated(yaml) => {
                let f = TempConfig::create(&plan.runtime_dir, yaml)?;
                let p = f.path().to_path_buf();
                (Some(f), p)
            }
            Body::Static { path, .. } => (None, path.clone()),
        };
        let mut cmd = tokio::process::Command::new(&plan.binary);
        cmd.arg("--config")
            .arg(&config_arg)
            // Nothing of bedrud's environment (secrets, BEDRUD_*, NOTIFY_SOCKET) reaches LiveKit.
            .env_clear()
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .process_group(0);
        if let Some(p) = std::env::var_os("PATH") {
            cmd.env("PATH", p);
        }
        if let Some(h) = std::env::var_os("HOME") {
            cmd.env("HOME", h);
        }
        let parent = nix::unistd::getpid();
        // SAFETY: only async-signal-safe syscalls (prctl, getppid) run between fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).map_err(std::io::Error::from)?;
                // bedrud died between fork and prctl: do not outlive it.
                if nix::unistd::getppid() != parent {
                    return Err(std::io::Error::other("bedrud exited while starting livekit-server"));
                }
                Ok(())
            });
        }
        let mut child = spawn_from_stable_thread(cmd).await.map_err(|e| SupervisorError::Io {
            what: format!("cannot start {}", plan.binary.display()),
            source: e,
        })?;
        let pid = child.id().unwrap_or(0);
        let output = Arc::new(Output::default());
        let mut readers = Vec::new();
        if let Some(out) = child.stdout.take() {
            readers.push(tokio::spawn(read_lines(out, Stream::Stdout, pid, output.clone())));
        }
        if let Some(err) = child.stderr.take() {
            readers.push(tokio::spawn(read_lines(err, Stream::Stderr, pid, output.clone())));
        }
        self.shared.pid.store(pid, Ordering::SeqCst);
        *self.shared.config_path.lock().unwrap_or_else(|e| e.into_inner()) =
            file.as_ref().map(|f| f.path().to_path_buf());
        self.status.send_modify(|s| s.pid = Some(pid));
        tracing::info!(
            livekit_pid = pid,
            "started livekit-server (pid {pid}): {} --config {}",
            plan.binary.display(),
            config_arg.display()
        );
        Ok(Running { child, pid, _file: file, output, readers, started: Instant::now(), ready_at: None, reaped: false })
    }

    fn ready_url(&self) -> String {
        format!("http://127.0.0.1:{}/", self.plan.http_port)
    }

    /// Polls `GET /` until 200 OK; the child exiting first, or the deadline, is a failed start.
    async fn await_ready(&self, run: &mut Running) -> Result<(), SupervisorError> {
        let timeout = self.plan.config.livekit.start_timeout;
        let deadline = Instant::now() + timeout;
        let url = self.ready_url();
        let mut tick = tokio::time::interval(READY_POLL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                st = run.child.wait() => {
                    run.reaped = true;
                    let status = describe_exit(st);
                    run.drain().await;
                    return Err(self.start_error(run, status));
                }
                _ = tick.tick() => {}
            }
            if probe(&self.http, &url).await.is_ok() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                run.kill().await;
                run.drain().await;
                let last_output = run.output.failure_text().unwrap_or_default();
                run.output.flush_pending(run.pid, Level::ERROR);
                return Err(SupervisorError::StartTimeout { timeout, last_output });
            }
        }
    }

    /// The error for a child that exited before it was ready, from what it printed.
    fn start_error(&self, run: &Running, status: String) -> SupervisorError {
        run.output.flush_pending(run.pid, Level::ERROR);
        let message = run
            .output
            .failure_text()
            .unwrap_or_else(|| "it printed no reason".to_string());
        if let Some((port, proto)) = address_in_use(&message) {
            let key = self
                .plan
                .ports
                .iter()
                .find(|p| p.port == port)
                .map(|p| p.key.clone())
                .unwrap_or_else(|| match &self.plan.body {
                    Body::Static { path, .. } => format!("{} (livekit.configPath)", path.display()),
                    Body::Generated(_) => "livekit.udpPortRangeStart/End".to_string(),
                });
            return SupervisorError::PortInUse { port, proto, key };
        }
        let hint = hint_for(&message, &self.plan);
        SupervisorError::StartFailed { message, status, hint }
    }

    /// Runs while the child is ready: exit, failed health checks, reloads and the end.
    async fn watch(&mut self, run: &mut Running) -> End {
        let stop = self.stop.clone();
        let interval = self.plan.config.livekit.health_interval.max(Duration::from_millis(100));
        let mut tick = tokio::time::interval_at((Instant::now() + interval).into(), interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut failures = 0u32;
        let url = self.ready_url();
        loop {
            enum Ev {
                Exit(std::io::Result<ExitStatus>),
                Stop,
                Tick,
                Cmd(Option<Cmd>),
            }
            let ev = tokio::select! {
                st = run.child.wait() => Ev::Exit(st),
                _ = stop.cancelled() => Ev::Stop,
                _ = tick.tick() => Ev::Tick,
                cmd = self.cmds.recv() => Ev::Cmd(cmd),
            };
            match ev {
                Ev::Exit(st) => {
                    run.reaped = true;
                    let status = describe_exit(st);
                    run.drain().await;
                    let last = run.output.last_line();
                    return End::Crashed(match last {
                        Some(l) => format!("{status}; last output: {l}"),
                        None => status,
                    });
                }
                Ev::Stop | Ev::Cmd(None) => return End::Stop,
                Ev::Tick => match probe(&self.http, &url).await {
                    Ok(()) => failures = 0,
                    Err(e) => {
                        failures += 1;
                        let limit = self.plan.config.livekit.health_failures.max(1);
                        tracing::warn!(livekit_pid = run.pid, "LiveKit health check failed ({failures}/{limit}): {e}");
                        if failures >= limit {
                            run.kill().await;
                            run.drain().await;
                            return End::Crashed(format!(
                                "stopped answering health checks ({failures} in a row, last: {e}); killed"
                            ));
                        }
                    }
                },
                Ev::Cmd(Some(Cmd::Reload { plan, reply })) => {
                    if plan.same_child(&self.plan) {
                        self.plan.config = plan.config.clone();
                        self.plan.policy = plan.policy;
                        let _ = reply.send(Ok(false));
                        continue;
                    }
                    if let Err(e) = check_ports(&plan.ports, &self.plan.ports) {
                        let _ = reply.send(Err(e));
                        continue;
                    }
                    let old = std::mem::replace(&mut self.plan, *plan);
                    return End::Reload(PendingReload { reply, previous: Some(Box::new(old)) });
                }
            }
        }
    }

    /// SIGTERM, grace, second SIGTERM, SIGKILL; reaps the child and removes its config.
    async fn stop_child(&self, mut run: Running) {
        let grace = match run.ready_at {
            Some(at) => {
                if let Some(rest) = SETTLE_AFTER_READY.checked_sub(at.elapsed()) {
                    tokio::time::sleep(rest).await;
                }
                self.plan.config.livekit.stop_timeout
            }
            None => NOT_READY_GRACE.min(self.plan.config.livekit.stop_timeout),
        };
        if !run.reaped {
            match run.child.try_wait() {
                Ok(Some(_)) => run.reaped = true,
                _ => {
                    let t0 = Instant::now();
                    run.signal(Signal::SIGTERM);
                    if !run.wait_for(grace).await {
                        tracing::warn!(
                            livekit_pid = run.pid,
                            "livekit-server still running {} s after SIGTERM (livekit.stopTimeout): forcing it to stop",
                            grace.as_secs_f32()
                        );
                        run.signal(Signal::SIGTERM);
                        if !run.wait_for(FORCE_GRACE).await {
                            tracing::warn!(livekit_pid = run.pid, "livekit-server ignored the forced stop: SIGKILL");
                            run.kill().await;
                        }
                    }
                    tracing::info!(livekit_pid = run.pid, "livekit-server stopped in {} ms", t0.elapsed().as_millis());
                }
            }
        }
        run.sweep();
        run.drain().await;
        drop(run);
        self.clear_pid();
    }
}

/// Spawns `cmd` from a thread that lives as long as the process. The parent-death signal
/// fires when the *thread* that forked the child exits, and runtime threads may exit (the
/// blocking pool, `block_in_place`), which would kill a healthy LiveKit.
async fn spawn_from_stable_thread(mut cmd: tokio::process::Command) -> std::io::Result<Child> {
    type Job = (tokio::process::Command, tokio::runtime::Handle, oneshot::Sender<std::io::Result<Child>>);
    static SPAWNER: std::sync::OnceLock<Option<std::sync::mpsc::Sender<Job>>> = std::sync::OnceLock::new();
    let spawner = SPAWNER.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::channel::<Job>();
        let started = std::thread::Builder::new().name("livekit-spawner".into()).spawn(move || {
            while let Ok((mut cmd, rt, reply)) = rx.recv() {
                // The child is registered with the caller's runtime for reaping.
                let _enter = rt.enter();
                let _ = reply.send(cmd.spawn());
            }
        });
        match started {
            Ok(_) => Some(tx),
            Err(e) => {
                tracing::warn!("cannot start the livekit-spawner thread ({e}); spawning from a runtime thread");
                None
            }
        }
    });
    let Some(spawner) = spawner else { return cmd.spawn() };
    let (reply, answer) = oneshot::channel();
    let sent = spawner.send((cmd, tokio::runtime::Handle::current(), reply));
    match sent {
        Ok(()) => answer.await.unwrap_or_else(|_| Err(std::io::Error::other("the livekit-spawner thread is gone"))),
        Err(std::sync::mpsc::SendError((mut cmd, _, _))) => cmd.spawn(),
    }
}

/// A running child and what belongs to it.
struct Running {
    child: Child,
    pid: u32,
    /// Removed when this is dropped, i.e. once the child has exited.
    _file: Option<TempConfig>,
    output: Arc<Output>,
    readers: Vec<JoinHandle<()>>,
    started: Instant,
    ready_at: Option<Instant>,
    reaped: bool,
}

impl Running {
    fn group(&self) -> Option<Pid> {
        // Never 0 or 1: killpg(0) would signal bedrud's own group.
        i32::try_from(self.pid).ok().filter(|p| *p > 1).map(Pid::from_raw)
    }

    /// Signals the child's process group; only while the child is not reaped (its pid, and so
    /// the group id, cannot have been reused).
    fn signal(&mut self, sig: Signal) {
        if self.reaped {
            return;
        }
        if let Some(g) = self.group() {
            if let Err(e) = killpg(g, sig) {
                if e != nix::errno::Errno::ESRCH {
                    tracing::warn!(livekit_pid = self.pid, "cannot send {sig} to livekit-server: {e}");
                }
            }
        }
    }

    /// Kills what is left of the group once the leader is gone (LiveKit starts no helpers,
    /// but none may outlive it either).
    fn sweep(&self) {
        if let Some(g) = self.group() {
            let _ = killpg(g, Signal::SIGKILL);
        }
    }

    async fn wait_for(&mut self, limit: Duration) -> bool {
        if self.reaped {
            return true;
        }
        match tokio::time::timeout(limit, self.child.wait()).await {
            Ok(_) => {
                self.reaped = true;
                true
            }
            Err(_) => false,
        }
    }

    /// SIGKILL to the group, then reap.
    async fn kill(&mut self) {
        self.signal(Signal::SIGKILL);
        if !self.wait_for(Duration::from_secs(10)).await {
            tracing::error!(livekit_pid = self.pid, "livekit-server does not die after SIGKILL");
        }
    }

    /// Lets the output readers finish the last lines.
    async fn drain(&mut self) {
        for r in self.readers.drain(..) {
            let abort = r.abort_handle();
            if tokio::time::timeout(DRAIN_TIMEOUT, r).await.is_err() {
                abort.abort();
            }
        }
    }
}

fn describe_exit(st: std::io::Result<ExitStatus>) -> String {
    match st {
        Err(e) => format!("its exit status is unknown ({e})"),
        Ok(st) => match (st.code(), st.signal()) {
            (Some(c), _) => format!("exited with status {c}"),
            (None, Some(s)) => match Signal::try_from(s) {
                Ok(sig) => format!("killed by signal {sig}"),
                Err(_) => format!("killed by signal {s}"),
            },
            _ => format!("ended ({st})"),
        },
    }
}

/// `listen tcp :7880: bind: address already in use` → (7880, TCP).
fn address_in_use(message: &str) -> Option<(u16, Proto)> {
    let line = message.lines().find(|l| l.contains("address already in use"))?;
    let before = &line[..line.find("address already in use")?];
    let port = before
        .split(':')
        .filter_map(|part| part.trim().parse::<u16>().ok())
        .next_back()?;
    let proto = if before.contains("udp") { Proto::Udp } else { Proto::Tcp };
    Some((port, proto))
}

fn hint_for(message: &str, plan: &Plan) -> Option<String> {
    let static_file = matches!(plan.body, Body::Static { .. });
    let m = message.to_ascii_lowercase();
    let hint = if m.contains("could not parse config") || m.contains("not found in type") {
        if static_file {
            format!("livekit.configPath has a key livekit-server {} does not know; remove or correct it", plan.version)
        } else {
            format!("the generated config has a key livekit-server {} does not know; upgrade livekit-server (scripts/install-livekit) or report this", plan.version)
        }
    } else if m.contains("turn domain") && static_file {
        "TURN/TLS needs a DNS name (with a dot) as turn.domain in the livekit.configPath file".into()
    } else if m.contains("turn domain") {
        "TURN/TLS needs a DNS name (with a dot) as its domain: set server.host to the certificate's name".into()
    } else if m.contains("turn tls cert") && static_file {
        "TURN/TLS cannot load the certificate: check turn.cert_file and turn.key_file in the livekit.configPath file".into()
    } else if m.contains("turn tls cert") {
        "TURN/TLS cannot load the certificate: check server.tls.certFile and server.tls.keyFile".into()
    } else if m.contains("could not resolve external ip") {
        "turn off livekit.useExternalIP and set livekit.nodeIP".into()
    } else if m.contains("api_key is required to use webhooks") {
        "webhook.api_key must be one of the keys".into()
    } else if m.contains("permission denied") && m.contains("bind") {
        "a port below 1024 needs CAP_NET_BIND_SERVICE; or use ports above 1023".into()
    } else {
        return None;
    };
    Some(hint)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stream {
    Stdout,
    Stderr,
}

/// What the child printed that matters for error messages.
#[derive(Debug, Default)]
struct Output {
    inner: Mutex<OutputInner>,
}

#[derive(Debug, Default)]
struct OutputInner {
    ready: bool,
    /// Plain stdout lines printed before readiness: the fatal error, if any.
    pending: Vec<String>,
    /// The last error-level log message.
    last_error: Option<String>,
    /// The last lines of any kind.
    tail: VecDeque<String>,
}

impl Output {
    fn lock(&self) -> std::sync::MutexGuard<'_, OutputInner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn mark_ready(&self, pid: u32) {
        self.flush_pending(pid, Level::INFO);
        self.lock().ready = true;
    }

    /// Logs the held-back stdout lines at `level`.
    fn flush_pending(&self, pid: u32, level: Level) {
        let lines = self.lock().pending.clone();
        for l in lines {
            emit(level, pid, &l, None);
        }
    }

    /// The reason to show for a failed start: LiveKit's stdout, else its last error.
    fn failure_text(&self) -> Option<String> {
        let g = self.lock();
        if !g.pending.is_empty() {
            return Some(g.pending.join("\n"));
        }
        if let Some(e) = &g.last_error {
            return Some(e.clone());
        }
        if let Some(p) = g.tail.iter().find(|l| l.starts_with("panic:") || l.starts_with("fatal error:")) {
            return Some(p.clone());
        }
        g.tail.back().cloned()
    }

    fn last_line(&self) -> Option<String> {
        let g = self.lock();
        if let Some(p) = g.tail.iter().find(|l| l.starts_with("panic:") || l.starts_with("fatal error:")) {
            return Some(p.clone());
        }
        g.tail.back().cloned()
    }

    fn push_tail(g: &mut OutputInner, line: &str) {
        if g.tail.len() >= 20 {
            g.tail.pop_front();
        }
        g.tail.push_back(line.to_string());
    }
}

async fn read_lines<R: AsyncRead + Unpin>(stream: R, kind: Stream, pid: u32, output: Arc<Output>) {
    let mut reader = BufReader::new(stream);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        match reader.read_until(b'\n', &mut buf).await {
            Ok(0) => break,
            Ok(_) => {
                if buf.len() > MAX_LINE {
                    buf.truncate(MAX_LINE);
                }
                let line = String::from_utf8_lossy(&buf);
                handle_line(line.trim_end(), kind, pid, &output);
            }
            Err(e) => {
                tracing::debug!(livekit_pid = pid, "reading livekit-server output: {e}");
                break;
            }
        }
    }
}

fn handle_line(line: &str, kind: Stream, pid: u32, output: &Output) {
    if line.trim().is_empty() {
        return;
    }
    if let Some((level, msg, fields)) = parse_json_line(line) {
        {
            let mut g = output.lock();
            let text = match &fields {
                Some(f) => format!("{msg} {f}"),
                None => msg.clone(),
            };
            if level == Level::ERROR {
                g.last_error = Some(text.clone());
            }
            Output::push_tail(&mut g, &text);
        }
        emit(level, pid, &msg, fields.as_deref());
        return;
    }
    if let Some((level, msg)) = parse_console_line(line) {
        {
            let mut g = output.lock();
            if level == Level::ERROR {
                g.last_error = Some(msg.clone());
            }
            Output::push_tail(&mut g, &msg);
        }
        emit(level, pid, &msg, None);
        return;
    }
    let log_now = {
        let mut g = output.lock();
        Output::push_tail(&mut g, line);
        match kind {
            Stream::Stdout if !g.ready => {
                if g.pending.len() < MAX_PENDING {
                    g.pending.push(line.to_string());
                }
                None
            }
            Stream::Stdout => Some(Level::INFO),
            Stream::Stderr => Some(Level::WARN),
        }
    };
    if let Some(level) = log_now {
        emit(level, pid, line, None);
    }
}

/// LiveKit's JSON log line: level, msg, and the other fields (minus `ts` and `logger`) as
/// compact JSON. Its per-request API lines (logger `livekit.api`) are demoted to debug.
fn parse_json_line(line: &str) -> Option<(Level, String, Option<String>)> {
    if !line.starts_with('{') {
        return None;
    }
    let mut map: serde_json::Map<String, serde_json::Value> = serde_json::from_str(line).ok()?;
    let level = map.remove("level")?;
    let mut level = level_of(level.as_str()?);
    let msg = match map.remove("msg") {
        Some(serde_json::Value::String(s)) => s,
        Some(other) => other.to_string(),
        None => String::new(),
    };
    map.remove("ts");
    // One line per API request (the reconciler's ListRooms every minute) is detail, not news.
    if map.remove("logger").is_some_and(|l| l == "livekit.api") && level == Level::INFO {
        level = Level::DEBUG;
    }
    let fields = (!map.is_empty()).then(|| serde_json::Value::Object(map).to_string());
    Some((level, msg, fields))
}

/// LiveKit's console format, used before its logging config applies:
/// `2026-01-01T00:00:00.000Z\tINFO\tlivekit\tcaller\tmessage`.
fn parse_console_line(line: &str) -> Option<(Level, String)> {
    let mut parts = line.split('\t');
    let ts = parts.next()?;
    if !ts.starts_with(|c: char| c.is_ascii_digit()) {
        return None;
    }
    let level = parts.next()?;
    if !matches!(level, "DEBUG" | "INFO" | "WARN" | "ERROR" | "DPANIC" | "PANIC" | "FATAL") {
        return None;
    }
    let rest: Vec<&str> = parts.collect();
    Some((level_of(level), rest.join(" ")))
}

fn level_of(s: &str) -> Level {
    match s.to_ascii_lowercase().as_str() {
        "debug" => Level::DEBUG,
        "warn" | "warning" => Level::WARN,
        "error" | "dpanic" | "panic" | "fatal" => Level::ERROR,
        _ => Level::INFO,
    }
}

/// A tracing event for one LiveKit line, marked `source = "livekit"` and with its pid
/// (journald: SOURCE=livekit, LIVEKIT_PID=…); LiveKit's own fields go in
/// [`crate::logging::LIVEKIT_FIELDS`], which every log output spreads into separate fields.
fn emit(level: Level, pid: u32, msg: &str, fields: Option<&str>) {
    macro_rules! ev {
        ($lvl:expr) => {
            match fields {
                Some(f) => tracing::event!(target: "livekit", $lvl, source = "livekit", livekit_pid = pid, lk_fields = f, "{msg}"),
                None => tracing::event!(target: "livekit", $lvl, source = "livekit", livekit_pid = pid, "{msg}"),
            }
        };
    }
    match level {
        Level::ERROR => ev!(Level::ERROR),
        Level::WARN => ev!(Level::WARN),
        Level::INFO => ev!(Level::INFO),
        Level::DEBUG => ev!(Level::DEBUG),
        _ => ev!(Level::TRACE),
    }
}

/// `GET url` answered 200 with body `OK`.
async fn probe(client: &reqwest::Client, url: &str) -> Result<(), String> {
    let resp = client.get(url).send().await.map_err(|e| error_chain(&e))?;
    let status = resp.status();
    let body = resp.text().await.map_err(|e| error_chain(&e))?;
    if status == reqwest::StatusCode::OK && body.trim() == "OK" {
        Ok(())
    } else {
        let body: String = body.trim().chars().take(100).collect();
        Err(format!("GET {url} answered {status} {body:?}"))
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(x) = src {
        let t = x.to_string();
        if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        src = x.source();
    }
    s
}

/// External mode: probes `livekit.internalHost` `GET /` every `livekit.healthInterval` and
/// publishes `Ready` / `Unreachable`. Warns once when `skipTLSVerify` is on.
pub fn spawn_external_probe(config: Arc<Config>, status: StatusTx, shutdown: CancellationToken) -> JoinHandle<()> {
    tokio::spawn(async move {
        let lk = &config.livekit;
        let url = format!("{}/", config.livekit_internal_url());
        if lk.skip_tls_verify {
            tracing::warn!("livekit.skipTLSVerify is on: the certificate of {url} is not verified");
        }
        let interval = lk.health_interval.max(Duration::from_millis(100));
        let client = crate::livekit::http::client(lk.skip_tls_verify, interval.clamp(Duration::from_secs(1), Duration::from_secs(5)));
        status.send_modify(|s| {
            *s = LivekitStatus { restarts: s.restarts, ready_count: s.ready_count, ..LivekitStatus::new(Mode::External) };
        });
        loop {
            let result = probe(&client, &url).await;
            status.send_if_modified(|s| match &result {
                Ok(()) if s.state != LivekitState::Ready => {
                    tracing::info!("LiveKit at {url} is ready");
                    s.state = LivekitState::Ready;
                    s.ready_count += 1;
                    true
                }
                Ok(()) => false,
                Err(e) => {
                    let mut error = e.clone();
                    if !lk.skip_tls_verify && url.starts_with("https://") && error.to_ascii_lowercase().contains("certificate") {
                        error.push_str(" (a self-signed certificate needs livekit.skipTLSVerify: true)");
                    }
                    let new = LivekitState::Unreachable { error: error.clone() };
                    if s.state == new {
                        return false;
                    }
                    tracing::warn!("LiveKit at {url} does not answer: {error}");
                    s.state = new;
                    s.last_error = Some(error);
                    true
                }
            });
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tokio::time::sleep(interval) => {}
            }
        }
        status.send_modify(|s| s.state = LivekitState::Stopped);
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_the_cap() {
        let p = RestartPolicy::default();
        let secs: Vec<f32> = (1..=9).map(|a| p.delay(a).as_secs_f32()).collect();
        assert_eq!(secs, vec![0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0]);
        assert_eq!(p.delay(0), Duration::from_millis(500));
        assert_eq!(p.delay(u32::MAX), Duration::from_secs(30));
    }

    #[test]
    fn address_in_use_is_parsed() {
        assert_eq!(
            address_in_use("listen tcp :17880: bind: address already in use"),
            Some((17880, Proto::Tcp))
        );
        assert_eq!(
            address_in_use("x\nlisten udp4 0.0.0.0:7882: bind: address already in use"),
            Some((7882, Proto::Udp))
        );
        assert_eq!(address_in_use("TURN domain required"), None);
    }

    #[test]
    fn json_and_console_lines() {
        let (l, m, f) = parse_json_line(
            r#"{"level":"info","ts":1.5,"logger":"livekit","caller":"service/server.go:292","msg":"starting LiveKit server","portHttp":7880}"#,
        )
        .unwrap();
        assert_eq!(l, Level::INFO);
        assert_eq!(m, "starting LiveKit server");
        let f = f.unwrap();
        assert!(f.contains("\"portHttp\":7880") && f.contains("caller") && !f.contains("ts"), "{f}");
        assert_eq!(parse_json_line(r#"{"level":"error","msg":"x"}"#).unwrap().0, Level::ERROR);
        let (l, m, _) = parse_json_line(r#"{"level":"info","logger":"livekit.api","msg":"API RoomService.ListRooms","status":"200"}"#).unwrap();
        assert_eq!((l, m.as_str()), (Level::DEBUG, "API RoomService.ListRooms"));
        assert!(parse_json_line("could not parse config").is_none());
        let (l, m) = parse_console_line("2026-11-24T02:27:58.617Z\tWARN\tlivekit\trouting/x.go:1\tsomething odd").unwrap();
        assert_eq!(l, Level::WARN);
        assert!(m.ends_with("something odd"));
        assert!(parse_console_line("TURN domain required").is_none());
    }

    #[test]
    fn failure_text_prefers_stdout() {
        let o = Output::default();
        handle_line(r#"{"level":"info","msg":"hello"}"#, Stream::Stderr, 1, &o);
        assert_eq!(o.failure_text().as_deref(), Some("hello"));
        handle_line(r#"{"level":"error","msg":"bad thing"}"#, Stream::Stderr, 1, &o);
        assert_eq!(o.failure_text().as_deref(), Some("bad thing"));
        handle_line("could not parse config: yaml: unmarshal errors:", Stream::Stdout, 1, &o);
        handle_line("  line 4: field bogus not found in type config.Config", Stream::Stdout, 1, &o);
        assert_eq!(
            o.failure_text().as_deref(),
            Some("could not parse config: yaml: unmarshal errors:\n  line 4: field bogus not found in type config.Config")
        );
    }

    #[test]
    fn port_check_finds_a_taken_port() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let ports = vec![PortUse { port, proto: Proto::Tcp, key: "livekit.port".into() }];
        let e = check_ports(&ports, &[]).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!("TCP port {port} is already in use (livekit.port); stop the other process or set livekit.port to a free port")
        );
        assert!(check_ports(&ports, &ports).is_ok());
        drop(l);
        assert!(check_ports(&ports, &[]).is_ok());
    }
}
