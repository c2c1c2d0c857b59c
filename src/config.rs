//! Configuration: built-in defaults, then the file (YAML or TOML by extension), then
//! `BEDRUD_<SECTION>_<KEY>` environment overrides, then secrets from files or systemd
//! credentials, then validation. Every error names where it came from and how to fix it.

use std::collections::BTreeMap;
use std::fmt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use crate::recording::config::{RecordingConfig, RedisConfig, S3Config};

/// Where the config file is looked for when neither `--config` nor `BEDRUD_CONFIG` names one.
pub const DEFAULT_PATHS: [&str; 3] = [
    "/etc/bedrud/config.yaml",
    "/etc/bedrud/config.yml",
    "/etc/bedrud/config.toml",
];

/// Name of the systemd credential (`LoadCredential=`) holding the LiveKit API secret.
pub const CRED_LIVEKIT_SECRET: &str = "livekit-api-secret";
/// Name of the systemd credential holding the TLS private key.
pub const CRED_TLS_KEY: &str = "tls-key";
/// Name of the systemd credential holding the SMTP password.
pub const CRED_SMTP_PASSWORD: &str = "smtp-password";
/// Prefix of the systemd credential holding an OpenID provider's client secret
/// (`oidc-<name>`).
pub const CRED_OIDC_PREFIX: &str = "oidc-";

const REDACTED: &str = "<redacted>";
const MIN_SECRET_LEN: usize = 32;

/// The whole configuration. Field names are the public, camelCase keys.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct Config {
    pub server: ServerConfig,
    pub database: DatabaseConfig,
    pub livekit: LivekitConfig,
    pub auth: AuthConfig,
    pub smtp: SmtpConfig,
    pub logging: LoggingConfig,
    pub recording: RecordingConfig,
    pub redis: RedisConfig,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct ServerConfig {
    /// Public host name (or IP) of this service; used for TURN and for default URLs.
    pub host: Option<String>,
    /// The URL people open to reach bedrud (`https://meet.example.org`): links in mail, the
    /// OpenID Connect redirect URI, and the WebAuthn origin (its host is the passkeys' RP ID).
    /// Default: from `host`, `port` and TLS, or `http://localhost:<port>`.
    pub public_url: Option<String>,
    pub port: u16,
    /// Address the API listens on.
    pub bind: String,
    pub tls: Option<TlsConfig>,
    /// Certificates obtained and renewed automatically (instead of `tls`).
    pub acme: Option<AcmeConfig>,
    /// Largest accepted request body, in bytes (webhooks are allowed 1 MiB).
    pub body_limit: usize,
    /// Per-request time limit (covers reading the body).
    #[serde(with = "humantime_serde")]
    pub request_timeout: Duration,
    /// Time a client may take to send its request headers (and a TLS handshake); also how long
    /// a keep-alive connection may sit idle between requests.
    #[serde(with = "humantime_serde")]
    pub header_timeout: Duration,
    /// Open API connections at most; more are closed at once.
    pub max_connections: usize,
    /// Open API connections from one client address at most.
    pub max_connections_per_address: usize,
    /// Reverse proxies (addresses or CIDRs) whose `Forwarded` / `X-Forwarded-For` names the client.
    pub trusted_proxies: Vec<String>,
    /// `host:port` for Prometheus `/metrics` (off when unset; loopback recommended).
    pub metrics_address: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct TlsConfig {
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
}

/// Let's Encrypt's production directory.
pub const LETS_ENCRYPT: &str = "https://acme-v02.api.letsencrypt.org/directory";

/// `server.acme`: bedrud obtains and renews its HTTPS certificate itself (and reuses it for
/// LiveKit's TURN/TLS). Certificates live in `<state>/acme/`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct AcmeConfig {
    /// Contact address given to the CA (expiry notices).
    pub email: Option<String>,
    /// The ACME directory (default Let's Encrypt).
    pub directory_url: String,
    /// Names on the certificate; default `[server.host]`.
    pub domains: Vec<String>,
    /// PEM file of extra roots trusted for `directoryUrl` (a private or test CA).
    pub ca_roots: Option<PathBuf>,
    /// `tls-alpn-01` (answered on the HTTPS port) or `http-01` (answered on `httpPort`).
    pub challenge: String,
    /// Port of the plain-HTTP listener for `http-01` (it also redirects other requests to HTTPS).
    pub http_port: u16,
}

impl Default for AcmeConfig {
    fn default() -> Self {
        Self {
            email: None,
            directory_url: LETS_ENCRYPT.into(),
            domains: Vec::new(),
            ca_roots: None,
            challenge: "tls-alpn-01".into(),
            http_port: 80,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct DatabaseConfig {
    /// redb file; default `$STATE_DIRECTORY/bedrud.redb`, else `./data/bedrud.redb`.
    pub path: Option<PathBuf>,
    /// redb's page cache, in bytes.
    pub cache_size: usize,
    /// Participant history older than this is removed in the background.
    #[serde(with = "humantime_serde")]
    pub history_retention: Duration,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        Self { path: None, cache_size: 64 * 1024 * 1024, history_retention: Duration::from_secs(90 * 86_400) }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct LivekitConfig {
    /// URL clients connect to (ws:// or wss://). Default `ws://<server.host or 127.0.0.1>:<port>`.
    pub host: Option<String>,
    /// URL bedrud uses for LiveKit's API (http:// or https://). Default `http://127.0.0.1:<port>`.
    pub internal_host: Option<String>,
    pub api_key: Option<String>,
    pub api_secret: Option<String>,
    pub api_secret_file: Option<PathBuf>,
    /// `true`: talk to a LiveKit run elsewhere; `false` (default): run livekit-server as a child.
    pub external: Option<bool>,
    /// The seed's spelling of the same switch, inverted (`embedded: false` = `external: true`).
    pub embedded: Option<bool>,
    #[serde(rename = "skipTLSVerify")]
    pub skip_tls_verify: bool,
    /// A static LiveKit YAML passed to livekit-server as is (env `LIVEKIT_CONFIG_PATH`).
    pub config_path: Option<PathBuf>,
    #[serde(rename = "nodeIP")]
    pub node_ip: Option<String>,
    /// livekit-server executable (else `BEDRUD_LIVEKIT_BINARY`, `/usr/lib/bedrud/livekit-server`, PATH).
    pub binary: Option<PathBuf>,
    /// LiveKit's HTTP/WebSocket port.
    pub port: u16,
    /// ICE over TCP.
    pub tcp_port: u16,
    /// Single UDP port for media (used unless a range is set).
    pub udp_port: u16,
    /// UDP media port range (both ends set: the range replaces `udpPort`).
    pub udp_port_range_start: Option<u16>,
    pub udp_port_range_end: Option<u16>,
    /// Ask internet STUN servers for the external IP (off: needs internet, slow to fail).
    #[serde(rename = "useExternalIP")]
    pub use_external_ip: bool,
    /// Network interfaces LiveKit gathers ICE candidates on (`rtc.interfaces.includes`); empty: all.
    pub interfaces: Vec<String>,
    /// Offer loopback ICE candidates (`rtc.enable_loopback_candidate`), for single-host setups.
    pub enable_loopback_candidate: bool,
    /// TURN ports, used when bedrud serves TLS.
    pub turn_udp_port: u16,
    pub turn_tls_port: u16,
    /// Seconds an empty room stays open in LiveKit / after the last participant left.
    pub empty_timeout: u32,
    pub departure_timeout: u32,
    /// Lifetime of a client join token (only has to be valid at connect).
    #[serde(with = "humantime_serde")]
    pub token_ttl: Duration,
    /// How long livekit-server may take to become healthy.
    #[serde(with = "humantime_serde")]
    pub start_timeout: Duration,
    /// Grace period after the first SIGTERM before the forced stop.
    #[serde(with = "humantime_serde")]
    pub stop_timeout: Duration,
    #[serde(with = "humantime_serde")]
    pub health_interval: Duration,
    /// Consecutive failed health probes before the child is killed and restarted.
    pub health_failures: u32,
    /// How often bedrud's room state is compared with LiveKit's own listing.
    #[serde(with = "humantime_serde")]
    pub reconcile_interval: Duration,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct AuthConfig {
    /// Anyone may create an account with `POST /api/auth/register`.
    pub registration: bool,
    /// Visitors without an account may join rooms marked public.
    pub guest_join: bool,
    #[serde(with = "humantime_serde")]
    pub session_ttl: Duration,
    /// Failed logins (per account and per client address) before 429.
    pub max_failed_logins: u32,
    /// Longest delay between attempts once a client is throttled.
    #[serde(with = "humantime_serde")]
    pub lockout: Duration,
    /// Users may register passkeys and sign in with them (WebAuthn; needs `server.publicUrl`
    /// to name a host, not an IP address).
    pub passkeys: bool,
    /// OpenID Connect providers for single sign-on, one button each.
    pub oidc: Vec<OidcProvider>,
    /// Argon2 password hashes run at most this many at once (default: the number of cores).
    pub max_concurrent_hashes: Option<usize>,
}

/// One OpenID Connect provider (`auth.oidc[]`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct OidcProvider {
    /// Short id in URLs and credential names: 1-32 of `a-z 0-9 -`.
    pub name: String,
    /// Text of the sign-in button (default: the name).
    #[serde(default)]
    pub label: Option<String>,
    /// Issuer URL; discovery is read from `<issuer>/.well-known/openid-configuration`.
    pub issuer: String,
    pub client_id: String,
    /// File with the client secret (else the credential `oidc-<name>`; none: a public client).
    #[serde(default)]
    pub client_secret_file: Option<PathBuf>,
    /// Filled from the file or credential; never written out.
    #[serde(skip)]
    pub client_secret: Option<String>,
    #[serde(default = "default_oidc_scopes")]
    pub scopes: Vec<String>,
    /// Only people whose verified e-mail is in one of these domains may sign in.
    #[serde(default)]
    pub allowed_domains: Vec<String>,
    /// Only members of one of these groups may sign in.
    #[serde(default)]
    pub allowed_groups: Vec<String>,
    /// Members of this group are bedrud administrators.
    #[serde(default)]
    pub admin_group: Option<String>,
    /// The claim that lists a person's groups.
    #[serde(default = "default_groups_claim")]
    pub groups_claim: String,
    /// A first sign-in whose verified e-mail belongs to an existing account signs into it.
    #[serde(default)]
    pub link_by_email: bool,
}

fn default_oidc_scopes() -> Vec<String> {
    ["openid", "email", "profile"].map(String::from).to_vec()
}

fn default_groups_claim() -> String {
    "groups".into()
}

/// Outgoing mail (password reset, e-mail verification, invitations). Off while `host` is unset.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct SmtpConfig {
    pub host: Option<String>,
    /// Default: 587 for `starttls`, 465 for `tls`, 25 for `none`.
    pub port: Option<u16>,
    /// `starttls`, `tls` (implicit TLS) or `none` (plain; only for a relay on this host).
    pub security: String,
    pub username: Option<String>,
    /// File with the password (else the credential `smtp-password`).
    pub password_file: Option<PathBuf>,
    #[serde(skip)]
    pub password: Option<String>,
    /// Sender, e.g. `bedrud <meet@example.org>`.
    pub from: Option<String>,
    /// A PEM certificate to trust besides the system's roots (a private CA).
    pub ca_file: Option<PathBuf>,
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct LoggingConfig {
    /// trace, debug, info, warn, error (or a tracing filter such as `info,bedrud=debug`).
    pub level: String,
    /// auto (journald under systemd, else text), text, json, journald.
    pub format: String,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            host: None,
            public_url: None,
            port: 8090,
            bind: "0.0.0.0".into(),
            tls: None,
            acme: None,
            body_limit: 64 * 1024,
            request_timeout: Duration::from_secs(30),
            header_timeout: Duration::from_secs(15),
            max_connections: 8192,
            max_connections_per_address: 256,
            trusted_proxies: Vec::new(),
            metrics_address: None,
        }
    }
}

impl Default for LivekitConfig {
    fn default() -> Self {
        Self {
            host: None,
            internal_host: None,
            api_key: None,
            api_secret: None,
            api_secret_file: None,
            external: None,
            embedded: None,
            skip_tls_verify: false,
            config_path: None,
            node_ip: None,
            binary: None,
            port: 7880,
            tcp_port: 7881,
            udp_port: 7882,
            udp_port_range_start: None,
            udp_port_range_end: None,
            use_external_ip: false,
            interfaces: Vec::new(),
            enable_loopback_candidate: false,
            turn_udp_port: 3478,
            turn_tls_port: 5349,
            empty_timeout: 300,
            departure_timeout: 20,
            token_ttl: Duration::from_secs(600),
            start_timeout: Duration::from_secs(30),
            stop_timeout: Duration::from_secs(10),
            health_interval: Duration::from_secs(5),
            health_failures: 3,
            reconcile_interval: Duration::from_secs(60),
        }
    }
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            registration: false,
            guest_join: false,
            session_ttl: Duration::from_secs(7 * 24 * 3600),
            max_failed_logins: 5,
            lockout: Duration::from_secs(300),
            passkeys: true,
            oidc: Vec::new(),
            max_concurrent_hashes: None,
        }
    }
}

