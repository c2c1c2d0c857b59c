//! `node-ip`: the address LiveKit announces to clients, where it came from, and whether clients
//! elsewhere can use it; with `use_external_ip`, whether the STUN servers LiveKit will ask can be
//! reached at all (LiveKit itself waits about 50 s and then exits).

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use serde_norway::Value;

use super::{rows, Ctx, Finding};
use crate::livekit::nodeip::{self, NodeIpSource};

const CHECK: &str = "node-ip";
/// LiveKit's STUN servers when `rtc.stun_servers` is not set.
pub const DEFAULT_STUN: [&str; 3] = ["global.stun.twilio.com:3478", "stun.l.google.com:19302", "stun1.l.google.com:19302"];
const STUN_TIMEOUT: Duration = Duration::from_secs(3);

/// Private, shared (CGNAT) or link-local: not reachable from the internet.
pub fn is_private(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v) => v.is_private() || v.is_link_local() || (v.octets()[0] == 100 && (64..128).contains(&v.octets()[1])),
        IpAddr::V6(v) => (v.segments()[0] & 0xfe00) == 0xfc00 || (v.segments()[0] & 0xffc0) == 0xfe80,
    }
}

pub async fn node_ip(ctx: &Ctx) -> Vec<Finding> {
    if !ctx.embedded() {
        return Vec::new();
    }
    let c = &ctx.config;
    // A static config decides itself.
    let (ip, source, external, stun) = if let Some(path) = &c.livekit.config_path {
        let doc: Value = std::fs::read_to_string(path).ok().and_then(|t| serde_norway::from_str(&t).ok()).unwrap_or(Value::Null);
        let rtc = doc.get("rtc");
        let ip = rtc.and_then(|r| r.get("node_ip")).and_then(Value::as_str).and_then(|s| s.parse::<IpAddr>().ok());
        let external = rtc.and_then(|r| r.get("use_external_ip")).and_then(Value::as_bool).unwrap_or(false);
        let stun: Vec<String> = rtc
            .and_then(|r| r.get("stun_servers"))
            .and_then(Value::as_sequence)
            .map(|s| s.iter().filter_map(Value::as_str).map(str::to_string).collect())
            .unwrap_or_default();
        (ip, format!("rtc.node_ip in {}", path.display()), external, stun)
    } else {
        match nodeip::resolve(c) {
            Ok(n) => {
                let src = match n.source {
                    NodeIpSource::Configured => "livekit.nodeIP".to_string(),
                    NodeIpSource::ServerHost => "server.host".to_string(),
                    NodeIpSource::OutboundRoute => "the outbound route".to_string(),
                    NodeIpSource::Fallback => "fallback: no outbound route".to_string(),
                };
                (Some(n.ip), src, c.livekit.use_external_ip, Vec::new())
            }
            Err(e) => return vec![Finding::fail(CHECK, e.to_string()).fix("set livekit.nodeIP to an IP address").row(rows::NO_MEDIA)],
        }
    };
    let mut out = Vec::new();
    match ip {
        Some(ip) if ip.is_loopback() || ip.is_unspecified() => out.push(
            Finding::warn(CHECK, format!("{ip} (from {source}) is loopback: only this host reaches LiveKit's media; participants elsewhere join but get no audio/video"))
                .fix("set livekit.nodeIP to the address clients reach this server at")
                .row(rows::NO_MEDIA),
        ),
        Some(ip) if is_private(ip) => out.push(
            Finding::warn(CHECK, format!("{ip} (from {source}) is a private address: clients outside this network (behind NAT) reach media only through TURN, or not at all"))
                .fix("for clients on the internet set livekit.nodeIP to the public IP and forward the UDP ports to this host; on a LAN-only install this is right")
                .row(rows::RELAY),
        ),
        Some(ip) => out.push(Finding::ok(CHECK, format!("{ip} (from {source})"))),
        None if !external => out.push(Finding::ok(CHECK, format!("not set in {source}: LiveKit picks one of this host's addresses"))),
        None => {}
    }
    if external {
        let servers: Vec<String> = if stun.is_empty() { DEFAULT_STUN.iter().map(|s| s.to_string()).collect() } else { stun };
        out.push(match stun_probe(&servers).await {
            Ok((server, seen)) => Finding::ok(CHECK, format!("use_external_ip: STUN server {server} sees this host as {seen}")),
            Err(why) => Finding::fail(CHECK, format!("use_external_ip is on but no STUN server answers ({why}): LiveKit waits ~50 s, then exits with `could not resolve external IP`"))
                .fix("set livekit.nodeIP (rtc.node_ip) to this server's address and turn useExternalIP (use_external_ip) off")
                .row(rows::EXTERNAL_IP),
        });
    }
    out
}

