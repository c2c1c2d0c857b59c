//! Certificates made with `openssl` for the tests, and TLS clients that trust only them.
#![allow(dead_code)]

use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;

fn openssl(args: &[&str], dir: &Path) {
    let out = Command::new("openssl").args(args).current_dir(dir).output().expect("openssl must be installed for the TLS tests");
    assert!(out.status.success(), "openssl {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
}

/// A self-signed certificate (not a CA) for `host`, `localhost` and 127.0.0.1, valid 2 days.
pub fn self_signed(dir: &Path, host: &str) -> (PathBuf, PathBuf) {
    let (cert, key, cnf) = (dir.join("cert.pem"), dir.join("key.pem"), dir.join("openssl.cnf"));
    std::fs::write(
        &cnf,
        format!(
            "[req]\ndistinguished_name = dn\nx509_extensions = leaf\nprompt = no\n[dn]\nCN = {host}\n[leaf]\nbasicConstraints = critical,CA:FALSE\nkeyUsage = critical,digitalSignature\nextendedKeyUsage = serverAuth\nsubjectAltName = DNS:{host},DNS:localhost,IP:127.0.0.1\n"
        ),
    )
    .unwrap();
    openssl(
        &["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2", "-config", "openssl.cnf", "-keyout", "key.pem", "-out", "cert.pem"],
        dir,
    );
    (cert, key)
}

/// A certificate for `host` from a throwaway CA (`openssl ca`), valid from `start` to `end`
/// (`YYYYMMDDHHMMSSZ`): an expired one, or one that expires soon. Returns (cert, key).
pub fn ca_issued(dir: &Path, host: &str, start: &str, end: &str) -> (PathBuf, PathBuf) {
    ca_issued_with(dir, host, start, end, &[])
}

/// [`ca_issued`] with more `-addext` extensions in the request (e.g.
/// `extendedKeyUsage=clientAuth`). The CA's certificate is `dir/ca.pem`.
pub fn ca_issued_with(dir: &Path, host: &str, start: &str, end: &str, extensions: &[&str]) -> (PathBuf, PathBuf) {
    std::fs::write(dir.join("index.txt"), "").unwrap();
    std::fs::write(dir.join("serial"), "01\n").unwrap();
    std::fs::write(
        dir.join("ca.cnf"),
        "[ca]\ndefault_ca = ca\n[ca]\ndir = .\ndatabase = index.txt\nnew_certs_dir = .\nserial = serial\ndefault_md = sha256\npolicy = any\ncopy_extensions = copy\nunique_subject = no\n[any]\ncommonName = supplied\n",
    )
    .unwrap();
    let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
    let mut a = vec!["req", "-x509"];
    a.extend(ec);
    a.extend(["-days", "3650", "-subj", "/CN=bedrud test CA", "-keyout", "ca.key", "-out", "ca.pem"]);
    openssl(&a, dir);
    let san = format!("subjectAltName=DNS:{host}");
    let subj = format!("/CN={host}");
    let mut a = vec!["req", "-new"];
    a.extend(ec);
    a.extend(["-subj", &subj, "-addext", &san, "-keyout", "leaf.key", "-out", "leaf.csr"]);
    for e in extensions {
        a.extend(["-addext", e]);
    }
    openssl(&a, dir);
    openssl(
        &["ca", "-batch", "-config", "ca.cnf", "-cert", "ca.pem", "-keyfile", "ca.key", "-startdate", start, "-enddate", end, "-in", "leaf.csr", "-out", "leaf.pem", "-notext"],
        dir,
    );
    let key = dir.join("leaf.key");
    // bedrud refuses a private key other users can read.
    std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    (dir.join("leaf.pem"), key)
}

/// A rustls client trusting only the certificates in `roots` (PEM text).
pub fn client_config(roots: &str) -> rustls::ClientConfig {
    let mut store = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(roots.as_bytes()) {
        store.add(c.unwrap()).unwrap();
    }
    rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(store)
        .with_no_client_auth()
}

/// An HTTPS client that trusts only `roots` and finds `host` at 127.0.0.1:`port`.
pub fn https_client(roots: &str, host: &str, port: u16) -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .tls_backend_preconfigured(client_config(roots))
        .resolve(host, SocketAddr::from(([127, 0, 0, 1], port)))
        .no_proxy()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("https client")
}

/// A TLS handshake with 127.0.0.1:`port` as `host`, verified against `roots`: the server's leaf.
pub fn peer_certificate(roots: &str, host: &str, port: u16) -> Result<CertificateDer<'static>, String> {
    let name = rustls::pki_types::ServerName::try_from(host.to_string()).map_err(|e| e.to_string())?;
    let mut conn = rustls::ClientConnection::new(Arc::new(client_config(roots)), name).map_err(|e| e.to_string())?;
    let mut sock = TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
    sock.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    sock.set_write_timeout(Some(Duration::from_secs(10))).unwrap();
    while conn.is_handshaking() {
        conn.complete_io(&mut sock).map_err(|e| e.to_string())?;
    }
    conn.peer_certificates().and_then(|c| c.first().cloned()).map(|c| c.into_owned()).ok_or_else(|| "no certificate".into())
}
