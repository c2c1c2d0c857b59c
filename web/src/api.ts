// The one typed client of bedrud's HTTP API that every screen uses. The session is an
// HttpOnly cookie set by bedrud: this file never sees or stores a token. Same-origin fetches
// carry the page's Origin, which bedrud checks on every state-changing request.

import type { components } from "./api.gen";

// The API's types come from its OpenAPI document (web/openapi.json, written by `bedrud openapi`;
// `make api-types` regenerates api.gen.ts from it).
type Schemas = components["schemas"];
export type Role = Schemas["Role"];
export type JoinRole = Schemas["JoinRole"];
export type User = Schemas["UserView"];
export type Info = Schemas["Info"];
/** An OpenID Connect provider: one sign-in button. */
export type SsoProvider = Schemas["OidcButton"];
export type Passkey = Schemas["PasskeyView"];
/** A WebAuthn challenge from bedrud: the browser's options (binary fields in base64url) and the ceremony to send back. */
export type Ceremony = Schemas["CeremonyAnswer"];
export type RoomSettings = Schemas["RoomSettings"];
export type Room = Schemas["RoomView"];
export type Join = Schemas["JoinAnswer"];
/** A join that ended in the lobby (HTTP 202): no token until a host admits the person. */
export type Waiting = Schemas["LobbyAnswer"];
export type InviteRole = Schemas["InviteRole"];
export type Invite = Schemas["InviteView"];
/** Someone waiting in a room's lobby. */
export type LobbyEntry = Schemas["LobbyEntry"];
/** Where the caller stands in a lobby. */
export type LobbyPlace = Schemas["Place"];
export type Ban = Schemas["Ban"];
export type Track = Schemas["TrackInfo"];
export type Participant = Schemas["Participant"];
export type HistoryEntry = Schemas["HistoryEntry"];
export type Overview = Schemas["Overview"];
export type AdminRoom = Schemas["AdminRoom"];

export type Source = "microphone" | "camera" | "screen_share";

/** An error answer of the API: `{"error":{"code","message"}}`, or a network failure. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

type Method = "GET" | "POST" | "PUT" | "DELETE";

async function call<T>(method: Method, path: string, body?: unknown): Promise<T> {
  let resp: Response;
  try {
    resp = await fetch(path, {
      method,
      credentials: "same-origin",
      headers: body === undefined ? { accept: "application/json" } : { accept: "application/json", "content-type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch {
    throw new ApiError(0, "network", "");
  }
  const text = await resp.text();
  let data: unknown = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = null;
    }
  }
  if (!resp.ok) {
    const err = (data as { error?: { code?: string; message?: string } } | null)?.error;
    throw new ApiError(resp.status, err?.code ?? `http_${resp.status}`, err?.message ?? resp.statusText);
  }
  return data as T;
}

const enc = encodeURIComponent;
const room = (name: string) => `/api/room/${enc(name)}`;

/**
 * Follows a server-sent event stream of bedrud: `onData` gets the JSON of each `event` event,
 * `onLive` whether the stream is connected. The browser reconnects by itself while it can;
 * when it gives up, the stream is opened again after 5 s. Returns a stop function.
 */
function follow<T>(url: string, event: string, onData: (data: T) => void, onLive: (live: boolean) => void = () => undefined): () => void {
  let stopped = false;
  let source: EventSource | null = null;
  const open = () => {
    if (stopped) return;
    source = new EventSource(url);
    source.addEventListener(event, (e) => {
      onLive(true);
      try {
        onData(JSON.parse((e as MessageEvent<string>).data) as T);
      } catch {
        /* a malformed event is skipped; the next one repeats the whole state */
      }
    });
    source.onerror = () => {
      onLive(false);
      if (source?.readyState === EventSource.CLOSED) {
        source = null;
        window.setTimeout(open, 5000);
      }
    };
  };
  open();
  return () => {
    stopped = true;
    source?.close();
  };
}

