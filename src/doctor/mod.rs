//! `bedrud doctor`: the troubleshooting tables of the product document, checked by bedrud itself.
//!
//! Each check is a small named unit that says which table row it covers and answers with one
//! line per finding: `ok`, `warn` or `fail`, what it found, and the fix. `skip` marks a check
//! that needs what is not there (a running daemon). The same checks serve `bedrud doctor` (CLI,
//! text or `--json`) and `GET /api/admin/doctor`; while the daemon runs, the CLI asks it through
//! the control socket, so the live checks (ports held by its own child, the webhook round trip)
//! see the real system.
//!
//! Checks: [`config`] (configuration, free disk space for the database, livekit-server binary and version, a static LiveKit
//! config against that version's keys), [`ports`], [`network`] (node IP, STUN), [`tls`]
//! (certificate, TURN/TLS, ACME), [`livekit`] (API and clock, client URL, webhook round trip,
//! room timeouts, token lifetime), [`recording`] (Redis, the egress worker and what it records
//! with, storage, the nodes of a LiveKit cluster).

pub mod config;
pub mod livekit;
pub mod network;
pub mod ports;
pub mod recording;
pub mod tls;

use std::path::PathBuf;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::http::SharedState;
use crate::livekit::binary::Version;
use crate::livekit::ApiKeys;

/// The outcome of one finding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    Warn,
    Fail,
    /// Could not be checked here (e.g. needs the running daemon).
    Skip,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Warn => "warn",
            Self::Fail => "fail",
            Self::Skip => "skip",
        }
    }
}

/// A row of the product document's troubleshooting tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Row {
    pub table: &'static str,
    pub symptom: &'static str,
}

impl std::fmt::Display for Row {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.table, self.symptom)
    }
}

/// The rows the checks cover, spelled as in the document.
pub mod rows {
    use super::Row;
    const STARTUP: &str = "Startup & Config Crashes";
    const CONN: &str = "Connectivity";
    const MEDIA: &str = "Media & TURN";
    const HOOK: &str = "Webhook & State";
    const REC: &str = "Recording";
    pub const EXTERNAL_IP_CRASH: Row = Row { table: STARTUP, symptom: "Container crash-loops, logs could not resolve external IP" };
    pub const TURN_DOMAIN: Row = Row { table: STARTUP, symptom: "LiveKit exits with TURN domain required on v1.12+" };
    pub const FIELD_TLS: Row = Row { table: STARTUP, symptom: "field tls not found on startup" };
    pub const YAML_ERROR: Row = Row { table: STARTUP, symptom: "YAML parsing error" };
    pub const LIVEKIT_DISCONNECTED: Row = Row { table: CONN, symptom: "Admin dashboard shows \"LiveKit disconnected\"" };
    pub const CLIENT_TIMEOUT: Row = Row { table: CONN, symptom: "Token generated but client connection times out" };
    pub const EMBEDDED_NOT_STARTING: Row = Row { table: CONN, symptom: "Embedded LiveKit not starting" };
    pub const PORT_IN_USE: Row = Row { table: CONN, symptom: "Port 7880 already in use" };
    pub const CONNECTION_REFUSED: Row = Row { table: CONN, symptom: "curl http://127.0.0.1:7880 returns connection refused" };
    pub const TOKEN_EXPIRED: Row = Row { table: CONN, symptom: "Token expired before client connected" };
    pub const NO_MEDIA: Row = Row { table: MEDIA, symptom: "Participants join but no audio/video" };
    pub const NAT: Row = Row { table: MEDIA, symptom: "Clients behind NAT can't connect" };
    pub const EXTERNAL_IP: Row = Row { table: MEDIA, symptom: "Could not resolve external IP on startup (non-Docker)" };
    pub const SELF_SIGNED: Row = Row { table: MEDIA, symptom: "Self-signed cert errors with external LiveKit" };
    pub const RELAY: Row = Row { table: MEDIA, symptom: "Clients connect via relay unnecessarily" };
    pub const STALE: Row = Row { table: HOOK, symptom: "Database shows stale active participants after disconnect" };
    pub const WEBHOOK_BLOCKED: Row = Row { table: HOOK, symptom: "Participants never marked inactive" };
    pub const NOT_CLEANED: Row = Row { table: HOOK, symptom: "Room not cleaned up after all leave" };
    pub const REDIS_FAILS: Row = Row { table: CONN, symptom: "Redis connection fails in LiveKit logs" };
    pub const RECORDING_NO_WORKER: Row = Row { table: REC, symptom: "twirp error unauthenticated: permissions denied even with valid API key" };
}

