//! Fills a bedrud store offline, or counts what it holds. The daemon must not be running on
//! the file (redb allows one process at a time).
//!
//!   seed_store seed PATH [--users 100000] [--rooms 100000] [--history 1000000] [--batch 5000]
//!   seed_store count PATH [--ids FILE]
//!   seed_store compact PATH
//!   seed_store tables PATH
//!
//! `seed` adds users `seed-user-NNNNNN` (all with one password hash: Argon2 per user would
//! take longer than the benchmark), rooms `seed-room-NNNNNN` owned by them, and closed
//! participant-history rows spread over the rooms, written through the library's own store
//! operations in transactions of `--batch` rows. `count` prints the table sizes as JSON and,
//! with `--ids`, how many of the webhook event ids listed in FILE are durably recorded. `tables`
//! prints each table's rows, pages and bytes (redb's accounting), largest first.

use std::path::PathBuf;
use std::time::Instant;

use bedrud::store::{self, now_ms, Role, Room, RoomSettings, Store, User};
use serde_json::json;

fn die(msg: &str) -> ! {
    eprintln!("seed_store: {msg}");
    std::process::exit(2)
}

fn main() {
    let mut args = std::env::args().skip(1);
    let cmd = args.next().unwrap_or_default();
    let path = PathBuf::from(args.next().unwrap_or_else(|| die("usage: seed_store seed|count PATH [options]")));
    let mut users = 100_000usize;
    let mut rooms = 100_000usize;
    let mut history = 1_000_000usize;
    let mut batch = 5_000usize;
    let mut ids: Option<PathBuf> = None;
    while let Some(flag) = args.next() {
        let val = args.next().unwrap_or_else(|| die(&format!("{flag} needs a value")));
        let num = || val.parse::<usize>().unwrap_or_else(|_| die(&format!("{flag}: a number")));
        match flag.as_str() {
            "--users" => users = num(),
            "--rooms" => rooms = num(),
            "--history" => history = num(),
            "--batch" => batch = num().max(1),
            "--ids" => ids = Some(PathBuf::from(&val)),
            _ => die(&format!("unknown argument {flag}")),
        }
    }
    let store = Store::open(&path).unwrap_or_else(|e| die(&e.to_string()));
    match cmd.as_str() {
        "seed" => seed(&store, users, rooms, history, batch),
        "count" => count(&store, ids),
        "compact" => compact(&store),
        "tables" => tables(&store),
        _ => die("usage: seed_store seed|count|compact|tables PATH [options]"),
    }
}

/// The file's length, the bytes it takes on disk (redb grows a file ahead of use and the
/// unwritten part is a hole) and the bytes of its pages in use.
fn sizes(store: &Store) -> serde_json::Value {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(store.path()).unwrap_or_else(|e| die(&e.to_string()));
    let used = store.write_blocking(|t| store::used_bytes(t)).unwrap_or_else(|e| die(&e.to_string()));
    json!({ "file_bytes": m.len(), "disk_bytes": m.blocks() * 512, "used_bytes": used })
}

/// Each table's rows, pages and bytes, and the file's sizes.
fn tables(store: &Store) {
    let t = store.read_blocking(store::table_sizes).unwrap_or_else(|e| die(&e.to_string()));
    println!("{}", json!({ "tables": t, "sizes": sizes(store) }));
}

/// Compacts the file as the daemon's upkeep does; prints the sizes before and after.
fn compact(store: &Store) {
    let before = std::fs::metadata(store.path()).map(|m| m.len()).unwrap_or(0);
    let t0 = Instant::now();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap_or_else(|e| die(&e.to_string()));
    rt.block_on(store.compact()).unwrap_or_else(|e| die(&e.to_string()));
    let after = std::fs::metadata(store.path()).map(|m| m.len()).unwrap_or(0);
    println!("{}", json!({ "bytes_before": before, "bytes_after": after, "ms": t0.elapsed().as_millis() as u64, "after": sizes(store) }));
}

