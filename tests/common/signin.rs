//! Real servers the sign-in tests talk to, on loopback: an OpenID Connect provider
//! (node-oidc-provider, `web/e2e/oidc-provider.mjs`) and an SMTP server (aiosmtpd,
//! `tests/py/smtp_sink.py`). Each runs in its own process group, is waited for until it says
//! it is ready, and is killed with its group on drop.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::{json, Value};

use super::{free_port, python, repo_root, wait_for};

/// A child process that printed `{"ready": true, ...}`.
pub struct Fixture {
    child: Child,
    pub ready: Value,
    log: PathBuf,
}

impl Fixture {
    fn spawn(mut cmd: Command, what: &str, log: PathBuf) -> Fixture {
        let err = std::fs::File::create(&log).expect("fixture log");
        cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(err);
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        let mut child = cmd.spawn().unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
        let out = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if let Ok(v) = serde_json::from_str::<Value>(&line) {
                    if v["ready"] == true {
                        let _ = tx.send(v);
                    }
                }
            }
        });
        match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(ready) => Fixture { child, ready, log },
            Err(_) => {
                let _ = nix::sys::signal::killpg(nix::unistd::Pid::from_raw(child.id() as i32), nix::sys::signal::Signal::SIGKILL);
                let _ = child.wait();
                panic!("{what} did not start within 30 s:\n{}", std::fs::read_to_string(&log).unwrap_or_default());
            }
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = nix::sys::signal::killpg(nix::unistd::Pid::from_raw(self.child.id() as i32), nix::sys::signal::Signal::SIGKILL);
        let _ = self.child.wait();
    }
}

/// node-oidc-provider with the given clients and accounts (see the script's header).
pub struct OidcProvider {
    pub port: u16,
    pub issuer: String,
    _proc: Fixture,
    _dir: tempfile::TempDir,
}

impl OidcProvider {
    pub fn start(clients: Value, accounts: Value) -> OidcProvider {
        let dir = tempfile::tempdir().expect("tempdir");
        let port = free_port();
        let web = repo_root().join("web");
        let mut cmd = Command::new(std::env::var_os("BEDRUD_TEST_NODE").unwrap_or_else(|| "node".into()));
        cmd.arg(web.join("e2e/oidc-provider.mjs")).arg(json!({ "port": port, "clients": clients, "accounts": accounts }).to_string()).current_dir(&web);
        let proc = Fixture::spawn(cmd, "the OpenID provider (node e2e/oidc-provider.mjs; run `npm ci` in web/)", dir.path().join("provider.log"));
        let issuer = proc.ready["issuer"].as_str().expect("issuer").to_string();
        OidcProvider { port, issuer, _proc: proc, _dir: dir }
    }
}

/// aiosmtpd accepting mail on loopback; each message lands as JSON in a directory.
pub struct SmtpSink {
    pub port: u16,
    dir: tempfile::TempDir,
    _proc: Fixture,
}

impl SmtpSink {
    /// `auth`: the only login and password accepted (AUTH required); `tls`: certificate and
    /// key for STARTTLS (then required).
    pub fn start(auth: Option<(&str, &str)>, tls: Option<(&Path, &Path)>) -> SmtpSink {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(dir.path().join("mail")).expect("mail dir");
        let port = free_port();
        let mut cmd = Command::new(python());
        cmd.arg(repo_root().join("tests/py/smtp_sink.py")).arg("--port").arg(port.to_string()).arg("--dir").arg(dir.path().join("mail"));
        if let Some((login, password)) = auth {
            cmd.arg("--login").arg(login).arg("--password").arg(password);
        }
        if let Some((cert, key)) = tls {
            cmd.arg("--cert").arg(cert).arg("--key").arg(key);
        }
        let proc = Fixture::spawn(cmd, "the SMTP server (tests/py/smtp_sink.py; scripts/setup-test-env installs aiosmtpd)", dir.path().join("smtp.log"));
        SmtpSink { port, dir, _proc: proc }
    }

    /// Where each message lands as `NNNN.json`.
    pub fn mail_dir(&self) -> PathBuf {
        self.dir.path().join("mail")
    }

    /// Every message received so far, in order.
    pub fn messages(&self) -> Vec<Value> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(self.dir.path().join("mail"))
            .map(|d| d.flatten().map(|e| e.path()).filter(|p| p.extension().is_some_and(|e| e == "json")).collect())
            .unwrap_or_default();
        files.sort();
        files.iter().filter_map(|f| std::fs::read_to_string(f).ok()).filter_map(|t| serde_json::from_str(&t).ok()).collect()
    }

    /// The first message to `to` whose subject contains `subject`, waiting up to 20 s.
    pub fn wait_for(&self, to: &str, subject: &str) -> Value {
        wait_for(Duration::from_secs(20), &format!("a mail to {to} about {subject:?}"), || {
            self.messages().into_iter().find(|m| m["to"].as_array().is_some_and(|t| t.iter().any(|a| a == to)) && m["subject"].as_str().unwrap_or("").contains(subject))
        })
    }
}

/// The first link in `body` that starts with `prefix`.
pub fn link_in(body: &str, prefix: &str) -> String {
    body.split_whitespace().find(|w| w.starts_with(prefix)).unwrap_or_else(|| panic!("no link {prefix}… in:\n{body}")).to_string()
}

/// The `token` query parameter of a link.
pub fn token_of(link: &str) -> String {
    link.split("token=").nth(1).unwrap_or_else(|| panic!("no token in {link}")).to_string()
}