/// One line of the report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Finding {
    pub check: String,
    pub status: Status,
    /// What was found.
    pub found: String,
    /// What to do about it (warn and fail).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
    /// The troubleshooting row this answers, `Table: symptom`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<String>,
}

impl Finding {
    pub fn new(check: &str, status: Status, found: impl Into<String>) -> Self {
        Self { check: check.into(), status, found: found.into(), fix: None, seed: None }
    }
    pub fn ok(check: &str, found: impl Into<String>) -> Self {
        Self::new(check, Status::Ok, found)
    }
    pub fn warn(check: &str, found: impl Into<String>) -> Self {
        Self::new(check, Status::Warn, found)
    }
    pub fn fail(check: &str, found: impl Into<String>) -> Self {
        Self::new(check, Status::Fail, found)
    }
    pub fn skip(check: &str, found: impl Into<String>) -> Self {
        Self::new(check, Status::Skip, found)
    }
    pub fn fix(mut self, fix: impl Into<String>) -> Self {
        self.fix = Some(fix.into());
        self
    }
    pub fn row(mut self, row: Row) -> Self {
        self.seed = Some(row.to_string());
        self
    }
}

/// Counts per status.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Summary {
    pub ok: usize,
    pub warn: usize,
    pub fail: usize,
    pub skip: usize,
}

/// Everything `bedrud doctor` found.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    /// The configuration file checked (or "built-in defaults").
    pub config: String,
    /// Checked by the running daemon (live checks included).
    pub through_daemon: bool,
    pub checks: Vec<Finding>,
    pub summary: Summary,
}

impl Report {
    pub fn new(config: String, through_daemon: bool, checks: Vec<Finding>) -> Self {
        let mut summary = Summary::default();
        for c in &checks {
            match c.status {
                Status::Ok => summary.ok += 1,
                Status::Warn => summary.warn += 1,
                Status::Fail => summary.fail += 1,
                Status::Skip => summary.skip += 1,
            }
        }
        Self { config, through_daemon, checks, summary }
    }

    /// 0 when nothing fails, 1 when something does.
    pub fn exit_code(&self) -> u8 {
        u8::from(self.summary.fail > 0)
    }

    /// One line per finding, the fix and the table row indented below warnings and failures.
    pub fn text(&self) -> String {
        let mut out = format!(
            "bedrud doctor: {} ({})\n",
            self.config,
            if self.through_daemon { "checked by the running daemon" } else { "bedrud is not running: checked from the configuration" }
        );
        let width = self.checks.iter().map(|c| c.check.len()).max().unwrap_or(0);
        for c in &self.checks {
            out.push_str(&format!("{:<5} {:<width$}  {}\n", c.status.as_str(), c.check, c.found));
            let pad = " ".repeat(6 + width + 2);
            if c.status != Status::Ok {
                if let Some(f) = &c.fix {
                    out.push_str(&format!("{pad}fix: {f}\n"));
                }
                if let Some(s) = &c.seed {
                    out.push_str(&format!("{pad}see: {s}\n"));
                }
            }
        }
        let s = &self.summary;
        out.push_str(&format!("{} ok, {} warn, {} fail, {} skipped\n", s.ok, s.warn, s.fail, s.skip));
        out
    }
}

