//! Finding the `livekit-server` executable and asking it for its version.

use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::str::FromStr;
use std::time::Duration;

use crate::config::Config;
use crate::supervise::{self, Candidate};

type SupervisorError = supervise::Error;

/// Where the bedrud package installs its own livekit-server.
pub const PACKAGED_PATH: &str = "/usr/lib/bedrud/livekit-server";
/// Environment variable naming the executable (also read by the config as `livekit.binary`).
pub const ENV_BINARY: &str = "BEDRUD_LIVEKIT_BINARY";
/// File name looked for on `PATH`.
pub const BINARY_NAME: &str = "livekit-server";

const VERSION_TIMEOUT: Duration = Duration::from_secs(10);

/// A livekit-server release, as printed by `livekit-server --version`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Version {
    pub major: u32,
    pub minor: u32,
    pub patch: u32,
}

impl Version {
    pub const fn new(major: u32, minor: u32, patch: u32) -> Self {
        Self { major, minor, patch }
    }

    /// Parses `1.13.5`, `v1.13.5`, `1.13.5-rc1` or the whole `livekit-server version 1.13.5` line.
    pub fn parse(text: &str) -> Option<Self> {
        let word = text.split_whitespace().last()?;
        let word = word.strip_prefix('v').unwrap_or(word);
        // Pre-release or build suffixes (`-rc1`, `+dirty`) do not change the key set.
        let core = word.split(['-', '+']).next()?;
        let mut parts = core.split('.');
        let major = parts.next()?.parse().ok()?;
        let minor = parts.next()?.parse().ok()?;
        let patch = parts.next().map_or(Some(0), |p| p.parse().ok())?;
        if parts.next().is_some() {
            return None;
        }
        Some(Self { major, minor, patch })
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

impl FromStr for Version {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s).ok_or_else(|| format!("not a livekit-server version: {s:?}"))
    }
}

/// Finds livekit-server: `livekit.binary`, then `$BEDRUD_LIVEKIT_BINARY`, then the packaged
/// `/usr/lib/bedrud/livekit-server`, then `livekit-server` on `PATH`.
pub fn find(config: &Config) -> Result<PathBuf, SupervisorError> {
    find_in(
        config.livekit.binary.as_deref(),
        std::env::var_os(ENV_BINARY),
        Path::new(PACKAGED_PATH),
        std::env::var_os("PATH"),
    )
}

/// [`find`] with every input explicit, for tests.
pub fn find_in(
    configured: Option<&Path>,
    env: Option<OsString>,
    packaged: &Path,
    path_var: Option<OsString>,
) -> Result<PathBuf, SupervisorError> {
    let mut candidates = Vec::new();
    if let Some(p) = configured {
        candidates.push(Candidate { place: "livekit.binary".into(), path: p.to_path_buf() });
    }
    if let Some(p) = env.filter(|p| !p.is_empty()) {
        candidates.push(Candidate { place: format!("${ENV_BINARY}"), path: PathBuf::from(p) });
    }
    candidates.push(Candidate { place: "bedrud package".into(), path: packaged.to_path_buf() });
    supervise::find(
        BINARY_NAME,
        candidates,
        path_var,
        &format!("run scripts/install-livekit (development), install the bedrud package (it ships {PACKAGED_PATH}), or set livekit.binary to the executable"),
    )
}

/// [`version`], remembered in the file `cache` under the binary's identity (path, device,
/// inode, size, modification and change times), so that restarting the same binary does not
/// run it again: `livekit-server --version` takes 50-100 ms, most of bedrud's own share of the
/// time to READY. Any change to the file changes its change time, so a replaced or rebuilt
/// binary is asked again. A cache that cannot be read or written is ignored.
pub async fn version_cached(path: &Path, cache: &Path) -> Result<Version, SupervisorError> {
    let id = identity(path);
    if let Some(id) = &id {
        let remembered = std::fs::read_to_string(cache).ok().and_then(|text| {
            let rest = text.strip_prefix(id.as_str())?.strip_prefix('\t')?;
            Version::parse(rest.trim())
        });
        if let Some(v) = remembered {
            return Ok(v);
        }
    }
    let v = version(path).await?;
    if let Some(id) = id {
        let _ = std::fs::write(cache, format!("{id}\t{v}\n"));
    }
    Ok(v)
}

