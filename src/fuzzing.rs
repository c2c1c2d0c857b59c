//! Entry points for the fuzzers in `fuzz/` and for the test that replays their corpus and every
//! input that once failed (`fuzz/corpus/`, `fuzz/regressions/`). Each takes raw bytes and
//! panics only when bedrud misbehaves: a panic inside bedrud, or a 500 answer.
#![doc(hidden)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use tower::ServiceExt;

use crate::config::{self, Config};
use crate::livekit::status::{LivekitStatus, Mode};
use crate::livekit::ApiKeys;
use crate::store::{self, Role, Store, User};

/// A directory of its own under the system's temporary directory (left behind: a fuzzing or
/// test process makes one or two).
fn scratch_dir(what: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("bedrud-fuzz-{what}-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&d);
    d
}

fn keys() -> ApiKeys {
    ApiKeys { key: "APIfuzz".into(), secret: "fuzz-secret-0123456789abcdefghijklmnopqrstuvwxyz".into() }
}

/// A config file: the first byte picks YAML (even) or TOML (odd); the file is loaded as
/// `bedrud run` loads it (parse, environment, secrets, validation).
pub fn config(data: &[u8]) {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    let Some((&pick, rest)) = data.split_first() else { return };
    let dir = DIR.get_or_init(|| scratch_dir("config"));
    let path = dir.join(if pick % 2 == 0 { "config.yaml" } else { "config.toml" });
    if std::fs::write(&path, rest).is_err() {
        return;
    }
    if let Ok(loaded) = config::load_with_env(Some(&path), &BTreeMap::new()) {
        // What loads must print and load again the same.
        let yaml = loaded.config.redacted_yaml();
        let again = config::parse(Path::new("again.yaml"), &yaml).expect("the effective config must parse again");
        assert_eq!(again.server, loaded.config.server);
    }
}

/// The webhook endpoint's input: `Authorization` up to the first newline, then the body.
pub fn webhook(data: &[u8]) {
    let (auth, body) = match data.iter().position(|&b| b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    let auth = String::from_utf8_lossy(auth);
    let _ = crate::livekit::webhook::verify(&keys(), Some(&auth), body);
    let _ = crate::livekit::webhook::parse(body);
}

/// `livekit-server --version` output.
pub fn livekit_version(data: &[u8]) {
    if let Some(v) = crate::livekit::binary::Version::parse(&String::from_utf8_lossy(data)) {
        let again = crate::livekit::binary::Version::parse(&format!("{}.{}.{}", v.major, v.minor, v.patch));
        assert_eq!(again, Some(v));
    }
}

/// livekit-server's output (JSON log lines, console lines, plain text), through the
/// supervisor's line handling.
pub fn livekit_log(data: &[u8]) {
    crate::supervise::fuzz_output(data);
}

/// The endpoints that take a JSON body; the first input byte picks one.
const JSON_ENDPOINTS: [(&str, &str); 10] = [
    ("POST", "/api/auth/register"),
    ("POST", "/api/auth/login"),
    ("PUT", "/api/auth/password"),
    ("POST", "/api/admin/users"),
    ("PUT", "/api/admin/users/fuzz-user"),
    ("POST", "/api/room/create"),
    ("PUT", "/api/room/fuzz-room/settings"),
    ("POST", "/api/room/join"),
    ("POST", "/api/room/fuzz-room/mute/someone"),
    ("PUT", "/api/room/fuzz-room/permissions/someone"),
];

struct Api {
    rt: tokio::runtime::Runtime,
    router: axum::Router,
    store: Store,
    admin_token: Mutex<String>,
    _status: tokio::sync::watch::Sender<LivekitStatus>,
}

impl Api {
    fn start() -> Api {
        let db = scratch_dir("api").join("fuzz.redb");
        let _ = std::fs::remove_file(&db);
        let store = Store::open(&db).expect("store");
        let mut cfg = Config::default();
        cfg.auth.registration = true;
        cfg.auth.guest_join = true;
        // No LiveKit listens here: calls to it fail at once (502), as when it is down.
        cfg.livekit.internal_host = Some("http://127.0.0.1:9".into());
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        let (tx, rx) = tokio::sync::watch::channel(LivekitStatus::new(Mode::Embedded));
        let signin = crate::http::Signin::from_config(&cfg).expect("sign-in settings");
        let state = rt.block_on(async {
            Arc::new(crate::http::AppState::new(Arc::new(cfg), store.clone(), keys(), rx, tokio_util::sync::CancellationToken::new(), signin))
        });
        let router = crate::http::router(state);
        for (name, role) in [("fuzz-admin", Role::Admin), ("fuzz-user", Role::User)] {
            let u = crate::auth::new_user(name, "fuzz-password", role).expect("user");
            store.write_blocking(move |t| store::insert_user(t, &u)).expect("insert user");
        }
        let owner = store.read_blocking(|t| store::user_by_name(t, "fuzz-admin")).ok().flatten().map(|u| u.id).unwrap_or_default();
        let room = store::Room::new("fuzz-room", &owner, 0, Default::default());
        store.write_blocking(move |t| store::room_insert(t, &room)).expect("room");
        let api = Api { rt, router, store, admin_token: Mutex::new(String::new()), _status: tx };
        api.new_admin_session();
        api
    }

    /// A fresh session for the admin (a fuzzed password change or disabling ends the old one).
    fn new_admin_session(&self) {
        let Ok(Some(mut admin)) = self.store.read_blocking(|t| store::user_by_name(t, "fuzz-admin")) else { return };
        admin.disabled = false;
        admin.role = Role::Admin;
        let (token, key) = crate::auth::new_token();
        let session = crate::auth::user_session(&admin, std::time::Duration::from_secs(3600));
        let a: User = admin.clone();
        let _ = self.store.write_blocking(move |t| {
            store::put_user(t, &a)?;
            store::session_put(t, &key, &session)
        });
        *self.admin_token.lock().unwrap_or_else(|e| e.into_inner()) = token;
    }
}

/// A JSON body for the endpoint the first byte picks, as the administrator.
pub fn json_body(data: &[u8]) {
    static API: OnceLock<Api> = OnceLock::new();
    let Some((&pick, body)) = data.split_first() else { return };
    let api = API.get_or_init(Api::start);
    let (method, path) = JSON_ENDPOINTS[pick as usize % JSON_ENDPOINTS.len()];
    let token = api.admin_token.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let req = axum::http::Request::builder()
        .method(method)
        .uri(path)
        .header("content-type", "application/json")
        .header("authorization", format!("Bearer {token}"))
        .extension(crate::http::ClientAddr(Some(([127, 0, 0, 1], 4000).into())))
        .body(axum::body::Body::from(body.to_vec()))
        .expect("request");
    let resp = api.rt.block_on(api.router.clone().oneshot(req)).expect("router is infallible");
    let status = resp.status();
    assert_ne!(status.as_u16(), 500, "{method} {path} answered 500 to {:?}", String::from_utf8_lossy(body));
    if status.as_u16() == 401 {
        api.new_admin_session();
    }
}

/// The inputs kept for `target`: its corpus and the inputs that once failed.
pub fn saved_inputs(repo: &Path, target: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for dir in [repo.join("fuzz/corpus").join(target), repo.join("fuzz/regressions").join(target)] {
        if let Ok(rd) = std::fs::read_dir(&dir) {
            out.extend(rd.flatten().map(|e| e.path()).filter(|p| p.is_file()));
        }
    }
    out.sort();
    out
}
