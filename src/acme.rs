//! Automatic HTTPS (`server.acme`): bedrud obtains its certificate from an ACME CA (Let's
//! Encrypt by default), answering the challenge itself — TLS-ALPN-01 on its HTTPS port or
//! HTTP-01 on `server.acme.httpPort` — keeps account, certificate, key and status in
//! `<state>/acme/`, serves a new certificate at once without a restart, and renews when a third
//! of the lifetime is left. Failures are logged with the CA's reason and retried with backoff
//! (a SIGHUP retries at once); `bedrud doctor` reads the status file.
//!
//! The files are what LiveKit's TURN/TLS reuses (see `configgen`); the daemon restarts LiveKit
//! for a new certificate at a quiet moment.

use std::collections::HashMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path as UrlPath, State};
use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use http_body_util::BodyExt;
use instant_acme::{
    Account, AccountCredentials, AuthorizationStatus, BodyWrapper, BytesResponse, ChallengeType, HttpClient, Identifier,
    NewAccount, NewOrder, OrderStatus, RetryPolicy,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use serde::{Deserialize, Serialize};
use tokio::sync::{watch, Notify};
use tokio_util::sync::CancellationToken;

use crate::certs;
use crate::config::Config;
use crate::livekit::client::error_chain as chain;

/// The ALPN protocol of TLS-ALPN-01 (RFC 8737).
pub const ACME_TLS_ALPN: &[u8] = b"acme-tls/1";
/// First retry after a failed attempt; doubled up to [`RETRY_MAX`].
pub const RETRY_INITIAL: Duration = Duration::from_secs(60);
pub const RETRY_MAX: Duration = Duration::from_secs(3600);

/// The files in `<state>/acme/`.
#[derive(Debug, Clone)]
pub struct Files {
    pub dir: PathBuf,
    /// Certificate chain, leaf first (PEM).
    pub cert: PathBuf,
    /// Its private key (PEM, 0600).
    pub key: PathBuf,
    /// The ACME account (key and URL), per directory.
    pub account: PathBuf,
    /// [`Status`] as JSON, for `bedrud doctor` when the daemon does not run.
    pub status: PathBuf,
}

impl Files {
    pub fn of(config: &Config) -> Files {
        let dir = config.acme_dir();
        Files {
            cert: dir.join("cert.pem"),
            key: dir.join("key.pem"),
            account: dir.join("account.json"),
            status: dir.join("status.json"),
            dir,
        }
    }
}

/// What ACME has done and will do, as shown by the log, `STATUS=` and `bedrud doctor`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Status {
    pub directory_url: String,
    pub domains: Vec<String>,
    /// The certificate being served (unix seconds), if one was issued.
    pub not_before: Option<i64>,
    pub not_after: Option<i64>,
    pub serial: Option<String>,
    /// Unix seconds of the last attempt, its error (none: it succeeded), and the next one.
    pub last_attempt: Option<i64>,
    pub last_error: Option<String>,
    pub next_attempt: Option<i64>,
    /// Attempts that failed in a row.
    pub failures: u32,
}

impl Status {
    /// Reads the status file (`None` when there is none yet or it is unreadable).
    pub fn read(files: &Files) -> Option<Status> {
        serde_json::from_slice(&std::fs::read(&files.status).ok()?).ok()
    }

    fn write(&self, files: &Files) {
        if let Ok(json) = serde_json::to_vec_pretty(self) {
            if let Err(e) = write_atomic(&files.status, &json) {
                tracing::warn!("ACME: cannot write {}: {e}", files.status.display());
            }
        }
    }
}

/// Serves the current certificate, or — to an ACME validation connection that asks for
/// `acme-tls/1` — the challenge certificate for the name it asks for.
#[derive(Debug)]
pub struct Resolver {
    current: RwLock<Arc<CertifiedKey>>,
    challenges: RwLock<HashMap<String, Arc<CertifiedKey>>>,
}