impl Default for SmtpConfig {
    fn default() -> Self {
        Self {
            host: None,
            port: None,
            security: "starttls".into(),
            username: None,
            password_file: None,
            password: None,
            from: None,
            ca_file: None,
            timeout: Duration::from_secs(15),
        }
    }
}

impl SmtpConfig {
    pub fn enabled(&self) -> bool {
        self.host.is_some()
    }

    /// The port in use: the configured one, else the usual one for `security`.
    pub fn port(&self) -> u16 {
        self.port.unwrap_or(match self.security.as_str() {
            "tls" => 465,
            "none" => 25,
            _ => 587,
        })
    }
}

impl Default for LoggingConfig {
    fn default() -> Self {
        Self { level: "info".into(), format: "auto".into() }
    }
}

impl ServerConfig {
    /// bedrud serves HTTPS: with a certificate file, or one obtained through ACME.
    pub fn tls_enabled(&self) -> bool {
        self.tls.as_ref().is_some_and(|t| t.cert_file.is_some()) || self.acme.is_some()
    }

    /// The names ACME asks for: `server.acme.domains`, else `server.host`.
    pub fn acme_domains(&self) -> Vec<String> {
        match &self.acme {
            Some(a) if !a.domains.is_empty() => a.domains.clone(),
            Some(_) => self.host.iter().map(|h| h.trim().trim_end_matches('.').to_ascii_lowercase()).collect(),
            None => Vec::new(),
        }
    }

    /// `trustedProxies` parsed; entries that do not parse were refused by validation.
    pub fn trusted_proxy_nets(&self) -> Vec<ipnet::IpNet> {
        self.trusted_proxies.iter().filter_map(|p| parse_net(p).ok()).collect()
    }

    /// `metricsAddress` parsed (validated on load).
    pub fn metrics_socket(&self) -> Option<std::net::SocketAddr> {
        self.metrics_address.as_deref().and_then(|a| a.parse().ok())
    }
}

/// An address (a host route) or a CIDR.
fn parse_net(s: &str) -> Result<ipnet::IpNet, String> {
    let s = s.trim();
    if let Ok(n) = s.parse::<ipnet::IpNet>() {
        return Ok(n.trunc());
    }
    s.parse::<std::net::IpAddr>().map(ipnet::IpNet::from).map_err(|_| format!("{s:?} is not an IP address or CIDR"))
}

impl LivekitConfig {
    /// External mode: no child process.
    pub fn is_external(&self) -> bool {
        self.external.or(self.embedded.map(|e| !e)).unwrap_or(false)
    }
}

impl Config {
    /// The database file, resolved against `$STATE_DIRECTORY` when unset.
    pub fn database_path(&self) -> PathBuf {
        if let Some(p) = &self.database.path {
            return p.clone();
        }
        match std::env::var_os("STATE_DIRECTORY") {
            // systemd may pass several colon-separated directories; the first is ours.
            Some(dirs) => {
                let first = dirs.to_string_lossy().split(':').next().unwrap_or("").to_string();
                PathBuf::from(first).join("bedrud.redb")
            }
            None => PathBuf::from("data/bedrud.redb"),
        }
    }

    /// Where ACME keeps its account, certificate and status: `acme/` beside the database.
    pub fn acme_dir(&self) -> PathBuf {
        let db = self.database_path();
        db.parent().map(|p| p.join("acme")).unwrap_or_else(|| PathBuf::from("acme"))
    }

    /// Certificate chain and key bedrud serves (and lends to TURN/TLS): `server.tls`, or the
    /// ACME files once the first certificate was issued.
    pub fn tls_files(&self) -> Option<(PathBuf, PathBuf)> {
        if self.server.acme.is_some() {
            let dir = self.acme_dir();
            let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
            return (cert.exists() && key.exists()).then_some((cert, key));
        }
        let t = self.server.tls.as_ref()?;
        Some((t.cert_file.clone()?, t.key_file.clone()?))
    }

    /// URL handed to clients in join answers: `livekit.host` when set; else LiveKit's port on
    /// the host name the client used to reach bedrud (`request_host`, the request's `Host`
    /// header), so that a browser elsewhere on the LAN is sent to an address it can reach;
    /// else on `server.host`, else on 127.0.0.1.
    pub fn livekit_public_url(&self, request_host: Option<&str>) -> String {
        if let Some(h) = &self.livekit.host {
            return h.clone();
        }
        let host = request_host
            .and_then(host_name)
            .or_else(|| self.server.host.as_deref().map(|h| bracket_v6(h)))
            .unwrap_or_else(|| "127.0.0.1".to_string());
        let scheme = if self.server.tls_enabled() { "wss" } else { "ws" };
        format!("{scheme}://{host}:{}", self.livekit.port)
    }

