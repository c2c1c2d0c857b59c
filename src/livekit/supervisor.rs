//! Embedded mode: runs `livekit-server` as bedrud's child and keeps it healthy; external mode:
//! probes the operator's LiveKit.
//!
//! [`start`] does every check that can fail fast (binary, version, node IP, config, ports) and
//! returns an error for those. It then hands the child to the generic supervisor
//! ([`crate::supervise`]): the first start's outcome is published on the status channel only
//! (`Ready`, or `Failed` when LiveKit exits or stays unhealthy before `livekit.startTimeout`), so
//! the daemon can keep systemd informed while it waits. A crash after readiness is restarted
//! with backoff; a failed first start is not retried until a reload.
//!
//! livekit-server exits 0 on fatal errors and prints them on stdout, so "exited before it
//! answered `GET /` with 200 OK" is the failure test, and its stdout is the message shown.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use nix::sys::signal::Signal;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::livekit::binary::{self, Version};
use crate::livekit::configgen::{self, GenInput, RedisConn};
use crate::livekit::nodeip::{self, NodeIp};
use crate::livekit::status::{LivekitState, LivekitStatus, Mode, StatusTx};
use crate::livekit::ApiKeys;
use crate::supervise::{self, ChildState, Emit, Event, Launch, Limits, Observer, PortUse, Proto, Spec, Stop};

pub use crate::supervise::{check_ports, RestartPolicy, Tried};

/// Why LiveKit could not be started or supervised (the generic child error).
pub type SupervisorError = supervise::Error;

/// Wait after the second SIGTERM (LiveKit's forced stop) before SIGKILL.
const FORCE_GRACE: Duration = Duration::from_secs(3);
/// livekit-server ignores a stop signal that arrives before it marks itself running, about
/// 100 ms after it starts answering `GET /`; the first SIGTERM is held back until this long
/// after readiness.
const SETTLE_AFTER_READY: Duration = Duration::from_millis(300);
/// Readiness is polled this often while the child starts.
const READY_POLL: Duration = Duration::from_millis(100);

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
    /// The `redis:` block of LiveKit's config (recording needs it).
    pub redis: Option<RedisConn>,
}

impl fmt::Debug for LaunchParams {
    // The config holds the API secret; only what identifies the launch is shown.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LaunchParams")
            .field("keys", &self.keys)
            .field("webhook_url", &self.webhook_url)
            .field("runtime_dir", &self.runtime_dir)
            .field("restart_policy", &self.restart_policy)
            .field("redis", &self.redis)
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
            redis: None,
        }
    }
}

/// The running supervisor. Dropping it stops LiveKit in the background; [`Self::stop`] waits.
#[derive(Debug)]
pub struct SupervisorHandle {
    inner: supervise::Handle<Plan>,
}

/// Preflight (binary, version, node IP, config generation, stale temp files, ports), then
/// hands the child to the supervisor. Preflight problems are returned here; the outcome of
/// the first start is published on `status` (`Ready` or `Failed`).
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
    Ok(SupervisorHandle { inner: supervise::start(plan, status, &shutdown) })
}

impl SupervisorHandle {
    /// Regenerates the config from `params`; restarts the child only if what it would be
    /// started with changed (`Ok(true)` once the new child is ready). A new config LiveKit
    /// rejects is reported as the error, and the previous one is started again.
    pub async fn reload(&self, params: LaunchParams) -> Result<bool, SupervisorError> {
        let plan = prepare(&params).await?;
        self.inner.reload(plan).await
    }

    /// Graceful stop: SIGTERM to the child's process group, `livekit.stopTimeout` of grace,
    /// a second SIGTERM (LiveKit's forced stop), SIGKILL after a few more seconds. Returns once
    /// the child is reaped and its temporary config removed.
    pub async fn stop(self) {
        self.inner.stop().await
    }

    /// The child's process id while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.inner.pid()
    }

    /// The temporary config the current child was started with (`None` for a static config).
    pub fn config_path(&self) -> Option<PathBuf> {
        self.inner.temp_path()
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
    http: reqwest::Client,
}

#[derive(Clone, PartialEq, Eq)]
enum Body {
    Generated(String),
    Static { path: PathBuf, text: String },
}

crate::emitter!(emit_livekit, "livekit", livekit_pid);

impl Spec for Plan {
    fn program(&self) -> &str {
        binary::BINARY_NAME
    }

