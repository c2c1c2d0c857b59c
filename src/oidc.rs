//! OpenID Connect single sign-on: the authorization code flow with PKCE (S256), `state` and
//! `nonce`, for each provider in `auth.oidc[]`.
//!
//! Discovery and the provider's keys (JWKS) are read from the issuer at start-up, and again
//! when a sign-in finds them missing (an issuer that was down) or meets a key id it does not
//! know (a key rotation). ID tokens are checked here: signature (RS*, PS*, ES256/384, EdDSA
//! through `ring`), issuer, audience and authorized party, expiry, and the nonce of this
//! browser's flow. The flow itself (state, nonce, PKCE verifier, where to go afterwards) stays
//! in the daemon's memory under a random id that only this browser holds, in a short-lived
//! `HttpOnly` cookie; none of it reaches scripts.

use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine;
use ring::signature::{self, RsaPublicKeyComponents, UnparsedPublicKey};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use url::Url;

use crate::auth::{random_secret, Pending, PendingFull};
use crate::config::{secure_or_loopback, Config, OidcProvider};
use crate::mail::normalize_email;
use crate::store::{self, now_ms, Identity, Role, Store, StoreError, User};

/// How long a browser may take at the provider.
pub const FLOW_TTL: Duration = Duration::from_secs(600);
/// Sign-ins in flight at once, all providers together.
const MAX_FLOWS: usize = 10_000;
/// Clock difference tolerated on `exp` and `iat`.
const LEEWAY_SECS: u64 = 60;
/// Discovery and keys are fetched again at most this often.
const REFETCH_EVERY: Duration = Duration::from_secs(10);
/// Largest discovery, keys, token or userinfo document read.
const MAX_DOCUMENT: usize = 1024 * 1024;

/// Why a single sign-on did not go through. The code is what the sign-in page is told.
#[derive(Debug, Clone, thiserror::Error)]
pub enum OidcError {
    #[error("no provider named {0:?}")]
    UnknownProvider(String),
    #[error("the provider cannot be reached or answered wrongly: {0}")]
    Unavailable(String),
    #[error("this sign-in was not started in this browser or has expired (state)")]
    InvalidState,
    #[error("the provider refused the sign-in: {0}")]
    Refused(String),
    #[error("exchanging the code failed: {0}")]
    TokenExchange(String),
    #[error("the ID token is not for this client (audience {0})")]
    WrongAudience(String),
    #[error("the ID token is not valid: {0}")]
    InvalidToken(String),
    #[error("not allowed to sign in here: {0}")]
    NotAllowed(String),
    #[error("this account is disabled")]
    Disabled,
    #[error("too many sign-ins are in progress; try again in a minute")]
    Busy,
    #[error("{0}")]
    Store(String),
}

impl OidcError {
    /// The stable code the sign-in page receives (`/signin?sso_error=<code>`).
    pub fn code(&self) -> &'static str {
        match self {
            Self::UnknownProvider(_) => "provider_not_found",
            Self::Unavailable(_) => "provider_unavailable",
            Self::InvalidState => "invalid_state",
            Self::Refused(_) => "provider_refused",
            Self::TokenExchange(_) => "token_exchange_failed",
            Self::WrongAudience(_) => "wrong_audience",
            Self::InvalidToken(_) => "invalid_id_token",
            Self::NotAllowed(_) => "not_allowed",
            Self::Disabled => "user_disabled",
            Self::Busy => "busy",
            Self::Store(_) => "store_unavailable",
        }
    }
}

impl From<PendingFull> for OidcError {
    fn from(_: PendingFull) -> Self {
        Self::Busy
    }
}

/// What the provider's discovery document says, checked.
#[derive(Debug, Clone)]
struct Meta {
    issuer: String,
    authorization_endpoint: Url,
    token_endpoint: Url,
    userinfo_endpoint: Option<Url>,
    jwks_uri: Url,
    /// `client_secret_basic` is offered (else the secret goes in the form).
    basic_auth: bool,
}

/// One provider of `auth.oidc[]` with what was learnt from its issuer.
pub struct Provider {
    pub cfg: OidcProvider,
    meta: RwLock<Option<Arc<Meta>>>,
    keys: RwLock<Arc<Vec<Jwk>>>,
    last_fetch: Mutex<Option<Instant>>,
}

/// A sign-in in flight: kept by the daemon under the id in the browser's flow cookie.
#[derive(Debug, Clone)]
pub struct Flow {
    pub provider: String,
    state: String,
    nonce: String,
    verifier: String,
    /// The client's path to open afterwards.
    pub next: String,
}

/// The provider's word on who signed in.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Person {
    pub subject: String,
    /// Lower case.
    pub email: Option<String>,
    pub email_verified: bool,
    pub groups: Vec<String>,
    /// Candidate user names, best first (preferred_username, the address's local part, name).
    pub names: Vec<String>,
}

/// Every configured provider, the HTTP client towards them, and the flows in progress.
pub struct Oidc {
    providers: Vec<Arc<Provider>>,
    http: reqwest::Client,
    flows: Pending<Flow>,
    public_url: String,
}

