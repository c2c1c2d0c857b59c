//! `/api/room/{name}/lobby*`: the people waiting to be let into a meeting. Managers list them,
//! admit or deny one or all, and follow the list live; each waiting person follows their own
//! place live. Both streams are server-sent events fed by [`Lobbies`], which also notices who
//! has gone: a waiting entry whose person has had no stream open for [`LOBBY_GRACE`] is removed.

use std::collections::{HashMap, HashSet};
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Path, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::Stream;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use super::extract::{AnyCaller, Json};
use super::meeting::{caller_identity, meeting_manager};
use super::SharedState;
use crate::error::{ApiError, ErrorBody};
use crate::store::{self, Attendee, LobbyStatus, Store, StoreError};

/// How long a waiting person may be without an open stream before their entry goes.
pub const LOBBY_GRACE: Duration = Duration::from_secs(15);
const SWEEP_EVERY: Duration = Duration::from_secs(5);
/// Streams repeat their state this often even when nothing changed.
const REFRESH: Duration = Duration::from_secs(15);
/// Comment lines keep streams (and the detection of closed ones) going.
const KEEPALIVE: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, Copy)]
struct Presence {
    streams: usize,
    last_seen: Instant,
}

/// Change notices per room, and who is still following their place in a lobby.
pub struct Lobbies {
    changed: broadcast::Sender<String>,
    presence: Mutex<HashMap<(String, String), Presence>>,
    started: Instant,
}

impl Default for Lobbies {
    fn default() -> Self {
        Self::new()
    }
}

impl Lobbies {
    pub fn new() -> Self {
        Self { changed: broadcast::channel(256).0, presence: Mutex::new(HashMap::new()), started: Instant::now() }
    }

    /// Something about `room`'s lobby or meeting changed: every stream of it looks again.
    pub fn notify(&self, room: &str) {
        let _ = self.changed.send(room.to_string());
    }

    fn subscribe(&self) -> broadcast::Receiver<String> {
        self.changed.subscribe()
    }

    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<(String, String), Presence>> {
        self.presence.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The person asked to join just now (so counts as present).
    pub fn seen(&self, room: &str, identity: &str) {
        let now = Instant::now();
        self.map().entry((room.into(), identity.into())).or_insert(Presence { streams: 0, last_seen: now }).last_seen = now;
    }

    fn open(self: &Arc<Self>, room: &str, identity: &str) -> Following {
        let key = (room.to_string(), identity.to_string());
        self.map().entry(key.clone()).or_insert(Presence { streams: 0, last_seen: Instant::now() }).streams += 1;
        Following { lobbies: self.clone(), key }
    }

    /// Whether the person has had no stream open and no join for `grace`.
    fn absent(&self, room: &str, identity: &str, grace: Duration) -> bool {
        match self.map().get(&(room.to_string(), identity.to_string())) {
            Some(p) => p.streams == 0 && p.last_seen.elapsed() >= grace,
            // Not heard of since this process started (e.g. waiting before a restart).
            None => self.started.elapsed() >= grace,
        }
    }
}

/// A waiting person's open stream; dropped when the connection closes.
struct Following {
    lobbies: Arc<Lobbies>,
    key: (String, String),
}

impl Drop for Following {
    fn drop(&mut self) {
        let mut map = self.lobbies.map();
        if let Some(p) = map.get_mut(&self.key) {
            p.streams = p.streams.saturating_sub(1);
            p.last_seen = Instant::now();
        }
    }
}

pub fn routes() -> OpenApiRouter<SharedState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(events))
        .routes(routes!(wait))
        .routes(routes!(admit))
        .routes(routes!(deny))
}

/// Someone waiting in the lobby.
#[derive(Serialize, ToSchema)]
pub(super) struct LobbyEntry {
    identity: String,
    name: String,
    /// When they began to wait (Unix ms).
    since: u64,
    /// Came through an invite link.
    invited: bool,
}

/// The people waiting, in the order they came (also the data of `lobby` events).
#[derive(Serialize, ToSchema)]
pub(super) struct Waiting {
    waiting: Vec<LobbyEntry>,
}

async fn waiting_view(store: &Store, room: &str) -> Result<Waiting, ApiError> {
    let room = room.to_string();
    let waiting = store.read(move |txn| store::lobby_waiting(txn, &room)).await?;
    let waiting = waiting.into_iter().map(|a| LobbyEntry { since: a.knocked_at, invited: a.invite.is_some(), identity: a.identity, name: a.name }).collect();
    Ok(Waiting { waiting })
}

