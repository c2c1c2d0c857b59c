//! The IP address LiveKit advertises in its ICE candidates (`rtc.node_ip`).
//!
//! Resolved locally, in order: `livekit.nodeIP`, `server.host` when it is an IP, the source
//! address of the outbound route, and `127.0.0.1` as the last resort. LiveKit's own
//! `use_external_ip` asks STUN servers on the internet instead, which is slow to fail offline.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};

use crate::config::Config;
use crate::supervise::Error as SupervisorError;

/// Which rule chose the node IP (for the log line and status).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeIpSource {
    /// `livekit.nodeIP`.
    Configured,
    /// `server.host`, which is an IP address.
    ServerHost,
    /// Source address of the route towards the internet.
    OutboundRoute,
    /// Nothing found: loopback, reachable from this host only.
    Fallback,
}

impl fmt::Display for NodeIpSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Configured => "livekit.nodeIP",
            Self::ServerHost => "server.host",
            Self::OutboundRoute => "outbound route",
            Self::Fallback => "fallback",
        })
    }
}

/// The resolved node IP and the rule that chose it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeIp {
    pub ip: IpAddr,
    pub source: NodeIpSource,
    /// Set when the result probably is not what the operator wants.
    pub warning: Option<String>,
}

/// Address family asked of the route lookup.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    V4,
    V6,
}

/// Resolves the node IP for `config` using the host's routing table.
pub fn resolve(config: &Config) -> Result<NodeIp, SupervisorError> {
    resolve_with(config.livekit.node_ip.as_deref(), config.server.host.as_deref(), outbound_route_ip)
}

/// The resolution order, with the route lookup injected (tests pass a fake one).
pub fn resolve_with(
    node_ip: Option<&str>,
    server_host: Option<&str>,
    route: impl Fn(Family) -> Option<IpAddr>,
) -> Result<NodeIp, SupervisorError> {
    if let Some(raw) = node_ip.map(str::trim).filter(|s| !s.is_empty()) {
        let ip = parse_ip(raw).ok_or_else(|| {
            SupervisorError::Config(format!(
                "livekit.nodeIP: invalid value {raw:?}: not an IP address (LiveKit needs the address clients reach it at, e.g. 203.0.113.7)"
            ))
        })?;
        return Ok(NodeIp { ip, source: NodeIpSource::Configured, warning: None });
    }
    if let Some(ip) = server_host.and_then(parse_ip) {
        return Ok(NodeIp { ip, source: NodeIpSource::ServerHost, warning: None });
    }
    // IPv4 first: TURN's relay and most clients need one.
    for family in [Family::V4, Family::V6] {
        if let Some(ip) = route(family).filter(|ip| !ip.is_unspecified()) {
            let warning = ip.is_loopback().then(|| {
                format!("node IP {ip} (outbound route) is loopback: only this host can reach LiveKit; set livekit.nodeIP")
            });
            return Ok(NodeIp { ip, source: NodeIpSource::OutboundRoute, warning });
        }
    }
    let ip = IpAddr::V4(Ipv4Addr::LOCALHOST);
    Ok(NodeIp {
        ip,
        source: NodeIpSource::Fallback,
        warning: Some(format!(
            "no outbound route found; LiveKit advertises {ip}, which only this host can reach: set livekit.nodeIP to the address clients use"
        )),
    })
}

/// `203.0.113.7`, `2001:db8::1` or `[2001:db8::1]`.
fn parse_ip(s: &str) -> Option<IpAddr> {
    let s = s.trim();
    let s = s.strip_prefix('[').and_then(|s| s.strip_suffix(']')).unwrap_or(s);
    s.parse().ok()
}

/// Local address the kernel would use to reach a public address. `connect()` on a UDP socket
/// only selects a route: no packet is sent.
pub fn outbound_route_ip(family: Family) -> Option<IpAddr> {
    let (bind, target): (SocketAddr, SocketAddr) = match family {
        Family::V4 => (
            (Ipv4Addr::UNSPECIFIED, 0).into(),
            (Ipv4Addr::new(1, 1, 1, 1), 53).into(),
        ),
        Family::V6 => (
            (Ipv6Addr::UNSPECIFIED, 0).into(),
            (Ipv6Addr::new(0x2001, 0x4860, 0x4860, 0, 0, 0, 0, 0x8888), 53).into(),
        ),
    };
    let sock = UdpSocket::bind(bind).ok()?;
    sock.connect(target).ok()?;
    let ip = sock.local_addr().ok()?.ip();
    (!ip.is_unspecified()).then_some(ip)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_route(_: Family) -> Option<IpAddr> {
        None
    }

    fn routes(f: Family) -> Option<IpAddr> {
        match f {
            Family::V4 => Some("192.0.2.10".parse().unwrap()),
            Family::V6 => Some("2001:db8::10".parse().unwrap()),
        }
    }

    #[test]
    fn configured_wins() {
        let n = resolve_with(Some("203.0.113.7"), Some("198.51.100.1"), routes).unwrap();
        assert_eq!((n.ip.to_string().as_str(), n.source), ("203.0.113.7", NodeIpSource::Configured));
        let n = resolve_with(Some("[2001:db8::7]"), None, routes).unwrap();
        assert_eq!(n.ip, "2001:db8::7".parse::<IpAddr>().unwrap());
        let e = resolve_with(Some("meet.example.com"), None, routes).unwrap_err();
        assert!(e.to_string().contains("livekit.nodeIP"), "{e}");
    }

    #[test]
    fn server_host_when_ip() {
        let n = resolve_with(None, Some("198.51.100.1"), routes).unwrap();
        assert_eq!((n.ip.to_string().as_str(), n.source), ("198.51.100.1", NodeIpSource::ServerHost));
        let n = resolve_with(Some("  "), Some("[2001:db8::1]"), routes).unwrap();
        assert_eq!(n.source, NodeIpSource::ServerHost);
        // A DNS name is not used: the route decides.
        let n = resolve_with(None, Some("meet.example.com"), routes).unwrap();
        assert_eq!((n.ip.to_string().as_str(), n.source), ("192.0.2.10", NodeIpSource::OutboundRoute));
    }

    #[test]
    fn route_prefers_v4_then_v6() {
        let v6_only = |f: Family| (f == Family::V6).then(|| "2001:db8::10".parse().unwrap());
        let n = resolve_with(None, None, v6_only).unwrap();
        assert_eq!((n.ip.to_string().as_str(), n.source), ("2001:db8::10", NodeIpSource::OutboundRoute));
        assert!(n.warning.is_none());
    }

    #[test]
    fn fallback_is_loopback_with_warning() {
        let n = resolve_with(None, None, no_route).unwrap();
        assert_eq!(n.ip, IpAddr::V4(Ipv4Addr::LOCALHOST));
        assert_eq!(n.source, NodeIpSource::Fallback);
        assert!(n.warning.as_deref().unwrap_or("").contains("livekit.nodeIP"));
        let unspecified = |_: Family| Some(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        assert_eq!(resolve_with(None, None, unspecified).unwrap().source, NodeIpSource::Fallback);
    }

    #[test]
    fn real_route_lookup_does_not_fail() {
        // Whatever the host has, the lookup answers without panicking or sending anything.
        let _ = outbound_route_ip(Family::V4);
        let _ = outbound_route_ip(Family::V6);
        assert!(resolve(&Config::default()).is_ok());
    }
}
