// Client routes over the History API. bedrud answers every non-API path with index.html, so
// /r/<room>, /admin etc. load this client, which then picks the screen.

import type { Info, User } from "./api";

export const session: { info: Info; user: User | null } = {
  info: { version: "", registration: false, guestJoin: false, oidc: [], passkeys: false, mail: false },
  user: null,
};

type Render = (root: HTMLElement, params: Record<string, string>) => void | (() => void) | Promise<void | (() => void)>;

interface Route {
  pattern: RegExp;
  keys: string[];
  load: () => Promise<Render>;
}

const routes: Route[] = [];
let cleanup: (() => void) | void = undefined;
let root: HTMLElement;
let generation = 0;

export function route(path: string, load: () => Promise<Render>): void {
  const keys: string[] = [];
  const pattern = new RegExp(
    "^" + path.replace(/:(\w+)/g, (_, k: string) => (keys.push(k), "([^/]+)")) + "/?$",
  );
  routes.push({ pattern, keys, load });
}

export function navigate(path: string, replaceState = false): void {
  if (replaceState) history.replaceState(null, "", path);
  else history.pushState(null, "", path);
  void render();
}

/** Renders the screen for the current location again (e.g. after a language change). */
export async function render(): Promise<void> {
  const gen = ++generation;
  const path = location.pathname;
  for (const r of routes) {
    const m = r.pattern.exec(path);
    if (!m) continue;
    const params: Record<string, string> = {};
    r.keys.forEach((k, i) => (params[k] = decodeURIComponent(m[i + 1])));
    const screen = await r.load();
    if (gen !== generation) return;
    if (typeof cleanup === "function") cleanup();
    cleanup = undefined;
    root.replaceChildren();
    const result = await screen(root, params);
    if (gen === generation) cleanup = result;
    else if (typeof result === "function") result();
    return;
  }
}

export function startRouter(el: HTMLElement): void {
  root = el;
  window.addEventListener("popstate", () => void render());
  document.addEventListener("click", (e) => {
    const a = (e.target as Element | null)?.closest?.("a[data-link]") as HTMLAnchorElement | null;
    if (!a || e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
    e.preventDefault();
    navigate(a.getAttribute("href") ?? "/");
  });
  void render();
}

/** Sends a visitor without a session to sign in, and back here afterwards. */
export function requireUser(): boolean {
  if (session.user) return true;
  navigate(`/signin?next=${encodeURIComponent(location.pathname)}`, true);
  return false;
}