impl Oidc {
    pub fn new(cfg: &Config) -> Oidc {
        let providers = cfg
            .auth
            .oidc
            .iter()
            .map(|p| Arc::new(Provider { cfg: p.clone(), meta: RwLock::new(None), keys: RwLock::new(Arc::new(Vec::new())), last_fetch: Mutex::new(None) }))
            .collect();
        Oidc {
            providers,
            http: crate::livekit::http::client(false, Duration::from_secs(10)),
            flows: Pending::new(FLOW_TTL, MAX_FLOWS),
            public_url: cfg.public_url(),
        }
    }

    pub fn providers(&self) -> &[Arc<Provider>] {
        &self.providers
    }

    pub fn provider(&self, name: &str) -> Result<Arc<Provider>, OidcError> {
        self.providers.iter().find(|p| p.cfg.name == name).cloned().ok_or_else(|| OidcError::UnknownProvider(name.to_string()))
    }

    /// The redirect URI registered at the provider for `name`.
    pub fn redirect_uri(&self, name: &str) -> String {
        format!("{}/api/auth/oidc/{name}/callback", self.public_url)
    }

    /// Reads every provider's discovery document and keys, logging the outcome of each: a
    /// provider that cannot be reached is said so clearly and the others are not held up.
    pub async fn discover_all(&self) {
        let all = self.providers.iter().map(|p| async move {
            match self.meta(p).await {
                Ok(m) => {
                    let keys = p.keys.read().unwrap_or_else(|e| e.into_inner()).len();
                    tracing::info!(provider = %p.cfg.name, issuer = %m.issuer, keys, redirect_uri = %self.redirect_uri(&p.cfg.name), "OpenID provider ready");
                }
                Err(e) => tracing::error!(
                    provider = %p.cfg.name,
                    issuer = %p.cfg.issuer,
                    "auth.oidc {:?}: {e}; sign-in with it fails until the issuer answers (bedrud retries at each attempt); other sign-ins work",
                    p.cfg.name
                ),
            }
        });
        futures_util::future::join_all(all).await;
    }

    /// Starts a sign-in with `provider`: the flow's id (for the browser's cookie) and the URL
    /// to send the browser to.
    pub async fn begin(&self, provider: &str, next: String) -> Result<(String, String), OidcError> {
        let p = self.provider(provider)?;
        let meta = self.meta(&p).await?;
        let verifier = random_secret(32);
        let flow = Flow { provider: p.cfg.name.clone(), state: random_secret(24), nonce: random_secret(24), verifier: verifier.clone(), next };
        let mut url = meta.authorization_endpoint.clone();
        url.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", &p.cfg.client_id)
            .append_pair("redirect_uri", &self.redirect_uri(&p.cfg.name))
            .append_pair("scope", &p.cfg.scopes.join(" "))
            .append_pair("state", &flow.state)
            .append_pair("nonce", &flow.nonce)
            .append_pair("code_challenge", &pkce_challenge(&verifier))
            .append_pair("code_challenge_method", "S256");
        let id = self.flows.insert(flow)?;
        Ok((id, url.into()))
    }

    /// Takes the flow kept under the browser's cookie, if it is this provider's.
    pub fn take_flow(&self, id: Option<&str>, provider: &str) -> Result<Flow, OidcError> {
        let flow = id.and_then(|id| self.flows.take(id)).ok_or(OidcError::InvalidState)?;
        if flow.provider != provider {
            return Err(OidcError::InvalidState);
        }
        Ok(flow)
    }

    /// Finishes a sign-in at the callback: checks `state` (and `iss`, RFC 9207, when the
    /// provider sends it), redeems the code with the PKCE verifier, verifies the ID token,
    /// reads userinfo, and says who signed in at which issuer.
    pub async fn complete(&self, p: &Provider, flow: &Flow, state: &str, code: &str, iss: Option<&str>) -> Result<(String, Person), OidcError> {
        if !bool::from(state.as_bytes().ct_eq(flow.state.as_bytes())) {
            return Err(OidcError::InvalidState);
        }
        let meta = self.meta(p).await?;
        if iss.is_some_and(|i| i != meta.issuer) {
            return Err(OidcError::InvalidToken(format!("the answer comes from the issuer {:?}, not {:?}", iss.unwrap_or(""), meta.issuer)));
        }
        let tokens = self.redeem(p, &meta, code, &flow.verifier).await?;
        let id_token = tokens.get("id_token").and_then(Value::as_str).ok_or_else(|| OidcError::TokenExchange("the answer has no id_token (is \"openid\" among the scopes?)".into()))?;
        let claims = match self.check(p, &meta, id_token, &flow.nonce) {
            Err(IdTokenError::UnknownKey) if self.refetch_allowed(p) => {
                self.fetch_keys(p, &meta).await?;
                self.check(p, &meta, id_token, &flow.nonce)
            }
            other => other,
        }
        .map_err(|e| match e {
            IdTokenError::WrongAudience(aud) => OidcError::WrongAudience(aud),
            e => OidcError::InvalidToken(e.to_string()),
        })?;
        let mut merged = claims.clone();
        let access = tokens.get("access_token").and_then(Value::as_str);
        if let (Some(ep), Some(access)) = (&meta.userinfo_endpoint, access) {
            match self.userinfo(ep, access).await {
                Ok(info) if info.get("sub") == claims.get("sub") => {
                    for (k, v) in info {
                        merged.entry(k).or_insert(v);
                    }
                }
                Ok(_) => return Err(OidcError::InvalidToken("userinfo is about another subject than the ID token".into())),
                // The ID token alone still says who it is; say why groups or e-mail may be missing.
                Err(e) => tracing::warn!(provider = %p.cfg.name, error = %e, "userinfo could not be read; using the ID token's claims only"),
            }
        }
        Ok((meta.issuer.clone(), person(&merged, &p.cfg.groups_claim)))
    }