/// The people waiting, in the order they came (the meeting's managers).
#[utoipa::path(get, path = "/api/room/{name}/lobby", operation_id = "list_lobby", tag = "lobby", security(("bearer" = []), ("cookie" = [])),
    params(("name" = String, Path, description = "Room name")),
    responses(
        (status = 200, description = "Who waits", body = Waiting),
        (status = 401, description = "`unauthorized`, `invalid_session`", body = ErrorBody),
        (status = 403, description = "`forbidden`: does not run the meeting", body = ErrorBody),
        (status = 404, description = "`room_not_found`", body = ErrorBody),
    ))]
async fn list(State(st): State<SharedState>, AnyCaller(caller): AnyCaller, Path(name): Path<String>) -> Result<axum::Json<Waiting>, ApiError> {
    meeting_manager(&st, &caller, &name).await?;
    Ok(axum::Json(waiting_view(&st.store, &name).await?))
}

type Events = std::pin::Pin<Box<dyn Stream<Item = Result<Event, Infallible>> + Send>>;
type EventStream = Sse<axum::response::sse::KeepAliveStream<Events>>;

/// A stream of `event` events: `look` at once, then whenever the room's lobby changes (and
/// every [`REFRESH`]) if the answer differs from the last one sent. Ends at shutdown.
fn follow<F, Fut, T>(st: SharedState, room: String, event: &'static str, guard: Option<Following>, look: F) -> EventStream
where
    F: Fn(SharedState, String) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<T, ApiError>> + Send,
    T: Serialize,
{
    let rx = st.lobbies.subscribe();
    let shutdown: CancellationToken = st.shutdown.clone();
    let state = (st, room, rx, None::<String>, guard, look, shutdown);
    let stream = futures_util::stream::unfold(state, move |(st, room, mut rx, last, guard, look, shutdown)| async move {
        loop {
            if last.is_some() {
                let deadline = tokio::time::sleep(REFRESH);
                tokio::pin!(deadline);
                loop {
                    tokio::select! {
                        msg = rx.recv() => match msg {
                            Ok(r) if r == room => break,
                            Ok(_) => continue,
                            Err(broadcast::error::RecvError::Lagged(_)) => break,
                            Err(broadcast::error::RecvError::Closed) => return None,
                        },
                        _ = &mut deadline => break,
                        _ = shutdown.cancelled() => return None,
                    }
                }
            }
            let (name, data) = match look(st.clone(), room.clone()).await {
                Ok(v) => (event, serde_json::to_string(&v).unwrap_or_default()),
                Err(e) => ("error", json!({ "code": e.code, "message": e.message }).to_string()),
            };
            if last.as_deref() != Some(data.as_str()) {
                let ev = Event::default().event(name).data(data.clone());
                return Some((Ok(ev), (st, room, rx, Some(data), guard, look, shutdown)));
            }
        }
    });
    Sse::new(Box::pin(stream) as Events).keep_alive(KeepAlive::new().interval(KEEPALIVE))
}

/// `text/event-stream` of `lobby` events whose data is the list `GET .../lobby` answers
/// (`Waiting`), sent at once and whenever it changes; an `error` event (`{"code","message"}`)
/// when the caller may no longer see it (the meeting's managers).
#[utoipa::path(get, path = "/api/room/{name}/lobby/events", operation_id = "lobby_events", tag = "lobby", security(("bearer" = []), ("cookie" = [])),
    params(("name" = String, Path, description = "Room name")),
    responses(
        (status = 200, description = "Server-sent `lobby` events", content_type = "text/event-stream", body = String),
        (status = 401, description = "`unauthorized`, `invalid_session`", body = ErrorBody),
        (status = 403, description = "`forbidden`: does not run the meeting", body = ErrorBody),
        (status = 404, description = "`room_not_found`", body = ErrorBody),
    ))]
async fn events(State(st): State<SharedState>, AnyCaller(caller): AnyCaller, Path(name): Path<String>) -> Result<EventStream, ApiError> {
    meeting_manager(&st, &caller, &name).await?;
    Ok(follow(st, name, "lobby", None, move |st, room| {
        let caller = caller.clone();
        async move {
            // Someone no longer a manager stops seeing the list.
            meeting_manager(&st, &caller, &room).await?;
            waiting_view(&st.store, &room).await
        }
    }))
}

/// Where someone stands at a room's door.
#[derive(Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub(super) enum PlaceStatus {
    Waiting,
    Admitted,
    Denied,
    /// The meeting was ended for all while they waited.
    Ended,
    Banned,
    /// Not in the lobby.
    Gone,
}

/// Where someone stands at a room's door (the data of `status` events; a 202 join's `lobby`).
#[derive(Serialize, ToSchema)]
pub(super) struct Place {
    pub(super) status: PlaceStatus,
    /// 1 for the next to be let in (while waiting).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) position: Option<usize>,
    /// How many wait (while waiting).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) waiting: Option<usize>,
}

