//! The task that owns one child: start, readiness, health, restarts, reloads, stop.

use std::path::PathBuf;
use std::process::ExitStatus;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::Level;

use super::child::{self, describe_exit, Running};
use super::{check_ports, ChildState, Error, Event, Observer, Spec, NOT_READY_GRACE};

/// The running supervisor of one child. Dropping it stops the child in the background;
/// [`Self::stop`] waits.
pub struct Handle<S: Spec> {
    cmds: mpsc::Sender<Cmd<S>>,
    stop: CancellationToken,
    task: Option<JoinHandle<()>>,
    shared: Arc<Shared>,
    program: String,
}

impl<S: Spec> std::fmt::Debug for Handle<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handle").field("program", &self.program).field("pid", &self.pid()).finish_non_exhaustive()
    }
}

#[derive(Debug, Default)]
struct Shared {
    pid: AtomicU32,
    temp_path: Mutex<Option<PathBuf>>,
}

struct Cmd<S> {
    spec: Box<S>,
    reply: oneshot::Sender<Result<bool, Error>>,
}

/// Spawns the task that starts and supervises the child of `spec`, reporting to `observer`.
/// It stops when `shutdown` is cancelled or the handle is stopped or dropped. The first
/// start's outcome arrives as an [`Event::State`]: `Ready`, or `Failed`.
pub fn start<S: Spec, O: Observer<S>>(spec: S, observer: O, shutdown: &CancellationToken) -> Handle<S> {
    let shared = Arc::new(Shared::default());
    let stop = shutdown.child_token();
    let (tx, rx) = mpsc::channel(4);
    let program = spec.program().to_string();
    let sup = Supervisor { spec: Arc::new(spec), observer, stop: stop.clone(), cmds: rx, shared: shared.clone(), restarts: 0 };
    sup.report(Event::State(&ChildState::Starting));
    let task = tokio::spawn(sup.run());
    Handle { cmds: tx, stop, task: Some(task), shared, program }
}

impl<S: Spec> Handle<S> {
    /// Replaces the spec; restarts the child only if `spec` starts a different one (`Ok(true)`
    /// once the new child is ready). A new child that fails to start is reported as the error,
    /// and the previous spec is started again.
    pub async fn reload(&self, spec: S) -> Result<bool, Error> {
        let (tx, rx) = oneshot::channel();
        let stopped = || Error::Stopped { program: self.program.clone() };
        self.cmds.send(Cmd { spec: Box::new(spec), reply: tx }).await.map_err(|_| stopped())?;
        rx.await.map_err(|_| stopped())?
    }

    /// Graceful stop (the spec's stop sequence, then SIGKILL). Returns once the child is
    /// reaped and its temporary files removed.
    pub async fn stop(mut self) {
        self.stop.cancel();
        if let Some(task) = self.task.take() {
            if let Err(e) = task.await {
                tracing::error!("the {} supervisor task failed: {e}", self.program);
            }
        }
    }

    /// The child's process id while it runs.
    pub fn pid(&self) -> Option<u32> {
        match self.shared.pid.load(Ordering::SeqCst) {
            0 => None,
            p => Some(p),
        }
    }

