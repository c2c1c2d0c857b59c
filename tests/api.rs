//! The foundation through the real binary: config errors, accounts and sessions, rooms, join
//! tokens, JSON errors, the CLI beside a running daemon. LiveKit is the real livekit-server.

mod common;

use std::time::Duration;

use common::daemon::{cli, jwt_claims, Daemon, Opts, API_KEY, API_SECRET, BIN};
use serde_json::json;

fn daemon() -> Daemon {
    Daemon::start(Opts::default())
}

fn write(dir: &std::path::Path, name: &str, text: &str) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn config_errors_exit_2_with_file_line_key_and_hint() {
    let d = tempfile::tempdir().unwrap();
    let cases: Vec<(&str, &str, Vec<&str>)> = vec![
        ("unknown.yaml", "server:\n  port: 9000\nlivekit:\n  apiSecrte: x\n", vec!["unknown.yaml:4", "livekit.apiSecrte", "unknown key", "did you mean `livekit.apiSecret`"]),
        ("unknown.toml", "[server]\nprot = 9000\n", vec!["unknown.toml:2", "server.prot", "server.port"]),
        ("type.yaml", "server:\n  port: many\n", vec!["type.yaml:2", "server.port", "invalid"]),
        ("malformed.yaml", "server:\n\tport: 1\n", vec!["malformed.yaml:2", "malformed YAML"]),
        ("malformed.toml", "[server\nport = 1\n", vec!["malformed.toml:1", "malformed TOML"]),
        ("port0.yaml", "server:\n  port: 0\n", vec!["port0.yaml:2", "server.port", "invalid value 0"]),
        ("wsurl.yaml", "livekit:\n  host: https://lk.example.com\n", vec!["wsurl.yaml:2", "livekit.host", "ws:// or wss://"]),
        ("short.yaml", "livekit:\n  apiKey: k\n  apiSecret: tooshort\n", vec!["short.yaml:3", "livekit.apiSecret", "too short", "at least 32"]),
        ("contra.yaml", "livekit:\n  external: true\n  embedded: true\n", vec!["livekit.embedded", "contradicts"]),
        ("format.ini", "x=1\n", vec!["config.yaml, config.yml or config.toml"]),
    ];
    for (name, text, expect) in cases {
        let p = write(d.path(), name, text);
        for args in [vec!["config", "check"], vec!["run"]] {
            let (code, out, err) = cli(&p, &args, None);
            assert_eq!(code, 2, "{name} {args:?}: exit {code}, {out} {err}");
            for e in &expect {
                assert!(err.contains(e), "{name} {args:?}: {e:?} not in:\n{err}");
            }
        }
    }
    // A valid file prints the effective config with the secret redacted.
    let p = write(d.path(), "ok.yaml", &format!("livekit:\n  apiKey: {API_KEY}\n  apiSecret: {API_SECRET}\n"));
    let (code, out, err) = cli(&p, &["config", "check"], None);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("apiKey: APItestkey") && out.contains("<redacted>") && !out.contains(API_SECRET), "{out}");
    // Environment overrides take part, and a bad one names the variable.
    let out = std::process::Command::new(BIN)
        .args(["config", "check", "--config"])
        .arg(&p)
        .env("BEDRUD_SERVER_PORT", "nope")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("BEDRUD_SERVER_PORT"));
}

#[test]
fn bad_config_starts_nothing() {
    let d = tempfile::tempdir().unwrap();
    let port = common::free_port();
    let p = write(d.path(), "c.yaml", &format!("server:\n  port: {port}\n  bind: 127.0.0.1\n  hots: x\n"));
    let (code, _, err) = cli(&p, &["run"], None);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("server.hots") && err.contains("server.host"), "{err}");
    assert!(std::net::TcpListener::bind(("127.0.0.1", port)).is_ok(), "nothing listens");
}

#[test]
fn accounts_sessions_and_revocation() {
    let d = daemon();
    let admin = d.admin();
    let (s, v) = d.get("/api/auth/me", Some(&admin));
    assert_eq!((s, v["user"]["role"].as_str()), (200, Some("admin")));

    // Registration is closed by default.
    let (s, v) = d.post("/api/auth/register", None, json!({"username": "eve", "password": "password123"}));
    assert_eq!((s, v["error"]["code"].as_str()), (403, Some("registration_closed")));

    // Admin creates a user; wrong password; good password.
    let (s, _) = d.post("/api/admin/users", Some(&admin), json!({"username": "bob", "password": "bob-password"}));
    assert_eq!(s, 201);
    let (s, v) = d.post("/api/admin/users", Some(&admin), json!({"username": "bob", "password": "bob-password"}));
    assert_eq!((s, v["error"]["code"].as_str()), (409, Some("user_exists")));
    let (s, v) = d.post("/api/auth/login", None, json!({"username": "bob", "password": "wrong-password"}));
    assert_eq!((s, v["error"]["code"].as_str()), (401, Some("invalid_credentials")));
    let bob = d.login("bob", "bob-password");
    let bob2 = d.login("bob", "bob-password");

    // Logout ends that session only.
    assert_eq!(d.api("POST", "/api/auth/logout", Some(&bob), None).0, 204);
    let (s, v) = d.get("/api/auth/me", Some(&bob));
    assert_eq!((s, v["error"]["code"].as_str()), (401, Some("invalid_session")));
    assert_eq!(d.get("/api/auth/me", Some(&bob2)).0, 200);

    // Password change ends every other session and returns a fresh one.
    let (s, v) = d.api("PUT", "/api/auth/password", Some(&bob2), Some(json!({"currentPassword": "bob-password", "newPassword": "bob-password-2"})));
    assert_eq!(s, 200, "{v}");
    let bob3 = v["token"].as_str().unwrap().to_string();
    assert_eq!(d.get("/api/auth/me", Some(&bob2)).0, 401);
    assert_eq!(d.get("/api/auth/me", Some(&bob3)).0, 200);

    // Disabling takes effect at once, and login is refused.
    let (s, _) = d.api("PUT", "/api/admin/users/bob", Some(&admin), Some(json!({"disabled": true})));
    assert_eq!(s, 200);
    assert_eq!(d.get("/api/auth/me", Some(&bob3)).0, 401);
    let (s, v) = d.post("/api/auth/login", None, json!({"username": "bob", "password": "bob-password-2"}));
    assert_eq!((s, v["error"]["code"].as_str()), (403, Some("user_disabled")));

    // The only admin cannot be demoted or deleted.
    let (s, v) = d.api("PUT", "/api/admin/users/admin", Some(&admin), Some(json!({"role": "user"})));
    assert_eq!((s, v["error"]["code"].as_str()), (409, Some("last_admin")));
    assert_eq!(d.api("DELETE", "/api/admin/users/bob", Some(&admin), None).0, 204);
    let (s, v) = d.get("/api/admin/users", Some(&admin));
    assert_eq!(s, 200);
    assert_eq!(v["users"].as_array().unwrap().len(), 1);
}

#[test]
fn failed_logins_are_limited_per_account_and_address() {
    let d = Daemon::start(Opts { auth: "  maxFailedLogins: 3\n  lockout: 1m\n".into(), ..Default::default() });
    d.create_user("carol", "carol-password", false);
    for _ in 0..3 {
        let (s, _) = d.post("/api/auth/login", None, json!({"username": "carol", "password": "nope-nope"}));
        assert_eq!(s, 401);
    }
    // Now even the right password is refused from this address for a while, with Retry-After.
    let resp = common::daemon::http_client()
        .post(d.url("/api/auth/login"))
        .json(&json!({"username": "carol", "password": "carol-password"}))
        .send()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 429);
    assert!(resp.headers().get("retry-after").is_some());
    let v: serde_json::Value = resp.json().unwrap();
    assert_eq!(v["error"]["code"], "too_many_attempts");
    // Another account from the same client is not throttled until the address has failed
    // 4 x maxFailedLogins times.
    for i in 0..9 {
        let (s, _) = d.post("/api/auth/login", None, json!({"username": format!("user{i}"), "password": "whatever1"}));
        assert_eq!(s, 401, "attempt {i}");
    }
    let (s, _) = d.post("/api/auth/login", None, json!({"username": "dave", "password": "whatever1"}));
    assert_eq!(s, 429);
}

#[test]
fn registration_when_open() {
    let d = Daemon::start(Opts { auth: "  registration: true\n".into(), ..Default::default() });
    let (s, v) = d.post("/api/auth/register", None, json!({"username": "eve", "password": "eve-password"}));
    assert_eq!(s, 201, "{v}");
    assert_eq!(v["user"]["role"], "user");
    let (s, v) = d.post("/api/auth/register", None, json!({"username": "EVE!", "password": "eve-password"}));
    assert_eq!((s, v["error"]["code"].as_str()), (400, Some("invalid_username")));
    let (s, v) = d.post("/api/auth/register", None, json!({"username": "frank", "password": "short"}));
    assert_eq!((s, v["error"]["code"].as_str()), (400, Some("invalid_password")));
    d.login("eve", "eve-password");
}