impl ResolvesServerCert for Resolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let acme = hello.alpn().is_some_and(|mut protocols| protocols.any(|p| p == ACME_TLS_ALPN));
        if acme {
            let name = hello.server_name()?.to_ascii_lowercase();
            return self.challenges.read().unwrap_or_else(|e| e.into_inner()).get(&name).cloned();
        }
        Some(self.current.read().unwrap_or_else(|e| e.into_inner()).clone())
    }
}

impl Resolver {
    fn set(&self, key: Arc<CertifiedKey>) {
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = key;
    }
}

/// The rustls configuration of the HTTPS listener: certificates from `resolver`, and the
/// `acme-tls/1` protocol next to HTTP/1.1 (the listener closes such connections after the
/// handshake, which is all the validation needs).
pub fn server_config(resolver: Arc<Resolver>) -> Result<Arc<rustls::ServerConfig>, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_cert_resolver(resolver);
    cfg.alpn_protocols = vec![b"http/1.1".to_vec(), ACME_TLS_ALPN.to_vec()];
    Ok(Arc::new(cfg))
}

fn certified(chain: Vec<CertificateDer<'static>>, key: &PrivateKeyDer<'_>) -> Result<Arc<CertifiedKey>, String> {
    let signing = rustls::crypto::ring::sign::any_supported_type(key).map_err(|e| format!("unsupported private key: {e}"))?;
    Ok(Arc::new(CertifiedKey::new(chain, signing)))
}

/// A self-signed certificate for `names`, served until the first real one arrives; with
/// `acme_digest` it is the TLS-ALPN-01 challenge certificate (RFC 8737).
fn self_signed(names: Vec<String>, acme_digest: Option<&[u8]>) -> Result<Arc<CertifiedKey>, String> {
    let key = rcgen::KeyPair::generate().map_err(|e| e.to_string())?;
    let mut params = rcgen::CertificateParams::new(names).map_err(|e| e.to_string())?;
    if let Some(d) = acme_digest {
        params.custom_extensions = vec![rcgen::CustomExtension::new_acme_identifier(d)];
    }
    let cert = params.self_signed(&key).map_err(|e| e.to_string())?;
    let der = PrivateKeyDer::Pkcs8(key.serialize_der().into());
    certified(vec![cert.der().clone()], &der)
}

/// The certificate and key in the files, if they are there, belong together and cover
/// `domains`.
fn load_files(files: &Files, domains: &[String]) -> Option<(Arc<CertifiedKey>, certs::CertInfo)> {
    let chain = certs::read_chain(&files.cert).ok()?;
    let info = certs::info(&chain[0]).ok()?;
    if !domains.iter().all(|d| info.covers(d)) {
        return None;
    }
    let key = PrivateKeyDer::from_pem_file(&files.key).ok()?;
    Some((certified(chain, &key).ok()?, info))
}

/// The ACME side of one daemon: the resolver the HTTPS listener uses, pending HTTP-01 answers,
/// and the status.
pub struct Acme {
    pub resolver: Arc<Resolver>,
    http01: Mutex<HashMap<String, String>>,
    status: watch::Sender<Status>,
    wake: Notify,
    files: Files,
}

impl Acme {
    /// Loads a certificate issued before (when it still covers the configured names), else a
    /// self-signed stand-in until the first one is issued.
    pub fn new(config: &Config) -> Result<Arc<Acme>, String> {
        let files = Files::of(config);
        let domains = config.server.acme_domains();
        let directory = config.server.acme.as_ref().map(|a| a.directory_url.clone()).unwrap_or_default();
        std::fs::create_dir_all(&files.dir).map_err(|e| format!("cannot create {}: {e}", files.dir.display()))?;
        let mut status = Status::read(&files).unwrap_or_default();
        let current = match load_files(&files, &domains) {
            Some((key, info)) => {
                status.not_before = Some(info.not_before);
                status.not_after = Some(info.not_after);
                status.serial = Some(info.serial);
                key
            }
            None => {
                status.not_before = None;
                status.not_after = None;
                status.serial = None;
                self_signed(domains.clone(), None)?
            }
        };
        if status.directory_url != directory || status.domains != domains {
            // Another CA or other names: earlier failures say nothing about this one.
            status.last_error = None;
            status.failures = 0;
            status.next_attempt = None;
        }
        status.directory_url = directory;
        status.domains = domains;
        let resolver = Arc::new(Resolver { current: RwLock::new(current), challenges: RwLock::new(HashMap::new()) });
        Ok(Arc::new(Acme { resolver, http01: Mutex::new(HashMap::new()), status: watch::channel(status).0, wake: Notify::new(), files }))
    }

