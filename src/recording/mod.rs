//! Recording rooms through LiveKit Egress (RoomCompositeEgress to an MP4, or OGG for audio
//! only): the requests, the records, whether recording is available and why not, and in
//! embedded mode the helpers it needs as children (redis-server, pulseaudio, egress).
//!
//! A recording is asked for with a token granting `roomRecord` on the room. Its record moves
//! with LiveKit's `egress_*` webhooks, a periodic look at LiveKit's egress listing (lost
//! webhooks), and the supervisor (a worker that dies takes its recordings with it).

pub mod children;
pub mod config;
pub mod record;
pub mod s3;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use livekit_protocol as proto;
use serde::Serialize;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use self::children::{Dirs, EgressSpec, PulseSpec, RedisSpec};
use self::record::Recording;
use crate::config::Config;
use crate::error::ApiError;
use crate::livekit::client::{LivekitError, RoomClient};
use crate::livekit::configgen::RedisConn;
use crate::livekit::reconciler::ReconcileError;
use crate::livekit::status::LivekitStatus;
use crate::livekit::ApiKeys;
use crate::store::{self, now_ms, Store, StoreError, User};
use crate::supervise::{self, ChildState, ChildStatus, Event, Handle, Observer};

/// How long a presigned download URL stays valid.
const DOWNLOAD_URL_TTL: Duration = Duration::from_secs(900);
/// A recording LiveKit no longer lists is given up after this long without news.
const LOST_AFTER: Duration = Duration::from_secs(60);

/// Recording's side of the daemon: the records, the Egress API, and the state of the
/// embedded helpers.
pub struct Recorder {
    store: Store,
    client: RoomClient,
    http: reqwest::Client,
    pub redis: Arc<watch::Sender<ChildStatus>>,
    pub pulse: Arc<watch::Sender<ChildStatus>>,
    pub egress: Arc<watch::Sender<ChildStatus>>,
}

/// Whether a recording can be started now, and why not; with the helpers' states.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Availability {
    pub enabled: bool,
    pub available: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub why: Option<String>,
    /// The helpers bedrud runs in embedded mode (absent in external mode, and Redis when
    /// `redis.address` names one).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<HelperStatus>)]
    pub redis: Option<ChildStatus>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<HelperStatus>)]
    pub pulseaudio: Option<ChildStatus>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<HelperStatus>)]
    pub egress: Option<ChildStatus>,
}

// How a `ChildStatus` is serialized (its state flattened into it), described for the API
// document; never built.
/// A helper process bedrud supervises.
#[allow(dead_code)]
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
struct HelperStatus {
    state: HelperState,
    /// With `restarting`: the number of the next start.
    #[serde(skip_serializing_if = "Option::is_none")]
    attempt: Option<u32>,
    /// With `restarting`: why it restarts.
    #[serde(rename = "last_error", skip_serializing_if = "Option::is_none")]
    restart_error: Option<String>,
    /// With `failed`: why it was given up.
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    pid: Option<u32>,
    /// Restarts since bedrud started.
    restarts: u32,
    last_error: Option<String>,
    /// Times it became ready (the first start counts).
    ready_count: u64,
}

#[allow(dead_code)]
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
enum HelperState {
    Starting,
    Ready,
    Restarting,
    Failed,
    Stopped,
}

impl Availability {
    /// `; recording ready` / `; recording unavailable: …` for systemd's STATUS line.
    pub fn status_note(&self) -> String {
        match (&self.enabled, &self.why) {
            (false, _) => String::new(),
            (true, None) => "; recording ready".into(),
            (true, Some(why)) => format!("; recording unavailable: {why}"),
        }
    }
}

fn unavailable(why: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "recording_unavailable", format!("recording is not available: {}", why.into()))
}