    /// The URL people open to reach bedrud, without a trailing slash: `server.publicUrl`, else
    /// `server.host` with the API port (`https` when bedrud serves TLS, the port left out when
    /// it is the scheme's default), else `http://localhost:<port>`.
    pub fn public_url(&self) -> String {
        if let Some(u) = &self.server.public_url {
            return u.trim_end_matches('/').to_string();
        }
        let host = self.server.host.as_deref().map(bracket_v6).unwrap_or_else(|| "localhost".into());
        let (scheme, default_port) = if self.server.tls_enabled() { ("https", 443) } else { ("http", 80) };
        if self.server.port == default_port {
            format!("{scheme}://{host}")
        } else {
            format!("{scheme}://{host}:{}", self.server.port)
        }
    }

    /// URL bedrud itself uses for LiveKit's HTTP API and health checks.
    pub fn livekit_internal_url(&self) -> String {
        match &self.livekit.internal_host {
            Some(h) => h.trim_end_matches('/').to_string(),
            None => format!("http://127.0.0.1:{}", self.livekit.port),
        }
    }

    /// The effective config as YAML with secrets replaced by a marker.
    pub fn redacted_yaml(&self) -> String {
        let mut c = self.clone();
        if c.livekit.api_secret.is_some() {
            c.livekit.api_secret = Some(REDACTED.into());
        }
        if c.redis.password.is_some() {
            c.redis.password = Some(REDACTED.into());
        }
        if let Some(s3) = c.recording.s3.as_mut().filter(|s| s.secret.is_some()) {
            s3.secret = Some(REDACTED.into());
        }
        // Client secrets and the SMTP password are never serialised (they come from files).
        serde_norway::to_string(&c).unwrap_or_else(|e| format!("# cannot render config: {e}\n"))
    }
}

/// The host name of a `Host` header value (`name`, `name:port`, `[v6]:port`), if it is a
/// plausible DNS name or IP address; IPv6 stays in brackets.
fn host_name(header: &str) -> Option<String> {
    let h = header.trim();
    let name = if let Some(rest) = h.strip_prefix('[') {
        let v6 = &rest[..rest.find(']')?];
        v6.parse::<std::net::Ipv6Addr>().ok()?;
        return Some(format!("[{v6}]"));
    } else {
        h.rsplit_once(':').map_or(h, |(n, _)| n)
    };
    let ok = !name.is_empty()
        && name.len() <= 253
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
        && !name.starts_with(['.', '-']);
    ok.then(|| name.to_ascii_lowercase())
}

fn bracket_v6(host: &str) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]")
    } else {
        host.to_string()
    }
}

/// A configuration problem: what, where, and how to fix it.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigError {
    /// File or environment variable the problem came from.
    pub source: String,
    pub line: Option<usize>,
    /// Dotted key, e.g. `livekit.apiSecret`.
    pub key: Option<String>,
    pub message: String,
    pub hint: Option<String>,
}

impl ConfigError {
    fn new(source: impl Into<String>, key: Option<&str>, message: impl Into<String>) -> Self {
        Self {
            source: source.into(),
            line: None,
            key: key.map(str::to_string),
            message: message.into(),
            hint: None,
        }
    }
    fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
    fn line(mut self, line: Option<usize>) -> Self {
        self.line = line;
        self
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.source)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        write!(f, ": ")?;
        if let Some(key) = &self.key {
            write!(f, "{key}: ")?;
        }
        write!(f, "{}", self.message)?;
        if let Some(h) = &self.hint {
            write!(f, "\n  hint: {h}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

/// Which file to read, per `--config`, `BEDRUD_CONFIG`, then the default locations.
pub fn locate(explicit: Option<&Path>) -> Option<PathBuf> {
    if let Some(p) = explicit {
        return Some(p.to_path_buf());
    }
    if let Some(p) = std::env::var_os("BEDRUD_CONFIG").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(p));
    }
    DEFAULT_PATHS.iter().map(PathBuf::from).find(|p| p.exists())
}

/// The loaded configuration plus what was noticed on the way (printed as warnings).
#[derive(Debug, Clone)]
pub struct Loaded {
    pub config: Config,
    pub file: Option<PathBuf>,
    pub warnings: Vec<String>,
}

/// Loads from `file` (or defaults when `None`), applying the process environment.
pub fn load(file: Option<&Path>) -> Result<Loaded, ConfigError> {
    let env: BTreeMap<String, String> = std::env::vars().collect();
    load_with_env(file, &env)
}

/// Same as [`load`] with an explicit environment, for tests.
pub fn load_with_env(
    file: Option<&Path>,
    env: &BTreeMap<String, String>,
) -> Result<Loaded, ConfigError> {
    let mut warnings = Vec::new();
    let (mut config, text) = match file {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|e| {
                ConfigError::new(path.display().to_string(), None, format!("cannot read: {e}"))
                    .hint("pass an existing file with --config, or run without one for the defaults")
            })?;
            (parse(path, &text)?, Some(text))
        }
        None => (Config::default(), None),
    };
    apply_env(&mut config, env, &mut warnings)?;
    let source = file.map(|p| p.display().to_string()).unwrap_or_else(|| "defaults".into());
    resolve_secrets(&mut config, env, &source)?;
    validate(&config, &mut warnings).map_err(|mut e| {
        if e.source == SOURCE_FILE {
            e.source = source.clone();
            if let (Some(text), Some(key)) = (&text, &e.key) {
                e.line = find_key_line(text, key, is_toml(file));
            }
        }
        e
    })?;
    Ok(Loaded { config, file: file.map(Path::to_path_buf), warnings })
}

fn is_toml(file: Option<&Path>) -> bool {
    file.and_then(|f| f.extension()).is_some_and(|e| e == "toml")
}

/// Marker replaced by the real file name once validation errors are placed.
const SOURCE_FILE: &str = "\0file";

