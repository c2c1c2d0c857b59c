//! The livekit-server YAML bedrud generates in embedded mode, the static alternative
//! (`livekit.configPath`), and the temporary file the child reads it from.
//!
//! livekit-server rejects unknown keys, so only keys the detected version accepts are written.
//! Every key below is accepted by 1.9.12 and 1.13.5 (the tests start both with them; only
//! `rtc.use_external_ip` is checked against the source instead, as it needs internet STUN).
//! `rtc.interfaces` and `rtc.enable_loopback_candidate` are only written from 1.9, the oldest
//! release tested; nothing newer than the 1.5 key set is needed.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::config::Config;
use crate::livekit::binary::Version;
use crate::livekit::nodeip;
use crate::livekit::ApiKeys;
use crate::supervise::{self, TempFile};

pub use crate::supervise::{PortUse, Proto};

type SupervisorError = supervise::Error;

/// Newest release whose keys were checked; newer ones get this key set and a warning.
pub const NEWEST_KNOWN: Version = Version::new(1, 13, 5);
/// Oldest release tested; older ones get the stable key set only, and a warning.
pub const OLDEST_TESTED: Version = Version::new(1, 9, 0);

/// Name pattern of the temporary config: `bedrud-livekit-<random>.yaml`.
pub const TEMP_PREFIX: &str = "bedrud-livekit-";
pub const TEMP_SUFFIX: &str = ".yaml";
/// Path LiveKit's webhooks are posted to on bedrud.
pub const WEBHOOK_PATH: &str = "/api/livekit/webhook";

const REDACTED: &str = "<redacted>";

/// Everything the generated config depends on.
#[derive(Debug, Clone)]
pub struct GenInput<'a> {
    pub config: &'a Config,
    pub keys: &'a ApiKeys,
    pub version: Version,
    /// Where LiveKit posts its webhooks (bedrud on loopback), e.g. `http://127.0.0.1:8090/api/livekit/webhook`.
    pub webhook_url: &'a str,
    pub node_ip: IpAddr,
    /// The Redis LiveKit shares with egress workers (and other nodes).
    pub redis: Option<&'a RedisConn>,
}

/// How LiveKit (and egress) reach Redis: `host:port` and the password, if any.
#[derive(Clone, PartialEq, Eq)]
pub struct RedisConn {
    pub address: String,
    pub password: Option<String>,
}

impl std::fmt::Debug for RedisConn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisConn").field("address", &self.address).field("password", &self.password.as_ref().map(|_| REDACTED)).finish()
    }
}

/// The generated YAML and what was noticed while generating it.
#[derive(Clone, PartialEq, Eq)]
pub struct Generated {
    /// Contains the API secret: write it only to the 0600 file.
    pub yaml: String,
    pub warnings: Vec<String>,
    /// Ports the child will listen on (checked before it starts).
    pub ports: Vec<PortUse>,
    /// TURN (UDP and TLS) is on.
    pub turn: bool,
}

impl std::fmt::Debug for Generated {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Generated")
            .field("yaml", &format_args!("<{} bytes, with the secret>", self.yaml.len()))
            .field("warnings", &self.warnings)
            .field("ports", &self.ports)
            .field("turn", &self.turn)
            .finish()
    }
}

#[derive(Serialize)]
struct LkConfig<'a> {
    port: u16,
    rtc: Rtc,
    keys: BTreeMap<&'a str, &'a str>,
    logging: Logging,
    room: Room,
    #[serde(skip_serializing_if = "Option::is_none")]
    webhook: Option<Webhook<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    turn: Option<Turn>,
    #[serde(skip_serializing_if = "Option::is_none")]
    redis: Option<Redis<'a>>,
}

#[derive(Serialize)]
struct Redis<'a> {
    address: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    password: Option<&'a str>,
}

#[derive(Serialize)]
struct Rtc {
    tcp_port: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    udp_port: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    port_range_start: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    port_range_end: Option<u16>,
    node_ip: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    use_external_ip: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    interfaces: Option<Interfaces>,
    #[serde(skip_serializing_if = "Option::is_none")]
    enable_loopback_candidate: Option<bool>,
}

