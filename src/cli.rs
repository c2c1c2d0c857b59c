//! The command line. User and room commands open the database directly, or — while the daemon
//! holds it — go through the daemon's control socket; either way the same rules apply.

use std::io::{BufRead, IsTerminal};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use serde_json::{json, Value};

use crate::config::{self, Loaded};
use crate::control;
use crate::error::ApiError;
use crate::livekit::{binary, configgen, ApiKeys};
use crate::store::{Role, Store, StoreError, UserView};
use crate::{accounts, daemon, logging, rooms};

/// Exit status for configuration errors (nothing was started).
pub const EXIT_CONFIG: u8 = 2;

#[derive(Parser)]
#[command(name = "bedrud", version, about = "Self-hosted video-meeting control plane around LiveKit")]
pub struct Cli {
    /// Config file (.yaml, .yml or .toml). Default: $BEDRUD_CONFIG, then /etc/bedrud/config.yaml
    /// (or .yml/.toml) if present, else built-in defaults.
    #[arg(long, short, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Run the daemon.
    Run,
    /// Configuration.
    #[command(subcommand)]
    Config(ConfigCmd),
    /// Manage users.
    #[command(subcommand)]
    User(UserCmd),
    /// Inspect rooms.
    #[command(subcommand)]
    Room(RoomCmd),
    /// LiveKit configuration helpers.
    #[command(subcommand)]
    Livekit(LivekitCmd),
    /// Check configuration and the live system against the known troubleshooting rows (through
    /// the running daemon when there is one). Exit 0: nothing fails; 1: something fails; 2:
    /// doctor could not run.
    Doctor {
        /// One JSON report instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Write a consistent copy of the database to FILE (works while the daemon runs).
    Backup {
        /// New file to write (must not exist).
        file: PathBuf,
    },
    /// Replace the database with the backup FILE (the daemon must be stopped).
    Restore {
        /// A file written by `bedrud backup`.
        file: PathBuf,
    },
    /// Print the HTTP API's OpenAPI 3.1 document (JSON; also served at /api/openapi.json).
    Openapi,
    /// Print the version.
    Version,
}

#[derive(Subcommand)]
pub enum ConfigCmd {
    /// Validate the configuration and print the effective values (secrets redacted).
    Check,
}

#[derive(Subcommand)]
pub enum UserCmd {
    /// Create a user (prompts for the password on a terminal).
    Create {
        name: String,
        #[arg(long)]
        admin: bool,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
    },
    /// List users.
    List,
    /// Set a user's password (ends their sessions).
    Passwd {
        name: String,
        #[arg(long)]
        password_stdin: bool,
    },
    /// Disable a user (ends their sessions).
    Disable { name: String },
    /// Enable a disabled user.
    Enable { name: String },
    /// Delete a user.
    Delete { name: String },
}

#[derive(Subcommand)]
pub enum RoomCmd {
    /// List rooms.
    List,
    /// Show one room.
    Show { name: String },
}

#[derive(Subcommand)]
pub enum LivekitCmd {
    /// Print the livekit-server config that embedded mode would generate.
    PrintConfig {
        #[arg(long)]
        show_secrets: bool,
    },
    /// Print the `webhook:` block to add to an external LiveKit's YAML.
    WebhookConfig {
        /// bedrud's public URL, e.g. https://meet.example.com
        #[arg(long)]
        url: Option<String>,
    },
}

/// Entry point used by `main`.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Command::Version = cli.command {
        println!("bedrud {}", env!("CARGO_PKG_VERSION"));
        return ExitCode::SUCCESS;
    }
    if let Command::Openapi = cli.command {
        println!("{}", crate::http::openapi::json());
        return ExitCode::SUCCESS;
    }
    let file = config::locate(cli.config.as_deref());
    if let Command::Doctor { json } = cli.command {
        return doctor(file, json);
    }
    let loaded = match config::load(file.as_deref()) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("bedrud: configuration error: {e}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    match cli.command {
        Command::Run => run(loaded),
        Command::Config(ConfigCmd::Check) => {
            for w in &loaded.warnings {
                eprintln!("warning: {w}");
            }
            let src = loaded.file.as_ref().map(|f| f.display().to_string()).unwrap_or_else(|| "built-in defaults".into());
            println!("# configuration OK ({src})\n# database: {}", loaded.config.database_path().display());
            print!("{}", loaded.config.redacted_yaml());
            ExitCode::SUCCESS
        }
        cmd => {
            let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                Ok(rt) => rt,
                Err(e) => return fail(&format!("cannot start runtime: {e}")),
            };
            match rt.block_on(command(cmd, &loaded)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => fail(&e),
            }
        }
    }
}