/// The Redis an embedded LiveKit is configured with when recording is on: `redis.address`, or
/// the redis-server bedrud runs (whose password is generated and kept in the store; shown here
/// as a placeholder).
pub fn planned_redis(cfg: &Config) -> Option<RedisConn> {
    if !cfg.recording.enabled || cfg.livekit.is_external() {
        return None;
    }
    Some(match &cfg.redis.address {
        Some(address) => RedisConn { address: address.clone(), password: cfg.redis.password.clone() },
        None => RedisConn { address: format!("127.0.0.1:{}", cfg.redis.port), password: Some("<generated by bedrud, kept in its store>".into()) },
    })
}

/// Where embedded recordings go: `recording.dir`, else `recordings/` beside the database.
pub fn recording_dir(cfg: &Config) -> PathBuf {
    if let Some(d) = &cfg.recording.dir {
        return d.clone();
    }
    let db = cfg.database_path();
    db.parent().map(|p| p.join("recordings")).unwrap_or_else(|| PathBuf::from("recordings"))
}

impl Recorder {
    pub fn new(store: Store, client: RoomClient) -> Self {
        let idle = || Arc::new(watch::channel(ChildStatus::default()).0);
        Self {
            store,
            client,
            http: crate::livekit::http::client(false, Duration::from_secs(30)),
            redis: idle(),
            pulse: idle(),
            egress: idle(),
        }
    }

    /// Can a recording start now? Embedded mode asks the helpers; an external LiveKit is
    /// asked at start time (it answers when no worker is connected).
    pub fn availability(&self, cfg: &Config, lk: &LivekitStatus) -> Availability {
        let rec = &cfg.recording;
        let mut a = Availability { enabled: rec.enabled, available: false, why: None, redis: None, pulseaudio: None, egress: None };
        if !rec.enabled {
            a.why = Some("recording is off (recording.enabled: false)".into());
            return a;
        }
        let mut why = Vec::new();
        if !lk.is_ready() {
            why.push(format!("livekit {}", lk.state));
        }
        if !cfg.livekit.is_external() {
            let mut helpers = vec![("pulseaudio", &self.pulse, &mut a.pulseaudio), ("egress", &self.egress, &mut a.egress)];
            if cfg.redis.address.is_none() {
                helpers.insert(0, ("redis", &self.redis, &mut a.redis));
            }
            for (name, w, slot) in helpers {
                let s = w.borrow().clone();
                if s.state != ChildState::Ready {
                    why.push(format!("{name} {}", s.state));
                }
                *slot = Some(s);
            }
        }
        a.available = why.is_empty();
        a.why = (!why.is_empty()).then(|| why.join("; "));
        a
    }