/// Parses the text of `path` by its extension.
pub fn parse(path: &Path, text: &str) -> Result<Config, ConfigError> {
    let source = path.display().to_string();
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
    match ext {
        "yaml" | "yml" => {
            if text.trim().is_empty() || text.lines().all(|l| l.trim().is_empty() || l.trim_start().starts_with('#')) {
                return Ok(Config::default());
            }
            // Syntax first, so a malformed file is reported as such and not as a type error.
            if let Err(e) = serde_norway::from_str::<serde_norway::Value>(text) {
                let line = e.location().map(|l| l.line());
                let msg = e.to_string();
                let msg = msg.split(" at line ").next().unwrap_or(&msg).to_string();
                return Err(ConfigError::new(&source, None, format!("malformed YAML: {msg}")).line(line));
            }
            let de = serde_norway::Deserializer::from_str(text);
            serde_path_to_error::deserialize(de).map_err(|e| {
                let line = e.inner().location().map(|l| l.line());
                serde_error(&source, line, e.path().to_string(), e.inner().to_string())
            })
        }
        "toml" => {
            let de = toml::Deserializer::parse(text).map_err(|e| {
                let line = e.span().map(|s| line_of(text, s.start));
                ConfigError::new(&source, None, format!("malformed TOML: {}", e.message().trim()))
                    .line(line)
            })?;
            serde_path_to_error::deserialize(de).map_err(|e| {
                let line = e.inner().span().map(|s| line_of(text, s.start));
                serde_error(&source, line, e.path().to_string(), e.inner().message().to_string())
            })
        }
        _ => Err(ConfigError::new(&source, None, format!("unknown config format {ext:?}"))
            .hint("name the file config.yaml, config.yml or config.toml")),
    }
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

/// Turns a serde error into a message naming the full key and, for unknown keys, the closest one.
fn serde_error(source: &str, line: Option<usize>, path: String, raw: String) -> ConfigError {
    // serde_norway appends " at line N column M"; the line is reported separately.
    let msg = match raw.find(" at line ") {
        Some(i) => raw[..i].to_string(),
        None => raw.clone(),
    };
    let path = if path == "." { String::new() } else { path };
    // serde_norway also prefixes the message with the path of the enclosing map.
    let msg = match msg.split_once(": ") {
        Some((p, rest)) if !p.contains(' ') && path.starts_with(p) => rest.to_string(),
        _ => msg,
    };
    if let Some(rest) = msg.strip_prefix("unknown field `") {
        let field = rest.split('`').next().unwrap_or("");
        let expected: Vec<&str> = rest.split('`').skip(2).step_by(2).collect();
        // serde_path_to_error's path ends with the unknown field itself.
        let parent = match path.rsplit_once('.') {
            Some((parent, last)) if last == field => parent.to_string(),
            _ if path == field => String::new(),
            _ => path.clone(),
        };
        let key = join_key(&parent, field);
        let path = parent;
        let mut err = ConfigError::new(source, Some(&key), "unknown key").line(line);
        if let Some(best) = closest(field, &expected) {
            err = err.hint(format!("did you mean `{}`?", join_key(&path, best)));
        } else if !expected.is_empty() {
            err = err.hint(format!("valid keys here: {}", expected.join(", ")));
        }
        return err;
    }
    if path.is_empty() {
        let kind = if source.ends_with(".toml") { "TOML" } else { "YAML" };
        return ConfigError::new(source, None, format!("malformed {kind}: {msg}")).line(line);
    }
    ConfigError::new(source, Some(&path), msg).line(line)
}

/// `path` is serde_path_to_error's path of the *containing* map for unknown fields.
fn join_key(path: &str, field: &str) -> String {
    if path.is_empty() {
        field.to_string()
    } else {
        format!("{path}.{field}")
    }
}

/// Closest valid name by edit distance, if it is plausibly a typo.
pub fn closest<'a>(given: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let g = given.to_ascii_lowercase();
    candidates
        .iter()
        .map(|c| (strsim::damerau_levenshtein(&g, &c.to_ascii_lowercase()), *c))
        .filter(|(d, c)| *d <= (c.len() / 2).max(2))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// Best-effort line of a dotted key in the file text, for validation errors.
fn find_key_line(text: &str, key: &str, toml: bool) -> Option<usize> {
    let parts: Vec<&str> = key.split('.').collect();
    let (last, sections) = parts.split_last()?;
    let mut depth = 0usize;
    for (i, line) in text.lines().enumerate() {
        let t = line.trim_start();
        if t.starts_with('#') || t.is_empty() {
            continue;
        }
        if toml {
            if let Some(h) = t.strip_prefix('[') {
                let h = h.trim_end().trim_end_matches(']');
                depth = if h == sections.join(".") { sections.len() } else { 0 };
                continue;
            }
            let k = t.split('=').next().unwrap_or("").trim();
            if depth == sections.len() && k == *last {
                return Some(i + 1);
            }
            if k == key {
                return Some(i + 1);
            }
        } else {
            let indent = line.len() - t.len();
            let k = t.split(':').next().unwrap_or("").trim().trim_matches('"');
            if indent == 0 {
                depth = 0;
            }
            if depth < sections.len() && k == sections[depth] {
                depth += 1;
                continue;
            }
            if depth == sections.len() && k == *last {
                return Some(i + 1);
            }
        }
    }
    None
}

/// Every leaf key of the config with its environment variable, e.g.
/// `livekit.apiKey` → `BEDRUD_LIVEKIT_API_KEY`.
pub fn env_keys() -> Vec<(String, String)> {
    let mut out = Vec::new();
    let v = serde_json::to_value(Config::default()).unwrap_or_default();
    collect_leaves(&v, String::new(), &mut out);
    out.into_iter().map(|k| (env_name(&k), k)).map(|(e, k)| (k, e)).collect()
}

fn collect_leaves(v: &serde_json::Value, prefix: String, out: &mut Vec<String>) {
    match v {
        serde_json::Value::Object(m) => {
            for (k, v) in m {
                let p = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
                // `server.tls` is null by default but has two leaves below it.
                if p == "server.tls" {
                    out.push("server.tls.certFile".into());
                    out.push("server.tls.keyFile".into());
                    continue;
                }
                // So is `server.acme`.
                if p == "server.acme" {
                    if let Ok(serde_json::Value::Object(m)) = serde_json::to_value(AcmeConfig::default()) {
                        out.extend(m.keys().map(|k| format!("server.acme.{k}")));
                    }
                    continue;
                }
                // A list of providers has no sensible spelling as one variable.
                if p == "auth.oidc" {
                    continue;
                }
                collect_leaves(v, p, out);
            }
        }
        // Lists are set from the environment as comma-separated values.
        _ => out.push(prefix),
    }
}

/// `livekit.skipTLSVerify` → `BEDRUD_LIVEKIT_SKIP_TLS_VERIFY`.
pub fn env_name(key: &str) -> String {
    let mut s = String::from("BEDRUD");
    for part in key.split('.') {
        s.push('_');
        let chars: Vec<char> = part.chars().collect();
        for (i, c) in chars.iter().enumerate() {
            let prev_lower = i > 0 && (chars[i - 1].is_ascii_lowercase() || chars[i - 1].is_ascii_digit());
            let next_lower = chars.get(i + 1).is_some_and(|n| n.is_ascii_lowercase());
            let prev_upper = i > 0 && chars[i - 1].is_ascii_uppercase();
            if c.is_ascii_uppercase() && (prev_lower || (prev_upper && next_lower)) {
                s.push('_');
            }
            s.push(c.to_ascii_uppercase());
        }
    }
    s
}

/// Environment variables that are not config keys but belong to bedrud.
const ENV_NON_KEYS: [&str; 8] = [
    "BEDRUD_CONFIG",
    "BEDRUD_LOG",
    // The user the service runs as, for `bedrud doctor` run by root (default `bedrud`).
    "BEDRUD_SERVICE_USER",
    "BEDRUD_TEST_",
    // The project's scripts' caches and the test harness's.
    "BEDRUD_LIVEKIT_CACHE",
    "BEDRUD_PEBBLE_CACHE",
    "BEDRUD_APPLIANCE_CACHE",
    "BEDRUD_EGRESS_CACHE",
];

fn apply_env(
    config: &mut Config,
    env: &BTreeMap<String, String>,
    warnings: &mut Vec<String>,
) -> Result<(), ConfigError> {
    let keys = env_keys();
    let mut tree = serde_json::to_value(&*config).unwrap_or_default();
    let mut changed = false;
    for (name, value) in env.iter().filter(|(n, _)| n.starts_with("BEDRUD_")) {
        if ENV_NON_KEYS.iter().any(|k| name == k || (k.ends_with('_') && name.starts_with(k))) {
            continue;
        }
        let Some((key, _)) = keys.iter().find(|(_, e)| e == name) else {
            let names: Vec<&str> = keys.iter().map(|(_, e)| e.as_str()).collect();
            let mut w = format!("environment variable {name} is not a bedrud setting; ignored");
            if let Some(best) = closest(name, &names) {
                w.push_str(&format!(" (did you mean {best}?)"));
            }
            warnings.push(w);
            continue;
        };
        set_path(&mut tree, key, value);
        changed = true;
        // Check each variable on its own so the error names it.
        let trial: Result<Config, _> = serde_json::from_value(tree.clone());
        if let Err(e) = trial {
            // A value such as "12345" for a string key: retry with it as a plain string.
            set_path_raw(&mut tree, key, serde_json::Value::String(value.clone()));
            if serde_json::from_value::<Config>(tree.clone()).is_err() {
                return Err(ConfigError::new(name.clone(), Some(key), format!("invalid value {value:?}: {e}"))
                    .hint(format!("set {name} to a valid value for {key}, or unset it")));
            }
        }
    }
    if let Some(p) = env.get("LIVEKIT_CONFIG_PATH").filter(|p| !p.is_empty()) {
        set_path_raw(&mut tree, "livekit.configPath", serde_json::Value::String(p.clone()));
        changed = true;
    }
    if changed {
        *config = serde_json::from_value(tree)
            .map_err(|e| ConfigError::new("environment", None, e.to_string()))?;
    }
    Ok(())
}

fn set_path(tree: &mut serde_json::Value, key: &str, raw: &str) {
    if key == "livekit.interfaces" || key == "server.acme.domains" {
        let list = raw.split(',').map(str::trim).filter(|s| !s.is_empty()).map(serde_json::Value::from);
        return set_path_raw(tree, key, serde_json::Value::Array(list.collect()));
    }
    let v = match raw.trim() {
        "true" | "yes" | "on" => serde_json::Value::Bool(true),
        "false" | "no" | "off" => serde_json::Value::Bool(false),
        t => match t.parse::<u64>() {
            Ok(n) => serde_json::Value::from(n),
            Err(_) => serde_json::Value::String(raw.to_string()),
        },
    };
    set_path_raw(tree, key, v);
}

fn set_path_raw(tree: &mut serde_json::Value, key: &str, v: serde_json::Value) {
    let mut cur = tree;
    let parts: Vec<&str> = key.split('.').collect();
    for (i, p) in parts.iter().enumerate() {
        if !cur.is_object() {
            *cur = serde_json::Value::Object(Default::default());
        }
        let Some(map) = cur.as_object_mut() else { return };
        if i + 1 == parts.len() {
            map.insert((*p).to_string(), v);
            return;
        }
        cur = map.entry((*p).to_string()).or_insert(serde_json::Value::Null);
    }
}

/// Reads a secret file, refusing one that other users can read.
pub fn read_secret_file(path: &Path, what: &str) -> Result<String, ConfigError> {
    let src = path.display().to_string();
    let meta = std::fs::metadata(path).map_err(|e| {
        ConfigError::new(&src, Some(what), format!("cannot read secret file: {e}"))
    })?;
    let mode = meta.permissions().mode();
    if mode & 0o007 != 0 {
        return Err(ConfigError::new(
            &src,
            Some(what),
            format!("secret file is accessible by other users (mode {:o})", mode & 0o777),
        )
        .hint(format!("chmod 600 {src} (or 640 with a group only the service is in)")));
    }
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigError::new(&src, Some(what), format!("cannot read secret file: {e}")))?;
    Ok(text.trim_end_matches(['\n', '\r']).to_string())
}

