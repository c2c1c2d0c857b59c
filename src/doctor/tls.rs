//! `tls-certificate`: the certificate bedrud serves (and lends to TURN/TLS) — chain, names,
//! dates, key; `turn`: whether LiveKit's TURN/TLS is on and why not; `acme`: the state of
//! automatic certificates.

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::Arc;

use rustls::client::danger::ServerCertVerifier;
use rustls::pki_types::{ServerName, UnixTime};

use super::{rows, Ctx, Finding};
use crate::certs::{self, CertInfo};
use crate::livekit::configgen::{self, GenInput, NEWEST_KNOWN};
use crate::livekit::{nodeip, ApiKeys};

/// Certificates expiring sooner than this are a warning.
pub const EXPIRY_WARNING_DAYS: i64 = 14;
/// The user the packaged unit runs as; `BEDRUD_SERVICE_USER` names another (a unit of one's own).
const SERVICE_USER: &str = "bedrud";

fn service_user() -> String {
    std::env::var("BEDRUD_SERVICE_USER").ok().filter(|u| !u.trim().is_empty()).unwrap_or_else(|| SERVICE_USER.into())
}

pub fn certificate(ctx: &Ctx) -> Vec<Finding> {
    const CHECK: &str = "tls-certificate";
    let c = &ctx.config;
    if !c.server.tls_enabled() {
        return vec![Finding::ok(CHECK, "bedrud serves plain HTTP (no server.tls or server.acme): TURN/TLS is off; browsers need HTTPS for cameras except on localhost")];
    }
    let Some((cert, key)) = c.tls_files() else {
        if c.server.acme.is_some() {
            // The acme check says why there is none yet.
            return Vec::new();
        }
        return vec![Finding::ok(CHECK, "server.tls.keyFile comes from the tls-key credential, which systemd hands over at start")];
    };
    let chain = match certs::read_chain(&cert) {
        Ok(c) => c,
        Err(e) => return vec![Finding::fail(CHECK, e).fix("point server.tls.certFile at a PEM certificate chain").row(rows::NAT)],
    };
    let leaf = match certs::info(&chain[0]) {
        Ok(i) => i,
        Err(e) => return vec![Finding::fail(CHECK, format!("{}: {e}", cert.display())).row(rows::NAT)],
    };
    let mut out = Vec::new();
    let now = certs::now();
    let name = cert.display();
    let left = leaf.remaining(now);
    if leaf.not_before > now {
        out.push(Finding::fail(CHECK, format!("{name} is not valid before {}", certs::date(leaf.not_before))).fix("check this host's clock, or use a certificate valid now"));
    } else if left <= 0 {
        out.push(
            Finding::fail(CHECK, format!("{name} EXPIRED on {} ({} ago): browsers refuse HTTPS and TURN/TLS", certs::date(leaf.not_after), certs::span(-left)))
                .fix(if c.server.acme.is_some() { "see the acme line below" } else { "renew the certificate, then `systemctl reload bedrud`" })
                .row(rows::NAT),
        );
    } else if left < EXPIRY_WARNING_DAYS * 86_400 && c.server.acme.is_none() {
        out.push(
            Finding::warn(CHECK, format!("{name} expires on {} (in {})", certs::date(leaf.not_after), certs::span(left)))
                .fix(if c.server.acme.is_some() { "see the acme line below" } else { "renew it soon, then `systemctl reload bedrud`" })
                .row(rows::NAT),
        );
    }
    let host = c.server.host.as_deref().map(str::trim).filter(|h| !h.is_empty());
    match host {
        Some(h) if !leaf.covers(h) => out.push(
            Finding::fail(CHECK, format!("{name} is for {} and does not cover server.host {h}", leaf.names().join(", ")))
                .fix("use a certificate for server.host, or set server.host to one of its names")
                .row(rows::NAT),
        ),
        None => out.push(Finding::warn(CHECK, format!("server.host is not set: cannot check that {name} is for the name clients use ({})", leaf.names().join(", "))).fix("set server.host to the certificate's DNS name")),
        _ => {}
    }
    if let Some(problem) = chain_problem(&chain, host.or(leaf.dns_names.first().map(String::as_str))) {
        out.push(problem);
    }
    if let Err(e) = crate::http::serve::Tls::load(&cert, &key) {
        out.push(Finding::fail(CHECK, format!("{e}")).fix("server.tls.keyFile must be the key of server.tls.certFile"));
    } else if let Some(f) = key_readable(&key) {
        out.push(f);
    }
    if out.iter().all(|f| f.status == super::Status::Ok) {
        out.insert(
            0,
            Finding::ok(CHECK, format!("{name}: {} until {} (in {}), chain trusted, key matches", leaf.names().join(", "), certs::date(leaf.not_after), certs::span(left))),
        );
    }
    out
}

