//! Child processes bedrud owns (livekit-server, redis-server, the egress worker, pulseaudio):
//! one supervisor for all of them.
//!
//! A child is described by a [`Spec`]: how to start it, how to tell it is ready and healthy,
//! how to stop it, and how to read its log lines. [`start`] spawns a task that owns the child:
//! spawn in its own process group with a parent-death signal, wait for readiness, probe health,
//! restart with backoff after a crash, restart on a reload that changes the spec, and stop it
//! with a signal, a grace period and SIGKILL. Its output is forwarded line by line to the log
//! with the child's level and a `SOURCE=` field. What happens is reported to an [`Observer`].
//!
//! The first start of a spec is not retried when it fails: a child that cannot start with a
//! given configuration fails the same way again, and the reason is what the operator needs.

mod binary;
mod child;
mod output;
mod run;
mod tempfile;

use std::ffi::OsString;
use std::fmt;
use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;

use nix::sys::signal::Signal;
use serde::Serialize;
use tokio::sync::watch;

pub use binary::{check_executable, find, Candidate, Tried};
#[doc(hidden)]
pub use output::fuzz_output;
pub use output::{level_of, parse_zap_console, parse_zap_json, Emit, Parsed};
pub use run::{start, Handle};
pub use tempfile::{remove_stale, runtime_dir, TempFile};

/// Everything the supervisor needs to know about one kind of child.
pub trait Spec: Send + Sync + Sized + 'static {
    /// The program's name in messages, e.g. `livekit-server`.
    fn program(&self) -> &str;
    /// How to start it now. Files it needs (a temporary config) travel in [`Launch::temp`] and
    /// are removed when the child has exited.
    fn launch(&self) -> Result<Launch, Error>;
    /// One readiness / health probe: `Ok` when the child serves.
    fn probe(&self) -> impl Future<Output = Result<(), String>> + Send + '_;
    /// Timeouts, health checks, restart backoff and the stop sequence.
    fn limits(&self) -> Limits;
    /// Ports the child binds; checked before it starts (named in the error when taken).
    fn ports(&self) -> &[PortUse] {
        &[]
    }
    /// Would `other` start the same child? A reload with the same child keeps it running.
    fn same_child(&self, other: &Self) -> bool;
    /// The error for a child that exited before it was ready, from what it printed (`message`)
    /// and how it ended (`status`). Children with known failure texts add a hint here.
    fn start_error(&self, message: String, status: String) -> Error {
        Error::StartFailed { program: self.program().to_string(), message, status, hint: None }
    }
    /// Reads one output line: level, message and extra fields. `None`: a plain line.
    fn parse_line(&self, line: &str) -> Option<Parsed> {
        parse_zap_json(line).or_else(|| parse_zap_console(line))
    }
    /// Writes one forwarded line to the log (see [`emitter!`](crate::emitter)).
    fn emit(&self) -> Emit;
    /// A log message the child prints once it serves; readiness waits for it besides the probe.
    fn ready_message(&self) -> Option<&str> {
        None
    }
    /// Called after every exit of the child: clean up what it may have left outside its
    /// process group (programs that start helpers in sessions of their own).
    fn after_exit(&self) {}
}

/// What [`Spec::launch`] returns: the command line and what must live as long as the child.
#[derive(Debug)]
pub struct Launch {
    pub program: PathBuf,
    pub args: Vec<OsString>,
    /// The child's environment besides `PATH` and `HOME` (which are passed on unless set here);
    /// nothing else of bedrud's environment (secrets, `NOTIFY_SOCKET`) reaches it.
    pub env: Vec<(OsString, OsString)>,
    pub temp: Option<TempFile>,
}

/// Timeouts and policies of one child.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Time from spawn to ready, and the setting that holds it (for the message).
    pub start_timeout: Duration,
    pub start_timeout_key: &'static str,
    /// What "ready" means, for the timeout message: e.g. `answer GET / with 200 OK`.
    pub ready_test: &'static str,
    /// Readiness is polled this often while the child starts.
    pub ready_poll: Duration,
    /// Health probes once ready; after `health_failures` failures in a row it is restarted.
    pub health_interval: Duration,
    pub health_failures: u32,
    pub policy: RestartPolicy,
    pub stop: Stop,
    /// A child that ignores a stop signal arriving right after readiness gets it this late.
    pub settle_after_ready: Duration,
}

/// How a child is stopped: `signal`, `grace`; then `force` (a second signal and its grace) if
/// set; then SIGKILL. A child that never became ready gets at most [`NOT_READY_GRACE`].
#[derive(Debug, Clone)]
pub struct Stop {
    pub signal: Signal,
    pub grace: Duration,
    /// The setting that holds `grace` (for the log line).
    pub grace_key: &'static str,
    pub force: Option<(Signal, Duration)>,
}

