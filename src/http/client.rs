//! The client's address behind trusted reverse proxies: only a request whose peer is listed in
//! `server.trustedProxies` has its address taken from `Forwarded` (RFC 7239) or
//! `X-Forwarded-For`, and then it is the rightmost hop that is not itself a trusted proxy, so a
//! client cannot choose its address by sending the header itself.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{Request, State};
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::Response;
use ipnet::IpNet;

use super::extract::ClientAddr;
use super::SharedState;

/// Replaces the peer address with the forwarded client's when the peer is a trusted proxy.
pub async fn forwarded_client(State(st): State<SharedState>, mut req: Request, next: Next) -> Response {
    let proxies = st.trusted_proxies();
    if !proxies.is_empty() {
        if let Some(ClientAddr(Some(peer))) = req.extensions().get::<ClientAddr>().copied() {
            let ip = client_ip(peer.ip(), req.headers(), &proxies);
            if ip != peer.ip() {
                req.extensions_mut().insert(ClientAddr(Some(SocketAddr::new(ip, 0))));
            }
        }
    }
    next.run(req).await
}

fn trusted(ip: IpAddr, proxies: &[IpNet]) -> bool {
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    };
    proxies.iter().any(|n| n.contains(&ip))
}

/// The client address of a request that arrived from `peer`.
pub fn client_ip(peer: IpAddr, headers: &HeaderMap, proxies: &[IpNet]) -> IpAddr {
    if !trusted(peer, proxies) {
        return peer;
    }
    let hops = forwarded_hops(headers);
    // Walk from the nearest hop outwards; the first one that is not our proxy is the client.
    let mut client = peer;
    for hop in hops.iter().rev() {
        match hop {
            Some(ip) => {
                client = *ip;
                if !trusted(*ip, proxies) {
                    return *ip;
                }
            }
            // An obfuscated or unparsable hop: stop at the last address we can vouch for.
            None => return client,
        }
    }
    client
}

/// Hops named by `Forwarded` (preferred) or else `X-Forwarded-For`, client first. `None` for a
/// hop that is not an IP address (`unknown`, an obfuscated identifier, garbage).
fn forwarded_hops(headers: &HeaderMap) -> Vec<Option<IpAddr>> {
    let forwarded: Vec<&str> = headers.get_all("forwarded").iter().filter_map(|v| v.to_str().ok()).collect();
    if !forwarded.is_empty() {
        let mut out = Vec::new();
        for element in forwarded.iter().flat_map(|v| v.split(',')) {
            let for_value = element.split(';').find_map(|pair| {
                let (k, v) = pair.split_once('=')?;
                k.trim().eq_ignore_ascii_case("for").then(|| v.trim().trim_matches('"'))
            });
            if let Some(v) = for_value {
                out.push(parse_node(v));
            }
        }
        return out;
    }
    headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|s| parse_node(s.trim()))
        .collect()
}

/// `192.0.2.1`, `192.0.2.1:4711`, `[2001:db8::1]`, `[2001:db8::1]:4711`, `2001:db8::1`.
fn parse_node(s: &str) -> Option<IpAddr> {
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Some(ip);
    }
    if let Some(rest) = s.strip_prefix('[') {
        return rest.split(']').next()?.parse().ok();
    }
    s.parse::<SocketAddr>().ok().map(|a| a.ip())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut m = HeaderMap::new();
        for (k, v) in pairs {
            m.append(*k, v.parse().unwrap());
        }
        m
    }

    fn nets(s: &[&str]) -> Vec<IpNet> {
        s.iter().map(|n| n.parse().unwrap()).collect()
    }

    #[test]
    fn untrusted_peer_is_the_client_whatever_it_says() {
        let peer: IpAddr = "203.0.113.9".parse().unwrap();
        let hd = h(&[("x-forwarded-for", "1.2.3.4")]);
        assert_eq!(client_ip(peer, &hd, &nets(&["10.0.0.0/8"])), peer);
        assert_eq!(client_ip(peer, &hd, &[]), peer);
    }

    #[test]
    fn rightmost_untrusted_hop_wins() {
        let proxy: IpAddr = "10.0.0.2".parse().unwrap();
        let p = nets(&["10.0.0.0/8"]);
        // The client spoofed 6.6.6.6; our proxy appended the real peer, 198.51.100.7.
        let hd = h(&[("x-forwarded-for", "6.6.6.6, 198.51.100.7")]);
        assert_eq!(client_ip(proxy, &hd, &p), "198.51.100.7".parse::<IpAddr>().unwrap());
        // Two of our proxies in a row.
        let hd = h(&[("x-forwarded-for", "198.51.100.7, 10.1.1.1")]);
        assert_eq!(client_ip(proxy, &hd, &p), "198.51.100.7".parse::<IpAddr>().unwrap());
        // Split over two header lines.
        let hd = h(&[("x-forwarded-for", "6.6.6.6"), ("x-forwarded-for", "198.51.100.8")]);
        assert_eq!(client_ip(proxy, &hd, &p), "198.51.100.8".parse::<IpAddr>().unwrap());
        // No header: the proxy itself.
        assert_eq!(client_ip(proxy, &HeaderMap::new(), &p), proxy);
        // Garbage stops the walk at the last trusted hop.
        let hd = h(&[("x-forwarded-for", "198.51.100.7, nonsense")]);
        assert_eq!(client_ip(proxy, &hd, &p), proxy);
    }

    #[test]
    fn forwarded_header_is_preferred() {
        let proxy: IpAddr = "127.0.0.3".parse().unwrap();
        let p = nets(&["127.0.0.3/32"]);
        let hd = h(&[
            ("forwarded", r#"for=6.6.6.6, for="[2001:db8::7]:4711";proto=https"#),
            ("x-forwarded-for", "9.9.9.9"),
        ]);
        assert_eq!(client_ip(proxy, &hd, &p), "2001:db8::7".parse::<IpAddr>().unwrap());
        let hd = h(&[("forwarded", "for=192.0.2.60:80;by=203.0.113.43")]);
        assert_eq!(client_ip(proxy, &hd, &p), "192.0.2.60".parse::<IpAddr>().unwrap());
        let hd = h(&[("forwarded", "for=unknown")]);
        assert_eq!(client_ip(proxy, &hd, &p), proxy);
    }
}
