//! LiveKit on Redis run by the test itself, for external mode: a Redis, livekit-server nodes
//! sharing it (each on its own loopback address), an egress worker with its pulseaudio, and
//! moto as the S3-compatible store. Every process is in a process group of its own and killed
//! (group and all) on drop.
#![allow(dead_code)]

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::daemon::{eventually, http_client, API_KEY, API_SECRET};
use super::external::node_config;
use super::{egress_binary, free_port, livekit_binary, s3_python};

/// A child in its own process group, killed with the group on drop.
pub struct Proc {
    child: Option<Child>,
    pub name: &'static str,
}

impl Proc {
    pub fn spawn(name: &'static str, cmd: &mut Command, log: &Path) -> Proc {
        let out = std::fs::File::create(log).expect("log file");
        let err = out.try_clone().expect("log file");
        cmd.stdin(Stdio::null()).stdout(out).stderr(err).process_group(0);
        let child = cmd.spawn().unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        Proc { child: Some(child), name }
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// SIGKILL to the group, then reap.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = nix::sys::signal::killpg(nix::unistd::Pid::from_raw(c.id() as i32), nix::sys::signal::Signal::SIGKILL);
            let _ = c.wait();
        }
    }

    pub fn running(&mut self) -> bool {
        self.child.as_mut().is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Debian's redis-server on 127.0.0.1 and a free port, without persistence.
pub struct Redis {
    pub port: u16,
    proc: Proc,
    _dir: tempfile::TempDir,
}

impl Redis {
    pub fn start() -> Redis {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let proc = Proc::spawn(
            "redis-server",
            Command::new("redis-server").args(["--bind", "127.0.0.1", "--port", &port.to_string(), "--save", "", "--appendonly", "no"]).current_dir(dir.path()),
            &dir.path().join("redis.log"),
        );
        eventually(Duration::from_secs(10), "redis answers", || std::net::TcpStream::connect(("127.0.0.1", port)).is_ok());
        Redis { port, proc, _dir: dir }
    }

    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

/// One livekit-server node sharing `redis`, listening on `ip` (a loopback address), its
/// webhook pointed at bedrud on `hook_port`.
pub struct LkNode {
    pub ip: String,
    pub port: u16,
    proc: Proc,
    config: PathBuf,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl LkNode {
    pub fn start(ip: &str, redis: &Redis, hook_port: u16) -> LkNode {
        let dir = tempfile::tempdir().unwrap();
        let (port, tcp, udp) = (free_port(), free_port(), free_port());
        let config = dir.path().join("livekit.yaml");
        let extra = format!(
            "redis:\n  address: {}\nroom:\n  empty_timeout: 60\n  departure_timeout: 5\nnode_selector:\n  kind: any\n  sort_by: rooms\n  algorithm: lowest\nlogging:\n  level: info\n  json: true\n",
            redis.address()
        );
        std::fs::write(&config, node_config(ip, (port, tcp, udp), Some(hook_port), &extra)).unwrap();
        let log = dir.path().join("livekit.log");
        let proc = Proc::spawn("livekit-server", Command::new(livekit_binary()).arg("--config").arg(&config), &log);
        let url = format!("http://{ip}:{port}/");
        let http = http_client();
        eventually(Duration::from_secs(20), "livekit node healthy", || http.get(&url).send().map(|r| r.status().as_u16() == 200).unwrap_or(false));
        LkNode { ip: ip.to_string(), port, proc, config, log, _dir: dir }
    }

    pub fn ws_url(&self) -> String {
        format!("ws://{}:{}", self.ip, self.port)
    }

    pub fn http_url(&self) -> String {
        format!("http://{}:{}", self.ip, self.port)
    }

    pub fn pid(&self) -> Option<u32> {
        self.proc.pid()
    }

    /// The node id it registered under (from its start line).
    pub fn node_id(&self) -> String {
        let log = &self.log;
        super::wait_for(Duration::from_secs(10), "node id in the livekit log", || {
            let text = std::fs::read_to_string(log).unwrap_or_default();
            let at = text.find("\"nodeID\":\"")? + 10;
            Some(text[at..].split('"').next()?.to_string())
        })
    }

    /// `kill -9`.
    pub fn kill9(&mut self) {
        self.proc.kill();
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// An egress worker (and the pulseaudio it records room audio from) connected to `redis`
/// and the LiveKit at `ws_url`.
pub struct EgressWorker {
    pulse: Proc,
    egress: Proc,
    pub tmp: PathBuf,
    pub health_port: u16,
    log: PathBuf,
    dir: tempfile::TempDir,
}

impl EgressWorker {
    pub fn start(redis: &Redis, ws_url: &str) -> EgressWorker {
        let dir = tempfile::tempdir().unwrap();
        let (media, tmp) = (dir.path().join("media"), dir.path().join("tmp"));
        for d in [&media, &tmp] {
            std::fs::create_dir_all(d).unwrap();
            std::fs::set_permissions(d, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
        }
        let pulse = Proc::spawn(
            "pulseaudio",
            Command::new("pulseaudio")
                .args(["--daemonize=no", "--exit-idle-time=-1", "--use-pid-file=no", "-n", "--load=module-native-protocol-unix auth-anonymous=1"])
                .env("XDG_RUNTIME_DIR", &media),
            &dir.path().join("pulse.log"),
        );
        let socket = media.join("pulse/native");
        eventually(Duration::from_secs(20), "pulseaudio socket", || std::os::unix::net::UnixStream::connect(&socket).is_ok());
        let (health_port, template_port) = (free_port(), free_port());
        let config = dir.path().join("egress.yaml");
        std::fs::write(
            &config,
            format!(
                "api_key: {API_KEY}\napi_secret: {API_SECRET}\nws_url: {ws_url}\ninsecure: true\nredis:\n  address: {}\nhealth_port: {health_port}\ntemplate_port: {template_port}\nlogging:\n  level: info\n  json: true\ncpu_cost:\n  room_composite_cpu_cost: 1\n  web_cpu_cost: 1\n  max_cpu_utilization: 0.95\n",
                redis.address()
            ),
        )
        .unwrap();
        let bin = egress_binary();
        let path = format!("{}:{}", bin.parent().unwrap().display(), std::env::var("PATH").unwrap_or_default());
        let log = dir.path().join("egress.log");
        let egress = Proc::spawn(
            "egress",
            Command::new(&bin)
                .arg("--config")
                .arg(&config)
                .env("PATH", path)
                .env("TMPDIR", &tmp)
                .env("XDG_RUNTIME_DIR", &media)
                .env("PULSE_SERVER", format!("unix:{}", socket.display())),
            &log,
        );
        let l = log.clone();
        eventually(Duration::from_secs(60), "egress worker ready", || std::fs::read_to_string(&l).unwrap_or_default().contains("service ready"));
        EgressWorker { pulse, egress, tmp, health_port, log, dir }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for EgressWorker {
    fn drop(&mut self) {
        self.egress.kill();
        // Recordings run in sessions of their own: end those that work below our directory.
        for pid in handler_pids(&self.tmp) {
            let _ = nix::sys::signal::killpg(nix::unistd::Pid::from_raw(pid as i32), nix::sys::signal::Signal::SIGKILL);
        }
        self.pulse.kill();
    }
}

/// Running `egress run-handler` processes (one per recording) whose work directory is below
/// `tmp`.
pub fn handler_pids(tmp: &Path) -> Vec<u32> {
    let needle = tmp.display().to_string();
    let mut out = Vec::new();
    let Ok(dir) = std::fs::read_dir("/proc") else { return out };
    for e in dir.flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else { continue };
        let Ok(cmd) = std::fs::read(e.path().join("cmdline")) else { continue };
        let args: Vec<String> = cmd.split(|b| *b == 0).map(|a| String::from_utf8_lossy(a).into_owned()).collect();
        if args.iter().any(|a| a == "run-handler") && args.iter().any(|a| a.contains(&needle)) {
            let stat = std::fs::read_to_string(e.path().join("stat")).unwrap_or_default();
            if !stat.contains(") Z ") {
                out.push(pid);
            }
        }
    }
    out
}

/// moto's S3 server on 127.0.0.1, with one bucket.
pub struct Moto {
    pub port: u16,
    pub bucket: String,
    proc: Proc,
    _dir: tempfile::TempDir,
}

impl Moto {
    pub fn start(bucket: &str) -> Moto {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let proc = Proc::spawn(
            "moto",
            Command::new(s3_python()).args(["-m", "moto.server", "-H", "127.0.0.1", "-p", &port.to_string()]),
            &dir.path().join("moto.log"),
        );
        let http = http_client();
        let base = format!("http://127.0.0.1:{port}");
        eventually(Duration::from_secs(30), "moto answers", || http.get(&base).send().is_ok());
        let r = http.put(format!("{base}/{bucket}")).send().expect("create bucket");
        assert!(r.status().is_success(), "create bucket: {}", r.status());
        Moto { port, bucket: bucket.to_string(), proc, _dir: dir }
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The bucket's listing (ListObjects XML), for messages.
    pub fn listing(&self) -> String {
        let url = format!("{}/{}", self.endpoint(), self.bucket);
        http_client().get(&url).send().and_then(|r| r.text()).unwrap_or_else(|e| e.to_string())
    }
}
