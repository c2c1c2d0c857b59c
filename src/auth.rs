//! Accounts and sessions: Argon2id password hashes, opaque bearer tokens stored only as their
//! SHA-256, and the limiter that slows repeated failed sign-ins with 429.

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

/// Throttles failed sign-ins so that an attacker is slowed and the owner is not locked out.
///
/// Failures are counted per (account, client address) and per client address (IPv6 per /64).
/// Past `max` failures of a pair (4 × `max` for an address) each further attempt from there
/// waits a delay that doubles with every failure, up to `lockout`; attempts inside the delay
/// are refused with 429 without checking the password. Nothing is counted per account alone,
/// so a flood of wrong passwords from one place never refuses the right password from another.
pub struct LoginLimiter {
    max: u32,
    lockout: Duration,
    entries: Mutex<HashMap<Key, Entry>>,
}

#[derive(Clone, PartialEq, Eq, Hash)]
enum Key {
    Pair(String, IpAddr),
    Addr(IpAddr),
}

#[derive(Clone, Copy)]
struct Entry {
    failures: u32,
    last: Instant,
}

/// Entries kept at most; past this, idle ones are forgotten first.
const LIMITER_CAPACITY: usize = 100_000;

/// The address a limit applies to: IPv4 as is, IPv6 by its /64 (one host's usual share).
fn limit_addr(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
        v4 => v4,
    }
}

impl LoginLimiter {
    pub fn new(max: u32, lockout: Duration) -> Self {
        Self { max: max.max(1), lockout, entries: Mutex::new(HashMap::new()) }
    }

    fn keys(&self, user: &str, ip: Option<IpAddr>) -> Vec<(Key, u32)> {
        // No address is one address of its own (never the case for TCP clients).
        let ip = limit_addr(ip.unwrap_or(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED)));
        vec![(Key::Pair(user.to_string(), ip), self.max), (Key::Addr(ip), self.max.saturating_mul(4))]
    }

    /// How long a key past its threshold must wait after its last failure.
    fn delay(&self, failures: u32, threshold: u32) -> Option<Duration> {
        let over = failures.checked_sub(threshold)?;
        let d = Duration::from_secs(1u64 << over.min(20));
        Some(d.min(self.lockout))
    }

    /// `Some(seconds to wait)` when this account is throttled from this address.
    pub fn check(&self, user: &str, ip: Option<IpAddr>) -> Option<u64> {
        let map = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        self.keys(user, ip)
            .into_iter()
            .filter_map(|(k, threshold)| {
                let e = map.get(&k)?;
                let until = e.last + self.delay(e.failures, threshold)?;
                (until > now).then(|| (until - now).as_secs_f64().ceil() as u64)
            })
            .max()
            .map(|s| s.max(1))
    }

    pub fn failed(&self, user: &str, ip: Option<IpAddr>) {
        let mut map = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        // An entry idle for four lockouts starts again from zero.
        let forget = self.lockout * 4;
        if map.len() >= LIMITER_CAPACITY {
            map.retain(|_, e| now.duration_since(e.last) < forget);
            if map.len() >= LIMITER_CAPACITY {
                let max = self.max;
                map.retain(|k, e| matches!(k, Key::Addr(_)) || e.failures >= max);
            }
        }
        for (k, _) in self.keys(user, ip) {
            let e = map.entry(k).or_insert(Entry { failures: 0, last: now });
            if now.duration_since(e.last) >= forget {
                e.failures = 0;
            }
            e.failures = e.failures.saturating_add(1);
            e.last = now;
        }
    }

    /// A successful sign-in clears the pair's count (not the address's).
    pub fn succeeded(&self, user: &str, ip: Option<IpAddr>) {
        let mut map = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let ip = limit_addr(ip.unwrap_or(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED)));
        map.remove(&Key::Pair(user.to_string(), ip));
    }

    /// Keys currently counted (for metrics).
    pub fn tracked(&self) -> usize {
        self.entries.lock().unwrap_or_else(|e| e.into_inner()).len()
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
    fn limiter_throttles_pair_and_address_never_the_account_alone() {
        let l = LoginLimiter::new(3, Duration::from_secs(60));
        let a: IpAddr = "127.0.0.1".parse().unwrap();
        let b: IpAddr = "127.0.0.2".parse().unwrap();
        for _ in 0..3 {
            assert!(l.check("alice", Some(a)).is_none());
            l.failed("alice", Some(a));
        }
        assert!(l.check("alice", Some(a)).is_some(), "the pair waits");
        assert!(l.check("alice", Some(b)).is_none(), "another address is not refused");
        assert!(l.check("bob", Some(a)).is_none(), "the address is below its own threshold");
        for i in 0..9 {
            l.failed(&format!("u{i}"), Some(a));
        }
        assert!(l.check("bob", Some(a)).is_some(), "12 failures from one address throttle it");
        assert!(l.check("alice", Some(b)).is_none());
    }

    #[test]
    fn limiter_delay_doubles_up_to_lockout() {
        let l = LoginLimiter::new(2, Duration::from_secs(10));
        assert_eq!(l.delay(1, 2), None);
        assert_eq!(l.delay(2, 2), Some(Duration::from_secs(1)));
        assert_eq!(l.delay(4, 2), Some(Duration::from_secs(4)));
        assert_eq!(l.delay(9, 2), Some(Duration::from_secs(10)));
        assert_eq!(l.delay(u32::MAX, 2), Some(Duration::from_secs(10)));
    }

    #[test]
    fn ipv6_is_limited_per_64() {
        let x: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let y: IpAddr = "2001:db8:1:2:bbbb::9".parse().unwrap();
        assert_eq!(limit_addr(x), limit_addr(y));
        let m: IpAddr = "::ffff:10.1.2.3".parse().unwrap();
        assert_eq!(limit_addr(m), "10.1.2.3".parse::<IpAddr>().unwrap());
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
