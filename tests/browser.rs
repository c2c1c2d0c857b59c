//! The web client in real browsers against the real daemon and its embedded livekit-server:
//! Debian's headless chromium with fake camera and microphone, driven by the scenarios in
//! `web/e2e/` (playwright-core). Screenshots of every page land in `target/screenshots/`.
//!
//! The daemon embeds `web/dist` when it is compiled, so build the client first:
//! `make web` (or `npm ci && npm run build` in `web/`), then `cargo test --test browser`.

mod common;

use std::time::Duration;

use common::browser::{check_client, scenario};
use common::daemon::{eventually, jwt_claims, Daemon, Opts};
use serde_json::{json, Value};

const SECS: fn(u64) -> Duration = Duration::from_secs;

fn with_guests() -> Opts {
    Opts { auth: "  guestJoin: true\n".into(), ..Opts::default() }
}

fn participants(d: &Daemon, token: &str, room: &str) -> Vec<Value> {
    let (s, v) = d.get(&format!("/api/room/{room}/participants"), Some(token));
    assert_eq!(s, 200, "{v}");
    v["participants"].as_array().cloned().unwrap_or_default()
}

/// Scenarios 1, 2 (chat) and 3, then 5: the owner meets a guest who came through the invite
/// link (video playing and audio arriving both ways), they chat, the owner mutes and then
/// removes the guest; afterwards the admin console follows a SIGKILL of livekit-server.
#[test]
fn meeting_with_a_guest_then_admin_sees_livekit_restart() {
    let d = Daemon::start(with_guests());
    check_client(&d);
    let admin = d.admin();
    d.create_user("owner", "owner-password", false);
    let owner = d.login("owner", "owner-password");

    let out = scenario(
        "meeting",
        &json!({ "url": d.url(""), "owner": { "username": "owner", "password": "owner-password" }, "room": "team-sync", "guest": "Gina" }),
        SECS(200),
    );
    for side in ["ownerSees", "guestSees"] {
        let m = &out[side];
        assert!(m["videoWidth"].as_u64().unwrap_or(0) > 0, "{side}: {m}");
        assert!(m["framesDecoded"][1].as_u64() > m["framesDecoded"][0].as_u64(), "{side}: {m}");
        assert!(m["audioPackets"][1].as_u64() > m["audioPackets"][0].as_u64(), "{side}: {m}");
    }
    // bedrud's own records: the guest joined, and after the kick is gone from the live list.
    let guest = out["guestIdentity"].as_str().expect("guest identity").to_string();
    assert!(guest.starts_with("guest-"), "{guest}");
    eventually(SECS(20), "guest gone from bedrud's participant list", || {
        let (s, v) = d.get("/api/admin/rooms/team-sync/participants", Some(&admin));
        s == 200 && !v["participants"].as_array().is_some_and(|l| l.iter().any(|p| p["identity"] == guest.as_str()))
    });
    let (_, v) = d.get("/api/admin/rooms/team-sync/participants", Some(&admin));
    let history = v["history"].as_array().cloned().unwrap_or_default();
    assert!(history.iter().any(|h| h["identity"] == guest.as_str() && h["name"] == "Gina" && h["leftAt"].is_u64()), "{v}");
    // The room the owner made through the UI has the settings it was given there.
    let (_, room) = d.get("/api/room/team-sync", Some(&owner));
    assert_eq!(room["room"]["settings"]["public"], true, "{room}");

    let pid = d.livekit_pid(&admin);
    let out = scenario("admin", &json!({ "url": d.url(""), "admin": { "username": "admin", "password": "admin-password" }, "room": "team-sync" }), SECS(150));
    assert_eq!(out["pidBefore"].as_u64(), Some(u64::from(pid)), "{out}");
    assert_ne!(out["pidAfter"], out["pidBefore"], "{out}");
    assert!(out["restarts"].as_u64().unwrap_or(0) >= 1, "{out}");
    assert!(out["historyRows"].as_i64().unwrap_or(0) >= 2, "{out}");
    assert!(participants(&d, &admin, "team-sync").is_empty());
    let (s, v) = d.get("/api/admin/users", Some(&admin));
    assert!(s == 200 && !v["users"].as_array().unwrap().iter().any(|u| u["username"] == "carol"), "{v}");
}