export const api = {
  info: () => call<Info>("GET", "/api/info"),
  me: () => call<{ user: User }>("GET", "/api/auth/me").then((r) => r.user),
  login: (username: string, password: string) =>
    call<{ expiresAt: number; user: User }>("POST", "/api/auth/login", { username, password, session: "cookie" }).then((r) => r.user),
  register: (username: string, password: string) => call<{ user: User }>("POST", "/api/auth/register", { username, password }),
  /** Whether this bedrud still waits for its first administrator. */
  setupNeeded: () => call<{ needed: boolean }>("GET", "/api/setup").then((r) => r.needed),
  /** Creates the first administrator with the one-time setup token, and signs in as it. */
  setup: (token: string, username: string, password: string) =>
    call<{ expiresAt: number; user: User }>("POST", "/api/setup", { token, username, password, session: "cookie" }).then((r) => r.user),
  logout: () => call<void>("POST", "/api/auth/logout"),
  changePassword: (currentPassword: string, newPassword: string) => call<unknown>("PUT", "/api/auth/password", { currentPassword, newPassword }),
  /** Where the browser goes to sign in with an OpenID provider (a navigation, not a fetch). */
  ssoStart: (provider: string, next: string) => `/api/auth/oidc/${enc(provider)}/start?next=${enc(next)}`,
  forgotPassword: (email: string, lang: string) => call<void>("POST", "/api/auth/password/forgot", { email, lang }),
  resetPassword: (token: string, newPassword: string) => call<{ user: User }>("POST", "/api/auth/password/reset", { token, newPassword }).then((r) => r.user),

  email: {
    set: (email: string, lang: string) => call<{ user: User; verificationSent: boolean }>("PUT", "/api/auth/email", { email, lang }),
    resend: (lang: string) => call<void>("POST", "/api/auth/email/resend", { lang }),
    verify: (token: string) => call<{ user: User }>("POST", "/api/auth/email/verify", { token }).then((r) => r.user),
  },

  passkeys: {
    list: () => call<{ passkeys: Passkey[] }>("GET", "/api/auth/passkeys").then((r) => r.passkeys),
    options: () => call<Ceremony>("POST", "/api/auth/passkeys/options"),
    register: (ceremony: string, name: string, credential: unknown) =>
      call<{ passkey: Passkey }>("POST", "/api/auth/passkeys", { ceremony, name, credential }).then((r) => r.passkey),
    remove: (id: string) => call<void>("DELETE", `/api/auth/passkeys/${enc(id)}`),
    signInOptions: (username: string) => call<Ceremony>("POST", "/api/auth/passkey/options", { username }),
    signIn: (ceremony: string, credential: unknown) =>
      call<{ user: User }>("POST", "/api/auth/passkey/login", { ceremony, credential, session: "cookie" }).then((r) => r.user),
  },

  rooms: {
    list: (after?: string, limit = 50) =>
      call<{ rooms: Room[]; next: string | null }>("GET", `/api/room/list?limit=${limit}${after ? `&after=${enc(after)}` : ""}`),
    get: (name: string) => call<{ room: Room }>("GET", room(name)).then((r) => r.room),
    create: (name: string, settings?: Partial<RoomSettings>) => call<{ room: Room }>("POST", "/api/room/create", { name, settings }).then((r) => r.room),
    remove: (name: string) => call<void>("DELETE", room(name)),
    update: (name: string, patch: Partial<RoomSettings>) => call<{ room: Room }>("PUT", `${room(name)}/settings`, patch).then((r) => r.room),
    addModerator: (name: string, user: string) => call<void>("POST", `${room(name)}/moderators/${enc(user)}`),
    removeModerator: (name: string, user: string) => call<void>("DELETE", `${room(name)}/moderators/${enc(user)}`),
    /** A token (`Join`), or a place in the lobby (`Waiting`, HTTP 202). */
    join: (name: string, displayName?: string, invite?: string) =>
      call<Join | Waiting>("POST", "/api/room/join", { room: name, name: displayName || undefined, session: "cookie", invite: invite || undefined }),
    participants: (name: string) => call<{ participants: Participant[] }>("GET", `${room(name)}/participants`).then((r) => r.participants),
    kick: (name: string, identity: string) => call<unknown>("POST", `${room(name)}/kick/${enc(identity)}`),
    mute: (name: string, identity: string, source: Source, muted = true) => call<unknown>("POST", `${room(name)}/mute/${enc(identity)}`, { source, muted }),
    permissions: (name: string, identity: string, p: { canPublish?: boolean; canPublishData?: boolean; canSubscribe?: boolean }) =>
      call<unknown>("PUT", `${room(name)}/permissions/${enc(identity)}`, p),

    invites: (name: string) => call<{ invites: Invite[] }>("GET", `${room(name)}/invites`).then((r) => r.invites),
    /** The answer's `token` (the link's secret) is shown once; bedrud keeps only its hash. */
    createInvite: (name: string, opts: { role: InviteRole; expiresIn: number; maxUses?: number; email?: string; lang?: string }) =>
      call<Schemas["NewInviteAnswer"]>("POST", `${room(name)}/invites`, opts),
    revokeInvite: (name: string, id: string) => call<void>("DELETE", `${room(name)}/invites/${enc(id)}`),
    checkInvite: (token: string) => call<Schemas["InviteCheckAnswer"]>("POST", "/api/invite/check", { token }).then((r) => r.invite),

    lobby: (name: string) => call<Schemas["Waiting"]>("GET", `${room(name)}/lobby`).then((r) => r.waiting),
    admit: (name: string, who: string | "all") => call<Schemas["Admitted"]>("POST", `${room(name)}/lobby/admit`, who === "all" ? { all: true } : { identity: who }),
    deny: (name: string, who: string | "all") => call<Schemas["Denied"]>("POST", `${room(name)}/lobby/deny`, who === "all" ? { all: true } : { identity: who }),
    /** Managers: the lobby's list, live. */
    watchLobby: (name: string, onList: (waiting: LobbyEntry[]) => void) => follow<Schemas["Waiting"]>(`${room(name)}/lobby/events`, "lobby", (d) => onList(d.waiting)),
    /** The caller's own place in the lobby, live. */
    waitInLobby: (name: string, onPlace: (p: LobbyPlace) => void, onLive?: (live: boolean) => void) => follow<LobbyPlace>(`${room(name)}/lobby/wait`, "status", onPlace, onLive),

    lock: (name: string, locked: boolean) => call<{ locked: boolean }>("PUT", `${room(name)}/lock`, { locked }),
    bans: (name: string) => call<{ bans: Ban[] }>("GET", `${room(name)}/bans`).then((r) => r.bans),
    ban: (name: string, identity: string) => call<{ ban: Ban }>("POST", `${room(name)}/bans/${enc(identity)}`, {}),
    unban: (name: string, identity: string) => call<void>("DELETE", `${room(name)}/bans/${enc(identity)}`),
    end: (name: string) => call<Schemas["Ended"]>("POST", `${room(name)}/end`, {}),
    hand: (name: string, identity: string, raised: boolean) => call<Schemas["HandAnswer"]>("PUT", `${room(name)}/hands/${enc(identity)}`, { raised }),
    promote: (name: string, identity: string) => call<Schemas["SpeakerAnswer"]>("PUT", `${room(name)}/speakers/${enc(identity)}`, {}),
    demote: (name: string, identity: string) => call<Schemas["SpeakerAnswer"]>("DELETE", `${room(name)}/speakers/${enc(identity)}`),
    spotlight: (name: string, identity: string | null) => call<{ spotlight: string | null }>("PUT", `${room(name)}/spotlight`, { identity }),
  },

  admin: {
    users: () => call<{ users: User[] }>("GET", "/api/admin/users").then((r) => r.users),
    createUser: (username: string, password: string, role: Role) => call<{ user: User }>("POST", "/api/admin/users", { username, password, role }),
    updateUser: (name: string, patch: { role?: Role; disabled?: boolean }) => call<{ user: User }>("PUT", `/api/admin/users/${enc(name)}`, patch),
    deleteUser: (name: string) => call<void>("DELETE", `/api/admin/users/${enc(name)}`),
    overview: () => call<Overview>("GET", "/api/admin/overview"),
    rooms: () => call<{ rooms: AdminRoom[] }>("GET", "/api/admin/rooms").then((r) => r.rooms),
    roomParticipants: (name: string) =>
      call<{ participants: Participant[]; history: HistoryEntry[] }>("GET", `/api/admin/rooms/${enc(name)}/participants`),
    /**
     * Follows `GET /api/admin/events`: `onOverview` gets each `overview` event. When the stream
     * drops, the overview is polled every 5 s until the stream is back. Returns a stop function.
     */
    watch(onOverview: (o: Overview) => void, onLive: (live: boolean) => void): () => void {
      let poll: number | undefined;
      const stopPolling = () => {
        if (poll !== undefined) window.clearInterval(poll);
        poll = undefined;
      };
      const stopStream = follow<Overview>("/api/admin/events", "overview", onOverview, (live) => {
        onLive(live);
        if (live) return stopPolling();
        if (poll !== undefined) return;
        const tick = () => api.admin.overview().then(onOverview, () => undefined);
        tick();
        poll = window.setInterval(tick, 5000);
      });
      return () => {
        stopStream();
        stopPolling();
      };
    },
  },
};
