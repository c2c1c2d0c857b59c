//! `ports`: every port bedrud and LiveKit will listen on is free, or held by bedrud's own
//! process or its livekit-server child; another holder is named with its pid and command line
//! (read from `/proc`, so as far as this user may see).

use std::collections::{HashMap, HashSet};

use super::{rows, Ctx, Finding};
use crate::livekit::configgen::{self, GenInput, PortUse, Proto, NEWEST_KNOWN};
use crate::livekit::{nodeip, ApiKeys};

const CHECK: &str = "ports";

/// A listening TCP socket or a bound UDP socket of this network namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Sock {
    proto: Proto,
    port: u16,
    inode: u64,
}

fn sockets() -> Vec<Sock> {
    let mut out = Vec::new();
    for (file, proto) in [
        ("/proc/net/tcp", Proto::Tcp),
        ("/proc/net/tcp6", Proto::Tcp),
        ("/proc/net/udp", Proto::Udp),
        ("/proc/net/udp6", Proto::Udp),
    ] {
        let Ok(text) = std::fs::read_to_string(file) else { continue };
        out.extend(parse_net(&text, proto));
    }
    out
}

/// Rows of `/proc/net/{tcp,udp}[6]`: `sl local rem st ... inode`; TCP only in LISTEN (0A).
fn parse_net(text: &str, proto: Proto) -> Vec<Sock> {
    let mut out = Vec::new();
    for line in text.lines().skip(1) {
        let cols: Vec<&str> = line.split_whitespace().collect();
        if cols.len() < 10 || (proto == Proto::Tcp && cols[3] != "0A") {
            continue;
        }
        let Some(port) = cols[1].rsplit(':').next().and_then(|p| u16::from_str_radix(p, 16).ok()) else { continue };
        let Ok(inode) = cols[9].parse::<u64>() else { continue };
        if inode != 0 {
            out.push(Sock { proto, port, inode });
        }
    }
    out
}

/// Which visible process holds each socket inode.
fn owners(inodes: &HashSet<u64>) -> HashMap<u64, u32> {
    let mut out = HashMap::new();
    if inodes.is_empty() {
        return out;
    }
    let Ok(procs) = std::fs::read_dir("/proc") else { return out };
    for p in procs.flatten() {
        let Ok(pid) = p.file_name().to_string_lossy().parse::<u32>() else { continue };
        let Ok(fds) = std::fs::read_dir(p.path().join("fd")) else { continue };
        for fd in fds.flatten() {
            let Ok(target) = std::fs::read_link(fd.path()) else { continue };
            let t = target.to_string_lossy();
            if let Some(n) = t.strip_prefix("socket:[").and_then(|r| r.strip_suffix(']')).and_then(|n| n.parse::<u64>().ok()) {
                if inodes.contains(&n) {
                    out.entry(n).or_insert(pid);
                }
            }
        }
    }
    out
}

/// `pid N (command line)`.
pub fn describe(pid: u32) -> String {
    let cmd = std::fs::read(format!("/proc/{pid}/cmdline"))
        .ok()
        .map(|b| String::from_utf8_lossy(&b).split('\0').filter(|s| !s.is_empty()).collect::<Vec<_>>().join(" "))
        .map(|c| c.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|s| !s.is_empty())
        .or_else(|| std::fs::read_to_string(format!("/proc/{pid}/comm")).ok().map(|s| s.trim().to_string()));
    match cmd {
        Some(mut c) => {
            if c.len() > 120 {
                let mut cut = 117;
                while !c.is_char_boundary(cut) {
                    cut -= 1;
                }
                c.truncate(cut);
                c.push_str("...");
            }
            format!("pid {pid} ({c})")
        }
        None => format!("pid {pid}"),
    }
}

/// Whether `pid` is a bedrud process or a child of one.
fn is_bedrud(pid: u32) -> bool {
    let exe_is = |p: u32| {
        std::fs::read_link(format!("/proc/{p}/exe")).ok().and_then(|e| e.file_name().map(|n| n.to_string_lossy() == "bedrud")).unwrap_or(false)
    };
    let parent = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rsplit_once(')').and_then(|(_, rest)| rest.split_whitespace().nth(1)?.parse::<u32>().ok()));
    exe_is(pid) || parent.is_some_and(exe_is)
}

/// The ports of this configuration, and a UDP range when one is set: (key, first, last).
fn wanted(ctx: &Ctx) -> (Vec<PortUse>, Option<(String, u16, u16)>) {
    let c = &ctx.config;
    let mut ports = vec![PortUse { port: c.server.port, proto: Proto::Tcp, key: "server.port".into() }];
    if let Some(a) = c.server.acme.as_ref().filter(|a| a.challenge == "http-01") {
        ports.push(PortUse { port: a.http_port, proto: Proto::Tcp, key: "server.acme.httpPort".into() });
    }
    if !ctx.embedded() {
        return (ports, None);
    }
    if let Some(path) = &c.livekit.config_path {
        if let Ok(info) = configgen::read_static(path) {
            ports.extend(info.ports);
        }
        let range = std::fs::read_to_string(path).ok().and_then(|t| serde_norway::from_str::<serde_norway::Value>(&t).ok()).and_then(|d| {
            let r = d.get("rtc")?;
            let a = u16::try_from(r.get("port_range_start")?.as_u64()?).ok()?;
            let b = u16::try_from(r.get("port_range_end")?.as_u64()?).ok()?;
            Some((format!("rtc.port_range_start-end in {}", path.display()), a, b))
        });
        return (ports, range);
    }
    let node = nodeip::resolve(c).map(|n| n.ip).unwrap_or(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST));
    let keys = ApiKeys { key: "doctor".into(), secret: "d".repeat(32) };
    if let Ok(g) = configgen::generate(&GenInput {
        config: c,
        keys: &keys,
        version: ctx.version.unwrap_or(NEWEST_KNOWN),
        webhook_url: "http://127.0.0.1/",
        node_ip: node,
        redis: None,
    }) {
        ports.extend(g.ports);
    }
    let range = match (c.livekit.udp_port_range_start, c.livekit.udp_port_range_end) {
        (Some(a), Some(b)) => Some(("livekit.udpPortRangeStart-End".to_string(), a, b)),
        _ => None,
    };
    (ports, range)
}