#[test]
fn rooms_names_settings_moderators_and_listing() {
    let d = daemon();
    let admin = d.admin();
    d.create_user("owner", "owner-password", false);
    d.create_user("other", "other-password", false);
    let owner = d.login("owner", "owner-password");
    let other = d.login("other", "other-password");

    for bad in ["ab", "Upper", "under_score", "sp ace", "list", &"x".repeat(64)] {
        let (s, v) = d.post("/api/room/create", Some(&owner), json!({"name": bad}));
        assert_eq!((s, v["error"]["code"].as_str()), (400, Some("invalid_room_name")), "{bad}");
    }
    let (s, v) = d.post("/api/room/create", Some(&owner), json!({"name": "weekly-sync", "settings": {"maxParticipants": 5}}));
    assert_eq!(s, 201, "{v}");
    assert_eq!(v["room"]["owner"], "owner");
    assert_eq!(v["room"]["settings"]["maxParticipants"], 5);
    assert_eq!(v["room"]["settings"]["allowScreenShare"], true);
    let (s, v) = d.post("/api/room/create", Some(&other), json!({"name": "weekly-sync"}));
    assert_eq!((s, v["error"]["code"].as_str()), (409, Some("room_exists")));
    let (s, _) = d.post("/api/room/create", None, json!({"name": "anon-room"}));
    assert_eq!(s, 401);
    let (s, v) = d.post("/api/room/create", Some(&owner), json!({"name": "x-room", "settings": {"bogus": true}}));
    assert_eq!((s, v["error"]["code"].as_str()), (400, Some("invalid_request")));

    // Only owner, moderators and admins change settings.
    let (s, _) = d.api("PUT", "/api/room/weekly-sync/settings", Some(&other), Some(json!({"public": true})));
    assert_eq!(s, 403);
    let (s, v) = d.api("PUT", "/api/room/weekly-sync/settings", Some(&owner), Some(json!({"public": true, "allowChat": false})));
    assert_eq!(s, 200);
    assert_eq!((v["room"]["settings"]["public"].as_bool(), v["room"]["settings"]["allowChat"].as_bool()), (Some(true), Some(false)));
    assert_eq!(v["room"]["settings"]["maxParticipants"], 5, "untouched fields stay");
    assert_eq!(d.api("POST", "/api/room/weekly-sync/moderators/other", Some(&owner), None).0, 201);
    let (s, _) = d.api("PUT", "/api/room/weekly-sync/settings", Some(&other), Some(json!({"maxParticipants": 7})));
    assert_eq!(s, 200, "a moderator manages the room");
    assert_eq!(d.api("DELETE", "/api/room/weekly-sync/moderators/other", Some(&owner), None).0, 204);
    assert_eq!(d.api("DELETE", "/api/room/weekly-sync", Some(&other), None).0, 403);
    assert_eq!(d.api("DELETE", "/api/room/nope-room", Some(&owner), None).0, 404);

    // Pagination over every room for the admin.
    for i in 0..7 {
        assert_eq!(d.post("/api/room/create", Some(&admin), json!({"name": format!("page-{i:02}")})).0, 201);
    }
    let (mut names, mut after) = (Vec::new(), String::new());
    for _ in 0..10 {
        let q = if after.is_empty() { "/api/room/list?limit=3".to_string() } else { format!("/api/room/list?limit=3&after={after}") };
        let (s, v) = d.get(&q, Some(&admin));
        assert_eq!(s, 200);
        for r in v["rooms"].as_array().unwrap() {
            names.push(r["name"].as_str().unwrap().to_string());
        }
        match v["next"].as_str() {
            Some(n) => after = n.to_string(),
            None => break,
        }
    }
    assert_eq!(names.len(), 8, "{names:?}");
    // Users page the same way, in name order, and the pages add up to the whole list.
    let (_, all) = d.get("/api/admin/users", Some(&admin));
    let all: Vec<String> = all["users"].as_array().unwrap().iter().map(|u| u["username"].as_str().unwrap().to_string()).collect();
    assert!(all.len() >= 3 && all.windows(2).all(|w| w[0] < w[1]), "{all:?}");
    let (mut users, mut after) = (Vec::new(), String::new());
    for _ in 0..10 {
        let q = if after.is_empty() { "/api/admin/users?limit=2".to_string() } else { format!("/api/admin/users?limit=2&after={after}") };
        let (s, v) = d.get(&q, Some(&admin));
        assert_eq!(s, 200, "{v}");
        let page = v["users"].as_array().unwrap();
        assert!(page.len() <= 2);
        users.extend(page.iter().map(|u| u["username"].as_str().unwrap().to_string()));
        match v["next"].as_str() {
            Some(n) => after = n.to_string(),
            None => break,
        }
    }
    assert_eq!(users, all);
    for bad in ["limit=0", "limit=1001", "limit=x", "page=2"] {
        let (s, v) = d.get(&format!("/api/admin/users?{bad}"), Some(&admin));
        assert_eq!((s, v["error"]["code"].as_str()), (400, Some("invalid_request")), "{bad}: {v}");
    }
    assert_eq!(d.get("/api/admin/users?limit=2", Some(&other)).0, 403);
    for bad in ["/api/admin/rooms?limit=x", "/api/admin/rooms?limit=0", "/api/room/list?limit=501", "/api/room/list?sort=name"] {
        let (s, v) = d.get(bad, Some(&admin));
        assert_eq!((s, v["error"]["code"].as_str()), (400, Some("invalid_request")), "{bad}: {v}");
    }
    // A user sees public rooms and their own, not others' private ones.
    let (_, v) = d.get("/api/room/list", Some(&other));
    let seen: Vec<&str> = v["rooms"].as_array().unwrap().iter().map(|r| r["name"].as_str().unwrap()).collect();
    assert_eq!(seen, vec!["weekly-sync"]);
    assert_eq!(d.api("DELETE", "/api/room/weekly-sync", Some(&owner), None).0, 204);
    assert_eq!(d.get("/api/room/weekly-sync", Some(&owner)).0, 404);
}

#[test]
fn concurrent_creation_of_one_name_yields_one_201() {
    let d = daemon();
    let admin = d.admin();
    let url = d.url("/api/room/create");
    let handles: Vec<_> = (0..100)
        .map(|_| {
            let (url, admin) = (url.clone(), admin.clone());
            std::thread::spawn(move || {
                common::daemon::http_client()
                    .post(url)
                    .bearer_auth(admin)
                    .json(&json!({"name": "contended"}))
                    .send()
                    .map(|r| r.status().as_u16())
                    .unwrap_or(0)
            })
        })
        .collect();
    let codes: Vec<u16> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    assert_eq!(codes.iter().filter(|c| **c == 201).count(), 1, "{codes:?}");
    assert_eq!(codes.iter().filter(|c| **c == 409).count(), 99, "{codes:?}");
}

#[test]
fn join_token_claims_follow_role_and_settings() {
    let d = Daemon::start(Opts { auth: "  guestJoin: true\n".into(), ..Default::default() });
    let admin = d.admin();
    d.create_user("owner", "owner-password", false);
    d.create_user("member", "member-password", false);
    d.create_user("modr", "modr-password", false);
    let owner = d.login("owner", "owner-password");
    let member = d.login("member", "member-password");
    let modr = d.login("modr", "modr-password");
    d.post("/api/room/create", Some(&owner), json!({"name": "standup", "settings": {"allowScreenShare": false, "allowChat": false}}));
    d.api("POST", "/api/room/standup/moderators/modr", Some(&owner), None);

    let verifier = livekit_api::access_token::TokenVerifier::with_api_key(API_KEY, API_SECRET);
    for (tok, role) in [(&owner, "owner"), (&member, "member"), (&modr, "moderator"), (&admin, "admin")] {
        let (s, v) = d.post("/api/room/join", Some(tok), json!({"room": "standup"}));
        assert_eq!(s, 200, "{v}");
        assert_eq!(v["url"].as_str().unwrap(), format!("ws://127.0.0.1:{}", d.lk_port));
        let claims = verifier.verify(v["token"].as_str().unwrap()).expect("token verifies with the key");
        assert_eq!(claims.iss, API_KEY);
        assert_eq!(claims.sub, v["identity"].as_str().unwrap());
        assert_eq!(claims.video.room, "standup");
        assert!(claims.video.room_join && !claims.video.room_admin && !claims.video.room_create && !claims.video.room_list);
        assert_eq!(claims.video.can_publish_sources, vec!["microphone", "camera"], "screen share off: absent");
        assert_eq!(claims.video.can_publish_data, Some(false), "chat off");
        assert_eq!(claims.video.can_subscribe, Some(true));
        assert_eq!(claims.video.can_update_own_metadata, Some(role != "member"));
        assert!(claims.metadata.contains(role), "{role}: {}", claims.metadata);
        let ttl = claims.exp - claims.nbf;
        assert!((595..=605).contains(&ttl), "default TTL 10 minutes, got {ttl}");
    }
    // The identity is the user's stable id.
    let (_, me) = d.get("/api/auth/me", Some(&member));
    let (_, v) = d.post("/api/room/join", Some(&member), json!({"room": "standup", "name": "Mem Ber"}));
    assert_eq!(v["identity"], me["user"]["id"]);
    assert_eq!(jwt_claims(v["token"].as_str().unwrap())["name"], "Mem Ber");

    // Audio and video off, screen share on.
    d.api("PUT", "/api/room/standup/settings", Some(&owner), Some(json!({"allowAudio": false, "allowVideo": false, "allowScreenShare": true})));
    let (_, v) = d.post("/api/room/join", Some(&member), json!({"room": "standup"}));
    assert_eq!(jwt_claims(v["token"].as_str().unwrap())["video"]["canPublishSources"], json!(["screen_share"]));
    d.api("PUT", "/api/room/standup/settings", Some(&owner), Some(json!({"allowScreenShare": false})));
    let (_, v) = d.post("/api/room/join", Some(&member), json!({"room": "standup"}));
    assert_eq!(jwt_claims(v["token"].as_str().unwrap())["video"]["canPublish"], false);

    // Guests: only public rooms; the identity stays with the guest token.
    let (s, v) = d.post("/api/room/join", None, json!({"room": "standup", "name": "Visitor"}));
    assert_eq!((s, v["error"]["code"].as_str()), (403, Some("forbidden")), "guest on a non-public room");
    d.api("PUT", "/api/room/standup/settings", Some(&owner), Some(json!({"public": true})));
    let (s, v) = d.post("/api/room/join", None, json!({"room": "standup", "name": "Visitor"}));
    assert_eq!(s, 200, "{v}");
    let guest = v["guestToken"].as_str().unwrap().to_string();
    let identity = v["identity"].as_str().unwrap().to_string();
    assert!(identity.starts_with("guest-"));
    let claims = jwt_claims(v["token"].as_str().unwrap());
    assert_eq!(claims["name"], "Visitor");
    assert!(claims["metadata"].as_str().unwrap().contains("guest"));
    let (_, v) = d.post("/api/room/join", Some(&guest), json!({"room": "standup"}));
    assert_eq!(v["identity"].as_str().unwrap(), identity, "same guest, same identity");
    // Guests cannot use the account API.
    assert_eq!(d.get("/api/room/list", Some(&guest)).0, 403);

    // Errors: no room, no session.
    let (s, v) = d.post("/api/room/join", Some(&member), json!({"room": "no-such-room"}));
    assert_eq!((s, v["error"]["code"].as_str()), (404, Some("room_not_found")));
    let (s, _) = d.post("/api/room/join", Some("not-a-token"), json!({"room": "standup"}));
    assert_eq!(s, 401);
}