#[derive(Serialize)]
struct Interfaces {
    includes: Vec<String>,
}

#[derive(Serialize)]
struct Logging {
    json: bool,
    level: &'static str,
}

#[derive(Serialize)]
struct Room {
    empty_timeout: u32,
    departure_timeout: u32,
}

#[derive(Serialize)]
struct Webhook<'a> {
    urls: Vec<&'a str>,
    api_key: &'a str,
}

#[derive(Serialize)]
struct Turn {
    enabled: bool,
    domain: String,
    udp_port: u16,
    tls_port: u16,
    cert_file: String,
    key_file: String,
}

/// Generates livekit-server's YAML for `input`.
pub fn generate(input: &GenInput<'_>) -> Result<Generated, SupervisorError> {
    let c = input.config;
    let lk = &c.livekit;
    let v = input.version;
    let mut warnings = Vec::new();

    let newest = (NEWEST_KNOWN.major, NEWEST_KNOWN.minor);
    if (v.major, v.minor) > newest {
        warnings.push(format!(
            "livekit-server {v} is newer than the newest release bedrud knows ({NEWEST_KNOWN}); using the {}.{} key set",
            newest.0, newest.1
        ));
    }
    let tested = v >= OLDEST_TESTED;
    if !tested {
        warnings.push(format!(
            "livekit-server {v} is older than {OLDEST_TESTED}, the oldest release bedrud is tested with; upgrade it (scripts/install-livekit)"
        ));
    }

    if input.keys.key.is_empty() || input.keys.secret.is_empty() {
        return Err(SupervisorError::Config("the LiveKit API key and secret must not be empty".into()));
    }
    if input.keys.secret.chars().count() < 32 {
        warnings.push("the LiveKit API secret is shorter than 32 characters; LiveKit reports it as insecure".into());
    }

    let mut ports = vec![
        PortUse { port: lk.port, proto: Proto::Tcp, key: "livekit.port".into() },
        PortUse { port: lk.tcp_port, proto: Proto::Tcp, key: "livekit.tcpPort".into() },
    ];
    let (udp_port, range_start, range_end) = match (lk.udp_port_range_start, lk.udp_port_range_end) {
        (Some(a), Some(b)) => (None, Some(a), Some(b)),
        _ => {
            ports.push(PortUse { port: lk.udp_port, proto: Proto::Udp, key: "livekit.udpPort".into() });
            (Some(lk.udp_port), None, None)
        }
    };

    let (interfaces, loopback) = if tested {
        (
            (!lk.interfaces.is_empty()).then(|| Interfaces { includes: lk.interfaces.clone() }),
            lk.enable_loopback_candidate.then_some(true),
        )
    } else {
        if !lk.interfaces.is_empty() || lk.enable_loopback_candidate {
            warnings.push(format!(
                "livekit.interfaces and livekit.enableLoopbackCandidate are left out for livekit-server {v}"
            ));
        }
        (None, None)
    };

    let webhook = if input.webhook_url.is_empty() {
        warnings.push("no webhook URL: LiveKit will not tell bedrud about rooms and participants".into());
        None
    } else {
        Some(Webhook { urls: vec![input.webhook_url], api_key: &input.keys.key })
    };

    let turn = turn_section(c, input.node_ip, &mut warnings);
    if let Some(t) = &turn {
        ports.push(PortUse { port: t.udp_port, proto: Proto::Udp, key: "livekit.turnUdpPort".into() });
        ports.push(PortUse { port: t.tls_port, proto: Proto::Tcp, key: "livekit.turnTlsPort".into() });
    }
    if lk.use_external_ip {
        warnings.push(
            "livekit.useExternalIP is on: LiveKit asks STUN servers on the internet for its address and fails after ~50 s without them".into(),
        );
    }

    let doc = LkConfig {
        port: lk.port,
        rtc: Rtc {
            tcp_port: lk.tcp_port,
            udp_port,
            port_range_start: range_start,
            port_range_end: range_end,
            node_ip: input.node_ip.to_string(),
            use_external_ip: lk.use_external_ip.then_some(true),
            interfaces,
            enable_loopback_candidate: loopback,
        },
        keys: BTreeMap::from([(input.keys.key.as_str(), input.keys.secret.as_str())]),
        logging: Logging { json: true, level: livekit_log_level(&c.logging.level) },
        room: Room { empty_timeout: lk.empty_timeout, departure_timeout: lk.departure_timeout },
        webhook,
        turn,
        redis: input.redis.map(|r| Redis { address: &r.address, password: r.password.as_deref() }),
    };
    let yaml = serde_norway::to_string(&doc)
        .map_err(|e| SupervisorError::Config(format!("cannot render the LiveKit config: {e}")))?;
    let yaml = match &doc.turn {
        Some(t) => format!("{}{yaml}", turn_cert_comment(t)),
        None => yaml,
    };
    let turn = doc.turn.is_some();
    Ok(Generated { yaml, warnings, ports, turn })
}