fn resolve_secrets(
    config: &mut Config,
    env: &BTreeMap<String, String>,
    source: &str,
) -> Result<(), ConfigError> {
    let lk = &mut config.livekit;
    if lk.api_secret.is_some() && lk.api_secret_file.is_some() {
        return Err(ConfigError::new(source, Some("livekit.apiSecretFile"), "both apiSecret and apiSecretFile are set")
            .hint("keep one of them"));
    }
    if let Some(f) = lk.api_secret_file.clone() {
        lk.api_secret = Some(read_secret_file(&f, "livekit.apiSecretFile")?);
    } else if lk.api_secret.is_none() {
        if let Some(dir) = env.get("CREDENTIALS_DIRECTORY") {
            let p = Path::new(dir).join(CRED_LIVEKIT_SECRET);
            // An empty credential (e.g. a `SetCredential=` fallback) means "not given".
            if p.exists() {
                let s = read_secret_file(&p, "livekit.apiSecret")?;
                if !s.trim().is_empty() {
                    lk.api_secret = Some(s);
                }
            }
        }
    }
    if let Some(dir) = env.get("CREDENTIALS_DIRECTORY") {
        let p = Path::new(dir).join(CRED_TLS_KEY);
        let empty = std::fs::metadata(&p).map(|m| m.len() == 0).unwrap_or(true);
        if p.exists() && !empty {
            let tls = config.server.tls.get_or_insert_with(TlsConfig::default);
            if tls.key_file.is_none() {
                tls.key_file = Some(p);
            }
        }
    }
    if let Some(s3) = config.recording.s3.as_mut() {
        if let Some(f) = s3.secret_file.clone() {
            if s3.secret.is_some() {
                return Err(ConfigError::new(source, Some("recording.s3.secretFile"), "both secret and secretFile are set").hint("keep one of them"));
            }
            s3.secret = Some(read_secret_file(&f, "recording.s3.secretFile")?);
        }
    }
    if let Some(key) = config.server.tls.as_ref().and_then(|t| t.key_file.clone()) {
        // Same rule as the API secret: a private key other users can read is refused.
        read_secret_file(&key, "server.tls.keyFile")?;
    }
    let credential = |name: &str, what: &str| -> Result<Option<String>, ConfigError> {
        let Some(dir) = env.get("CREDENTIALS_DIRECTORY") else { return Ok(None) };
        let p = Path::new(dir).join(name);
        if !p.exists() {
            return Ok(None);
        }
        let s = read_secret_file(&p, what)?;
        Ok(Some(s).filter(|s| !s.trim().is_empty()))
    };
    for (i, p) in config.auth.oidc.iter_mut().enumerate() {
        let key = format!("auth.oidc[{i}].clientSecretFile");
        p.client_secret = match &p.client_secret_file {
            Some(f) => Some(read_secret_file(f, &key)?),
            None => credential(&format!("{CRED_OIDC_PREFIX}{}", p.name), &key)?,
        };
    }
    let smtp = &mut config.smtp;
    smtp.password = match &smtp.password_file {
        Some(f) => Some(read_secret_file(f, "smtp.passwordFile")?),
        None => credential(CRED_SMTP_PASSWORD, "smtp.passwordFile")?,
    };
    Ok(())
}

/// Whether an `http://` URL is acceptable: only towards this machine.
fn loopback_url(u: &url::Url) -> bool {
    match u.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// `https://` anywhere, `http://` only on loopback (a provider run on this machine).
pub fn secure_or_loopback(u: &url::Url) -> bool {
    u.scheme() == "https" || (u.scheme() == "http" && loopback_url(u))
}

fn validate_signin(c: &Config, warnings: &mut Vec<String>) -> Result<(), ConfigError> {
    if let Some(u) = &c.server.public_url {
        let parsed = url::Url::parse(u).map_err(|e| err("server.publicUrl", format!("invalid value {u:?}: {e}")))?;
        let ok = matches!(parsed.scheme(), "http" | "https")
            && parsed.host().is_some()
            && parsed.path() == "/"
            && parsed.query().is_none()
            && parsed.fragment().is_none()
            && parsed.username().is_empty();
        if !ok {
            return Err(err("server.publicUrl", format!("invalid value {u:?}: must be http(s)://host[:port] with no path"))
                .hint("the address people open in their browser, e.g. https://meet.example.org"));
        }
    }
    if c.auth.passkeys {
        let public = c.public_url();
        let host = url::Url::parse(&public).ok().and_then(|u| u.host_str().map(str::to_string)).unwrap_or_default();
        if host.parse::<std::net::IpAddr>().is_ok() || host.starts_with('[') {
            warnings.push(format!(
                "passkeys are off: their relying party must be a host name, and {public} is an IP address; set server.publicUrl (or server.host) to the name people use"
            ));
        }
    }
    let mut names = std::collections::BTreeSet::new();
    for (i, p) in c.auth.oidc.iter().enumerate() {
        let at = |field: &str| format!("auth.oidc[{i}].{field}");
        let name_ok = (1..=32).contains(&p.name.len()) && p.name.chars().all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '-');
        if !name_ok {
            return Err(err(&at("name"), format!("invalid value {:?}: 1-32 of a-z, 0-9 and -", p.name)));
        }
        if !names.insert(p.name.as_str()) {
            return Err(err(&at("name"), format!("provider {:?} is configured twice", p.name)).hint("give each provider its own name"));
        }
        let issuer = url::Url::parse(&p.issuer).map_err(|e| err(&at("issuer"), format!("invalid value {:?}: {e}", p.issuer)))?;
        if !secure_or_loopback(&issuer) || issuer.query().is_some() || issuer.fragment().is_some() {
            return Err(err(&at("issuer"), format!("invalid value {:?}: must be an https:// URL (http:// only on loopback)", p.issuer))
                .hint("the provider's issuer, e.g. https://accounts.example.org/realms/staff"));
        }
        if p.client_id.trim().is_empty() {
            return Err(err(&at("clientId"), "must not be empty"));
        }
        if !p.scopes.iter().any(|s| s == "openid") {
            return Err(err(&at("scopes"), "must include \"openid\"").hint("e.g. [openid, email, profile]"));
        }
        if p.scopes.iter().any(|s| s.is_empty() || s.contains(char::is_whitespace)) {
            return Err(err(&at("scopes"), "a scope is empty or contains a space"));
        }
        if p.allowed_domains.iter().any(|d| d.is_empty() || d.contains('@') || d.contains(char::is_whitespace)) {
            return Err(err(&at("allowedDomains"), "list domain names, e.g. [example.org]"));
        }
        if p.groups_claim.is_empty() {
            return Err(err(&at("groupsClaim"), "must not be empty"));
        }
    }
    let m = &c.smtp;
    if !matches!(m.security.as_str(), "starttls" | "tls" | "none") {
        return Err(err("smtp.security", format!("invalid value {:?}", m.security)).hint("one of starttls, tls, none"));
    }
    if m.enabled() {
        let host = m.host.as_deref().unwrap_or("");
        if host.is_empty() || host.contains(char::is_whitespace) || host.contains('/') {
            return Err(err("smtp.host", format!("invalid value {host:?}: a host name or IP address")));
        }
        let from = m.from.as_deref().ok_or_else(|| err("smtp.from", "required when smtp.host is set").hint("e.g. from: \"bedrud <meet@example.org>\""))?;
        if from.parse::<lettre::message::Mailbox>().is_err() {
            return Err(err("smtp.from", format!("invalid value {from:?}: not an e-mail address")).hint("e.g. \"bedrud <meet@example.org>\" or meet@example.org"));
        }
        if m.password.is_some() && m.username.is_none() {
            return Err(err("smtp.username", "a password is given but no username").hint("set smtp.username"));
        }
        if m.username.is_some() && m.password.is_none() {
            return Err(err("smtp.passwordFile", "smtp.username is set but no password was found")
                .hint(format!("set smtp.passwordFile, or pass the systemd credential {CRED_SMTP_PASSWORD}")));
        }
        if let Some(ca) = &m.ca_file {
            if !ca.exists() {
                return Err(err("smtp.caFile", format!("{} does not exist", ca.display())));
            }
        }
        if m.security == "none" && !matches!(host, "localhost" | "127.0.0.1" | "::1") && m.username.is_some() {
            warnings.push("smtp.security is none: the SMTP password crosses the network unencrypted".into());
        }
        if m.timeout < Duration::from_secs(1) {
            return Err(err("smtp.timeout", "must be at least 1s"));
        }
    } else if m.from.is_some() || m.username.is_some() {
        warnings.push("smtp.host is not set: no mail is sent (password reset and e-mail verification are off)".into());
    }
    Ok(())
}

fn err(key: &str, msg: impl Into<String>) -> ConfigError {
    ConfigError::new(SOURCE_FILE, Some(key), msg)
}