/// Grace after the stop signal for a child that never became ready (it has nothing to drain).
pub const NOT_READY_GRACE: Duration = Duration::from_secs(1);

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
        Self { initial: Duration::from_millis(500), max: Duration::from_secs(30), reset_after: Duration::from_secs(60) }
    }
}

impl RestartPolicy {
    /// Delay before restart number `attempt` (1-based) of a row of failures.
    pub fn delay(&self, attempt: u32) -> Duration {
        let doublings = attempt.saturating_sub(1).min(31);
        self.initial.saturating_mul(1u32 << doublings).min(self.max)
    }
}

/// Transport of a port a child binds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proto {
    Tcp,
    Udp,
}

impl fmt::Display for Proto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Tcp => "TCP",
            Self::Udp => "UDP",
        })
    }
}

/// A port a child will bind, and the setting that chose it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortUse {
    pub port: u16,
    pub proto: Proto,
    /// The bedrud key to change (or a description for a static file).
    pub key: String,
}

/// Why a child could not be started or supervised; each message says what to fix.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{program} not found; looked at:\n{}\n  fix: {fix}",
        .tried.iter().map(|t| format!("  - {t}")).collect::<Vec<_>>().join("\n"))]
    BinaryNotFound { program: String, tried: Vec<Tried>, fix: String },

    #[error("cannot get the version of {}: {message}\n  fix: {fix}", .path.display())]
    Version { path: PathBuf, message: String, fix: String },

    #[error("{proto} port {port} is already in use ({key}); stop the other process or set {key} to a free port")]
    PortInUse { port: u16, proto: Proto, key: String },

    #[error("{program} failed to start ({status}): {message}{}", .hint.as_deref().map(|h| format!("\n  fix: {h}")).unwrap_or_default())]
    StartFailed { program: String, message: String, status: String, hint: Option<String> },

    #[error("{program} did not {ready_test} within {}s ({key}) and was killed{}",
        .timeout.as_secs_f32(), if .last_output.is_empty() { String::new() } else { format!("; its last output: {}", .last_output) })]
    StartTimeout { program: String, ready_test: &'static str, key: &'static str, timeout: Duration, last_output: String },

    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },

    #[error("{0}")]
    Config(String),

    #[error("the {program} supervisor has stopped")]
    Stopped { program: String },
}

/// Fails when a port in `ports` is taken, except those in `ours` (held by our own child).
pub fn check_ports(ports: &[PortUse], ours: &[PortUse]) -> Result<(), Error> {
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
                return Err(Error::PortInUse { port: p.port, proto: p.proto, key: p.key.clone() })
            }
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
                return Err(Error::Io {
                    what: format!(
                        "cannot bind {} port {} ({}): ports below 1024 need CAP_NET_BIND_SERVICE (AmbientCapabilities= in the unit); or set {} to a port above 1023",
                        p.proto, p.port, p.key, p.key
                    ),
                    source: e,
                })
            }
            Err(e) => return Err(Error::Io { what: format!("cannot check {} port {} ({})", p.proto, p.port, p.key), source: e }),
        }
    }
    Ok(())
}

/// The life of a child as the supervisor sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum ChildState {
    /// Spawned (or about to be), not ready yet.
    Starting,
    /// Ready and passing its health probes.
    Ready,
    /// It died or stopped answering; the next start is attempt `attempt`.
    Restarting { attempt: u32, last_error: String },
    /// Given up: the start failed and is not retried without a reload.
    Failed { error: String },
    /// Stopped as part of bedrud's shutdown.
    Stopped,
}

impl fmt::Display for ChildState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Starting => write!(f, "starting"),
            Self::Ready => write!(f, "ready"),
            Self::Restarting { attempt, last_error } => write!(f, "restarting (attempt {attempt}, last error: {last_error})"),
            Self::Failed { error } => write!(f, "failed: {error}"),
            Self::Stopped => write!(f, "stopped"),
        }
    }
}

/// What the supervisor reports.
#[derive(Debug, Clone, Copy)]
pub enum Event<'a> {
    /// A child process now runs with this pid.
    Spawned(u32),
    /// No child process runs (it exited or was stopped).
    Exited,
    /// The state changed. `Restarting` counts one restart; `Ready` one time ready.
    State(&'a ChildState),
}

/// Receives the supervisor's [`Event`]s, with the spec in force.
pub trait Observer<S>: Send + Sync + 'static {
    fn event(&self, spec: &S, ev: Event<'_>);
}