#[test]
fn guests_need_guest_join() {
    let d = daemon();
    let admin = d.admin();
    d.post("/api/room/create", Some(&admin), json!({"name": "open-house", "settings": {"public": true}}));
    let (s, v) = d.post("/api/room/join", None, json!({"room": "open-house"}));
    assert_eq!((s, v["error"]["code"].as_str()), (401, Some("unauthorized")));
}

#[test]
fn errors_are_json_with_stable_codes() {
    let d = daemon();
    let admin = d.admin();
    let (s, v) = d.get("/api/nothing-here", None);
    assert_eq!((s, v["error"]["code"].as_str()), (404, Some("not_found")));
    let (s, v) = d.api("DELETE", "/api/auth/login", None, None);
    assert_eq!((s, v["error"]["code"].as_str()), (405, Some("method_not_allowed")));
    let c = common::daemon::http_client();
    let r = c.post(d.url("/api/room/create")).bearer_auth(&admin).header("content-type", "application/json").body("{not json").send().unwrap();
    assert_eq!(r.status().as_u16(), 400);
    assert_eq!(r.json::<serde_json::Value>().unwrap()["error"]["code"], "invalid_json");
    let r = c.post(d.url("/api/room/create")).bearer_auth(&admin).body("{}").send().unwrap();
    assert_eq!(r.status().as_u16(), 415);
    let big = format!("{{\"name\": \"{}\"}}", "a".repeat(200_000));
    let r = c.post(d.url("/api/room/create")).bearer_auth(&admin).header("content-type", "application/json").body(big).send().unwrap();
    assert_eq!(r.status().as_u16(), 413);
    assert_eq!(r.json::<serde_json::Value>().unwrap()["error"]["code"], "payload_too_large");
    let (s, v) = d.get("/api/health", None);
    assert_eq!((s, v["status"].as_str()), (200, Some("ok")));
}

#[test]
fn cli_works_beside_the_daemon_and_a_second_daemon_is_refused() {
    let mut d = daemon();
    d.create_user("root-admin", "admin-password", true);
    let (code, out, err) = d.cli(&["user", "list"], None);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("root-admin") && out.contains("admin"), "{out}");
    let (code, _, err) = d.cli(&["user", "create", "x", "--password-stdin"], Some("short"));
    assert_ne!(code, 0);
    assert!(err.contains("at least 8"), "{err}");
    let (code, _, err) = d.cli(&["user", "create", "root-admin", "--password-stdin"], Some("password123"));
    assert_ne!(code, 0);
    assert!(err.contains("already exists"), "{err}");
    let t = d.login("root-admin", "admin-password");
    d.post("/api/room/create", Some(&t), json!({"name": "cli-room"}));
    let (code, out, _) = d.cli(&["room", "list"], None);
    assert!(code == 0 && out.contains("cli-room") && out.contains("root-admin"), "{out}");
    let (code, out, _) = d.cli(&["room", "show", "cli-room"], None);
    assert!(code == 0 && out.contains("\"name\": \"cli-room\""), "{out}");
    let (code, _, _) = d.cli(&["user", "disable", "root-admin"], None);
    assert_ne!(code, 0, "the last admin cannot be disabled");
    d.create_user("second", "second-password", false);
    let (code, _, err) = d.cli(&["user", "passwd", "second", "--password-stdin"], Some("new-password-1"));
    assert_eq!(code, 0, "{err}");
    d.login("second", "new-password-1");

    // A second daemon on the same database is refused with a clear message.
    let out = std::process::Command::new(BIN)
        .args(["run", "--config"])
        .arg(&d.config)
        .env("BEDRUD_SERVER_PORT", common::free_port().to_string())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("in use by another process"), "{}", String::from_utf8_lossy(&out.stderr));

    // With the daemon stopped the CLI opens the file directly.
    d.stop();
    let (code, out, err) = d.cli(&["user", "delete", "second"], None);
    assert_eq!(code, 0, "{out} {err}");
    let (_, out, _) = d.cli(&["user", "list"], None);
    assert!(!out.contains("second"));
}

#[test]
fn generated_keys_persist_across_restarts() {
    let mut d = Daemon::start(Opts { with_keys: false, ..Default::default() });
    let admin = d.admin();
    d.post("/api/room/create", Some(&admin), json!({"name": "keys-room"}));
    let (_, v) = d.post("/api/room/join", Some(&admin), json!({"room": "keys-room"}));
    let iss1 = jwt_claims(v["token"].as_str().unwrap())["iss"].as_str().unwrap().to_string();
    let (code, out, _) = d.cli(&["livekit", "print-config"], None);
    assert_eq!(code, 0);
    assert!(out.contains(&iss1), "print-config names the generated key: {out}");
    d.stop();
    let (code, out, _) = d.cli(&["livekit", "print-config", "--show-secrets"], None);
    assert_eq!(code, 0);
    let secret_line = out.lines().find(|l| l.contains(&iss1)).unwrap_or_default().to_string();
    let secret = secret_line.split(':').nth(1).unwrap_or("").trim().trim_matches('"').to_string();
    assert_eq!(secret.len(), 48, "48-character generated secret: {secret_line}");
    d.spawn();
    d.wait_ready();
    let admin = d.login("admin", "admin-password");
    let (_, v) = d.post("/api/room/join", Some(&admin), json!({"room": "keys-room"}));
    let tok = v["token"].as_str().unwrap();
    assert_eq!(jwt_claims(tok)["iss"].as_str().unwrap(), iss1, "same key after restart");
    livekit_api::access_token::TokenVerifier::with_api_key(&iss1, &secret).verify(tok).expect("same secret after restart");
    std::thread::sleep(Duration::from_millis(10));
}

