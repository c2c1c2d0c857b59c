//! A child's stdout and stderr, read line by line into the log with the child's own level.
//! Lines printed on stdout before the child is ready are held back: several programs print
//! their fatal error there (livekit-server even exits 0), and that text is the reason shown.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tracing::Level;

use super::Spec;

/// Stdout lines kept while the child is not ready yet (the fatal message is among them).
const MAX_PENDING: usize = 200;
const MAX_LINE: usize = 64 * 1024;
const TAIL: usize = 20;

/// One parsed log line: level, message, and the other fields as compact JSON.
pub type Parsed = (Level, String, Option<String>);

/// Writes one forwarded line: level, child pid, message, extra fields.
pub type Emit = fn(Level, u32, &str, Option<&str>);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Stream {
    Stdout,
    Stderr,
}

/// What the child printed that matters for error messages.
#[derive(Debug, Default)]
pub(super) struct Output {
    inner: Mutex<OutputInner>,
    /// The spec's ready message was seen.
    pub saw_ready_message: AtomicBool,
}

#[derive(Debug, Default)]
struct OutputInner {
    ready: bool,
    /// Plain stdout lines printed before readiness: the fatal error, if any.
    pending: Vec<String>,
    /// The last error-level log message.
    last_error: Option<String>,
    /// The last lines of any kind.
    tail: VecDeque<String>,
}

impl Output {
    fn lock(&self) -> std::sync::MutexGuard<'_, OutputInner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn mark_ready(&self, pid: u32, emit: Emit) {
        self.flush_pending(pid, Level::INFO, emit);
        self.lock().ready = true;
    }

    /// Logs the held-back stdout lines at `level`.
    pub fn flush_pending(&self, pid: u32, level: Level, emit: Emit) {
        let lines = std::mem::take(&mut self.lock().pending);
        for l in &lines {
            emit(level, pid, l, None);
        }
        self.lock().pending = lines;
    }

    fn fatal_line(g: &OutputInner) -> Option<String> {
        g.tail.iter().find(|l| l.starts_with("panic:") || l.starts_with("fatal error:")).cloned()
    }

    /// The reason to show for a failed start: the held-back stdout, else the last error, else
    /// a Go panic, else the last line.
    pub fn failure_text(&self) -> Option<String> {
        let g = self.lock();
        if !g.pending.is_empty() {
            return Some(g.pending.join("\n"));
        }
        if let Some(e) = &g.last_error {
            return Some(e.clone());
        }
        Self::fatal_line(&g).or_else(|| g.tail.back().cloned())
    }

    pub fn last_line(&self) -> Option<String> {
        let g = self.lock();
        Self::fatal_line(&g).or_else(|| g.tail.back().cloned())
    }

    fn push_tail(g: &mut OutputInner, line: &str) {
        if g.tail.len() >= TAIL {
            g.tail.pop_front();
        }
        g.tail.push_back(line.to_string());
    }
}

pub(super) async fn read_lines<R: AsyncRead + Unpin, S: Spec>(stream: R, kind: Stream, pid: u32, output: Arc<Output>, spec: Arc<S>) {
    let mut reader = BufReader::new(stream);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        match reader.read_until(b'\n', &mut buf).await {
            Ok(0) => break,
            Ok(_) => {
                if buf.len() > MAX_LINE {
                    buf.truncate(MAX_LINE);
                }
                let line = String::from_utf8_lossy(&buf);
                handle_line(line.trim_end(), kind, pid, &output, &*spec);
            }
            Err(e) => {
                tracing::debug!(child_pid = pid, "reading the output of {}: {e}", spec.program());
                break;
            }
        }
    }
}

fn handle_line<S: Spec>(line: &str, kind: Stream, pid: u32, output: &Output, spec: &S) {
    if line.trim().is_empty() {
        return;
    }
    let emit = spec.emit();
    if let Some((level, msg, fields)) = spec.parse_line(line) {
        if spec.ready_message().is_some_and(|m| msg.contains(m)) {
            output.saw_ready_message.store(true, Ordering::SeqCst);
        }
        {
            let mut g = output.lock();
            let text = match &fields {
                Some(f) => format!("{msg} {f}"),
                None => msg.clone(),
            };
            if level == Level::ERROR {
                g.last_error = Some(text.clone());
            }
            Output::push_tail(&mut g, &text);
        }
        emit(level, pid, &msg, fields.as_deref());
        return;
    }
    let log_now = {
        let mut g = output.lock();
        Output::push_tail(&mut g, line);
        match kind {
            Stream::Stdout if !g.ready => {
                if g.pending.len() < MAX_PENDING {
                    g.pending.push(line.to_string());
                }
                None
            }
            Stream::Stdout => Some(Level::INFO),
            Stream::Stderr => Some(Level::WARN),
        }
    };
    if let Some(level) = log_now {
        emit(level, pid, line, None);
    }
}

/// A zap JSON log line (LiveKit's programs): level, msg, and the other fields (minus `ts` and
/// `logger`) as compact JSON.
pub fn parse_zap_json(line: &str) -> Option<Parsed> {
    if !line.starts_with('{') {
        return None;
    }
    let mut map: serde_json::Map<String, serde_json::Value> = serde_json::from_str(line).ok()?;
    let level = map.remove("level")?;
    let mut level = level_of(level.as_str()?);
    let msg = match map.remove("msg") {
        Some(serde_json::Value::String(s)) => s,
        Some(other) => other.to_string(),
        None => String::new(),
    };
    map.remove("ts");
    // One line per API request (LiveKit's logger `livekit.api`: the reconciler's ListRooms every
    // minute) is detail, not news.
    if map.remove("logger").is_some_and(|l| l.as_str().is_some_and(|l| l.ends_with(".api"))) && level == Level::INFO {
        level = Level::DEBUG;
    }
    let fields = (!map.is_empty()).then(|| serde_json::Value::Object(map).to_string());
    Some((level, msg, fields))
}

