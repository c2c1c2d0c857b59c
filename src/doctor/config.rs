//! The configuration, the livekit-server executable, and a static LiveKit config
//! (`livekit.configPath`) against the keys of the version that will read it.

use std::path::Path;

use serde_norway::Value;

use super::{rows, Ctx, Finding};
use crate::livekit::binary::{self, Version};
use crate::livekit::configgen::{self, NEWEST_KNOWN, OLDEST_TESTED};

/// `config`: the file loads and validates; what loading noticed.
pub fn config(ctx: &Ctx) -> Vec<Finding> {
    let mut out = vec![Finding::ok("config", format!("{} is valid", ctx.config_name()))];
    for w in &ctx.warnings {
        out.push(Finding::warn("config", w.clone()).fix("see `bedrud config check`").row(rows::YAML_ERROR));
    }
    out
}

/// `disk`: room on the database's filesystem (the daemon warns in its log at the same mark; a
/// full disk makes every write fail).
pub fn disk(ctx: &Ctx) -> Vec<Finding> {
    const CHECK: &str = "disk";
    let db = ctx.config.database_path();
    let Some((free, total)) = crate::store::disk_space(&db) else {
        return vec![Finding::skip(CHECK, format!("cannot tell the free space for {}", db.display()))];
    };
    let mib = |b: u64| b / (1024 * 1024);
    let found = format!("{} MiB of {} MiB free on the filesystem of {}", mib(free), mib(total), db.display());
    if crate::store::disk_low(free, total) {
        return vec![Finding::warn(CHECK, format!("{found}: when it is full, bedrud refuses every change (sign-ins, rooms, settings)"))
            .fix("free space there (old logs, journald's SystemMaxUse=, package caches), or move database.path to a larger filesystem")];
    }
    vec![Finding::ok(CHECK, found)]
}

/// `livekit-binary`: found, executable, and a version bedrud knows (embedded mode).
pub async fn binary(ctx: &Ctx) -> Vec<Finding> {
    const CHECK: &str = "livekit-binary";
    if !ctx.embedded() {
        return Vec::new();
    }
    let path = match binary::find(&ctx.config) {
        Ok(p) => p,
        Err(e) => {
            return vec![Finding::fail(CHECK, e.to_string().lines().next().unwrap_or("livekit-server not found").to_string() + &tried(&e.to_string()))
                .fix(format!("install the bedrud package (it ships {}), run scripts/install-livekit, or set livekit.binary", binary::PACKAGED_PATH))
                .row(rows::EMBEDDED_NOT_STARTING)]
        }
    };
    let Some(v) = ctx.version else {
        let why = ctx.version_error.clone().unwrap_or_default();
        return vec![Finding::fail(CHECK, format!("{} does not report a version: {}", path.display(), first_line(&why)))
            .fix("check that it is livekit-server and executable by the service user, or reinstall it")
            .row(rows::EMBEDDED_NOT_STARTING)];
    };
    let found = format!("livekit-server {v} ({})", path.display());
    if v < OLDEST_TESTED {
        vec![Finding::warn(CHECK, format!("{found} is older than {OLDEST_TESTED}, the oldest release bedrud is tested with"))
            .fix("upgrade livekit-server (scripts/install-livekit, or the bedrud package)")]
    } else if (v.major, v.minor) > (NEWEST_KNOWN.major, NEWEST_KNOWN.minor) {
        vec![Finding::warn(CHECK, format!("{found} is newer than {NEWEST_KNOWN}, the newest release bedrud knows: its config keys are assumed unchanged"))
            .fix("check the LiveKit release notes for removed config keys")]
    } else {
        vec![Finding::ok(CHECK, found)]
    }
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or("")
}

/// The places `binary::find` looked, on one line.
fn tried(message: &str) -> String {
    let places: Vec<&str> = message.lines().filter_map(|l| l.trim().strip_prefix("- ")).collect();
    if places.is_empty() {
        String::new()
    } else {
        format!(" (looked at: {})", places.join("; "))
    }
}

/// Top-level keys of livekit-server 1.9.12's `config.Config` (all present in 1.13.5 too).
const TOP: &[&str] = &[
    "port", "bind_addresses", "prometheus_port", "prometheus", "rtc", "redis", "audio", "video", "room", "turn", "ingress",
    "sip", "webhook", "node_selector", "key_file", "keys", "region", "signal_relay", "psrpc", "log_level", "logging",
    "limit", "agents", "development", "metric", "trace", "node_stats", "enable_data_tracks",
];
/// Top-level keys 1.13.5 has and 1.9.12 has not (added somewhere in between).
const TOP_LATER: &[&str] = &["debug_handler", "enable_participant_data_blob", "api"];
/// `turn.*` of 1.9.12; 1.10 added `bind_addresses`, 1.12 the three after it.
const TURN: &[&str] = &["enabled", "domain", "cert_file", "key_file", "tls_port", "udp_port", "relay_range_start", "relay_range_end", "external_tls"];
const TURN_1_10: &[&str] = &["bind_addresses"];
const TURN_1_12: &[&str] = &["ttl_seconds", "allow_restricted_peer_cidrs", "deny_peer_cidrs"];

