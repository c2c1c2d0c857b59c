//! Runs the web client's end-to-end scenarios (`web/e2e/*.mjs`: playwright-core driving Debian's
//! headless chromium with fake camera and microphone) against a real daemon, bounded in time,
//! and hands their JSON results to the test.
#![allow(dead_code)]

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::daemon::Daemon;
use super::repo_root;

/// One browser scenario at a time: two chromiums with live video each take most of a core.
static BROWSERS: Mutex<()> = Mutex::new(());

pub fn web_dir() -> PathBuf {
    repo_root().join("web")
}

/// `target/screenshots`, next to the build output.
pub fn screenshot_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).parent().map(|t| t.join("screenshots")).unwrap_or_else(|| repo_root().join("target/screenshots"))
}

/// Checks that the client's tools are installed, that `web/dist` is built, and that `d` serves
/// exactly that build (the binary embeds `web/dist` when it is
/// compiled, so the client must be built first: `make web`, i.e. `scripts/build-web`, then cargo).
pub fn check_client(d: &Daemon) {
    let web = web_dir();
    assert!(
        web.join("node_modules/playwright-core").is_dir(),
        "web/node_modules is missing: run `npm ci` in web/ (or `make web`) before the browser tests"
    );
    let index = web.join("dist/index.html");
    assert!(index.is_file(), "web/dist is not built: run `make web` (scripts/build-web), then rebuild bedrud");
    let body = super::daemon::http_client().get(d.url("/")).send().and_then(|r| r.text()).expect("GET /");
    let wanted = std::fs::read_to_string(&index).expect("read web/dist/index.html");
    assert_eq!(body, wanted, "the daemon does not serve the current web/dist: rebuild bedrud after building the client");
}

/// Runs `web/e2e/<name>.mjs` with `input` (JSON) and returns the JSON line it printed.
/// Panics with the scenario's own output when it fails or runs past `limit`.
pub fn scenario(name: &str, input: &Value, limit: Duration) -> Value {
    let _one_at_a_time = BROWSERS.lock().unwrap_or_else(|e| e.into_inner());
    let script = web_dir().join("e2e").join(format!("{name}.mjs"));
    let mut cmd = Command::new(std::env::var_os("BEDRUD_TEST_NODE").unwrap_or_else(|| "node".into()));
    cmd.arg(&script)
        .arg(input.to_string())
        .current_dir(web_dir())
        .env("BEDRUD_SCREENSHOTS", screenshot_dir())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // Its own process group, so a timeout ends node and the chromium it started together.
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("cannot run node {}: {e} (install Node.js >= 20.19)", script.display()));
    let pgid = nix::unistd::Pid::from_raw(child.id() as i32);
    let mut out = child.stdout.take().expect("stdout");
    let mut err = child.stderr.take().expect("stderr");
    let out_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let start = Instant::now();
    let status = loop {
        if let Ok(Some(st)) = child.try_wait() {
            break Some(st);
        }
        if start.elapsed() > limit {
            let _ = nix::sys::signal::killpg(pgid, nix::sys::signal::Signal::SIGKILL);
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    // Whatever is left of the group (a browser whose driver died) goes too.
    let _ = nix::sys::signal::killpg(pgid, nix::sys::signal::Signal::SIGKILL);
    let stdout = out_reader.join().unwrap_or_default();
    let stderr = err_reader.join().unwrap_or_default();
    match status {
        None => panic!("scenario {name} ran past {limit:?}\nstdout:\n{stdout}\nstderr:\n{stderr}"),
        Some(st) if !st.success() => panic!("scenario {name} failed ({st})\nstdout:\n{stdout}\nstderr:\n{stderr}"),
        Some(_) => {}
    }
    let line = stdout.lines().rev().find(|l| l.trim_start().starts_with('{')).unwrap_or_else(|| panic!("scenario {name} printed no result:\n{stdout}\n{stderr}"));
    let v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("scenario {name}: bad result {line:?}: {e}"));
    assert_eq!(v["ok"], true, "scenario {name}: {v}");
    eprintln!("scenario {name} done in {:.1} s", start.elapsed().as_secs_f64());
    v
}
