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

/// Who gets in: an invite link made in the browser opens a members-only room to guests (guest
/// access is off), the lobby holds them with no token, the owner lets one in and turns one
/// away, and both pages follow live.
#[test]
fn invite_link_and_lobby_admit_and_deny() {
    let d = Daemon::start(Opts::default());
    check_client(&d);
    d.create_user("owner", "owner-password", false);
    let owner = d.login("owner", "owner-password");
    let out = scenario(
        "lobby",
        &json!({ "url": d.url(""), "owner": { "username": "owner", "password": "owner-password" }, "room": "board-room", "guests": ["Gina", "Hank"] }),
        SECS(200),
    );
    for side in ["hostSeesGuest", "guestSeesHost"] {
        let m = &out[side];
        assert!(m["framesDecoded"][1].as_u64() > m["framesDecoded"][0].as_u64(), "{side}: {m}");
    }
    // bedrud's records: the room stayed members-only, the link was used twice, the admitted
    // guest is in the meeting, the one turned away is not.
    let (_, room) = d.get("/api/room/board-room", Some(&owner));
    assert_eq!((room["room"]["settings"]["public"].as_bool(), room["room"]["settings"]["lobby"].as_bool()), (Some(false), Some(true)), "{room}");
    let (_, inv) = d.get("/api/room/board-room/invites", Some(&owner));
    assert_eq!((inv["invites"][0]["uses"].as_u64(), inv["invites"][0]["maxUses"].as_u64()), (Some(2), Some(5)), "{inv}");
    let link = out["link"].as_str().unwrap();
    assert!(!inv.to_string().contains(link.rsplit('=').next().unwrap()), "the secret is not listed");
    let guest = out["guestIdentity"].as_str().unwrap();
    eventually(SECS(15), "the admitted guest listed", || participants(&d, &owner, "board-room").iter().any(|p| p["identity"] == guest));
    assert_eq!(participants(&d, &owner, "board-room").len(), 2);
    let (_, lobby) = d.get("/api/room/board-room/lobby", Some(&owner));
    assert_eq!(lobby["waiting"], json!([]), "nobody waits: {lobby}");
}

/// Who speaks: on a stage the audience raises a hand (the host sees the queue and lowers it),
/// a promoted listener publishes at once, the spotlight moves both layouts, the lock refuses a
/// newcomer, and ending the meeting for all reaches every page.
#[test]
fn hands_stage_spotlight_lock_and_end_for_all() {
    let d = Daemon::start(Opts::default());
    check_client(&d);
    for u in ["owner", "lee", "late"] {
        d.create_user(u, &format!("{u}-password"), false);
    }
    let owner = d.login("owner", "owner-password");
    let (s, v) = d.post("/api/room/create", Some(&owner), json!({ "name": "town-hall", "settings": { "stage": true } }));
    assert_eq!(s, 201, "{v}");
    let user = |u: &str| json!({ "username": u, "password": format!("{u}-password") });
    let out = scenario(
        "stage",
        &json!({ "url": d.url(""), "owner": user("owner"), "listener": user("lee"), "late": user("late"), "room": "town-hall" }),
        SECS(200),
    );
    assert_eq!(out["audience"], json!({ "mic": 0, "camera": 0 }), "{out}");
    assert_eq!(out["tilesWhileAudience"], 1, "only the host is on the stage: {out}");
    // The meeting is over in bedrud's records too: nobody live, no lock, no spotlight.
    eventually(SECS(20), "the ended meeting empty", || participants(&d, &owner, "town-hall").is_empty());
    let (_, room) = d.get("/api/room/town-hall", Some(&owner));
    assert_eq!((room["room"]["locked"].as_bool(), room["room"]["spotlight"].is_null()), (Some(false), true), "{room}");
    let late = d.login("late", "late-password");
    assert_eq!(d.post("/api/room/join", Some(&late), json!({ "room": "town-hall" })).0, 200, "the lock went with the meeting");
}

