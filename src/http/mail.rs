//! The account's e-mail address and the links sent to it: verification and password reset.
//! Links point at the web client (`/verify-email?token=`, `/reset-password?token=`), whose
//! page then calls the API: a mail scanner that follows links does not use them up.
//!
//! | endpoint | who | answers |
//! |---|---|---|
//! | `PUT /api/auth/email` `{email, lang?}` | user | `{user, verificationSent}`; `""` removes the address; 400 `invalid_email`; 409 `email_taken` |
//! | `POST /api/auth/email/resend` `{lang?}` | user | 202; 400 `no_email` / `already_verified`; 404 `mail_disabled`; 502 `mail_failed` |
//! | `POST /api/auth/email/verify` `{token}` | anyone | `{user}`; 400 `invalid_link`; 409 `email_taken` |
//! | `POST /api/auth/password/forgot` `{email, lang?}` | anyone | 202 whether or not the address is known; 404 `mail_disabled`; 429 |
//! | `POST /api/auth/password/reset` `{token, newPassword}` | anyone | `{user}`, every session ended; 400 `invalid_link` / `invalid_password` |

use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::UserAnswer;
use super::extract::{AuthUser, ClientAddr, Json};
use super::SharedState;
use crate::accounts;
use crate::auth::validate_password;
use crate::error::{ApiError, ErrorBody};
use crate::mail::{self, normalize_email, Lang, Mailer, RESET_TTL, VERIFY_TTL};
use crate::store::{self, MailPurpose, StoreError, User, UserView};

pub fn routes() -> OpenApiRouter<SharedState> {
    OpenApiRouter::new()
        .routes(routes!(set_email))
        .routes(routes!(resend))
        .routes(routes!(verify))
        .routes(routes!(forgot))
        .routes(routes!(reset))
}

pub(super) fn mailer(st: &SharedState) -> Result<&Mailer, ApiError> {
    st.signin.mailer.as_ref().ok_or_else(|| ApiError::not_found("mail_disabled", "this server sends no mail (smtp.host is not set)"))
}

/// `raw` as a normalised address, or 400 `invalid_email`.
pub(super) fn email_address(raw: &str) -> Result<String, ApiError> {
    normalize_email(raw).ok_or_else(|| ApiError::bad_request("invalid_email", format!("{raw:?} is not an e-mail address")))
}

/// 502 `mail_failed` with the relay's answer after `what`.
pub(super) fn mail_failed(what: &str, e: mail::MailError) -> ApiError {
    ApiError::new(StatusCode::BAD_GATEWAY, "mail_failed", format!("{what}: {e}"))
}

fn invalid_link() -> ApiError {
    ApiError::bad_request("invalid_link", "this link does not work: it was used already, has expired, or a newer one was sent")
}

fn email_taken() -> ApiError {
    ApiError::conflict("email_taken", "another account has already verified this address")
}

fn store_error(e: StoreError) -> ApiError {
    match e {
        StoreError::Conflict(m) if m == "email_taken" => email_taken(),
        e => e.into(),
    }
}

/// Sends `user` a verification link for their address and waits for the relay.
async fn send_verification(st: &SharedState, m: &Mailer, user: &User, lang: Lang) -> Result<(), ApiError> {
    let email = user.email.clone().ok_or_else(|| ApiError::bad_request("no_email", "the account has no e-mail address"))?;
    let token = mail::new_link(&st.store, user, MailPurpose::Verify, &email, VERIFY_TTL).await?;
    let msg = mail::verify_mail(lang, &user.username, &email, &m.link("/verify-email", &token));
    m.send(&email, &msg).await.map_err(|e| {
        tracing::warn!(user = %user.username, relay = %m.relay, error = %e, "verification mail not sent");
        mail_failed("the mail could not be sent", e)
    })
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct SetEmail {
    /// The new address; `""` removes it.
    email: String,
    /// The language of the confirmation mail.
    #[serde(default)]
    lang: Lang,
}

/// The account with its new address, and whether a confirmation link went out.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(super) struct EmailAnswer {
    user: UserView,
    verification_sent: bool,
}