    pub fn status(&self) -> Status {
        self.status.borrow().clone()
    }

    /// Changes whenever the status does (a new certificate changes `serial`).
    pub fn subscribe(&self) -> watch::Receiver<Status> {
        self.status.subscribe()
    }

    pub fn files(&self) -> &Files {
        &self.files
    }

    /// Retry a failed attempt now instead of after the backoff (SIGHUP).
    pub fn retry_now(&self) {
        self.wake.notify_one();
    }

    /// The answer to an HTTP-01 challenge token.
    pub fn http01_answer(&self, token: &str) -> Option<String> {
        self.http01.lock().unwrap_or_else(|e| e.into_inner()).get(token).cloned()
    }

    /// Runs until `shutdown`: obtains the first certificate, then renews it.
    pub fn spawn(self: Arc<Self>, config: Arc<Config>, shutdown: CancellationToken) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            loop {
                let st = self.status();
                let now = certs::now();
                let due = match (st.not_after, &st.last_error, st.next_attempt) {
                    (_, Some(_), Some(next)) => next,
                    (Some(_), _, _) => renew_at(&st),
                    (None, _, _) => now,
                };
                let wait = Duration::from_secs(u64::try_from(due - now).unwrap_or(0));
                if !wait.is_zero() {
                    tracing::debug!("ACME: next attempt in {}", certs::span(due - now));
                    tokio::select! {
                        _ = shutdown.cancelled() => return,
                        _ = tokio::time::sleep(wait) => {}
                        _ = self.wake.notified() => {
                            // A reload retries a failure at once; a good certificate waits for its time.
                            if self.status().last_error.is_none() {
                                continue;
                            }
                        }
                    }
                }
                let attempt = tokio::select! {
                    _ = shutdown.cancelled() => return,
                    r = tokio::time::timeout(Duration::from_secs(300), self.obtain(&config)) => {
                        r.unwrap_or_else(|_| Err("no certificate within 5 minutes".into()))
                    }
                };
                self.finish(attempt);
            }
        })
    }

    /// Records an attempt's outcome, installs a new certificate.
    fn finish(&self, attempt: Result<(String, String), String>) {
        let now = certs::now();
        let mut st = self.status();
        st.last_attempt = Some(now);
        match attempt.and_then(|(chain, key)| self.install(&chain, &key)) {
            Ok(info) => {
                tracing::info!(
                    "ACME: certificate for {} issued by {}, valid until {} (serial {}); renewal due {}",
                    st.domains.join(", "),
                    info.issuer,
                    certs::date(info.not_after),
                    info.serial,
                    certs::date(info.renew_at())
                );
                st.not_before = Some(info.not_before);
                st.not_after = Some(info.not_after);
                st.serial = Some(info.serial);
                st.last_error = None;
                st.next_attempt = None;
                st.failures = 0;
            }
            Err(e) => {
                st.failures += 1;
                let delay = retry_delay(st.failures);
                st.last_error = Some(e.clone());
                st.next_attempt = Some(now + delay.as_secs() as i64);
                let serving = match st.not_after {
                    Some(t) if t > now => format!("the current certificate stays valid until {}", certs::date(t)),
                    Some(_) => "the current certificate has EXPIRED".into(),
                    None => "no certificate yet: HTTPS serves a self-signed stand-in".into(),
                };
                tracing::warn!(
                    "ACME: cannot obtain a certificate for {} from {}: {e}; {serving}; attempt {} failed, next in {} (or on SIGHUP)",
                    st.domains.join(", "),
                    st.directory_url,
                    st.failures,
                    certs::span(delay.as_secs() as i64)
                );
            }
        }
        st.write(&self.files);
        self.status.send_replace(st);
    }

    /// Writes key and chain (key first, each atomically) and serves them.
    fn install(&self, chain_pem: &str, key_pem: &str) -> Result<certs::CertInfo, String> {
        let chain = certs::parse_chain(chain_pem)?;
        let info = certs::info(&chain[0])?;
        let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).map_err(|e| format!("bad private key: {e}"))?;
        let ck = certified(chain, &key)?;
        write_atomic(&self.files.key, key_pem.as_bytes()).map_err(|e| format!("cannot write {}: {e}", self.files.key.display()))?;
        write_atomic(&self.files.cert, chain_pem.as_bytes()).map_err(|e| format!("cannot write {}: {e}", self.files.cert.display()))?;
        self.resolver.set(ck);
        Ok(info)
    }

    /// One order: account, authorizations with our challenge answered, finalization.
    async fn obtain(&self, config: &Config) -> Result<(String, String), String> {
        let acme = config.server.acme.clone().ok_or("server.acme is not set")?;
        let domains = config.server.acme_domains();
        let account = self.account(config).await?;
        let identifiers: Vec<Identifier> = domains.iter().map(|d| Identifier::Dns(d.clone())).collect();
        let mut order = account.new_order(&NewOrder::new(&identifiers)).await.map_err(|e| format!("new order: {}", chain(&e)))?;
        let kind = if acme.challenge == "http-01" { ChallengeType::Http01 } else { ChallengeType::TlsAlpn01 };
        let mut tokens = Vec::new();
        let mut names = Vec::new();
        let result = async {
            let mut authzs = order.authorizations();
            while let Some(a) = authzs.next().await {
                let mut a = a.map_err(|e| format!("authorization: {}", chain(&e)))?;
                match a.status {
                    AuthorizationStatus::Pending => {}
                    AuthorizationStatus::Valid => continue,
                    s => return Err(format!("authorization for {} is {s:?}", a.identifier())),
                }
                let name = a.identifier().to_string();
                let mut ch = a
                    .challenge(kind.clone())
                    .ok_or_else(|| format!("the CA offers no {} challenge for {name}", acme.challenge))?;
                let ka = ch.key_authorization();
                if kind == ChallengeType::Http01 {
                    self.http01.lock().unwrap_or_else(|e| e.into_inner()).insert(ch.token.clone(), ka.as_str().to_string());
                    tokens.push(ch.token.clone());
                } else {
                    let cert = self_signed(vec![name.clone()], Some(ka.digest().as_ref()))?;
                    self.resolver.challenges.write().unwrap_or_else(|e| e.into_inner()).insert(name.to_ascii_lowercase(), cert);
                    names.push(name.to_ascii_lowercase());
                }
                ch.set_ready().await.map_err(|e| format!("{name}: {}", chain(&e)))?;
            }
            drop(authzs);
            let retry = RetryPolicy::new().initial_delay(Duration::from_millis(500)).timeout(Duration::from_secs(120));
            let status = order.poll_ready(&retry).await;
            if !matches!(status, Ok(OrderStatus::Ready)) {
                let why = self.why_invalid(&mut order).await;
                return Err(match (status, why) {
                    (_, Some(why)) => format!("validation failed: {why}"),
                    (Err(e), None) => format!("validation failed: {}", chain(&e)),
                    (Ok(s), None) => format!("the order is {s:?} instead of ready"),
                });
            }
            let key_pem = order.finalize().await.map_err(|e| format!("finalize: {}", chain(&e)))?;
            let chain_pem = order.poll_certificate(&retry).await.map_err(|e| format!("certificate: {}", chain(&e)))?;
            Ok((chain_pem, key_pem))
        }
        .await;
        let mut h = self.http01.lock().unwrap_or_else(|e| e.into_inner());
        for t in tokens {
            h.remove(&t);
        }
        let mut c = self.resolver.challenges.write().unwrap_or_else(|e| e.into_inner());
        for n in names {
            c.remove(&n);
        }
        result
    }

    /// The CA's reasons from the authorizations of a failed order.
    async fn why_invalid(&self, order: &mut instant_acme::Order) -> Option<String> {
        let mut reasons = Vec::new();
        let mut authzs = order.authorizations();
        while let Some(Ok(mut a)) = authzs.next().await {
            let name = a.identifier().to_string();
            if let Ok(state) = a.refresh().await {
                for c in &state.challenges {
                    if let Some(p) = &c.error {
                        reasons.push(format!("{name}: {}", p.detail.clone().unwrap_or_else(|| p.to_string())));
                    }
                }
            }
        }
        (!reasons.is_empty()).then(|| reasons.join("; "))
    }

    /// The stored account for this directory, or a new one.
    async fn account(&self, config: &Config) -> Result<Account, String> {
        let acme = config.server.acme.as_ref().ok_or("server.acme is not set")?;
        #[derive(Serialize, Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Stored {
            directory_url: String,
            credentials: AccountCredentials,
        }
        let http = || -> Result<Box<dyn HttpClient>, String> { Ok(Box::new(Http(client(acme.ca_roots.as_deref())?))) };
        if let Ok(bytes) = std::fs::read(&self.files.account) {
            if let Ok(s) = serde_json::from_slice::<Stored>(&bytes) {
                if s.directory_url == acme.directory_url {
                    return Account::builder_with_http(http()?)
                        .from_credentials(s.credentials)
                        .await
                        .map_err(|e| format!("cannot use the ACME account in {}: {}", self.files.account.display(), chain(&e)));
                }
            }
        }
        let contact: Vec<String> = acme.email.iter().map(|e| format!("mailto:{e}")).collect();
        let contact: Vec<&str> = contact.iter().map(String::as_str).collect();
        let (account, credentials) = Account::builder_with_http(http()?)
            .create(
                &NewAccount { contact: &contact, terms_of_service_agreed: true, only_return_existing: false },
                acme.directory_url.clone(),
                None,
            )
            .await
            .map_err(|e| format!("cannot create an ACME account at {}: {}", acme.directory_url, chain(&e)))?;
        let json = serde_json::to_vec(&Stored { directory_url: acme.directory_url.clone(), credentials })
            .map_err(|e| e.to_string())?;
        write_atomic(&self.files.account, &json).map_err(|e| format!("cannot write {}: {e}", self.files.account.display()))?;
        tracing::info!("ACME: account created at {} ({})", acme.directory_url, account.id());
        Ok(account)
    }
}