/// A banned guest cannot come back through the same invite, under a new name or in a fresh
/// browser, until the host lifts the ban.
#[test]
fn banned_guest_cannot_rejoin_through_the_same_invite() {
    let d = Daemon::start(Opts::default());
    check_client(&d);
    d.create_user("owner", "owner-password", false);
    let owner = d.login("owner", "owner-password");
    d.post("/api/room/create", Some(&owner), json!({ "name": "private-chat" }));
    let (_, inv) = d.post("/api/room/private-chat/invites", Some(&owner), json!({}));
    let out = scenario(
        "ban",
        &json!({ "url": d.url(""), "owner": { "username": "owner", "password": "owner-password" }, "room": "private-chat", "invite": inv["path"], "guest": "Gina" }),
        SECS(150),
    );
    let identity = out["identity"].as_str().unwrap();
    let (_, bans) = d.get("/api/room/private-chat/bans", Some(&owner));
    assert_eq!(bans["bans"], json!([]), "lifted: {bans}");
    let (_, list) = d.get("/api/room/private-chat/invites", Some(&owner));
    assert_eq!(list["invites"][0]["status"], "active", "{list}");
    assert!(!participants(&d, &owner, "private-chat").iter().any(|p| p["identity"] == identity));
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

/// Passkeys in Chromium with the DevTools virtual authenticator: two registered (on two
/// authenticators), a sign-in with one and no password, one removed, the other still signs in.
/// The page is `http://localhost`: WebAuthn needs a host name and a secure context.
#[test]
fn passkeys_register_sign_in_remove() {
    let d = Daemon::start(Opts::default());
    check_client(&d);
    d.create_user("pat", "pat-password", false);
    let (_, info) = d.get("/api/info", None);
    assert_eq!(info["passkeys"], true, "{info}");
    let out = scenario("passkeys", &json!({ "url": format!("http://localhost:{}", d.port), "user": { "username": "pat", "password": "pat-password" } }), SECS(150));
    assert_eq!(out["registered"], json!(["Laptop", "Phone"]), "{out}");
    assert_eq!(out["afterRemove"], json!(["Phone"]), "{out}");
    let counts: Vec<u64> = out["signCount"].as_array().unwrap().iter().filter_map(Value::as_u64).collect();
    assert!(counts.len() == 2 && counts[1] > counts[0], "each sign-in was signed by the phone's key: {out}");
    // bedrud's own record: one passkey left, used, and the only one a sign-in may use.
    let token = d.login("pat", "pat-password");
    let (s, v) = d.get("/api/auth/passkeys", Some(&token));
    assert_eq!(s, 200, "{v}");
    let keys = v["passkeys"].as_array().unwrap();
    assert_eq!(keys.len(), 1, "{v}");
    assert_eq!(keys[0]["name"], "Phone");
    assert!(keys[0]["lastUsedAt"].is_u64(), "{v}");
    let (s, o) = d.post("/api/auth/passkey/options", None, json!({ "username": "pat" }));
    assert_eq!(s, 200, "{o}");
    let allowed: Vec<&str> = o["publicKey"]["allowCredentials"].as_array().unwrap().iter().filter_map(|c| c["id"].as_str()).collect();
    assert_eq!(allowed, vec![keys[0]["id"].as_str().unwrap()], "{o}");
    assert_eq!(o["publicKey"]["rpId"], "localhost", "{o}");
    // DevTools names the credential in standard base64; bedrud in base64url.
    let devtools = out["phoneCredentialId"].as_str().unwrap().replace('+', "-").replace('/', "_").trim_end_matches('=').to_string();
    assert_eq!(keys[0]["id"].as_str(), Some(devtools.as_str()), "{out} {v}");
}

/// A file only its owner may read, as secrets must be.
fn secret_file(dir: &std::path::Path, name: &str, text: &str) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
    p
}

fn users(d: &Daemon, admin: &str) -> Vec<Value> {
    let (s, v) = d.get("/api/admin/users", Some(admin));
    assert_eq!(s, 200, "{v}");
    v["users"].as_array().cloned().unwrap_or_default()
}

