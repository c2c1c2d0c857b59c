//! The helpers recording needs in embedded mode, as children of bedrud: `redis-server` (shared
//! by LiveKit and egress), `pulseaudio` (the room-composite page plays its audio into it) and
//! the LiveKit Egress worker. Each is a [`Spec`] for the generic supervisor.

use std::ffi::OsString;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::sys::signal::Signal;
use serde::Serialize;
use tracing::Level;

use crate::config::Config;
use crate::livekit::configgen::{livekit_log_level, RedisConn};
use crate::livekit::ApiKeys;
use crate::supervise::{self, Candidate, Emit, Error, Launch, Limits, Parsed, PortUse, Proto, RestartPolicy, Spec, Stop, TempFile};

/// Where the bedrud package installs egress.
pub const EGRESS_PACKAGED_PATH: &str = "/usr/lib/bedrud/egress";
const READY_POLL: Duration = Duration::from_millis(100);
const REDIS_START_TIMEOUT: Duration = Duration::from_secs(15);
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

crate::emitter!(emit_redis, "redis", redis_pid);
crate::emitter!(emit_pulse, "pulseaudio", pulseaudio_pid);
crate::emitter!(emit_egress, "egress", egress_pid);

/// Longest egress `TMPDIR`: 107 bytes of socket path less `/EGH_<12>/org.chromium.Chromium.<6>/SingletonSocket`.
const EGRESS_TMP_MAX: usize = 107 - 62;

/// Directories the helpers share, below the runtime directory, private to bedrud's user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dirs {
    /// `XDG_RUNTIME_DIR` of pulseaudio and egress: pulseaudio's socket lives here.
    pub media: PathBuf,
    /// `TMPDIR` of egress: each recording's handler works in a directory below it, which is
    /// also how a handler left behind by a crashed worker is recognised.
    pub egress_tmp: PathBuf,
    /// Where temporary configs are written.
    pub runtime: PathBuf,
}

impl Dirs {
    pub fn new(runtime: &Path) -> Self {
        Self { media: runtime.join("bedrud-media"), egress_tmp: runtime.join("bedrud-egress"), runtime: runtime.to_path_buf() }
    }

    /// Refuses a runtime directory too long for the recording's browser: Chrome puts its
    /// socket at `<TMPDIR>/EGH_…/org.chromium.Chromium.…/SingletonSocket`, and a Unix socket
    /// path holds at most 107 bytes; a longer one kills every recording at its start.
    pub fn check_socket_room(&self) -> Result<(), String> {
        let len = self.egress_tmp.as_os_str().len();
        if len <= EGRESS_TMP_MAX {
            return Ok(());
        }
        let room = EGRESS_TMP_MAX - "/bedrud-egress".len();
        Err(format!(
            "the runtime directory {} is too long for recording: Chrome's socket below {} would pass the 107-byte limit of a Unix socket path ({len} bytes where {EGRESS_TMP_MAX} fit); use a runtime directory of at most {room} bytes ($RUNTIME_DIRECTORY; /run/bedrud under systemd)",
            self.runtime.display(),
            self.egress_tmp.display()
        ))
    }

    /// Creates them (mode 0700).
    pub fn create(&self) -> Result<(), Error> {
        self.check_socket_room().map_err(Error::Config)?;
        for d in [&self.media, &self.egress_tmp] {
            std::fs::create_dir_all(d)
                .and_then(|()| std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o700)))
                .map_err(|e| Error::Io { what: format!("cannot create {}", d.display()), source: e })?;
        }
        Ok(())
    }

    fn pulse_socket(&self) -> PathBuf {
        self.media.join("pulse").join("native")
    }
}

fn env_path(var: &str) -> Option<PathBuf> {
    std::env::var_os(var).filter(|v| !v.is_empty()).map(PathBuf::from)
}

fn health(config: &Config) -> (Duration, u32) {
    (config.livekit.health_interval, config.livekit.health_failures)
}

