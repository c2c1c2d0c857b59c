//! Recording through a real LiveKit Egress worker (v1.8.6, `scripts/install-egress`), with
//! real Redis, real livekit-server and real LiveKit clients publishing audio and video; files
//! checked with ffprobe. Also LiveKit on Redis as a two-node cluster in external mode.
//! Figures (time to active, to the first byte, to heal) are printed, not asserted.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::cluster::{handler_pids, EgressWorker, LkNode, Moto, Redis};
use common::daemon::{authorization_mismatches, eventually, Daemon, Opts};
use common::participant::Participant;
use common::{egress_binary, free_port, wait_for};
use serde_json::{json, Value};

const SECS: fn(u64) -> Duration = Duration::from_secs;

/// A recording runs Chrome, Xvfb and a GStreamer pipeline: on two cores, one test with an
/// egress worker at a time keeps the files' timing honest.
static ONE_RECORDER: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn one_recorder() -> std::sync::MutexGuard<'static, ()> {
    ONE_RECORDER.lock().unwrap_or_else(|e| e.into_inner())
}

/// `recording:` and `redis:` sections for an embedded daemon on free ports.
fn recording_config(extra: &str) -> String {
    format!(
        "recording:\n  enabled: true\n  egressBinary: {}\n  healthPort: {}\n  templatePort: {}\n  startTimeout: 90s\n{extra}redis:\n  port: {}\n",
        egress_binary().display(),
        free_port(),
        free_port(),
        free_port()
    )
}

fn recording_daemon(auth: &str) -> Daemon {
    Daemon::start(Opts { server_extra: recording_config(""), auth: auth.into(), ..Default::default() })
}

/// Waits until `/api/ready` says recording is available; its `recording` block.
fn wait_recording_available(d: &Daemon) -> Value {
    wait_for(SECS(120), "recording available", || {
        let (_, v) = d.get("/api/ready", None);
        (v["recording"]["available"] == true).then(|| v["recording"].clone())
    })
}

fn recording(d: &Daemon, token: &str, id: &str) -> Value {
    let (s, v) = d.get(&format!("/api/recordings/{id}"), Some(token));
    assert_eq!(s, 200, "{v}");
    v["recording"].clone()
}