/// A snapshot of one child, kept by the plain [`Observer`] on a `watch` channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ChildStatus {
    #[serde(flatten)]
    pub state: ChildState,
    pub pid: Option<u32>,
    /// Restarts since bedrud started.
    pub restarts: u32,
    pub last_error: Option<String>,
    /// Times the child became ready (the first start counts).
    pub ready_count: u64,
}

impl Default for ChildStatus {
    fn default() -> Self {
        Self { state: ChildState::Starting, pid: None, restarts: 0, last_error: None, ready_count: 0 }
    }
}

impl ChildStatus {
    /// Applies one event (shared by every observer that keeps these counters).
    pub fn apply(&mut self, ev: Event<'_>) {
        match ev {
            Event::Spawned(pid) => self.pid = Some(pid),
            Event::Exited => self.pid = None,
            Event::State(st) => {
                match st {
                    ChildState::Ready => self.ready_count += 1,
                    ChildState::Restarting { last_error, .. } => {
                        self.restarts += 1;
                        self.last_error = Some(last_error.clone());
                    }
                    ChildState::Failed { error } => self.last_error = Some(error.clone()),
                    ChildState::Stopped => self.pid = None,
                    ChildState::Starting => {}
                }
                self.state = st.clone();
            }
        }
    }
}

impl<S, T: Observer<S>> Observer<S> for std::sync::Arc<T> {
    fn event(&self, spec: &S, ev: Event<'_>) {
        (**self).event(spec, ev);
    }
}

impl<S> Observer<S> for watch::Sender<ChildStatus> {
    fn event(&self, _spec: &S, ev: Event<'_>) {
        self.send_modify(|s| s.apply(ev));
    }
}

/// Defines a function of type [`Emit`] that writes one forwarded child line as a tracing event
/// with target `$source`, fields `source = $source` (journald `SOURCE=`) and `$pid_field` (the
/// child's pid); the child's own fields go in `lk_fields` ([`crate::logging::LIVEKIT_FIELDS`]),
/// which every log output spreads into separate fields. Targets and field names are compile-time constants in tracing, so each kind
/// of child gets its own emitter: `emitter!(emit_redis, "redis", redis_pid);`.
#[macro_export]
macro_rules! emitter {
    ($name:ident, $source:literal, $pid_field:ident) => {
        fn $name(level: ::tracing::Level, pid: u32, msg: &str, fields: Option<&str>) {
            macro_rules! ev {
                ($lvl:expr) => {
                    match fields {
                        Some(f) => ::tracing::event!(target: $source, $lvl, source = $source, $pid_field = pid, lk_fields = f, "{msg}"),
                        None => ::tracing::event!(target: $source, $lvl, source = $source, $pid_field = pid, "{msg}"),
                    }
                };
            }
            match level {
                ::tracing::Level::ERROR => ev!(::tracing::Level::ERROR),
                ::tracing::Level::WARN => ev!(::tracing::Level::WARN),
                ::tracing::Level::INFO => ev!(::tracing::Level::INFO),
                ::tracing::Level::DEBUG => ev!(::tracing::Level::DEBUG),
                _ => ev!(::tracing::Level::TRACE),
            }
        }
    };
}

/// `GET url` answered 200, and (when `body` is given) with that body.
pub async fn http_probe(client: &reqwest::Client, url: &str, body: Option<&str>) -> Result<(), String> {
    let resp = client.get(url).send().await.map_err(|e| error_chain(&e))?;
    let status = resp.status();
    let text = resp.text().await.map_err(|e| error_chain(&e))?;
    if status == reqwest::StatusCode::OK && body.is_none_or(|b| text.trim() == b) {
        Ok(())
    } else {
        let text: String = text.trim().chars().take(100).collect();
        Err(format!("GET {url} answered {status} {text:?}"))
    }
}

/// The error with its causes, since reqwest's top-level message alone is vague.
pub fn error_chain(e: &dyn std::error::Error) -> String {
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
    fn port_check_finds_a_taken_port() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let ports = vec![PortUse { port, proto: Proto::Tcp, key: "x.port".into() }];
        let e = check_ports(&ports, &[]).unwrap_err();
        assert_eq!(e.to_string(), format!("TCP port {port} is already in use (x.port); stop the other process or set x.port to a free port"));
        assert!(check_ports(&ports, &ports).is_ok());
        drop(l);
        assert!(check_ports(&ports, &[]).is_ok());
    }

    #[test]
    fn status_counts_restarts_and_readiness() {
        let mut s = ChildStatus::default();
        s.apply(Event::Spawned(7));
        s.apply(Event::State(&ChildState::Ready));
        s.apply(Event::State(&ChildState::Restarting { attempt: 1, last_error: "boom".into() }));
        s.apply(Event::Exited);
        assert_eq!((s.pid, s.restarts, s.ready_count, s.last_error.as_deref()), (None, 1, 1, Some("boom")));
    }
}