/// The running daemon, for the live checks.
pub struct Live {
    pub state: SharedState,
}

/// What the checks look at.
pub struct Ctx {
    pub config: Arc<Config>,
    pub file: Option<PathBuf>,
    /// Warnings noticed while loading the configuration.
    pub warnings: Vec<String>,
    pub live: Option<Live>,
    /// livekit-server's version (embedded mode, when it could be found and asked).
    pub version: Option<Version>,
    /// Why asking it for its version failed (the first answer is the one reported).
    pub version_error: Option<String>,
}

impl Ctx {
    pub fn embedded(&self) -> bool {
        !self.config.livekit.is_external()
    }

    /// The LiveKit key pair: the daemon's, else the configured one.
    pub fn keys(&self) -> Option<ApiKeys> {
        if let Some(l) = &self.live {
            return Some(l.state.keys.clone());
        }
        match (&self.config.livekit.api_key, &self.config.livekit.api_secret) {
            (Some(k), Some(s)) => Some(ApiKeys { key: k.clone(), secret: s.clone() }),
            _ => None,
        }
    }

    /// The livekit-server child's pid, while the daemon runs it.
    pub fn child_pid(&self) -> Option<u32> {
        self.live.as_ref().and_then(|l| l.state.livekit.borrow().pid)
    }

    /// Whether LiveKit can be asked right now: the daemon runs it, or it is external.
    pub fn livekit_reachable_expected(&self) -> bool {
        self.live.is_some() || !self.embedded()
    }

    pub fn config_name(&self) -> String {
        self.file.as_ref().map(|f| f.display().to_string()).unwrap_or_else(|| "built-in defaults".into())
    }
}

/// Runs every check.
pub async fn run(mut ctx: Ctx) -> Report {
    if ctx.embedded() {
        if let Ok(path) = crate::livekit::binary::find(&ctx.config) {
            match crate::livekit::binary::version(&path).await {
                Ok(v) => ctx.version = Some(v),
                Err(e) => ctx.version_error = Some(e.to_string()),
            }
        }
    }
    let mut out = Vec::new();
    out.extend(config::config(&ctx));
    out.extend(config::disk(&ctx));
    out.extend(config::binary(&ctx).await);
    out.extend(config::static_config(&ctx));
    out.extend(ports::ports(&ctx));
    out.extend(network::node_ip(&ctx).await);
    out.extend(tls::certificate(&ctx));
    out.extend(tls::turn(&ctx));
    out.extend(tls::acme(&ctx));
    out.extend(livekit::api(&ctx).await);
    out.extend(livekit::client_url(&ctx).await);
    let probe = livekit::webhook(&ctx).await;
    out.extend(probe.findings);
    out.extend(livekit::timeouts(&ctx, probe.room.as_ref()));
    out.extend(livekit::token_ttl(&ctx));
    out.extend(recording::recording(&ctx).await);
    Report::new(ctx.config_name(), ctx.live.is_some(), out)
}

/// The report as the running daemon sees it (control socket and admin API).
pub async fn live(state: &SharedState) -> Report {
    let file = state.runtime.get().and_then(|r| r.config_file.clone());
    run(Ctx { config: state.config(), file, warnings: Vec::new(), live: Some(Live { state: state.clone() }), version: None, version_error: None }).await
}

/// The report when the configuration itself cannot be loaded: one failing line.
pub fn config_error(file: Option<PathBuf>, error: &crate::config::ConfigError) -> Report {
    let name = file.map(|f| f.display().to_string()).unwrap_or_else(|| "built-in defaults".into());
    let mut f = Finding::fail("config", error.to_string().replace('\n', " ")).row(rows::YAML_ERROR);
    f.fix = error.hint.clone().or_else(|| Some("correct the file; `bedrud config check` shows the same error".into()));
    Report::new(name, false, vec![f])
}
