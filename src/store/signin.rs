//! Sign-in records: OpenID identities, verified e-mail addresses, passkeys and links sent by
//! mail. Each write keeps its index and the user record in step within one transaction.

use redb::{ReadTransaction, ReadableTable, WriteTransaction};

use super::model::*;
use super::ops::room_rows;
use super::*;

// ---- OpenID identities ---------------------------------------------------------------------

/// The account an OpenID identity signs into.
pub fn oidc_subject_w(txn: &WriteTransaction, issuer: &str, subject: &str) -> Result<Option<String>, StoreError> {
    Ok(txn.open_table(OIDC_SUBJECTS)?.get((issuer, subject))?.map(|v| v.value().to_string()))
}

/// Links an OpenID identity to `user` (the caller stores the user afterwards).
pub fn oidc_link(txn: &WriteTransaction, user: &mut User, identity: Identity) -> Result<(), StoreError> {
    let mut t = txn.open_table(OIDC_SUBJECTS)?;
    if let Some(other) = t.get((identity.issuer.as_str(), identity.subject.as_str()))?.map(|v| v.value().to_string()) {
        if other != user.id {
            return Err(StoreError::Conflict("this identity already signs into another account".into()));
        }
    }
    t.insert((identity.issuer.as_str(), identity.subject.as_str()), user.id.as_str())?;
    if !user.identities.contains(&identity) {
        user.identities.push(identity);
    }
    Ok(())
}

// ---- e-mail addresses ----------------------------------------------------------------------

fn owner_of(t: &impl ReadableTable<&'static str, &'static str>, email: &str) -> Result<Option<String>, StoreError> {
    Ok(t.get(email)?.map(|v| v.value().to_string()))
}

/// The account whose verified address is `email` (lower case).
pub fn email_owner(txn: &ReadTransaction, email: &str) -> Result<Option<String>, StoreError> {
    owner_of(&txn.open_table(EMAILS)?, email)
}

pub fn email_owner_w(txn: &WriteTransaction, email: &str) -> Result<Option<String>, StoreError> {
    owner_of(&txn.open_table(EMAILS)?, email)
}

/// Gives `user` the address `email` (or none), verified or not, keeping the index of verified
/// addresses in step. `Conflict("email_taken")` when another account has verified it. The
/// caller stores the user afterwards.
pub fn set_email(txn: &WriteTransaction, user: &mut User, email: Option<&str>, verified: bool) -> Result<(), StoreError> {
    let mut t = txn.open_table(EMAILS)?;
    if let (Some(e), true) = (email, verified) {
        if owner_of(&t, e)?.is_some_and(|id| id != user.id) {
            return Err(StoreError::Conflict("email_taken".into()));
        }
    }
    if let (Some(old), true) = (user.email.as_deref(), user.email_verified) {
        if owner_of(&t, old)?.as_deref() == Some(user.id.as_str()) {
            t.remove(old)?;
        }
    }
    user.email = email.map(str::to_string);
    user.email_verified = verified && email.is_some();
    if let (Some(e), true) = (email, user.email_verified) {
        t.insert(e, user.id.as_str())?;
    }
    Ok(())
}

// ---- passkeys ------------------------------------------------------------------------------

pub fn passkeys_of(txn: &ReadTransaction, user_id: &str) -> Result<Vec<PasskeyRecord>, StoreError> {
    room_rows(&txn.open_table(PASSKEYS)?, user_id)
}

pub fn passkeys_of_w(txn: &WriteTransaction, user_id: &str) -> Result<Vec<PasskeyRecord>, StoreError> {
    room_rows(&txn.open_table(PASSKEYS)?, user_id)
}

pub fn passkey_put(txn: &WriteTransaction, p: &PasskeyRecord) -> Result<(), StoreError> {
    txn.open_table(PASSKEYS)?.insert((p.user_id.as_str(), p.id.as_str()), encode(p)?.as_slice())?;
    Ok(())
}

/// Removes one of the user's passkeys; false when it has none by that id.
pub fn passkey_delete(txn: &WriteTransaction, user_id: &str, id: &str) -> Result<bool, StoreError> {
    Ok(txn.open_table(PASSKEYS)?.remove((user_id, id))?.is_some())
}

// ---- links sent by mail --------------------------------------------------------------------

pub fn mail_token_put(txn: &WriteTransaction, key: &str, t: &MailToken) -> Result<(), StoreError> {
    txn.open_table(MAIL_TOKENS)?.insert(key, encode(t)?.as_slice())?;
    Ok(())
}

/// Removes and returns the link stored under `key`: a link works once.
pub fn mail_token_take(txn: &WriteTransaction, key: &str) -> Result<Option<MailToken>, StoreError> {
    let v = txn.open_table(MAIL_TOKENS)?.remove(key)?.map(|v| decode::<MailToken>(v.value()));
    v.transpose()
}

/// Forgets links past their expiry; returns how many.
pub fn mail_tokens_prune(txn: &WriteTransaction, now: u64) -> Result<usize, StoreError> {
    remove_tokens(txn, |t| t.expires_at <= now)
}

fn remove_tokens(txn: &WriteTransaction, mut dead: impl FnMut(&MailToken) -> bool) -> Result<usize, StoreError> {
    let mut t = txn.open_table(MAIL_TOKENS)?;
    let mut keys = Vec::new();
    for row in t.iter()? {
        let (k, v) = row?;
        if dead(&decode(v.value())?) {
            keys.push(k.value().to_string());
        }
    }
    for k in &keys {
        t.remove(k.as_str())?;
    }
    Ok(keys.len())
}

/// Removes everything that signs into `user` (a deleted account): its identities, its verified
/// address, its passkeys and its links.
pub(crate) fn forget_signin(txn: &WriteTransaction, user: &User) -> Result<(), StoreError> {
    let mut subjects = txn.open_table(OIDC_SUBJECTS)?;
    for i in &user.identities {
        subjects.remove((i.issuer.as_str(), i.subject.as_str()))?;
    }
    drop(subjects);
    if let (Some(e), true) = (user.email.as_deref(), user.email_verified) {
        let mut emails = txn.open_table(EMAILS)?;
        if owner_of(&emails, e)?.as_deref() == Some(user.id.as_str()) {
            emails.remove(e)?;
        }
    }
    for p in passkeys_of_w(txn, &user.id)? {
        passkey_delete(txn, &user.id, &p.id)?;
    }
    remove_tokens(txn, |t| t.user_id == user.id)?;
    Ok(())
}