/// Whether livekit-server `v` accepts `key` (dotted, e.g. `turn.ttl_seconds`): `Some(false)` when
/// it rejects it, `None` when bedrud cannot tell (a key added between the releases it knows).
pub fn accepts(v: Version, key: &str) -> Option<bool> {
    let newer_than_known = (v.major, v.minor) > (NEWEST_KNOWN.major, NEWEST_KNOWN.minor);
    let r = match key.split_once('.') {
        None if TOP.contains(&key) => Some(true),
        None if TOP_LATER.contains(&key) => {
            if v < Version::new(1, 10, 0) {
                Some(false)
            } else if v >= NEWEST_KNOWN {
                Some(true)
            } else {
                None
            }
        }
        None => Some(false),
        Some(("turn", k)) => {
            if TURN.contains(&k) {
                Some(true)
            } else if TURN_1_10.contains(&k) {
                Some(v >= Version::new(1, 10, 0))
            } else if TURN_1_12.contains(&k) {
                Some(v >= Version::new(1, 12, 0))
            } else {
                Some(false)
            }
        }
        Some(("room", "create_room_enabled")) => Some(v < Version::new(1, 13, 2)),
        Some(_) => None,
    };
    // A release newer than bedrud knows may have added keys: only its own run can tell.
    match r {
        Some(false) if newer_than_known => None,
        r => r,
    }
}

/// Line of a top-level key (`key:` at column 0), or of `section:` then `  key:` below it.
fn line_of(text: &str, key: &str) -> Option<usize> {
    let (section, leaf) = match key.split_once('.') {
        Some((s, l)) => (Some(s), l),
        None => (None, key),
    };
    let mut inside = section.is_none();
    for (i, l) in text.lines().enumerate() {
        let indent = l.len() - l.trim_start().len();
        let name = l.trim_start().split(':').next().unwrap_or("").trim();
        match section {
            Some(s) if indent == 0 => inside = name == s,
            None if indent == 0 && name == leaf => return Some(i + 1),
            _ => {}
        }
        if section.is_some() && inside && indent > 0 && name == leaf {
            return Some(i + 1);
        }
    }
    None
}

/// `livekit-config`: a static LiveKit YAML is parsed, its keys known to the version that reads
/// it, its TURN section complete, and bedrud's key pair in it.
pub fn static_config(ctx: &Ctx) -> Vec<Finding> {
    const CHECK: &str = "livekit-config";
    let Some(path) = ctx.config.livekit.config_path.as_deref().filter(|_| ctx.embedded()) else { return Vec::new() };
    let name = path.display().to_string();
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => {
            return vec![Finding::fail(CHECK, format!("cannot read livekit.configPath {name}: {e}"))
                .fix("point livekit.configPath at a file the service user can read")
                .row(rows::EMBEDDED_NOT_STARTING)]
        }
    };
    let doc: Value = match serde_norway::from_str(&text) {
        Ok(Value::Mapping(m)) => Value::Mapping(m),
        Ok(Value::Null) => Value::Mapping(Default::default()),
        Ok(_) => return vec![Finding::fail(CHECK, format!("{name} is not a YAML mapping")).row(rows::YAML_ERROR)],
        Err(e) => {
            return vec![Finding::fail(CHECK, format!("{name} is not valid YAML: {e}"))
                .fix("correct the indentation or syntax (livekit-server refuses to start with it)")
                .row(rows::YAML_ERROR)]
        }
    };
    let (v, assumed) = match ctx.version {
        Some(v) => (v, ""),
        None => (NEWEST_KNOWN, " (assumed: the binary could not be asked)"),
    };
    let mut out = Vec::new();
    let mut keys: Vec<String> = Vec::new();
    if let Some(m) = doc.as_mapping() {
        for (k, val) in m {
            let Some(k) = k.as_str() else { continue };
            keys.push(k.to_string());
            if k == "turn" {
                if let Some(t) = val.as_mapping() {
                    keys.extend(t.keys().filter_map(Value::as_str).map(|s| format!("turn.{s}")));
                }
            }
            if k == "room" {
                if let Some(t) = val.as_mapping() {
                    keys.extend(t.keys().filter_map(Value::as_str).filter(|s| *s == "create_room_enabled").map(|s| format!("room.{s}")));
                }
            }
        }
    }
    for k in &keys {
        if accepts(v, k) != Some(false) {
            continue;
        }
        let at = line_of(&text, k).map(|l| format!("{name}:{l}")).unwrap_or_else(|| name.clone());
        let leaf = k.rsplit('.').next().unwrap_or(k);
        let mut f = Finding::fail(
            CHECK,
            format!("{at}: `{k}` is not a livekit-server {v}{assumed} key; it exits with `field {leaf} not found in type config.Config`"),
        );
        f = if k == "tls" {
            f.fix("remove the tls: block from the LiveKit YAML (LiveKit v1.12+ has no top-level tls); use http:// for livekit.internalHost and ws:// for livekit.host, TLS through a proxy; TURN/TLS stays under turn:")
                .row(rows::FIELD_TLS)
        } else {
            f.fix(format!("remove `{k}` or upgrade livekit-server")).row(rows::YAML_ERROR)
        };
        out.push(f);
    }
    out.extend(static_turn(&doc, &name));
    match configgen::read_static(path) {
        Ok(info) => {
            if let Some(keys) = ctx.keys() {
                if !info.keys.iter().any(|(k, s)| *k == keys.key && *s == keys.secret) {
                    out.push(Finding::fail(CHECK, format!("{name} does not hold bedrud's API key {:?} with its secret: LiveKit rejects bedrud's tokens and webhooks", keys.key))
                        .fix("add bedrud's key to `keys:` in the file, or set livekit.apiKey/apiSecret to one of the file's"));
                }
            }
            for w in info.warnings {
                out.push(Finding::warn(CHECK, w).fix("bedrud livekit webhook-config prints the block to add").row(rows::STALE));
            }
        }
        Err(e) => out.push(Finding::fail(CHECK, e.to_string()).row(rows::YAML_ERROR)),
    }
    if out.iter().all(|f| f.status == super::Status::Ok) {
        out.insert(0, Finding::ok(CHECK, format!("{name}: every key is known to livekit-server {v}{assumed}")));
    }
    out
}

