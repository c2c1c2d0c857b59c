//! Outgoing mail over SMTP (lettre on rustls): password-reset and e-mail verification links,
//! and invitations to a room. Messages are plain text in the reader's language (English or
//! Simplified Chinese, as the page that asked for them). Links carry a one-time token whose
//! SHA-256 is stored (see [`crate::store::MailToken`]).

use std::time::Duration;

use lettre::message::header::ContentType;
use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde::Deserialize;

use crate::auth::{new_token, token_key};
use crate::config::Config;
use crate::store::{self, now_ms, MailPurpose, MailToken, Store, StoreError, User};

/// How long a password-reset link works.
pub const RESET_TTL: Duration = Duration::from_secs(3600);
/// How long an e-mail verification link works.
pub const VERIFY_TTL: Duration = Duration::from_secs(48 * 3600);

/// The language of a message.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Lang {
    #[default]
    En,
    Zh,
}

/// A message before it is addressed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mail {
    pub subject: String,
    pub body: String,
}

/// Why a message was not sent.
#[derive(Debug, thiserror::Error)]
pub enum MailError {
    #[error("{0:?} is not a valid e-mail address")]
    BadAddress(String),
    #[error("cannot build the message: {0}")]
    Build(String),
    #[error("the SMTP server did not take the message: {0}")]
    Smtp(String),
}

/// The configured SMTP relay and the sender.
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    public_url: String,
    /// `host:port`, for messages about failures.
    pub relay: String,
}

impl Mailer {
    /// The mailer for `smtp.*`, or `None` when mail is off (`smtp.host` unset).
    pub fn from_config(cfg: &Config) -> Result<Option<Mailer>, String> {
        let m = &cfg.smtp;
        let Some(host) = m.host.clone() else { return Ok(None) };
        let from: Mailbox = m.from.as_deref().unwrap_or("").parse().map_err(|e| format!("smtp.from: {e}"))?;
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&host).port(m.port()).timeout(Some(m.timeout));
        if m.security != "none" {
            let mut params = TlsParameters::builder(host.clone());
            if let Some(ca) = &m.ca_file {
                let pem = std::fs::read(ca).map_err(|e| format!("smtp.caFile {}: {e}", ca.display()))?;
                let cert = Certificate::from_pem(&pem).map_err(|e| format!("smtp.caFile {}: {e}", ca.display()))?;
                params = params.add_root_certificate(cert);
            }
            let params = params.build_rustls().map_err(|e| format!("smtp: TLS set-up failed: {e}"))?;
            builder = builder.tls(if m.security == "tls" { Tls::Wrapper(params) } else { Tls::Required(params) });
        }
        if let (Some(user), Some(pass)) = (&m.username, &m.password) {
            builder = builder.credentials(Credentials::new(user.clone(), pass.clone()));
        }
        let public_url = cfg.public_url();
        if let Some(h) = url::Url::parse(&public_url).ok().and_then(|u| u.host_str().map(str::to_string)) {
            builder = builder.hello_name(ClientId::Domain(h));
        }
        Ok(Some(Mailer { transport: builder.build(), from, public_url, relay: format!("{host}:{}", m.port()) }))
    }

    /// The absolute URL of one of the client's pages with `token` as its query.
    pub fn link(&self, page: &str, token: &str) -> String {
        format!("{}{page}?token={token}", self.public_url)
    }

    /// Sends an invite link (`path` is the client's `/r/<room>?invite=<secret>`) to `to`:
    /// for the invite endpoint, which has the link's secret only while it creates it.
    pub async fn send_invite(&self, to: &str, lang: Lang, inviter: &str, room: &str, path: &str, expires_at_ms: Option<u64>) -> Result<(), MailError> {
        let expires = expires_at_ms.and_then(|ms| {
            let t = time::OffsetDateTime::from_unix_timestamp((ms / 1000) as i64).ok()?;
            t.format(&time::format_description::well_known::Rfc2822).ok()
        });
        let link = format!("{}{path}", self.public_url);
        self.send(to, &invite_mail(lang, inviter, room, &link, expires.as_deref())).await
    }

    /// Sends `mail` to `to` and waits for the relay's answer.
    pub async fn send(&self, to: &str, mail: &Mail) -> Result<(), MailError> {
        let to: Mailbox = to.parse().map_err(|_| MailError::BadAddress(to.to_string()))?;
        let msg = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(mail.subject.clone())
            .header(ContentType::TEXT_PLAIN)
            .body(mail.body.clone())
            .map_err(|e| MailError::Build(e.to_string()))?;
        self.transport.send(msg).await.map(|_| ()).map_err(|e| MailError::Smtp(e.to_string()))
    }
}

/// Normalises an address for storing and matching: trimmed, lower case, and plausibly an
/// address (`local@domain`, no spaces, at most 254 characters).
pub fn normalize_email(raw: &str) -> Option<String> {
    let e = raw.trim().to_lowercase();
    let (local, domain) = e.split_once('@')?;
    let ok = !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && e.len() <= 254
        && !e.chars().any(|c| c.is_whitespace() || c.is_control() || "<>,;\"()[]\\".contains(c))
        && !domain.contains('@');
    (ok && e.parse::<Mailbox>().is_ok()).then_some(e)
}