/// Sets (or with `""` removes) the caller's e-mail address, unverified, and mails a
/// confirmation link when mail is configured.
#[utoipa::path(put, path = "/api/auth/email", operation_id = "set_email", tag = "mail", security(("bearer" = []), ("cookie" = [])),
    request_body = SetEmail,
    responses(
        (status = 200, description = "The account; `verificationSent` says whether the link went out", body = EmailAnswer),
        (status = 400, description = "`invalid_email`, `invalid_json`, `invalid_request`", body = ErrorBody),
        (status = 401, description = "`unauthorized`, `invalid_session`", body = ErrorBody),
        (status = 403, description = "`forbidden`: guests have no account", body = ErrorBody),
        (status = 409, description = "`email_taken`: another account verified this address", body = ErrorBody),
        (status = 413, description = "`payload_too_large`", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`", body = ErrorBody),
    ))]
async fn set_email(State(st): State<SharedState>, auth: AuthUser, Json(b): Json<SetEmail>) -> Result<axum::Json<EmailAnswer>, ApiError> {
    let email = match b.email.trim() {
        "" => None,
        raw => Some(email_address(raw)?),
    };
    let id = auth.user.id.clone();
    let e = email.clone();
    let user = st
        .store
        .write(move |txn| {
            let mut u = store::user_by_id_w(txn, &id)?.ok_or(StoreError::NotFound("user"))?;
            if u.email == e {
                return Ok(u);
            }
            // Someone else's verified address cannot be claimed, not even unverified.
            if let Some(addr) = &e {
                if store::email_owner_w(txn, addr)?.is_some_and(|owner| owner != u.id) {
                    return Err(StoreError::Conflict("email_taken".into()));
                }
            }
            store::set_email(txn, &mut u, e.as_deref(), false)?;
            store::put_user(txn, &u)?;
            Ok(u)
        })
        .await
        .map_err(store_error)?;
    let mut sent = false;
    if let (Some(m), Some(_), false) = (st.signin.mailer.as_ref(), &user.email, user.email_verified) {
        sent = send_verification(&st, m, &user, b.lang).await.is_ok();
    }
    Ok(axum::Json(EmailAnswer { user: user.view(), verification_sent: sent }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct LangOnly {
    /// The language of the mail.
    #[serde(default)]
    lang: Lang,
}

/// Sends the confirmation link for the caller's address again.
#[utoipa::path(post, path = "/api/auth/email/resend", operation_id = "resend_verification", tag = "mail", security(("bearer" = []), ("cookie" = [])),
    request_body = LangOnly,
    responses(
        (status = 202, description = "Sent"),
        (status = 400, description = "`no_email`, `already_verified`, `invalid_json`, `invalid_request`", body = ErrorBody),
        (status = 401, description = "`unauthorized`, `invalid_session`", body = ErrorBody),
        (status = 403, description = "`forbidden`: guests have no account", body = ErrorBody),
        (status = 404, description = "`mail_disabled`: no `smtp.host`", body = ErrorBody),
        (status = 413, description = "`payload_too_large`", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`", body = ErrorBody),
        (status = 502, description = "`mail_failed`: the relay's answer in the message", body = ErrorBody),
    ))]
async fn resend(State(st): State<SharedState>, auth: AuthUser, Json(b): Json<LangOnly>) -> Result<StatusCode, ApiError> {
    let m = mailer(&st)?;
    if auth.user.email.is_none() {
        return Err(ApiError::bad_request("no_email", "set an e-mail address first"));
    }
    if auth.user.email_verified {
        return Err(ApiError::bad_request("already_verified", "this address is verified already"));
    }
    send_verification(&st, m, &auth.user, b.lang).await?;
    Ok(StatusCode::ACCEPTED)
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct LinkToken {
    /// The `token` of the mailed link.
    token: String,
}

/// Verifies the address a confirmation link was sent to. The link works once.
#[utoipa::path(post, path = "/api/auth/email/verify", operation_id = "verify_email", tag = "mail", security(()),
    request_body = LinkToken,
    responses(
        (status = 200, description = "The account, its address verified", body = UserAnswer),
        (status = 400, description = "`invalid_link`, `invalid_json`, `invalid_request`", body = ErrorBody),
        (status = 409, description = "`email_taken`: another account verified this address meanwhile", body = ErrorBody),
        (status = 413, description = "`payload_too_large`", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`", body = ErrorBody),
    ))]
async fn verify(State(st): State<SharedState>, Json(b): Json<LinkToken>) -> Result<axum::Json<UserAnswer>, ApiError> {
    let t = mail::take_link(&st.store, &b.token, MailPurpose::Verify).await?.ok_or_else(invalid_link)?;
    let user = st
        .store
        .write(move |txn| {
            let Some(mut u) = store::user_by_id_w(txn, &t.user_id)? else { return Ok(None) };
            // The address changed since the link was sent: it proves nothing about the new one.
            if u.email.as_deref() != Some(t.email.as_str()) {
                return Ok(None);
            }
            store::set_email(txn, &mut u, Some(&t.email), true)?;
            store::put_user(txn, &u)?;
            Ok(Some(u))
        })
        .await
        .map_err(store_error)?
        .ok_or_else(invalid_link)?;
    tracing::info!(user = %user.username, "e-mail address verified");
    Ok(axum::Json(UserAnswer { user: user.view() }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct Forgot {
    email: String,
    /// The language of the mail.
    #[serde(default)]
    lang: Lang,
}

/// Sends a reset link when the address is an account's verified one and the account has a
/// password; answers the same either way and does not wait for the relay, so the answer
/// tells nothing about which addresses have accounts.
#[utoipa::path(post, path = "/api/auth/password/forgot", operation_id = "forgot_password", tag = "mail", security(()),
    request_body = Forgot,
    responses(
        (status = 202, description = "Accepted, whether or not an account has the address"),
        (status = 400, description = "`invalid_email`, `invalid_json`, `invalid_request`", body = ErrorBody),
        (status = 404, description = "`mail_disabled`: no `smtp.host`", body = ErrorBody),
        (status = 413, description = "`payload_too_large`", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`", body = ErrorBody),
        (status = 429, description = "`too_many_attempts` (with Retry-After)", body = ErrorBody),
    ))]
