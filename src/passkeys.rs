//! Passkeys (WebAuthn) through webauthn-rs: registering several on an account, signing in
//! with one, removing one.
//!
//! The relying party is `server.publicUrl`: its host is the RP ID and the URL is the one
//! origin accepted, so a passkey made on `https://meet.example.org` works there only.
//! Browsers allow WebAuthn only in a secure context (`https://`, or `http://localhost`) and
//! only for a host name, so with an IP address in `publicUrl` passkeys are off. Ceremonies
//! (the challenge between the two calls of a registration or a sign-in) stay in memory for
//! five minutes and are used once.

use std::time::Duration;

use base64::Engine;
use webauthn_rs::prelude::{
    AuthenticationResult, CreationChallengeResponse, Passkey, PasskeyAuthentication, PasskeyRegistration, PublicKeyCredential,
    RegisterPublicKeyCredential, RequestChallengeResponse, Url, Uuid, Webauthn, WebauthnBuilder, WebauthnError,
};

use crate::auth::{Pending, PendingFull};
use crate::config::Config;
use crate::store::{PasskeyRecord, User};

/// How long the browser may take between the two calls of a ceremony.
pub const CEREMONY_TTL: Duration = Duration::from_secs(300);
/// Ceremonies in flight at once.
const MAX_CEREMONIES: usize = 10_000;
/// Passkeys one account may hold.
pub const MAX_PER_USER: usize = 20;

/// Why a passkey ceremony failed.
#[derive(Debug, thiserror::Error)]
pub enum PasskeyError {
    #[error("this passkey prompt expired or was already used; start again")]
    Expired,
    #[error("the passkey was not accepted: {0}")]
    Rejected(String),
    #[error("too many passkey prompts are open; try again in a minute")]
    Busy,
    #[error("{0}")]
    Internal(String),
}

impl From<PendingFull> for PasskeyError {
    fn from(_: PendingFull) -> Self {
        Self::Busy
    }
}

impl From<WebauthnError> for PasskeyError {
    fn from(e: WebauthnError) -> Self {
        Self::Rejected(e.to_string())
    }
}

/// The relying party and the ceremonies in progress.
pub struct Passkeys {
    webauthn: Webauthn,
    /// (user id, state) of registrations in progress.
    registrations: Pending<(String, PasskeyRegistration)>,
    /// (user id, state) of sign-ins in progress.
    logins: Pending<(String, PasskeyAuthentication)>,
    pub rp_id: String,
}

/// The API's id of a credential: its id in base64url.
pub fn credential_id(id: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(id)
}

fn user_uuid(user_id: &str) -> Result<Uuid, PasskeyError> {
    Uuid::parse_str(user_id).map_err(|_| PasskeyError::Internal(format!("user id {user_id:?} is not a UUID")))
}

impl Passkeys {
    /// The relying party for `server.publicUrl`, or `None` when passkeys are off (by
    /// `auth.passkeys`, or because the URL names an IP address).
    pub fn from_config(cfg: &Config) -> Result<Option<Passkeys>, String> {
        if !cfg.auth.passkeys {
            return Ok(None);
        }
        let origin = Url::parse(&cfg.public_url()).map_err(|e| format!("server.publicUrl: {e}"))?;
        let Some(url::Host::Domain(rp_id)) = origin.host().map(|h| h.to_owned()) else { return Ok(None) };
        let webauthn = WebauthnBuilder::new(&rp_id, &origin)
            .and_then(|b| b.rp_name("bedrud").build())
            .map_err(|e| format!("passkeys for {origin}: {e}"))?;
        Ok(Some(Passkeys {
            webauthn,
            registrations: Pending::new(CEREMONY_TTL, MAX_CEREMONIES),
            logins: Pending::new(CEREMONY_TTL, MAX_CEREMONIES),
            rp_id,
        }))
    }

    /// Starts registering a new passkey for `user`, who already has `existing` (the browser
    /// refuses to make a second one on the same authenticator).
    pub fn start_registration(&self, user: &User, existing: &[PasskeyRecord]) -> Result<(String, CreationChallengeResponse), PasskeyError> {
        let exclude = existing.iter().map(|p| p.passkey.cred_id().clone()).collect::<Vec<_>>();
        let (ccr, state) = self.webauthn.start_passkey_registration(user_uuid(&user.id)?, &user.username, &user.username, Some(exclude).filter(|e| !e.is_empty()))?;
        let id = self.registrations.insert((user.id.clone(), state))?;
        Ok((id, ccr))
    }

    /// Finishes a registration that `user` started.
    pub fn finish_registration(&self, user: &User, ceremony: &str, cred: &RegisterPublicKeyCredential) -> Result<Passkey, PasskeyError> {
        let (owner, state) = self.registrations.take(ceremony).ok_or(PasskeyError::Expired)?;
        if owner != user.id {
            return Err(PasskeyError::Expired);
        }
        Ok(self.webauthn.finish_passkey_registration(cred, &state)?)
    }

    /// Starts a sign-in as the owner of `records`.
    pub fn start_login(&self, user_id: &str, records: &[PasskeyRecord]) -> Result<(String, RequestChallengeResponse), PasskeyError> {
        let keys: Vec<Passkey> = records.iter().map(|r| r.passkey.clone()).collect();
        let (rcr, state) = self.webauthn.start_passkey_authentication(&keys)?;
        let id = self.logins.insert((user_id.to_string(), state))?;
        Ok((id, rcr))
    }

    /// Finishes a sign-in: the account the ceremony was for, and what the authenticator
    /// reported or why it was rejected.
    pub fn finish_login(&self, ceremony: &str, cred: &PublicKeyCredential) -> Result<(String, Result<AuthenticationResult, PasskeyError>), PasskeyError> {
        let (user_id, state) = self.logins.take(ceremony).ok_or(PasskeyError::Expired)?;
        let result = self.webauthn.finish_passkey_authentication(cred, &state).map_err(PasskeyError::from);
        Ok((user_id, result))
    }
}