/// Limits of a helper: health probes as LiveKit's, no settling time.
fn helper_limits(start: (Duration, &'static str), ready_test: &'static str, poll: Duration, health: (Duration, u32), policy: RestartPolicy, stop: Stop) -> Limits {
    Limits {
        start_timeout: start.0,
        start_timeout_key: start.1,
        ready_test,
        ready_poll: poll,
        health_interval: health.0,
        health_failures: health.1,
        policy,
        stop,
        settle_after_ready: Duration::ZERO,
    }
}

// ---- redis-server ------------------------------------------------------------------------

/// The embedded redis-server: loopback only, a password, no persistence (LiveKit and egress
/// keep only live state in it).
#[derive(Clone)]
pub struct RedisSpec {
    binary: PathBuf,
    port: u16,
    password: String,
    body: String,
    runtime: PathBuf,
    ports: Vec<PortUse>,
    health: (Duration, u32),
    pub policy: RestartPolicy,
}

impl RedisSpec {
    pub fn new(config: &Config, password: &str, dirs: &Dirs) -> Result<Self, Error> {
        let binary = find_redis(config)?;
        let port = config.redis.port;
        let body = format!(
            "bind 127.0.0.1\nport {port}\nprotected-mode yes\nrequirepass {password}\nsave \"\"\nappendonly no\ndaemonize no\nlogfile \"\"\nloglevel notice\ndir {}\n",
            dirs.runtime.display()
        );
        Ok(Self {
            binary,
            port,
            password: password.to_string(),
            body,
            runtime: dirs.runtime.clone(),
            ports: vec![PortUse { port, proto: Proto::Tcp, key: "redis.port".into() }],
            health: health(config),
            policy: RestartPolicy::default(),
        })
    }

    /// How LiveKit and egress reach it.
    pub fn conn(&self) -> RedisConn {
        RedisConn { address: format!("127.0.0.1:{}", self.port), password: Some(self.password.clone()) }
    }
}

impl Spec for RedisSpec {
    fn program(&self) -> &str {
        "redis-server"
    }

    fn launch(&self) -> Result<Launch, Error> {
        let temp = TempFile::create(&self.runtime, "bedrud-redis-", ".conf", "Redis config", &self.body)?;
        Ok(Launch { program: self.binary.clone(), args: vec![temp.path().as_os_str().to_owned()], env: Vec::new(), temp: Some(temp) })
    }

    fn probe(&self) -> impl std::future::Future<Output = Result<(), String>> + Send + '_ {
        let address = format!("127.0.0.1:{}", self.port);
        async move { crate::redis::ping(&address, Some(&self.password), PROBE_TIMEOUT).await }
    }

    fn limits(&self) -> Limits {
        let stop = Stop { signal: Signal::SIGTERM, grace: Duration::from_secs(5), grace_key: "a fixed 5 s", force: None };
        helper_limits((REDIS_START_TIMEOUT, "a fixed 15 s"), "answer PING", Duration::from_millis(50), self.health, self.policy, stop)
    }

    fn ports(&self) -> &[PortUse] {
        &self.ports
    }

    fn same_child(&self, other: &Self) -> bool {
        self.binary == other.binary && self.body == other.body
    }

    fn parse_line(&self, line: &str) -> Option<Parsed> {
        parse_redis(line)
    }

    fn emit(&self) -> Emit {
        emit_redis
    }
}

/// `1234:M 01 Dec 2026 15:41:18.123 * Ready to accept connections tcp`: `.`/`-` debug,
/// `*` notice, `#` warning.
fn parse_redis(line: &str) -> Option<Parsed> {
    let (head, rest) = line.split_once(' ')?;
    let (pid, role) = head.split_once(':')?;
    if pid.parse::<u32>().is_err() || role.len() != 1 {
        return None;
    }
    // Day, month, year, time, then the level mark.
    let mut parts = rest.splitn(6, ' ');
    let _ = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    let level = match parts.next()? {
        "." | "-" => Level::DEBUG,
        "*" => Level::INFO,
        "#" => Level::WARN,
        _ => return None,
    };
    Some((level, parts.next().unwrap_or("").to_string(), None))
}

// ---- pulseaudio --------------------------------------------------------------------------

/// A pulseaudio for the room-composite page's audio: no modules but the socket (egress adds a
/// null sink per recording), anonymous access guarded by the 0700 directory.
#[derive(Clone)]
pub struct PulseSpec {
    binary: PathBuf,
    dirs: Dirs,
    start_timeout: Duration,
    health: (Duration, u32),
    pub policy: RestartPolicy,
}

impl PulseSpec {
    pub fn new(config: &Config, dirs: &Dirs) -> Result<Self, Error> {
        let binary = supervise::find(
            "pulseaudio",
            Vec::new(),
            std::env::var_os("PATH"),
            "install Debian's pulseaudio (apt install pulseaudio): egress records the room's audio through it",
        )?;
        Ok(Self { binary, dirs: dirs.clone(), start_timeout: config.recording.start_timeout, health: health(config), policy: RestartPolicy::default() })
    }
}