/// A browser-like request: the session cookie (when given) and the page's Origin.
fn browser(d: &Daemon, method: &str, path: &str, cookie: Option<&str>, origin: Option<&str>, body: Option<serde_json::Value>) -> reqwest::blocking::Response {
    let c = common::daemon::http_client();
    let mut req = c.request(reqwest::Method::from_bytes(method.as_bytes()).unwrap(), d.url(path));
    if let Some(k) = cookie {
        req = req.header("cookie", format!("theme=dark; bedrud_session={k}"));
    }
    if let Some(o) = origin {
        req = req.header("origin", o);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    req.send().unwrap()
}

/// The session token a `Set-Cookie` answer carries ("" when it clears the cookie).
fn session_from(resp: &reqwest::blocking::Response) -> Option<(String, String)> {
    let v = resp.headers().get("set-cookie")?.to_str().ok()?.to_string();
    let token = v.strip_prefix("bedrud_session=")?.split(';').next()?.to_string();
    Some((token, v))
}

#[test]
fn browser_sessions_live_in_a_cookie_and_other_sites_are_refused() {
    let d = Daemon::start(Opts { auth: "  guestJoin: true\n".into(), ..Opts::default() });
    let admin = d.admin();
    d.create_user("carol", "carol-password", false);
    let own = format!("http://127.0.0.1:{}", d.port);

    // Sign-in for the web client: the session goes into an HttpOnly cookie, not the body.
    let r = browser(&d, "POST", "/api/auth/login", None, Some(&own), Some(json!({"username": "carol", "password": "carol-password", "session": "cookie"})));
    assert_eq!(r.status().as_u16(), 200);
    let (cookie, header) = session_from(&r).expect("set-cookie");
    assert!(header.contains("HttpOnly") && header.contains("SameSite=Lax") && header.contains("Path=/"), "{header}");
    assert!(!header.contains("Secure"), "no Secure without TLS: {header}");
    let body: serde_json::Value = r.json().unwrap();
    assert!(body.get("token").is_none(), "the token stays out of scripts' reach: {body}");
    assert_eq!(body["user"]["username"], "carol");

    // The cookie authenticates reads, and writes from bedrud's own pages.
    let r = browser(&d, "GET", "/api/auth/me", Some(&cookie), None, None);
    assert_eq!(r.status().as_u16(), 200);
    let r = browser(&d, "POST", "/api/room/create", Some(&cookie), Some(&own), Some(json!({"name": "cookie-room"})));
    assert_eq!(r.status().as_u16(), 201);

    // Another site, or no Origin at all, cannot use the cookie to change anything.
    for origin in [Some("http://evil.example"), Some("null"), Some(&format!("http://127.0.0.1:{}", d.port + 1)[..]), None] {
        let r = browser(&d, "POST", "/api/room/create", Some(&cookie), origin, Some(json!({"name": "csrf-room"})));
        assert_eq!(r.status().as_u16(), 403, "origin {origin:?}");
        assert_eq!(r.json::<serde_json::Value>().unwrap()["error"]["code"], "csrf_rejected");
        let r = browser(&d, "DELETE", "/api/room/cookie-room", Some(&cookie), origin, None);
        assert_eq!(r.status().as_u16(), 403, "origin {origin:?}");
    }
    // Nothing changed.
    assert_eq!(d.get("/api/room/csrf-room", Some(&admin)).0, 404);
    assert_eq!(d.get("/api/room/cookie-room", Some(&admin)).0, 200);
    // A sign-in posted from another site is refused too (login CSRF).
    let r = browser(&d, "POST", "/api/auth/login", None, Some("http://evil.example"), Some(json!({"username": "carol", "password": "carol-password", "session": "cookie"})));
    assert_eq!(r.status().as_u16(), 403);
    // Bearer tokens are not ambient: API clients are unaffected by Origin.
    let (s, _) = d.post("/api/room/create", Some(&admin), json!({"name": "bearer-room"}));
    assert_eq!(s, 201);

    // Password change through the cookie hands over a fresh cookie; the old one is void.
    let r = browser(&d, "PUT", "/api/auth/password", Some(&cookie), Some(&own), Some(json!({"currentPassword": "carol-password", "newPassword": "carol-password-2"})));
    assert_eq!(r.status().as_u16(), 200);
    let (fresh, _) = session_from(&r).expect("fresh cookie");
    assert!(r.json::<serde_json::Value>().unwrap().get("token").is_none());
    assert_eq!(browser(&d, "GET", "/api/auth/me", Some(&cookie), None, None).status().as_u16(), 401);
    assert_eq!(browser(&d, "GET", "/api/auth/me", Some(&fresh), None, None).status().as_u16(), 200);

    // Sign-out ends the session and clears the cookie.
    let r = browser(&d, "POST", "/api/auth/logout", Some(&fresh), Some(&own), None);
    assert_eq!(r.status().as_u16(), 204);
    let (cleared, header) = session_from(&r).expect("clearing cookie");
    assert!(cleared.is_empty() && header.contains("Max-Age=0"), "{header}");
    assert_eq!(browser(&d, "GET", "/api/auth/me", Some(&fresh), None, None).status().as_u16(), 401);

    // A guest joining from the browser gets its session as a cookie and keeps its identity.
    d.post("/api/room/create", Some(&admin), json!({"name": "open-door", "settings": {"public": true}}));
    let r = browser(&d, "POST", "/api/room/join", None, Some(&own), Some(json!({"room": "open-door", "name": "Visitor", "session": "cookie"})));
    assert_eq!(r.status().as_u16(), 200);
    let (guest, _) = session_from(&r).expect("guest cookie");
    let first: serde_json::Value = r.json().unwrap();
    assert!(first.get("guestToken").is_none());
    let r = browser(&d, "POST", "/api/room/join", Some(&guest), Some(&own), Some(json!({"room": "open-door", "session": "cookie"})));
    let again: serde_json::Value = r.json().unwrap();
    assert_eq!(again["identity"], first["identity"]);
    assert_eq!(again["role"], "guest");
}

#[test]
fn info_security_headers_web_client_and_livekit_url() {
    let d = Daemon::start(Opts { auth: "  registration: true\n".into(), ..Opts::default() });
    let (s, v) = d.get("/api/info", None);
    assert_eq!((s, v["registration"].as_bool(), v["guestJoin"].as_bool()), (200, Some(true), Some(false)));

    let c = common::daemon::http_client();
    let r = c.get(d.url("/api/health")).send().unwrap();
    assert_eq!(r.headers()["x-content-type-options"], "nosniff");
    assert_eq!(r.headers()["cache-control"], "no-store");
    assert_eq!(r.headers()["referrer-policy"], "no-referrer");

    // The page: `/` and client routes answer HTML with a CSP naming LiveKit; API paths stay JSON.
    for path in ["/", "/r/team-sync", "/admin"] {
        let r = c.get(d.url(path)).send().unwrap();
        assert_eq!(r.status().as_u16(), 200, "{path}");
        assert_eq!(r.headers()["content-type"], "text/html; charset=utf-8");
        let csp = r.headers()["content-security-policy"].to_str().unwrap().to_string();
        assert!(csp.contains(&format!("ws://127.0.0.1:{}", d.lk_port)), "{csp}");
        assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    }
    let (s, v) = d.get("/api/no-such-thing", None);
    assert_eq!((s, v["error"]["code"].as_str()), (404, Some("not_found")));

    // When the client is built into this binary, its hashed assets are served compressed and
    // cached for good.
    let page = c.get(d.url("/")).send().unwrap().text().unwrap();
    if let Some(asset) = page.split("src=\"").nth(1).and_then(|s| s.split('"').next()).filter(|s| s.starts_with("/assets/")) {
        let r = c.get(d.url(asset)).header("accept-encoding", "br, gzip").send().unwrap();
        assert_eq!(r.status().as_u16(), 200);
        assert_eq!(r.headers()["content-type"], "text/javascript; charset=utf-8");
        assert_eq!(r.headers()["cache-control"], "public, max-age=31536000, immutable");
        assert_eq!(r.headers()["content-encoding"], "br");
    } else {
        assert!(page.contains("npm run build"), "without a client the page says how to build it: {page}");
    }

    // The LiveKit URL of a join follows the host name the client used to reach bedrud.
    let admin = d.admin();
    d.post("/api/room/create", Some(&admin), json!({"name": "lan-room"}));
    let r = c
        .post(d.url("/api/room/join"))
        .bearer_auth(&admin)
        .header("host", format!("192.168.77.10:{}", d.port))
        .json(&json!({"room": "lan-room"}))
        .send()
        .unwrap();
    let v: serde_json::Value = r.json().unwrap();
    assert_eq!(v["url"], format!("ws://192.168.77.10:{}", d.lk_port));
}

#[test]
fn admin_event_stream_sends_the_overview() {
    use std::io::{BufRead, BufReader};
    let d = daemon();
    let admin = d.admin();
    d.create_user("dave", "dave-password", false);
    let dave = d.login("dave", "dave-password");
    let c = common::daemon::http_client();
    assert_eq!(c.get(d.url("/api/admin/events")).bearer_auth(&dave).send().unwrap().status().as_u16(), 403);
    let r = c.get(d.url("/api/admin/events")).bearer_auth(&admin).send().unwrap();
    assert_eq!(r.headers()["content-type"], "text/event-stream");
    let mut lines = BufReader::new(r).lines();
    let mut events = Vec::new();
    let started = std::time::Instant::now();
    // The first overview at once, the next one within the period.
    while events.len() < 2 && started.elapsed() < Duration::from_secs(20) {
        let Some(Ok(line)) = lines.next() else { break };
        if let Some(data) = line.strip_prefix("data: ") {
            events.push(serde_json::from_str::<serde_json::Value>(data).unwrap());
        }
    }
    assert_eq!(events.len(), 2, "two overview events");
    assert_eq!(events[0]["livekit"]["state"], "ready");
    assert_eq!(events[0]["livekit"]["mode"], "embedded");
    assert_eq!(events[1]["users"], 2);
}

/// A daemon that sends mail through `smtp` with STARTTLS (trusting `ca`) and a login whose
/// password comes from a file.
fn with_mail(smtp: &common::signin::SmtpSink, ca: &std::path::Path, dir: &std::path::Path) -> Daemon {
    use std::os::unix::fs::PermissionsExt;
    let pass = write(dir, "smtp-password", "mail-pass\n");
    std::fs::set_permissions(&pass, std::fs::Permissions::from_mode(0o600)).unwrap();
    let extra = format!(
        "smtp:\n  host: 127.0.0.1\n  port: {}\n  security: starttls\n  caFile: {}\n  username: bedrud\n  passwordFile: {}\n  from: bedrud <meet@example.org>\n",
        smtp.port,
        ca.display(),
        pass.display()
    );
    Daemon::start(Opts { extra, ..Opts::default() })
}

/// Mail through a real SMTP server (aiosmtpd with STARTTLS and a login): an address is
/// verified by its link, a reset link sets a new password and ends the sessions; each link
/// works once, a password change voids an older reset link, and answers do not tell which
/// addresses have accounts.
#[test]
fn mail_verification_and_password_reset() {
    use common::signin::{link_in, token_of, SmtpSink};
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = common::tls::self_signed(dir.path(), "mail.localhost");
    let smtp = SmtpSink::start(Some(("bedrud", "mail-pass")), Some((&cert, &key)));
    let d = with_mail(&smtp, &cert, dir.path());
    let (_, info) = d.get("/api/info", None);
    assert_eq!(info["mail"], true, "{info}");
    d.create_user("alice", "alice-password", false);
    d.create_user("bob", "bob-password", false);
    let alice = d.login("alice", "alice-password");
    let bob = d.login("bob", "bob-password");
    let public = format!("http://localhost:{}", d.port);

    // Setting an address sends a verification link; the relay saw STARTTLS and the login.
    let mut answers = Vec::new();
    let mut record = |op: &str, s: u16, v: &serde_json::Value| answers.push(json!({ "op": op, "status": s, "body": v }));
    let (s, v) = d.api("PUT", "/api/auth/email", Some(&alice), Some(json!({ "email": " Alice@Example.org" })));
    assert_eq!(s, 200, "{v}");
    record("PUT /api/auth/email", s, &v);
    assert_eq!((v["user"]["email"].as_str(), v["user"]["emailVerified"].as_bool(), v["verificationSent"].as_bool()), (Some("alice@example.org"), Some(false), Some(true)), "{v}");
    let m = smtp.wait_for("alice@example.org", "Confirm");
    assert_eq!((m["login"].as_str(), m["tls"].as_bool(), m["from"].as_str()), (Some("bedrud"), Some(true), Some("meet@example.org")), "{m}");
    let verify = token_of(&link_in(m["body"].as_str().unwrap(), &format!("{public}/verify-email?token=")));
    let (s, v) = d.post("/api/auth/email/verify", None, json!({ "token": verify }));
    assert_eq!((s, v["user"]["emailVerified"].as_bool()), (200, Some(true)), "{v}");
    record("POST /api/auth/email/verify", s, &v);
    let (s, v) = d.post("/api/auth/email/verify", None, json!({ "token": verify }));
    assert_eq!((s, v["error"]["code"].as_str()), (400, Some("invalid_link")), "used twice: {v}");
    record("POST /api/auth/email/verify", s, &v);
    // Nobody else can take the verified address.
    let (s, v) = d.api("PUT", "/api/auth/email", Some(&bob), Some(json!({ "email": "alice@example.org" })));
    assert_eq!((s, v["error"]["code"].as_str()), (409, Some("email_taken")), "{v}");
    record("PUT /api/auth/email", s, &v);
    let (s, v) = d.api("PUT", "/api/auth/email", Some(&bob), Some(json!({ "email": "not-an-address" })));
    assert_eq!((s, v["error"]["code"].as_str()), (400, Some("invalid_email")), "{v}");

    // A reset link: a refused password does not use it up; the good one ends every session.
    let before = smtp.messages().len();
    for email in ["ALICE@example.org", "nobody@example.org"] {
        let (s, v) = d.post("/api/auth/password/forgot", None, json!({ "email": email }));
        assert_eq!(s, 202, "{email}: {v}");
    }
    let m = smtp.wait_for("alice@example.org", "Reset");
    let link = link_in(m["body"].as_str().unwrap(), &format!("{public}/reset-password?token="));
    let reset = token_of(&link);
    let (s, v) = d.post("/api/auth/password/reset", None, json!({ "token": reset, "newPassword": "short" }));
    assert_eq!((s, v["error"]["code"].as_str()), (400, Some("invalid_password")), "{v}");
    let (s, v) = d.post("/api/auth/password/reset", None, json!({ "token": reset, "newPassword": "alice-password-2" }));
    assert_eq!(s, 200, "{v}");
    record("POST /api/auth/password/reset", s, &v);
    assert_eq!(d.get("/api/auth/me", Some(&alice)).0, 401, "the old session ended");
    let (s, v) = d.post("/api/auth/password/reset", None, json!({ "token": reset, "newPassword": "alice-password-3" }));
    assert_eq!((s, v["error"]["code"].as_str()), (400, Some("invalid_link")), "used twice: {v}");
    let alice = d.login("alice", "alice-password-2");
    // The unknown address got nothing: only the verification and the reset went out.
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(smtp.messages().len(), before + 1, "{:?}", smtp.messages());

    // A password changed after the link was sent voids the link.
    let (s, _) = d.post("/api/auth/password/forgot", None, json!({ "email": "alice@example.org" }));
    assert_eq!(s, 202);
    common::daemon::eventually(Duration::from_secs(20), "a second reset mail", || smtp.messages().len() == before + 2);
    let stale = token_of(&link_in(smtp.messages()[before + 1]["body"].as_str().unwrap(), &format!("{public}/reset-password?token=")));
    let (s, v) = d.api("PUT", "/api/auth/password", Some(&alice), Some(json!({ "currentPassword": "alice-password-2", "newPassword": "alice-password-4" })));
    assert_eq!(s, 200, "{v}");
    let (s, v) = d.post("/api/auth/password/reset", None, json!({ "token": stale, "newPassword": "alice-password-5" }));
    assert_eq!((s, v["error"]["code"].as_str()), (400, Some("invalid_link")), "{v}");

    // Repeated requests for one address from one client are limited: five, then 429.
    let codes: Vec<u16> = (0..6).map(|_| d.post("/api/auth/password/forgot", None, json!({ "email": "someone@example.org" })).0).collect();
    assert_eq!(codes, [202, 202, 202, 202, 202, 429], "{codes:?}");
    let (s, v) = d.post("/api/auth/password/forgot", None, json!({ "email": "someone@example.org" }));
    record("POST /api/auth/password/forgot", s, &v);

    // An invite link sent by mail, in the reader's language: it lets one guest into the
    // private room, then no one. A bad address makes no invite.
    let alice = d.login("alice", "alice-password-4");
    d.post("/api/room/create", Some(&alice), json!({ "name": "mailed-room" }));
    let (s, v) = d.post("/api/room/mailed-room/invites", Some(&alice), json!({ "email": "Guest@Example.org", "maxUses": 1, "lang": "zh" }));
    assert_eq!((s, v["mailedTo"].as_str()), (201, Some("guest@example.org")), "{v}");
    record("POST /api/room/{name}/invites", s, &v);
    let m = smtp.wait_for("guest@example.org", "mailed-room");
    assert!(m["subject"].as_str().unwrap().contains("邀请"), "{m}");
    let link = link_in(m["body"].as_str().unwrap(), &format!("{public}/r/mailed-room?invite="));
    assert_eq!(link, format!("{public}{}", v["path"].as_str().unwrap()));
    let secret = link.split("invite=").nth(1).unwrap();
    let (s, g) = join_as(&d, None, "mailed-room", "Gwen", Some(secret));
    assert_eq!((s, g["role"].as_str()), (200, Some("guest")), "{g}");
    let (s, g) = join_as(&d, None, "mailed-room", "Hugo", Some(secret));
    assert_eq!((s, code(&g)), (410, "invite_used_up"), "{g}");
    let (s, v) = d.post("/api/room/mailed-room/invites", Some(&alice), json!({ "email": "not an address" }));
    assert_eq!((s, code(&v)), (400, "invalid_email"), "{v}");
    let invites = |d: &Daemon| d.get("/api/room/mailed-room/invites", Some(&alice)).1["invites"].as_array().unwrap().len();
    assert_eq!(invites(&d), 1, "the refused request made no invite");

    // With the relay gone, sending fails with a clear answer and the address is still kept.
    drop(smtp);
    let (s, v) = d.post("/api/room/mailed-room/invites", Some(&alice), json!({ "email": "guest@example.org" }));
    assert_eq!((s, code(&v)), (502, "mail_failed"), "{v}");
    assert!(v["error"]["message"].as_str().unwrap_or("").contains("no invite was made"), "{v}");
    record("POST /api/room/{name}/invites", s, &v);
    assert_eq!(invites(&d), 1, "an invite whose mail failed is withdrawn");
    let (s, v) = d.api("PUT", "/api/auth/email", Some(&bob), Some(json!({ "email": "bob@example.org" })));
    assert_eq!((s, v["verificationSent"].as_bool()), (200, Some(false)), "{v}");
    let (s, v) = d.post("/api/auth/email/resend", Some(&bob), json!({}));
    assert_eq!((s, v["error"]["code"].as_str()), (502, Some("mail_failed")), "{v}");
    assert!(v["error"]["message"].as_str().unwrap_or("").contains("could not be sent"), "{v}");
    record("POST /api/auth/email/resend", s, &v);
    // The answers are the ones the OpenAPI document describes.
    let (_, doc) = d.get("/api/openapi.json", None);
    common::validate_answers(&doc, answers);
}

/// Joins `room` as the caller of `token` (or as a new guest), through `invite` if given.
fn join_as(d: &Daemon, token: Option<&str>, room: &str, name: &str, invite: Option<&str>) -> (u16, serde_json::Value) {
    let mut body = json!({ "room": room, "name": name });
    if let Some(i) = invite {
        body["invite"] = json!(i);
    }
    d.post("/api/room/join", token, body)
}

fn code(v: &serde_json::Value) -> &str {
    v["error"]["code"].as_str().unwrap_or("")
}

#[test]
fn invite_links_open_a_private_room() {
    let d = daemon(); // guest access off: only invites let guests in
    d.create_user("owner", "owner-password", false);
    d.create_user("member", "member-password", false);
    let owner = d.login("owner", "owner-password");
    let member = d.login("member", "member-password");
    d.post("/api/room/create", Some(&owner), json!({ "name": "private-room" }));
    d.post("/api/room/create", Some(&owner), json!({ "name": "other-room" }));
    assert_eq!(join_as(&d, None, "private-room", "Gina", None).0, 401);

    let (s, v) = d.post("/api/room/private-room/invites", Some(&owner), json!({ "maxUses": 2, "expiresIn": 3600 }));
    assert_eq!(s, 201, "{v}");
    let token = v["token"].as_str().unwrap().to_string();
    assert_eq!(v["path"], format!("/r/private-room?invite={token}"));
    assert_eq!((v["invite"]["status"].as_str(), v["invite"]["uses"].as_u64(), v["invite"]["role"].as_str()), (Some("active"), Some(0), Some("participant")));
    let id = v["invite"]["id"].as_str().unwrap().to_string();
    // Only the secret's hash is stored, and no listing shows either.
    let hash = {
        use sha2::Digest;
        sha2::Sha256::digest(token.as_bytes()).iter().map(|b| format!("{b:02x}")).collect::<String>()
    };
    let file = std::fs::read(d.dir.path().join("bedrud.redb")).unwrap();
    let has = |needle: &str| file.windows(needle.len()).any(|w| w == needle.as_bytes());
    assert!(has(&hash) && !has(&token), "the database holds the hash, never the secret");
    let (_, list) = d.get("/api/room/private-room/invites", Some(&owner));
    assert_eq!((list["invites"].as_array().unwrap().len(), list["invites"][0]["id"].as_str()), (1, Some(id.as_str())), "{list}");
    assert!(!list.to_string().contains(&token) && !list.to_string().contains(&hash), "{list}");
    let (s, v) = d.post("/api/invite/check", None, json!({ "token": token }));
    assert_eq!((s, v["invite"]["room"].as_str()), (200, Some("private-room")), "{v}");
    // This server sends no mail: asking for an invite by mail says so and makes none.
    let (s, v) = d.post("/api/room/private-room/invites", Some(&owner), json!({ "email": "gina@example.org" }));
    assert_eq!((s, code(&v)), (404, "mail_disabled"), "{v}");
    assert_eq!(d.get("/api/room/private-room/invites", Some(&owner)).1["invites"].as_array().unwrap().len(), 1);

    // A guest comes in; the same guest again is not a second use.
    let (s, g1) = join_as(&d, None, "private-room", "Gina", Some(&token));
    assert_eq!((s, g1["role"].as_str()), (200, Some("guest")), "{g1}");
    let gina = g1["guestToken"].as_str().unwrap().to_string();
    assert_eq!(join_as(&d, Some(&gina), "private-room", "Gina", Some(&token)).0, 200);
    let uses = |d: &Daemon| d.get("/api/room/private-room/invites", Some(&owner)).1["invites"][0]["uses"].as_u64();
    assert_eq!(uses(&d), Some(1));
    // Without the invite the room stays closed to that guest.
    assert_eq!(join_as(&d, Some(&gina), "private-room", "Gina", None).0, 403);
    // A second person spends the last use; the third is told so; the first may still return.
    assert_eq!(join_as(&d, None, "private-room", "Hal", Some(&token)).0, 200);
    let (s, v) = join_as(&d, None, "private-room", "Ivy", Some(&token));
    assert_eq!((s, code(&v)), (410, "invite_used_up"), "{v}");
    assert_eq!(code(&d.post("/api/invite/check", None, json!({ "token": token })).1), "invite_used_up");
    assert_eq!(join_as(&d, Some(&gina), "private-room", "Gina", Some(&token)).0, 200);
    assert_eq!(uses(&d), Some(2));
    // Another room's name, or no such secret.
    assert_eq!(code(&join_as(&d, None, "other-room", "Gina", Some(&token)).1), "invite_not_found");
    assert_eq!(d.post("/api/invite/check", None, json!({ "token": "no-such-secret" })).0, 404);

    // Expiry and revocation say so.
    let (_, v) = d.post("/api/room/private-room/invites", Some(&owner), json!({ "expiresIn": 1 }));
    std::thread::sleep(Duration::from_millis(1300));
    let (s, v) = join_as(&d, None, "private-room", "Jo", v["token"].as_str());
    assert_eq!((s, code(&v)), (410, "invite_expired"), "{v}");
    let (_, v) = d.post("/api/room/private-room/invites", Some(&owner), json!({ "expiresIn": 0 }));
    assert_eq!(v["invite"]["expiresAt"], serde_json::Value::Null);
    let (t3, id3) = (v["token"].as_str().unwrap().to_string(), v["invite"]["id"].as_str().unwrap().to_string());
    assert_eq!(d.api("DELETE", &format!("/api/room/private-room/invites/{id3}"), Some(&owner), None).0, 204);
    assert_eq!(d.api("DELETE", &format!("/api/room/private-room/invites/{id3}"), Some(&owner), None).0, 204, "idempotent");
    assert_eq!(code(&join_as(&d, None, "private-room", "Kim", Some(&t3)).1), "invite_revoked");
    assert_eq!(code(&d.api("DELETE", "/api/room/private-room/invites/nope", Some(&owner), None).1), "invite_not_found");
    let (_, list) = d.get("/api/room/private-room/invites", Some(&owner));
    let statuses: Vec<&str> = list["invites"].as_array().unwrap().iter().map(|i| i["status"].as_str().unwrap()).collect();
    assert_eq!(statuses, ["revoked", "expired", "used_up"], "newest first");

    // Who may make them, and what is refused.
    assert_eq!(d.post("/api/room/private-room/invites", Some(&member), json!({})).0, 403);
    assert_eq!(d.post("/api/room/private-room/invites", Some(&gina), json!({})).0, 403);
    assert_eq!(d.post("/api/room/private-room/invites", None, json!({})).0, 401);
    for (body, want) in [(json!({ "maxUses": 0 }), "invalid_invite"), (json!({ "expiresIn": 99_999_999_999u64 }), "invalid_invite"), (json!({ "role": "boss" }), "invalid_request"), (json!({ "uses": 3 }), "invalid_request")] {
        let (s, v) = d.post("/api/room/private-room/invites", Some(&owner), body.clone());
        assert_eq!((s, code(&v)), (400, want), "{body}: {v}");
    }
    assert_eq!(d.get("/api/room/private-room/invites", Some(&owner)).1["invites"].as_array().unwrap().len(), 3, "refused requests made nothing");

    // A moderator invite makes its guest a moderator of the meeting, not of the room.
    let (_, v) = d.post("/api/room/private-room/invites", Some(&owner), json!({ "role": "moderator" }));
    let (s, m) = join_as(&d, None, "private-room", "Mod", v["token"].as_str());
    assert_eq!((s, m["role"].as_str()), (200, Some("moderator")), "{m}");
    let claims = jwt_claims(m["token"].as_str().unwrap());
    assert_eq!(claims["video"]["canUpdateOwnMetadata"], true);
    let gm = m["guestToken"].as_str().unwrap();
    assert_eq!(d.get("/api/room/private-room/lobby", Some(gm)).0, 200);
    assert_eq!(d.api("PUT", "/api/room/private-room/lock", Some(gm), Some(json!({ "locked": false }))).0, 200);
    assert_eq!(d.post("/api/room/private-room/invites", Some(gm), json!({})).0, 403);
    assert_eq!(d.api("PUT", "/api/room/private-room/settings", Some(gm), Some(json!({ "public": true }))).0, 403);
    assert_eq!(d.get("/api/room/other-room/lobby", Some(gm)).0, 403, "only in that room");

    // Banning a guest withdraws the invite they came through, for everyone, until lifted.
    let (_, v) = d.post("/api/room/private-room/invites", Some(&owner), json!({}));
    let shared = v["token"].as_str().unwrap().to_string();
    let (_, b) = join_as(&d, None, "private-room", "Ben", Some(&shared));
    let ben = b["identity"].as_str().unwrap().to_string();
    let (s, v) = d.post(&format!("/api/room/private-room/bans/{ben}"), Some(&owner), json!({}));
    assert_eq!((s, v["ban"]["name"].as_str(), v["ban"]["guest"].as_bool()), (201, Some("Ben"), Some(true)), "{v}");
    assert_eq!(v["ban"]["invite"].as_str().map(str::len), Some(11));
    let (s, v) = join_as(&d, b["guestToken"].as_str(), "private-room", "Another Name", Some(&shared));
    assert_eq!((s, code(&v)), (403, "banned"), "{v}");
    let (s, v) = join_as(&d, None, "private-room", "Fresh", Some(&shared));
    assert_eq!((s, code(&v)), (410, "invite_withdrawn"), "a new identity through the same invite: {v}");
    assert_eq!(join_as(&d, Some(&gina), "private-room", "Gina", Some(&token)).0, 200, "other invites still work");
    let (_, bans) = d.get("/api/room/private-room/bans", Some(&owner));
    assert_eq!(bans["bans"].as_array().unwrap().len(), 1);
    assert_eq!(d.api("DELETE", &format!("/api/room/private-room/bans/{ben}"), Some(&owner), None).0, 204);
    assert_eq!(code(&d.api("DELETE", &format!("/api/room/private-room/bans/{ben}"), Some(&owner), None).1), "not_banned");
    assert_eq!(join_as(&d, None, "private-room", "Fresh", Some(&shared)).0, 200, "the invite works again");
    // Managers cannot be banned, nor can one ban oneself.
    let owner_id = d.get("/api/auth/me", Some(&owner)).1["user"]["id"].as_str().unwrap().to_string();
    assert_eq!(code(&d.post(&format!("/api/room/private-room/bans/{owner_id}"), Some(gm), json!({})).1), "cannot_ban_manager");
    assert_eq!(code(&d.post(&format!("/api/room/private-room/bans/{owner_id}"), Some(&owner), json!({})).1), "cannot_ban_self");

    // Deleting the room takes its invites along.
    assert_eq!(d.api("DELETE", "/api/room/private-room", Some(&owner), None).0, 204);
    assert_eq!(d.post("/api/invite/check", None, json!({ "token": shared })).0, 404);
}

#[test]
fn lobby_admits_denies_and_both_sides_follow_live() {
    let d = Daemon::start(Opts { auth: "  guestJoin: true\n".into(), ..Opts::default() });
    d.create_user("owner", "owner-password", false);
    d.create_user("member", "member-password", false);
    let owner = d.login("owner", "owner-password");
    let member = d.login("member", "member-password");
    let (s, v) = d.post("/api/room/create", Some(&owner), json!({ "name": "waiting-room", "settings": { "public": true, "lobby": true } }));
    assert_eq!((s, v["room"]["settings"]["lobby"].as_bool()), (201, Some(true)), "{v}");
    let secs = Duration::from_secs;
    let waiting_names = |v: &serde_json::Value| v["waiting"].as_array().unwrap().iter().map(|w| w["name"].as_str().unwrap().to_string()).collect::<Vec<_>>();

    // Guests wait, with no token; members and managers go straight in.
    let (s, a) = join_as(&d, None, "waiting-room", "Ann", None);
    assert_eq!((s, a["lobby"]["status"].as_str(), a["lobby"]["position"].as_u64()), (202, Some("waiting"), Some(1)), "{a}");
    assert!(a.get("token").is_none(), "nobody in the lobby gets a token: {a}");
    let ga = a["guestToken"].as_str().unwrap().to_string();
    let (s, b) = join_as(&d, None, "waiting-room", "Ben", None);
    assert_eq!((s, b["lobby"]["position"].as_u64()), (202, Some(2)));
    let gb = b["guestToken"].as_str().unwrap().to_string();
    assert_eq!(join_as(&d, Some(&member), "waiting-room", "member", None).0, 200);
    assert_eq!(join_as(&d, Some(&owner), "waiting-room", "owner", None).0, 200);
    let (s, v) = d.get("/api/room/waiting-room/lobby", Some(&owner));
    assert_eq!((s, waiting_names(&v)), (200, vec!["Ann".to_string(), "Ben".to_string()]));
    assert_eq!(d.get("/api/room/waiting-room/lobby", Some(&member)).0, 403);
    assert_eq!(d.get("/api/room/waiting-room/lobby", Some(&ga)).0, 403);
    assert_eq!(d.status("GET", "/api/room/waiting-room/lobby/events", Some(&member), None), 403);
    assert_eq!(d.status("GET", "/api/room/waiting-room/lobby/wait", None, None), 401);

    let managers = d.events("/api/room/waiting-room/lobby/events", Some(&owner));
    let (e, v) = managers.next(secs(5));
    assert_eq!((e.as_str(), waiting_names(&v)), ("lobby", vec!["Ann".to_string(), "Ben".to_string()]));
    let ann = d.events("/api/room/waiting-room/lobby/wait", Some(&ga));
    let ben = d.events("/api/room/waiting-room/lobby/wait", Some(&gb));
    assert_eq!(ann.next(secs(5)).1, json!({ "status": "waiting", "position": 1, "waiting": 2 }));
    assert_eq!(ben.next(secs(5)).1["position"], 2);

    // Admit one: each side hears of it, and only now does the guest get a token.
    let (s, v) = d.post("/api/room/waiting-room/lobby/admit", Some(&owner), json!({ "identity": a["identity"] }));
    assert_eq!((s, v["admitted"][0].as_str()), (200, a["identity"].as_str()), "{v}");
    assert_eq!(ann.next(secs(5)).1["status"], "admitted");
    assert_eq!(waiting_names(&managers.next(secs(5)).1), vec!["Ben".to_string()]);
    assert_eq!(ben.next(secs(5)).1["position"], 1);
    let (s, v) = join_as(&d, Some(&ga), "waiting-room", "Ann", None);
    assert_eq!((s, v["role"].as_str()), (200, Some("guest")), "{v}");
    assert!(v["token"].is_string());

    // Deny the other: told so; asking again puts them back in line.
    assert_eq!(d.post("/api/room/waiting-room/lobby/deny", Some(&owner), json!({ "identity": b["identity"] })).0, 200);
    assert_eq!(ben.next(secs(5)).1["status"], "denied");
    assert_eq!(join_as(&d, Some(&gb), "waiting-room", "Ben", None).0, 202);
    assert_eq!(ben.next(secs(5)).1["status"], "waiting");
    assert_eq!(code(&d.post("/api/room/waiting-room/lobby/admit", Some(&owner), json!({})).1), "invalid_request");
    assert_eq!(code(&d.post("/api/room/waiting-room/lobby/admit", Some(&owner), json!({ "identity": "nobody" })).1), "not_waiting");

    // Locked: nobody new, not even into the lobby; those admitted still come in.
    assert_eq!(d.api("PUT", "/api/room/waiting-room/lock", Some(&owner), Some(json!({ "locked": true }))).1["locked"], true);
    assert_eq!(d.get("/api/room/waiting-room", Some(&owner)).1["room"]["locked"], true);
    assert_eq!(code(&join_as(&d, Some(&member), "waiting-room", "member", None).1), "room_locked");
    assert_eq!(code(&join_as(&d, None, "waiting-room", "Cy", None).1), "room_locked");
    assert_eq!(join_as(&d, Some(&ga), "waiting-room", "Ann", None).0, 200);
    assert_eq!(join_as(&d, Some(&owner), "waiting-room", "owner", None).0, 200);
    d.api("PUT", "/api/room/waiting-room/lock", Some(&owner), Some(json!({ "locked": false })));

    // Deny everyone at once.
    let (_, c) = join_as(&d, None, "waiting-room", "Cy", None);
    let (s, v) = d.post("/api/room/waiting-room/lobby/deny", Some(&owner), json!({ "all": true }));
    assert_eq!((s, v["denied"].as_array().map(Vec::len)), (200, Some(2)), "{v}");
    assert_eq!(ben.until(secs(5), "denied", |_, v| v["status"] == "denied")["status"], "denied");
    // A ban reaches someone in the lobby too.
    assert_eq!(join_as(&d, Some(&gb), "waiting-room", "Ben", None).0, 202);
    d.post(&format!("/api/room/waiting-room/bans/{}", b["identity"].as_str().unwrap()), Some(&owner), json!({}));
    ben.until(secs(5), "banned", |_, v| v["status"] == "banned");
    assert_eq!(code(&join_as(&d, Some(&gb), "waiting-room", "Ben", None).1), "banned");

    // Turning the lobby off lets in whoever waits.
    let (_, dee) = join_as(&d, c["guestToken"].as_str(), "waiting-room", "Cy", None);
    assert_eq!(dee["lobby"]["status"], "waiting");
    let cy = d.events("/api/room/waiting-room/lobby/wait", c["guestToken"].as_str());
    assert_eq!(cy.next(secs(5)).1["status"], "waiting");
    assert_eq!(d.api("PUT", "/api/room/waiting-room/settings", Some(&owner), Some(json!({ "lobby": false }))).0, 200);
    assert_eq!(cy.next(secs(5)).1["status"], "admitted");
    assert_eq!(join_as(&d, c["guestToken"].as_str(), "waiting-room", "Cy", None).0, 200);

    // Ending the meeting for all tells those still waiting.
    d.api("PUT", "/api/room/waiting-room/settings", Some(&owner), Some(json!({ "lobby": true })));
    let (_, f) = join_as(&d, None, "waiting-room", "Fay", None);
    let fay = d.events("/api/room/waiting-room/lobby/wait", f["guestToken"].as_str());
    assert_eq!(fay.next(secs(5)).1["status"], "waiting");
    let (s, v) = d.post("/api/room/waiting-room/end", Some(&owner), json!({}));
    assert_eq!((s, v["ended"].as_bool()), (200, Some(true)), "{v}");
    assert_eq!(fay.next(secs(5)).1["status"], "ended");
    // The admissions of that meeting lapsed: Ann waits again next time.
    assert_eq!(join_as(&d, Some(&ga), "waiting-room", "Ann", None).0, 202);
    drop((ann, ben, cy, fay));

    // Someone who knocks and goes away (no stream open) leaves the list by themselves.
    let (_, g) = join_as(&d, None, "waiting-room", "Gus", None);
    assert!(g["lobby"].is_object());
    let started = std::time::Instant::now();
    let v = managers.until(secs(45), "Gus and Ann gone", |_, v| !v.to_string().contains("Gus") && !v.to_string().contains("Ann") && started.elapsed() > secs(1));
    assert_eq!(waiting_names(&v), Vec::<String>::new());
    eprintln!("figure: a lobby entry with nobody following it went after {:.1} s", started.elapsed().as_secs_f64());
}

// ---------------------------------------------------------------------------------------------
// The OpenAPI document

/// Error codes any operation may answer (request guard, time limit, panics, the store), listed
/// once in the document's description rather than per operation.
const GLOBAL_CODES: [&str; 7] = ["csrf_rejected", "method_not_allowed", "timeout", "internal", "store_unavailable", "store_read_only", "insufficient_storage"];

/// The codes an error answer's description lists: every `backquoted` word.
fn listed_codes(description: &str) -> Vec<String> {
    description.split('`').skip(1).step_by(2).map(String::from).collect()
}

/// One request of the sweep: status, body (Null when empty or not JSON), content type. Event
/// streams are not read past their headers.
fn call(d: &Daemon, method: &str, path: &str, token: Option<&str>, body: Option<&str>) -> (u16, serde_json::Value, String) {
    let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut req = d.http.request(m, d.url(path)).timeout(Duration::from_secs(20));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(b) = body {
        req = req.header("content-type", "application/json").body(b.to_string());
    }
    let resp = req.send().unwrap_or_else(|e| panic!("{method} {path}: {e}"));
    let status = resp.status().as_u16();
    let ctype = resp.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    if ctype.starts_with("text/event-stream") {
        return (status, serde_json::Value::Null, ctype);
    }
    let text = resp.text().unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or(serde_json::Value::Null), ctype)
}