/// When the status says a renewal is due.
fn renew_at(st: &Status) -> i64 {
    match (st.not_before, st.not_after) {
        (Some(b), Some(a)) => a - (a - b).max(0) / 3,
        _ => certs::now(),
    }
}

/// Wait before attempt `failures + 1`: [`RETRY_INITIAL`] doubling to [`RETRY_MAX`].
pub fn retry_delay(failures: u32) -> Duration {
    let doublings = failures.saturating_sub(1).min(20);
    RETRY_INITIAL.saturating_mul(1 << doublings).min(RETRY_MAX)
}

/// Writes `bytes` to a temporary file beside `path` (mode 0600) and renames it into place.
fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)
}

/// The HTTPS client towards the CA: the system's roots plus `server.acme.caRoots`.
fn client(extra_roots: Option<&Path>) -> Result<reqwest::Client, String> {
    let mut roots = (*crate::livekit::http::native_roots()).clone();
    if let Some(p) = extra_roots {
        for c in certs::read_chain(p).map_err(|e| format!("server.acme.caRoots: {e}"))? {
            roots.add(c).map_err(|e| format!("server.acme.caRoots {}: {e}", p.display()))?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        // RFC 8555 6.1: clients send a User-Agent; CAs may refuse requests without one.
        .user_agent(concat!("bedrud/", env!("CARGO_PKG_VERSION")))
        .timeout(Duration::from_secs(30))
        .connect_timeout(Duration::from_secs(10))
        .no_proxy()
        .build()
        .map_err(|e| e.to_string())
}

/// instant-acme's requests, sent with reqwest.
struct Http(reqwest::Client);

impl HttpClient for Http {
    fn request(
        &self,
        req: axum::http::Request<BodyWrapper<Bytes>>,
    ) -> Pin<Box<dyn Future<Output = Result<BytesResponse, instant_acme::Error>> + Send>> {
        let client = self.0.clone();
        Box::pin(async move {
            let other = |e: reqwest::Error| instant_acme::Error::Other(Box::new(e));
            let (parts, body) = req.into_parts();
            let body = body.collect().await.map(|c| c.to_bytes()).unwrap_or_default();
            let resp = client
                .request(parts.method, parts.uri.to_string())
                .headers(parts.headers)
                .body(body)
                .send()
                .await
                .map_err(other)?;
            let (status, headers) = (resp.status(), resp.headers().clone());
            let bytes = resp.bytes().await.map_err(other)?;
            let mut out = axum::http::Response::new(http_body_util::Full::new(bytes));
            *out.status_mut() = status;
            *out.headers_mut() = headers;
            Ok(BytesResponse::from(out))
        })
    }
}

/// The plain-HTTP listener for `http-01`: challenge answers, and a redirect to HTTPS for
/// everything else.
pub fn http01_router(acme: Arc<Acme>, https_port: u16) -> Router {
    async fn answer(State((acme, _)): State<(Arc<Acme>, u16)>, UrlPath(token): UrlPath<String>) -> Response {
        match acme.http01_answer(&token) {
            Some(a) => ([(header::CONTENT_TYPE, "application/octet-stream")], a).into_response(),
            None => StatusCode::NOT_FOUND.into_response(),
        }
    }
    async fn redirect(State((_, port)): State<(Arc<Acme>, u16)>, headers: HeaderMap, uri: Uri) -> Response {
        let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("");
        // `name:port` or `[v6]:port` lose the port; `name` and `[v6]` stay.
        let name = match host.rsplit_once(':') {
            Some((n, p)) if !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()) && (!n.contains(':') || (n.starts_with('[') && n.ends_with(']'))) => n,
            _ => host,
        };
        if name.is_empty() || name.contains(['/', '@', ' ']) {
            return (StatusCode::BAD_REQUEST, "this port only redirects to HTTPS").into_response();
        }
        let port = if port == 443 { String::new() } else { format!(":{port}") };
        let path = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
        (StatusCode::PERMANENT_REDIRECT, [(header::LOCATION, format!("https://{name}{port}{path}"))]).into_response()
    }
    Router::new()
        .route("/.well-known/acme-challenge/{token}", get(answer))
        .fallback(redirect)
        .with_state((acme, https_port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_an_hour() {
        let mins: Vec<u64> = (1..=9).map(|f| retry_delay(f).as_secs() / 60).collect();
        assert_eq!(mins, vec![1, 2, 4, 8, 16, 32, 60, 60, 60]);
        assert_eq!(retry_delay(u32::MAX), RETRY_MAX);
    }

    #[test]
    fn stand_in_and_challenge_certificates() {
        let c = self_signed(vec!["meet.example.org".into()], Some(&[7u8; 32])).unwrap();
        let info = certs::info(&c.cert[0]).unwrap();
        assert!(info.covers("meet.example.org"));
        let (_, parsed) = x509_parser::parse_x509_certificate(c.cert[0].as_ref()).unwrap();
        // id-pe-acmeIdentifier, critical, holding the digest.
        let ext = parsed.extensions().iter().find(|e| e.oid.to_id_string() == "1.3.6.1.5.5.7.1.31").expect("acmeIdentifier");
        assert!(ext.critical);
        assert!(ext.value.ends_with(&[7u8; 32]));
    }
}