    /// Starts recording `room` for `user` (a manager of it).
    pub async fn start(&self, cfg: &Config, lk: &LivekitStatus, user: &User, room: &str, layout: Option<String>, audio_only: bool) -> Result<Recording, ApiError> {
        let layout = layout.unwrap_or_else(|| cfg.recording.layout.clone());
        if !config::LAYOUTS.contains(&layout.as_str()) {
            return Err(ApiError::bad_request("invalid_layout", format!("unknown layout {layout:?}: one of {}", config::LAYOUTS.join(", "))));
        }
        let a = self.availability(cfg, lk);
        if let Some(why) = a.why {
            return Err(unavailable(why));
        }
        let mut r = Recording::new(room, user, &layout, audio_only, now_ms());
        let (filepath, upload) = match &cfg.recording.s3 {
            Some(s3cfg) => {
                let key = s3::object_key(s3cfg, room, &r.file_name());
                r.s3_key = Some(key.clone());
                r.upload_url = Some(s3::object_url(s3cfg, &key));
                let upload = proto::S3Upload {
                    access_key: s3cfg.access_key.clone(),
                    secret: s3cfg.secret.clone().unwrap_or_default(),
                    region: s3cfg.region.clone(),
                    endpoint: s3cfg.endpoint.clone().unwrap_or_default(),
                    bucket: s3cfg.bucket.clone(),
                    force_path_style: s3cfg.force_path_style,
                    ..Default::default()
                };
                (key, Some(proto::encoded_file_output::Output::S3(upload)))
            }
            None => (recording_dir(cfg).join(room).join(r.file_name()).display().to_string(), None),
        };
        let rec = r.clone();
        match self.store.write(move |txn| record::insert_if_idle(txn, &rec)).await? {
            Ok(()) => {}
            Err(other) => return Err(ApiError::conflict("recording_active", format!("room {room} is being recorded already (recording {other}); stop it first"))),
        }
        let file_type = if audio_only { proto::EncodedFileType::Ogg } else { proto::EncodedFileType::Mp4 };
        let req = proto::RoomCompositeEgressRequest {
            room_name: room.to_string(),
            layout,
            audio_only,
            file_outputs: vec![proto::EncodedFileOutput { file_type: file_type as i32, filepath, disable_manifest: true, output: upload }],
            // Debian's GStreamer has no AAC encoder (faac): Opus audio, in MP4 as in OGG.
            options: Some(proto::room_composite_egress_request::Options::Advanced(proto::EncodingOptions {
                audio_codec: proto::AudioCodec::Opus as i32,
                ..Default::default()
            })),
            ..Default::default()
        };
        match self.client.start_room_composite(req).await {
            Ok(info) => {
                let at = now_ms();
                let id = r.id.clone();
                let updated = self.store.write(move |txn| record::apply_egress(txn, &info, at)).await?;
                let r = updated.ok_or_else(|| ApiError::internal(format!("recording {id} vanished while starting")))?;
                tracing::info!(room = %room, recording = %r.id, egress = ?r.egress_id, by = %user.username, "recording started");
                Ok(r)
            }
            Err(e) => {
                // Refused: nothing was started, so nothing is kept.
                let (api, message) = start_error(room, e);
                self.store.write(move |txn| record::delete(txn, &r)).await?;
                tracing::warn!(room = %room, error = %message, "recording could not start");
                Err(api)
            }
        }
    }

    /// Stops the room's recording; it ends (and its file is finished) shortly after.
    pub async fn stop(&self, room: &str) -> Result<Recording, ApiError> {
        let name = room.to_string();
        let current = self.store.read(move |txn| record::of_room(txn, &name)).await?.into_iter().find(|r| !r.status.is_final());
        let Some(r) = current else {
            return Err(ApiError::conflict("not_recording", format!("room {room} is not being recorded")));
        };
        let Some(egress) = r.egress_id.clone() else {
            return Err(ApiError::conflict("recording_starting", format!("recording {} is still being started; try again in a moment", r.id)));
        };
        let info = match self.client.stop_egress(room, &egress).await {
            Ok(info) => Some(info),
            // Already ending or ended: LiveKit's own record says how.
            Err(LivekitError::Twirp { code, .. }) if code == "failed_precondition" || code == "not_found" => {
                self.client.list_egress(room, &egress).await?.into_iter().next()
            }
            Err(e) => return Err(e.into()),
        };
        let id = r.id.clone();
        let r = match info {
            Some(info) => {
                let at = now_ms();
                self.store.write(move |txn| record::apply_egress(txn, &info, at)).await?
            }
            None => self.store.write(move |txn| record::fail(txn, &id, "LiveKit no longer knows this egress", now_ms())).await?,
        };
        let r = r.ok_or_else(|| ApiError::not_found("recording_not_found", "no such recording"))?;
        tracing::info!(room = %room, recording = %r.id, status = ?r.status, "recording stop requested");
        Ok(r)
    }

    pub async fn list(&self, room: &str) -> Result<Vec<Recording>, ApiError> {
        let room = room.to_string();
        Ok(self.store.read(move |txn| record::of_room(txn, &room)).await?)
    }

    pub async fn get(&self, id: &str) -> Result<Recording, ApiError> {
        let id = id.to_string();
        self.store
            .read(move |txn| record::get(txn, &id))
            .await?
            .ok_or_else(|| ApiError::not_found("recording_not_found", "no such recording"))
    }

