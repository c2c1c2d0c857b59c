//! The little of Redis bedrud speaks itself (RESP over TCP): `AUTH`, `PING` for the embedded
//! redis-server's health, and `HGETALL` to read LiveKit's node registry in a cluster.

use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// Largest reply accepted (a node registry of a big cluster is a few kB).
const MAX_REPLY: usize = 16 * 1024 * 1024;

/// One Redis reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    Status(String),
    Error(String),
    Int(i64),
    Bulk(Option<Vec<u8>>),
    Array(Option<Vec<Reply>>),
}

/// A connection that has authenticated (when a password is given).
pub struct Conn {
    stream: BufReader<TcpStream>,
}

/// Every step of a call is bounded by `timeout`.
pub async fn connect(address: &str, password: Option<&str>, timeout: Duration) -> Result<Conn, String> {
    let stream = tokio::time::timeout(timeout, TcpStream::connect(address))
        .await
        .map_err(|_| format!("no connection to {address} within {} s", timeout.as_secs_f32()))?
        .map_err(|e| format!("connect {address}: {e}"))?;
    let mut c = Conn { stream: BufReader::new(stream) };
    if let Some(p) = password {
        match tokio::time::timeout(timeout, c.call(&[b"AUTH", p.as_bytes()])).await {
            Ok(Ok(Reply::Status(_))) => {}
            Ok(Ok(other)) => return Err(format!("AUTH refused: {}", describe(&other))),
            Ok(Err(e)) => return Err(e),
            Err(_) => return Err("no answer to AUTH".into()),
        }
    }
    Ok(c)
}

fn describe(r: &Reply) -> String {
    match r {
        Reply::Error(e) => e.clone(),
        other => format!("{other:?}"),
    }
}

impl Conn {
    /// Sends one command and reads its reply.
    pub async fn call(&mut self, args: &[&[u8]]) -> Result<Reply, String> {
        let mut out = format!("*{}\r\n", args.len()).into_bytes();
        for a in args {
            out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
            out.extend_from_slice(a);
            out.extend_from_slice(b"\r\n");
        }
        self.stream.get_mut().write_all(&out).await.map_err(|e| format!("send: {e}"))?;
        Box::pin(self.read()).await
    }

    async fn line(&mut self) -> Result<String, String> {
        let mut buf = Vec::new();
        let n = self.stream.read_until(b'\n', &mut buf).await.map_err(|e| format!("read: {e}"))?;
        if n == 0 {
            return Err("connection closed".into());
        }
        Ok(String::from_utf8_lossy(&buf).trim_end_matches(['\r', '\n']).to_string())
    }

    async fn read(&mut self) -> Result<Reply, String> {
        let line = self.line().await?;
        let (kind, rest) = line.split_at(line.len().min(1));
        let int = |s: &str| s.parse::<i64>().map_err(|_| format!("malformed reply {line:?}"));
        match kind {
            "+" => Ok(Reply::Status(rest.to_string())),
            "-" => Ok(Reply::Error(rest.to_string())),
            ":" => Ok(Reply::Int(int(rest)?)),
            "$" => {
                let len = int(rest)?;
                if len < 0 {
                    return Ok(Reply::Bulk(None));
                }
                let len = len as usize;
                if len > MAX_REPLY {
                    return Err(format!("reply of {len} bytes is too large"));
                }
                let mut data = vec![0u8; len + 2];
                self.stream.read_exact(&mut data).await.map_err(|e| format!("read: {e}"))?;
                data.truncate(len);
                Ok(Reply::Bulk(Some(data)))
            }
            "*" => {
                let n = int(rest)?;
                if n < 0 {
                    return Ok(Reply::Array(None));
                }
                let mut items = Vec::with_capacity((n as usize).min(1024));
                for _ in 0..n {
                    items.push(Box::pin(self.read()).await?);
                }
                Ok(Reply::Array(Some(items)))
            }
            _ => Err(format!("malformed reply {line:?}")),
        }
    }

    /// `HGETALL key` as (field, value) pairs.
    pub async fn hgetall(&mut self, key: &str) -> Result<Vec<(Vec<u8>, Vec<u8>)>, String> {
        match self.call(&[b"HGETALL", key.as_bytes()]).await? {
            Reply::Array(Some(items)) => {
                let mut out = Vec::with_capacity(items.len() / 2);
                let mut it = items.into_iter();
                while let (Some(Reply::Bulk(Some(k))), Some(Reply::Bulk(Some(v)))) = (it.next(), it.next()) {
                    out.push((k, v));
                }
                Ok(out)
            }
            other => Err(format!("HGETALL {key}: {}", describe(&other))),
        }
    }
}

/// `PING` (after `AUTH`): `Ok` on `PONG`.
pub async fn ping(address: &str, password: Option<&str>, timeout: Duration) -> Result<(), String> {
    let work = async {
        let mut c = connect(address, password, timeout).await?;
        match c.call(&[b"PING"]).await? {
            Reply::Status(s) if s == "PONG" => Ok(()),
            other => Err(format!("PING answered {}", describe(&other))),
        }
    };
    tokio::time::timeout(timeout, work).await.unwrap_or_else(|_| Err(format!("no answer within {} s", timeout.as_secs_f32())))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A one-shot server answering with `answer` whatever is asked.
    async fn serve(answer: &'static [u8]) -> String {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap().to_string();
        tokio::spawn(async move {
            let (mut s, _) = l.accept().await.unwrap();
            let mut buf = [0u8; 512];
            let _ = s.read(&mut buf).await;
            s.write_all(answer).await.unwrap();
        });
        addr
    }

    #[tokio::test]
    async fn parses_replies() {
        let addr = serve(b"*4\r\n$2\r\nk1\r\n$3\r\nv\r\n\r\n$2\r\nk2\r\n$-1\r\n").await;
        let mut c = connect(&addr, None, Duration::from_secs(2)).await.unwrap();
        // A value may hold CR LF; a nil value ends the pairs.
        assert_eq!(c.hgetall("h").await.unwrap(), vec![(b"k1".to_vec(), b"v\r\n".to_vec())]);
        let addr = serve(b"-NOAUTH Authentication required.\r\n").await;
        let e = ping(&addr, None, Duration::from_secs(2)).await.unwrap_err();
        assert!(e.contains("NOAUTH"), "{e}");
        let addr = serve(b"+PONG\r\n").await;
        ping(&addr, None, Duration::from_secs(2)).await.unwrap();
    }
}
