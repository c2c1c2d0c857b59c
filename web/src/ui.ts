// Pieces every app page shares: the page frame with its header, toasts, dialogs, the language
// switch, and copying to the clipboard.

import { ApiError, api } from "./api";
import { h, replace } from "./dom";
import { LANGS, lang, setLang, t } from "./i18n";
import type { Key } from "./locales/en";
import { icon, type IconName } from "./icons";
import { navigate, session } from "./router";

/** Refusals a visitor meets on the way into a meeting, said in their language. */
const KNOWN: Record<string, Key> = {
  banned: "error.banned",
  room_locked: "error.roomLocked",
  room_full: "error.roomFull",
  invite_expired: "error.inviteExpired",
  invite_used_up: "error.inviteUsedUp",
  invite_revoked: "error.inviteRevoked",
  invite_withdrawn: "error.inviteWithdrawn",
  invite_not_found: "error.inviteNotFound",
};

/** The message to show for a failed API call: bedrud's own message when it sent one (or, for
 * the refusals above, the same in the visitor's language). */
export function errorText(e: unknown): string {
  if (e instanceof ApiError) return e.code === "network" ? t("error.network") : KNOWN[e.code] ? t(KNOWN[e.code]) : e.message;
  return t("error.generic", { message: e instanceof Error ? e.message : String(e) });
}

export function button(label: string, opts: { icon?: IconName; kind?: string; onclick?: (e: Event) => void; type?: string; iconOnly?: boolean; attrs?: Record<string, unknown> } = {}): HTMLButtonElement {
  const cls = `btn ${opts.kind ?? ""}${opts.iconOnly ? " icon-only" : ""}`.trim();
  return h(
    "button",
    { type: opts.type ?? "button", class: cls, onclick: opts.onclick, "aria-label": opts.iconOnly ? label : undefined, title: opts.iconOnly ? label : undefined, ...opts.attrs },
    opts.icon ? icon(opts.icon) : null,
    opts.iconOnly ? null : h("span", null, label),
  );
}

/** Shows `busy` on a button while `work` runs. */
export async function busy<T>(btn: HTMLButtonElement, work: () => Promise<T>): Promise<T> {
  btn.disabled = true;
  btn.setAttribute("aria-busy", "true");
  try {
    return await work();
  } finally {
    btn.disabled = false;
    btn.removeAttribute("aria-busy");
  }
}

export type FormError = { el: HTMLElement; show: (msg: string | null) => void };

/**
 * A form's submit handler: clears `err`, runs `work` with `btn` busy, and shows in `err` the
 * message `work` returns (a check that failed) or the one `fail` makes of what it threw.
 */
export function submitting(btn: HTMLButtonElement, err: FormError, work: () => Promise<string | void>, fail: (e: unknown) => string = errorText): (e: Event) => void {
  return (e: Event) => {
    e.preventDefault();
    err.show(null);
    void busy(btn, async () => {
      try {
        const problem = await work();
        if (problem) err.show(problem);
      } catch (x) {
        err.show(fail(x));
      }
    });
  };
}

/** The inline error box of a form: role=alert so screen readers announce it. */
export function formError(): FormError {
  const el = h("p", { class: "form-error", role: "alert", hidden: true });
  return {
    el,
    show(msg) {
      el.hidden = !msg;
      replace(el, msg ? [icon("alert"), h("span", null, msg)] : []);
    },
  };
}

let toastRegion: HTMLElement | null = null;

export function toast(message: string, kind: "ok" | "error" | "info" = "ok"): void {
  if (!toastRegion) toastRegion = h("div", { class: "toasts", role: "status", "aria-live": "polite" });
  // An open modal dialog sits in the top layer and makes the rest of the page inert: toasts
  // then live inside it, so they are seen and announced (see dialog(), which hands them back).
  const host = document.querySelector<HTMLDialogElement>("dialog[open]") ?? document.body;
  if (toastRegion.parentElement !== host) host.appendChild(toastRegion);
  // The same message again replaces the one still showing rather than stacking a copy.
  for (const old of toastRegion.querySelectorAll<HTMLElement>(".toast")) if (old.textContent === message) old.remove();
  const el = h("div", { class: `toast toast-${kind}` }, icon(kind === "error" ? "alert" : kind === "info" ? "bell" : "check"), h("span", null, message));
  toastRegion.appendChild(el);
  window.setTimeout(() => el.classList.add("leaving"), 3500);
  window.setTimeout(() => el.remove(), 4000);
}

/** A modal dialog (native <dialog>: focus trap and Escape come with it). */
export function dialog(title: string, body: Node | Node[], opts: { onclose?: () => void; wide?: boolean } = {}): { el: HTMLDialogElement; close: () => void } {
  const id = `dlg-${Math.random().toString(36).slice(2, 8)}`;
  const el = h(
    "dialog",
    { class: `dialog${opts.wide ? " wide" : ""}`, "aria-labelledby": id },
    h("header", { class: "dialog-head" }, h("h2", { id }, title), button(t("common.close"), { icon: "close", iconOnly: true, kind: "ghost", onclick: () => el.close() })),
    h("div", { class: "dialog-body" }, body),
  );
  el.addEventListener("close", () => {
    if (toastRegion && el.contains(toastRegion)) document.body.appendChild(toastRegion);
    el.remove();
    opts.onclose?.();
  });
  el.addEventListener("click", (e) => {
    if (e.target === el) el.close();
  });
  document.body.appendChild(el);
  el.showModal();
  return { el, close: () => el.close() };
}

