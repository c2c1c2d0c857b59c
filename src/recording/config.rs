//! `recording.*` and `redis.*`: whether rooms can be recorded, where files go, and the Redis
//! that LiveKit and its egress workers share.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// `recording:` — room recording through LiveKit Egress.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct RecordingConfig {
    /// Record rooms. Embedded mode then also runs redis-server (unless `redis.address` is set),
    /// pulseaudio and an egress worker; external mode uses the cluster's egress workers.
    pub enabled: bool,
    /// Where embedded recordings are written; default `<state directory>/recordings`.
    pub dir: Option<PathBuf>,
    /// The egress executable (else `$BEDRUD_EGRESS_BINARY`, `/usr/lib/bedrud/egress`, PATH).
    pub egress_binary: Option<PathBuf>,
    /// The embedded egress worker's health port (loopback probes) and the port of the page it
    /// records (served on localhost).
    pub health_port: u16,
    pub template_port: u16,
    /// CPU cores the worker counts for one room-composite recording; it refuses a recording
    /// when the machine has fewer free (egress's own default is 4).
    pub cpu_cost: f64,
    /// Layout of the recorded page when a request names none: `grid`, `speaker`, `single-speaker`.
    pub layout: String,
    /// Time the worker (and pulseaudio) may take to become ready.
    #[serde(with = "humantime_serde")]
    pub start_timeout: Duration,
    /// Grace for the worker to finish recordings when bedrud stops.
    #[serde(with = "humantime_serde")]
    pub stop_timeout: Duration,
    /// Upload recordings to S3-compatible storage instead of a local file (required with an
    /// external LiveKit: a worker elsewhere cannot write into bedrud's directory).
    pub s3: Option<S3Config>,
}

/// `recording.s3` — the bucket egress workers upload to.
#[derive(Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct S3Config {
    /// e.g. `https://s3.eu-central-1.amazonaws.com` or a MinIO URL; empty: AWS by region.
    pub endpoint: Option<String>,
    pub bucket: String,
    pub region: String,
    pub access_key: String,
    pub secret: Option<String>,
    /// Read the secret from this file (refused if other users can read it).
    pub secret_file: Option<PathBuf>,
    /// `https://endpoint/bucket/key` instead of `https://bucket.endpoint/key` (MinIO, moto).
    pub force_path_style: bool,
    /// Prefix of the object keys, e.g. `recordings/`.
    pub prefix: String,
}

impl std::fmt::Debug for S3Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Config")
            .field("endpoint", &self.endpoint)
            .field("bucket", &self.bucket)
            .field("region", &self.region)
            .field("access_key", &self.access_key)
            .field("secret", &self.secret.as_ref().map(|_| "<redacted>"))
            .field("force_path_style", &self.force_path_style)
            .field("prefix", &self.prefix)
            .finish()
    }
}

/// `redis:` — the Redis LiveKit and egress share.
#[derive(Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct RedisConfig {
    /// `host:port` of an existing Redis. Embedded mode: LiveKit and egress use it (unset with
    /// recording on: bedrud runs redis-server itself on 127.0.0.1:`port`). External mode: the
    /// cluster's Redis, read to tell which LiveKit nodes are alive.
    pub address: Option<String>,
    /// Password of that Redis (the embedded one gets a generated password).
    pub password: Option<String>,
    /// Port of the embedded redis-server (loopback only).
    pub port: u16,
    /// redis-server executable (else `$BEDRUD_REDIS_BINARY`, `redis-server` on PATH).
    pub binary: Option<PathBuf>,
}

impl std::fmt::Debug for RedisConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisConfig")
            .field("address", &self.address)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("port", &self.port)
            .field("binary", &self.binary)
            .finish()
    }
}

impl Default for RecordingConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            dir: None,
            egress_binary: None,
            health_port: 7884,
            template_port: 7885,
            cpu_cost: 1.0,
            layout: "grid".into(),
            start_timeout: Duration::from_secs(60),
            stop_timeout: Duration::from_secs(10),
            s3: None,
        }
    }
}

impl Default for RedisConfig {
    fn default() -> Self {
        Self { address: None, password: None, port: 7883, binary: None }
    }
}

/// Layouts of LiveKit's room-composite page.
pub const LAYOUTS: [&str; 3] = ["grid", "speaker", "single-speaker"];

/// One problem with these sections: the key and what is wrong (config.rs places it).
pub struct Problem {
    pub key: &'static str,
    pub message: String,
    pub hint: Option<String>,
}

fn problem(key: &'static str, message: impl Into<String>, hint: Option<&str>) -> Problem {
    Problem { key, message: message.into(), hint: hint.map(str::to_string) }
}

/// Checks `recording.*` and `redis.*`; `external` is LiveKit's mode.
pub fn validate(rec: &RecordingConfig, redis: &RedisConfig, external: bool) -> Result<(), Problem> {
    for (key, port) in [("recording.healthPort", rec.health_port), ("recording.templatePort", rec.template_port), ("redis.port", redis.port)] {
        if port == 0 {
            return Err(problem(key, "invalid value 0: a port must be 1-65535", None));
        }
    }
    if !LAYOUTS.contains(&rec.layout.as_str()) {
        return Err(problem("recording.layout", format!("invalid value {:?}", rec.layout), Some("one of grid, speaker, single-speaker")));
    }
    if !(rec.cpu_cost > 0.0 && rec.cpu_cost <= 64.0) {
        return Err(problem("recording.cpuCost", format!("invalid value {}: must be more than 0 and at most 64", rec.cpu_cost), None));
    }
    if let Some(a) = &redis.address {
        let ok = a.rsplit_once(':').is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok_and(|p| p > 0));
        if !ok {
            return Err(problem("redis.address", format!("invalid value {a:?}: expected host:port"), Some("e.g. 127.0.0.1:6379 or redis.internal:6379")));
        }
    }
    if let Some(s3) = &rec.s3 {
        if s3.bucket.is_empty() {
            return Err(problem("recording.s3.bucket", "required when recording.s3 is set", None));
        }
        if s3.access_key.is_empty() {
            return Err(problem("recording.s3.accessKey", "required when recording.s3 is set", None));
        }
        if s3.secret.is_none() {
            return Err(problem("recording.s3.secret", "required when recording.s3 is set", Some("set recording.s3.secret or recording.s3.secretFile")));
        }
        if s3.region.is_empty() && s3.endpoint.is_none() {
            return Err(problem("recording.s3.region", "required when recording.s3.endpoint is not set", None));
        }
        if let Some(e) = &s3.endpoint {
            if !(e.starts_with("http://") || e.starts_with("https://")) {
                return Err(problem("recording.s3.endpoint", format!("invalid value {e:?}: must start with http:// or https://"), None));
            }
        }
    }
    if rec.enabled && external && rec.s3.is_none() {
        return Err(problem(
            "recording.s3",
            "required for recording with an external LiveKit",
            Some("egress workers run elsewhere and cannot write into bedrud's directory: give them a bucket (recording.s3)"),
        ));
    }
    Ok(())
}