    fn check(&self, p: &Provider, meta: &Meta, token: &str, nonce: &str) -> Result<Map<String, Value>, IdTokenError> {
        let keys = p.keys.read().unwrap_or_else(|e| e.into_inner()).clone();
        verify_id_token(token, &keys, &meta.issuer, &p.cfg.client_id, nonce, now_ms() / 1000)
    }

    fn refetch_allowed(&self, p: &Provider) -> bool {
        let mut last = p.last_fetch.lock().unwrap_or_else(|e| e.into_inner());
        if last.is_some_and(|t| t.elapsed() < REFETCH_EVERY) {
            return false;
        }
        *last = Some(Instant::now());
        true
    }

    /// The provider's discovery document (fetched now if it is not known yet).
    async fn meta(&self, p: &Provider) -> Result<Arc<Meta>, OidcError> {
        if let Some(m) = p.meta.read().unwrap_or_else(|e| e.into_inner()).clone() {
            return Ok(m);
        }
        if !self.refetch_allowed(p) {
            return Err(OidcError::Unavailable(format!("{} did not answer a moment ago", p.cfg.issuer)));
        }
        let base = p.cfg.issuer.trim_end_matches('/');
        let url = Url::parse(&format!("{base}/.well-known/openid-configuration")).map_err(|e| OidcError::Unavailable(e.to_string()))?;
        let doc = self.get_json(&url, None).await.map_err(|e| OidcError::Unavailable(format!("cannot read the discovery document {url}: {e}")))?;
        let meta = Arc::new(parse_discovery(&doc, base).map_err(|e| OidcError::Unavailable(format!("discovery document {url}: {e}")))?);
        self.fetch_keys(p, &meta).await?;
        *p.meta.write().unwrap_or_else(|e| e.into_inner()) = Some(meta.clone());
        Ok(meta)
    }

    async fn fetch_keys(&self, p: &Provider, meta: &Meta) -> Result<(), OidcError> {
        let doc = self.get_json(&meta.jwks_uri, None).await.map_err(|e| OidcError::Unavailable(format!("cannot read the keys {}: {e}", meta.jwks_uri)))?;
        let keys = parse_jwks(&doc);
        if keys.is_empty() {
            return Err(OidcError::Unavailable(format!("{} lists no signing key bedrud can use", meta.jwks_uri)));
        }
        *p.keys.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(keys);
        Ok(())
    }

    async fn redeem(&self, p: &Provider, meta: &Meta, code: &str, verifier: &str) -> Result<Map<String, Value>, OidcError> {
        let (body, basic) = token_request(&p.cfg, &self.redirect_uri(&p.cfg.name), code, verifier, meta.basic_auth);
        let mut req = self.http.post(meta.token_endpoint.clone()).header("accept", "application/json");
        if let Some(b) = basic {
            req = req.header("authorization", b);
        }
        let resp = req
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .map_err(|e| OidcError::TokenExchange(format!("{}: {}", meta.token_endpoint, error_chain(&e))))?;
        let status = resp.status();
        let body = read_json(resp).await.map_err(OidcError::TokenExchange)?;
        if !status.is_success() {
            let what = [body.get("error"), body.get("error_description")].into_iter().flatten().filter_map(Value::as_str).collect::<Vec<_>>().join(": ");
            return Err(OidcError::TokenExchange(format!("the token endpoint answered {status}: {what}")));
        }
        match body {
            Value::Object(m) => Ok(m),
            _ => Err(OidcError::TokenExchange("the token answer is not a JSON object".into())),
        }
    }

    async fn userinfo(&self, ep: &Url, access: &str) -> Result<Map<String, Value>, String> {
        match self.get_json(ep, Some(access)).await? {
            Value::Object(m) => Ok(m),
            _ => Err("userinfo is not a JSON object".into()),
        }
    }

    async fn get_json(&self, url: &Url, bearer: Option<&str>) -> Result<Value, String> {
        let mut req = self.http.get(url.clone()).header("accept", "application/json");
        if let Some(b) = bearer {
            req = req.bearer_auth(b);
        }
        let resp = req.send().await.map_err(|e| error_chain(&e))?;
        if !resp.status().is_success() {
            return Err(format!("HTTP {}", resp.status()));
        }
        read_json(resp).await
    }
}

/// The form of a token request and, for `client_secret_basic`, its `Authorization` header.
fn token_request(cfg: &OidcProvider, redirect_uri: &str, code: &str, verifier: &str, basic_auth: bool) -> (String, Option<String>) {
    let mut form = url::form_urlencoded::Serializer::new(String::new());
    form.append_pair("grant_type", "authorization_code")
        .append_pair("code", code)
        .append_pair("redirect_uri", redirect_uri)
        .append_pair("code_verifier", verifier);
    let mut basic = None;
    match (&cfg.client_secret, basic_auth) {
        (Some(secret), true) => {
            // RFC 6749 2.3.1: both parts form-encoded before they are joined.
            let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
            let b = base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", enc(&cfg.client_id), enc(secret)));
            basic = Some(format!("Basic {b}"));
        }
        (Some(secret), false) => {
            form.append_pair("client_id", &cfg.client_id).append_pair("client_secret", secret);
        }
        (None, _) => {
            form.append_pair("client_id", &cfg.client_id);
        }
    }
    (form.finish(), basic)
}