impl Spec for PulseSpec {
    fn program(&self) -> &str {
        "pulseaudio"
    }

    fn launch(&self) -> Result<Launch, Error> {
        let args = [
            "--daemonize=no",
            "--exit-idle-time=-1",
            "--disallow-exit",
            "--use-pid-file=no",
            "--log-target=stderr",
            "-n",
            "--load=module-native-protocol-unix auth-anonymous=1",
        ];
        Ok(Launch {
            program: self.binary.clone(),
            args: args.iter().map(OsString::from).collect(),
            env: vec![("XDG_RUNTIME_DIR".into(), self.dirs.media.clone().into())],
            temp: None,
        })
    }

    fn probe(&self) -> impl std::future::Future<Output = Result<(), String>> + Send + '_ {
        let socket = self.dirs.pulse_socket();
        async move {
            tokio::time::timeout(PROBE_TIMEOUT, tokio::net::UnixStream::connect(&socket))
                .await
                .map_err(|_| "no answer within 2 s".to_string())?
                .map(drop)
                .map_err(|e| format!("connect {}: {e}", socket.display()))
        }
    }

    fn limits(&self) -> Limits {
        let stop = Stop { signal: Signal::SIGTERM, grace: Duration::from_secs(3), grace_key: "a fixed 3 s", force: None };
        helper_limits((self.start_timeout, "recording.startTimeout"), "open its socket", READY_POLL, self.health, self.policy, stop)
    }

    fn same_child(&self, other: &Self) -> bool {
        self.binary == other.binary && self.dirs == other.dirs
    }

    fn parse_line(&self, line: &str) -> Option<Parsed> {
        // `W: [pulseaudio] main.c: This program is not intended to be run as root ...`
        let (mark, msg) = line.split_once(": ")?;
        let level = match mark {
            "E" => Level::ERROR,
            "W" => Level::WARN,
            "N" | "I" => Level::INFO,
            "D" => Level::DEBUG,
            _ => return None,
        };
        Some((level, msg.to_string(), None))
    }

    fn emit(&self) -> Emit {
        emit_pulse
    }
}

// ---- egress ------------------------------------------------------------------------------

/// The egress worker. It starts each recording as a new `egress run-handler` process in a
/// session of its own (with Chrome, Xvfb and a GStreamer pipeline below it), found by the
/// `egress` on `PATH`; bedrud puts the worker's directory first on the child's `PATH`.
#[derive(Clone)]
pub struct EgressSpec {
    binary: PathBuf,
    yaml: String,
    dirs: Dirs,
    health_url: String,
    ports: Vec<PortUse>,
    start_timeout: Duration,
    stop_timeout: Duration,
    health: (Duration, u32),
    http: reqwest::Client,
    pub policy: RestartPolicy,
}

#[derive(Serialize)]
struct EgressYaml<'a> {
    api_key: &'a str,
    api_secret: &'a str,
    ws_url: String,
    insecure: bool,
    redis: EgressRedis<'a>,
    health_port: u16,
    template_port: u16,
    logging: EgressLogging,
    cpu_cost: CpuCost,
}

#[derive(Serialize)]
struct EgressRedis<'a> {
    address: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    password: Option<&'a str>,
}

#[derive(Serialize)]
struct EgressLogging {
    level: &'static str,
    json: bool,
}

#[derive(Serialize)]
struct CpuCost {
    room_composite_cpu_cost: f64,
    audio_room_composite_cpu_cost: f64,
    web_cpu_cost: f64,
    audio_web_cpu_cost: f64,
    max_cpu_utilization: f64,
}

impl EgressSpec {
    pub fn new(config: &Config, keys: &ApiKeys, redis: &RedisConn, dirs: &Dirs) -> Result<Self, Error> {
        let binary = find_egress(config)?;
        let rec = &config.recording;
        let cost = rec.cpu_cost;
        let doc = EgressYaml {
            api_key: &keys.key,
            api_secret: &keys.secret,
            ws_url: format!("ws://127.0.0.1:{}", config.livekit.port),
            insecure: true,
            redis: EgressRedis { address: &redis.address, password: redis.password.as_deref() },
            health_port: rec.health_port,
            template_port: rec.template_port,
            logging: EgressLogging { level: livekit_log_level(&config.logging.level), json: true },
            cpu_cost: CpuCost {
                room_composite_cpu_cost: cost,
                audio_room_composite_cpu_cost: cost.min(1.0),
                web_cpu_cost: cost,
                audio_web_cpu_cost: cost.min(1.0),
                max_cpu_utilization: 0.95,
            },
        };
        let yaml = serde_norway::to_string(&doc).map_err(|e| Error::Config(format!("cannot render the egress config: {e}")))?;
        Ok(Self {
            binary,
            yaml,
            dirs: dirs.clone(),
            health_url: format!("http://127.0.0.1:{}/", rec.health_port),
            ports: vec![
                PortUse { port: rec.health_port, proto: Proto::Tcp, key: "recording.healthPort".into() },
                PortUse { port: rec.template_port, proto: Proto::Tcp, key: "recording.templatePort".into() },
            ],
            start_timeout: rec.start_timeout,
            stop_timeout: rec.stop_timeout,
            health: health(config),
            http: crate::livekit::http::client(false, PROBE_TIMEOUT),
            policy: RestartPolicy::default(),
        })
    }
}