/// Exit status when doctor itself cannot run.
pub const EXIT_DOCTOR_BROKEN: u8 = 2;

/// `bedrud doctor`: through the running daemon's control socket when it answers, else from the
/// configuration alone.
fn doctor(file: Option<PathBuf>, json: bool) -> ExitCode {
    let report = match config::load(file.as_deref()) {
        Err(e) => crate::doctor::config_error(file, &e),
        Ok(loaded) => {
            let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                Ok(rt) => rt,
                Err(e) => {
                    eprintln!("bedrud: doctor cannot run: {e}");
                    return ExitCode::from(EXIT_DOCTOR_BROKEN);
                }
            };
            match rt.block_on(doctor_report(loaded)) {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("bedrud: doctor cannot run: {e}");
                    return ExitCode::from(EXIT_DOCTOR_BROKEN);
                }
            }
        }
    };
    if json {
        match serde_json::to_string_pretty(&report) {
            Ok(t) => println!("{t}"),
            Err(e) => {
                eprintln!("bedrud: {e}");
                return ExitCode::from(EXIT_DOCTOR_BROKEN);
            }
        }
    } else {
        print!("{}", report.text());
    }
    ExitCode::from(report.exit_code())
}

async fn doctor_report(loaded: Loaded) -> Result<crate::doctor::Report, String> {
    use crate::doctor::{Ctx, Finding, Report};
    let sock = control::socket_path(&loaded.config.database_path());
    let mut note = None;
    if sock.exists() {
        match control::call(&sock, "GET", "/v1/doctor", None).await {
            Ok((status, v)) if status.is_success() => {
                let mut r: Report = serde_json::from_value(v).map_err(|e| format!("the daemon's report is unreadable: {e}"))?;
                for w in &loaded.warnings {
                    r.checks.insert(1.min(r.checks.len()), Finding::warn("config", w.clone()).fix("see `bedrud config check`"));
                }
                return Ok(Report::new(r.config, true, r.checks));
            }
            Ok((status, v)) => return Err(format!("the running daemon answered {status}: {}", v["error"]["message"].as_str().unwrap_or(""))),
            // A socket nobody answers on is left over from a daemon that was killed.
            Err(e) if sock.metadata().is_ok() && e.contains("Connection refused") => {}
            Err(e) => {
                note = Some(Finding::warn("daemon", format!("{e}; checked from the configuration only"))
                    .fix("run doctor as root or as the service user (runuser -u bedrud -- bedrud doctor)"));
            }
        }
    }
    let ctx = Ctx { config: std::sync::Arc::new(loaded.config), file: loaded.file, warnings: loaded.warnings, live: None, version: None, version_error: None };
    let r = crate::doctor::run(ctx).await;
    let mut checks = r.checks;
    if let Some(n) = note {
        checks.insert(0, n);
    }
    Ok(Report::new(r.config, false, checks))
}

fn fail(msg: &str) -> ExitCode {
    eprintln!("bedrud: {msg}");
    ExitCode::FAILURE
}

fn run(loaded: Loaded) -> ExitCode {
    // Each password hash allocates 19 MiB (Argon2) on a blocking-pool thread. Once the first
    // such buffer is freed, glibc raises its mmap threshold above that size and serves the next
    // ones from per-thread arenas, which keep the memory: every thread that ever hashed then
    // holds ~19 MiB for good. A fixed threshold keeps large buffers in their own mappings,
    // returned to the system when freed.
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets an allocator parameter; called before any other thread exists.
    unsafe {
        nix::libc::mallopt(nix::libc::M_MMAP_THRESHOLD, 1 << 20);
    }
    logging::init(&loaded.config.logging);
    let rt = match tokio::runtime::Builder::new_multi_thread().enable_all().thread_name("bedrud").build() {
        Ok(rt) => rt,
        Err(e) => return fail(&format!("cannot start runtime: {e}")),
    };
    match rt.block_on(daemon::run(loaded)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{}", e.message);
            // When logs go to the journal this is the same stream; otherwise it reaches the terminal.
            if std::env::var_os("JOURNAL_STREAM").is_none() {
                eprintln!("bedrud: {}", e.message);
            }
            ExitCode::from(e.code)
        }
    }
}