/// Single sign-on through a real OpenID provider (node-oidc-provider on loopback, its own
/// login and consent pages) in Chromium: accounts made at first sign-in, admin by group, a
/// group outside `allowedGroups` refused, a forged `state`, an ID token for another audience,
/// an issuer that is down at start-up (a clear error in the log; the other sign-ins work), an
/// account linked by its verified e-mail, and the same person found again by issuer and subject.
#[test]
fn single_sign_on_with_a_real_openid_provider() {
    use common::signin::{link_in, token_of, OidcProvider, SmtpSink};
    let dir = tempfile::tempdir().unwrap();
    let port = common::free_port();
    let public = format!("http://localhost:{port}");
    let callback = |name: &str| format!("{public}/api/auth/oidc/{name}/callback");
    let provider = OidcProvider::start(
        json!([
            { "client_id": "bedrud", "client_secret": "corp-secret", "redirect_uris": [callback("corp")] },
            { "client_id": "bedrud-partner", "client_secret": "partner-secret", "redirect_uris": [callback("partner")], "wrongAudience": "someone-else" },
            { "client_id": "someone-else", "client_secret": "other-secret", "redirect_uris": ["http://localhost:9/callback"] },
        ]),
        json!({
            "alice": { "email": "alice@example.org", "email_verified": true, "groups": ["staff", "bedrud-admins"], "name": "Alice Adams", "preferred_username": "alice" },
            "bob": { "email": "bob@example.org", "email_verified": true, "groups": ["staff"], "preferred_username": "bob" },
            "carol": { "email": "carol@example.org", "email_verified": true, "groups": ["contractors"], "preferred_username": "carol" },
            "dora": { "email": "dora@example.org", "email_verified": true, "groups": ["staff"], "preferred_username": "dora.sso" },
        }),
    );
    let down = common::free_port();
    let corp_secret = secret_file(dir.path(), "corp", "corp-secret\n");
    let partner_secret = secret_file(dir.path(), "partner", "partner-secret\n");
    let auth = format!(
        "  oidc:\n    - name: corp\n      label: Corp SSO\n      issuer: {iss}\n      clientId: bedrud\n      clientSecretFile: {}\n      scopes: [openid, email, profile, groups]\n      allowedGroups: [staff]\n      adminGroup: bedrud-admins\n      linkByEmail: true\n\
         \x20   - name: partner\n      label: Partner\n      issuer: {iss}\n      clientId: bedrud-partner\n      clientSecretFile: {}\n\
         \x20   - name: down\n      label: Old IdP\n      issuer: http://127.0.0.1:{down}\n      clientId: bedrud\n",
        corp_secret.display(),
        partner_secret.display(),
        iss = provider.issuer,
    );
    let smtp = SmtpSink::start(None, None);
    let extra = format!("smtp:\n  host: 127.0.0.1\n  port: {}\n  security: none\n  from: meet@example.org\n", smtp.port);
    let d = Daemon::start(Opts { port: Some(port), auth, extra, ..Opts::default() });
    check_client(&d);
    let admin = d.admin();

    // The issuer that is down is named in the log with what to expect; the others are ready.
    eventually(SECS(15), "discovery logged for every provider", || {
        let log = d.log_text();
        log.contains("OpenID provider ready") && log.contains("auth.oidc \"down\"")
    });
    let log = d.log_text();
    let line = log.lines().find(|l| l.contains("auth.oidc \"down\"")).unwrap();
    assert!(line.contains("ERROR") && line.contains(&format!("http://127.0.0.1:{down}/.well-known/openid-configuration")) && line.contains("other sign-ins work"), "{line}");
    assert_eq!(log.matches("OpenID provider ready").count(), 2, "{log}");

    // dora has a local account whose address she verified by mail.
    d.create_user("dora", "dora-password", false);
    let dora = d.login("dora", "dora-password");
    let (s, v) = d.api("PUT", "/api/auth/email", Some(&dora), Some(json!({ "email": "dora@example.org" })));
    assert_eq!(s, 200, "{v}");
    let m = smtp.wait_for("dora@example.org", "Confirm");
    let (s, v) = d.post("/api/auth/email/verify", None, json!({ "token": token_of(&link_in(m["body"].as_str().unwrap(), &public)) }));
    assert_eq!(s, 200, "{v}");

    let out = scenario(
        "sso",
        &json!({ "url": public, "corp": "Corp SSO", "partner": "Partner", "down": "Old IdP", "admin": { "username": "admin", "password": "admin-password" } }),
        SECS(200),
    );
    assert_eq!(out["buttons"], json!(["Continue with Corp SSO", "Continue with Partner", "Continue with Old IdP"]), "{out}");
    assert_eq!((out["aliceAdmin"].as_bool(), out["bobAdmin"].as_bool()), (Some(true), Some(false)), "{out}");
    assert_eq!(out["carolSees"], "Your Corp SSO account is not allowed to use this server.", "{out}");
    assert_eq!(out["forgedSees"], "This sign-in did not start in this browser or took too long. Please try again.", "{out}");
    assert_eq!(out["partnerSees"], "Partner sent a sign-in meant for another application.", "{out}");
    assert_eq!(out["downSees"], "Old IdP cannot be reached right now. Try again later or sign in another way.", "{out}");
    for who in ["carolSession", "forgedSession", "partnerSession"] {
        assert_eq!(out[who], 401, "{who} got no session: {out}");
    }
    assert_eq!(out["passwordStillWorks"], true, "{out}");
    assert_eq!((out["doraIs"].as_str(), out["aliceAgain"].as_str()), (Some("dora"), Some("alice")), "{out}");

    // bedrud's records: accounts made at first sign-in, with the provider's verified address.
    let all = users(&d, &admin);
    let find = |name: &str| all.iter().find(|u| u["username"] == name).cloned();
    let alice = find("alice").expect("alice's account");
    assert_eq!((alice["role"].as_str(), alice["email"].as_str(), alice["emailVerified"].as_bool(), alice["hasPassword"].as_bool()), (Some("admin"), Some("alice@example.org"), Some(true), Some(false)), "{alice}");
    assert_eq!(alice["sso"], json!(["corp"]));
    assert_eq!(find("bob").unwrap()["role"], "user");
    assert_eq!(find("dora").unwrap()["sso"], json!(["corp"]), "linked by e-mail");
    for absent in ["carol", "dora.sso", "alice-2"] {
        assert!(find(absent).is_none(), "{absent} must not exist: {all:?}");
    }
    // Each failure is in the log with its code as a field (`code=…`, quoted or not).
    let failures: Vec<String> = d.log_text().lines().filter(|l| l.contains("single sign-on failed")).map(|l| l.replace('"', "")).collect();
    for code in ["not_allowed", "invalid_state", "wrong_audience", "provider_unavailable"] {
        assert!(failures.iter().any(|l| l.contains(&format!("code={code} "))), "{code} logged: {failures:#?}");
    }
}

