//! First run: a new install has no administrator. While none exists, each start of the daemon
//! makes a one-time setup token (kept only as its SHA-256), logs the link
//! `/setup?token=...`, and the first visitor who opens it creates the administrator through
//! `POST /api/setup`. The token stops working as soon as an administrator exists, however it
//! was made (the link, `bedrud user create --admin`, or the admin API).

use redb::ReadableTable;
use subtle::ConstantTimeEq;

use crate::accounts;
use crate::auth;
use crate::error::ApiError;
use crate::store::{self, Role, Store, StoreError, User};

/// Meta key of the token's hash.
const TOKEN_KEY: &str = "setup_token_sha256";

/// Whether an enabled administrator exists.
pub fn admin_exists_in(users: &impl ReadableTable<&'static str, &'static [u8]>) -> Result<bool, StoreError> {
    for row in users.iter()? {
        let (_, v) = row?;
        let u: User = serde_json::from_slice(v.value())?;
        if u.is_admin() && !u.disabled {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Whether the first administrator still has to be made.
pub async fn needed(store: &Store) -> Result<bool, StoreError> {
    store.read(|txn| Ok(!admin_exists_in(&txn.open_table(store::USERS)?)?)).await
}

/// At start: with no administrator, a fresh token (returned, stored hashed; an older link stops
/// working). `None` when an administrator exists.
pub async fn prepare(store: &Store) -> Result<Option<String>, StoreError> {
    let (token, hash) = auth::new_token();
    store
        .write(move |txn| {
            if admin_exists_in(&txn.open_table(store::USERS)?)? {
                txn.open_table(store::META)?.remove(TOKEN_KEY)?;
                return Ok(None);
            }
            store::meta_put(txn, TOKEN_KEY, &hash)?;
            Ok(Some(token.clone()))
        })
        .await
}

/// Creates the first administrator if `token` is the setup token and none exists yet; the
/// token is then used up.
pub async fn complete(store: &Store, token: &str, username: &str, password: &str) -> Result<User, ApiError> {
    auth::validate_username(username).map_err(|m| ApiError::bad_request("invalid_username", m))?;
    auth::validate_password(password).map_err(|m| ApiError::bad_request("invalid_password", m))?;
    // Refuse a wrong token before spending an Argon2 hash on it.
    let given = auth::token_key(token.trim());
    check(store, &given).await?;
    let user = User::new(username, accounts::hash(password.to_string()).await?, Role::Admin);
    let created = user.clone();
    store
        .write(move |txn| {
            // Checked again in the transaction that creates the user: two visitors racing
            // with the same link make one administrator.
            if admin_exists_in(&txn.open_table(store::USERS)?)? {
                return Err(StoreError::Conflict("setup_done".into()));
            }
            if !token_matches(stored_hash(&txn.open_table(store::META)?)?.as_deref(), &given) {
                return Err(StoreError::Invalid("setup_token".into()));
            }
            store::insert_user(txn, &user)?;
            txn.open_table(store::META)?.remove(TOKEN_KEY)?;
            Ok(())
        })
        .await
        .map_err(map_err)?;
    tracing::info!(username = %created.username, "first administrator created through the setup link");
    Ok(created)
}

async fn check(store: &Store, given: &str) -> Result<(), ApiError> {
    let given = given.to_string();
    store
        .read(move |txn| {
            if admin_exists_in(&txn.open_table(store::USERS)?)? {
                return Err(StoreError::Conflict("setup_done".into()));
            }
            if !token_matches(store::meta_get(txn, TOKEN_KEY)?.as_deref(), &given) {
                return Err(StoreError::Invalid("setup_token".into()));
            }
            Ok(())
        })
        .await
        .map_err(map_err)
}

fn stored_hash(meta: &impl ReadableTable<&'static str, &'static [u8]>) -> Result<Option<String>, StoreError> {
    Ok(meta.get(TOKEN_KEY)?.map(|v| String::from_utf8_lossy(v.value()).into_owned()))
}

fn token_matches(stored: Option<&str>, given: &str) -> bool {
    stored.is_some_and(|s| s.len() == given.len() && bool::from(s.as_bytes().ct_eq(given.as_bytes())))
}

fn map_err(e: StoreError) -> ApiError {
    match e {
        StoreError::Conflict(m) if m == "setup_done" => ApiError::conflict(
            "setup_done",
            "an administrator already exists; sign in, or ask an administrator for an account",
        ),
        StoreError::Invalid(m) if m == "setup_token" => ApiError::forbidden(
            "this setup link is not valid (it changes at every start of bedrud while no administrator exists): use the link from the latest log",
        )
        .with_code("invalid_setup_token"),
        StoreError::Conflict(m) => ApiError::conflict("user_exists", m),
        e => e.into(),
    }
}