/// Problems of the chain against this system's roots (dates and names are said above).
fn chain_problem(chain: &[rustls::pki_types::CertificateDer<'static>], name: Option<&str>) -> Option<Finding> {
    const CHECK: &str = "tls-certificate";
    let name = ServerName::try_from(name?.trim_matches(['[', ']']).to_string()).ok()?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = rustls::client::WebPkiServerVerifier::builder_with_provider(crate::livekit::http::native_roots(), provider).build().ok()?;
    match verifier.verify_server_cert(&chain[0], &chain[1..], &name, &[], UnixTime::now()) {
        Ok(_) => None,
        Err(rustls::Error::InvalidCertificate(e)) => {
            use rustls::CertificateError as E;
            match e {
                E::Expired | E::ExpiredContext { .. } | E::NotValidYet | E::NotValidYetContext { .. } | E::NotValidForName | E::NotValidForNameContext { .. } => None,
                E::UnknownIssuer => Some(
                    Finding::warn(CHECK, "the chain does not lead to a CA this system trusts (self-signed, a private CA, or the intermediate is missing from the file)")
                        .fix("browsers warn and LiveKit clients refuse it: use a certificate from a public CA (server.acme does it), or put the full chain (leaf first, then intermediates) in server.tls.certFile")
                        .row(rows::SELF_SIGNED),
                ),
                other => Some(Finding::fail(CHECK, format!("the certificate chain is not valid: {other:?}")).fix("get a new certificate from your CA")),
            }
        }
        Err(e) => Some(Finding::fail(CHECK, format!("the certificate chain is not valid: {e}"))),
    }
}

/// Whether the service user can read the key. Run as root, the file's owner and mode decide.
fn key_readable(key: &Path) -> Option<Finding> {
    const CHECK: &str = "tls-certificate";
    let meta = std::fs::metadata(key).ok()?;
    if nix::unistd::geteuid().is_root() {
        let name = service_user();
        let user = nix::unistd::User::from_name(&name).ok().flatten()?;
        let groups = nix::unistd::getgrouplist(&std::ffi::CString::new(name.as_str()).ok()?, user.gid).unwrap_or_default();
        let mode = meta.mode();
        let readable = (meta.uid() == user.uid.as_raw() && mode & 0o400 != 0)
            || (groups.iter().any(|g| g.as_raw() == meta.gid()) && mode & 0o040 != 0)
            || mode & 0o004 != 0;
        return (!readable).then(|| {
            Finding::fail(CHECK, format!("{} (mode {:o}) cannot be read by the service user {name}", key.display(), mode & 0o777))
                .fix(format!("hand it over as the tls-key credential (LoadCredential=tls-key:{}), or chgrp {name} and chmod 640 it", key.display()))
        });
    }
    // Anyone else has read it already: loading the configuration reads the key file, and
    // refuses a key it cannot read.
    None
}

/// `turn`: in embedded mode with TLS, TURN/TLS is on with the served certificate, or why not.
pub fn turn(ctx: &Ctx) -> Vec<Finding> {
    const CHECK: &str = "turn";
    let c = &ctx.config;
    if !ctx.embedded() || c.livekit.config_path.is_some() {
        return Vec::new();
    }
    let node = nodeip::resolve(c).map(|n| n.ip).unwrap_or(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST));
    let keys = ApiKeys { key: "doctor".into(), secret: "d".repeat(32) };
    let g = match configgen::generate(&GenInput { config: c, keys: &keys, version: ctx.version.unwrap_or(NEWEST_KNOWN), webhook_url: "http://127.0.0.1/", node_ip: node, redis: None }) {
        Ok(g) => g,
        Err(e) => return vec![Finding::fail(CHECK, e.to_string())],
    };
    if g.turn {
        let (cert, _) = c.tls_files().unwrap_or_default();
        return vec![Finding::ok(
            CHECK,
            format!(
                "TURN on: UDP {}, TLS {} for {}, with {}",
                c.livekit.turn_udp_port,
                c.livekit.turn_tls_port,
                c.server.host.as_deref().unwrap_or(""),
                cert.display()
            ),
        )];
    }
    let off: Vec<&String> = g.warnings.iter().filter(|w| w.contains("TURN/TLS stays off")).collect();
    if off.is_empty() {
        return vec![Finding::ok(CHECK, "TURN off: bedrud serves no TLS, whose certificate TURN/TLS would use; clients behind strict firewalls may not connect")];
    }
    off.into_iter()
        .map(|w| {
            Finding::warn(CHECK, w.clone())
                .fix("TURN/TLS needs bedrud's certificate and a DNS name: set server.host to the certificate's name (server.tls or server.acme)")
                .row(rows::TURN_DOMAIN)
        })
        .collect()
}

