//! Finding a child's executable: explicit places first (a setting, an environment variable,
//! the package's path), then `PATH`; every place tried is named when none works.

use std::ffi::OsString;
use std::fmt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use super::Error;

/// One explicit place to look: what it is (`livekit.binary`, `bedrud package`) and the path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub place: String,
    pub path: PathBuf,
}

/// One place [`find`] looked, and what was wrong there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tried {
    pub place: String,
    pub path: Option<PathBuf>,
    pub problem: String,
}

impl fmt::Display for Tried {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.path {
            Some(p) => write!(f, "{} ({}): {}", self.place, p.display(), self.problem),
            None => write!(f, "{}: {}", self.place, self.problem),
        }
    }
}

/// The first executable among `candidates`, else `program` in a directory of `path_var`.
/// `fix` ends the error message when nothing is found.
pub fn find(program: &str, candidates: Vec<Candidate>, path_var: Option<OsString>, fix: &str) -> Result<PathBuf, Error> {
    let mut tried = Vec::new();
    let mut seen: Vec<PathBuf> = Vec::new();
    for Candidate { place, path } in candidates {
        // The same file named twice (a setting and the variable it is read from) is listed once.
        if seen.contains(&path) {
            continue;
        }
        seen.push(path.clone());
        match check_executable(&path) {
            Ok(()) => {
                warn_skipped(&tried, &path, &place);
                return Ok(path);
            }
            Err(problem) => tried.push(Tried { place, path: Some(path), problem }),
        }
    }

    let dirs: Vec<PathBuf> = path_var
        .as_ref()
        .map(|p| std::env::split_paths(p).filter(|d| !d.as_os_str().is_empty()).collect())
        .unwrap_or_default();
    let mut path_problems = Vec::new();
    for dir in &dirs {
        let candidate = dir.join(program);
        match check_executable(&candidate) {
            Ok(()) => {
                warn_skipped(&tried, &candidate, "PATH");
                return Ok(candidate);
            }
            // A directory without the file is the normal case on PATH; only report odd ones.
            Err(problem) if problem != "missing" => path_problems.push(format!("{}: {problem}", candidate.display())),
            Err(_) => {}
        }
    }
    let problem = if dirs.is_empty() {
        "PATH is empty".to_string()
    } else if path_problems.is_empty() {
        format!(
            "missing in every PATH directory ({})",
            dirs.iter().map(|d| d.display().to_string()).collect::<Vec<_>>().join(":")
        )
    } else {
        path_problems.join(", ")
    };
    tried.push(Tried { place: format!("{program} on PATH"), path: None, problem });
    Err(Error::BinaryNotFound { program: program.to_string(), tried, fix: fix.to_string() })
}

fn warn_skipped(tried: &[Tried], path: &Path, place: &str) {
    if !tried.is_empty() {
        tracing::warn!(
            "using {} ({place}); skipped: {}",
            path.display(),
            tried.iter().map(Tried::to_string).collect::<Vec<_>>().join("; ")
        );
    }
}

/// `Ok` when `path` is a regular file this process may execute; else why not.
pub fn check_executable(path: &Path) -> Result<(), String> {
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err("missing".into()),
        Err(e) => return Err(format!("cannot be read: {e}")),
    };
    if !meta.is_file() {
        return Err("not a regular file".into());
    }
    if meta.permissions().mode() & 0o111 == 0 {
        return Err(format!("not executable (mode {:o})", meta.permissions().mode() & 0o777));
    }
    if let Err(e) = nix::unistd::access(path, nix::unistd::AccessFlags::X_OK) {
        return Err(format!("not executable by this user ({e})"));
    }
    Ok(())
}