    /// A presigned URL for an uploaded recording's file.
    pub fn download_url(&self, cfg: &Config, r: &Recording) -> Option<String> {
        let (s3cfg, key) = (cfg.recording.s3.as_ref()?, r.s3_key.as_ref()?);
        Some(s3::presign(s3cfg, "GET", key, DOWNLOAD_URL_TTL, (now_ms() / 1000) as i64))
    }

    /// Deletes an ended recording and its file.
    pub async fn delete(&self, cfg: &Config, r: &Recording) -> Result<(), ApiError> {
        if !r.status.is_final() {
            return Err(ApiError::conflict("recording_active", format!("recording {} has not ended; stop it first", r.id)));
        }
        if let Some(f) = &r.file {
            match tokio::fs::remove_file(f).await {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(ApiError::internal(format!("cannot remove {f}: {e}"))),
            }
        }
        if let (Some(s3cfg), Some(key)) = (&cfg.recording.s3, &r.s3_key) {
            let url = s3::presign(s3cfg, "DELETE", key, Duration::from_secs(60), (now_ms() / 1000) as i64);
            let resp = self.http.delete(&url).send().await.map_err(|e| storage_error(&supervise::error_chain(&e)))?;
            if !(resp.status().is_success() || resp.status() == reqwest::StatusCode::NOT_FOUND) {
                return Err(storage_error(&format!("DELETE answered {}", resp.status())));
            }
        }
        let rec = r.clone();
        self.store.write(move |txn| record::delete(txn, &rec)).await?;
        Ok(())
    }

    /// The worker that ran this node's recordings is gone: they end as failed.
    pub async fn worker_lost(&self, reason: &str) {
        let error = format!("the egress worker stopped: {reason}");
        let e = error.clone();
        match self.store.write(move |txn| record::fail_unfinished(txn, &e, now_ms())).await {
            Ok(ids) if !ids.is_empty() => tracing::warn!(recordings = ?ids, "{error}; its recordings are marked failed"),
            Ok(_) => {}
            Err(e) => tracing::error!(error = %e, "cannot mark recordings of a lost egress worker as failed"),
        }
    }

    /// Asks LiveKit about every recording that has not ended and applies what it says (a lost
    /// webhook heals here). One LiveKit has never heard of is failed after a while.
    pub async fn reconcile(&self) -> Result<usize, ReconcileError> {
        let open = self.store.read(|txn| record::unfinished(txn)).await?;
        let mut changed = 0;
        for r in open {
            let age = Duration::from_millis(now_ms().saturating_sub(r.updated_at));
            let info = match &r.egress_id {
                Some(e) => self.client.list_egress(&r.room, e).await?.into_iter().next(),
                None => None,
            };
            let at = now_ms();
            let before = r.status;
            let after = match info {
                Some(info) => self.store.write(move |txn| record::apply_egress(txn, &info, at)).await?,
                None if age > LOST_AFTER => {
                    let why = if r.egress_id.is_some() { "LiveKit no longer knows this egress" } else { "the start request never completed" };
                    let id = r.id.clone();
                    self.store.write(move |txn| record::fail(txn, &id, why, at)).await?
                }
                None => None,
            };
            if after.is_some_and(|a| a.status != before) {
                changed += 1;
            }
        }
        Ok(changed)
    }