/// `acme`: the certificate ACME keeps, and how the last attempt went.
pub fn acme(ctx: &Ctx) -> Vec<Finding> {
    const CHECK: &str = "acme";
    let c = &ctx.config;
    if c.server.acme.is_none() {
        return Vec::new();
    }
    let files = crate::acme::Files::of(c);
    let live = ctx.live.as_ref().and_then(|l| l.state.runtime.get()).and_then(|r| r.acme.clone());
    let st = match &live {
        Some(a) => a.status(),
        None => crate::acme::Status::read(&files).unwrap_or_default(),
    };
    let now = certs::now();
    let cert: Option<CertInfo> = certs::leaf_info(&files.cert).ok();
    let domains = c.server.acme_domains().join(", ");
    let mut out = Vec::new();
    let failing = st.last_error.as_ref().map(|e| {
        let next = st.next_attempt.map(|t| format!("; next attempt {} (or now: systemctl reload bedrud)", certs::date(t))).unwrap_or_default();
        format!("the last {} attempt(s) failed: {e}{next}", st.failures.max(1))
    });
    let fix = "check that the names resolve to this server and that the challenge port is reachable from the internet (tls-alpn-01: server.port as 443; http-01: server.acme.httpPort as 80)";
    match (&cert, failing) {
        (None, Some(f)) => out.push(Finding::fail(CHECK, format!("no certificate for {domains} yet: {f}")).fix(fix).row(rows::NAT)),
        (None, None) if ctx.live.is_some() => out.push(Finding::warn(CHECK, format!("no certificate for {domains} yet: the first order is under way"))),
        (None, None) => out.push(Finding::skip(CHECK, format!("no certificate for {domains} yet: bedrud orders one when it starts"))),
        (Some(i), Some(f)) => out.push(
            Finding::warn(CHECK, format!("renewing the certificate for {domains} (valid until {}, in {}) fails: {f}", certs::date(i.not_after), certs::span(i.remaining(now))))
                .fix(fix)
                .row(rows::NAT),
        ),
        // Not renewed although half of the renewal window has passed (with Let's Encrypt's 90
        // days: 15 days before expiry), within the last 14 days.
        (Some(i), None) if i.remaining(now) < (EXPIRY_WARNING_DAYS * 86_400).min((i.not_after - i.renew_at()) / 2) => out.push(
            Finding::warn(CHECK, format!("the certificate for {domains} expires in {} and was not renewed", certs::span(i.remaining(now))))
                .fix("is bedrud running? It renews when a third of the lifetime is left"),
        ),
        (Some(i), None) => out.push(Finding::ok(
            CHECK,
            format!("certificate for {domains} from {}, valid until {}; renewal due {}", i.issuer, certs::date(i.not_after), certs::date(i.renew_at())),
        )),
    }
    out
}