/// Who holds a port, as the report says it, and whether that is bedrud's own.
enum Holder {
    Ours(String),
    Other(String),
    OtherBedrud(String),
    Hidden,
}

fn holder(ctx: &Ctx, pid: Option<u32>) -> Holder {
    let Some(pid) = pid else { return Holder::Hidden };
    if ctx.live.is_some() && pid == std::process::id() {
        return Holder::Ours(format!("bedrud (pid {pid})"));
    }
    if ctx.child_pid() == Some(pid) {
        return Holder::Ours(format!("bedrud's livekit-server (pid {pid})"));
    }
    if ctx.live.is_none() && is_bedrud(pid) {
        return Holder::OtherBedrud(describe(pid));
    }
    Holder::Other(describe(pid))
}

pub fn ports(ctx: &Ctx) -> Vec<Finding> {
    let (ports, range) = wanted(ctx);
    let socks = sockets();
    let inodes: HashSet<u64> = socks.iter().map(|s| s.inode).collect();
    let owner = owners(&inodes);
    let mut out = Vec::new();
    let mut fine = Vec::new();
    let sock_db = crate::control::socket_path(&ctx.config.database_path());
    let problem = |what: String, key: &str, h: Holder, out: &mut Vec<Finding>| match h {
        Holder::Ours(_) => {}
        Holder::Other(d) => out.push(
            Finding::fail(CHECK, format!("{what} is in use by {d}"))
                .fix(format!("stop that process, or set {key} to a free port"))
                .row(rows::PORT_IN_USE),
        ),
        Holder::OtherBedrud(d) => out.push(
            Finding::warn(CHECK, format!("{what} is held by a running bedrud, {d}, that doctor could not ask through {}", sock_db.display()))
                .fix("run doctor as root or as the service user (runuser -u bedrud -- bedrud doctor) to check the running daemon")
                .row(rows::PORT_IN_USE),
        ),
        Holder::Hidden => out.push(
            Finding::fail(CHECK, format!("{what} is in use by a process this user cannot see"))
                .fix(format!("run doctor as root to name it; stop it, or set {key} to a free port"))
                .row(rows::PORT_IN_USE),
        ),
    };
    let mut seen = HashSet::new();
    for p in &ports {
        if !seen.insert((p.port, p.proto == Proto::Tcp)) {
            continue;
        }
        let what = format!("{} {} ({})", p.proto, p.port, p.key);
        let held: Vec<&Sock> = socks.iter().filter(|s| s.port == p.port && s.proto == p.proto).collect();
        let Some(first) = held.first() else {
            fine.push(format!("{} {} free", p.proto, p.port));
            continue;
        };
        match holder(ctx, owner.get(&first.inode).copied()) {
            Holder::Ours(who) => fine.push(format!("{} {} held by {who}", p.proto, p.port)),
            h => problem(what, &p.key, h, &mut out),
        }
    }
    if let Some((key, a, b)) = range {
        let mut taken: Vec<(u16, Option<u32>)> = socks
            .iter()
            .filter(|s| s.proto == Proto::Udp && (a..=b).contains(&s.port))
            .map(|s| (s.port, owner.get(&s.inode).copied()))
            .filter(|(_, pid)| !matches!(holder(ctx, *pid), Holder::Ours(_)))
            .collect();
        taken.sort();
        taken.dedup();
        if let Some((port, pid)) = taken.first().copied() {
            let n = taken.len();
            let what = format!("UDP {port} in the media range {a}-{b} ({key}){}", if n > 1 { format!(" and {} more", n - 1) } else { String::new() });
            problem(what, &key, holder(ctx, pid), &mut out);
        } else {
            fine.push(format!("UDP {a}-{b} free"));
        }
    }
    if !fine.is_empty() {
        out.insert(0, Finding::ok(CHECK, fine.join(", ")));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_net_rows() {
        let tcp = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n   0: 0100007F:1ED4 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4242 1 0000000000000000 100 0 0 10 0\n   1: 0100007F:9C40 0100007F:1ED4 01 00000000:00000000 00:00000000 00000000     0        0 4243 1\n";
        assert_eq!(parse_net(tcp, Proto::Tcp), vec![Sock { proto: Proto::Tcp, port: 7892, inode: 4242 }]);
        let udp = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops\n  5: 00000000:1ECE 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 99 2 0 0\n";
        assert_eq!(parse_net(udp, Proto::Udp), vec![Sock { proto: Proto::Udp, port: 7886, inode: 99 }]);
    }

    #[test]
    fn finds_this_process_as_holder() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let s = sockets();
        let mine = s.iter().find(|x| x.port == port && x.proto == Proto::Tcp).expect("listener in /proc/net/tcp");
        let owner = owners(&HashSet::from([mine.inode]));
        assert_eq!(owner.get(&mine.inode), Some(&std::process::id()));
        assert!(describe(std::process::id()).starts_with(&format!("pid {} (", std::process::id())));
    }
}