async fn forgot(State(st): State<SharedState>, ClientAddr(addr): ClientAddr, Json(b): Json<Forgot>) -> Result<StatusCode, ApiError> {
    mailer(&st)?;
    let Some(email) = normalize_email(&b.email) else {
        return Err(ApiError::bad_request("invalid_email", format!("{:?} is not an e-mail address", b.email.trim())));
    };
    let ip = addr.map(|a| a.ip());
    let limiter = &st.signin.mail_limiter;
    if let Some(wait) = limiter.check(&email, ip) {
        let mut e = ApiError::new(StatusCode::TOO_MANY_REQUESTS, "too_many_attempts", format!("too many reset requests; try again in {wait} s"));
        e.retry_after = Some(wait);
        return Err(e);
    }
    limiter.failed(&email, ip);
    let e = email.clone();
    let user = st
        .store
        .read(move |txn| match store::email_owner(txn, &e)? {
            Some(id) => store::user_by_id(txn, &id),
            None => Ok(None),
        })
        .await?
        .filter(|u| !u.disabled && !u.password_hash.is_empty() && u.email_verified);
    match user {
        Some(user) => {
            let st2 = st.clone();
            tokio::spawn(async move {
                let Some(m) = st2.signin.mailer.as_ref() else { return };
                let sent = async {
                    let token = mail::new_link(&st2.store, &user, MailPurpose::Reset, &email, RESET_TTL).await.map_err(|e| e.to_string())?;
                    let msg = mail::reset_mail(b.lang, &user.username, &m.link("/reset-password", &token));
                    m.send(&email, &msg).await.map_err(|e| e.to_string())
                };
                match sent.await {
                    Ok(()) => tracing::info!(user = %user.username, "password reset link sent"),
                    Err(e) => tracing::warn!(user = %user.username, relay = %m.relay, error = %e, "password reset mail not sent"),
                }
            });
        }
        None => tracing::info!(client = ?ip, "password reset asked for an address no account with a password has verified"),
    }
    Ok(StatusCode::ACCEPTED)
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct Reset {
    /// The `token` of the mailed link.
    token: String,
    /// At least 8 characters.
    new_password: String,
}

/// Sets a new password through a mailed reset link; every session of the account ends. The
/// link works once, and not after a password change.
#[utoipa::path(post, path = "/api/auth/password/reset", operation_id = "reset_password", tag = "mail", security(()),
    request_body = Reset,
    responses(
        (status = 200, description = "The account (sign in with the new password)", body = UserAnswer),
        (status = 400, description = "`invalid_link`, `invalid_password`, `invalid_json`, `invalid_request`", body = ErrorBody),
        (status = 413, description = "`payload_too_large`", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`", body = ErrorBody),
        (status = 503, description = "`busy`: too many password checks at once", body = ErrorBody),
    ))]
async fn reset(State(st): State<SharedState>, Json(b): Json<Reset>) -> Result<axum::Json<UserAnswer>, ApiError> {
    // A password that would be refused must not use the link up.
    validate_password(&b.new_password).map_err(|m| ApiError::bad_request("invalid_password", m))?;
    let t = mail::take_link(&st.store, &b.token, MailPurpose::Reset).await?.ok_or_else(invalid_link)?;
    let id = t.user_id.clone();
    let user = st.store.read(move |txn| store::user_by_id(txn, &id)).await?.ok_or_else(invalid_link)?;
    // A password change since the link was sent voids it.
    if user.session_epoch != t.epoch || user.disabled {
        return Err(invalid_link());
    }
    let user = accounts::set_password(&st.store, &user.username, &b.new_password).await?;
    tracing::info!(user = %user.username, "password reset through a mailed link");
    Ok(axum::Json(UserAnswer { user: user.view() }))
}