fn validate(c: &Config, warnings: &mut Vec<String>) -> Result<(), ConfigError> {
    for (key, port) in [
        ("server.port", c.server.port),
        ("livekit.port", c.livekit.port),
        ("livekit.tcpPort", c.livekit.tcp_port),
        ("livekit.udpPort", c.livekit.udp_port),
        ("livekit.turnUdpPort", c.livekit.turn_udp_port),
        ("livekit.turnTlsPort", c.livekit.turn_tls_port),
    ] {
        if port == 0 {
            return Err(err(key, "invalid value 0: a port must be 1-65535"));
        }
    }
    if c.server.bind.parse::<std::net::IpAddr>().is_err() {
        return Err(err("server.bind", format!("invalid value {:?}: not an IP address", c.server.bind))
            .hint("use 0.0.0.0 (all IPv4), :: (all), or 127.0.0.1"));
    }
    if let Some(tls) = &c.server.tls {
        if tls.cert_file.is_some() != tls.key_file.is_some() {
            return Err(err("server.tls", "certFile and keyFile must be set together"));
        }
        for (k, p) in [("server.tls.certFile", &tls.cert_file), ("server.tls.keyFile", &tls.key_file)] {
            if let Some(p) = p {
                if !p.exists() {
                    return Err(err(k, format!("{} does not exist", p.display())));
                }
            }
        }
    }
    if let Some(a) = &c.server.acme {
        validate_acme(c, a, warnings)?;
    }
    let lk = &c.livekit;
    if let (Some(x), Some(e)) = (lk.external, lk.embedded) {
        if x == e {
            return Err(err("livekit.embedded", format!("contradicts livekit.external ({x} and embedded {e})"))
                .hint("remove livekit.embedded; livekit.external is the switch"));
        }
    }
    if let Some(h) = &lk.host {
        if !(h.starts_with("ws://") || h.starts_with("wss://")) {
            return Err(err("livekit.host", format!("invalid value {h:?}: must start with ws:// or wss://"))
                .hint("this is the URL browsers connect to, e.g. wss://meet.example.com:7880"));
        }
    }
    if let Some(h) = &lk.internal_host {
        if !(h.starts_with("http://") || h.starts_with("https://")) {
            return Err(err("livekit.internalHost", format!("invalid value {h:?}: must start with http:// or https://"))
                .hint("this is the URL bedrud uses for LiveKit's API, e.g. http://10.0.0.5:7880"));
        }
    }
    if lk.api_key.is_some() != lk.api_secret.is_some() {
        let missing = if lk.api_key.is_some() { "livekit.apiSecret" } else { "livekit.apiKey" };
        return Err(err(missing, "livekit.apiKey and livekit.apiSecret must be set together")
            .hint(format!("set {missing} (or remove both to let embedded mode generate them)")));
    }
    if let Some(k) = &lk.api_key {
        if k.is_empty() || k.contains(char::is_whitespace) || k.contains(':') {
            return Err(err("livekit.apiKey", "must be non-empty, without spaces or ':'"));
        }
    }
    if let Some(s) = &lk.api_secret {
        if s.chars().count() < MIN_SECRET_LEN {
            return Err(err("livekit.apiSecret", format!("too short ({} characters): at least {MIN_SECRET_LEN} are required", s.chars().count()))
                .hint("generate one with: head -c 36 /dev/urandom | base64"));
        }
    }
    match (lk.udp_port_range_start, lk.udp_port_range_end) {
        (Some(a), Some(b)) if a == 0 || b < a => {
            return Err(err("livekit.udpPortRangeEnd", format!("invalid range {a}-{b}")));
        }
        (Some(_), None) | (None, Some(_)) => {
            return Err(err("livekit.udpPortRangeStart", "udpPortRangeStart and udpPortRangeEnd must be set together"));
        }
        _ => {}
    }
    if lk.is_external() {
        for (key, v) in [
            ("livekit.host", lk.host.is_some()),
            ("livekit.internalHost", lk.internal_host.is_some()),
            ("livekit.apiKey", lk.api_key.is_some()),
        ] {
            if !v {
                return Err(err(key, "required in external mode (livekit.external: true)")
                    .hint("set it to your LiveKit server's value"));
            }
        }
        if lk.config_path.is_some() {
            warnings.push("livekit.configPath is ignored in external mode".into());
        }
        if let (Some(h), Some(i)) = (&lk.host, &lk.internal_host) {
            let wss = h.starts_with("wss://");
            let https = i.starts_with("https://");
            if wss != https {
                warnings.push(format!(
                    "livekit.host is {} but livekit.internalHost is {}: LiveKit v1.12+ has no top-level tls and serves ws:// and http:// \
                     (TLS only through a proxy); v1.11 and earlier with tls: serve wss:// and https://. Check that both match how your LiveKit is reached",
                    if wss { "wss://" } else { "ws://" },
                    if https { "https://" } else { "http://" }
                ));
            }
        }
        if lk.skip_tls_verify {
            warnings.push("livekit.skipTLSVerify is on: the certificate of livekit.internalHost is not verified".into());
        }
    } else if lk.skip_tls_verify {
        warnings.push("livekit.skipTLSVerify only applies in external mode; ignored".into());
    }
    if !matches!(c.logging.format.as_str(), "auto" | "text" | "json" | "journald") {
        return Err(err("logging.format", format!("invalid value {:?}", c.logging.format))
            .hint("one of auto, text, json, journald"));
    }
    if tracing_subscriber::EnvFilter::try_new(&c.logging.level).is_err() {
        return Err(err("logging.level", format!("invalid value {:?}", c.logging.level))
            .hint("one of trace, debug, info, warn, error"));
    }
    if c.auth.session_ttl < Duration::from_secs(60) {
        return Err(err("auth.sessionTtl", "must be at least 1m"));
    }
    if lk.token_ttl < Duration::from_secs(30) {
        return Err(err("livekit.tokenTtl", "must be at least 30s"));
    }
    if c.auth.max_failed_logins == 0 {
        return Err(err("auth.maxFailedLogins", "must be at least 1"));
    }
    if c.auth.max_concurrent_hashes == Some(0) {
        return Err(err("auth.maxConcurrentHashes", "must be at least 1").hint("remove it to use the number of cores"));
    }
    for p in &c.server.trusted_proxies {
        parse_net(p).map_err(|m| err("server.trustedProxies", m).hint("list addresses or CIDRs, e.g. [127.0.0.1, 10.0.0.0/8]"))?;
    }
    if let Some(a) = &c.server.metrics_address {
        match a.parse::<std::net::SocketAddr>() {
            Ok(sa) if !sa.ip().is_loopback() => warnings.push(format!(
                "server.metricsAddress {a} is not a loopback address: anyone who reaches it can read the metrics"
            )),
            Ok(_) => {}
            Err(_) => {
                return Err(err("server.metricsAddress", format!("invalid value {a:?}: expected IP:port"))
                    .hint("e.g. 127.0.0.1:9090"))
            }
        }
    }
    if c.server.max_connections == 0 || c.server.max_connections_per_address == 0 {
        return Err(err("server.maxConnections", "server.maxConnections and server.maxConnectionsPerAddress must be at least 1"));
    }
    for (k, d) in [("server.headerTimeout", c.server.header_timeout), ("server.requestTimeout", c.server.request_timeout)] {
        if d < Duration::from_millis(100) {
            return Err(err(k, "must be at least 100ms"));
        }
    }
    if c.database.cache_size < 1024 * 1024 {
        return Err(err("database.cacheSize", "must be at least 1048576 (1 MiB)"));
    }
    if c.database.history_retention < Duration::from_secs(3600) {
        return Err(err("database.historyRetention", "must be at least 1h"));
    }
    if lk.health_failures == 0 {
        return Err(err("livekit.healthFailures", "must be at least 1"));
    }
    crate::recording::config::validate(&c.recording, &c.redis, lk.is_external()).map_err(|p| {
        let e = err(p.key, p.message);
        match p.hint {
            Some(h) => e.hint(h),
            None => e,
        }
    })?;
    validate_signin(c, warnings)
}

