//! One running child process: spawned in its own process group with a parent-death signal,
//! signalled as a group, reaped, and its output readers drained.

use std::os::unix::process::ExitStatusExt;
use std::process::{ExitStatus, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use tokio::process::Child;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::output::{read_lines, Output, Stream};
use super::{Error, Launch, Spec};

/// Time allowed for the output readers to drain after the child exited.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(2);

/// A running child and what belongs to it.
pub(super) struct Running {
    pub child: Child,
    pub pid: u32,
    /// Its temporary files are removed when this is dropped, i.e. once the child has exited.
    _launch: Launch,
    pub output: Arc<Output>,
    readers: Vec<JoinHandle<()>>,
    pub started: Instant,
    pub ready_at: Option<Instant>,
    pub reaped: bool,
    program: String,
}

/// Starts the child of `spec` with `launch`.
pub(super) async fn spawn<S: Spec>(spec: &Arc<S>, launch: Launch) -> Result<Running, Error> {
    let program = spec.program().to_string();
    let mut cmd = tokio::process::Command::new(&launch.program);
    cmd.args(&launch.args)
        // Nothing of bedrud's environment (secrets, BEDRUD_*, NOTIFY_SOCKET) reaches the child.
        .env_clear()
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .process_group(0);
    for var in ["PATH", "HOME"] {
        if let Some(v) = std::env::var_os(var) {
            cmd.env(var, v);
        }
    }
    cmd.envs(launch.env.iter().map(|(k, v)| (k, v)));
    let parent = nix::unistd::getpid();
    let name = program.clone();
    // SAFETY: only async-signal-safe syscalls (prctl, getppid) run between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).map_err(std::io::Error::from)?;
            // bedrud died between fork and prctl: do not outlive it.
            if nix::unistd::getppid() != parent {
                return Err(std::io::Error::other("bedrud exited while starting its child"));
            }
            Ok(())
        });
    }
    let mut child = spawn_from_stable_thread(cmd)
        .await
        .map_err(|e| Error::Io { what: format!("cannot start {} ({name})", launch.program.display()), source: e })?;
    let pid = child.id().unwrap_or(0);
    let output = Arc::new(Output::default());
    let mut readers = Vec::new();
    if let Some(out) = child.stdout.take() {
        readers.push(tokio::spawn(read_lines(out, Stream::Stdout, pid, output.clone(), spec.clone())));
    }
    if let Some(err) = child.stderr.take() {
        readers.push(tokio::spawn(read_lines(err, Stream::Stderr, pid, output.clone(), spec.clone())));
    }
    Ok(Running { child, pid, _launch: launch, output, readers, started: Instant::now(), ready_at: None, reaped: false, program })
}

/// Spawns `cmd` from a thread that lives as long as the process. The parent-death signal
/// fires when the *thread* that forked the child exits, and runtime threads may exit (the
/// blocking pool, `block_in_place`), which would kill a healthy child.
async fn spawn_from_stable_thread(mut cmd: tokio::process::Command) -> std::io::Result<Child> {
    type Job = (tokio::process::Command, tokio::runtime::Handle, oneshot::Sender<std::io::Result<Child>>);
    static SPAWNER: std::sync::OnceLock<Option<std::sync::mpsc::Sender<Job>>> = std::sync::OnceLock::new();
    let spawner = SPAWNER.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::channel::<Job>();
        let started = std::thread::Builder::new().name("child-spawner".into()).spawn(move || {
            while let Ok((mut cmd, rt, reply)) = rx.recv() {
                // The child is registered with the caller's runtime for reaping.
                let _enter = rt.enter();
                let _ = reply.send(cmd.spawn());
            }
        });
        match started {
            Ok(_) => Some(tx),
            Err(e) => {
                tracing::warn!("cannot start the child-spawner thread ({e}); spawning from a runtime thread");
                None
            }
        }
    });
    let Some(spawner) = spawner else { return cmd.spawn() };
    let (reply, answer) = oneshot::channel();
    let sent = spawner.send((cmd, tokio::runtime::Handle::current(), reply));
    match sent {
        Ok(()) => answer.await.unwrap_or_else(|_| Err(std::io::Error::other("the child-spawner thread is gone"))),
        Err(std::sync::mpsc::SendError((mut cmd, _, _))) => cmd.spawn(),
    }
}

impl Running {
    fn group(&self) -> Option<Pid> {
        // Never 0 or 1: killpg(0) would signal bedrud's own group.
        i32::try_from(self.pid).ok().filter(|p| *p > 1).map(Pid::from_raw)
    }

    /// Signals the child's process group; only while the child is not reaped (its pid, and so
    /// the group id, cannot have been reused).
    pub fn signal(&mut self, sig: Signal) {
        if self.reaped {
            return;
        }
        if let Some(g) = self.group() {
            if let Err(e) = killpg(g, sig) {
                if e != nix::errno::Errno::ESRCH {
                    tracing::warn!(child_pid = self.pid, "cannot send {sig} to {}: {e}", self.program);
                }
            }
        }
    }

    /// Kills what is left of the group once the leader is gone: no helper may outlive it.
    pub fn sweep(&self) {
        if let Some(g) = self.group() {
            let _ = killpg(g, Signal::SIGKILL);
        }
    }

    /// Waits up to `limit` for the child to exit; true once it is reaped.
    pub async fn wait_for(&mut self, limit: Duration) -> bool {
        if self.reaped {
            return true;
        }
        match tokio::time::timeout(limit, self.child.wait()).await {
            Ok(_) => {
                self.reaped = true;
                true
            }
            Err(_) => false,
        }
    }

    /// SIGKILL to the group, then reap.
    pub async fn kill(&mut self) {
        self.signal(Signal::SIGKILL);
        if !self.wait_for(Duration::from_secs(10)).await {
            tracing::error!(child_pid = self.pid, "{} does not die after SIGKILL", self.program);
        }
    }

    /// Lets the output readers finish the last lines.
    pub async fn drain(&mut self) {
        for r in self.readers.drain(..) {
            let abort = r.abort_handle();
            if tokio::time::timeout(DRAIN_TIMEOUT, r).await.is_err() {
                abort.abort();
            }
        }
    }
}

/// `exited with status 1`, `killed by signal SIGKILL`.
pub(super) fn describe_exit(st: std::io::Result<ExitStatus>) -> String {
    match st {
        Err(e) => format!("its exit status is unknown ({e})"),
        Ok(st) => match (st.code(), st.signal()) {
            (Some(c), _) => format!("exited with status {c}"),
            (None, Some(s)) => match Signal::try_from(s) {
                Ok(sig) => format!("killed by signal {sig}"),
                Err(_) => format!("killed by signal {s}"),
            },
            _ => format!("ended ({st})"),
        },
    }
}