/// TURN/UDP and TURN/TLS reusing bedrud's certificate, when bedrud serves TLS and LiveKit can
/// accept the setup; otherwise a warning that says why TURN stays off.
fn turn_section(c: &Config, node_ip: IpAddr, warnings: &mut Vec<String>) -> Option<Turn> {
    if !c.server.tls_enabled() {
        return None;
    }
    let lk = &c.livekit;
    let off = "TURN/TLS stays off (clients behind strict firewalls may not connect)";
    let Some(host) = c.server.host.as_deref().map(str::trim).filter(|h| !h.is_empty()) else {
        warnings.push(format!("{off}: server.host is not set; TURN/TLS needs the DNS name of bedrud's certificate"));
        return None;
    };
    if !is_turn_domain(host) {
        let why = if host.trim_matches(['[', ']']).parse::<IpAddr>().is_ok() {
            "is an IP address"
        } else {
            "is not a DNS name LiveKit accepts (it needs at least one dot, e.g. meet.example.com)"
        };
        warnings.push(format!("{off}: server.host {host:?} {why}; TURN/TLS needs the DNS name of bedrud's certificate"));
        return None;
    }
    if !node_ip.is_ipv4() {
        warnings.push(format!("{off}: LiveKit's TURN relay needs an IPv4 node IP, and it is {node_ip}; set livekit.nodeIP"));
        return None;
    }
    let Some((cert, key)) = c.tls_files() else {
        if c.server.acme.is_some() {
            warnings.push(format!("{off} until ACME has issued the first certificate; LiveKit is restarted with it then"));
        } else {
            warnings.push(format!("{off}: server.tls.keyFile is not set"));
        }
        return None;
    };
    Some(Turn {
        enabled: true,
        domain: host.trim_end_matches('.').to_string(),
        udp_port: lk.turn_udp_port,
        tls_port: lk.turn_tls_port,
        cert_file: absolute(&cert).display().to_string(),
        key_file: absolute(&key).display().to_string(),
    })
}

/// A comment naming the certificate TURN/TLS serves and its SHA-256: LiveKit reads the file
/// only when it starts, so a renewed certificate at the same path is a different config, and
/// the supervisor restarts LiveKit for it.
fn turn_cert_comment(turn: &Turn) -> String {
    use sha2::{Digest, Sha256};
    match std::fs::read(&turn.cert_file) {
        Ok(bytes) => {
            let hex: String = Sha256::digest(&bytes).iter().map(|b| format!("{b:02x}")).collect();
            format!("# TURN/TLS certificate {} sha256 {hex}\n", turn.cert_file)
        }
        Err(_) => String::new(),
    }
}

/// The child runs in bedrud's working directory today, but the file must not depend on it.
fn absolute(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}