fn identity(path: &Path) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let path = std::fs::canonicalize(path).ok()?;
    let m = std::fs::metadata(&path).ok()?;
    Some(format!(
        "{} {}:{} {} {}.{} {}.{}",
        path.display(),
        m.dev(),
        m.ino(),
        m.size(),
        m.mtime(),
        m.mtime_nsec(),
        m.ctime(),
        m.ctime_nsec()
    ))
}

/// Runs `livekit-server --version` (at most 10 s) and parses its answer.
pub async fn version(path: &Path) -> Result<Version, SupervisorError> {
    let err = |message: String| SupervisorError::Version {
        path: path.to_path_buf(),
        message,
        fix: format!("check that it is livekit-server (`{} --version` prints `livekit-server version X.Y.Z`), or reinstall it", path.display()),
    };
    let mut cmd = tokio::process::Command::new(path);
    cmd.arg("--version")
        .env_clear()
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    if let Some(p) = std::env::var_os("PATH") {
        cmd.env("PATH", p);
    }
    let out = match tokio::time::timeout(VERSION_TIMEOUT, cmd.output()).await {
        Err(_) => return Err(err(format!("no answer within {}s", VERSION_TIMEOUT.as_secs()))),
        Ok(Err(e)) => return Err(err(format!("cannot run it: {e}"))),
        Ok(Ok(out)) => out,
    };
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    stdout
        .lines()
        .chain(stderr.lines())
        .filter(|l| l.contains("version"))
        .find_map(Version::parse)
        .ok_or_else(|| {
            let said = format!("{}{}", stdout.trim(), stderr.trim());
            let said: String = said.chars().take(300).collect();
            err(format!("unexpected answer ({}): {said:?}", out.status))
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn parses_versions() {
        assert_eq!(Version::parse("livekit-server version 1.13.5"), Some(Version::new(1, 13, 5)));
        assert_eq!(Version::parse("v1.9.12"), Some(Version::new(1, 9, 12)));
        assert_eq!(Version::parse("1.10.0-rc1"), Some(Version::new(1, 10, 0)));
        assert_eq!(Version::parse("1.8"), Some(Version::new(1, 8, 0)));
        assert_eq!(Version::parse("version x"), None);
        assert!(Version::new(1, 9, 12) < Version::new(1, 10, 0));
        assert!(Version::new(1, 13, 5) > Version::new(1, 13, 2));
        assert_eq!(Version::new(1, 13, 5).to_string(), "1.13.5");
    }

    #[test]
    fn find_lists_every_place() {
        let d = tempfile::tempdir().unwrap();
        let not_exec = d.path().join("livekit-server");
        std::fs::write(&not_exec, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&not_exec, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = find_in(
            Some(Path::new("/nonexistent/lk")),
            Some("/nonexistent/env-lk".into()),
            Path::new("/nonexistent/usr/lib/bedrud/livekit-server"),
            Some(d.path().as_os_str().to_owned()),
        )
        .unwrap_err();
        let text = e.to_string();
        for needle in [
            "livekit.binary",
            "/nonexistent/lk",
            "$BEDRUD_LIVEKIT_BINARY",
            "/nonexistent/env-lk",
            "/nonexistent/usr/lib/bedrud/livekit-server",
            "not executable",
            "PATH",
            "scripts/install-livekit",
        ] {
            assert!(text.contains(needle), "{needle:?} missing in:\n{text}");
        }
        std::fs::set_permissions(&not_exec, std::fs::Permissions::from_mode(0o755)).unwrap();
        let found =
            find_in(None, None, Path::new("/nonexistent/x"), Some(d.path().as_os_str().to_owned()))
                .unwrap();
        assert_eq!(found, not_exec);
    }
}
