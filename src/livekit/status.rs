//! What bedrud knows about LiveKit right now, shared through a `watch` channel: the supervisor
//! (or the external prober) writes it; `/api/ready`, the admin overview and sd_notify read it.

use serde::Serialize;
use tokio::sync::watch;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    Embedded,
    External,
}

/// The life of LiveKit as bedrud sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum LivekitState {
    /// Child started (or external server not probed yet), not healthy yet.
    Starting,
    /// `GET /` answers 200 OK.
    Ready,
    /// The child died or stopped answering; the next start is attempt `attempt`.
    Restarting { attempt: u32, last_error: String },
    /// Given up: the start failed and will not be retried without a reload or restart.
    Failed { error: String },
    /// External mode: the server does not answer.
    Unreachable { error: String },
    /// Stopped as part of bedrud's shutdown.
    Stopped,
}

impl std::fmt::Display for LivekitState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Starting => write!(f, "starting"),
            Self::Ready => write!(f, "ready"),
            Self::Restarting { attempt, last_error } => {
                write!(f, "restarting (attempt {attempt}, last error: {last_error})")
            }
            Self::Failed { error } => write!(f, "failed: {error}"),
            Self::Unreachable { error } => write!(f, "unreachable: {error}"),
            Self::Stopped => write!(f, "stopped"),
        }
    }
}

/// A snapshot of LiveKit's status.
#[derive(Debug, Clone, Serialize)]
pub struct LivekitStatus {
    pub mode: Mode,
    #[serde(flatten)]
    pub state: LivekitState,
    /// `livekit-server --version` (embedded) — unknown for an external server.
    pub version: Option<String>,
    /// Child's process id while it runs.
    pub pid: Option<u32>,
    /// The node IP written into the generated config.
    pub node_ip: Option<String>,
    /// Restarts since bedrud started.
    pub restarts: u32,
    pub last_error: Option<String>,
    /// Times LiveKit became ready (first start counts); the reconciler runs after each.
    pub ready_count: u64,
}

impl LivekitStatus {
    pub fn new(mode: Mode) -> Self {
        Self {
            mode,
            state: LivekitState::Starting,
            version: None,
            pid: None,
            node_ip: None,
            restarts: 0,
            last_error: None,
            ready_count: 0,
        }
    }

    pub fn is_ready(&self) -> bool {
        self.state == LivekitState::Ready
    }
}

pub type StatusTx = watch::Sender<LivekitStatus>;
pub type StatusRx = watch::Receiver<LivekitStatus>;