/// True for a name livekit-server accepts as `turn.domain` (its own rule:
/// `^[a-z0-9-]+(\.[a-z0-9-]+)+\.?$`, case-insensitive) that is not an IP address.
pub fn is_turn_domain(host: &str) -> bool {
    if host.parse::<IpAddr>().is_ok() {
        return false;
    }
    let h = host.strip_suffix('.').unwrap_or(host);
    let labels: Vec<&str> = h.split('.').collect();
    labels.len() >= 2
        && labels
            .iter()
            .all(|l| !l.is_empty() && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
}

/// LiveKit's log level for bedrud's `logging.level` (a level or a tracing filter such as
/// `info,bedrud=debug`: its default level counts). LiveKit has no trace level.
pub fn livekit_log_level(filter: &str) -> &'static str {
    let bare = filter.split(',').map(str::trim).find(|d| !d.is_empty() && !d.contains('='));
    match bare.map(str::to_ascii_lowercase).as_deref() {
        Some("trace" | "debug") => "debug",
        Some("warn" | "warning") => "warn",
        Some("error" | "off") => "error",
        _ => "info",
    }
}

/// What `bedrud livekit print-config` shows: the config livekit-server would be started with
/// (the static file for `livekit.configPath`). Secrets are redacted unless `show_secrets`.
/// Without a detected `version`, the newest known key set is shown.
pub fn print_config(
    config: &Config,
    keys: &ApiKeys,
    version: Option<Version>,
    webhook_url: &str,
    redis: Option<&RedisConn>,
    show_secrets: bool,
) -> Result<String, SupervisorError> {
    if let Some(path) = &config.livekit.config_path {
        let text = std::fs::read_to_string(path).map_err(|e| SupervisorError::Io {
            what: format!("cannot read livekit.configPath {}", path.display()),
            source: e,
        })?;
        let body = if show_secrets { text } else { redact_static(&text)? };
        return Ok(format!(
            "# livekit.configPath is set: livekit-server is started with {} as is\n{body}",
            path.display()
        ));
    }
    let node = nodeip::resolve(config)?;
    let (version, assumed) = match version {
        Some(v) => (v, ""),
        None => (NEWEST_KNOWN, " (assumed: livekit-server was not run)"),
    };
    let shown = if show_secrets {
        keys.clone()
    } else {
        ApiKeys { key: keys.key.clone(), secret: REDACTED.into() }
    };
    let redis = redis.map(|r| RedisConn {
        address: r.address.clone(),
        password: r.password.as_ref().map(|p| if show_secrets { p.clone() } else { REDACTED.into() }),
    });
    let generated = generate(&GenInput {
        config,
        keys: &shown,
        version,
        webhook_url,
        node_ip: node.ip,
        redis: redis.as_ref(),
    })?;
    let mut out = format!(
        "# livekit-server config generated by bedrud for livekit-server {version}{assumed}\n# node_ip {} from {}\n",
        node.ip, node.source
    );
    for w in node.warning.iter().chain(&generated.warnings) {
        out.push_str(&format!("# warning: {w}\n"));
    }
    out.push_str(&generated.yaml);
    Ok(out)
}

/// Replaces the values of `keys`, `redis.password` and `turn` secrets in a LiveKit YAML.
fn redact_static(text: &str) -> Result<String, SupervisorError> {
    use serde_norway::Value;
    let mut doc: Value = serde_norway::from_str(text)
        .map_err(|e| SupervisorError::Config(format!("livekit.configPath is not valid YAML: {e}")))?;
    if let Some(keys) = doc.get_mut("keys").and_then(Value::as_mapping_mut) {
        for (_, v) in keys.iter_mut() {
            *v = Value::String(REDACTED.into());
        }
    }
    if let Some(redis) = doc.get_mut("redis").and_then(Value::as_mapping_mut) {
        if let Some(p) = redis.get_mut("password") {
            *p = Value::String(REDACTED.into());
        }
    }
    serde_norway::to_string(&doc)
        .map_err(|e| SupervisorError::Config(format!("cannot render livekit.configPath: {e}")))
}

