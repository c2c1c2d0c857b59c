//! Logs: journald with structured fields when systemd connected our stderr to the journal
//! (`JOURNAL_STREAM`), human-readable stderr otherwise, or JSON on request. The level comes from
//! `BEDRUD_LOG` (a tracing filter) or `logging.level`.

use std::os::unix::fs::MetadataExt;

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::EnvFilter;

use crate::config::LoggingConfig;

/// True when stderr is the journal stream systemd announced.
fn stderr_is_journal() -> bool {
    let Some(v) = std::env::var_os("JOURNAL_STREAM") else { return false };
    let v = v.to_string_lossy();
    let Some((dev, ino)) = v.split_once(':') else { return false };
    let Ok(meta) = std::fs::metadata("/proc/self/fd/2") else { return false };
    dev.parse::<u64>().ok() == Some(meta.dev()) && ino.parse::<u64>().ok() == Some(meta.ino())
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
    match format {
        "journald" => match tracing_journald::layer() {
            Ok(layer) => registry.with(layer.with_syslog_identifier("bedrud".into()).with_field_prefix(None)).init(),
            Err(e) => {
                registry.with(tracing_subscriber::fmt::layer().with_writer(std::io::stderr)).init();
                tracing::warn!(error = %e, "journald is not reachable; logging to stderr");
            }
        },
        "json" => registry.with(tracing_subscriber::fmt::layer().json().with_writer(std::io::stderr)).init(),
        _ => registry.with(tracing_subscriber::fmt::layer().with_writer(std::io::stderr)).init(),
    }
}