/// A reqwest error with its causes (the bare error says only "error sending request").
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(&format!(": {c}"));
        cur = c.source();
    }
    s
}

async fn read_json(mut resp: reqwest::Response) -> Result<Value, String> {
    let mut buf = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| error_chain(&e))? {
        if buf.len() + chunk.len() > MAX_DOCUMENT {
            return Err(format!("the answer is larger than {MAX_DOCUMENT} bytes"));
        }
        buf.extend_from_slice(&chunk);
    }
    serde_json::from_slice(&buf).map_err(|e| format!("the answer is not JSON: {e}"))
}

/// `BASE64URL(SHA-256(verifier))` (RFC 7636, S256).
pub fn pkce_challenge(verifier: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

fn parse_discovery(doc: &Value, configured_issuer: &str) -> Result<Meta, String> {
    let s = |k: &str| doc.get(k).and_then(Value::as_str);
    let issuer = s("issuer").ok_or("no issuer")?;
    if issuer.trim_end_matches('/') != configured_issuer {
        return Err(format!("it names the issuer {issuer:?}, not {configured_issuer:?}; set auth.oidc[].issuer to the provider's issuer exactly"));
    }
    let endpoint = |k: &str| -> Result<Url, String> {
        let raw = s(k).ok_or(format!("no {k}"))?;
        let u = Url::parse(raw).map_err(|e| format!("{k} {raw:?}: {e}"))?;
        if !secure_or_loopback(&u) {
            return Err(format!("{k} {raw:?} is not https"));
        }
        Ok(u)
    };
    let list = |k: &str| doc.get(k).and_then(Value::as_array).map(|a| a.iter().filter_map(Value::as_str).map(str::to_string).collect::<Vec<_>>());
    if list("response_types_supported").is_some_and(|l| !l.iter().any(|t| t == "code")) {
        return Err("the provider does not offer the authorization code flow".into());
    }
    if list("code_challenge_methods_supported").is_some_and(|l| !l.iter().any(|t| t == "S256")) {
        return Err("the provider does not offer PKCE with S256".into());
    }
    let auth_methods = list("token_endpoint_auth_methods_supported");
    Ok(Meta {
        issuer: issuer.to_string(),
        authorization_endpoint: endpoint("authorization_endpoint")?,
        token_endpoint: endpoint("token_endpoint")?,
        userinfo_endpoint: s("userinfo_endpoint").map(|_| endpoint("userinfo_endpoint")).transpose()?,
        jwks_uri: endpoint("jwks_uri")?,
        // The default when the list is absent is client_secret_basic (OpenID Discovery 1.0).
        basic_auth: auth_methods.is_none_or(|l| l.iter().any(|m| m == "client_secret_basic")),
    })
}

// ---- ID tokens -----------------------------------------------------------------------------

/// One signing key of the provider.
#[derive(Debug, Clone, PartialEq)]
pub struct Jwk {
    pub kid: Option<String>,
    /// The `alg` the key is restricted to, if the provider says.
    pub alg: Option<String>,
    pub key: KeyMaterial,
}

#[derive(Debug, Clone, PartialEq)]
pub enum KeyMaterial {
    Rsa { n: Vec<u8>, e: Vec<u8> },
    /// Uncompressed point `04 || x || y`.
    P256(Vec<u8>),
    P384(Vec<u8>),
    Ed25519(Vec<u8>),
}

fn b64() -> GeneralPurpose {
    GeneralPurpose::new(&alphabet::URL_SAFE, GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent))
}

/// The keys of a JWKS document that can check signatures (others, e.g. encryption keys, are
/// left out).
pub fn parse_jwks(doc: &Value) -> Vec<Jwk> {
    let Some(keys) = doc.get("keys").and_then(Value::as_array) else { return Vec::new() };
    keys.iter()
        .filter(|k| k.get("use").and_then(Value::as_str).is_none_or(|u| u == "sig"))
        .filter_map(|k| {
            let s = |f: &str| k.get(f).and_then(Value::as_str);
            let bytes = |f: &str| s(f).and_then(|v| b64().decode(v).ok());
            let point = |len: usize| -> Option<Vec<u8>> {
                let (x, y) = (bytes("x")?, bytes("y")?);
                (x.len() == len && y.len() == len).then(|| [&[4u8][..], &x, &y].concat())
            };
            let key = match (s("kty")?, s("crv")) {
                ("RSA", _) => KeyMaterial::Rsa { n: bytes("n")?, e: bytes("e")? },
                ("EC", Some("P-256")) => KeyMaterial::P256(point(32)?),
                ("EC", Some("P-384")) => KeyMaterial::P384(point(48)?),
                ("OKP", Some("Ed25519")) => KeyMaterial::Ed25519(bytes("x")?),
                _ => return None,
            };
            Some(Jwk { kid: s("kid").map(str::to_string), alg: s("alg").map(str::to_string), key })
        })
        .collect()
}

