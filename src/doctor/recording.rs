//! Recording, when `recording.enabled`: `redis` (the Redis LiveKit and egress share: it answers
//! `PING`, or bedrud's own redis-server is found or running), `egress` (the worker is found or
//! running; the browser, Xvfb and pulseaudio it records with; room for Chrome's socket in the
//! runtime directory), `recording-storage` (the bucket external mode uploads to) and, with an
//! external LiveKit's Redis, `cluster` (every registered node alive).

use std::time::Duration;

use super::{rows, Ctx, Finding};
use crate::livekit::cluster::Cluster;
use crate::livekit::configgen::RedisConn;
use crate::recording::children::{self, Dirs};
use crate::supervise::{self, ChildState, ChildStatus};

const PING_TIMEOUT: Duration = Duration::from_secs(3);

/// Every recording finding; none when recording is off and no cluster Redis is configured.
pub async fn recording(ctx: &Ctx) -> Vec<Finding> {
    let cfg = &ctx.config;
    let mut out = Vec::new();
    if cfg.recording.enabled || (!ctx.embedded() && cfg.redis.address.is_some()) {
        out.push(redis(ctx).await);
    }
    if !cfg.recording.enabled {
        out.extend(cluster(ctx).await);
        return out;
    }
    if ctx.embedded() {
        out.extend(egress(ctx));
    } else {
        out.extend(storage(ctx));
        out.extend(cluster(ctx).await);
    }
    if let Some(l) = &ctx.live {
        let lk = l.state.livekit.borrow().clone();
        let a = l.state.recorder.availability(cfg, &lk);
        out.push(match a.why {
            None => Finding::ok("recording", "available: a room's managers can record it"),
            Some(why) => Finding::fail("recording", format!("not available: {why}"))
                .fix("the lines above say which part is missing; `journalctl -u bedrud` shows its last error")
                .row(rows::RECORDING_NO_WORKER),
        });
    }
    out
}

/// The Redis to check: `redis.address`, else bedrud's own (embedded, with recording on).
fn configured(ctx: &Ctx) -> Option<RedisConn> {
    let cfg = &ctx.config;
    cfg.redis.address.as_ref().map(|a| RedisConn { address: a.clone(), password: cfg.redis.password.clone() })
}

/// A helper child as the running daemon reports it.
fn child(check: &str, what: &str, s: &ChildStatus, fix: &str) -> Finding {
    match s.state {
        ChildState::Ready => Finding::ok(check, format!("{what} is running (pid {}, {} restarts)", s.pid.unwrap_or(0), s.restarts)),
        ref st => {
            // A failed or restarting state names its error already.
            let last = match st {
                ChildState::Failed { .. } | ChildState::Restarting { .. } => None,
                _ => s.last_error.as_deref(),
            };
            let last = last.map(|e| format!(": {e}")).unwrap_or_default();
            Finding::fail(check, format!("{what} is {st}{last}").replace('\n', " ")).fix(fix).row(rows::RECORDING_NO_WORKER)
        }
    }
}

async fn redis(ctx: &Ctx) -> Finding {
    const CHECK: &str = "redis";
    if let Some(r) = configured(ctx) {
        let whose = if ctx.embedded() { "LiveKit's and egress's Redis" } else { "the cluster's Redis" };
        return match crate::redis::ping(&r.address, r.password.as_deref(), PING_TIMEOUT).await {
            Ok(()) => Finding::ok(CHECK, format!("{whose} at {} answers PING", r.address)),
            Err(e) => Finding::fail(CHECK, format!("{whose} at {}: {e}", r.address))
                .fix("check redis.address and redis.password (the same Redis as in every LiveKit node's and egress worker's `redis:`), and that Redis runs")
                .row(rows::REDIS_FAILS),
        };
    }
    if let Some(l) = &ctx.live {
        let s = l.state.recorder.redis.borrow().clone();
        return child(CHECK, "bedrud's redis-server", &s, "install redis-server, or set redis.address; `journalctl -u bedrud SOURCE=redis` shows its output");
    }
    match children::find_redis(&ctx.config) {
        Ok(p) => Finding::ok(CHECK, format!("{} (bedrud starts it on 127.0.0.1:{})", p.display(), ctx.config.redis.port)),
        Err(e) => not_found(CHECK, e).row(rows::RECORDING_NO_WORKER),
    }
}