/// TURN in a static file: the checks livekit-server makes at start, said before it starts.
fn static_turn(doc: &Value, name: &str) -> Vec<Finding> {
    const CHECK: &str = "livekit-config";
    let Some(t) = doc.get("turn") else { return Vec::new() };
    if t.get("enabled").and_then(Value::as_bool) != Some(true) {
        return Vec::new();
    }
    let tls_port = t.get("tls_port").and_then(Value::as_u64).unwrap_or(0);
    if tls_port == 0 {
        return Vec::new();
    }
    let mut out = Vec::new();
    let domain = t.get("domain").and_then(Value::as_str).unwrap_or("").trim();
    let fix = "add domain: (the certificate's DNS name) under turn:, provide cert_file/key_file, or remove tls_port for UDP-only TURN";
    if domain.is_empty() {
        out.push(Finding::fail(CHECK, format!("{name}: turn.tls_port {tls_port} without turn.domain: livekit-server exits with `TURN domain required`")).fix(fix).row(rows::TURN_DOMAIN));
    } else if !configgen::is_turn_domain(domain) {
        out.push(Finding::fail(CHECK, format!("{name}: turn.domain {domain:?} is not a DNS name: livekit-server exits with `TURN domain is not correct`")).fix(fix).row(rows::TURN_DOMAIN));
    }
    if t.get("external_tls").and_then(Value::as_bool) != Some(true) {
        for key in ["cert_file", "key_file"] {
            let file = t.get(key).and_then(Value::as_str).unwrap_or("");
            if file.is_empty() || std::fs::File::open(Path::new(file)).is_err() {
                let what = if file.is_empty() { "is not set".to_string() } else { format!("{file} cannot be read") };
                out.push(Finding::fail(CHECK, format!("{name}: turn.{key} {what}: livekit-server exits with `TURN tls cert required`")).fix(fix).row(rows::TURN_DOMAIN));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_by_version() {
        let v9 = Version::new(1, 9, 12);
        let v13 = Version::new(1, 13, 5);
        assert_eq!(accepts(v13, "tls"), Some(false));
        assert_eq!(accepts(v9, "tls"), Some(false));
        assert_eq!(accepts(v13, "rtc"), Some(true));
        assert_eq!(accepts(v13, "api"), Some(true));
        assert_eq!(accepts(v9, "api"), Some(false));
        assert_eq!(accepts(Version::new(1, 11, 0), "api"), None);
        assert_eq!(accepts(v9, "turn.ttl_seconds"), Some(false));
        assert_eq!(accepts(v13, "turn.ttl_seconds"), Some(true));
        assert_eq!(accepts(v13, "room.create_room_enabled"), Some(false));
        assert_eq!(accepts(v9, "room.create_room_enabled"), Some(true));
        assert_eq!(accepts(Version::new(1, 14, 0), "brand_new"), None);
        let text = "port: 1\ntls:\n  cert: x\nturn:\n  enabled: true\n  ttl_seconds: 5\n";
        assert_eq!(line_of(text, "tls"), Some(2));
        assert_eq!(line_of(text, "turn.ttl_seconds"), Some(6));
    }
}