    /// The temporary file the current child was started with, if any.
    pub fn temp_path(&self) -> Option<PathBuf> {
        self.shared.temp_path.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

impl<S: Spec> Drop for Handle<S> {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// A reload waiting for the new child's outcome, with the spec to go back to.
struct PendingReload<S> {
    reply: oneshot::Sender<Result<bool, Error>>,
    previous: Option<Arc<S>>,
}

enum Wake<S> {
    Stop,
    Elapsed,
    Reloaded(PendingReload<S>),
}

enum End<S> {
    Stop,
    Crashed(String),
    Reload(PendingReload<S>),
}

struct Supervisor<S: Spec, O> {
    spec: Arc<S>,
    observer: O,
    stop: CancellationToken,
    cmds: mpsc::Receiver<Cmd<S>>,
    shared: Arc<Shared>,
    /// Restarts since the supervisor started.
    restarts: u32,
}

impl<S: Spec, O: Observer<S>> Supervisor<S, O> {
    fn report(&self, ev: Event<'_>) {
        self.observer.event(&self.spec, ev);
    }

    fn set_state(&self, state: ChildState) {
        self.report(Event::State(&state));
    }

    fn program(&self) -> String {
        self.spec.program().to_string()
    }

    async fn run(mut self) {
        // Until the current spec has been ready once, a failure is final (no restart loop on
        // a configuration the child rejects).
        let mut first = true;
        let mut attempt: u32 = 0;
        let mut pending: Option<PendingReload<S>> = None;
        'outer: loop {
            if self.stop.is_cancelled() {
                break;
            }
            let started = match self.spawn_child().await {
                Ok(mut run) => {
                    let stop = self.stop.clone();
                    let r = tokio::select! {
                        r = self.await_ready(&mut run) => Some(r),
                        _ = stop.cancelled() => None,
                    };
                    match r {
                        None => {
                            self.stop_child(run).await;
                            break 'outer;
                        }
                        Some(Ok(())) => Ok(run),
                        Some(Err(e)) => {
                            drop(run);
                            Err(e)
                        }
                    }
                }
                Err(e) => Err(e),
            };
            let mut run = match started {
                Ok(run) => run,
                Err(e) => {
                    self.clear_pid();
                    let msg = e.to_string();
                    if first {
                        if let Some(p) = pending.take() {
                            if let Some(old) = p.previous {
                                tracing::error!("the new {} configuration was rejected, going back to the previous one: {msg}", self.program());
                                let _ = p.reply.send(Err(e));
                                self.spec = old;
                                self.set_state(ChildState::Starting);
                                continue 'outer;
                            }
                            let _ = p.reply.send(Err(e));
                        }
                        tracing::error!("{msg}");
                        self.set_state(ChildState::Failed { error: msg.clone() });
                        // Stay down until a reload or the end.
                        match self.wait(None).await {
                            Wake::Stop => break 'outer,
                            Wake::Elapsed => continue 'outer,
                            Wake::Reloaded(p) => {
                                pending = Some(p);
                                attempt = 0;
                                self.set_state(ChildState::Starting);
                                continue 'outer;
                            }
                        }
                    }
                    match self.after_failure(&mut attempt, msg, false).await {
                        Wake::Stop => break 'outer,
                        Wake::Elapsed => continue 'outer,
                        Wake::Reloaded(p) => {
                            pending = Some(p);
                            first = true;
                            attempt = 0;
                            continue 'outer;
                        }
                    }
                }
            };

            let ready_at = Instant::now();
            run.ready_at = Some(ready_at);
            run.output.mark_ready(run.pid, self.spec.emit());
            tracing::info!(
                child_pid = run.pid,
                "{} is ready (pid {}, {} ms after start)",
                self.program(),
                run.pid,
                run.started.elapsed().as_millis()
            );
            self.set_state(ChildState::Ready);
            if let Some(p) = pending.take() {
                let _ = p.reply.send(Ok(true));
            }
            first = false;

            match self.watch(&mut run).await {
                End::Stop => {
                    self.stop_child(run).await;
                    break 'outer;
                }
                End::Reload(p) => {
                    tracing::info!("the {} configuration changed: restarting it", self.program());
                    self.set_state(ChildState::Starting);
                    self.stop_child(run).await;
                    pending = Some(p);
                    first = true;
                    attempt = 0;
                }
                End::Crashed(reason) => {
                    drop(run);
                    self.clear_pid();
                    if ready_at.elapsed() >= self.spec.limits().policy.reset_after {
                        attempt = 0;
                    }
                    match self.after_failure(&mut attempt, reason, true).await {
                        Wake::Stop => break 'outer,
                        Wake::Elapsed => {}
                        Wake::Reloaded(p) => {
                            pending = Some(p);
                            first = true;
                            attempt = 0;
                        }
                    }
                }
            }
        }
        self.clear_pid();
        self.set_state(ChildState::Stopped);
        tracing::info!("{} supervisor stopped", self.program());
    }

    /// Counts a failure, reports `Restarting`, and waits out the backoff.
    async fn after_failure(&mut self, attempt: &mut u32, reason: String, was_ready: bool) -> Wake<S> {
        *attempt += 1;
        let delay = self.spec.limits().policy.delay(*attempt);
        self.restarts += 1;
        let what = if was_ready { "crashed" } else { "failed again before it was ready" };
        tracing::warn!(
            "{} {what}: {reason}; restart {} (attempt {} in a row) in {} ms",
            self.program(),
            self.restarts,
            *attempt,
            delay.as_millis()
        );
        self.set_state(ChildState::Restarting { attempt: *attempt, last_error: reason });
        self.wait(Some(Instant::now() + delay)).await
    }

    fn clear_pid(&self) {
        self.spec.after_exit();
        self.shared.pid.store(0, Ordering::SeqCst);
        *self.shared.temp_path.lock().unwrap_or_else(|e| e.into_inner()) = None;
        self.report(Event::Exited);
    }

    /// Waits until `until` (forever with `None`), the end, or a reload with a new spec.
    async fn wait(&mut self, until: Option<Instant>) -> Wake<S> {
        let stop = self.stop.clone();
        loop {
            let sleep = async {
                match until {
                    Some(t) => tokio::time::sleep_until(t.into()).await,
                    None => std::future::pending().await,
                }
            };
            let cmd = tokio::select! {
                _ = stop.cancelled() => return Wake::Stop,
                _ = sleep => return Wake::Elapsed,
                cmd = self.cmds.recv() => cmd,
            };
            let Some(Cmd { spec, reply }) = cmd else { return Wake::Stop };
            // No child is running: the last one's ports are free again, so check them all.
            if let Err(e) = check_ports(spec.ports(), &[]) {
                let _ = reply.send(Err(e));
                continue;
            }
            let failed = until.is_none();
            if !failed && spec.same_child(&self.spec) {
                self.spec = Arc::new(*spec);
                let _ = reply.send(Ok(false));
                continue;
            }
            let old = std::mem::replace(&mut self.spec, Arc::new(*spec));
            // After a failed first start there is no known-good spec to go back to.
            let previous = (!failed).then_some(old);
            return Wake::Reloaded(PendingReload { reply, previous });
        }
    }

    async fn spawn_child(&self) -> Result<Running, Error> {
        let launch = self.spec.launch()?;
        let line = std::iter::once(launch.program.display().to_string())
            .chain(launch.args.iter().map(|a| a.to_string_lossy().into_owned()))
            .collect::<Vec<_>>()
            .join(" ");
        let temp = launch.temp.as_ref().map(|t| t.path().to_path_buf());
        let run = child::spawn(&self.spec, launch).await?;
        self.shared.pid.store(run.pid, Ordering::SeqCst);
        *self.shared.temp_path.lock().unwrap_or_else(|e| e.into_inner()) = temp;
        self.report(Event::Spawned(run.pid));
        tracing::info!(child_pid = run.pid, "started {} (pid {}): {line}", self.program(), run.pid);
        Ok(run)
    }

    /// Polls the probe (and waits for the ready message, if any) until both say ready; the
    /// child exiting first, or the deadline, is a failed start.
    async fn await_ready(&self, run: &mut Running) -> Result<(), Error> {
        let limits = self.spec.limits();
        let deadline = Instant::now() + limits.start_timeout;
        let mut tick = tokio::time::interval(limits.ready_poll);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                st = run.child.wait() => {
                    run.reaped = true;
                    let status = describe_exit(st);
                    run.drain().await;
                    return Err(self.start_error(run, status));
                }
                _ = tick.tick() => {}
            }
            let message_seen = self.spec.ready_message().is_none() || run.output.saw_ready_message.load(Ordering::SeqCst);
            if message_seen && self.spec.probe().await.is_ok() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                run.kill().await;
                run.drain().await;
                let last_output = run.output.failure_text().unwrap_or_default();
                run.output.flush_pending(run.pid, Level::ERROR, self.spec.emit());
                return Err(Error::StartTimeout {
                    program: self.program(),
                    ready_test: limits.ready_test,
                    key: limits.start_timeout_key,
                    timeout: limits.start_timeout,
                    last_output,
                });
            }
        }
    }

    /// The error for a child that exited before it was ready, from what it printed.
    fn start_error(&self, run: &Running, status: String) -> Error {
        run.output.flush_pending(run.pid, Level::ERROR, self.spec.emit());
        let message = run.output.failure_text().unwrap_or_else(|| "it printed no reason".to_string());
        self.spec.start_error(message, status)
    }

    /// Runs while the child is ready: exit, failed health checks, reloads and the end.
    async fn watch(&mut self, run: &mut Running) -> End<S> {
        let stop = self.stop.clone();
        let limits = self.spec.limits();
        let interval = limits.health_interval.max(Duration::from_millis(100));
        let mut tick = tokio::time::interval_at((Instant::now() + interval).into(), interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut failures = 0u32;
        loop {
            enum Ev<S> {
                Exit(std::io::Result<ExitStatus>),
                Stop,
                Tick,
                Cmd(Option<Cmd<S>>),
            }
            let ev = tokio::select! {
                st = run.child.wait() => Ev::Exit(st),
                _ = stop.cancelled() => Ev::Stop,
                _ = tick.tick() => Ev::Tick,
                cmd = self.cmds.recv() => Ev::Cmd(cmd),
            };
            match ev {
                Ev::Exit(st) => {
                    run.reaped = true;
                    let status = describe_exit(st);
                    // Helpers it left outside its group may hold its output open.
                    self.spec.after_exit();
                    run.drain().await;
                    let last = run.output.last_line();
                    return End::Crashed(match last {
                        Some(l) => format!("{status}; last output: {l}"),
                        None => status,
                    });
                }
                Ev::Stop | Ev::Cmd(None) => return End::Stop,
                Ev::Tick => match self.spec.probe().await {
                    Ok(()) => failures = 0,
                    Err(e) => {
                        failures += 1;
                        let limit = self.spec.limits().health_failures.max(1);
                        tracing::warn!(child_pid = run.pid, "{} health check failed ({failures}/{limit}): {e}", self.program());
                        if failures >= limit {
                            run.kill().await;
                            run.drain().await;
                            return End::Crashed(format!("stopped answering health checks ({failures} in a row, last: {e}); killed"));
                        }
                    }
                },
                Ev::Cmd(Some(Cmd { spec, reply })) => {
                    if spec.same_child(&self.spec) {
                        self.spec = Arc::new(*spec);
                        let _ = reply.send(Ok(false));
                        continue;
                    }
                    if let Err(e) = check_ports(spec.ports(), self.spec.ports()) {
                        let _ = reply.send(Err(e));
                        continue;
                    }
                    let old = std::mem::replace(&mut self.spec, Arc::new(*spec));
                    return End::Reload(PendingReload { reply, previous: Some(old) });
                }
            }
        }
    }

    /// The spec's stop sequence, then SIGKILL; reaps the child and removes its files.
    async fn stop_child(&self, mut run: Running) {
        let stop = self.spec.limits().stop;
        let grace = match run.ready_at {
            Some(at) => {
                if let Some(rest) = self.spec.limits().settle_after_ready.checked_sub(at.elapsed()) {
                    tokio::time::sleep(rest).await;
                }
                stop.grace
            }
            None => NOT_READY_GRACE.min(stop.grace),
        };
        if !run.reaped {
            match run.child.try_wait() {
                Ok(Some(_)) => run.reaped = true,
                _ => {
                    let t0 = Instant::now();
                    run.signal(stop.signal);
                    if !run.wait_for(grace).await {
                        let forced = match stop.force {
                            Some((sig, force_grace)) => {
                                tracing::warn!(
                                    child_pid = run.pid,
                                    "{} still running {} s after {} ({}): forcing it to stop",
                                    self.program(),
                                    grace.as_secs_f32(),
                                    stop.signal,
                                    stop.grace_key
                                );
                                run.signal(sig);
                                run.wait_for(force_grace).await
                            }
                            None => false,
                        };
                        if !forced {
                            tracing::warn!(child_pid = run.pid, "{} did not stop: SIGKILL", self.program());
                            run.kill().await;
                        }
                    }
                    tracing::info!(child_pid = run.pid, "{} stopped in {} ms", self.program(), t0.elapsed().as_millis());
                }
            }
        }
        run.sweep();
        self.spec.after_exit();
        run.drain().await;
        drop(run);
        self.clear_pid();
    }
}