/// Stores a new one-time link for `user` and returns its token.
pub async fn new_link(store: &Store, user: &User, purpose: MailPurpose, email: &str, ttl: Duration) -> Result<String, StoreError> {
    let (token, key) = new_token();
    let t = MailToken { purpose, user_id: user.id.clone(), email: email.to_string(), epoch: user.session_epoch, expires_at: now_ms() + ttl.as_millis() as u64 };
    store.write(move |txn| store::mail_token_put(txn, &key, &t)).await?;
    Ok(token)
}

/// Takes the link of `token` out of the store (it works once) if it is for `purpose` and has
/// not expired. A link for another purpose stays where it is.
pub async fn take_link(store: &Store, token: &str, purpose: MailPurpose) -> Result<Option<MailToken>, StoreError> {
    let key = token_key(token);
    store
        .write(move |txn| {
            let Some(t) = store::mail_token_take(txn, &key)? else { return Ok(None) };
            if t.purpose != purpose {
                store::mail_token_put(txn, &key, &t)?;
                return Ok(None);
            }
            Ok((t.expires_at > now_ms()).then_some(t))
        })
        .await
}

fn hours(d: Duration) -> u64 {
    d.as_secs().div_ceil(3600)
}

/// The message with an e-mail verification link.
pub fn verify_mail(lang: Lang, username: &str, email: &str, link: &str) -> Mail {
    let h = hours(VERIFY_TTL);
    match lang {
        Lang::En => Mail {
            subject: "Confirm your e-mail address for bedrud".into(),
            body: format!(
                "Hello {username},\n\nPlease confirm that {email} is your address by opening this link:\n\n{link}\n\n\
                 The link works once and expires in {h} hours. If you did not ask for this, you can ignore this message.\n"
            ),
        },
        Lang::Zh => Mail {
            subject: "确认你在 bedrud 的电子邮件地址".into(),
            body: format!(
                "{username}，你好：\n\n请打开下面的链接，确认 {email} 是你的邮件地址：\n\n{link}\n\n\
                 该链接只能使用一次，{h} 小时后失效。如果这不是你发起的，请忽略此邮件。\n"
            ),
        },
    }
}

/// The message with a password-reset link.
pub fn reset_mail(lang: Lang, username: &str, link: &str) -> Mail {
    let h = hours(RESET_TTL);
    match lang {
        Lang::En => Mail {
            subject: "Reset your bedrud password".into(),
            body: format!(
                "Hello {username},\n\nSomeone asked to reset the password of your bedrud account. Choose a new password here:\n\n{link}\n\n\
                 The link works once and expires in {h} hour(s). If you did not ask for this, ignore this message: your password stays as it is.\n"
            ),
        },
        Lang::Zh => Mail {
            subject: "重置你的 bedrud 密码".into(),
            body: format!(
                "{username}，你好：\n\n有人请求重置你的 bedrud 账号密码。请在这里设置新密码：\n\n{link}\n\n\
                 该链接只能使用一次，{h} 小时后失效。如果这不是你发起的，请忽略此邮件，你的密码不会改变。\n"
            ),
        },
    }
}

/// The message that carries an invite link to a room (`expires` already formatted for the
/// reader, if the link expires).
pub fn invite_mail(lang: Lang, inviter: &str, room: &str, link: &str, expires: Option<&str>) -> Mail {
    match lang {
        Lang::En => Mail {
            subject: format!("{inviter} invites you to the meeting {room}"),
            body: format!(
                "{inviter} invites you to the video meeting \"{room}\" on bedrud.\n\nJoin from your browser:\n\n{link}\n\n{}",
                expires.map(|e| format!("The link works until {e}.\n")).unwrap_or_default()
            ),
        },
        Lang::Zh => Mail {
            subject: format!("{inviter} 邀请你参加会议 {room}"),
            body: format!(
                "{inviter} 邀请你参加 bedrud 上的视频会议“{room}”。\n\n在浏览器中打开即可加入：\n\n{link}\n\n{}",
                expires.map(|e| format!("该链接在 {e} 之前有效。\n")).unwrap_or_default()
            ),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_normalised_or_refused() {
        assert_eq!(normalize_email("  Alice@Example.ORG "), Some("alice@example.org".into()));
        for bad in ["", "alice", "alice@", "@example.org", "a b@example.org", "alice@example", "a@b@example.org", "x<y>@example.org", "a@.org"] {
            assert_eq!(normalize_email(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn messages_carry_the_link_in_both_languages() {
        for lang in [Lang::En, Lang::Zh] {
            for m in [
                verify_mail(lang, "alice", "alice@example.org", "https://m.example/verify-email?token=T"),
                reset_mail(lang, "alice", "https://m.example/verify-email?token=T"),
                invite_mail(lang, "alice", "team-sync", "https://m.example/verify-email?token=T", Some("tomorrow")),
            ] {
                assert!(m.body.contains("https://m.example/verify-email?token=T"), "{m:?}");
                assert!(!m.subject.is_empty() && !m.subject.contains('\n'));
            }
        }
    }
}
