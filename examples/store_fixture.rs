//! Writes a small store holding one of every kind of record, through the library's own store
//! operations: the fixture that later versions of bedrud must still open (tests/data/).
//!
//!   store_fixture PATH
//!
//! Users `admin` (`fixture-admin-pw`), `alice` (`fixture-alice-pw`; verified e-mail, a
//! passkey, an OpenID identity) and `bob` (`fixture-bob-pw`; unverified e-mail); rooms
//! `weekly-sync` (public, lobby and stage on, locked, `alice` in the spotlight, `bob`
//! moderates) and `board-room`; invites, lobby and stage attendees, a ban, a session, a mailed
//! link, two closed and one open participant-history rows, a LiveKit room session, a webhook
//! event, a tombstone, an egress record and two recordings (one complete, one failed). Times
//! are fixed so the file is the same every run (but for Argon2 salts and UUIDs).

use std::path::PathBuf;

use bedrud::store::{self, *};

fn main() {
    let path = PathBuf::from(std::env::args().nth(1).unwrap_or_else(|| {
        eprintln!("usage: store_fixture PATH");
        std::process::exit(2)
    }));
    if path.exists() {
        eprintln!("store_fixture: {} exists; give a new path", path.display());
        std::process::exit(2)
    }
    let s = Store::open(&path).unwrap();
    let t0: u64 = 1_764_000_000_000;
    let hash = |pw: &str| bedrud::auth::hash_password(pw).unwrap();
    let admin = User { created_at: t0, ..User::new("admin", hash("fixture-admin-pw"), Role::Admin) };
    let mut alice = User { created_at: t0 + 1, ..User::new("alice", hash("fixture-alice-pw"), Role::User) };
    let mut bob = User { created_at: t0 + 2, session_epoch: 3, ..User::new("bob", hash("fixture-bob-pw"), Role::User) };
    let passkey: webauthn_rs::prelude::Passkey = serde_json::from_value(serde_json::json!({"cred": {
        "cred_id": "uZcVDBVS68E_MtAgeQpElJxldF_6cY9sSvbWqx_qRh8wiu42lyRBRmh5yFeD_r9k130dMbFHBHI9RTFgdJQIzQ",
        "cred": {"type_": "ES256", "key": {"EC_EC2": {"curve": "SECP256R1",
            "x": [194,126,127,109,252,23,131,21,252,6,223,99,44,254,140,27,230,17,94,5,133,28,104,41,144,69,171,149,161,26,200,243],
            "y": [143,123,183,156,24,178,21,248,117,159,162,69,171,52,188,252,26,59,6,47,103,92,19,58,117,103,249,0,219,8,95,196]}}},
        "counter": 2, "transports": null, "user_verified": true, "backup_eligible": false,
        "backup_state": false, "registration_policy": "required",
        "extensions": {"cred_protect": "NotRequested", "hmac_create_secret": "NotRequested",
            "appid": "NotRequested", "cred_props": "Ignored"},
        "attestation": {"data": "None", "metadata": "None"}, "attestation_format": "none"}}))
    .unwrap();
    s.write_blocking(move |txn| {
        insert_user(txn, &admin)?;
        set_email(txn, &mut alice, Some("alice@example.org"), true)?;
        oidc_link(txn, &mut alice, Identity { provider: "Corp".into(), issuer: "https://id.example.org".into(), subject: "alice-sub-1".into() })?;
        insert_user(txn, &alice)?;
        set_email(txn, &mut bob, Some("bob@example.org"), false)?;
        insert_user(txn, &bob)?;
        passkey_put(txn, &PasskeyRecord {
            id: "uZcVDBVS68E_MtAgeQpElJxldF_6cY9sSvbWqx_qRh8wiu42lyRBRmh5yFeD_r9k130dMbFHBHI9RTFgdJQIzQ".into(),
            user_id: alice.id.clone(),
            name: "Laptop".into(),
            created_at: t0 + 10,
            last_used_at: Some(t0 + 20),
            passkey: passkey.clone(),
        })?;
        mail_token_put(txn, "d2a84f4b8b650937ec8f73cd8be2c74add5a911ba64df27458ed8229da804a26", &MailToken {
            purpose: MailPurpose::Verify,
            user_id: bob.id.clone(),
            email: "bob@example.org".into(),
            epoch: 3,
            expires_at: 4_000_000_000_000,
        })?;
        session_put(txn, "5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8", &Session {
            kind: SessionKind::User,
            subject: alice.id.clone(),
            epoch: 0,
            created_at: t0 + 30,
            expires_at: 4_000_000_000_000,
        })?;
        let weekly = RoomSettings { public: true, max_participants: 8, allow_screen_share: false, lobby: true, stage: true, ..Default::default() };
        let mut room = Room::new("weekly-sync", &alice.id, t0 + 40, weekly);
        room.locked = true;
        room.spotlight = Some("alice".into());
        room_insert(txn, &room)?;
        room_insert(txn, &Room::new("board-room", &admin.id, t0 + 41, RoomSettings::default()))?;
        moderator_add(txn, "weekly-sync", &bob.id)?;
        let invite = |id: &str, hash: &str, role, max_uses, uses, revoked_at, banned| Invite {
            id: id.into(),
            room: "weekly-sync".into(),
            token_hash: hash.into(),
            role,
            created_by: "alice".into(),
            created_at: t0 + 50,
            expires_at: Some(4_000_000_000_000),
            max_uses,
            uses,
            revoked_at,
            banned,
        };
        invite_insert(txn, &invite("inv-open", "1111111111111111111111111111111111111111111111111111111111111111", InviteRole::Participant, Some(10), 2, None, false))?;
        invite_insert(txn, &invite("inv-mod", "2222222222222222222222222222222222222222222222222222222222222222", InviteRole::Moderator, None, 1, Some(t0 + 60), false))?;
        invite_insert(txn, &invite("inv-banned", "3333333333333333333333333333333333333333333333333333333333333333", InviteRole::Participant, None, 1, None, true))?;
        attendee_put(txn, "weekly-sync", &Attendee {
            invite: Some("inv-open".into()),
            lobby: Some(LobbyStatus::Waiting),
            knocked_at: t0 + 70,
            ..Attendee::new("guest-waiting", "Waiting Guest", true)
        })?;
        attendee_put(txn, "weekly-sync", &Attendee {
            invite: Some("inv-mod".into()),
            moderator: true,
            speaker: true,
            lobby: Some(LobbyStatus::Admitted),
            knocked_at: t0 + 71,
            ..Attendee::new("guest-mod", "Guest Moderator", true)
        })?;
        attendee_put(txn, "weekly-sync", &Attendee { speaker: true, ..Attendee::new("bob", "Bob", false) })?;
        ban_put(txn, "weekly-sync", &Ban {
            identity: "guest-banned".into(),
            name: "Banned Guest".into(),
            guest: true,
            invite: Some("inv-banned".into()),
            by: "alice".into(),
            at: t0 + 80,
        })?;
        participant_join(txn, "weekly-sync", "alice", "PA_alice1", "Alice", t0 + 100, t0 + 100)?;
        participant_leave(txn, "weekly-sync", "alice", t0 + 200, "left")?;
        participant_join(txn, "board-room", "bob", "PA_bob1", "bob", t0 + 110, t0 + 110)?;
        participant_leave(txn, "board-room", "bob", t0 + 210, "aborted")?;
        let mut live = participant_join(txn, "weekly-sync", "guest-mod", "PA_guest1", "Guest Moderator", t0 + 300, t0 + 300)?;
        live.tracks.push(TrackInfo { sid: "TR_mic1".into(), source: "microphone".into(), muted: true });
        live_put(txn, "weekly-sync", &live)?;
        room_session_put(txn, &RoomSession { room: "weekly-sync".into(), sid: "RM_weekly1".into(), started_at: t0 + 90, finished_at: None })?;
        room_session_put(txn, &RoomSession { room: "board-room".into(), sid: "RM_board1".into(), started_at: t0 + 95, finished_at: Some(t0 + 250) })?;
        event_mark(txn, "EV_fixture1", t0 + 100)?;
        tombstone_put(txn, "left:PA_alice1", t0 + 200)?;
        egress_put(txn, "EG_fixture1", br#"{"egressId":"EG_fixture1","roomName":"weekly-sync","status":"EGRESS_COMPLETE"}"#)?;
        use bedrud::recording::record::{self, Recording, Status};
        record::put(txn, &Recording {
            id: "rec_fixture1".into(),
            egress_id: Some("EG_fixture1".into()),
            status: Status::Complete,
            started_at: Some(t0 + 95),
            ended_at: Some(t0 + 195),
            file: Some("/var/lib/bedrud/recordings/rec_fixture1.mp4".into()),
            size: Some(1_234_567),
            duration_ms: Some(100_000),
            updated_at: t0 + 196,
            ..Recording::new("weekly-sync", &alice, "speaker", false, t0 + 90)
        })?;
        record::put(txn, &Recording {
            id: "rec_fixture2".into(),
            status: Status::Failed,
            error: Some("the recording worker stopped".into()),
            updated_at: t0 + 300,
            ..Recording::new("weekly-sync", &admin, "grid", true, t0 + 250)
        })?;
        Ok(())
    })
    .unwrap();
    let v = s.read_blocking(|t| store::meta_get(t, "schema_version")).unwrap();
    println!("wrote {} (schema {})", path.display(), v.unwrap_or_default());
}