/// Links sent by mail (a real SMTP server, aiosmtpd) opened in Chromium: the confirmation of
/// an address and a password reset each work once, then say the link no longer works; a reset
/// asked for in Chinese arrives in Chinese; an invite link mailed from the room's dialog lets
/// its guest in once.
#[test]
fn mail_links_work_once_in_the_browser() {
    use common::signin::SmtpSink;
    let smtp = SmtpSink::start(None, None);
    let extra = format!("smtp:\n  host: 127.0.0.1\n  port: {}\n  security: none\n  from: bedrud <meet@example.org>\n", smtp.port);
    let d = Daemon::start(Opts { extra, ..Opts::default() });
    check_client(&d);
    d.create_user("mia", "mia-password", false);
    let out = scenario(
        "mail",
        &json!({ "url": format!("http://localhost:{}", d.port), "user": { "username": "mia", "password": "mia-password" }, "email": "mia@example.org", "mailDir": smtp.mail_dir() }),
        SECS(180),
    );
    let invalid = "This link does not work: it was used already, has expired, or a newer one was sent.";
    assert_eq!((out["usedTwice"].as_str(), out["resetTwice"].as_str()), (Some(invalid), Some(invalid)), "{out}");
    assert_eq!((out["unverified"].as_bool(), out["tokenHidden"].as_bool()), (Some(true), Some(true)), "{out}");
    assert_eq!(out["zhSubject"], "重置你的 bedrud 密码", "{out}");
    // The mailed invite let one guest in; the same single-use link then says it is used up.
    assert_eq!(out["inviteSubject"], "mia invites you to the meeting mailed-invite", "{out}");
    assert_eq!(out["lateSees"], "This invite link has been used as often as it allows. Ask the host for a new one.", "{out}");
    // The password is the one set through the link, and the address is verified.
    assert_eq!(d.post("/api/auth/login", None, json!({ "username": "mia", "password": "mia-password" })).0, 401);
    let token = d.login("mia", out["newPassword"].as_str().unwrap());
    let (_, me) = d.get("/api/auth/me", Some(&token));
    assert_eq!((me["user"]["email"].as_str(), me["user"]["emailVerified"].as_bool()), (Some("mia@example.org"), Some(true)), "{me}");
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