    /// Stops every recording and waits (up to `limit`) for the files to be finished; what has
    /// not ended by then is marked failed.
    pub async fn stop_all(&self, limit: Duration) {
        let Ok(open) = self.store.read(|txn| record::unfinished(txn)).await else { return };
        if open.is_empty() {
            return;
        }
        tracing::info!(count = open.len(), "stopping recordings");
        for r in &open {
            if let Some(e) = &r.egress_id {
                if let Err(err) = self.client.stop_egress(&r.room, e).await {
                    tracing::warn!(recording = %r.id, error = %err, "cannot stop recording");
                }
            }
        }
        let deadline = tokio::time::Instant::now() + limit;
        while tokio::time::Instant::now() < deadline {
            match self.store.read(|txn| record::unfinished(txn)).await {
                Ok(v) if v.is_empty() => return,
                _ => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        }
        let _ = self.store.write(|txn| record::fail_unfinished(txn, "bedrud stopped before the recording ended", now_ms())).await;
    }
}

fn storage_error(message: &str) -> ApiError {
    ApiError::new(StatusCode::BAD_GATEWAY, "storage_error", format!("the recording's storage refused: {message}"))
}

/// LiveKit's answer to a start request, as the API's error and the record's message.
fn start_error(room: &str, e: LivekitError) -> (ApiError, String) {
    let message = e.to_string();
    let lower = message.to_ascii_lowercase();
    let api = match &e {
        LivekitError::Twirp { code, .. } if code == "not_found" => ApiError::conflict(
            "room_not_live",
            format!("room {room} has nobody in it yet (LiveKit creates a room at the first join): {message}"),
        ),
        // No worker: LiveKit without Redis, or no egress connected to it, or all busy.
        _ if lower.contains("egress not connected") || lower.contains("no response from servers") || lower.contains("no servers available") => {
            unavailable(format!("LiveKit found no egress worker to take it ({message})"))
        }
        LivekitError::Twirp { code, .. } if code == "unavailable" || code == "resource_exhausted" => unavailable(message.clone()),
        _ => ApiError::from(e),
    };
    (api, message)
}

/// Runs [`Recorder::reconcile`] every `interval` while recording is on.
pub fn spawn_reconciler(recorder: Arc<Recorder>, interval: Duration, shutdown: CancellationToken) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tick.tick() => {}
            }
            match recorder.reconcile().await {
                Ok(n) if n > 0 => tracing::info!(changed = n, "reconciled recordings with LiveKit"),
                Ok(_) => {}
                Err(e) => tracing::debug!(error = %e, "recording reconciliation failed"),
            }
        }
    })
}

/// The egress worker's supervisor reports here: its state for availability, and a worker
/// that dies (or stops) takes its unfinished recordings with it.
struct EgressObserver(Arc<Recorder>);

impl Observer<EgressSpec> for EgressObserver {
    fn event(&self, spec: &EgressSpec, ev: Event<'_>) {
        let was_ready = self.0.egress.borrow().state == ChildState::Ready;
        self.0.egress.event(spec, ev);
        let Event::State(st) = ev else { return };
        let reason = match st {
            ChildState::Restarting { last_error, .. } => last_error.clone(),
            ChildState::Failed { error } => error.clone(),
            ChildState::Stopped => "bedrud stopped".into(),
            _ => return,
        };
        if was_ready {
            let r = self.0.clone();
            tokio::spawn(async move { r.worker_lost(&reason).await });
        }
    }
}

/// The embedded helpers that run (each `None` when not started).
#[derive(Default)]
pub struct Helpers {
    redis: Option<Handle<RedisSpec>>,
    pulse: Option<Handle<PulseSpec>>,
    egress: Option<Handle<EgressSpec>>,
    dirs: Option<Dirs>,
}

impl Helpers {
    /// Embedded mode with recording on: the Redis LiveKit must be configured with. Starts
    /// redis-server unless `redis.address` names one, and waits for it. A Redis that cannot
    /// start leaves recording unavailable (said in the log and the status), not the meetings.
    pub async fn start_redis(&mut self, cfg: &Config, store: &Store, recorder: &Recorder, runtime: &std::path::Path, shutdown: &CancellationToken) -> Option<RedisConn> {
        let planned = planned_redis(cfg)?;
        if cfg.redis.address.is_some() {
            return Some(planned);
        }
        let dirs = Dirs::new(runtime);
        let prepared = async {
            dirs.create()?;
            for p in supervise::remove_stale(runtime, "bedrud-redis-", ".conf").into_iter().chain(supervise::remove_stale(runtime, "bedrud-egress-", ".yaml")) {
                tracing::info!("removed stale config {} left by an earlier run", p.display());
            }
            let password = redis_password(store).await.map_err(|e| supervise::Error::Config(format!("cannot keep the Redis password: {e}")))?;
            let spec = RedisSpec::new(cfg, &password, &dirs)?;
            supervise::check_ports(supervise::Spec::ports(&spec), &[])?;
            Ok::<_, supervise::Error>(spec)
        }
        .await;
        let spec = match prepared {
            Ok(s) => s,
            Err(e) => {
                let msg = e.to_string();
                tracing::error!("recording unavailable: redis-server cannot start: {msg}");
                recorder.redis.send_modify(|s| s.apply(Event::State(&ChildState::Failed { error: msg.clone() })));
                return None;
            }
        };
        let conn = spec.conn();
        self.dirs = Some(dirs);
        self.redis = Some(supervise::start(spec, recorder.redis.clone(), shutdown));
        let mut rx = recorder.redis.subscribe();
        let outcome = tokio::time::timeout(Duration::from_secs(20), rx.wait_for(|s| matches!(s.state, ChildState::Ready | ChildState::Failed { .. }))).await;
        match outcome {
            Ok(Ok(s)) if s.state == ChildState::Ready => Some(conn),
            _ => {
                tracing::error!("recording unavailable: redis-server did not become ready; LiveKit starts without Redis");
                None
            }
        }
    }

