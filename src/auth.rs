//! Accounts and sessions: Argon2id password hashes, opaque bearer tokens stored only as their
//! SHA-256, and the limiter that answers repeated failed logins with 429.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::store::{now_ms, Role, Session, SessionKind, User};

pub const MIN_PASSWORD_LEN: usize = 8;
pub const MAX_PASSWORD_LEN: usize = 1024;

/// Hashes a password with Argon2id (default parameters: 19 MiB, 2 passes).
pub fn hash_password(password: &str) -> Result<String, String> {
    let mut salt = [0u8; 16];
    rand::rng().fill_bytes(&mut salt);
    let salt = SaltString::encode_b64(&salt).map_err(|e| e.to_string())?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| e.to_string())
}

pub fn verify_password(password: &str, hash: &str) -> bool {
    match PasswordHash::new(hash) {
        Ok(h) => Argon2::default().verify_password(password.as_bytes(), &h).is_ok(),
        Err(_) => false,
    }
}

/// A hash of a throwaway password, verified against when the user does not exist so that a
/// failed login costs the same either way.
pub fn dummy_hash() -> &'static str {
    static H: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    H.get_or_init(|| hash_password("bedrud-timing-equaliser").unwrap_or_default())
}

/// Username rules: 3–32 of lowercase letters, digits, `.`, `_`, `-`, starting with a letter or digit.
pub fn validate_username(name: &str) -> Result<(), String> {
    let ok_len = (3..=32).contains(&name.len());
    let ok_chars = name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c));
    let ok_start = name.chars().next().is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    if ok_len && ok_chars && ok_start {
        Ok(())
    } else {
        Err("username must be 3-32 characters: lowercase letters, digits, '.', '_' or '-', starting with a letter or digit".into())
    }
}

pub fn validate_password(pw: &str) -> Result<(), String> {
    if pw.chars().count() < MIN_PASSWORD_LEN {
        return Err(format!("password must be at least {MIN_PASSWORD_LEN} characters"));
    }
    if pw.len() > MAX_PASSWORD_LEN {
        return Err(format!("password must be at most {MAX_PASSWORD_LEN} bytes"));
    }
    Ok(())
}

/// A new user record (the caller inserts it).
pub fn new_user(username: &str, password: &str, role: Role) -> Result<User, String> {
    validate_username(username)?;
    validate_password(password)?;
    Ok(User::new(username, hash_password(password)?, role))
}

/// A fresh bearer token (256 random bits, URL-safe) and the key it is stored under.
pub fn new_token() -> (String, String) {
    let mut b = [0u8; 32];
    rand::rng().fill_bytes(&mut b);
    let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
    let key = token_key(&token);
    (token, key)
}