fn validate_acme(c: &Config, a: &AcmeConfig, warnings: &mut Vec<String>) -> Result<(), ConfigError> {
    if c.server.tls.as_ref().is_some_and(|t| t.cert_file.is_some()) {
        return Err(err("server.acme", "server.acme and server.tls.certFile are both set")
            .hint("keep server.acme to have certificates obtained automatically, or server.tls for your own files"));
    }
    if !a.directory_url.starts_with("https://") {
        return Err(err("server.acme.directoryUrl", format!("invalid value {:?}: must start with https://", a.directory_url))
            .hint(format!("the ACME directory of your CA, e.g. {LETS_ENCRYPT}")));
    }
    let domains = c.server.acme_domains();
    if domains.is_empty() {
        return Err(err("server.acme.domains", "no name to ask a certificate for")
            .hint("set server.host to this service's DNS name (or list the names in server.acme.domains)"));
    }
    for d in &domains {
        if !crate::livekit::configgen::is_turn_domain(d) {
            return Err(err("server.acme.domains", format!("{d:?} is not a DNS name a CA can issue for (it needs a dot and no IP)"))
                .hint("use the public DNS name that points at this server, e.g. meet.example.org"));
        }
    }
    if !matches!(a.challenge.as_str(), "tls-alpn-01" | "http-01") {
        return Err(err("server.acme.challenge", format!("invalid value {:?}", a.challenge))
            .hint("tls-alpn-01 (answered on server.port, which must be reachable as 443) or http-01 (answered on server.acme.httpPort, reachable as 80)"));
    }
    if a.http_port == 0 {
        return Err(err("server.acme.httpPort", "invalid value 0: a port must be 1-65535"));
    }
    if a.challenge == "http-01" && a.http_port == c.server.port {
        return Err(err("server.acme.httpPort", "must differ from server.port (which serves HTTPS)"));
    }
    if let Some(r) = &a.ca_roots {
        if !r.exists() {
            return Err(err("server.acme.caRoots", format!("{} does not exist", r.display())));
        }
    }
    if let Some(e) = &a.email {
        if !e.contains('@') || e.contains(char::is_whitespace) {
            return Err(err("server.acme.email", format!("invalid value {e:?}: not an e-mail address")));
        }
    }
    if let Some(h) = c.server.host.as_deref() {
        if !domains.iter().any(|d| d.eq_ignore_ascii_case(h.trim_end_matches('.'))) {
            warnings.push(format!(
                "server.host {h:?} is not among server.acme.domains: browsers and TURN/TLS use server.host, which the certificate will not cover"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acme_settings() {
        let l = load_text("c.yaml", "server:\n  host: meet.example.org\n  acme:\n    email: ops@example.org\n").unwrap();
        let a = l.config.server.acme.clone().unwrap();
        assert_eq!((a.directory_url.as_str(), a.challenge.as_str(), a.http_port), (LETS_ENCRYPT, "tls-alpn-01", 80));
        assert_eq!(l.config.server.acme_domains(), vec!["meet.example.org".to_string()]);
        assert!(l.config.server.tls_enabled());
        let e = load_text("c.yaml", "server:\n  acme:\n    email: ops@example.org\n").unwrap_err();
        assert_eq!(e.key.as_deref(), Some("server.acme.domains"), "{e}");
        let e = load_text("c.yaml", "server:\n  host: 10.0.0.1\n  acme: {}\n").unwrap_err();
        assert!(e.message.contains("not a DNS name"), "{e}");
        let e = load_text("c.yaml", "server:\n  host: a.example\n  acme:\n    challenge: dns-01\n").unwrap_err();
        assert_eq!((e.key.as_deref(), e.line), (Some("server.acme.challenge"), Some(4)), "{e}");
        let e = load_text("c.yaml", "server:\n  host: a.example\n  acme:\n    directoryUrl: http://x/dir\n").unwrap_err();
        assert_eq!(e.key.as_deref(), Some("server.acme.directoryUrl"), "{e}");
        let mut env = BTreeMap::new();
        env.insert("BEDRUD_SERVER_ACME_DOMAINS".to_string(), "a.example,b.example".to_string());
        let l = load_with_env(None, &env).unwrap();
        assert_eq!(l.config.server.acme_domains(), vec!["a.example".to_string(), "b.example".to_string()]);
    }

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    fn load_text(name: &str, text: &str) -> Result<Loaded, ConfigError> {
        let d = tempfile::tempdir().unwrap();
        let p = write(d.path(), name, text);
        load_with_env(Some(&p), &BTreeMap::new())
    }

    #[test]
    fn livekit_url_follows_the_request_host() {
        let mut c = Config::default();
        assert_eq!(c.livekit_public_url(None), "ws://127.0.0.1:7880");
        assert_eq!(c.livekit_public_url(Some("192.168.1.20:8090")), "ws://192.168.1.20:7880");
        assert_eq!(c.livekit_public_url(Some("Meet.LAN")), "ws://meet.lan:7880");
        assert_eq!(c.livekit_public_url(Some("[fe80::1]:8090")), "ws://[fe80::1]:7880");
        // Not a host name: the configured default.
        assert_eq!(c.livekit_public_url(Some("evil/x:80")), "ws://127.0.0.1:7880");
        assert_eq!(c.livekit_public_url(Some("[zz]:1")), "ws://127.0.0.1:7880");
        c.server.host = Some("::1".into());
        assert_eq!(c.livekit_public_url(None), "ws://[::1]:7880");
        c.livekit.host = Some("wss://lk.example.org".into());
        assert_eq!(c.livekit_public_url(Some("10.0.0.2:8090")), "wss://lk.example.org");
    }

    #[test]
    fn env_names_follow_camel_case() {
        assert_eq!(env_name("server.port"), "BEDRUD_SERVER_PORT");
        assert_eq!(env_name("livekit.apiKey"), "BEDRUD_LIVEKIT_API_KEY");
        assert_eq!(env_name("livekit.skipTLSVerify"), "BEDRUD_LIVEKIT_SKIP_TLS_VERIFY");
        assert_eq!(env_name("livekit.nodeIP"), "BEDRUD_LIVEKIT_NODE_IP");
        assert_eq!(env_name("livekit.internalHost"), "BEDRUD_LIVEKIT_INTERNAL_HOST");
        assert_eq!(env_name("server.tls.certFile"), "BEDRUD_SERVER_TLS_CERT_FILE");
        assert_eq!(env_name("livekit.useExternalIP"), "BEDRUD_LIVEKIT_USE_EXTERNAL_IP");
        assert!(env_keys().iter().any(|(k, e)| k == "livekit.binary" && e == "BEDRUD_LIVEKIT_BINARY"));
    }

    #[test]
    fn defaults_without_file() {
        let l = load_with_env(None, &BTreeMap::new()).unwrap();
        assert_eq!(l.config.server.port, 8090);
        assert!(!l.config.livekit.is_external());
        assert!(!l.config.auth.registration);
    }

    #[test]
    fn unknown_key_names_line_and_closest() {
        let e = load_text("c.yaml", "server:\n  port: 9000\nlivekit:\n  apiSecrte: x\n").unwrap_err();
        assert_eq!(e.key.as_deref(), Some("livekit.apiSecrte"), "{e:?}");
        assert_eq!(e.line, Some(4));
        assert!(e.hint.as_deref().unwrap_or("").contains("livekit.apiSecret"), "{e:?}");
        let e = load_text("c.toml", "[server]\nprot = 1\n").unwrap_err();
        assert_eq!(e.key.as_deref(), Some("server.prot"));
        assert_eq!(e.line, Some(2));
        assert!(e.to_string().contains("server.port"), "{e}");
    }

    #[test]
    fn wrong_type_and_malformed() {
        let e = load_text("c.yaml", "server:\n  port: lots\n").unwrap_err();
        assert_eq!(e.key.as_deref(), Some("server.port"));
        assert_eq!(e.line, Some(2));
        let e = load_text("c.yaml", "server:\n\tport: 1\n").unwrap_err();
        assert!(e.message.contains("malformed YAML"), "{e}");
        let e = load_text("c.toml", "[server\n").unwrap_err();
        assert!(e.message.contains("malformed TOML"), "{e}");
        assert_eq!(e.line, Some(1));
    }

    #[test]
    fn invalid_values() {
        let e = load_text("c.yaml", "# x\nserver:\n  port: 0\n").unwrap_err();
        assert_eq!((e.key.as_deref(), e.line), (Some("server.port"), Some(3)));
        let e = load_text("c.yaml", "livekit:\n  host: http://x:7880\n").unwrap_err();
        assert_eq!(e.key.as_deref(), Some("livekit.host"));
        let e = load_text("c.yaml", "livekit:\n  apiKey: k\n  apiSecret: short\n").unwrap_err();
        assert_eq!((e.key.as_deref(), e.line), (Some("livekit.apiSecret"), Some(3)));
        let e = load_text("c.yaml", "livekit:\n  external: true\n  embedded: true\n").unwrap_err();
        assert_eq!(e.key.as_deref(), Some("livekit.embedded"));
        let l = load_text("c.yaml", "livekit:\n  embedded: false\n  host: ws://a:1\n  internalHost: http://a:1\n  apiKey: k\n  apiSecret: 0123456789abcdef0123456789abcdef\n").unwrap();
        assert!(l.config.livekit.is_external());
    }

    #[test]
    fn env_overrides_and_errors() {
        let mut env = BTreeMap::new();
        env.insert("BEDRUD_SERVER_PORT".to_string(), "9123".to_string());
        env.insert("BEDRUD_AUTH_GUEST_JOIN".to_string(), "true".to_string());
        env.insert("BEDRUD_LIVEKIT_API_KEY".to_string(), "12345".to_string());
        env.insert("BEDRUD_LIVEKIT_API_SECRET".to_string(), "0123456789abcdef0123456789abcdef".to_string());
        env.insert("LIVEKIT_CONFIG_PATH".to_string(), "/x/lk.yaml".to_string());
        let l = load_with_env(None, &env).unwrap();
        assert_eq!(l.config.server.port, 9123);
        assert!(l.config.auth.guest_join);
        assert_eq!(l.config.livekit.api_key.as_deref(), Some("12345"));
        assert_eq!(l.config.livekit.config_path, Some(PathBuf::from("/x/lk.yaml")));
        let mut env = BTreeMap::new();
        env.insert("BEDRUD_SERVER_PORT".to_string(), "x".to_string());
        let e = load_with_env(None, &env).unwrap_err();
        assert_eq!(e.source, "BEDRUD_SERVER_PORT");
    }

    #[test]
    fn public_url_defaults_and_checks() {
        let mut c = Config::default();
        assert_eq!(c.public_url(), "http://localhost:8090");
        c.server.host = Some("meet.example.org".into());
        c.server.port = 80;
        assert_eq!(c.public_url(), "http://meet.example.org");
        c.server.public_url = Some("https://meet.example.org/".into());
        assert_eq!(c.public_url(), "https://meet.example.org");
        for bad in ["meet.example.org", "ftp://x", "https://x/sub", "https://x/?a=1"] {
            let e = load_text("c.yaml", &format!("server:\n  publicUrl: {bad}\n")).unwrap_err();
            assert_eq!((e.key.as_deref(), e.line), (Some("server.publicUrl"), Some(2)), "{bad}: {e}");
        }
        let l = load_text("c.yaml", "server:\n  publicUrl: http://10.0.0.5:8090\n").unwrap();
        assert!(l.warnings.iter().any(|w| w.contains("passkeys are off")), "{:?}", l.warnings);
    }

    #[test]
    fn oidc_providers() {
        let d = tempfile::tempdir().unwrap();
        let secret = write(d.path(), "corp-secret", "s3cret\n");
        std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
        let text = format!(
            "auth:\n  oidc:\n    - name: corp\n      issuer: https://id.example.org/realms/staff\n      clientId: bedrud\n      clientSecretFile: {}\n      adminGroup: admins\n    - name: local\n      issuer: http://127.0.0.1:9000\n      clientId: bedrud-local\n",
            secret.display()
        );
        let cfg = write(d.path(), "c.yaml", &text);
        let l = load_with_env(Some(&cfg), &BTreeMap::new()).unwrap();
        let p = &l.config.auth.oidc;
        assert_eq!((p[0].client_secret.as_deref(), p[1].client_secret.as_deref()), (Some("s3cret"), None));
        assert_eq!(p[0].scopes, vec!["openid", "email", "profile"]);
        assert_eq!(p[0].groups_claim, "groups");
        assert!(!l.config.redacted_yaml().contains("s3cret"));
        // The client secret as a systemd credential.
        let creds = tempfile::tempdir().unwrap();
        let c = write(creds.path(), "oidc-local", "from-credential");
        std::fs::set_permissions(&c, std::fs::Permissions::from_mode(0o400)).unwrap();
        let mut env = BTreeMap::new();
        env.insert("CREDENTIALS_DIRECTORY".into(), creds.path().display().to_string());
        let l = load_with_env(Some(&cfg), &env).unwrap();
        assert_eq!(l.config.auth.oidc[1].client_secret.as_deref(), Some("from-credential"));
        // Mistakes, each named.
        for (yaml, key, says) in [
            ("    - name: Corp!\n      issuer: https://a.example\n      clientId: x\n", "auth.oidc[0].name", "a-z"),
            ("    - name: a\n      issuer: https://a.example\n      clientId: x\n    - name: a\n      issuer: https://b.example\n      clientId: y\n", "auth.oidc[1].name", "twice"),
            ("    - name: a\n      issuer: http://id.example.org\n      clientId: x\n", "auth.oidc[0].issuer", "https"),
            ("    - name: a\n      issuer: https://a.example\n      clientId: x\n      scopes: [email]\n", "auth.oidc[0].scopes", "openid"),
            ("    - name: a\n      issuer: https://a.example\n      clientId: \"\"\n", "auth.oidc[0].clientId", "empty"),
        ] {
            let e = load_text("c.yaml", &format!("auth:\n  oidc:\n{yaml}")).unwrap_err();
            assert_eq!(e.key.as_deref(), Some(key), "{e}");
            assert!(e.message.contains(says), "{e}");
        }
        let e = load_text("c.yaml", "auth:\n  oidc:\n    - name: a\n      issuer: https://a.example\n      clientID: x\n").unwrap_err();
        assert!(e.to_string().contains("clientId"), "{e}");
        // A list of providers cannot come from one variable.
        let mut env = BTreeMap::new();
        env.insert("BEDRUD_AUTH_OIDC".to_string(), "x".to_string());
        let l = load_with_env(None, &env).unwrap();
        assert!(l.warnings.iter().any(|w| w.contains("BEDRUD_AUTH_OIDC")), "{:?}", l.warnings);
    }

    #[test]
    fn smtp_settings() {
        let l = load_text("c.yaml", "smtp:\n  host: 127.0.0.1\n  security: none\n  from: bedrud <meet@example.org>\n").unwrap();
        assert!(l.config.smtp.enabled());
        assert_eq!(l.config.smtp.port(), 25);
        let e = load_text("c.yaml", "smtp:\n  host: mail.example.org\n").unwrap_err();
        assert_eq!(e.key.as_deref(), Some("smtp.from"));
        let e = load_text("c.yaml", "smtp:\n  host: mail.example.org\n  from: not an address\n").unwrap_err();
        assert_eq!((e.key.as_deref(), e.line), (Some("smtp.from"), Some(3)));
        let e = load_text("c.yaml", "smtp:\n  host: mail.example.org\n  security: ssl\n  from: a@example.org\n").unwrap_err();
        assert_eq!(e.key.as_deref(), Some("smtp.security"));
        let e = load_text("c.yaml", "smtp:\n  host: mail.example.org\n  from: a@example.org\n  username: bedrud\n").unwrap_err();
        assert!(e.hint.as_deref().unwrap_or("").contains(CRED_SMTP_PASSWORD), "{e}");
        // Password from the credential; host from the environment.
        let creds = tempfile::tempdir().unwrap();
        let c = write(creds.path(), CRED_SMTP_PASSWORD, "mail-pass");
        std::fs::set_permissions(&c, std::fs::Permissions::from_mode(0o600)).unwrap();
        let mut env = BTreeMap::new();
        env.insert("CREDENTIALS_DIRECTORY".into(), creds.path().display().to_string());
        env.insert("BEDRUD_SMTP_HOST".into(), "mail.example.org".into());
        env.insert("BEDRUD_SMTP_FROM".into(), "meet@example.org".into());
        env.insert("BEDRUD_SMTP_USERNAME".into(), "bedrud".into());
        env.insert("BEDRUD_SMTP_PORT".into(), "2525".into());
        let l = load_with_env(None, &env).unwrap();
        assert_eq!(l.config.smtp.password.as_deref(), Some("mail-pass"));
        assert_eq!(l.config.smtp.port(), 2525);
        assert!(!l.config.redacted_yaml().contains("mail-pass"));
    }

    #[test]
    fn secret_file_permissions() {
        let d = tempfile::tempdir().unwrap();
        let s = write(d.path(), "secret", "0123456789abcdef0123456789abcdef\n");
        std::fs::set_permissions(&s, std::fs::Permissions::from_mode(0o644)).unwrap();
        let cfg = write(d.path(), "c.yaml", &format!("livekit:\n  apiKey: k\n  apiSecretFile: {}\n", s.display()));
        let e = load_with_env(Some(&cfg), &BTreeMap::new()).unwrap_err();
        assert!(e.message.contains("other users"), "{e}");
        std::fs::set_permissions(&s, std::fs::Permissions::from_mode(0o600)).unwrap();
        let l = load_with_env(Some(&cfg), &BTreeMap::new()).unwrap();
        assert_eq!(l.config.livekit.api_secret.as_deref(), Some("0123456789abcdef0123456789abcdef"));
        assert!(!l.config.redacted_yaml().contains("0123456789"));
        // systemd credential
        let creds = tempfile::tempdir().unwrap();
        let c = write(creds.path(), CRED_LIVEKIT_SECRET, "abcdefghijabcdefghijabcdefghij0123");
        std::fs::set_permissions(&c, std::fs::Permissions::from_mode(0o400)).unwrap();
        let cfg = write(d.path(), "d.yaml", "livekit:\n  apiKey: k\n");
        let mut env = BTreeMap::new();
        env.insert("CREDENTIALS_DIRECTORY".into(), creds.path().display().to_string());
        let l = load_with_env(Some(&cfg), &env).unwrap();
        assert_eq!(l.config.livekit.api_secret.as_deref(), Some("abcdefghijabcdefghijabcdefghij0123"));
        // Empty credentials count as absent.
        std::fs::set_permissions(&c, std::fs::Permissions::from_mode(0o600)).unwrap();
        std::fs::write(&c, "\n").unwrap();
        let t = write(creds.path(), CRED_TLS_KEY, "");
        std::fs::set_permissions(&t, std::fs::Permissions::from_mode(0o600)).unwrap();
        let l = load_with_env(None, &env).unwrap();
        assert_eq!(l.config.livekit.api_secret, None);
        assert!(l.config.server.tls.is_none());
    }
}