/// Why an ID token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdTokenError {
    #[error("malformed: {0}")]
    Malformed(String),
    #[error("signed with {0:?}, which bedrud does not accept")]
    UnsupportedAlg(String),
    #[error("signed with a key the provider does not list")]
    UnknownKey,
    #[error("the signature does not verify")]
    BadSignature,
    #[error("issued by {0:?}, not by the configured issuer")]
    WrongIssuer(String),
    #[error("not for this client (audience {0})")]
    WrongAudience(String),
    #[error("expired")]
    Expired,
    #[error("issued in the future (check the clocks)")]
    NotYetValid,
    #[error("the nonce is not this sign-in's")]
    WrongNonce,
    #[error("no subject")]
    NoSubject,
}

/// Checks a compact JWS ID token against the provider's keys and this flow, and returns its
/// claims.
pub fn verify_id_token(token: &str, keys: &[Jwk], issuer: &str, client_id: &str, nonce: &str, now: u64) -> Result<Map<String, Value>, IdTokenError> {
    let malformed = |m: &str| IdTokenError::Malformed(m.to_string());
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(sig), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err(malformed("not three parts (an encrypted ID token is not supported)"));
    };
    let header: Value = serde_json::from_slice(&b64().decode(h).map_err(|_| malformed("header is not base64url"))?).map_err(|_| malformed("header is not JSON"))?;
    let alg = header.get("alg").and_then(Value::as_str).ok_or_else(|| malformed("no alg"))?;
    if header.get("crit").is_some() {
        return Err(malformed("critical header extensions are not supported"));
    }
    let kid = header.get("kid").and_then(Value::as_str);
    let sig = b64().decode(sig).map_err(|_| malformed("signature is not base64url"))?;
    let signed = &token[..h.len() + 1 + p.len()];

    // Every key that could have made this signature: matching kid (when given) and type.
    let fits = |k: &&Jwk| -> bool {
        let kind_ok = match (&k.key, alg) {
            (KeyMaterial::Rsa { .. }, "RS256" | "RS384" | "RS512" | "PS256" | "PS384" | "PS512") => true,
            (KeyMaterial::P256(_), "ES256") | (KeyMaterial::P384(_), "ES384") | (KeyMaterial::Ed25519(_), "EdDSA" | "Ed25519") => true,
            _ => false,
        };
        kind_ok && kid.is_none_or(|id| k.kid.as_deref() == Some(id)) && k.alg.as_deref().is_none_or(|a| a == alg)
    };
    if !matches!(alg, "RS256" | "RS384" | "RS512" | "PS256" | "PS384" | "PS512" | "ES256" | "ES384" | "EdDSA" | "Ed25519") {
        return Err(IdTokenError::UnsupportedAlg(alg.to_string()));
    }
    let candidates: Vec<&Jwk> = keys.iter().filter(fits).collect();
    if candidates.is_empty() {
        return Err(IdTokenError::UnknownKey);
    }
    if !candidates.iter().any(|k| verify_signature(alg, &k.key, signed.as_bytes(), &sig)) {
        return Err(IdTokenError::BadSignature);
    }

    let claims: Map<String, Value> = serde_json::from_slice(&b64().decode(p).map_err(|_| malformed("payload is not base64url"))?).map_err(|_| malformed("payload is not a JSON object"))?;
    let iss = claims.get("iss").and_then(Value::as_str).unwrap_or("");
    if iss != issuer {
        return Err(IdTokenError::WrongIssuer(iss.to_string()));
    }
    let aud: Vec<&str> = match claims.get("aud") {
        Some(Value::String(a)) => vec![a.as_str()],
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    let azp = claims.get("azp").and_then(Value::as_str);
    if !aud.contains(&client_id) || azp.is_some_and(|a| a != client_id) || (aud.len() > 1 && azp.is_none()) {
        return Err(IdTokenError::WrongAudience(format!("{aud:?}")));
    }
    let exp = claims.get("exp").and_then(Value::as_u64).ok_or_else(|| malformed("no exp"))?;
    if exp + LEEWAY_SECS <= now {
        return Err(IdTokenError::Expired);
    }
    if claims.get("iat").and_then(Value::as_u64).is_some_and(|iat| iat > now + LEEWAY_SECS) {
        return Err(IdTokenError::NotYetValid);
    }
    let got = claims.get("nonce").and_then(Value::as_str).unwrap_or("");
    if !bool::from(got.as_bytes().ct_eq(nonce.as_bytes())) {
        return Err(IdTokenError::WrongNonce);
    }
    if claims.get("sub").and_then(Value::as_str).is_none_or(str::is_empty) {
        return Err(IdTokenError::NoSubject);
    }
    Ok(claims)
}

fn verify_signature(alg: &str, key: &KeyMaterial, msg: &[u8], sig: &[u8]) -> bool {
    match key {
        KeyMaterial::Rsa { n, e } => {
            let params: &signature::RsaParameters = match alg {
                "RS256" => &signature::RSA_PKCS1_2048_8192_SHA256,
                "RS384" => &signature::RSA_PKCS1_2048_8192_SHA384,
                "RS512" => &signature::RSA_PKCS1_2048_8192_SHA512,
                "PS256" => &signature::RSA_PSS_2048_8192_SHA256,
                "PS384" => &signature::RSA_PSS_2048_8192_SHA384,
                "PS512" => &signature::RSA_PSS_2048_8192_SHA512,
                _ => return false,
            };
            RsaPublicKeyComponents { n, e }.verify(params, msg, sig).is_ok()
        }
        KeyMaterial::P256(point) => UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, point).verify(msg, sig).is_ok(),
        KeyMaterial::P384(point) => UnparsedPublicKey::new(&signature::ECDSA_P384_SHA384_FIXED, point).verify(msg, sig).is_ok(),
        KeyMaterial::Ed25519(x) => UnparsedPublicKey::new(&signature::ED25519, x).verify(msg, sig).is_ok(),
    }
}