/// The database directly, or the daemon that holds it.
enum Backend {
    Local(Store),
    Daemon(PathBuf),
}

fn backend(db: &Path) -> Result<Backend, String> {
    match Store::open(db) {
        Ok(s) => Ok(Backend::Local(s)),
        Err(StoreError::InUse { .. }) => {
            let sock = control::socket_path(db);
            if sock.exists() {
                Ok(Backend::Daemon(sock))
            } else {
                Err(format!(
                    "database {} is in use by another process and no daemon control socket was found at {}; \
                     stop that process (e.g. `systemctl stop bedrud`) and try again",
                    db.display(),
                    sock.display()
                ))
            }
        }
        Err(e) => Err(e.to_string()),
    }
}

/// Calls the daemon; turns its JSON error into our message.
async fn remote(sock: &Path, method: &str, uri: &str, body: Option<Value>) -> Result<Value, String> {
    let (status, v) = control::call(sock, method, uri, body).await?;
    if status.is_success() {
        return Ok(v);
    }
    let msg = v["error"]["message"].as_str().unwrap_or("request failed");
    let code = v["error"]["code"].as_str().unwrap_or("");
    Err(format!("{msg} ({code})"))
}

fn api(e: ApiError) -> String {
    format!("{} ({})", e.message, e.code)
}

fn read_password(from_stdin: bool) -> Result<String, String> {
    let pw = if from_stdin {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line).map_err(|e| format!("cannot read password from stdin: {e}"))?;
        line.trim_end_matches(['\n', '\r']).to_string()
    } else if std::io::stdin().is_terminal() {
        let a = rpassword::prompt_password("Password: ").map_err(|e| e.to_string())?;
        let b = rpassword::prompt_password("Repeat password: ").map_err(|e| e.to_string())?;
        if a != b {
            return Err("passwords do not match".into());
        }
        a
    } else {
        return Err("no terminal to ask for a password: pass --password-stdin and send it on standard input".into());
    };
    crate::auth::validate_password(&pw)?;
    Ok(pw)
}

fn print_users(users: &[UserView]) {
    println!("{:<32} {:<6} {:<9} {}", "USERNAME", "ROLE", "DISABLED", "ID");
    for u in users {
        let role = if u.role == Role::Admin { "admin" } else { "user" };
        println!("{:<32} {:<6} {:<9} {}", u.username, role, u.disabled, u.id);
    }
}

async fn command(cmd: Command, loaded: &Loaded) -> Result<(), String> {
    let cfg = &loaded.config;
    match cmd {
        Command::Livekit(LivekitCmd::PrintConfig { show_secrets }) => {
            let keys = match (&cfg.livekit.api_key, &cfg.livekit.api_secret) {
                (Some(k), Some(s)) => ApiKeys { key: k.clone(), secret: s.clone() },
                _ => match backend(&cfg.database_path())? {
                    Backend::Local(store) => daemon::api_keys(cfg, &store).await.map_err(|e| e.message)?,
                    Backend::Daemon(sock) => {
                        let v = remote(&sock, "GET", "/v1/livekit/keys", None).await?;
                        ApiKeys {
                            key: v["key"].as_str().unwrap_or_default().to_string(),
                            secret: v["secret"].as_str().unwrap_or_default().to_string(),
                        }
                    }
                },
            };
            let version = match binary::find(cfg) {
                Ok(path) => binary::version(&path).await.ok(),
                Err(_) => None,
            };
            let hook = format!("http://127.0.0.1:{}/api/livekit/webhook", cfg.server.port);
            let text = configgen::print_config(cfg, &keys, version, &hook, crate::recording::planned_redis(cfg).as_ref(), show_secrets).map_err(|e| e.to_string())?;
            print!("{text}");
            Ok(())
        }
        Command::Livekit(LivekitCmd::WebhookConfig { url }) => {
            let key = cfg.livekit.api_key.clone().unwrap_or_else(|| "<your LiveKit API key>".into());
            let public = url.unwrap_or_else(|| {
                let scheme = if cfg.server.tls_enabled() { "https" } else { "http" };
                let host = cfg.server.host.clone().unwrap_or_else(|| "bedrud.example.com".into());
                format!("{scheme}://{host}:{}", cfg.server.port)
            });
            print!("{}", configgen::webhook_config(cfg, &key, &public));
            Ok(())
        }
        Command::Backup { file } => backup(&cfg.database_path(), &file).await,
        Command::Restore { file } => restore(&cfg.database_path(), &file).await,
        Command::User(u) => user_command(u, &cfg.database_path()).await,
        Command::Room(r) => room_command(r, &cfg.database_path()).await,
        Command::Run | Command::Config(_) | Command::Version | Command::Openapi | Command::Doctor { .. } => Ok(()),
    }
}

