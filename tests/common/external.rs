//! A livekit-server run by the test itself (for external mode), with its webhook pointed at
//! `hook_port`. It can be stopped and started again on the same ports.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::daemon::{eventually, http_client, API_KEY, API_SECRET};
use super::{free_port, livekit_binary};

/// A livekit-server config on `ip` with (HTTP, ICE/TCP, UDP) `ports`, the test key pair, its
/// webhook pointed at bedrud on `hook_port` (`None`: no `webhook:` section), and `extra` YAML
/// sections.
pub fn node_config(ip: &str, ports: (u16, u16, u16), hook_port: Option<u16>, extra: &str) -> String {
    let (port, tcp, udp) = ports;
    let webhook = hook_port
        .map(|p| format!("webhook:\n  api_key: {API_KEY}\n  urls: [\"http://127.0.0.1:{p}/api/livekit/webhook\"]\n"))
        .unwrap_or_default();
    format!(
        "port: {port}\nbind_addresses: [{ip}]\nrtc:\n  tcp_port: {tcp}\n  udp_port: {udp}\n  node_ip: 127.0.0.1\n  use_external_ip: false\n  enable_loopback_candidate: true\n  interfaces:\n    includes: [lo]\nkeys:\n  {API_KEY}: {API_SECRET}\n{webhook}{extra}"
    )
}

pub struct External {
    child: Option<Child>,
    pub port: u16,
    config: PathBuf,
    _dir: tempfile::TempDir,
}

impl External {
    pub fn start(hook_port: u16) -> External {
        Self::start_with(Some(hook_port))
    }

    /// `None`: no `webhook:` section, as an operator who forgot it would run it.
    pub fn start_with(hook_port: Option<u16>) -> External {
        let dir = tempfile::tempdir().unwrap();
        let (port, tcp, udp) = (free_port(), free_port(), free_port());
        let config = dir.path().join("livekit.yaml");
        std::fs::write(&config, node_config("127.0.0.1", (port, tcp, udp), hook_port, "logging:\n  level: warn\n")).unwrap();
        let mut e = External { child: None, port, config, _dir: dir };
        e.spawn();
        e
    }

    /// Starts the server (again, same config and ports) and waits until it is healthy.
    pub fn spawn(&mut self) {
        assert!(self.child.is_none(), "external livekit-server already running");
        let child = Command::new(livekit_binary())
            .arg("--config")
            .arg(&self.config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        self.child = Some(child);
        let http = http_client();
        let port = self.port;
        eventually(Duration::from_secs(20), "external livekit healthy", || {
            http.get(format!("http://127.0.0.1:{port}/")).send().map(|r| r.status().as_u16() == 200).unwrap_or(false)
        });
    }

    /// Kills the server and reaps it.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }
}

impl Drop for External {
    fn drop(&mut self) {
        self.stop();
    }
}