/// Who the claims describe. `email_verified` may be a boolean or the string "true" (some
/// providers); groups may be a list or one string.
pub fn person(claims: &Map<String, Value>, groups_claim: &str) -> Person {
    let s = |k: &str| claims.get(k).and_then(Value::as_str).map(str::trim).filter(|v| !v.is_empty());
    let email = s("email").and_then(normalize_email);
    let verified = matches!(claims.get("email_verified"), Some(Value::Bool(true))) || claims.get("email_verified").and_then(Value::as_str) == Some("true");
    let groups = match claims.get(groups_claim) {
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).map(str::to_string).collect(),
        Some(Value::String(g)) => vec![g.clone()],
        _ => Vec::new(),
    };
    let local = email.as_deref().and_then(|e| e.split('@').next()).map(str::to_string);
    let names = [s("preferred_username").map(str::to_string), local, s("name").map(str::to_string)].into_iter().flatten().collect();
    Person { subject: s("sub").unwrap_or("").to_string(), email_verified: verified && email.is_some(), email, groups, names }
}

/// Whether `person` may sign in through `cfg`, and whether they are an administrator there.
pub fn admit(cfg: &OidcProvider, person: &Person) -> Result<bool, OidcError> {
    if !cfg.allowed_domains.is_empty() {
        let domain = person.email.as_deref().filter(|_| person.email_verified).and_then(|e| e.rsplit_once('@')).map(|(_, d)| d);
        if !domain.is_some_and(|d| cfg.allowed_domains.iter().any(|a| a.eq_ignore_ascii_case(d))) {
            return Err(OidcError::NotAllowed(format!("a verified e-mail address in {} is required", cfg.allowed_domains.join(", "))));
        }
    }
    if !cfg.allowed_groups.is_empty() && !person.groups.iter().any(|g| cfg.allowed_groups.contains(g)) {
        return Err(OidcError::NotAllowed(format!("membership in one of {} is required", cfg.allowed_groups.join(", "))));
    }
    Ok(cfg.admin_group.as_ref().is_some_and(|a| person.groups.contains(a)))
}

/// A user name made from `raw` by the account rules (3-32 of a-z 0-9 . _ -, starting with a
/// letter or digit), or `None` when too little of it is usable.
fn username_from(raw: &str) -> Option<String> {
    let mut s: String = raw
        .to_lowercase()
        .chars()
        .map(|c| if c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c) { c } else { '-' })
        .collect();
    s = s.trim_start_matches(|c: char| !c.is_ascii_alphanumeric()).trim_end_matches(['-', '.', '_']).to_string();
    while s.contains("--") {
        s = s.replace("--", "-");
    }
    s.truncate(28);
    (s.len() >= 3).then_some(s)
}

/// Finds or makes the account `person` signs into, inside one write transaction: the linked
/// identity; else (with `linkByEmail`) the account whose verified address the provider
/// vouches for; else a new account. The admin role follows the provider's admin group for
/// accounts whose role came from it.
pub async fn sign_in(store: &Store, cfg: &OidcProvider, issuer: &str, person: Person, admin: bool) -> Result<User, OidcError> {
    let (cfg, issuer) = (cfg.clone(), issuer.to_string());
    let out = store
        .write(move |txn| {
            let identity = Identity { provider: cfg.name.clone(), issuer: issuer.clone(), subject: person.subject.clone() };
            let linked = store::oidc_subject_w(txn, &issuer, &person.subject)?.map(|id| store::user_by_id_w(txn, &id)).transpose()?.flatten();
            let by_email = match (&linked, cfg.link_by_email, person.email_verified, &person.email) {
                (None, true, true, Some(e)) => store::email_owner_w(txn, e)?.map(|id| store::user_by_id_w(txn, &id)).transpose()?.flatten(),
                _ => None,
            };
            let mut user = match linked.or(by_email) {
                Some(u) => u,
                None => {
                    let name = free_username(txn, &person.names)?;
                    let mut u = User::new(&name, String::new(), Role::User);
                    if let Some(e) = &person.email {
                        let verified = person.email_verified && store::email_owner_w(txn, e)?.is_none();
                        store::set_email(txn, &mut u, Some(e), verified)?;
                    }
                    store::insert_user(txn, &u)?;
                    tracing::info!(user = %u.username, provider = %cfg.name, "account created at first single sign-on");
                    u
                }
            };
            if user.disabled {
                return Ok(Err(OidcError::Disabled));
            }
            store::oidc_link(txn, &mut user, identity.clone())?;
            if admin && !user.is_admin() {
                user.role = Role::Admin;
                user.sso_admin = true;
            } else if !admin && user.sso_admin && cfg.admin_group.is_some() {
                if crate::accounts::is_last_admin(txn, &user)? {
                    tracing::warn!(user = %user.username, "left the provider's admin group but is the only administrator; stays admin");
                } else {
                    user.role = Role::User;
                    user.sso_admin = false;
                }
            }
            store::put_user(txn, &user)?;
            Ok(Ok(user))
        })
        .await
        .map_err(|e| OidcError::Store(e.to_string()))?;
    out
}