export function confirmDialog(message: string, confirmLabel: string): Promise<boolean> {
  return new Promise((resolve) => {
    let answer = false;
    const ok = button(confirmLabel, { kind: "danger", onclick: () => ((answer = true), d.close()) });
    const cancel = button(t("common.cancel"), { kind: "secondary", onclick: () => d.close() });
    const d = dialog(confirmLabel, [h("p", null, message), h("div", { class: "actions" }, cancel, ok)], { onclose: () => resolve(answer) });
    cancel.focus();
  });
}

export async function copyText(text: string): Promise<boolean> {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    return false;
  }
}

export function langSwitch(compact = false): HTMLElement {
  const id = `lang-${Math.random().toString(36).slice(2, 8)}`;
  const sel = h(
    "select",
    { id, class: "lang-select", onchange: (e: Event) => setLang((e.target as HTMLSelectElement).value as "en" | "zh") },
    LANGS.map((l) => h("option", { value: l.code, selected: l.code === lang() }, l.label)),
  );
  return h("div", { class: `lang${compact ? " compact" : ""}` }, h("label", { for: id, class: "sr-only" }, t("app.language")), icon("globe"), sel);
}

export function brand(): HTMLElement {
  return h("a", { href: "/", class: "brand", "data-link": true }, h("span", { class: "logo", "aria-hidden": "true" }, icon("video")), h("span", null, t("app.name")));
}

export async function signOut(): Promise<void> {
  try {
    await api.logout();
  } catch {
    /* the cookie is gone either way once the session is invalid */
  }
  session.user = null;
  navigate("/signin");
}

/** The frame of the signed-in pages: header with navigation, language and account. */
export function appFrame(active: "home" | "admin" | "account", content: Node[]): HTMLElement {
  const user = session.user;
  const link = (path: string, key: "nav.home" | "nav.admin" | "nav.account", name: typeof active, ic: IconName) =>
    h("a", { href: path, "data-link": true, class: `nav-link${active === name ? " active" : ""}`, "aria-current": active === name ? "page" : undefined }, icon(ic), h("span", null, t(key)));
  return h(
    "div",
    { class: "app" },
    h("a", { href: "#main", class: "skip" }, t("app.skip")),
    h(
      "header",
      { class: "topbar" },
      brand(),
      h(
        "nav",
        { class: "nav", "aria-label": t("app.name") },
        link("/", "nav.home", "home", "door"),
        user?.role === "admin" ? link("/admin", "nav.admin", "admin", "shield") : null,
        link("/account", "nav.account", "account", "user"),
      ),
      h("div", { class: "topbar-end" }, langSwitch(true), button(t("nav.signOut"), { icon: "logout", kind: "ghost", iconOnly: true, onclick: () => void signOut() })),
    ),
    h("main", { id: "main", class: "page", tabindex: "-1" }, content),
  );
}

export interface MenuItem {
  label: string;
  icon: IconName;
  danger?: boolean;
  run: () => void | Promise<void>;
}

let closeOpenMenu: (() => void) | null = null;

/**
 * A button that opens a small menu of actions (`role="menu"`). The menu floats above the page
 * (fixed, placed at the button), so a redraw of whatever holds the button leaves it open; a
 * choice, Escape, Tab or a click elsewhere closes it. `items` is read when it opens.
 */
export function menuButton(label: string, items: () => MenuItem[], cls = "btn ghost icon-only sm"): HTMLButtonElement {
  const trigger = h("button", { type: "button", class: cls, "aria-label": label, title: label, "aria-haspopup": "menu", "aria-expanded": "false" }, icon("more"));
  trigger.addEventListener("click", (e) => {
    e.stopPropagation();
    openMenu(trigger, label, items());
  });
  return trigger;
}

function openMenu(trigger: HTMLElement, label: string, items: MenuItem[]): void {
  closeOpenMenu?.();
  const buttons = items.map((it) =>
    h("button", { type: "button", role: "menuitem", class: `menu-item${it.danger ? " danger" : ""}`, tabindex: "-1" }, icon(it.icon, "icon xs"), h("span", null, it.label)),
  );
  const menu = h("div", { class: "menu", role: "menu", "aria-label": label }, buttons);
  (trigger.closest(".meeting") ?? document.body).append(menu);
  const r = trigger.getBoundingClientRect();
  const below = r.bottom + 4 + menu.offsetHeight <= window.innerHeight;
  menu.style.top = `${below ? r.bottom + 4 : Math.max(4, r.top - 4 - menu.offsetHeight)}px`;
  menu.style.left = `${Math.max(4, Math.min(window.innerWidth - menu.offsetWidth - 4, r.right - menu.offsetWidth))}px`;
  trigger.setAttribute("aria-expanded", "true");
  const close = (refocus = false) => {
    menu.remove();
    trigger.setAttribute("aria-expanded", "false");
    document.removeEventListener("click", outside, true);
    closeOpenMenu = null;
    if (refocus && trigger.isConnected) trigger.focus();
  };
  const outside = (e: Event) => {
    if (!menu.contains(e.target as Node)) close();
  };
  buttons.forEach((b, i) =>
    b.addEventListener("click", () => {
      close(true);
      void items[i].run();
    }),
  );
  menu.addEventListener("keydown", (e) => {
    const at = buttons.indexOf(document.activeElement as HTMLButtonElement);
    if (e.key === "Escape" || e.key === "Tab") {
      e.preventDefault();
      close(true);
    } else if (e.key === "ArrowDown" || e.key === "ArrowUp") {
      e.preventDefault();
      buttons[(at + (e.key === "ArrowDown" ? 1 : buttons.length - 1)) % buttons.length]?.focus();
    }
  });
  document.addEventListener("click", outside, true);
  closeOpenMenu = () => close();
  buttons[0]?.focus();
}
