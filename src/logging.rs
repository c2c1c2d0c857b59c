//! Logs: journald with structured fields when systemd connected our stderr to the journal
//! (`JOURNAL_STREAM`), human-readable stderr otherwise (colours only on a terminal), or JSON on
//! request. The level comes from `BEDRUD_LOG` (a tracing filter) or `logging.level`.
//!
//! LiveKit's own JSON log lines carry fields of their own (`room`, `participant`, `portHttp`,
//! ...) whose names are only known at run time. They travel in one event field,
//! [`LIVEKIT_FIELDS`], as a JSON object, and every output here spreads them out again: `key=value`
//! in text, members of `fields` in JSON, and `LIVEKIT_<KEY>` journal fields.

use std::io::{IsTerminal, Write as _};
use std::os::unix::fs::MetadataExt;
use std::os::unix::net::UnixDatagram;

use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

use crate::config::LoggingConfig;

/// Event field holding a forwarded child's own fields as a JSON object.
pub const LIVEKIT_FIELDS: &str = "lk_fields";
/// journald's native socket.
const JOURNAL_SOCKET: &str = "/run/systemd/journal/socket";

/// True when stderr is the journal stream systemd announced.
fn stderr_is_journal() -> bool {
    let Some(v) = std::env::var_os("JOURNAL_STREAM") else { return false };
    let v = v.to_string_lossy();
    let Some((dev, ino)) = v.split_once(':') else { return false };
    let Ok(meta) = std::fs::metadata("/proc/self/fd/2") else { return false };
    dev.parse::<u64>().ok() == Some(meta.dev()) && ino.parse::<u64>().ok() == Some(meta.ino())
}