async fn backup(db: &Path, file: &Path) -> Result<(), String> {
    if file.exists() {
        return Err(format!("{} already exists; choose a new file name", file.display()));
    }
    let info = match backend(db)? {
        Backend::Local(store) => {
            let dest = file.to_path_buf();
            tokio::task::spawn_blocking(move || store.backup_to(&dest)).await.map_err(|e| e.to_string())?.map_err(|e| e.to_string())?
        }
        Backend::Daemon(sock) => {
            // The daemon writes the copy next to its database and streams it here, so the file
            // can go wherever the caller may write, whatever the daemon's sandbox allows.
            let part = file.with_extension("part");
            control::download(&sock, "/v1/backup", &part).await?;
            std::fs::rename(&part, file).map_err(|e| format!("cannot write {}: {e}", file.display()))?;
            let schema_version = crate::store::schema_of(file).map_err(|e| e.to_string())?;
            let bytes = std::fs::metadata(file).map(|m| m.len()).unwrap_or(0);
            crate::store::BackupInfo { rows: 0, bytes, schema_version }
        }
    };
    println!("backup written to {} ({} bytes, schema version {})", file.display(), info.bytes, info.schema_version);
    Ok(())
}

async fn restore(db: &Path, file: &Path) -> Result<(), String> {
    if !file.is_file() {
        return Err(format!("{}: no such backup file", file.display()));
    }
    let (db, src) = (db.to_path_buf(), file.to_path_buf());
    let r = tokio::task::spawn_blocking(move || crate::store::restore_from(&src, &db)).await.map_err(|e| e.to_string())?;
    match r {
        Ok(info) => {
            println!("restored {} ({} users, rooms and history rows; schema version {})", file.display(), info.rows, info.schema_version);
            Ok(())
        }
        Err(StoreError::InUse { path }) => Err(format!(
            "the database {} is in use (is the daemon running?); stop it first (`systemctl stop bedrud`), then restore",
            path.display()
        )),
        Err(e) => Err(e.to_string()),
    }
}