/// The `webhook:` block an operator adds to an external LiveKit's YAML. `public_url` is how
/// LiveKit reaches bedrud (e.g. `https://bedrud.example.com`); empty: derived from `server.*`.
pub fn webhook_config(config: &Config, key: &str, public_url: &str) -> String {
    #[derive(Serialize)]
    struct Doc<'a> {
        webhook: Webhook<'a>,
    }
    let base = if public_url.trim().is_empty() {
        let scheme = if config.server.tls_enabled() { "https" } else { "http" };
        let host = config.server.host.as_deref().unwrap_or("127.0.0.1");
        let host = if host.contains(':') && !host.starts_with('[') { format!("[{host}]") } else { host.to_string() };
        format!("{scheme}://{host}:{}", config.server.port)
    } else {
        public_url.trim().trim_end_matches('/').to_string()
    };
    let url = if base.ends_with(WEBHOOK_PATH) { base } else { format!("{base}{WEBHOOK_PATH}") };
    let doc = Doc { webhook: Webhook { urls: vec![&url], api_key: key } };
    let yaml = serde_norway::to_string(&doc).unwrap_or_default();
    format!(
        "# Add this to your LiveKit server's YAML (e.g. livekit.yaml) and restart it.\n\
         # LiveKit signs every webhook with the secret of api_key, which must be among its keys\n\
         # and match bedrud's livekit.apiKey / livekit.apiSecret.\n{yaml}"
    )
}

/// What bedrud reads from a static `livekit.configPath` file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaticInfo {
    /// `port` (LiveKit's default 7880 when absent).
    pub port: u16,
    /// `keys` (or the file named by `key_file`): key, secret.
    pub keys: Vec<(String, String)>,
    /// Ports it will bind, for the preflight check.
    pub ports: Vec<PortUse>,
    pub warnings: Vec<String>,
}

/// Reads `port` and `keys` from a static LiveKit YAML (passed to livekit-server as is).
pub fn read_static(path: &Path) -> Result<StaticInfo, SupervisorError> {
    use serde_norway::Value;
    let name = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| SupervisorError::Io {
        what: format!("cannot read livekit.configPath {name}"),
        source: e,
    })?;
    let doc: Value = if text.trim().is_empty() {
        Value::Mapping(Default::default())
    } else {
        serde_norway::from_str(&text)
            .map_err(|e| SupervisorError::Config(format!("livekit.configPath {name} is not valid YAML: {e}")))?
    };
    let port_of = |v: Option<&Value>| v.and_then(Value::as_u64).and_then(|p| u16::try_from(p).ok());
    let port = port_of(doc.get("port")).unwrap_or(7880);
    let mut ports = vec![PortUse { port, proto: Proto::Tcp, key: format!("port in {name} (livekit.configPath)") }];
    let rtc = doc.get("rtc");
    if let Some(p) = port_of(rtc.and_then(|r| r.get("tcp_port"))) {
        ports.push(PortUse { port: p, proto: Proto::Tcp, key: format!("rtc.tcp_port in {name} (livekit.configPath)") });
    }
    if let Some(p) = port_of(rtc.and_then(|r| r.get("udp_port"))) {
        ports.push(PortUse { port: p, proto: Proto::Udp, key: format!("rtc.udp_port in {name} (livekit.configPath)") });
    }
    let turn = doc.get("turn");
    if turn.and_then(|t| t.get("enabled")).and_then(Value::as_bool) == Some(true) {
        if let Some(p) = port_of(turn.and_then(|t| t.get("udp_port"))) {
            ports.push(PortUse { port: p, proto: Proto::Udp, key: format!("turn.udp_port in {name} (livekit.configPath)") });
        }
        if let Some(p) = port_of(turn.and_then(|t| t.get("tls_port"))) {
            ports.push(PortUse { port: p, proto: Proto::Tcp, key: format!("turn.tls_port in {name} (livekit.configPath)") });
        }
    }

    let mut keys = Vec::new();
    let key_map = match (doc.get("keys"), doc.get("key_file").and_then(Value::as_str)) {
        (Some(k), _) => Some(k.clone()),
        (None, Some(file)) => {
            let file = Path::new(file);
            let file = if file.is_relative() { path.parent().unwrap_or(Path::new(".")).join(file) } else { file.to_path_buf() };
            let t = std::fs::read_to_string(&file).map_err(|e| SupervisorError::Io {
                what: format!("cannot read key_file {} named in {name}", file.display()),
                source: e,
            })?;
            Some(serde_norway::from_str::<Value>(&t).map_err(|e| {
                SupervisorError::Config(format!("key_file {} is not valid YAML: {e}", file.display()))
            })?)
        }
        (None, None) => None,
    };
    if let Some(Value::Mapping(m)) = key_map {
        for (k, v) in m {
            if let (Some(k), Some(v)) = (scalar(&k), scalar(&v)) {
                keys.push((k, v));
            }
        }
    }
    if keys.is_empty() {
        return Err(SupervisorError::Config(format!(
            "livekit.configPath {name} has no `keys:` (or `key_file:`); livekit-server and bedrud need the same API key and secret"
        )));
    }
    let mut warnings = Vec::new();
    let has_webhook = doc
        .get("webhook")
        .and_then(|w| w.get("urls"))
        .and_then(Value::as_sequence)
        .is_some_and(|s| !s.is_empty());
    if !has_webhook {
        warnings.push(format!(
            "{name} has no webhook.urls: LiveKit will not tell bedrud about rooms and participants (see `bedrud livekit webhook-config`)"
        ));
    }
    Ok(StaticInfo { port, keys, ports, warnings })
}