impl Place {
    fn is(status: PlaceStatus) -> Place {
        Place { status, position: None, waiting: None }
    }
}

/// Where `identity` stands: waiting (with their place), admitted, denied, banned, ended, or
/// gone (not in the lobby).
async fn my_place(store: &Store, room: &str, identity: &str) -> Result<Place, ApiError> {
    let (room, identity) = (room.to_string(), identity.to_string());
    store
        .read(move |txn| {
            store::room_get(txn, &room)?.ok_or(StoreError::NotFound("room"))?;
            if store::ban_get(txn, &room, &identity)?.is_some() {
                return Ok(Place::is(PlaceStatus::Banned));
            }
            let a = store::attendee_get(txn, &room, &identity)?;
            Ok(match a.and_then(|a| a.lobby) {
                Some(LobbyStatus::Waiting) => {
                    let waiting = store::lobby_waiting(txn, &room)?;
                    let place = waiting.iter().position(|w| w.identity == identity).map(|i| i + 1);
                    Place { status: PlaceStatus::Waiting, position: place, waiting: Some(waiting.len()) }
                }
                Some(LobbyStatus::Admitted) => Place::is(PlaceStatus::Admitted),
                Some(LobbyStatus::Denied) => Place::is(PlaceStatus::Denied),
                Some(LobbyStatus::Ended) => Place::is(PlaceStatus::Ended),
                None => Place::is(PlaceStatus::Gone),
            })
        })
        .await
        .map_err(ApiError::from)
}

/// `text/event-stream` of `status` events for the caller's own place in the lobby (`Place`),
/// sent at once and whenever it changes. While it is open the caller counts as present.
#[utoipa::path(get, path = "/api/room/{name}/lobby/wait", operation_id = "lobby_wait", tag = "lobby", security(("bearer" = []), ("cookie" = [])),
    params(("name" = String, Path, description = "Room name")),
    responses(
        (status = 200, description = "Server-sent `status` events", content_type = "text/event-stream", body = String),
        (status = 401, description = "`unauthorized`: join the room first, `invalid_session`", body = ErrorBody),
        (status = 404, description = "`room_not_found`", body = ErrorBody),
    ))]
async fn wait(State(st): State<SharedState>, AnyCaller(caller): AnyCaller, Path(name): Path<String>) -> Result<EventStream, ApiError> {
    let identity = caller_identity(&caller).ok_or_else(|| ApiError::unauthorized("join the room first: the lobby follows the session that joined"))?;
    my_place(&st.store, &name, &identity).await?;
    let guard = st.lobbies.open(&name, &identity);
    Ok(follow(st, name, "status", Some(guard), move |st, room| {
        let identity = identity.clone();
        async move { my_place(&st.store, &room, &identity).await }
    }))
}

/// Whom an admit or deny is about: one person, or everyone waiting.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct Pick {
    identity: Option<String>,
    #[serde(default)]
    all: bool,
}

#[derive(Serialize, ToSchema)]
pub(super) struct Admitted {
    /// The identities let in.
    admitted: Vec<String>,
}

#[derive(Serialize, ToSchema)]
pub(super) struct Denied {
    /// The identities turned away.
    denied: Vec<String>,
}

/// Lets one person (`{"identity"}`) or everyone waiting (`{"all": true}`) in (the meeting's
/// managers).
#[utoipa::path(post, path = "/api/room/{name}/lobby/admit", tag = "lobby", security(("bearer" = []), ("cookie" = [])),
    params(("name" = String, Path, description = "Room name")),
    request_body = Pick,
    responses(
        (status = 200, description = "Who was let in", body = Admitted),
        (status = 400, description = "`invalid_json`, `invalid_request`", body = ErrorBody),
        (status = 401, description = "`unauthorized`, `invalid_session`", body = ErrorBody),
        (status = 403, description = "`forbidden`: does not run the meeting", body = ErrorBody),
        (status = 404, description = "`room_not_found`, `not_waiting`", body = ErrorBody),
        (status = 413, description = "`payload_too_large`", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`", body = ErrorBody),
    ))]
async fn admit(st: State<SharedState>, caller: AnyCaller, name: Path<String>, pick: Json<Pick>) -> Result<axum::Json<Admitted>, ApiError> {
    Ok(axum::Json(Admitted { admitted: decide(st, caller, name, pick, LobbyStatus::Admitted).await? }))
}

/// Turns one person (`{"identity"}`) or everyone waiting (`{"all": true}`) away (the meeting's
/// managers).
#[utoipa::path(post, path = "/api/room/{name}/lobby/deny", tag = "lobby", security(("bearer" = []), ("cookie" = [])),
    params(("name" = String, Path, description = "Room name")),
    request_body = Pick,
    responses(
        (status = 200, description = "Who was turned away", body = Denied),
        (status = 400, description = "`invalid_json`, `invalid_request`", body = ErrorBody),
        (status = 401, description = "`unauthorized`, `invalid_session`", body = ErrorBody),
        (status = 403, description = "`forbidden`: does not run the meeting", body = ErrorBody),
        (status = 404, description = "`room_not_found`, `not_waiting`", body = ErrorBody),
        (status = 413, description = "`payload_too_large`", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`", body = ErrorBody),
    ))]