/// `redis.binary`, `$BEDRUD_REDIS_BINARY`, `redis-server` on PATH.
pub fn find_redis(config: &Config) -> Result<PathBuf, Error> {
    let mut candidates = Vec::new();
    if let Some(p) = &config.redis.binary {
        candidates.push(Candidate { place: "redis.binary".into(), path: p.clone() });
    }
    if let Some(p) = env_path("BEDRUD_REDIS_BINARY") {
        candidates.push(Candidate { place: "$BEDRUD_REDIS_BINARY".into(), path: p });
    }
    supervise::find(
        "redis-server",
        candidates,
        std::env::var_os("PATH"),
        "install Debian's redis-server (apt install redis-server; `systemctl disable --now redis-server` if you only need it for bedrud), set redis.binary, or point redis.address at a Redis you run",
    )
}

/// `recording.egressBinary`, `$BEDRUD_EGRESS_BINARY`, the packaged path, `egress` on PATH.
pub fn find_egress(config: &Config) -> Result<PathBuf, Error> {
    let mut candidates = Vec::new();
    if let Some(p) = &config.recording.egress_binary {
        candidates.push(Candidate { place: "recording.egressBinary".into(), path: p.clone() });
    }
    if let Some(p) = env_path("BEDRUD_EGRESS_BINARY") {
        candidates.push(Candidate { place: "$BEDRUD_EGRESS_BINARY".into(), path: p });
    }
    candidates.push(Candidate { place: "bedrud package".into(), path: EGRESS_PACKAGED_PATH.into() });
    supervise::find(
        "egress",
        candidates,
        std::env::var_os("PATH"),
        "run scripts/install-egress (it builds LiveKit Egress v1.8.6 and prints its path), or set recording.egressBinary",
    )
}

impl Spec for EgressSpec {
    fn program(&self) -> &str {
        "egress"
    }

    fn launch(&self) -> Result<Launch, Error> {
        let temp = TempFile::create(&self.dirs.runtime, "bedrud-egress-", ".yaml", "egress config", &self.yaml)?;
        // Recordings run `egress run-handler` from PATH: this binary's directory comes first.
        let mut path = OsString::from(self.binary.parent().unwrap_or(Path::new("/")));
        if let Some(p) = std::env::var_os("PATH") {
            path.push(":");
            path.push(p);
        }
        let pulse = format!("unix:{}", self.dirs.pulse_socket().display());
        Ok(Launch {
            program: self.binary.clone(),
            args: vec!["--config".into(), temp.path().as_os_str().to_owned()],
            env: vec![
                ("PATH".into(), path),
                ("TMPDIR".into(), self.dirs.egress_tmp.clone().into()),
                ("XDG_RUNTIME_DIR".into(), self.dirs.media.clone().into()),
                ("PULSE_SERVER".into(), pulse.into()),
                // GStreamer's own log lines without terminal colours.
                ("GST_DEBUG_NO_COLOR".into(), "1".into()),
            ],
            temp: Some(temp),
        })
    }