#[test]
fn openapi_document_describes_every_route_and_what_it_answers() {
    let d = Daemon::start(Opts { auth: "  guestJoin: true\n  registration: true\n".into(), ..Opts::default() });
    let (status, doc) = d.get("/api/openapi.json", None);
    assert_eq!(status, 200);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"), "{}", doc["openapi"]);
    // The CLI prints the same document without a daemon.
    let out = std::process::Command::new(BIN).arg("openapi").output().unwrap();
    assert!(out.status.success());
    assert_eq!(serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap(), doc);
    // The web client's copy and the TypeScript types made from it are current.
    let web = common::repo_root().join("web");
    let copy: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(web.join("openapi.json")).unwrap()).unwrap();
    assert!(copy == doc, "web/openapi.json differs from the API the code describes: run `make api-types`");
    let tool = web.join("node_modules/.bin/openapi-typescript");
    assert!(tool.exists(), "{} is missing: run scripts/build-web (npm ci)", tool.display());
    let gen = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(&tool).arg(web.join("openapi.json")).arg("-o").arg(gen.path().join("api.gen.ts")).output().unwrap();
    assert!(out.status.success(), "openapi-typescript: {}", String::from_utf8_lossy(&out.stderr));
    assert!(
        std::fs::read_to_string(gen.path().join("api.gen.ts")).unwrap() == std::fs::read_to_string(web.join("src/api.gen.ts")).unwrap(),
        "web/src/api.gen.ts is not what web/openapi.json gives: run `make api-types`"
    );

    // Routes come from `routes!` (which documents them): no API route is added any other way.
    let src = common::repo_root().join("src");
    let mut stack = vec![src];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") {
                let text = std::fs::read_to_string(&p).unwrap();
                for (i, line) in text.lines().enumerate() {
                    if line.contains(".route(\"/api/") && !line.contains("/api/test/panic") {
                        panic!("{}:{}: an API route outside routes!(), so not in the OpenAPI document: {line}", p.display(), i + 1);
                    }
                }
            }
        }
    }

    // Every operation says who may call it and which codes its errors carry.
    let mut ops = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let name = format!("{} {path}", method.to_uppercase());
            let security = op["security"].as_array().unwrap_or_else(|| panic!("{name}: no security requirement"));
            let anonymous = security.iter().any(|s| s.as_object().unwrap().is_empty());
            let admin = security.iter().any(|s| s["bearer"].as_array().is_some_and(|r| r.iter().any(|x| x == "admin")));
            let responses = op["responses"].as_object().unwrap();
            // A browser navigation (single sign-on) succeeds with a redirect.
            assert!(responses.keys().any(|s| s.starts_with('2') || s.starts_with('3')), "{name}: no success answer");
            for (status, r) in responses {
                let is_error_body = r["content"]["application/json"]["schema"]["$ref"] == "#/components/schemas/ErrorBody";
                if status.as_str() >= "400" && is_error_body {
                    assert!(!listed_codes(r["description"].as_str().unwrap()).is_empty(), "{name} {status}: no error codes listed");
                }
            }
            if !anonymous {
                let d401 = responses.get("401").unwrap_or_else(|| panic!("{name}: signed-in only but no 401"));
                assert!(listed_codes(d401["description"].as_str().unwrap()).contains(&"unauthorized".to_string()), "{name}");
            }
            if admin {
                assert!(responses.contains_key("403"), "{name}: administrators only but no 403");
            }
            ops.push((method.to_uppercase(), path.clone(), op.clone()));
        }
    }
    assert!(ops.len() >= 30, "{} operations", ops.len());
    // Operation ids name the generated client's operations: one each.
    let mut ids = std::collections::BTreeMap::new();
    for (method, path, op) in &ops {
        let id = op["operationId"].as_str().unwrap_or_else(|| panic!("{method} {path}: no operationId"));
        if let Some(other) = ids.insert(id.to_string(), format!("{method} {path}")) {
            panic!("operationId {id:?} of {method} {path} is also {other}'s");
        }
    }

    // Sweep: every operation called by nobody, a guest, a user who manages nothing, the room's
    // owner and an administrator, with no body, an empty object and broken JSON. Every answer's
    // status (and error code) must be documented for that operation; JSON answers are validated
    // against the documented schema afterwards.
    let admin = d.admin();
    d.create_user("oa-owner", "password-owner", false);
    d.create_user("oa-plain", "password-plain", false);
    let owner = d.login("oa-owner", "password-owner");
    let plain = d.login("oa-plain", "password-plain");
    assert_eq!(d.post("/api/room/create", Some(&owner), json!({ "name": "oa-room", "settings": { "public": true } })).0, 201);
    let (s, g) = d.post("/api/room/join", None, json!({ "room": "oa-room", "name": "G" }));
    assert_eq!(s, 200, "{g}");
    let guest = g["guestToken"].as_str().unwrap().to_string();
    let callers: [(&str, Option<&str>); 5] = [("nobody", None), ("guest", Some(&guest)), ("plain", Some(&plain)), ("owner", Some(&owner)), ("admin", Some(&admin))];
    let mut answers = Vec::new();
    let mut undocumented = Vec::new();
    // Sign-outs and password changes last: they end the caller's session.
    ops.sort_by_key(|(m, p, _)| (p == "/api/auth/logout" || p == "/api/auth/password", m.clone(), p.clone()));
    for (method, path, op) in &ops {
        for (who, token) in callers {
            // Destructive calls by those allowed to make them aim at names that do not exist.
            let target = |var: &str| -> &str {
                let writes = method != "GET";
                match (var, who, writes) {
                    ("name", "admin", true) if path.starts_with("/api/admin/users") => "no-such-user",
                    ("name", "owner" | "admin", true) if method == "DELETE" => "no-such-room",
                    ("name", _, _) if path.starts_with("/api/admin/users") => "oa-plain",
                    ("name", _, _) => "oa-room",
                    ("user", _, _) => "oa-plain",
                    ("id", _, _) => "no-such-invite",
                    _ => "nobody",
                }
            };
            let mut concrete = path.clone();
            for var in ["name", "user", "identity", "provider", "id"] {
                concrete = concrete.replace(&format!("{{{var}}}"), target(var));
            }
            for body in [None, Some("{}"), Some("{not json")] {
                if body.is_some() && op.get("requestBody").is_none() {
                    continue;
                }
                // A successful password change or sign-out is not repeated with other bodies.
                let (status, value, _) = call(&d, method, &concrete, token, body);
                let documented = op["responses"].get(status.to_string());
                let code = value["error"]["code"].as_str().map(String::from);
                let ok = match (documented, &code) {
                    (_, Some(c)) if GLOBAL_CODES.contains(&c.as_str()) => true,
                    (Some(r), Some(c)) => listed_codes(r["description"].as_str().unwrap_or("")).contains(c),
                    (Some(_), None) => true,
                    (None, _) => false,
                };
                if !ok {
                    undocumented.push(format!("{method} {concrete} as {who} with {body:?}: {status} {code:?}"));
                }
                if status < 300 && !value.is_null() {
                    answers.push(json!({ "op": format!("{method} {path}"), "status": status, "body": value }));
                }
            }
        }
    }
    assert!(undocumented.is_empty(), "answers the document does not describe:\n{}", undocumented.join("\n"));

    // Successful answers of the operations the sweep could not make succeed.
    let owner = d.login("oa-owner", "password-owner");
    let admin = d.login("admin", "admin-password");
    for (method, path, token, body) in [
        ("POST", "/api/room/create", &owner, json!({ "name": "oa-second" })),
        ("PUT", "/api/room/oa-second/settings", &owner, json!({ "allowChat": false })),
        ("POST", "/api/admin/users", &admin, json!({ "username": "oa-new", "password": "password-new" })),
        ("PUT", "/api/admin/users/oa-new", &admin, json!({ "role": "admin" })),
        ("POST", "/api/auth/login", &owner, json!({ "username": "oa-owner", "password": "password-owner" })),
        ("POST", "/api/auth/login", &owner, json!({ "username": "oa-owner", "password": "password-owner", "session": "cookie" })),
    ] {
        let (status, value) = d.api(method, path, Some(token), Some(body));
        assert!(status < 300, "{method} {path}: {status} {value}");
        let template = if path.starts_with("/api/room/oa-second") { "/api/room/{name}/settings" } else if path.starts_with("/api/admin/users/") { "/api/admin/users/{name}" } else { path };
        answers.push(json!({ "op": format!("{method} {template}"), "status": status, "body": value }));
    }
    // An invite link, what it leads to, a join through it that waits in the lobby, the lobby's
    // list, an admission and a lock.
    assert_eq!(d.api("PUT", "/api/room/oa-second/settings", Some(&owner), Some(json!({ "lobby": true }))).0, 200);
    let (status, invite) = d.post("/api/room/oa-second/invites", Some(&owner), json!({ "maxUses": 2 }));
    assert_eq!(status, 201, "{invite}");
    let secret = invite["token"].clone();
    for (method, template, path, token, body, want) in [
        ("POST", "/api/invite/check", "/api/invite/check", None, Some(json!({ "token": secret })), 200),
        ("POST", "/api/room/join", "/api/room/join", None, Some(json!({ "room": "oa-second", "name": "L", "invite": secret })), 202),
        ("GET", "/api/room/{name}/lobby", "/api/room/oa-second/lobby", Some(&owner), None, 200),
        ("POST", "/api/room/{name}/lobby/admit", "/api/room/oa-second/lobby/admit", Some(&owner), Some(json!({ "all": true })), 200),
        ("PUT", "/api/room/{name}/lock", "/api/room/oa-second/lock", Some(&owner), Some(json!({ "locked": true })), 200),
    ] {
        let (status, value) = d.api(method, path, token.map(String::as_str), body);
        assert_eq!(status, want, "{method} {path}: {value}");
        answers.push(json!({ "op": format!("{method} {template}"), "status": status, "body": value }));
    }
    assert_eq!(d.get("/api/room/oa-second/lobby", Some(&owner)).1["waiting"], json!([]), "admitted");
    answers.push(json!({ "op": "POST /api/room/{name}/invites", "status": 201, "body": invite }));
    let covered: std::collections::BTreeSet<String> = answers.iter().map(|a| a["op"].as_str().unwrap().to_string()).collect();
    let report = common::validate_answers(&doc, answers);
    eprintln!("{} operations; JSON success answers validated for {} of them: {report}", ops.len(), covered.len());
}