/// Colour codes only for a person at a terminal (and not when `NO_COLOR` is set).
fn ansi() -> bool {
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// Installs the global subscriber. Call once.
pub fn init(cfg: &LoggingConfig) {
    let filter = std::env::var("BEDRUD_LOG")
        .ok()
        .and_then(|f| EnvFilter::try_new(f).ok())
        .unwrap_or_else(|| EnvFilter::try_new(&cfg.level).unwrap_or_else(|_| EnvFilter::new("info")));
    let format = match cfg.format.as_str() {
        "auto" if stderr_is_journal() => "journald",
        "auto" => "text",
        f => f,
    };
    let registry = tracing_subscriber::registry().with(filter);
    let text = || tracing_subscriber::fmt::layer().with_writer(std::io::stderr).with_ansi(ansi()).fmt_fields(TextFields);
    match format {
        "journald" => match Journald::connect() {
            Ok(layer) => registry.with(layer).init(),
            Err(e) => {
                registry.with(text()).init();
                tracing::warn!(error = %e, "journald is not reachable; logging to stderr");
            }
        },
        "json" => registry.with(tracing_subscriber::fmt::layer().with_writer(std::io::stderr).event_format(JsonLines)).init(),
        _ => registry.with(text()).init(),
    }
}

/// An event's fields, in order, as JSON values; [`LIVEKIT_FIELDS`] spread out.
#[derive(Default)]
struct Collect(Map<String, Value>);

impl Collect {
    fn of(event: &Event<'_>) -> Map<String, Value> {
        let mut c = Collect::default();
        event.record(&mut c);
        c.0
    }

    fn put(&mut self, name: &str, v: Value) {
        if name == LIVEKIT_FIELDS {
            if let Value::String(s) = &v {
                if let Ok(Value::Object(m)) = serde_json::from_str::<Value>(s) {
                    for (k, v) in m {
                        // A child's field never hides one of ours.
                        let k = if self.0.contains_key(&k) { format!("livekit_{k}") } else { k };
                        self.0.insert(k, v);
                    }
                    return;
                }
            }
        }
        self.0.insert(name.to_string(), v);
    }
}

impl Visit for Collect {
    fn record_str(&mut self, f: &Field, v: &str) {
        self.put(f.name(), Value::String(v.to_string()));
    }
    fn record_u64(&mut self, f: &Field, v: u64) {
        self.put(f.name(), Value::from(v));
    }
    fn record_i64(&mut self, f: &Field, v: i64) {
        self.put(f.name(), Value::from(v));
    }
    fn record_bool(&mut self, f: &Field, v: bool) {
        self.put(f.name(), Value::from(v));
    }
    fn record_f64(&mut self, f: &Field, v: f64) {
        self.put(f.name(), Value::from(v));
    }
    fn record_error(&mut self, f: &Field, v: &(dyn std::error::Error + 'static)) {
        self.put(f.name(), Value::String(v.to_string()));
    }
    fn record_debug(&mut self, f: &Field, v: &dyn std::fmt::Debug) {
        self.put(f.name(), Value::String(format!("{v:?}")));
    }
}

/// A value as text: strings bare unless they need quotes, everything else as JSON.
fn plain(v: &Value) -> String {
    match v {
        Value::String(s) if !s.is_empty() && !s.contains(|c: char| c.is_whitespace() || c == '"' || c == '=') => s.clone(),
        other => other.to_string(),
    }
}

/// Text output: `message key=value ...`, with a child's JSON fields as `key=value` too.
struct TextFields;

impl<'w> FormatFields<'w> for TextFields {
    fn format_fields<R: tracing_subscriber::field::RecordFields>(&self, mut w: Writer<'w>, fields: R) -> std::fmt::Result {
        let mut c = Collect::default();
        fields.record(&mut c);
        let mut first = true;
        if let Some(Value::String(m)) = c.0.remove("message") {
            w.write_str(&m)?;
            first = false;
        }
        for (k, v) in &c.0 {
            if !first {
                w.write_char(' ')?;
            }
            first = false;
            write!(w, "{k}={}", plain(v))?;
        }
        Ok(())
    }
}

/// One JSON object per line: `timestamp`, `level`, `fields` (message and every field, a
/// child's spread out), `target`.
struct JsonLines;

impl<S, N> FormatEvent<S, N> for JsonLines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(&self, _ctx: &FmtContext<'_, S, N>, mut w: Writer<'_>, event: &Event<'_>) -> std::fmt::Result {
        let meta = event.metadata();
        let ts = time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default();
        let line = serde_json::json!({
            "timestamp": ts,
            "level": meta.level().as_str(),
            "fields": Value::Object(Collect::of(event)),
            "target": meta.target(),
        });
        writeln!(w, "{line}")
    }
}

/// Sends events to journald's native socket: `MESSAGE`, `PRIORITY`, `SYSLOG_IDENTIFIER=bedrud`,
/// `TARGET`, `CODE_FILE`/`CODE_LINE`, every field upper-cased (`SOURCE`, `LIVEKIT_PID`, ...) and a
/// child's own fields as `LIVEKIT_<KEY>` (`portHttp` -> `LIVEKIT_PORT_HTTP`).
struct Journald {
    socket: UnixDatagram,
}

impl Journald {
    fn connect() -> std::io::Result<Self> {
        let socket = UnixDatagram::unbound()?;
        socket.connect(JOURNAL_SOCKET)?;
        Ok(Self { socket })
    }
}

/// journald's field name for `name`: upper case, `[A-Z0-9_]`, not starting with `_` or a digit,
/// camelCase split into words; `prefix` in front.
pub fn journal_name(prefix: &str, name: &str) -> String {
    let mut out = String::from(prefix);
    let mut prev_lower = false;
    for c in name.chars() {
        if c.is_ascii_uppercase() && prev_lower {
            out.push('_');
        }
        prev_lower = c.is_ascii_lowercase() || c.is_ascii_digit();
        out.push(if c.is_ascii_alphanumeric() { c.to_ascii_uppercase() } else { '_' });
    }
    let trimmed = out.trim_start_matches(|c: char| c == '_' || c.is_ascii_digit()).to_string();
    let mut name = if trimmed.is_empty() { "FIELD".to_string() } else { trimmed };
    name.truncate(64);
    name
}

/// Appends one journal field; values with a newline use the binary-safe form.
fn journal_field(buf: &mut Vec<u8>, name: &str, value: &str) {
    if value.contains('\n') {
        buf.extend_from_slice(name.as_bytes());
        buf.push(b'\n');
        buf.extend_from_slice(&(value.len() as u64).to_le_bytes());
        buf.extend_from_slice(value.as_bytes());
        buf.push(b'\n');
    } else {
        buf.extend_from_slice(name.as_bytes());
        buf.push(b'=');
        buf.extend_from_slice(value.as_bytes());
        buf.push(b'\n');
    }
}

/// The journal datagram for one event.
fn journal_payload(level: &Level, target: &str, file: Option<&str>, line: Option<u32>, fields: Vec<(String, Value)>, max_message: usize) -> Vec<u8> {
    let priority = match *level {
        Level::ERROR => "3",
        Level::WARN => "4",
        Level::INFO => "6",
        _ => "7",
    };
    let mut buf = Vec::with_capacity(256);
    journal_field(&mut buf, "PRIORITY", priority);
    journal_field(&mut buf, "SYSLOG_IDENTIFIER", "bedrud");
    journal_field(&mut buf, "TARGET", target);
    if let Some(f) = file {
        journal_field(&mut buf, "CODE_FILE", f);
    }
    if let Some(l) = line {
        journal_field(&mut buf, "CODE_LINE", &l.to_string());
    }
    for (name, v) in fields {
        let text = match v {
            Value::String(s) => s,
            other => other.to_string(),
        };
        if name == "message" {
            let mut m = text;
            if m.len() > max_message {
                let mut cut = max_message;
                while !m.is_char_boundary(cut) {
                    cut -= 1;
                }
                m.truncate(cut);
            }
            journal_field(&mut buf, "MESSAGE", &m);
        } else {
            journal_field(&mut buf, &name, &text);
        }
    }
    buf
}

impl<S: Subscriber> Layer<S> for Journald {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let meta = event.metadata();
        // Own fields keep their names upper-cased; a child's get the LIVEKIT_ prefix.
        let mut own = Collect::default();
        let mut child = Map::new();
        struct Split<'a>(&'a mut Collect, &'a mut Map<String, Value>);
        impl Visit for Split<'_> {
            fn record_str(&mut self, f: &Field, v: &str) {
                if f.name() == LIVEKIT_FIELDS {
                    if let Ok(Value::Object(m)) = serde_json::from_str::<Value>(v) {
                        self.1.extend(m);
                        return;
                    }
                }
                self.0.record_str(f, v);
            }
            fn record_u64(&mut self, f: &Field, v: u64) {
                self.0.record_u64(f, v);
            }
            fn record_i64(&mut self, f: &Field, v: i64) {
                self.0.record_i64(f, v);
            }
            fn record_bool(&mut self, f: &Field, v: bool) {
                self.0.record_bool(f, v);
            }
            fn record_debug(&mut self, f: &Field, v: &dyn std::fmt::Debug) {
                self.0.record_debug(f, v);
            }
        }
        event.record(&mut Split(&mut own, &mut child));
        let mut fields: Vec<(String, Value)> = own
            .0
            .into_iter()
            .map(|(k, v)| if k == "message" { (k, v) } else { (journal_name("", &k), v) })
            .collect();
        fields.extend(child.into_iter().map(|(k, v)| (journal_name("LIVEKIT_", &k), v)));
        let payload = journal_payload(meta.level(), meta.target(), meta.file(), meta.line(), fields.clone(), 48 * 1024);
        if let Err(e) = self.socket.send(&payload) {
            // Too large for one datagram: send it again with a shorter message.
            if e.raw_os_error() == Some(nix::libc::EMSGSIZE) {
                let small = journal_payload(meta.level(), meta.target(), meta.file(), meta.line(), fields, 4096);
                let _ = self.socket.send(&small);
            } else {
                let _ = writeln!(std::io::stderr(), "bedrud: cannot write to the journal: {e}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn journal_names() {
        assert_eq!(journal_name("", "livekit_pid"), "LIVEKIT_PID");
        assert_eq!(journal_name("LIVEKIT_", "portHttp"), "LIVEKIT_PORT_HTTP");
        assert_eq!(journal_name("LIVEKIT_", "pID"), "LIVEKIT_P_ID");
        assert_eq!(journal_name("LIVEKIT_", "roomID"), "LIVEKIT_ROOM_ID");
        assert_eq!(journal_name("", "_x.y"), "X_Y");
        assert_eq!(journal_name("", "9"), "FIELD");
    }

    #[test]
    fn journal_payload_is_binary_safe() {
        let p = journal_payload(
            &Level::WARN,
            "livekit",
            None,
            None,
            vec![("message".into(), Value::String("two\nlines".into())), ("LIVEKIT_PORT_HTTP".into(), Value::from(7880))],
            100,
        );
        let mut expected = b"PRIORITY=4\nSYSLOG_IDENTIFIER=bedrud\nTARGET=livekit\nMESSAGE\n".to_vec();
        expected.extend_from_slice(&9u64.to_le_bytes());
        expected.extend_from_slice(b"two\nlines\nLIVEKIT_PORT_HTTP=7880\n");
        assert_eq!(p, expected);
    }

    #[test]
    fn child_fields_are_spread_out() {
        let mut c = Collect::default();
        c.put("message", Value::String("x".into()));
        c.put(LIVEKIT_FIELDS, Value::String(r#"{"portHttp":7880,"message":"shadow"}"#.into()));
        assert_eq!(c.0["portHttp"], 7880);
        assert_eq!(c.0["message"], "x");
        assert_eq!(c.0["livekit_message"], "shadow");
        assert_eq!(plain(&Value::String("a b".into())), "\"a b\"");
        assert_eq!(plain(&Value::String("ab".into())), "ab");
    }
}