async fn deny(st: State<SharedState>, caller: AnyCaller, name: Path<String>, pick: Json<Pick>) -> Result<axum::Json<Denied>, ApiError> {
    Ok(axum::Json(Denied { denied: decide(st, caller, name, pick, LobbyStatus::Denied).await? }))
}

async fn decide(State(st): State<SharedState>, AnyCaller(caller): AnyCaller, Path(name): Path<String>, Json(p): Json<Pick>, to: LobbyStatus) -> Result<Vec<String>, ApiError> {
    let one = match (p.identity, p.all) {
        (Some(i), false) => Some(i),
        (None, true) => None,
        _ => return Err(ApiError::bad_request("invalid_request", "send either {\"identity\": \"...\"} or {\"all\": true}")),
    };
    let m = meeting_manager(&st, &caller, &name).await?;
    let room = name.clone();
    let changed = st
        .store
        .write(move |txn| {
            let waiting = store::lobby_waiting(txn, &room)?;
            let picked: Vec<Attendee> = match &one {
                Some(i) => vec![waiting.into_iter().find(|a| &a.identity == i).ok_or(StoreError::NotFound("lobby entry"))?],
                None => waiting,
            };
            for mut a in picked.clone() {
                a.lobby = Some(to);
                store::attendee_put(txn, &room, &a)?;
            }
            Ok(picked.into_iter().map(|a| a.identity).collect::<Vec<_>>())
        })
        .await
        .map_err(|e| match e {
            StoreError::NotFound("lobby entry") => ApiError::not_found("not_waiting", "that person is not waiting in the lobby"),
            e => e.into(),
        })?;
    st.lobbies.notify(&name);
    let verb = if to == LobbyStatus::Admitted { "admitted" } else { "denied" };
    tracing::info!(room = %name, count = changed.len(), by = %m.name, "lobby: {verb}");
    Ok(changed)
}

/// Lets everyone waiting in `room` in (the lobby was turned off).
pub async fn admit_everyone(st: &SharedState, room: &str) -> Result<usize, ApiError> {
    let r = room.to_string();
    let n = st
        .store
        .write(move |txn| {
            let waiting = store::lobby_waiting(txn, &r)?;
            for mut a in waiting.clone() {
                a.lobby = Some(LobbyStatus::Admitted);
                store::attendee_put(txn, &r, &a)?;
            }
            Ok(waiting.len())
        })
        .await?;
    st.lobbies.notify(room);
    Ok(n)
}

/// Removes lobby entries whose person has gone (no stream, no join, for [`LOBBY_GRACE`]):
/// waiting ones vanish from the managers' list; answers nobody read any more are cleared.
pub fn spawn_sweeper(st: SharedState) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(SWEEP_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = st.shutdown.cancelled() => return,
                _ = tick.tick() => {}
            }
            if let Err(e) = sweep(&st).await {
                tracing::warn!(error = %e, "lobby sweep failed");
            }
        }
    })
}

async fn sweep(st: &SharedState) -> Result<(), StoreError> {
    let entries = st.store.read(store::lobby_entries_all).await?;
    let gone: Vec<(String, String)> = entries
        .into_iter()
        .filter(|(_, _, status)| *status != LobbyStatus::Admitted)
        .filter(|(room, identity, _)| st.lobbies.absent(room, identity, LOBBY_GRACE))
        .map(|(room, identity, _)| (room, identity))
        .collect();
    if gone.is_empty() {
        return Ok(());
    }
    let g = gone.clone();
    st.store
        .write(move |txn| {
            for (room, identity) in &g {
                if let Some(mut a) = store::attendee_get(txn, room, identity)? {
                    if a.lobby.is_some_and(|s| s != LobbyStatus::Admitted) {
                        a.lobby = None;
                        if a.invite.is_none() && !a.moderator && !a.speaker {
                            store::attendee_remove(txn, room, identity)?;
                        } else {
                            store::attendee_put(txn, room, &a)?;
                        }
                    }
                }
            }
            Ok(())
        })
        .await?;
    let rooms: HashSet<&str> = gone.iter().map(|(r, _)| r.as_str()).collect();
    for r in rooms {
        st.lobbies.notify(r);
    }
    tracing::debug!(count = gone.len(), "lobby entries of people who left removed");
    Ok(())
}