    /// After LiveKit is ready: pulseaudio and the egress worker (not waited for; their state
    /// is recording's availability).
    pub fn start_workers(&mut self, cfg: &Config, keys: &ApiKeys, redis: Option<&RedisConn>, recorder: &Arc<Recorder>, runtime: &std::path::Path, shutdown: &CancellationToken) {
        if !cfg.recording.enabled || cfg.livekit.is_external() {
            return;
        }
        let Some(redis) = redis else {
            let why = "no Redis for LiveKit and egress (see redis-server above)".to_string();
            recorder.egress.send_modify(|s| s.apply(Event::State(&ChildState::Failed { error: why.clone() })));
            return;
        };
        let dirs = self.dirs.clone().unwrap_or_else(|| Dirs::new(runtime));
        let prepared = (|| {
            dirs.create()?;
            std::fs::create_dir_all(recording_dir(cfg))
                .map_err(|e| supervise::Error::Io { what: format!("cannot create recording.dir {}", recording_dir(cfg).display()), source: e })?;
            let pulse = PulseSpec::new(cfg, &dirs)?;
            let egress = EgressSpec::new(cfg, keys, redis, &dirs)?;
            supervise::check_ports(supervise::Spec::ports(&egress), &[])?;
            Ok::<_, supervise::Error>((pulse, egress))
        })();
        match prepared {
            Ok((pulse, egress)) => {
                self.pulse = Some(supervise::start(pulse, recorder.pulse.clone(), shutdown));
                self.egress = Some(supervise::start(egress, EgressObserver(recorder.clone()), shutdown));
            }
            Err(e) => {
                let msg = e.to_string();
                tracing::error!("recording unavailable: {msg}");
                recorder.egress.send_modify(|s| s.apply(Event::State(&ChildState::Failed { error: msg.clone() })));
            }
        }
        self.dirs = Some(dirs);
    }

    /// The egress worker's pid while it runs.
    pub fn egress_pid(&self) -> Option<u32> {
        self.egress.as_ref().and_then(Handle::pid)
    }

    /// Stops the worker and pulseaudio (before LiveKit).
    pub async fn stop_workers(&mut self) {
        if let Some(h) = self.egress.take() {
            h.stop().await;
        }
        if let Some(h) = self.pulse.take() {
            h.stop().await;
        }
    }

    /// Stops redis-server (after LiveKit, which uses it).
    pub async fn stop_redis(&mut self) {
        if let Some(h) = self.redis.take() {
            h.stop().await;
        }
    }
}

/// The embedded Redis password: generated once, kept in the store.
async fn redis_password(store: &Store) -> Result<String, StoreError> {
    use base64::Engine;
    let mut raw = [0u8; 24];
    rand::RngCore::fill_bytes(&mut rand::rng(), &mut raw);
    let fresh = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw);
    store.write(move |txn| store::meta_put_once(txn, "redis_password", &fresh)).await
}