fn seed(store: &Store, users: usize, rooms: usize, history: usize, batch: usize) {
    let t0 = Instant::now();
    let hash = bedrud::auth::hash_password("seed-password").unwrap_or_else(|e| die(&e));
    let now = now_ms();
    let user_ids: Vec<String> = (0..users).map(|_| uuid::Uuid::new_v4().to_string()).collect();

    for chunk in (0..users).collect::<Vec<_>>().chunks(batch) {
        let rows: Vec<User> = chunk
            .iter()
            .map(|&i| User {
                id: user_ids[i].clone(),
                created_at: now,
                ..User::new(&format!("seed-user-{i:06}"), hash.clone(), Role::User)
            })
            .collect();
        store
            .write_blocking(move |txn| rows.iter().try_for_each(|u| store::insert_user(txn, u)))
            .unwrap_or_else(|e| die(&format!("users: {e}")));
    }
    let t_users = t0.elapsed();

    for chunk in (0..rooms).collect::<Vec<_>>().chunks(batch) {
        let rows: Vec<Room> = chunk
            .iter()
            .map(|&i| {
                let owner = user_ids.get(i % users.max(1)).map(String::as_str).unwrap_or_default();
                Room::new(&format!("seed-room-{i:06}"), owner, now, RoomSettings { public: i % 2 == 0, ..RoomSettings::default() })
            })
            .collect();
        store
            .write_blocking(move |txn| rows.iter().try_for_each(|r| store::room_insert(txn, r)))
            .unwrap_or_else(|e| die(&format!("rooms: {e}")));
    }
    let t_rooms = t0.elapsed();

    // Each row: a join then a leave of the same connection, as the webhook would write them.
    for chunk in (0..history).collect::<Vec<_>>().chunks(batch) {
        let rows: Vec<(String, String, String)> = chunk
            .iter()
            .map(|&h| {
                let room = format!("seed-room-{:06}", h % rooms.max(1));
                let identity = user_ids.get((h * 7919) % users.max(1)).cloned().unwrap_or_else(|| format!("guest-{h}"));
                (room, identity, format!("PA_seed_{h}"))
            })
            .collect();
        let base = now - 86_400_000;
        store
            .write_blocking(move |txn| {
                for (room, identity, sid) in &rows {
                    store::participant_join(txn, room, identity, sid, identity, base, base)?;
                    store::participant_leave(txn, room, identity, base + 60_000, "left")?;
                }
                Ok(())
            })
            .unwrap_or_else(|e| die(&format!("history: {e}")));
    }
    let t_all = t0.elapsed();
    let size = std::fs::metadata(store.path()).map(|m| m.len()).unwrap_or(0);
    println!(
        "{}",
        json!({
            "users": users, "rooms": rooms, "history": history, "batch": batch,
            "users_s": t_users.as_secs_f64(),
            "rooms_s": (t_rooms - t_users).as_secs_f64(),
            "history_s": (t_all - t_rooms).as_secs_f64(),
            "store_bytes": size,
            "sizes": sizes(store),
        })
    );
}

fn count(store: &Store, ids: Option<PathBuf>) {
    let wanted: Vec<String> = match &ids {
        Some(p) => std::fs::read_to_string(p)
            .unwrap_or_else(|e| die(&format!("{}: {e}", p.display())))
            .lines()
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect(),
        None => Vec::new(),
    };
    let listed = wanted.len();
    let out = store
        .read_blocking(move |txn| {
            let mut found = 0u64;
            for id in &wanted {
                if store::event_seen(txn, id)? {
                    found += 1;
                }
            }
            Ok(json!({
                "users": store::count_users(txn)?,
                "rooms": store::count_rooms(txn)?,
                "history": store::count_history(txn)?,
                "events": store::count_events(txn)?,
                "ids_listed": listed,
                "ids_found": found,
            }))
        })
        .unwrap_or_else(|e| die(&e.to_string()));
    let size = std::fs::metadata(store.path()).map(|m| m.len()).unwrap_or(0);
    let mut out = out;
    out["store_bytes"] = json!(size);
    println!("{out}");
}
