//! Presigned S3 URLs (AWS Signature Version 4, query form) for recordings that egress workers
//! uploaded: bedrud hands a download a short-lived GET URL and deletes with a DELETE URL,
//! without an S3 SDK.

use std::time::Duration;

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use super::config::S3Config;

type HmacSha256 = Hmac<Sha256>;

/// Region used when the configuration leaves it empty (S3-compatible servers ignore it).
const DEFAULT_REGION: &str = "us-east-1";

/// The object key of a recording's file: `<prefix><room>/<file name>`.
pub fn object_key(cfg: &S3Config, room: &str, file_name: &str) -> String {
    format!("{}{room}/{file_name}", cfg.prefix)
}

fn region(cfg: &S3Config) -> &str {
    if cfg.region.is_empty() {
        DEFAULT_REGION
    } else {
        &cfg.region
    }
}

/// Scheme and host of the bucket's endpoint, and the path prefix of its objects.
fn base(cfg: &S3Config) -> (String, String, String) {
    let endpoint = cfg.endpoint.clone().unwrap_or_else(|| format!("https://s3.{}.amazonaws.com", region(cfg)));
    let (scheme, rest) = endpoint.split_once("://").unwrap_or(("https", endpoint.as_str()));
    let host = rest.trim_end_matches('/').to_string();
    if cfg.force_path_style {
        (scheme.to_string(), host, format!("/{}", cfg.bucket))
    } else {
        (scheme.to_string(), format!("{}.{host}", cfg.bucket), String::new())
    }
}

/// RFC 3986 encoding as SigV4 wants it; `/` kept when `keep_slash`.
fn encode(s: &str, keep_slash: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => out.push(b as char),
            b'/' if keep_slash => out.push('/'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

fn hmac(key: &[u8], data: &str) -> Vec<u8> {
    let mut m = HmacSha256::new_from_slice(key).expect("HMAC takes keys of any length");
    m.update(data.as_bytes());
    m.finalize().into_bytes().to_vec()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `20130524T000000Z` for a Unix time in seconds.
fn amz_date(unix: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp(unix).unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    format!("{:04}{:02}{:02}T{:02}{:02}{:02}Z", t.year(), u8::from(t.month()), t.day(), t.hour(), t.minute(), t.second())
}

/// The plain URL of `key` in the bucket.
pub fn object_url(cfg: &S3Config, key: &str) -> String {
    let (scheme, host, path_prefix) = base(cfg);
    format!("{scheme}://{host}{path_prefix}/{}", encode(key, true))
}

/// A URL that allows `method` on `key` for `expires`, signed at `now` (Unix seconds).
pub fn presign(cfg: &S3Config, method: &str, key: &str, expires: Duration, now: i64) -> String {
    let (scheme, host, path_prefix) = base(cfg);
    let date_time = amz_date(now);
    let date = &date_time[..8];
    let region = region(cfg);
    let scope = format!("{date}/{region}/s3/aws4_request");
    let uri = format!("{path_prefix}/{}", encode(key, true));
    let mut query = [
        ("X-Amz-Algorithm", "AWS4-HMAC-SHA256".to_string()),
        ("X-Amz-Credential", format!("{}/{scope}", cfg.access_key)),
        ("X-Amz-Date", date_time.clone()),
        ("X-Amz-Expires", expires.as_secs().to_string()),
        ("X-Amz-SignedHeaders", "host".to_string()),
    ]
    .map(|(k, v)| (encode(k, false), encode(&v, false)));
    query.sort();
    let query = query.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("&");
    let canonical = format!("{method}\n{uri}\n{query}\nhost:{host}\n\nhost\nUNSIGNED-PAYLOAD");
    let to_sign = format!("AWS4-HMAC-SHA256\n{date_time}\n{scope}\n{}", hex(&Sha256::digest(canonical.as_bytes())));
    let secret = cfg.secret.as_deref().unwrap_or("");
    let mut k = hmac(format!("AWS4{secret}").as_bytes(), date);
    for part in [region, "s3", "aws4_request"] {
        k = hmac(&k, part);
    }
    let signature = hex(&hmac(&k, &to_sign));
    format!("{scheme}://{host}{uri}?{query}&X-Amz-Signature={signature}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_aws_documentation_example() {
        // "Authenticating Requests: Using Query Parameters (AWS Signature Version 4)", the
        // example GET of examplebucket/test.txt.
        let cfg = S3Config {
            bucket: "examplebucket".into(),
            region: "us-east-1".into(),
            access_key: "AKIAIOSFODNN7EXAMPLE".into(),
            secret: Some("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY".into()),
            endpoint: Some("https://s3.amazonaws.com".into()),
            ..Default::default()
        };
        let url = presign(&cfg, "GET", "test.txt", Duration::from_secs(86400), 1369353600);
        assert_eq!(
            url,
            "https://examplebucket.s3.amazonaws.com/test.txt?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404"
        );
    }

    #[test]
    fn path_style_for_a_local_endpoint() {
        let cfg = S3Config {
            bucket: "rec".into(),
            access_key: "k".into(),
            secret: Some("s".into()),
            endpoint: Some("http://127.0.0.1:9000".into()),
            force_path_style: true,
            prefix: "recordings/".into(),
            ..Default::default()
        };
        let key = object_key(&cfg, "team sync", "rec_1.mp4");
        assert_eq!(object_url(&cfg, &key), "http://127.0.0.1:9000/rec/recordings/team%20sync/rec_1.mp4");
        let url = presign(&cfg, "GET", &key, Duration::from_secs(60), 0);
        assert!(url.starts_with("http://127.0.0.1:9000/rec/recordings/team%20sync/rec_1.mp4?X-Amz-Algorithm="), "{url}");
        assert!(url.contains("X-Amz-Date=19700101T000000Z"), "{url}");
    }
}
