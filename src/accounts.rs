//! User accounts: the operations behind the HTTP admin API, the auth API and the CLI, so all
//! of them apply the same rules (names, password length, the last administrator).

use axum::http::StatusCode;

use crate::auth;
use crate::error::ApiError;
use crate::store::{self, Role, Store, StoreError, User, UserView};

/// Argon2 runs at most this many at once (each takes ~19 MiB and a core for tens of ms).
static HASH_SLOTS: std::sync::OnceLock<tokio::sync::Semaphore> = std::sync::OnceLock::new();
/// How long a password check waits for a slot before the request is answered 503.
const HASH_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// Sets how many hashes may run at once (`auth.maxConcurrentHashes`); first call wins, and the
/// default is the number of cores.
pub fn limit_hashes(n: usize) {
    let _ = HASH_SLOTS.set(tokio::sync::Semaphore::new(n.max(1)));
}

/// The default of `auth.maxConcurrentHashes`: the number of cores.
pub fn default_hash_slots() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2)
}

/// Runs an Argon2 job on the blocking pool once a slot is free; 503 + Retry-After when none
/// frees up in time, so a burst of sign-ins cannot take every core and all memory.
async fn hashing<R: Send + 'static>(f: impl FnOnce() -> R + Send + 'static) -> Result<R, ApiError> {
    let slots = HASH_SLOTS.get_or_init(|| tokio::sync::Semaphore::new(default_hash_slots()));
    let _permit = match tokio::time::timeout(HASH_WAIT, slots.acquire()).await {
        Ok(Ok(p)) => p,
        _ => {
            let mut e = ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "busy", "too many sign-ins at once; try again shortly");
            e.retry_after = Some(1);
            return Err(e);
        }
    };
    tokio::task::spawn_blocking(f).await.map_err(|e| ApiError::internal(e.to_string()))
}

/// Hashes off the async runtime (Argon2 takes tens of milliseconds by design).
pub async fn hash(password: String) -> Result<String, ApiError> {
    hashing(move || auth::hash_password(&password)).await?.map_err(ApiError::internal)
}

/// Checks a password against its hash; `Err` only when no hashing slot freed up in time.
pub async fn verify(password: String, hash: String) -> Result<bool, ApiError> {
    hashing(move || auth::verify_password(&password, &hash)).await
}

pub async fn create_user(store: &Store, username: &str, password: &str, role: Role) -> Result<UserView, ApiError> {
    auth::validate_username(username).map_err(|m| ApiError::bad_request("invalid_username", m))?;
    auth::validate_password(password).map_err(|m| ApiError::bad_request("invalid_password", m))?;
    let user = User::new(username, hash(password.to_string()).await?, role);
    let view = user.view();
    store
        .write(move |txn| store::insert_user(txn, &user))
        .await
        .map_err(|e| match e {
            StoreError::Conflict(m) => ApiError::conflict("user_exists", m),
            e => e.into(),
        })?;
    Ok(view)
}

/// Users in name order after `after`, at most `limit`.
pub async fn list_users(store: &Store, after: Option<String>, limit: usize) -> Result<Vec<UserView>, ApiError> {
    let users = store.read(move |txn| store::users_page(txn, after.as_deref(), limit)).await?;
    Ok(users.iter().map(User::view).collect())
}

/// Whether `user` is the only enabled administrator (who must not be demoted, disabled or deleted).
pub(crate) fn is_last_admin(txn: &redb::WriteTransaction, user: &User) -> Result<bool, StoreError> {
    if !user.is_admin() || user.disabled {
        return Ok(false);
    }
    let others = {
        use redb::ReadableTable;
        let t = txn.open_table(store::USERS)?;
        let mut n = 0;
        for row in t.iter()? {
            let (_, v) = row?;
            let u: User = store::decode(v.value())?;
            if u.id != user.id && u.is_admin() && !u.disabled {
                n += 1;
            }
        }
        n
    };
    Ok(others == 0)
}

fn last_admin_error() -> StoreError {
    StoreError::Conflict("last_admin".into())
}

fn map_last_admin(e: StoreError) -> ApiError {
    match e {
        StoreError::Conflict(m) if m == "last_admin" => ApiError::conflict(
            "last_admin",
            "this is the only enabled administrator; make another user admin first",
        ),
        e => e.into(),
    }
}

/// Changes role and/or the disabled flag. Disabling ends the user's sessions at once.
pub async fn update_user(store: &Store, name: &str, role: Option<Role>, disabled: Option<bool>) -> Result<UserView, ApiError> {
    let name = name.to_string();
    store
        .write(move |txn| {
            let mut u = store::user_by_name_w(txn, &name)?.ok_or(StoreError::NotFound("user"))?;
            let demote = role.is_some_and(|r| r != Role::Admin);
            if (demote || disabled == Some(true)) && is_last_admin(txn, &u)? {
                return Err(last_admin_error());
            }
            if let Some(r) = role {
                u.role = r;
                // An administrator's decision outlasts a provider's admin group.
                u.sso_admin = false;
            }
            if let Some(d) = disabled {
                if d && !u.disabled {
                    u.session_epoch += 1;
                }
                u.disabled = d;
            }
            store::put_user(txn, &u)?;
            Ok(u.view())
        })
        .await
        .map_err(map_last_admin)
}

/// Sets a new password and ends every existing session of the user.
pub async fn set_password(store: &Store, name: &str, password: &str) -> Result<User, ApiError> {
    auth::validate_password(password).map_err(|m| ApiError::bad_request("invalid_password", m))?;
    let hash = hash(password.to_string()).await?;
    let name = name.to_string();
    Ok(store
        .write(move |txn| {
            let mut u = store::user_by_name_w(txn, &name)?.ok_or(StoreError::NotFound("user"))?;
            u.password_hash = hash.clone();
            u.session_epoch += 1;
            store::put_user(txn, &u)?;
            Ok(u)
        })
        .await?)
}

pub async fn delete_user(store: &Store, name: &str) -> Result<(), ApiError> {
    let name = name.to_string();
    store
        .write(move |txn| {
            let u = store::user_by_name_w(txn, &name)?.ok_or(StoreError::NotFound("user"))?;
            if is_last_admin(txn, &u)? {
                return Err(last_admin_error());
            }
            store::delete_user(txn, &name)?;
            Ok(())
        })
        .await
        .map_err(map_last_admin)
}

/// Parses a role name from the API or CLI.
pub fn parse_role(s: &str) -> Result<Role, ApiError> {
    match s {
        "admin" => Ok(Role::Admin),
        "user" => Ok(Role::User),
        _ => Err(ApiError::new(StatusCode::BAD_REQUEST, "invalid_role", format!("unknown role {s:?}: use \"admin\" or \"user\""))),
    }
}