/// zap's console format, used before a program's logging config applies:
/// `2026-01-01T00:00:00.000Z\tINFO\tlogger\tcaller\tmessage`.
pub fn parse_zap_console(line: &str) -> Option<Parsed> {
    let mut parts = line.split('\t');
    let ts = parts.next()?;
    if !ts.starts_with(|c: char| c.is_ascii_digit()) {
        return None;
    }
    let level = parts.next()?;
    if !matches!(level, "DEBUG" | "INFO" | "WARN" | "ERROR" | "DPANIC" | "PANIC" | "FATAL") {
        return None;
    }
    let rest: Vec<&str> = parts.collect();
    Some((level_of(level), rest.join(" "), None))
}

/// A level name as zap and most programs write it.
pub fn level_of(s: &str) -> Level {
    match s.to_ascii_lowercase().as_str() {
        "debug" => Level::DEBUG,
        "warn" | "warning" => Level::WARN,
        "error" | "dpanic" | "panic" | "fatal" => Level::ERROR,
        _ => Level::INFO,
    }
}

/// A child that is never started: its output handling alone, for the fuzzer and the tests.
struct Quiet;

fn no_emit(_: Level, _: u32, _: &str, _: Option<&str>) {}

impl Spec for Quiet {
    fn program(&self) -> &str {
        "quiet"
    }
    fn launch(&self) -> Result<super::Launch, super::Error> {
        Err(super::Error::Config("this child is never started".into()))
    }
    async fn probe(&self) -> Result<(), String> {
        Ok(())
    }
    fn limits(&self) -> super::Limits {
        unreachable!("this child is never started")
    }
    fn same_child(&self, _: &Self) -> bool {
        true
    }
    fn emit(&self) -> Emit {
        no_emit
    }
}

/// For the fuzzer (`crate::fuzzing::livekit_log`): a child's output as raw bytes, split and
/// cut into lines as [`read_lines`] does, each handled as a line of a child that becomes ready
/// after its fourth line (odd lines as stderr). Panics when the handling breaks its own rules:
/// fields that are not a JSON object, a console message with a tab, unbounded buffers.
#[doc(hidden)]
pub fn fuzz_output(data: &[u8]) {
    let output = Output::default();
    for (i, raw) in data.split(|&b| b == b'\n').enumerate() {
        let raw = &raw[..raw.len().min(MAX_LINE)];
        let line = String::from_utf8_lossy(raw);
        let line = line.trim_end();
        if let Some((_, _, Some(fields))) = parse_zap_json(line) {
            let v: serde_json::Value = serde_json::from_str(&fields).expect("fields are JSON");
            assert!(v.is_object(), "fields are an object: {fields}");
        }
        if let Some((_, msg, _)) = parse_zap_console(line) {
            assert!(!msg.contains('\t'), "console message keeps a tab: {msg:?}");
        }
        handle_line(line, if i % 2 == 0 { Stream::Stdout } else { Stream::Stderr }, 1, &output, &Quiet);
        if i == 3 {
            output.mark_ready(1, no_emit);
        }
    }
    let _ = output.failure_text();
    let _ = output.last_line();
    let g = output.lock();
    assert!(g.tail.len() <= TAIL && g.pending.len() <= MAX_PENDING);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failure_text_prefers_stdout() {
        let o = Output::default();
        handle_line(r#"{"level":"info","msg":"hello"}"#, Stream::Stderr, 1, &o, &Quiet);
        assert_eq!(o.failure_text().as_deref(), Some("hello"));
        handle_line(r#"{"level":"error","msg":"bad thing"}"#, Stream::Stderr, 1, &o, &Quiet);
        assert_eq!(o.failure_text().as_deref(), Some("bad thing"));
        handle_line("could not parse config: yaml: unmarshal errors:", Stream::Stdout, 1, &o, &Quiet);
        handle_line("  line 4: field bogus not found in type config.Config", Stream::Stdout, 1, &o, &Quiet);
        assert_eq!(
            o.failure_text().as_deref(),
            Some("could not parse config: yaml: unmarshal errors:\n  line 4: field bogus not found in type config.Config")
        );
    }

    #[test]
    fn json_and_console_lines() {
        let (l, m, f) = parse_zap_json(
            r#"{"level":"info","ts":1.5,"logger":"livekit","caller":"service/server.go:292","msg":"starting LiveKit server","portHttp":7880}"#,
        )
        .unwrap();
        assert_eq!(l, Level::INFO);
        assert_eq!(m, "starting LiveKit server");
        let f = f.unwrap();
        assert!(f.contains("\"portHttp\":7880") && f.contains("caller") && !f.contains("ts"), "{f}");
        assert_eq!(parse_zap_json(r#"{"level":"error","msg":"x"}"#).unwrap().0, Level::ERROR);
        let (l, m, _) = parse_zap_json(r#"{"level":"info","logger":"livekit.api","msg":"API RoomService.ListRooms","status":"200"}"#).unwrap();
        assert_eq!((l, m.as_str()), (Level::DEBUG, "API RoomService.ListRooms"));
        assert!(parse_zap_json("could not parse config").is_none());
        let (l, m, _) = parse_zap_console("2026-11-24T02:27:58.617Z\tWARN\tlivekit\trouting/x.go:1\tsomething odd").unwrap();
        assert_eq!(l, Level::WARN);
        assert!(m.ends_with("something odd"));
        assert!(parse_zap_console("TURN domain required").is_none());
    }
}