/// The store key of a bearer token: its SHA-256, hex. The token itself is never stored.
pub fn token_key(token: &str) -> String {
    let d = Sha256::digest(token.as_bytes());
    let mut s = String::with_capacity(64);
    for b in d {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

pub fn user_session(user: &User, ttl: Duration) -> Session {
    let now = now_ms();
    Session {
        kind: SessionKind::User,
        subject: user.id.clone(),
        epoch: user.session_epoch,
        created_at: now,
        expires_at: now + ttl.as_millis() as u64,
    }
}

pub fn guest_session(ttl: Duration) -> Session {
    let now = now_ms();
    let mut b = [0u8; 9];
    rand::rng().fill_bytes(&mut b);
    Session {
        kind: SessionKind::Guest,
        subject: format!("guest-{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)),
        epoch: 0,
        created_at: now,
        expires_at: now + ttl.as_millis() as u64,
    }
}

/// A random URL-safe secret of `bytes` random bytes (ceremony ids, OAuth `state`, nonces).
pub fn random_secret(bytes: usize) -> String {
    let mut b = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut b);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

/// Sign-in ceremonies in progress (an OpenID redirect, a passkey prompt), kept in memory for
/// minutes under a random id and taken out once: a restart only asks people to start again.
/// The number in flight is capped, so anonymous requests cannot grow it without bound.
pub struct Pending<T> {
    ttl: Duration,
    cap: usize,
    map: Mutex<HashMap<String, (Instant, T)>>,
}

/// Too many sign-ins are in progress at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PendingFull;

impl<T> Pending<T> {
    pub fn new(ttl: Duration, cap: usize) -> Self {
        Self { ttl, cap, map: Mutex::new(HashMap::new()) }
    }

    /// Keeps `value` under a new random id and returns the id.
    pub fn insert(&self, value: T) -> Result<String, PendingFull> {
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= self.cap {
            let ttl = self.ttl;
            map.retain(|_, (at, _)| at.elapsed() < ttl);
            if map.len() >= self.cap {
                return Err(PendingFull);
            }
        }
        let id = random_secret(16);
        map.insert(id.clone(), (Instant::now(), value));
        Ok(id)
    }

    /// Takes the value kept under `id`, unless it has expired.
    pub fn take(&self, id: &str) -> Option<T> {
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        map.remove(id).filter(|(at, _)| at.elapsed() < self.ttl).map(|(_, v)| v)
    }
}

/// Counts failed logins per account and per client address within a window; after `max`
/// failures further attempts are refused until the window has passed.
pub struct LoginLimiter {
    max: u32,
    window: Duration,
    entries: Mutex<HashMap<String, (u32, Instant)>>,
}

impl LoginLimiter {
    pub fn new(max: u32, window: Duration) -> Self {
        Self { max, window, entries: Mutex::new(HashMap::new()) }
    }

    fn keys(user: &str, ip: Option<IpAddr>) -> [Option<String>; 2] {
        [Some(format!("u:{user}")), ip.map(|ip| format!("ip:{ip}"))]
    }

    /// `Some(seconds to wait)` when this account or address is locked out.
    pub fn check(&self, user: &str, ip: Option<IpAddr>) -> Option<u64> {
        let map = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        Self::keys(user, ip)
            .into_iter()
            .flatten()
            .filter_map(|k| map.get(&k).copied())
            .filter(|(n, since)| *n >= self.max && now.duration_since(*since) < self.window)
            .map(|(_, since)| (self.window - now.duration_since(since)).as_secs().max(1))
            .max()
    }

    pub fn failed(&self, user: &str, ip: Option<IpAddr>) {
        let mut map = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        if map.len() > 100_000 {
            let window = self.window;
            map.retain(|_, (_, since)| now.duration_since(*since) < window);
        }
        for k in Self::keys(user, ip).into_iter().flatten() {
            let e = map.entry(k).or_insert((0, now));
            if now.duration_since(e.1) >= self.window {
                *e = (0, now);
            }
            e.0 += 1;
        }
    }

    /// A successful login clears the account's count (not the address's).
    pub fn succeeded(&self, user: &str) {
        let mut map = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        map.remove(&format!("u:{user}"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_round_trip() {
        let h = hash_password("correct horse").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password("correct horse", &h));
        assert!(!verify_password("wrong horse", &h));
        assert!(!verify_password("x", "not a hash"));
    }

    #[test]
    fn limiter_locks_account_and_address() {
        let l = LoginLimiter::new(3, Duration::from_secs(60));
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        for _ in 0..3 {
            assert!(l.check("alice", Some(ip)).is_none());
            l.failed("alice", Some(ip));
        }
        assert!(l.check("alice", None).is_some());
        assert!(l.check("bob", Some(ip)).is_some(), "address is locked too");
        assert!(l.check("bob", Some("127.0.0.2".parse().unwrap())).is_none());
    }

    #[test]
    fn pending_is_taken_once_expires_and_is_capped() {
        let p = Pending::new(Duration::from_millis(200), 2);
        let a = p.insert("a").unwrap();
        let b = p.insert("b").unwrap();
        assert_ne!(a, b);
        assert_eq!(p.insert("c"), Err(PendingFull));
        assert_eq!(p.take(&a), Some("a"));
        assert_eq!(p.take(&a), None, "taken once");
        assert_eq!(p.take("unknown"), None);
        std::thread::sleep(Duration::from_millis(250));
        assert_eq!(p.take(&b), None, "expired");
        // Expired entries make room.
        let _ = p.insert("d").unwrap();
        let _ = p.insert("e").unwrap();
    }

    #[test]
    fn usernames() {
        assert!(validate_username("alice").is_ok());
        assert!(validate_username("Al").is_err());
        assert!(validate_username("-x-").is_err());
        assert!(validate_username("a b c").is_err());
    }
}
