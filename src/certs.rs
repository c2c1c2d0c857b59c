//! Reading PEM certificate chains and what `bedrud doctor` and ACME renewal need to know about
//! them: validity dates, names, serial, and whether a name is covered.

use std::net::IpAddr;
use std::path::Path;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use x509_parser::extensions::GeneralName;

/// The facts of one certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertInfo {
    /// Unix seconds.
    pub not_before: i64,
    pub not_after: i64,
    /// DNS names from the subject alternative names (the common name when there are none).
    pub dns_names: Vec<String>,
    pub ips: Vec<IpAddr>,
    /// Hex, as the CA printed it.
    pub serial: String,
    pub subject: String,
    pub issuer: String,
}

impl CertInfo {
    /// Seconds until it expires (negative: expired).
    pub fn remaining(&self, now: i64) -> i64 {
        self.not_after - now
    }

    /// The moment a renewal is due: when a third of the lifetime is left.
    pub fn renew_at(&self) -> i64 {
        self.not_after - (self.not_after - self.not_before).max(0) / 3
    }

    /// Whether the certificate is valid for `host` (a DNS name, with `*.` wildcards matching
    /// one label, or an IP address).
    pub fn covers(&self, host: &str) -> bool {
        let host = host.trim().trim_end_matches('.').trim_matches(['[', ']']).to_ascii_lowercase();
        if let Ok(ip) = host.parse::<IpAddr>() {
            return self.ips.contains(&ip);
        }
        self.dns_names.iter().any(|n| {
            let n = n.trim_end_matches('.').to_ascii_lowercase();
            match n.strip_prefix("*.") {
                Some(base) => host.split_once('.').is_some_and(|(first, rest)| !first.is_empty() && rest == base),
                None => n == host,
            }
        })
    }

    /// Every name, for messages.
    pub fn names(&self) -> Vec<String> {
        self.dns_names.iter().cloned().chain(self.ips.iter().map(IpAddr::to_string)).collect()
    }
}

/// The certificates of a PEM file, leaf first.
pub fn read_chain(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?
        .collect::<Result<_, _>>()
        .map_err(|e| format!("bad certificate in {}: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!("no certificate found in {}", path.display()));
    }
    Ok(certs)
}

/// The certificates of PEM text, leaf first.
pub fn parse_chain(pem: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<_, _>>()
        .map_err(|e| format!("bad certificate: {e}"))?;
    if certs.is_empty() {
        return Err("no certificate in the PEM text".into());
    }
    Ok(certs)
}

/// Parses one DER certificate.
pub fn info(der: &CertificateDer<'_>) -> Result<CertInfo, String> {
    let (_, cert) = x509_parser::parse_x509_certificate(der.as_ref()).map_err(|e| format!("cannot parse certificate: {e}"))?;
    let mut dns_names = Vec::new();
    let mut ips = Vec::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for name in &san.value.general_names {
            match name {
                GeneralName::DNSName(d) => dns_names.push(d.to_string()),
                GeneralName::IPAddress(b) => match b.len() {
                    4 => ips.push(IpAddr::from(<[u8; 4]>::try_from(*b).unwrap_or_default())),
                    16 => ips.push(IpAddr::from(<[u8; 16]>::try_from(*b).unwrap_or_default())),
                    _ => {}
                },
                _ => {}
            }
        }
    }
    if dns_names.is_empty() && ips.is_empty() {
        if let Some(cn) = cert.subject().iter_common_name().next().and_then(|c| c.as_str().ok()) {
            dns_names.push(cn.to_string());
        }
    }
    Ok(CertInfo {
        not_before: cert.validity().not_before.timestamp(),
        not_after: cert.validity().not_after.timestamp(),
        dns_names,
        ips,
        serial: cert.raw_serial_as_string().replace(':', ""),
        subject: cert.subject().to_string(),
        issuer: cert.issuer().to_string(),
    })
}

/// The leaf of a PEM file.
pub fn leaf_info(path: &Path) -> Result<CertInfo, String> {
    info(&read_chain(path)?[0])
}

/// Unix seconds now.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// A date for messages: `2026-03-01 12:00 UTC`.
pub fn date(unix: i64) -> String {
    let f = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute] UTC");
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| t.format(&f).ok())
        .unwrap_or_else(|| unix.to_string())
}

/// `3 days`, `5 h`, `40 s`: a duration for messages.
pub fn span(secs: i64) -> String {
    let s = secs.unsigned_abs();
    if s >= 2 * 86_400 {
        format!("{} days", s / 86_400)
    } else if s >= 2 * 3600 {
        format!("{} h", s / 3600)
    } else if s >= 120 {
        format!("{} min", s / 60)
    } else {
        format!("{s} s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cert(names: Vec<String>) -> CertInfo {
        let key = rcgen::KeyPair::generate().unwrap();
        let c = rcgen::CertificateParams::new(names).unwrap().self_signed(&key).unwrap();
        info(c.der()).unwrap()
    }

    #[test]
    fn names_and_wildcards() {
        let c = cert(vec!["meet.example.org".into(), "*.lk.example.org".into(), "127.0.0.1".into()]);
        assert!(c.covers("meet.example.org") && c.covers("MEET.example.org."));
        assert!(c.covers("a.lk.example.org") && !c.covers("lk.example.org") && !c.covers("a.b.lk.example.org"));
        assert!(c.covers("127.0.0.1") && !c.covers("127.0.0.2"));
        assert!(!c.covers("example.org"));
        assert!(c.renew_at() > c.not_before && c.renew_at() < c.not_after);
        assert_eq!(span(3 * 86_400 + 5), "3 days");
        assert_eq!(span(-90), "90 s");
    }
}