async fn user_command(cmd: UserCmd, db: &Path) -> Result<(), String> {
    // Ask for the password before touching the database.
    let password = match &cmd {
        UserCmd::Create { password_stdin, .. } | UserCmd::Passwd { password_stdin, .. } => Some(read_password(*password_stdin)?),
        _ => None,
    };
    let pw = password.unwrap_or_default();
    let be = backend(db)?;
    match (cmd, be) {
        (UserCmd::Create { name, admin, .. }, Backend::Local(s)) => {
            let role = if admin { Role::Admin } else { Role::User };
            let u = accounts::create_user(&s, &name, &pw, role).await.map_err(api)?;
            println!("created {} {} ({})", if admin { "admin" } else { "user" }, u.username, u.id);
        }
        (UserCmd::Create { name, admin, .. }, Backend::Daemon(sock)) => {
            let body = json!({ "username": name, "password": pw, "admin": admin });
            let v = remote(&sock, "POST", "/v1/users", Some(body)).await?;
            println!("created {} {} ({})", if admin { "admin" } else { "user" }, name, v["id"].as_str().unwrap_or(""));
        }
        (UserCmd::List, Backend::Local(s)) => print_users(&accounts::list_users(&s, None, usize::MAX).await.map_err(api)?),
        (UserCmd::List, Backend::Daemon(sock)) => {
            let v = remote(&sock, "GET", "/v1/users", None).await?;
            let users: Vec<UserView> = serde_json::from_value(v).map_err(|e| e.to_string())?;
            print_users(&users);
        }
        (UserCmd::Passwd { name, .. }, Backend::Local(s)) => {
            accounts::set_password(&s, &name, &pw).await.map_err(api)?;
            println!("password of {name} changed; their sessions have ended");
        }
        (UserCmd::Passwd { name, .. }, Backend::Daemon(sock)) => {
            remote(&sock, "PUT", &format!("/v1/users/{name}/password"), Some(json!({ "password": pw }))).await?;
            println!("password of {name} changed; their sessions have ended");
        }
        (UserCmd::Disable { name }, be) => set_disabled(be, &name, true).await?,
        (UserCmd::Enable { name }, be) => set_disabled(be, &name, false).await?,
        (UserCmd::Delete { name }, Backend::Local(s)) => {
            accounts::delete_user(&s, &name).await.map_err(api)?;
            println!("deleted {name}");
        }
        (UserCmd::Delete { name }, Backend::Daemon(sock)) => {
            remote(&sock, "DELETE", &format!("/v1/users/{name}"), None).await?;
            println!("deleted {name}");
        }
    }
    Ok(())
}

async fn set_disabled(be: Backend, name: &str, disabled: bool) -> Result<(), String> {
    match be {
        Backend::Local(s) => {
            accounts::update_user(&s, name, None, Some(disabled)).await.map_err(api)?;
        }
        Backend::Daemon(sock) => {
            remote(&sock, "PUT", &format!("/v1/users/{name}"), Some(json!({ "disabled": disabled, "admin": null }))).await?;
        }
    }
    println!("{name} {}", if disabled { "disabled; their sessions have ended" } else { "enabled" });
    Ok(())
}

async fn room_command(cmd: RoomCmd, db: &Path) -> Result<(), String> {
    let be = backend(db)?;
    let views: Vec<rooms::RoomView> = match (&cmd, be) {
        (RoomCmd::List, Backend::Local(s)) => rooms::list_all(&s).await.map_err(api)?,
        (RoomCmd::Show { name }, Backend::Local(s)) => vec![rooms::get_view(&s, name).await.map_err(api)?],
        (RoomCmd::List, Backend::Daemon(sock)) => {
            return print_json_rooms(remote(&sock, "GET", "/v1/rooms", None).await?, true);
        }
        (RoomCmd::Show { name }, Backend::Daemon(sock)) => {
            return print_json_rooms(remote(&sock, "GET", &format!("/v1/rooms/{name}"), None).await?, false);
        }
    };
    let v = serde_json::to_value(&views).map_err(|e| e.to_string())?;
    match cmd {
        RoomCmd::List => print_json_rooms(v, true),
        RoomCmd::Show { .. } => print_json_rooms(v[0].clone(), false),
    }
}

fn print_json_rooms(v: Value, list: bool) -> Result<(), String> {
    if !list {
        println!("{}", serde_json::to_string_pretty(&v).map_err(|e| e.to_string())?);
        return Ok(());
    }
    println!("{:<40} {:<20} {:<6} {:<5} {}", "NAME", "OWNER", "PUBLIC", "MAX", "LIVE");
    for r in v.as_array().map(Vec::as_slice).unwrap_or(&[]) {
        println!(
            "{:<40} {:<20} {:<6} {:<5} {}",
            r["name"].as_str().unwrap_or(""),
            r["owner"].as_str().unwrap_or("-"),
            r["settings"]["public"].as_bool().unwrap_or(false),
            r["settings"]["maxParticipants"].as_u64().unwrap_or(0),
            r["liveParticipants"].as_u64().unwrap_or(0)
        );
    }
    Ok(())
}