/// Waits until the recording's status is one of `states`.
fn wait_status(d: &Daemon, token: &str, id: &str, states: &[&str], limit: Duration) -> Value {
    let start = Instant::now();
    loop {
        let last = recording(d, token, id);
        if states.iter().any(|s| last["status"] == *s) {
            return last;
        }
        if start.elapsed() > limit {
            panic!("recording {id} not {states:?} after {limit:?}: {last}\n{}", tail(&d.log_text(), 60));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().filter(|l| !l.contains("high cpu usage") && !l.contains("IPAddressSpace")).collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// ffprobe's view of a media file: codec types of its streams and its duration in seconds.
fn probe(path: &Path) -> (Vec<String>, f64) {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-show_entries", "stream=codec_type,codec_name:format=duration", "-of", "json"])
        .arg(path)
        .output()
        .expect("run ffprobe (Debian's ffmpeg)");
    assert!(out.status.success(), "ffprobe {}: {}", path.display(), String::from_utf8_lossy(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).expect("ffprobe json");
    let streams = v["streams"].as_array().cloned().unwrap_or_default();
    let kinds = streams.iter().map(|s| format!("{}:{}", s["codec_type"].as_str().unwrap_or(""), s["codec_name"].as_str().unwrap_or(""))).collect();
    let duration = v["format"]["duration"].as_str().and_then(|d| d.parse().ok()).unwrap_or(0.0);
    (kinds, duration)
}

/// The `bedrud doctor` finding of `check` with `status` whose text contains `needle`, from the
/// running daemon (`GET /api/admin/doctor`); panics with the report.
fn doctor_finding(d: &Daemon, admin: &str, check: &str, status: &str, needle: &str) -> Value {
    let (s, r) = d.get("/api/admin/doctor", Some(admin));
    assert_eq!(s, 200, "{r}");
    r["checks"]
        .as_array()
        .and_then(|a| a.iter().find(|c| c["check"] == check && c["status"] == status && c["found"].as_str().unwrap_or("").contains(needle)))
        .cloned()
        .unwrap_or_else(|| panic!("no `{status} {check}` finding containing {needle:?} in:\n{r:#}"))
}

/// A participant in `room` (joined through bedrud as the user of `token`) publishing a tone
/// and a camera.
fn publisher(d: &Daemon, token: &str, room: &str) -> Participant {
    let (s, j) = d.post("/api/room/join", Some(token), json!({ "room": room }));
    assert_eq!(s, 200, "join: {j}");
    let mut p = Participant::connect(j["url"].as_str().unwrap(), j["token"].as_str().unwrap(), 240);
    p.publish_audio();
    p.publish_video();
    p
}

#[test]
fn embedded_room_composite_recording_end_to_end() {
    let _one = one_recorder();
    let d = recording_daemon("  guestJoin: true\n");
    let admin = d.admin();
    for u in ["owner", "modr", "member"] {
        d.create_user(u, &format!("{u}-password"), false);
    }
    let owner = d.login("owner", "owner-password");
    let modr = d.login("modr", "modr-password");
    let member = d.login("member", "member-password");
    d.post("/api/room/create", Some(&owner), json!({ "name": "rec", "settings": { "public": true } }));
    d.api("POST", "/api/room/rec/moderators/modr", Some(&owner), None);
    let (_, g) = d.post("/api/room/join", None, json!({ "room": "rec", "name": "G" }));
    let guest = g["guestToken"].as_str().unwrap().to_string();
    let ready = wait_recording_available(&d);
    let mut answers = vec![json!({ "op": "GET /api/ready", "status": 200, "body": d.get("/api/ready", None).1 })];
    assert_eq!(ready["egress"]["state"], "ready", "{ready}");
    assert_eq!(ready["redis"]["state"], "ready", "{ready}");
    // bedrud doctor sees the same helpers running.
    doctor_finding(&d, &admin, "redis", "ok", "bedrud's redis-server is running");
    doctor_finding(&d, &admin, "egress", "ok", "the egress worker is running");
    doctor_finding(&d, &admin, "egress-tools", "ok", "chromium, Xvfb and pulseaudio");
    doctor_finding(&d, &admin, "egress-runtime-dir", "ok", "leaves room");
    doctor_finding(&d, &admin, "recording", "ok", "available");

    // Before anyone joined, LiveKit has no room to record.
    let (s, v) = d.post("/api/room/rec/recording/start", Some(&owner), json!({}));
    assert_eq!((s, v["error"]["code"].as_str()), (409, Some("room_not_live")), "{v}");

    let mut p = publisher(&d, &owner, "rec");
    let (s, v) = d.post("/api/room/rec/recording/start", Some(&owner), json!({ "layout": "nonsense" }));
    assert_eq!((s, v["error"]["code"].as_str()), (400, Some("invalid_layout")), "{v}");

    let t0 = Instant::now();
    let (s, v) = d.post("/api/room/rec/recording/start", Some(&owner), json!({ "layout": "grid" }));
    assert_eq!(s, 201, "{v}\n{}", tail(&d.log_text(), 40));
    answers.push(json!({ "op": "POST /api/room/{name}/recording/start", "status": s, "body": v }));
    let rec = v["recording"].clone();
    let id = rec["id"].as_str().unwrap().to_string();
    assert_eq!(rec["room"], "rec");
    assert_eq!(rec["startedByName"], "owner");
    assert!(rec["egressId"].as_str().unwrap_or("").starts_with("EG_"), "{rec}");

    // One recording per room.
    let (s, v) = d.post("/api/room/rec/recording/start", Some(&modr), json!({}));
    assert_eq!((s, v["error"]["code"].as_str()), (409, Some("recording_active")), "{v}");
    assert!(v["error"]["message"].as_str().unwrap().contains(&id), "{v}");

    let active = wait_status(&d, &owner, &id, &["active"], SECS(60));
    let to_active = t0.elapsed();
    let file = d.dir.path().join("recordings/rec").join(format!("{id}.mp4"));
    wait_for(SECS(30), "first byte on disk", || std::fs::metadata(&file).ok().filter(|m| m.len() > 0));
    eprintln!("figure: start request to active {} ms, to the first byte on disk {} ms", to_active.as_millis(), t0.elapsed().as_millis());
    assert!(active["startedAt"].as_u64().is_some(), "{active}");

    std::thread::sleep(SECS(6));
    let (s, v) = d.post("/api/room/rec/recording/stop", Some(&modr), json!({}));
    assert_eq!(s, 200, "{v}");
    assert!(["ending", "complete"].contains(&v["recording"]["status"].as_str().unwrap_or("")), "{v}");
    answers.push(json!({ "op": "POST /api/room/{name}/recording/stop", "status": s, "body": v }));
    let done = wait_status(&d, &owner, &id, &["complete", "failed"], SECS(60));
    assert_eq!(done["status"], "complete", "{done}\n{}", tail(&d.log_text(), 60));
    assert_eq!(done["file"].as_str(), Some(file.to_str().unwrap()), "{done}");
    let size = done["size"].as_u64().unwrap_or(0);
    assert_eq!(size, std::fs::metadata(&file).unwrap().len(), "{done}");
    let recorded_ms = done["durationMs"].as_u64().unwrap_or(0);
    assert!(recorded_ms >= 5000, "at least 5 s recorded: {done}");
    // Every answer matches the API document (the helpers' states in /api/ready included).
    answers.push(json!({ "op": "GET /api/recordings/{id}", "status": 200, "body": { "recording": done } }));
    let (s, l) = d.get("/api/room/rec/recordings", Some(&owner));
    answers.push(json!({ "op": "GET /api/room/{name}/recordings", "status": s, "body": l }));
    let doc = d.get("/api/openapi.json", None).1;
    common::validate_answers(&doc, answers);

    // The file: H.264 video and Opus audio, as long as the worker says it recorded.
    let (streams, seconds) = probe(&file);
    assert!(streams.iter().any(|s| s.starts_with("audio:")), "{streams:?}");
    assert!(streams.iter().any(|s| s.starts_with("video:")), "{streams:?}");
    let diff = (seconds - recorded_ms as f64 / 1000.0).abs();
    eprintln!("figure: file {seconds:.2} s, worker's duration {:.2} s, {size} bytes", recorded_ms as f64 / 1000.0);
    assert!(diff <= 1.0, "file lasts {seconds} s, the worker recorded {recorded_ms} ms");

    // Download, whole and in ranges.
    let bytes = std::fs::read(&file).unwrap();
    let http = common::daemon::http_client();
    let url = d.url(&format!("/api/recordings/{id}/file"));
    let r = http.get(&url).bearer_auth(&owner).send().unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.headers()["content-type"], "video/mp4");
    assert_eq!(r.headers()["accept-ranges"], "bytes");
    assert_eq!(r.bytes().unwrap().as_ref(), bytes.as_slice());
    let r = http.get(&url).bearer_auth(&owner).header("range", "bytes=100-199").send().unwrap();
    assert_eq!(r.status().as_u16(), 206);
    assert_eq!(r.headers()["content-range"], format!("bytes 100-199/{}", bytes.len()).as_str());
    assert_eq!(r.bytes().unwrap().as_ref(), &bytes[100..200]);
    let r = http.get(&url).bearer_auth(&owner).header("range", "bytes=-16").send().unwrap();
    assert_eq!(r.status().as_u16(), 206);
    assert_eq!(r.bytes().unwrap().as_ref(), &bytes[bytes.len() - 16..]);
    let r = http.get(&url).bearer_auth(&owner).header("range", format!("bytes={}-", bytes.len())).send().unwrap();
    assert_eq!(r.status().as_u16(), 416);
    assert_eq!(r.headers()["content-range"], format!("bytes */{}", bytes.len()).as_str());

    let (s, v) = d.get("/api/room/rec/recordings", Some(&owner));
    assert_eq!(s, 200);
    assert_eq!(v["recordings"].as_array().map(Vec::len), Some(1), "{v}");
    assert_eq!(v["recordings"][0]["id"], id.as_str());

    // Who may do what: managers (owner, moderators) and admins; others are refused; an
    // ended recording cannot be stopped again.
    let callers: [(&str, Option<&str>); 6] =
        [("admin", Some(&admin)), ("owner", Some(&owner)), ("moderator", Some(&modr)), ("member", Some(&member)), ("guest", Some(&guest)), ("anonymous", None)];
    let rec_path = format!("/api/recordings/{id}");
    let file_path = format!("/api/recordings/{id}/file");
    let cases: Vec<(&str, &str, Option<Value>, [u16; 6])> = vec![
        ("POST", "/api/room/rec/recording/stop", Some(json!({})), [409, 409, 409, 403, 403, 401]),
        ("GET", "/api/room/rec/recordings", None, [200, 200, 200, 403, 403, 401]),
        ("GET", &rec_path, None, [200, 200, 200, 404, 403, 401]),
        ("GET", &file_path, None, [200, 200, 200, 404, 403, 401]),
        ("POST", "/api/room/nosuchroom/recording/start", Some(json!({})), [404, 404, 404, 404, 403, 401]),
        ("GET", "/api/recordings/rec_nosuch", None, [404, 404, 404, 404, 403, 401]),
        ("DELETE", &rec_path, None, [204, 404, 404, 404, 403, 401]),
    ];
    let failures = authorization_mismatches(&d, &callers, &cases);
    assert!(failures.is_empty(), "authorization mismatches:\n{}", failures.join("\n"));
    // Start refused to those who may not manage the room, before any other check.
    for (who, tok, code) in [("member", Some(member.as_str()), 403), ("guest", Some(guest.as_str()), 403), ("anonymous", None, 401)] {
        let (s, v) = d.post("/api/room/rec/recording/start", tok, json!({}));
        assert_eq!(s, code, "start as {who}: {v}");
    }
    // The admin's DELETE removed the record and its file.
    assert!(!file.exists(), "deleted recording's file still at {}", file.display());
    let (_, v) = d.get("/api/room/rec/recordings", Some(&owner));
    assert_eq!(v["recordings"].as_array().map(Vec::len), Some(0), "{v}");
    p.leave();
}

/// The handler process of the one recording running below the daemon's runtime directory.
fn only_handler(d: &Daemon) -> u32 {
    let tmp = d.runtime_dir().join("bedrud-egress");
    wait_for(SECS(20), "the recording's handler process", || {
        let pids = handler_pids(&tmp);
        (pids.len() == 1).then(|| pids[0])
    })
}

#[test]
fn killed_worker_ends_the_recording_as_failed() {
    let _one = one_recorder();
    let d = recording_daemon("");
    let admin = d.admin();
    d.post("/api/room/create", Some(&admin), json!({ "name": "crash" }));
    wait_recording_available(&d);
    let mut p = publisher(&d, &admin, "crash");

    // 1. The recording process itself dies: the worker reports it failed through LiveKit.
    let (s, v) = d.post("/api/room/crash/recording/start", Some(&admin), json!({}));
    assert_eq!(s, 201, "{v}");
    let first = v["recording"]["id"].as_str().unwrap().to_string();
    wait_status(&d, &admin, &first, &["active"], SECS(60));
    let handler = only_handler(&d);
    nix::sys::signal::killpg(nix::unistd::Pid::from_raw(handler as i32), nix::sys::signal::Signal::SIGKILL).expect("kill handler");
    let failed = wait_status(&d, &admin, &first, &["failed", "complete", "aborted"], SECS(60));
    assert_eq!(failed["status"], "failed", "{failed}");
    assert!(!failed["error"].as_str().unwrap_or("").is_empty(), "the error is kept: {failed}");
    eprintln!("handler killed: recording failed with {:?}", failed["error"]);
    // Egress v1.8.6 shuts itself down after a recording process failed; bedrud restarts it.
    let ready = wait_for(SECS(60), "the egress worker restarted", || {
        let (_, r) = d.get("/api/ready", None);
        let rec = r["recording"].clone();
        (rec["available"] == true && rec["egress"]["restarts"].as_u64() >= Some(1)).then_some(rec)
    });

    // 2. The worker itself is killed: bedrud fails its recording, removes the orphaned
    // recording process, and restarts the worker.
    let (s, v) = d.post("/api/room/crash/recording/start", Some(&admin), json!({}));
    assert_eq!(s, 201, "{v}\n{}", tail(&d.log_text(), 40));
    let second = v["recording"]["id"].as_str().unwrap().to_string();
    wait_status(&d, &admin, &second, &["active"], SECS(60));
    let handler = only_handler(&d);
    let (_, r) = d.get("/api/ready", None);
    let worker = r["recording"]["egress"]["pid"].as_u64().expect("egress pid") as i32;
    let restarts = ready["egress"]["restarts"].as_u64().unwrap_or(0);
    let t0 = Instant::now();
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(worker), nix::sys::signal::Signal::SIGKILL).expect("kill egress");
    let failed = wait_status(&d, &admin, &second, &["failed", "complete", "aborted"], SECS(30));
    eprintln!("figure: egress worker SIGKILL to recording failed in {} ms", t0.elapsed().as_millis());
    assert_eq!(failed["status"], "failed", "{failed}");
    let error = failed["error"].as_str().unwrap_or("");
    assert!(error.contains("egress worker") && error.contains("SIGKILL"), "{failed}");
    eventually(SECS(10), "the orphaned recording process is gone", || !Path::new(&format!("/proc/{handler}")).exists() || zombie(handler));
    let back = wait_recording_available(&d);
    assert!(back["egress"]["restarts"].as_u64().unwrap_or(0) > restarts, "{back}");
    assert_ne!(back["egress"]["pid"].as_u64(), Some(worker as u64), "{back}");
    // Recording works again with the new worker.
    let (s, v) = d.post("/api/room/crash/recording/start", Some(&admin), json!({}));
    assert_eq!(s, 201, "{v}");
    let third = v["recording"]["id"].as_str().unwrap().to_string();
    wait_status(&d, &admin, &third, &["active"], SECS(60));
    d.post("/api/room/crash/recording/stop", Some(&admin), json!({}));
    wait_status(&d, &admin, &third, &["complete"], SECS(60));
    p.leave();
}

fn zombie(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| s.contains(") Z "))
}

#[test]
fn recording_unavailable_says_why_and_changes_nothing() {
    // Off by configuration.
    let d = Daemon::start(Opts::default());
    let admin = d.admin();
    d.post("/api/room/create", Some(&admin), json!({ "name": "quiet" }));
    let (s, v) = d.post("/api/room/quiet/recording/start", Some(&admin), json!({}));
    assert_eq!((s, v["error"]["code"].as_str()), (503, Some("recording_unavailable")), "{v}");
    assert!(v["error"]["message"].as_str().unwrap().contains("recording.enabled"), "{v}");
    let (_, r) = d.get("/api/ready", None);
    assert_eq!(r["recording"]["enabled"], false, "{r}");
    let (_, l) = d.get("/api/room/quiet/recordings", Some(&admin));
    assert_eq!(l["recordings"], json!([]), "a refused start leaves no record: {l}");
    let (s, v) = d.post("/api/room/quiet/recording/stop", Some(&admin), json!({}));
    assert_eq!((s, v["error"]["code"].as_str()), (409, Some("not_recording")), "{v}");
    let (s, v) = d.api("POST", "/api/room/quiet/recording/start", Some(&admin), Some(json!("nope")));
    assert_eq!((s, v["error"]["code"].as_str()), (400, Some("invalid_request")), "{v}");
    drop(d);

    // On, but the worker cannot be found: meetings still work, recording says why.
    let extra = format!(
        "recording:\n  enabled: true\n  egressBinary: /nonexistent/egress\n  healthPort: {}\n  templatePort: {}\nredis:\n  port: {}\n",
        free_port(),
        free_port(),
        free_port()
    );
    let d = Daemon::start(Opts { server_extra: extra, env_remove: vec!["BEDRUD_EGRESS_BINARY".into()], ..Default::default() });
    let admin = d.admin();
    d.post("/api/room/create", Some(&admin), json!({ "name": "quiet" }));
    let (s, r) = d.get("/api/ready", None);
    assert_eq!(s, 200, "bedrud is ready without recording: {r}");
    let why = r["recording"]["why"].as_str().unwrap_or("").to_string();
    assert_eq!(r["recording"]["available"], false, "{r}");
    assert!(why.contains("egress not found") && why.contains("/nonexistent/egress"), "{r}");
    assert_eq!(r["recording"]["redis"]["state"], "ready", "{r}");
    // The helpers' states, a failed one included, match the API document.
    let doc = d.get("/api/openapi.json", None).1;
    common::validate_answers(&doc, vec![json!({ "op": "GET /api/ready", "status": s, "body": r })]);
    let (s, v) = d.post("/api/room/quiet/recording/start", Some(&admin), json!({}));
    assert_eq!((s, v["error"]["code"].as_str()), (503, Some("recording_unavailable")), "{v}");
    assert!(v["error"]["message"].as_str().unwrap().contains("scripts/install-egress"), "the fix is named: {v}");
    let f = doctor_finding(&d, &admin, "egress", "fail", "egress");
    assert!(f["fix"].as_str().unwrap_or("").contains("scripts/install-egress"), "{f}");
    doctor_finding(&d, &admin, "redis", "ok", "bedrud's redis-server is running");
    doctor_finding(&d, &admin, "recording", "fail", "egress");
    // LiveKit got the embedded Redis in its generated config.
    let generated = std::fs::read_to_string(&d.temp_configs()[0]).unwrap();
    assert!(generated.contains("redis:") && generated.contains("address: 127.0.0.1:"), "{generated}");
}

#[test]
fn external_livekit_records_into_s3() {
    let _one = one_recorder();
    let redis = Redis::start();
    let hook = free_port();
    let node = LkNode::start("127.0.0.1", &redis, hook);
    let worker = EgressWorker::start(&redis, &node.ws_url());
    let moto = Moto::start("recordings");
    let s3 = format!(
        "recording:\n  enabled: true\n  s3:\n    endpoint: {}\n    bucket: {}\n    region: us-east-1\n    accessKey: test-key\n    secret: test-secret\n    forcePathStyle: true\n    prefix: meetings/\n",
        moto.endpoint(),
        moto.bucket
    );
    let d = Daemon::start(Opts { port: Some(hook), external: Some((node.port, String::new())), server_extra: s3, ..Default::default() });
    let admin = d.admin();
    d.post("/api/room/create", Some(&admin), json!({ "name": "s3room" }));
    let (_, r) = d.get("/api/ready", None);
    assert_eq!(r["recording"]["available"], true, "{r}");
    let mut p = publisher(&d, &admin, "s3room");
    let (s, v) = d.post("/api/room/s3room/recording/start", Some(&admin), json!({}));
    assert_eq!(s, 201, "{v}\n{}", tail(&worker.log_text(), 30));
    let id = v["recording"]["id"].as_str().unwrap().to_string();
    assert_eq!(v["recording"]["s3Key"], format!("meetings/s3room/{id}.mp4").as_str(), "{v}");
    wait_status(&d, &admin, &id, &["active"], SECS(60));
    std::thread::sleep(SECS(6));
    d.post("/api/room/s3room/recording/stop", Some(&admin), json!({}));
    let done = wait_status(&d, &admin, &id, &["complete", "failed"], SECS(60));
    assert_eq!(done["status"], "complete", "{done}\n{}", tail(&worker.log_text(), 40));
    let key = format!("meetings/s3room/{id}.mp4");
    let url = done["url"].as_str().unwrap_or("");
    assert!(url.starts_with(&moto.endpoint()) && url.ends_with(&key), "an S3 URL, not a worker's path: {done}");
    assert!(done["file"].is_null(), "{done}");

    // Download: a redirect to a presigned URL of the bucket (moto keeps the worker's object
    // private: only a signed request reads it).
    let http = reqwest::blocking::Client::builder().redirect(reqwest::redirect::Policy::none()).no_proxy().build().unwrap();
    let r = http.get(d.url(&format!("/api/recordings/{id}/file"))).bearer_auth(&admin).send().unwrap();
    assert_eq!(r.status().as_u16(), 302);
    let location = r.headers()["location"].to_str().unwrap().to_string();
    assert!(location.starts_with(&format!("{}/{}/{key}?X-Amz-Algorithm=AWS4-HMAC-SHA256", moto.endpoint(), moto.bucket)), "{location}");
    assert!(location.contains("X-Amz-Signature="), "{location}");
    let r = http.get(&location).send().unwrap();
    assert_eq!(r.status().as_u16(), 200, "presigned GET: {}\nbucket: {}", r.status(), moto.listing());
    let object = r.bytes().unwrap().to_vec();

    // The object is a real recording.
    assert_eq!(object.len() as u64, done["size"].as_u64().unwrap_or(0), "{done}");
    let dir = tempfile::tempdir().unwrap();
    let local: PathBuf = dir.path().join("s3.mp4");
    std::fs::write(&local, &object).unwrap();
    let (streams, seconds) = probe(&local);
    assert!(streams.iter().any(|s| s.starts_with("audio:")) && streams.iter().any(|s| s.starts_with("video:")), "{streams:?}");
    let recorded = done["durationMs"].as_u64().unwrap_or(0) as f64 / 1000.0;
    assert!((seconds - recorded).abs() <= 1.0 && recorded >= 5.0, "file {seconds} s, recorded {recorded} s");

    // Deleting the recording deletes the object.
    let (s, _) = d.api("DELETE", &format!("/api/recordings/{id}"), Some(&admin), None);
    assert_eq!(s, 204);
    let gone = http.get(&location).send().unwrap().status().as_u16();
    assert_eq!(gone, 404, "object still in the bucket: {}", moto.listing());
    p.leave();
}

// ---------------------------------------------------------------------------------------------
// LiveKit on Redis: a two-node cluster in external mode

/// The cluster as bedrud reports it: node id → (alive, rooms).
fn cluster_view(d: &Daemon) -> Vec<(String, bool, Vec<String>)> {
    let (_, r) = d.get("/api/ready", None);
    r["cluster"]["nodes"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|n| {
            let rooms = n["rooms"].as_array().cloned().unwrap_or_default().iter().filter_map(|x| x.as_str().map(str::to_string)).collect();
            (n["id"].as_str().unwrap_or("").to_string(), n["alive"] == true, rooms)
        })
        .collect()
}

fn host_of(d: &Daemon, room: &str) -> Option<String> {
    cluster_view(d).into_iter().find(|(_, _, rooms)| rooms.iter().any(|r| r == room)).map(|(id, _, _)| id)
}

fn listed_identities(d: &Daemon, admin: &str, room: &str) -> Vec<String> {
    let (s, v) = d.get(&format!("/api/room/{room}/participants"), Some(admin));
    assert_eq!(s, 200, "{v}");
    v["participants"].as_array().cloned().unwrap_or_default().iter().filter_map(|p| p["identity"].as_str().map(str::to_string)).collect()
}

struct Member {
    room: String,
    identity: String,
    host: String,
    via: String,
    client: Participant,
}

#[test]
fn two_node_cluster_heals_within_one_period_when_a_node_dies() {
    let redis = Redis::start();
    let hook = free_port();
    let a = LkNode::start("127.0.0.1", &redis, hook);
    let mut b = LkNode::start("127.0.0.2", &redis, hook);
    let (id_a, id_b) = (a.node_id(), b.node_id());
    let period = SECS(10);
    let d = Daemon::start(Opts {
        port: Some(hook),
        external: Some((a.port, String::new())),
        livekit_extra: "  reconcileInterval: 10s\n".into(),
        server_extra: format!("redis:\n  address: {}\n", redis.address()),
        ..Default::default()
    });
    let admin = d.admin();
    eventually(SECS(15), "both nodes alive in bedrud's view", || {
        let v = cluster_view(&d);
        [&id_a, &id_b].iter().all(|id| v.iter().any(|(n, alive, _)| n == *id && *alive))
    });

    // Rooms land on both nodes (LiveKit picks the node with fewest rooms; its counts lag up to
    // 2 s); clients connect to either node with bedrud's tokens.
    let mut members: Vec<Member> = Vec::new();
    for i in 0..8 {
        let room = format!("cl{i}");
        d.post("/api/room/create", Some(&admin), json!({ "name": room }));
        // Two rooms through each node in turn: LiveKit alternates the rooms between the nodes,
        // so every pairing of host and entry node comes up within four rooms.
        let node = if (i / 2) % 2 == 0 { &a } else { &b };
        let (s, j) = d.post("/api/room/join", Some(&admin), json!({ "room": room }));
        assert_eq!(s, 200, "{j}");
        let mut client = Participant::connect(&node.ws_url(), j["token"].as_str().unwrap(), 240);
        client.publish_audio();
        let identity = j["identity"].as_str().unwrap().to_string();
        let host = wait_for(SECS(10), "the room's node in bedrud's view", || host_of(&d, &room));
        // The join reached bedrud through the webhook of the node hosting the room (the
        // reconciler is 10 s away).
        eventually(SECS(4), "participant listed from the webhook", || listed_identities(&d, &admin, &room).contains(&identity));
        members.push(Member { room, identity, host, via: node.ip.clone(), client });
        let hosts: std::collections::BTreeSet<&str> = members.iter().map(|m| m.host.as_str()).collect();
        let kept = members.iter().any(|m| m.host == id_a && m.via == a.ip);
        if hosts.len() == 2 && kept && members.iter().any(|m| m.via == b.ip) {
            break;
        }
        std::thread::sleep(Duration::from_millis(2200));
    }
    let on_b: Vec<(String, String)> = members.iter().filter(|m| m.host == id_b).map(|m| (m.room.clone(), m.identity.clone())).collect();
    let kept = members.iter().filter(|m| m.host == id_a && m.via == a.ip).count();
    assert!(!on_b.is_empty() && kept > 0, "rooms on both nodes: {:?}", members.iter().map(|m| (&m.room, &m.host, &m.via)).collect::<Vec<_>>());
    assert!(members.iter().any(|m| m.via == b.ip), "a client joined through the second node");
    eprintln!("cluster: {}", members.iter().map(|m| format!("{} on {} via {}", m.room, m.host, m.via)).collect::<Vec<_>>().join(", "));

    // kill -9 of the second node: its rooms' participants are closed within one period.
    let t0 = Instant::now();
    b.kill9();
    for (room, identity) in &on_b {
        eventually(period, "participants of the dead node's rooms closed", || !listed_identities(&d, &admin, room).contains(identity));
    }
    let heal = t0.elapsed();
    eprintln!("figure: cluster heal after kill -9 of a node: {} ms (reconcile period {} s)", heal.as_millis(), period.as_secs());
    assert!(heal <= period, "healed in {heal:?}, more than one reconcile period");
    let view = cluster_view(&d);
    let dead = view.iter().find(|(id, _, _)| id == &id_b).expect("dead node reported");
    assert!(!dead.1, "{view:?}");
    // /api/ready's cluster block (a dead node in it) matches the API document.
    let (status, ready) = d.get("/api/ready", None);
    let doc = d.get("/api/openapi.json", None).1;
    common::validate_answers(&doc, vec![json!({ "op": "GET /api/ready", "status": status, "body": ready })]);
    assert!(d.log_text().contains(&format!("LiveKit node {id_b} is down")), "the loss is logged");
    doctor_finding(&d, &admin, "cluster", "warn", &format!("down: {id_b}"));
    doctor_finding(&d, &admin, "redis", "ok", &format!("the cluster's Redis at {} answers PING", redis.address()));
    let (_, h) = d.get(&format!("/api/admin/rooms/{}/participants", on_b[0].0), Some(&admin));
    assert!(h.to_string().contains("node_lost"), "history says why: {h}");

    // The remaining node keeps serving: its clients stay, and a dead node's room reopens on it.
    for mut_m in members.iter_mut().filter(|m| m.host == id_a && m.via == a.ip) {
        assert!(listed_identities(&d, &admin, &mut_m.room).contains(&mut_m.identity));
        let st = mut_m.client.state();
        assert_eq!(st["event"], "state", "{st}");
    }
    let room = on_b[0].0.clone();
    let (_, j) = d.post("/api/room/join", Some(&admin), json!({ "room": room }));
    let mut again = Participant::connect(&a.ws_url(), j["token"].as_str().unwrap(), 120);
    again.publish_audio();
    eventually(SECS(10), "rejoined on the remaining node and listed", || listed_identities(&d, &admin, &room).contains(&j["identity"].as_str().unwrap().to_string()));
    eventually(SECS(10), "the room moved to the remaining node", || host_of(&d, &room).as_deref() == Some(id_a.as_str()));
    again.leave();
}
