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
export type RoomSettings = Schemas["RoomSettings"];
export type Room = Schemas["RoomView"];
export type Join = Schemas["JoinAnswer"];
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

  rooms: {
    list: (after?: string, limit = 50) =>
      call<{ rooms: Room[]; next: string | null }>("GET", `/api/room/list?limit=${limit}${after ? `&after=${enc(after)}` : ""}`),
    get: (name: string) => call<{ room: Room }>("GET", room(name)).then((r) => r.room),
    create: (name: string, settings?: Partial<RoomSettings>) => call<{ room: Room }>("POST", "/api/room/create", { name, settings }).then((r) => r.room),
    remove: (name: string) => call<void>("DELETE", room(name)),
    update: (name: string, patch: Partial<RoomSettings>) => call<{ room: Room }>("PUT", `${room(name)}/settings`, patch).then((r) => r.room),
    addModerator: (name: string, user: string) => call<void>("POST", `${room(name)}/moderators/${enc(user)}`),
    removeModerator: (name: string, user: string) => call<void>("DELETE", `${room(name)}/moderators/${enc(user)}`),
    join: (name: string, displayName?: string) => call<Join>("POST", "/api/room/join", { room: name, name: displayName || undefined, session: "cookie" }),
    participants: (name: string) => call<{ participants: Participant[] }>("GET", `${room(name)}/participants`).then((r) => r.participants),
    kick: (name: string, identity: string) => call<unknown>("POST", `${room(name)}/kick/${enc(identity)}`),
    mute: (name: string, identity: string, source: Source, muted = true) => call<unknown>("POST", `${room(name)}/mute/${enc(identity)}`, { source, muted }),
    permissions: (name: string, identity: string, p: { canPublish?: boolean; canPublishData?: boolean; canSubscribe?: boolean }) =>
      call<unknown>("PUT", `${room(name)}/permissions/${enc(identity)}`, p),
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
      let stopped = false;
      let source: EventSource | null = null;
      let poll: number | undefined;
      const startPolling = () => {
        if (poll !== undefined || stopped) return;
        const tick = () => api.admin.overview().then(onOverview, () => undefined);
        tick();
        poll = window.setInterval(tick, 5000);
      };
      const stopPolling = () => {
        if (poll !== undefined) window.clearInterval(poll);
        poll = undefined;
      };
      const open = () => {
        if (stopped) return;
        source = new EventSource("/api/admin/events");
        source.addEventListener("overview", (e) => {
          stopPolling();
          onLive(true);
          try {
            onOverview(JSON.parse((e as MessageEvent<string>).data) as Overview);
          } catch {
            /* a malformed event is skipped; the next one comes within 5 s */
          }
        });
        source.onerror = () => {
          onLive(false);
          // EventSource retries by itself while the connection is CONNECTING; poll meanwhile,
          // and reopen it when the browser gave up (CLOSED).
          startPolling();
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
        stopPolling();
      };
    },
  },
};
