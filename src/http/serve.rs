//! The accept loop: plain TCP or TLS (rustls, certificate reloadable on SIGHUP), HTTP/1.1 with a
//! header read timeout (which also ends idle keep-alive connections), caps on open connections
//! in total and per client address, the peer address passed to handlers, graceful shutdown that
//! lets requests in flight finish.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::path::Path;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

use super::extract::ClientAddr;

/// How long in-flight requests get to finish at shutdown.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// A TLS acceptor that a reload can swap.
#[derive(Clone)]
pub struct Tls(Arc<RwLock<TlsAcceptor>>);

impl Tls {
    pub fn load(cert: &Path, key: &Path) -> Result<Tls, String> {
        Ok(Tls(Arc::new(RwLock::new(acceptor(cert, key)?))))
    }

    /// A listener whose certificates come from `config` (ACME: a resolver that changes them).
    pub fn from_config(config: Arc<rustls::ServerConfig>) -> Tls {
        Tls(Arc::new(RwLock::new(TlsAcceptor::from(config))))
    }

    /// Re-reads certificate and key; on error the old ones stay.
    pub fn reload(&self, cert: &Path, key: &Path) -> Result<(), String> {
        let a = acceptor(cert, key)?;
        *self.0.write().unwrap_or_else(|e| e.into_inner()) = a;
        Ok(())
    }

    fn current(&self) -> TlsAcceptor {
        self.0.read().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

fn acceptor(cert: &Path, key: &Path) -> Result<TlsAcceptor, String> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| format!("cannot read certificate {}: {e}", cert.display()))?
        .collect::<Result<_, _>>()
        .map_err(|e| format!("bad certificate in {}: {e}", cert.display()))?;
    if certs.is_empty() {
        return Err(format!("no certificate found in {}", cert.display()));
    }
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| format!("cannot read private key {}: {e}", key.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| format!("certificate and key do not match or are unsupported: {e}"))?;
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(cfg)))
}

/// Limits on the connections of one listener.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Time to send request headers (and to finish a TLS handshake); the longest idle time of
    /// a keep-alive connection.
    pub header_timeout: Duration,
    pub max_connections: usize,
    pub max_per_address: usize,
}

impl Limits {
    pub fn from_config(c: &crate::config::ServerConfig) -> Self {
        Self {
            header_timeout: c.header_timeout,
            max_connections: c.max_connections,
            max_per_address: c.max_connections_per_address,
        }
    }
}

/// Open connections, in total and per client address. Shared by every listener of the daemon
/// so that metrics see one number.
#[derive(Default)]
pub struct Connections {
    open: AtomicUsize,
    refused: AtomicUsize,
    per_address: Mutex<HashMap<IpAddr, usize>>,
}

impl Connections {
    /// Connections open now.
    pub fn open(&self) -> usize {
        self.open.load(Ordering::Relaxed)
    }

    /// Connections closed at once because a cap was reached, since start.
    pub fn refused(&self) -> usize {
        self.refused.load(Ordering::Relaxed)
    }

    /// A slot for a new connection from `ip`, or `None` when a cap is reached.
    fn admit(self: &Arc<Self>, ip: IpAddr, limits: &Limits) -> Option<ConnSlot> {
        let mut per = self.per_address.lock().unwrap_or_else(|e| e.into_inner());
        let n = per.get(&ip).copied().unwrap_or(0);
        if n >= limits.max_per_address || self.open.load(Ordering::Relaxed) >= limits.max_connections {
            self.refused.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        per.insert(ip, n + 1);
        self.open.fetch_add(1, Ordering::Relaxed);
        Some(ConnSlot { conns: self.clone(), ip })
    }
}

/// Held for the life of a connection; frees its place when dropped.
struct ConnSlot {
    conns: Arc<Connections>,
    ip: IpAddr,
}

impl Drop for ConnSlot {
    fn drop(&mut self) {
        let mut per = self.conns.per_address.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = per.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                per.remove(&self.ip);
            }
        }
        self.conns.open.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Serves `app` on `listener` until `shutdown`, then drains.
pub async fn serve(
    listener: TcpListener,
    tls: Option<Tls>,
    app: Router,
    limits: Limits,
    conns: Arc<Connections>,
    shutdown: CancellationToken,
) {
    let graceful = GracefulShutdown::new();
    let mut last_refusal_log: Option<std::time::Instant> = None;
    loop {
        let (stream, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = shutdown.cancelled() => break,
        };
        let Some(slot) = conns.admit(peer.ip(), &limits) else {
            // Closing at once costs the least; say so in the log at most every 10 s.
            if last_refusal_log.is_none_or(|t| t.elapsed() > Duration::from_secs(10)) {
                tracing::warn!(peer = %peer, open = conns.open(), "connection refused: server.maxConnections or server.maxConnectionsPerAddress reached");
                last_refusal_log = Some(std::time::Instant::now());
            }
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        match &tls {
            None => spawn_conn(&graceful, stream, peer, app, limits, slot),
            Some(tls) => {
                let acceptor = tls.current();
                let watcher = graceful.watcher();
                tokio::spawn(async move {
                    let _slot = slot;
                    match tokio::time::timeout(limits.header_timeout, acceptor.accept(stream)).await {
                        // An ACME TLS-ALPN-01 validation only needs the handshake.
                        Ok(Ok(s)) if s.get_ref().1.alpn_protocol() == Some(crate::acme::ACME_TLS_ALPN) => {
                            tracing::debug!(peer = %peer, "answered an ACME tls-alpn-01 validation");
                        }
                        Ok(Ok(s)) => {
                            let conn = http1(s, peer, app, limits);
                            let _ = watcher.watch(conn).await;
                        }
                        Ok(Err(e)) => tracing::debug!(peer = %peer, error = %e, "TLS handshake failed"),
                        Err(_) => tracing::debug!(peer = %peer, "TLS handshake timed out"),
                    }
                });
            }
        }
    }
    drop(listener);
    if tokio::time::timeout(DRAIN_TIMEOUT, graceful.shutdown()).await.is_err() {
        tracing::warn!("some connections were still open after {DRAIN_TIMEOUT:?}; closing them");
    }
}

fn spawn_conn<S>(graceful: &GracefulShutdown, stream: S, peer: SocketAddr, app: Router, limits: Limits, slot: ConnSlot)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let conn = graceful.watch(http1(stream, peer, app, limits));
    tokio::spawn(async move {
        let _ = conn.await;
        drop(slot);
    });
}

fn http1<S>(
    stream: S,
    peer: SocketAddr,
    app: Router,
    limits: Limits,
) -> hyper::server::conn::http1::Connection<TokioIo<S>, impl hyper::service::Service<hyper::Request<Incoming>, Response = axum::response::Response, Error = std::convert::Infallible, Future = impl Send> + Send>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let svc = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
        req.extensions_mut().insert(ClientAddr(Some(peer)));
        app.clone().oneshot(req.map(axum::body::Body::new))
    });
    hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .keep_alive(true)
        .serve_connection(TokioIo::new(stream), svc)
}