/// A binary-search failure as one line, its fix apart.
fn not_found(check: &str, e: supervise::Error) -> Finding {
    match e {
        supervise::Error::BinaryNotFound { program, tried, fix } => {
            let places = tried.iter().map(|t| t.to_string()).collect::<Vec<_>>().join("; ");
            Finding::fail(check, format!("{program} not found ({places})")).fix(fix)
        }
        other => Finding::fail(check, other.to_string().replace('\n', " ")),
    }
}

fn egress(ctx: &Ctx) -> Vec<Finding> {
    const CHECK: &str = "egress";
    let mut out = Vec::new();
    out.push(match &ctx.live {
        Some(l) => child(CHECK, "the egress worker", &l.state.recorder.egress.borrow().clone(), "`journalctl -u bedrud SOURCE=egress` shows why; scripts/install-egress builds the worker"),
        None => match children::find_egress(&ctx.config) {
            Ok(p) => Finding::ok(CHECK, format!("{} (bedrud starts it)", p.display())),
            Err(e) => not_found(CHECK, e).row(rows::RECORDING_NO_WORKER),
        },
    });
    // What a room-composite recording runs: the page in Chromium on an Xvfb display, its sound
    // through pulseaudio.
    let path = std::env::var_os("PATH");
    let missing: Vec<&str> = ["chromium", "Xvfb", "pulseaudio"]
        .into_iter()
        .filter(|p| supervise::find(p, Vec::new(), path.clone(), "").is_err())
        .collect();
    out.push(if missing.is_empty() {
        Finding::ok("egress-tools", "chromium, Xvfb and pulseaudio are on PATH")
    } else {
        Finding::fail("egress-tools", format!("not on PATH: {}", missing.join(", ")))
            .fix("apt install chromium xvfb pulseaudio (scripts/install-egress installs them as root)")
            .row(rows::RECORDING_NO_WORKER)
    });
    let dirs = Dirs::new(&supervise::runtime_dir(None));
    out.push(match dirs.check_socket_room() {
        Ok(()) => Finding::ok("egress-runtime-dir", format!("{} leaves room for Chrome's socket", dirs.egress_tmp.display())),
        Err(e) => Finding::fail("egress-runtime-dir", e).fix("start bedrud with a shorter $RUNTIME_DIRECTORY (systemd: RuntimeDirectory=bedrud)"),
    });
    out
}

/// Where an external LiveKit's workers put recordings. Without `recording.s3` the configuration
/// itself is refused (the `config` line says so), so there is nothing to check here.
fn storage(ctx: &Ctx) -> Option<Finding> {
    let s3 = ctx.config.recording.s3.as_ref()?;
    Some(Finding::ok("recording-storage", format!("recordings upload to bucket {} at {}", s3.bucket, s3.endpoint.as_deref().unwrap_or("AWS S3"))))
}

/// LiveKit's node registry in the cluster's Redis: a dead node's participants are closed by the
/// reconciler, but its rooms stay unreachable until they reopen elsewhere.
async fn cluster(ctx: &Ctx) -> Option<Finding> {
    const CHECK: &str = "cluster";
    if ctx.embedded() {
        return None;
    }
    let view = match &ctx.live {
        Some(l) => match l.state.cluster.latest() {
            Some(v) => v,
            None => l.state.cluster.fetch().await?,
        },
        None => Cluster::new(Some(configured(ctx)?)).fetch().await?,
    };
    Some(match view {
        Err(e) => Finding::fail(CHECK, e).row(rows::REDIS_FAILS),
        Ok(v) if v.nodes.is_empty() => Finding::warn(CHECK, "no LiveKit node is registered in this Redis")
            .fix("give every LiveKit node the same `redis:` as redis.address"),
        Ok(v) => {
            let dead: Vec<&str> = v.dead().map(|n| n.id.as_str()).collect();
            let alive = v.nodes.len() - dead.len();
            if dead.is_empty() {
                Finding::ok(CHECK, format!("{alive} LiveKit node(s) alive"))
            } else {
                Finding::warn(CHECK, format!("{alive} LiveKit node(s) alive, down: {}", dead.join(", ")))
                    .fix("restart the node, or let its rooms reopen on the others (LiveKit drops a dead node from its registry after a while)")
            }
        }
    })
}