    fn probe(&self) -> impl std::future::Future<Output = Result<(), String>> + Send + '_ {
        supervise::http_probe(&self.http, &self.health_url, None)
    }

    fn limits(&self) -> Limits {
        // SIGTERM: finish recordings, then exit; SIGINT: stop them now.
        let stop = Stop { signal: Signal::SIGTERM, grace: self.stop_timeout, grace_key: "recording.stopTimeout", force: Some((Signal::SIGINT, Duration::from_secs(5))) };
        let ready = "report \"service ready\" and answer on its health port";
        helper_limits((self.start_timeout, "recording.startTimeout"), ready, READY_POLL, self.health, self.policy, stop)
    }

    fn ports(&self) -> &[PortUse] {
        &self.ports
    }

    fn same_child(&self, other: &Self) -> bool {
        self.binary == other.binary && self.yaml == other.yaml && self.dirs == other.dirs
    }

    fn parse_line(&self, line: &str) -> Option<Parsed> {
        supervise::parse_zap_json(line).or_else(|| supervise::parse_zap_console(line)).or_else(|| parse_gstreamer(line))
    }

    fn emit(&self) -> Emit {
        emit_egress
    }

    fn ready_message(&self) -> Option<&str> {
        Some("service ready")
    }

    fn after_exit(&self) {
        for pid in orphan_handlers(&self.dirs.egress_tmp) {
            tracing::warn!(handler_pid = pid, "killing a recording process left behind by the egress worker");
            if let Ok(p) = i32::try_from(pid) {
                // A handler leads its own session and group; Chrome and Xvfb are in it.
                let _ = nix::sys::signal::killpg(nix::unistd::Pid::from_raw(p), Signal::SIGKILL);
            }
        }
    }
}

/// `egress run-handler` processes of this user whose configuration points into `tmp`.
fn orphan_handlers(tmp: &Path) -> Vec<u32> {
    let needle = tmp.display().to_string();
    let uid = nix::unistd::geteuid().as_raw();
    let Ok(entries) = std::fs::read_dir("/proc") else { return Vec::new() };
    let mut found = Vec::new();
    for e in entries.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else { continue };
        use std::os::unix::fs::MetadataExt;
        if e.metadata().map(|m| m.uid() != uid).unwrap_or(true) {
            continue;
        }
        let Ok(cmdline) = std::fs::read(e.path().join("cmdline")) else { continue };
        let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
        let is_handler = args.iter().any(|a| *a == b"run-handler");
        if is_handler && args.iter().any(|a| String::from_utf8_lossy(a).contains(&needle)) {
            found.push(pid);
        }
    }
    found
}

/// GStreamer's debug lines: `0:00:00.27 8908 0x56 WARN  msdk msdk.c:303:f: message`.
fn parse_gstreamer(line: &str) -> Option<Parsed> {
    let mut it = line.split_whitespace();
    let time = it.next()?;
    if !time.starts_with(|c: char| c.is_ascii_digit()) || !time.contains(':') {
        return None;
    }
    let _pid = it.next()?.parse::<u32>().ok()?;
    let _thread = it.next()?.strip_prefix("0x")?;
    let level = match it.next()? {
        "ERROR" => Level::ERROR,
        "WARN" | "WARNING" => Level::WARN,
        "FIXME" | "INFO" => Level::INFO,
        "DEBUG" | "LOG" | "TRACE" | "MEMDUMP" => Level::DEBUG,
        _ => return None,
    };
    let rest: Vec<&str> = it.collect();
    Some((level, format!("gstreamer: {}", rest.join(" ")), None))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runtime_directory_leaves_room_for_chromes_socket() {
        assert!(Dirs::new(Path::new("/run/bedrud")).check_socket_room().is_ok());
        // 45 bytes of TMPDIR: the socket path is 107 bytes.
        assert!(Dirs::new(Path::new("/tmp/bedrud-runtime-dir-0123456")).check_socket_room().is_ok());
        let e = Dirs::new(Path::new("/tmp/bedrud-runtime-dir-01234567")).check_socket_room().unwrap_err();
        assert!(e.contains("/tmp/bedrud-runtime-dir-01234567") && e.contains("at most 31 bytes"), "{e}");
    }

    #[test]
    fn log_lines_of_the_helpers() {
        let (l, m, _) = parse_redis("8913:M 01 Dec 2026 15:41:18.123 * Ready to accept connections tcp").unwrap();
        assert_eq!((l, m.as_str()), (Level::INFO, "Ready to accept connections tcp"));
        assert_eq!(parse_redis("8913:M 01 Dec 2026 15:41:18.123 # Warning: no config file").unwrap().0, Level::WARN);
        assert!(parse_redis("                _._").is_none());
        let (l, m, _) = parse_gstreamer("0:00:00.276844432  8908 0x5606cf300150 WARN                 msdk msdk.c:303:msdk_init_msdk_session: Failed").unwrap();
        assert_eq!(l, Level::WARN);
        assert!(m.starts_with("gstreamer: msdk msdk.c:303"), "{m}");
        assert!(parse_gstreamer("{\"level\":\"info\"}").is_none());
    }
}