    fn launch(&self) -> Result<Launch, SupervisorError> {
        let (temp, config_arg) = match &self.body {
            Body::Generated(yaml) => {
                let f = configgen::temp_config(&self.runtime_dir, yaml)?;
                let p = f.path().to_path_buf();
                (Some(f), p)
            }
            Body::Static { path, .. } => (None, path.clone()),
        };
        Ok(Launch { program: self.binary.clone(), args: vec!["--config".into(), config_arg.into()], env: Vec::new(), temp })
    }

    fn probe(&self) -> impl std::future::Future<Output = Result<(), String>> + Send + '_ {
        let url = format!("http://127.0.0.1:{}/", self.http_port);
        async move { supervise::http_probe(&self.http, &url, Some("OK")).await }
    }

    fn limits(&self) -> Limits {
        let lk = &self.config.livekit;
        Limits {
            start_timeout: lk.start_timeout,
            start_timeout_key: "livekit.startTimeout",
            ready_test: "answer GET / with 200 OK",
            ready_poll: READY_POLL,
            health_interval: lk.health_interval,
            health_failures: lk.health_failures,
            policy: self.policy,
            stop: Stop {
                signal: Signal::SIGTERM,
                grace: lk.stop_timeout,
                grace_key: "livekit.stopTimeout",
                force: Some((Signal::SIGTERM, FORCE_GRACE)),
            },
            settle_after_ready: SETTLE_AFTER_READY,
        }
    }

    fn ports(&self) -> &[PortUse] {
        &self.ports
    }

    fn same_child(&self, other: &Self) -> bool {
        self.binary == other.binary && self.version == other.version && self.body == other.body
    }

    fn start_error(&self, message: String, status: String) -> SupervisorError {
        if let Some((port, proto)) = address_in_use(&message) {
            let key = self
                .ports
                .iter()
                .find(|p| p.port == port)
                .map(|p| p.key.clone())
                .unwrap_or_else(|| match &self.body {
                    Body::Static { path, .. } => format!("{} (livekit.configPath)", path.display()),
                    Body::Generated(_) => "livekit.udpPortRangeStart/End".to_string(),
                });
            return SupervisorError::PortInUse { port, proto, key };
        }
        let hint = hint_for(&message, self);
        SupervisorError::StartFailed { program: binary::BINARY_NAME.into(), message, status, hint }
    }

    fn emit(&self) -> Emit {
        emit_livekit
    }
}

/// LiveKit's status channel follows the child's life, with the version and node IP of the
/// config in force.
impl Observer<Plan> for StatusTx {
    fn event(&self, plan: &Plan, ev: Event<'_>) {
        self.send_modify(|s| match ev {
            Event::Spawned(pid) => s.pid = Some(pid),
            Event::Exited => s.pid = None,
            Event::State(st) => {
                s.version = Some(plan.version.to_string());
                s.node_ip = plan.node_ip.as_ref().map(|n| n.ip.to_string());
                s.state = match st {
                    ChildState::Starting => LivekitState::Starting,
                    ChildState::Ready => {
                        s.ready_count += 1;
                        LivekitState::Ready
                    }
                    ChildState::Restarting { attempt, last_error } => {
                        s.restarts += 1;
                        s.last_error = Some(last_error.clone());
                        LivekitState::Restarting { attempt: *attempt, last_error: last_error.clone() }
                    }
                    ChildState::Failed { error } => {
                        s.last_error = Some(error.clone());
                        LivekitState::Failed { error: error.clone() }
                    }
                    ChildState::Stopped => {
                        s.pid = None;
                        LivekitState::Stopped
                    }
                };
            }
        });
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
    let runtime_dir = supervise::runtime_dir(params.runtime_dir.as_deref());
    let http = crate::livekit::http::client(false, Duration::from_secs(2));
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
            http,
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
            redis: params.redis.as_ref(),
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
            http,
        }
    };
    Ok(plan)
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
            let result = supervise::http_probe(&client, &url, Some("OK")).await;
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
    fn address_in_use_is_parsed() {
        assert_eq!(address_in_use("listen tcp :17880: bind: address already in use"), Some((17880, Proto::Tcp)));
        assert_eq!(address_in_use("x\nlisten udp4 0.0.0.0:7882: bind: address already in use"), Some((7882, Proto::Udp)));
        assert_eq!(address_in_use("TURN domain required"), None);
    }
}
