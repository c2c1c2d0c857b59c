//! A real LiveKit client (the `livekit` Python SDK, pinned) driven over JSON lines: see
//! tests/py/README.md for the protocol.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::{participant_script, python};

pub struct Participant {
    child: Child,
    stdin: Option<ChildStdin>,
    events: mpsc::Receiver<Value>,
    /// Every event seen so far, in order.
    pub seen: Vec<Value>,
}

impl Participant {
    /// Starts a client and waits for it to connect (panics with its error otherwise).
    pub fn connect(url: &str, token: &str, timeout_s: u32) -> Participant {
        let mut p = Self::spawn(url, token, timeout_s);
        let ev = p.wait_any(&["connected", "connect_failed"], Duration::from_secs(30));
        assert_eq!(ev["event"], "connected", "participant could not connect: {ev}");
        p
    }

    pub fn spawn(url: &str, token: &str, timeout_s: u32) -> Participant {
        let mut child = Command::new(python())
            .arg(participant_script())
            .args(["--url", url, "--token", token, "--timeout", &timeout_s.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn participant.py");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Ok(v) = serde_json::from_str::<Value>(&line) {
                    if tx.send(v).is_err() {
                        break;
                    }
                }
            }
        });
        Participant { stdin: child.stdin.take(), child, events: rx, seen: Vec::new() }
    }

    pub fn send(&mut self, cmd: Value) {
        if let Some(i) = self.stdin.as_mut() {
            let _ = writeln!(i, "{cmd}");
            let _ = i.flush();
        }
    }

    /// Waits for the next event named one of `names` (earlier events are kept in `seen`).
    pub fn wait_any(&mut self, names: &[&str], limit: Duration) -> Value {
        let start = Instant::now();
        loop {
            let left = limit.checked_sub(start.elapsed()).unwrap_or_default();
            match self.events.recv_timeout(left.max(Duration::from_millis(1))) {
                Ok(v) => {
                    self.seen.push(v.clone());
                    if names.iter().any(|n| v["event"] == *n) {
                        return v;
                    }
                }
                Err(_) => panic!("no {names:?} event within {limit:?}; seen: {:?}", self.seen),
            }
        }
    }

    pub fn wait(&mut self, name: &str, limit: Duration) -> Value {
        self.wait_any(&[name], limit)
    }

    /// Publishes a tone from a synthetic microphone; the track sid.
    pub fn publish_audio(&mut self) -> String {
        self.publish("publish_audio")
    }

    /// Publishes a synthetic camera; the track sid.
    pub fn publish_video(&mut self) -> String {
        self.publish("publish_video")
    }

    fn publish(&mut self, cmd: &str) -> String {
        self.send(json!({ "cmd": cmd }));
        let v = self.wait_any(&["published", "publish_failed"], Duration::from_secs(20));
        assert_eq!(v["event"], "published", "{cmd} failed: {v}");
        v["sid"].as_str().unwrap_or_default().to_string()
    }

    pub fn state(&mut self) -> Value {
        self.send(json!({ "cmd": "state" }));
        self.wait("state", Duration::from_secs(10))
    }

    pub fn leave(&mut self) {
        self.send(json!({ "cmd": "leave" }));
        let _ = self.events.recv_timeout(Duration::from_secs(5));
        self.stdin = None;
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(10) {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
    }

    /// Waits for the process to end by itself (e.g. after being removed); exit code.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<i32> {
        let start = Instant::now();
        while start.elapsed() < limit {
            if let Ok(Some(st)) = self.child.try_wait() {
                return st.code();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }
}

impl Drop for Participant {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