/// Scenarios 2 (no chat) and 4: with `allowChat` and `allowScreenShare` off there is neither
/// control, the tokens lack `screen_share` and data, and data sent anyway never arrives.
#[test]
fn room_without_chat_or_screen_share() {
    let d = Daemon::start(with_guests());
    check_client(&d);
    d.create_user("owner", "owner-password", false);
    let owner = d.login("owner", "owner-password");
    let (s, v) = d.post(
        "/api/room/create",
        Some(&owner),
        json!({ "name": "quiet", "settings": { "public": true, "allowChat": false, "allowScreenShare": false } }),
    );
    assert_eq!(s, 201, "{v}");
    // The token bedrud signs for this room, as an API client gets it.
    let (_, j) = d.post("/api/room/join", Some(&owner), json!({ "room": "quiet" }));
    let claims = jwt_claims(j["token"].as_str().unwrap());
    let sources: Vec<&str> = claims["video"]["canPublishSources"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
    assert!(!sources.contains(&"screen_share") && sources.contains(&"camera"), "{claims}");
    assert_eq!(claims["video"]["canPublishData"], false, "{claims}");

    let out = scenario(
        "restricted",
        &json!({ "url": d.url(""), "owner": { "username": "owner", "password": "owner-password" }, "room": "quiet", "guest": "Gina" }),
        SECS(150),
    );
    for who in ["ownerGrants", "guestGrants"] {
        let g = &out[who];
        let token: Vec<&str> = g["token"]["canPublishSources"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
        assert!(!token.contains(&"screen_share"), "{who}: {g}");
        assert_eq!(g["token"]["canPublishData"], false, "{who}: {g}");
        // LiveKit's own view (protocol numbers: 3 = screen share).
        let live: Vec<u64> = g["live"]["canPublishSources"].as_array().unwrap().iter().filter_map(Value::as_u64).collect();
        assert!(!live.contains(&3) && !live.is_empty(), "{who}: {g}");
        assert_eq!(g["live"]["canPublishData"], false, "{who}: {g}");
    }
    for who in ["owner", "guest"] {
        assert_eq!(out["controls"][who], json!({ "mic": 1, "camera": 1, "share": 0, "chat": 0 }), "{out}");
    }
    assert_eq!(out["dataReceived"], 0, "{out}");
}

/// Scenario 6 and the account pages: a wrong password shows the API's message, Chinese
/// renders, registration and a password change work from the browser.
#[test]
fn sign_in_language_registration_password() {
    let d = Daemon::start(Opts { auth: "  registration: true\n".into(), ..Opts::default() });
    check_client(&d);
    d.create_user("owner", "owner-password", false);
    let out = scenario("signin", &json!({ "url": d.url(""), "user": { "username": "owner", "password": "owner-password" } }), SECS(120));
    assert_eq!(out["shown"], out["apiMessage"], "{out}");
    assert!(!out["apiMessage"].as_str().unwrap_or("").is_empty());
    assert_eq!(out["htmlLang"], "zh-CN");
    // The account registered in the browser has the password it changed to, and its room.
    let (s, _) = d.post("/api/auth/login", None, json!({ "username": "newcomer", "password": "newcomer-password-1" }));
    assert_eq!(s, 401);
    let token = d.login("newcomer", "newcomer-password-2");
    let (s, v) = d.get("/api/room/phone-room", Some(&token));
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["room"]["owner"], "newcomer", "{v}");
}

/// What a meeting survives: an expired join token (the page joins again without an error), a
/// microphone switched during the call, and livekit-server killed mid-call (the page says it is
/// reconnecting, then media flows again through the restarted server).
#[test]
fn meeting_survives_expired_token_device_switch_and_livekit_restart() {
    let d = Daemon::start(Opts::default());
    check_client(&d);
    let admin = d.admin();
    d.create_user("alma", "alma-password", false);
    d.create_user("bruno", "bruno-password", false);
    let (s, _) = d.post("/api/room/create", Some(&admin), json!({ "name": "weekly", "settings": { "public": true } }));
    assert_eq!(s, 201);
    let pid = d.livekit_pid(&admin);
    let out = scenario(
        "resilience",
        &json!({
            "url": d.url(""),
            "users": [{ "username": "alma", "password": "alma-password" }, { "username": "bruno", "password": "bruno-password" }],
            "room": "weekly",
            "apiSecret": common::daemon::API_SECRET,
            "livekitPid": pid,
        }),
        SECS(240),
    );
    assert_eq!(out["joins"], 2, "{out}");
    assert_ne!(out["micBefore"], out["micAfter"], "{out}");
    // bedrud restarted its child and the call goes on through it.
    assert_ne!(d.livekit_pid(&admin), pid);
    let m = &out["afterRestart"];
    assert!(m["framesDecoded"][1].as_u64() > m["framesDecoded"][0].as_u64(), "{out}");
    eventually(SECS(30), "both back in bedrud's participant list", || participants(&d, &admin, "weekly").len() == 2);
}

/// First run in the browser: the sign-in page says no administrator exists, the setup link
/// from the log creates one and signs in as it, and the link is then used up.
#[test]
fn first_run_setup_page_creates_the_administrator() {
    let d = Daemon::start(Opts::default());
    check_client(&d);
    let link = common::wait_for(SECS(10), "setup link in the log", || {
        let log = d.log_text();
        let i = log.rfind("/setup?token=")?;
        Some(log[i..].split(|c: char| c.is_whitespace()).next()?.to_string())
    });
    let out = scenario("setup", &json!({ "url": d.url(""), "link": link, "admin": { "username": "chief", "password": "chief-password" } }), SECS(90));
    assert_eq!(out["admin"], "chief");
    assert_eq!(d.get("/api/setup", None).1["needed"], false);
    let token = d.login("chief", "chief-password");
    assert_eq!(d.get("/api/auth/me", Some(&token)).1["user"]["role"], "admin");
}