fn scalar(v: &serde_norway::Value) -> Option<String> {
    use serde_norway::Value;
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// The temporary config file `bedrud-livekit-<random>.yaml` in `dir`, mode 0600, removed when
/// dropped.
pub fn temp_config(dir: &Path, body: &str) -> Result<TempFile, SupervisorError> {
    TempFile::create(dir, TEMP_PREFIX, TEMP_SUFFIX, "LiveKit config", body)
}

/// Removes LiveKit configs left in `dir` by a bedrud that did not clean up (killed).
pub fn remove_stale(dir: &Path) -> Vec<PathBuf> {
    supervise::remove_stale(dir, TEMP_PREFIX, TEMP_SUFFIX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::TlsConfig;

    fn keys() -> ApiKeys {
        ApiKeys { key: "APIkey1".into(), secret: "s".repeat(40) }
    }

    fn gen(c: &Config, v: Version) -> Generated {
        generate(&GenInput {
            config: c,
            keys: &keys(),
            version: v,
            webhook_url: "http://127.0.0.1:8090/api/livekit/webhook",
            node_ip: "10.0.0.5".parse().unwrap(),
            redis: None,
        })
        .unwrap()
    }

    fn parse(y: &str) -> serde_norway::Value {
        serde_norway::from_str(y).unwrap()
    }

    #[test]
    fn default_config_keys() {
        let g = gen(&Config::default(), NEWEST_KNOWN);
        let v = parse(&g.yaml);
        assert_eq!(v["port"].as_u64(), Some(7880));
        assert_eq!(v["rtc"]["tcp_port"].as_u64(), Some(7881));
        assert_eq!(v["rtc"]["udp_port"].as_u64(), Some(7882));
        assert_eq!(v["rtc"]["node_ip"].as_str(), Some("10.0.0.5"));
        assert!(v["rtc"].get("use_external_ip").is_none());
        assert!(v["rtc"].get("interfaces").is_none());
        assert!(v["rtc"].get("enable_loopback_candidate").is_none());
        assert_eq!(v["keys"]["APIkey1"].as_str(), Some("s".repeat(40).as_str()));
        assert_eq!(v["logging"]["json"].as_bool(), Some(true));
        assert_eq!(v["logging"]["level"].as_str(), Some("info"));
        assert_eq!(v["room"]["empty_timeout"].as_u64(), Some(300));
        assert_eq!(v["room"]["departure_timeout"].as_u64(), Some(20));
        assert_eq!(v["webhook"]["api_key"].as_str(), Some("APIkey1"));
        assert_eq!(v["webhook"]["urls"][0].as_str(), Some("http://127.0.0.1:8090/api/livekit/webhook"));
        assert!(v.get("bind_addresses").is_none());
        assert!(v.get("turn").is_none());
        assert!(g.warnings.is_empty(), "{:?}", g.warnings);
        let ports: Vec<_> = g.ports.iter().map(|p| (p.port, p.proto)).collect();
        assert_eq!(ports, vec![(7880, Proto::Tcp), (7881, Proto::Tcp), (7882, Proto::Udp)]);
    }

    #[test]
    fn range_interfaces_and_version_gate() {
        let mut c = Config::default();
        c.livekit.udp_port_range_start = Some(50000);
        c.livekit.udp_port_range_end = Some(50100);
        c.livekit.interfaces = vec!["lo".into()];
        c.livekit.enable_loopback_candidate = true;
        c.livekit.use_external_ip = true;
        c.logging.level = "debug,hyper=info".into();
        let v = parse(&gen(&c, Version::new(1, 9, 12)).yaml);
        assert!(v["rtc"].get("udp_port").is_none());
        assert_eq!(v["rtc"]["port_range_start"].as_u64(), Some(50000));
        assert_eq!(v["rtc"]["port_range_end"].as_u64(), Some(50100));
        assert_eq!(v["rtc"]["interfaces"]["includes"][0].as_str(), Some("lo"));
        assert_eq!(v["rtc"]["enable_loopback_candidate"].as_bool(), Some(true));
        assert_eq!(v["rtc"]["use_external_ip"].as_bool(), Some(true));
        assert_eq!(v["logging"]["level"].as_str(), Some("debug"));
        let old = gen(&c, Version::new(1, 8, 4));
        let v = parse(&old.yaml);
        assert!(v["rtc"].get("interfaces").is_none());
        assert!(v["rtc"].get("enable_loopback_candidate").is_none());
        assert!(old.warnings.iter().any(|w| w.contains("older than")), "{:?}", old.warnings);
        let newer = gen(&c, Version::new(1, 14, 0));
        assert!(newer.warnings.iter().any(|w| w.contains("newer than")), "{:?}", newer.warnings);
        assert_eq!(parse(&newer.yaml)["rtc"]["interfaces"]["includes"][0].as_str(), Some("lo"));
    }

    fn tls_config(host: Option<&str>) -> Config {
        let mut c = Config::default();
        c.server.host = host.map(str::to_string);
        c.server.tls = Some(TlsConfig {
            cert_file: Some("/etc/bedrud/cert.pem".into()),
            key_file: Some("/run/credentials/bedrud.service/tls-key".into()),
        });
        c
    }

    #[test]
    fn turn_with_tls_and_dns_name() {
        let g = gen(&tls_config(Some("meet.example.com")), NEWEST_KNOWN);
        let v = parse(&g.yaml);
        assert_eq!(v["turn"]["enabled"].as_bool(), Some(true));
        assert_eq!(v["turn"]["domain"].as_str(), Some("meet.example.com"));
        assert_eq!(v["turn"]["udp_port"].as_u64(), Some(3478));
        assert_eq!(v["turn"]["tls_port"].as_u64(), Some(5349));
        assert_eq!(v["turn"]["cert_file"].as_str(), Some("/etc/bedrud/cert.pem"));
        assert_eq!(v["turn"]["key_file"].as_str(), Some("/run/credentials/bedrud.service/tls-key"));
        assert!(g.turn);
        assert!(g.ports.iter().any(|p| p.port == 5349 && p.key == "livekit.turnTlsPort"));
    }

    #[test]
    fn turn_off_with_reason() {
        for (host, why) in [
            (Some("203.0.113.7"), "is an IP address"),
            (Some("[2001:db8::1]"), "is an IP address"),
            (Some("localhost"), "needs at least one dot"),
            (None, "server.host is not set"),
        ] {
            let g = gen(&tls_config(host), NEWEST_KNOWN);
            assert!(parse(&g.yaml).get("turn").is_none(), "{host:?}");
            assert!(g.warnings.iter().any(|w| w.contains("TURN/TLS stays off") && w.contains(why)), "{host:?}: {:?}", g.warnings);
        }
        let g = generate(&GenInput {
            config: &tls_config(Some("meet.example.com")),
            keys: &keys(),
            version: NEWEST_KNOWN,
            webhook_url: "http://127.0.0.1:1/x",
            node_ip: "2001:db8::5".parse().unwrap(),
            redis: None,
        })
        .unwrap();
        assert!(!g.turn && g.warnings.iter().any(|w| w.contains("IPv4")), "{:?}", g.warnings);
    }

    #[test]
    fn turn_domain_rule() {
        assert!(is_turn_domain("meet.example.com"));
        assert!(is_turn_domain("bedrud.test."));
        assert!(!is_turn_domain("localhost"));
        assert!(!is_turn_domain("127.0.0.1"));
        assert!(!is_turn_domain("0.0.0.0"));
        assert!(!is_turn_domain("a..b"));
        assert!(!is_turn_domain("meet_x.example.com"));
    }

    #[test]
    fn log_levels() {
        assert_eq!(livekit_log_level("info"), "info");
        assert_eq!(livekit_log_level("trace"), "debug");
        assert_eq!(livekit_log_level("bedrud=debug"), "info");
        assert_eq!(livekit_log_level("WARN,bedrud=debug"), "warn");
        assert_eq!(livekit_log_level("error"), "error");
    }

    #[test]
    fn print_config_redacts() {
        let c = Config::default();
        let out = print_config(&c, &keys(), None, "http://127.0.0.1:8090/api/livekit/webhook", None, false).unwrap();
        assert!(out.contains("<redacted>") && !out.contains(&"s".repeat(40)), "{out}");
        assert!(out.contains("assumed"), "{out}");
        let out = print_config(&c, &keys(), Some(Version::new(1, 9, 12)), "http://x/y", None, true).unwrap();
        assert!(out.contains(&"s".repeat(40)) && out.contains("1.9.12"), "{out}");

        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("lk.yaml");
        std::fs::write(&p, "port: 7000\nkeys:\n  k1: supersecretsupersecretsupersecret\n").unwrap();
        let mut c = Config::default();
        c.livekit.config_path = Some(p);
        let out = print_config(&c, &keys(), None, "", None, false).unwrap();
        assert!(out.contains("as is") && out.contains("<redacted>") && !out.contains("supersecret"), "{out}");
    }

    #[test]
    fn webhook_block() {
        let c = Config::default();
        let out = webhook_config(&c, "mykey", "https://bedrud.example.com/");
        let v = parse(&out);
        assert_eq!(v["webhook"]["urls"][0].as_str(), Some("https://bedrud.example.com/api/livekit/webhook"));
        assert_eq!(v["webhook"]["api_key"].as_str(), Some("mykey"));
        let mut c = tls_config(Some("meet.example.com"));
        c.server.port = 443;
        let v = parse(&webhook_config(&c, "k", ""));
        assert_eq!(v["webhook"]["urls"][0].as_str(), Some("https://meet.example.com:443/api/livekit/webhook"));
    }

    #[test]
    fn static_file() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("lk.yaml");
        std::fs::write(&p, "port: 7000\nrtc:\n  tcp_port: 7001\n  udp_port: 7002\nkeys:\n  k1: s1\nturn:\n  enabled: true\n  udp_port: 7003\n").unwrap();
        let s = read_static(&p).unwrap();
        assert_eq!(s.port, 7000);
        assert_eq!(s.keys, vec![("k1".to_string(), "s1".to_string())]);
        let ports: Vec<_> = s.ports.iter().map(|p| (p.port, p.proto)).collect();
        assert_eq!(ports, vec![(7000, Proto::Tcp), (7001, Proto::Tcp), (7002, Proto::Udp), (7003, Proto::Udp)]);
        assert!(s.warnings.iter().any(|w| w.contains("webhook")));
        std::fs::write(d.path().join("keys.yaml"), "k2: s2\n").unwrap();
        std::fs::write(&p, "key_file: keys.yaml\nwebhook:\n  urls: [http://x]\n  api_key: k2\n").unwrap();
        let s = read_static(&p).unwrap();
        assert_eq!((s.port, s.keys.clone(), s.warnings.len()), (7880, vec![("k2".into(), "s2".into())], 0));
        std::fs::write(&p, "port: 7000\n").unwrap();
        assert!(read_static(&p).unwrap_err().to_string().contains("keys"));
    }
}