fn free_username(txn: &redb::WriteTransaction, hints: &[String]) -> Result<String, StoreError> {
    let base = hints.iter().find_map(|h| username_from(h)).unwrap_or_else(|| "user".to_string());
    let base = if base.len() < 3 { format!("{base}-user") } else { base };
    for n in 1..1000 {
        let candidate = if n == 1 { base.clone() } else { format!("{base}-{n}") };
        if store::user_by_name_w(txn, &candidate)?.is_none() {
            return Ok(candidate);
        }
    }
    Ok(format!("{base}-{}", random_secret(3).to_lowercase().replace(['-', '_'], "x")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ring::rand::SystemRandom;
    use ring::signature::{EcdsaKeyPair, Ed25519KeyPair, KeyPair};
    use serde_json::json;

    const ISS: &str = "https://id.example.org";

    fn enc(v: &Value) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
    }

    fn sign_ed(kp: &Ed25519KeyPair, header: &Value, claims: &Value) -> String {
        let msg = format!("{}.{}", enc(header), enc(claims));
        let sig = kp.sign(msg.as_bytes());
        format!("{msg}.{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sig.as_ref()))
    }

    fn ed_key() -> (Ed25519KeyPair, Jwk) {
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).unwrap();
        let kp = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
        let jwk = Jwk { kid: Some("k1".into()), alg: None, key: KeyMaterial::Ed25519(kp.public_key().as_ref().to_vec()) };
        (kp, jwk)
    }

    fn claims(now: u64) -> Value {
        json!({ "iss": ISS, "aud": "bedrud", "sub": "alice-1", "exp": now + 300, "iat": now, "nonce": "N" })
    }

    #[test]
    fn a_good_token_passes_and_each_wrong_claim_is_named() {
        let (kp, jwk) = ed_key();
        let now = 1_800_000_000;
        let head = json!({ "alg": "EdDSA", "kid": "k1" });
        let ok = sign_ed(&kp, &head, &claims(now));
        let c = verify_id_token(&ok, &[jwk.clone()], ISS, "bedrud", "N", now).unwrap();
        assert_eq!(c["sub"], "alice-1");

        let with = |f: &dyn Fn(&mut Value)| {
            let mut c = claims(now);
            f(&mut c);
            verify_id_token(&sign_ed(&kp, &head, &c), &[jwk.clone()], ISS, "bedrud", "N", now).unwrap_err()
        };
        assert!(matches!(with(&|c| c["aud"] = json!("someone-else")), IdTokenError::WrongAudience(_)));
        assert!(matches!(with(&|c| c["aud"] = json!(["bedrud", "other"])), IdTokenError::WrongAudience(_)), "several audiences need azp");
        assert!(matches!(with(&|c| c["azp"] = json!("other")), IdTokenError::WrongAudience(_)));
        assert_eq!(with(&|c| c["iss"] = json!("https://evil.example")), IdTokenError::WrongIssuer("https://evil.example".into()));
        assert_eq!(with(&|c| c["exp"] = json!(now - 120)), IdTokenError::Expired);
        assert_eq!(with(&|c| c["iat"] = json!(now + 600)), IdTokenError::NotYetValid);
        assert_eq!(with(&|c| c["nonce"] = json!("other")), IdTokenError::WrongNonce);
        assert_eq!(with(&|c| c.as_object_mut().unwrap().remove("nonce").map(|_| ()).unwrap_or(())), IdTokenError::WrongNonce);
        assert_eq!(with(&|c| c["sub"] = json!("")), IdTokenError::NoSubject);
        let mut two = claims(now);
        two["aud"] = json!(["bedrud", "other"]);
        two["azp"] = json!("bedrud");
        assert!(verify_id_token(&sign_ed(&kp, &head, &two), &[jwk.clone()], ISS, "bedrud", "N", now).is_ok());
    }

    #[test]
    fn signatures_keys_and_algorithms() {
        let (kp, jwk) = ed_key();
        let (other, _) = ed_key();
        let now = 1_800_000_000;
        let head = json!({ "alg": "EdDSA", "kid": "k1" });
        // Signed by another key under the same kid.
        let forged = sign_ed(&other, &head, &claims(now));
        assert_eq!(verify_id_token(&forged, &[jwk.clone()], ISS, "bedrud", "N", now), Err(IdTokenError::BadSignature));
        // A claim changed after signing.
        let good = sign_ed(&kp, &head, &claims(now));
        let parts: Vec<&str> = good.split('.').collect();
        let mut c = claims(now);
        c["sub"] = json!("mallory");
        let tampered = format!("{}.{}.{}", parts[0], enc(&c), parts[2]);
        assert_eq!(verify_id_token(&tampered, &[jwk.clone()], ISS, "bedrud", "N", now), Err(IdTokenError::BadSignature));
        // An unknown kid, "none" and HMAC are refused.
        let unknown = sign_ed(&kp, &json!({ "alg": "EdDSA", "kid": "k2" }), &claims(now));
        assert_eq!(verify_id_token(&unknown, &[jwk.clone()], ISS, "bedrud", "N", now), Err(IdTokenError::UnknownKey));
        for alg in ["none", "HS256"] {
            let t = format!("{}.{}.", enc(&json!({ "alg": alg })), enc(&claims(now)));
            assert_eq!(verify_id_token(&t, &[jwk.clone()], ISS, "bedrud", "N", now), Err(IdTokenError::UnsupportedAlg(alg.into())));
        }
        // An RSA algorithm named for an Ed25519 key finds no key.
        let confused = sign_ed(&kp, &json!({ "alg": "RS256", "kid": "k1" }), &claims(now));
        assert_eq!(verify_id_token(&confused, &[jwk.clone()], ISS, "bedrud", "N", now), Err(IdTokenError::UnknownKey));
        assert!(matches!(verify_id_token("a.b", &[jwk], ISS, "bedrud", "N", now), Err(IdTokenError::Malformed(_))));
    }

    #[test]
    fn es256_from_a_jwks_document() {
        let rng = SystemRandom::new();
        let alg = &signature::ECDSA_P256_SHA256_FIXED_SIGNING;
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(alg, &rng).unwrap();
        let kp = EcdsaKeyPair::from_pkcs8(alg, pkcs8.as_ref(), &rng).unwrap();
        let point = kp.public_key().as_ref();
        let b = |s: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        let doc = json!({ "keys": [
            { "kty": "EC", "crv": "P-256", "kid": "ec", "use": "sig", "x": b(&point[1..33]), "y": b(&point[33..]) },
            { "kty": "RSA", "kid": "enc", "use": "enc", "n": "AQAB", "e": "AQAB" },
            { "kty": "oct", "kid": "secret", "k": "c2VjcmV0" },
        ]});
        let keys = parse_jwks(&doc);
        assert_eq!(keys.len(), 1, "{keys:?}");
        let now = 1_800_000_000;
        let msg = format!("{}.{}", enc(&json!({ "alg": "ES256", "kid": "ec" })), enc(&claims(now)));
        let sig = kp.sign(&rng, msg.as_bytes()).unwrap();
        let token = format!("{msg}.{}", b(sig.as_ref()));
        assert!(verify_id_token(&token, &keys, ISS, "bedrud", "N", now).is_ok());
    }

    fn provider(domains: &[&str], groups: &[&str], admin: Option<&str>) -> OidcProvider {
        OidcProvider {
            name: "corp".into(),
            label: None,
            issuer: ISS.into(),
            client_id: "bedrud".into(),
            client_secret_file: None,
            client_secret: None,
            scopes: vec!["openid".into()],
            allowed_domains: domains.iter().map(|s| s.to_string()).collect(),
            allowed_groups: groups.iter().map(|s| s.to_string()).collect(),
            admin_group: admin.map(str::to_string),
            groups_claim: "groups".into(),
            link_by_email: false,
        }
    }

    #[test]
    fn claims_become_a_person_and_policy_applies() {
        let c = json!({ "sub": "s1", "email": " Alice@Example.org", "email_verified": "true", "groups": ["staff", "admins"], "preferred_username": "Alice Smith" });
        let p = person(c.as_object().unwrap(), "groups");
        assert_eq!(p.email.as_deref(), Some("alice@example.org"));
        assert!(p.email_verified);
        assert_eq!(p.names[0], "Alice Smith");
        assert_eq!(username_from(&p.names[0]).as_deref(), Some("alice-smith"));
        assert_eq!(username_from("Ω"), None);
        assert_eq!(username_from("__x.y__").as_deref(), Some("x.y"));
        assert_eq!(admit(&provider(&[], &[], Some("admins")), &p).unwrap(), true);
        assert_eq!(admit(&provider(&["example.org"], &["staff"], Some("root")), &p).unwrap(), false);
        assert!(matches!(admit(&provider(&["other.org"], &[], None), &p), Err(OidcError::NotAllowed(_))));
        assert!(matches!(admit(&provider(&[], &["finance"], None), &p), Err(OidcError::NotAllowed(_))));
        let unverified = Person { email_verified: false, ..p.clone() };
        assert!(matches!(admit(&provider(&["example.org"], &[], None), &unverified), Err(OidcError::NotAllowed(_))));
        let one = person(json!({ "sub": "s", "roles": "ops" }).as_object().unwrap(), "roles");
        assert_eq!(one.groups, vec!["ops".to_string()]);
    }

    #[test]
    fn discovery_is_checked() {
        let doc = json!({
            "issuer": "http://127.0.0.1:9000",
            "authorization_endpoint": "http://127.0.0.1:9000/auth",
            "token_endpoint": "http://127.0.0.1:9000/token",
            "jwks_uri": "http://127.0.0.1:9000/jwks",
            "token_endpoint_auth_methods_supported": ["client_secret_post"],
        });
        let m = parse_discovery(&doc, "http://127.0.0.1:9000").unwrap();
        assert!(!m.basic_auth && m.userinfo_endpoint.is_none());
        assert!(parse_discovery(&doc, "http://127.0.0.1:9001").unwrap_err().contains("issuer"));
        let mut remote = doc.clone();
        remote["token_endpoint"] = json!("http://id.example.org/token");
        assert!(parse_discovery(&remote, "http://127.0.0.1:9000").unwrap_err().contains("not https"));
        let mut no_pkce = doc.clone();
        no_pkce["code_challenge_methods_supported"] = json!(["plain"]);
        assert!(parse_discovery(&no_pkce, "http://127.0.0.1:9000").unwrap_err().contains("PKCE"));
        assert_eq!(pkce_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"), "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
    }
}