/// Asks each STUN server for this host's address (a binding request); the first answer wins.
async fn stun_probe(servers: &[String]) -> Result<(String, IpAddr), String> {
    let mut why = Vec::new();
    for s in servers {
        let addrs: Vec<SocketAddr> = match tokio::time::timeout(STUN_TIMEOUT, tokio::net::lookup_host(s.as_str())).await {
            Ok(Ok(a)) => a.collect(),
            Ok(Err(e)) => {
                why.push(format!("{s}: cannot resolve: {e}"));
                continue;
            }
            Err(_) => {
                why.push(format!("{s}: DNS did not answer"));
                continue;
            }
        };
        let Some(addr) = addrs.iter().find(|a| a.is_ipv4()).or(addrs.first()).copied() else {
            why.push(format!("{s}: no address"));
            continue;
        };
        match binding(addr).await {
            Ok(ip) => return Ok((s.clone(), ip)),
            Err(e) => why.push(format!("{s}: {e}")),
        }
    }
    Err(why.join("; "))
}

/// One STUN binding request (RFC 5389) and the XOR-MAPPED-ADDRESS of the answer.
async fn binding(server: SocketAddr) -> Result<IpAddr, String> {
    let bind: SocketAddr = if server.is_ipv4() { "0.0.0.0:0".parse().unwrap_or(server) } else { "[::]:0".parse().unwrap_or(server) };
    let sock = tokio::net::UdpSocket::bind(bind).await.map_err(|e| e.to_string())?;
    let id: [u8; 12] = rand::random();
    let mut req = vec![0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xa4, 0x42];
    req.extend_from_slice(&id);
    sock.send_to(&req, server).await.map_err(|e| e.to_string())?;
    let mut buf = [0u8; 512];
    let n = match tokio::time::timeout(STUN_TIMEOUT, sock.recv(&mut buf)).await {
        Ok(Ok(n)) => n,
        Ok(Err(e)) => return Err(e.to_string()),
        Err(_) => return Err("no answer within 3 s".into()),
    };
    parse_binding(&buf[..n], &id).ok_or_else(|| "not a STUN answer".into())
}

fn parse_binding(b: &[u8], id: &[u8; 12]) -> Option<IpAddr> {
    if b.len() < 20 || b[0..2] != [0x01, 0x01] || b[4..8] != [0x21, 0x12, 0xa4, 0x42] || &b[8..20] != id {
        return None;
    }
    let mut i = 20;
    while i + 4 <= b.len() {
        let kind = u16::from_be_bytes([b[i], b[i + 1]]);
        let len = usize::from(u16::from_be_bytes([b[i + 2], b[i + 3]]));
        let v = b.get(i + 4..i + 4 + len)?;
        if kind == 0x0020 && v.len() >= 8 {
            return match v[1] {
                0x01 => Some(IpAddr::from([v[4] ^ 0x21, v[5] ^ 0x12, v[6] ^ 0xa4, v[7] ^ 0x42])),
                0x02 if v.len() >= 20 => {
                    let mut a = [0u8; 16];
                    let key: Vec<u8> = [0x21, 0x12, 0xa4, 0x42].iter().chain(id.iter()).copied().collect();
                    for k in 0..16 {
                        a[k] = v[4 + k] ^ key[k];
                    }
                    Some(IpAddr::from(a))
                }
                _ => None,
            };
        }
        i += 4 + len.div_ceil(4) * 4;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_ranges() {
        for p in ["10.1.2.3", "172.16.0.1", "192.168.1.5", "100.64.0.1", "169.254.1.1", "fd00::1", "fe80::1"] {
            assert!(is_private(p.parse().unwrap()), "{p}");
        }
        for p in ["203.0.113.7", "8.8.8.8", "100.128.0.1", "2001:db8::1"] {
            assert!(!is_private(p.parse().unwrap()), "{p}");
        }
    }

    #[test]
    fn stun_answer() {
        let id = [9u8; 12];
        let mut b = vec![0x01, 0x01, 0x00, 0x0c, 0x21, 0x12, 0xa4, 0x42];
        b.extend_from_slice(&id);
        // XOR-MAPPED-ADDRESS 203.0.113.7:1234
        b.extend_from_slice(&[0x00, 0x20, 0x00, 0x08, 0x00, 0x01, 0x04 ^ 0x21, 0xd2 ^ 0x12, 203 ^ 0x21, 0 ^ 0x12, 113 ^ 0xa4, 7 ^ 0x42]);
        assert_eq!(parse_binding(&b, &id), Some("203.0.113.7".parse().unwrap()));
        assert_eq!(parse_binding(&b, &[0u8; 12]), None);
    }
}
