// Admin console: the LiveKit card (live through the event stream), counts, users (create,
// role, disable, delete) and rooms with live counts and their history.

import { api, type AdminRoom, type Overview, type Role, type User } from "../api";
import { field, h, replace } from "../dom";
import { formatAgo, formatTime, t } from "../i18n";
import { icon } from "../icons";
import { navigate, requireUser, session } from "../router";
import { appFrame, busy, button, confirmDialog, dialog, errorText, formError, toast } from "../ui";

type Tab = "overview" | "users" | "rooms";

/** `restarting (attempt 2, last error: …)` -> `restarting`. */
export function stateWord(state: string): string {
  return state.split(/[\s:(]/)[0] ?? state;
}

export function render(root: HTMLElement): () => void {
  if (!requireUser()) return () => undefined;
  if (session.user!.role !== "admin") {
    navigate("/", true);
    return () => undefined;
  }
  const params = new URLSearchParams(location.search);
  let tab: Tab = (["overview", "users", "rooms"] as const).find((x) => x === params.get("tab")) ?? "overview";
  let overview: Overview | null = null;
  let live = false;

  const body = h("div", { class: "admin-body" });
  const tabs = h("div", { class: "tabs", role: "tablist", "aria-label": t("admin.title") });
  const lkCard = h("section", { class: "card lk-card", "aria-labelledby": "lk-h" });
  const stats = h("div", { class: "stats" });

  function drawTabs(): void {
    replace(
      tabs,
      (["overview", "users", "rooms"] as const).map((x) =>
        h(
          "button",
          {
            type: "button",
            role: "tab",
            id: `tab-${x}`,
            "aria-selected": String(tab === x),
            "aria-controls": "admin-panel",
            tabindex: tab === x ? "0" : "-1",
            class: `tab${tab === x ? " active" : ""}`,
            onclick: () => select(x),
            onkeydown: (e: KeyboardEvent) => {
              const order: Tab[] = ["overview", "users", "rooms"];
              const i = order.indexOf(tab);
              if (e.key === "ArrowRight") select(order[(i + 1) % 3], true);
              if (e.key === "ArrowLeft") select(order[(i + 2) % 3], true);
            },
          },
          icon(x === "overview" ? "server" : x === "users" ? "users" : "door"),
          h("span", null, t(`admin.${x}`)),
        ),
      ),
    );
  }

  function select(x: Tab, focus = false): void {
    tab = x;
    history.replaceState(null, "", x === "overview" ? "/admin" : `/admin?tab=${x}`);
    drawTabs();
    drawBody();
    if (focus) (tabs.querySelector(`#tab-${x}`) as HTMLElement | null)?.focus();
  }

  function drawLivekit(): void {
    if (!overview) {
      replace(lkCard, h("p", { class: "muted" }, t("app.loading")));
      return;
    }
    const lk = overview.livekit;
    const word = stateWord(lk.state);
    const stateKey = `admin.state.${word}` as "admin.state.ready";
    const known = ["starting", "ready", "restarting", "failed", "unreachable", "stopped"].includes(word);
    const row = (label: string, value: Node | string) => h("div", { class: "kv" }, h("dt", null, label), h("dd", null, value));
    const lastSeen = overview.webhook.lastSeen;
    replace(
      lkCard,
      h(
        "header",
        { class: "card-head" },
        h("div", { class: "card-title" }, h("span", { class: "card-icon", "aria-hidden": "true" }, icon("server")), h("h2", { id: "lk-h" }, t("admin.livekit"))),
        h("span", { class: `stream${live ? " on" : ""}`, title: live ? t("admin.live") : t("admin.polling") }, h("span", { class: "dot", "aria-hidden": "true" }), live ? t("admin.live") : t("admin.polling")),
      ),
      h("div", { class: "lk-state", "data-state": word }, h("span", { class: `state-badge s-${word}`, role: "status", "aria-live": "polite" }, h("span", { class: "dot", "aria-hidden": "true" }), known ? t(stateKey) : word)),
      h(
        "dl",
        { class: "kvs" },
        row(t("admin.mode"), lk.mode === "external" ? t("admin.mode.external") : t("admin.mode.embedded")),
        row(t("admin.version"), lk.version ?? t("common.none")),
        row(t("admin.restarts"), String(lk.restarts)),
        row(t("admin.nodeIp"), lk.nodeIp ?? t("common.none")),
        row(t("admin.lastWebhook"), lastSeen ? h("time", { datetime: new Date(lastSeen).toISOString(), title: formatTime(lastSeen) }, formatAgo(lastSeen)) : t("common.never")),
      ),
      lk.lastError ? h("div", { class: "lk-error" }, h("h3", null, t("admin.lastError")), h("pre", null, lk.lastError)) : null,
    );
  }

  function drawStats(): void {
    if (!overview) return replace(stats);
    const stat = (label: string, value: number, ic: "users" | "door" | "video" | "user") => h("div", { class: "stat card" }, h("span", { class: "stat-icon", "aria-hidden": "true" }, icon(ic)), h("div", null, h("p", { class: "stat-value" }, String(value)), h("p", { class: "stat-label" }, label)));
    replace(
      stats,
      stat(t("admin.stat.liveRooms"), overview.liveRooms, "video"),
      stat(t("admin.stat.liveParticipants"), overview.liveParticipants, "user"),
      stat(t("admin.stat.rooms"), overview.rooms, "door"),
      stat(t("admin.stat.users"), overview.users, "users"),
    );
  }

  // ---- users -------------------------------------------------------------------------------

  async function drawUsers(panel: HTMLElement): Promise<void> {
    const tableBody = h("tbody");
    const draw = (users: User[]) =>
      replace(
        tableBody,
        users.map((u) => {
          const me = u.id === session.user!.id;
          const roleSel = h(
            "select",
            { "aria-label": t("admin.roleOf", { name: u.username }) },
            (["user", "admin"] as Role[]).map((r) => h("option", { value: r, selected: u.role === r }, t(`admin.role.${r}`))),
          );
          roleSel.addEventListener("change", async () => {
            try {
              await api.admin.updateUser(u.username, { role: roleSel.value as Role });
              await refresh();
            } catch (e) {
              toast(errorText(e), "error");
              roleSel.value = u.role;
            }
          });
          return h(
            "tr",
            null,
            h("td", null, h("div", { class: "user-cell" }, h("span", { class: "avatar sm", "aria-hidden": "true" }, u.username.slice(0, 1).toUpperCase()), h("span", null, u.username, me ? h("span", { class: "muted small" }, ` (${t("admin.you")})`) : null))),
            h("td", null, roleSel),
            h("td", null, h("span", { class: `badge ${u.disabled ? "warn" : "ok"}` }, u.disabled ? t("admin.disabled") : t("admin.active"))),
            h("td", { class: "muted small" }, formatTime(u.createdAt)),
            h(
              "td",
              { class: "row-actions" },
              button(u.disabled ? t("admin.enable", { name: u.username }) : t("admin.disable", { name: u.username }), {
                icon: u.disabled ? "check" : "ban",
                iconOnly: true,
                kind: "ghost",
                onclick: async () => {
                  try {
                    await api.admin.updateUser(u.username, { disabled: !u.disabled });
                    await refresh();
                  } catch (e) {
                    toast(errorText(e), "error");
                  }
                },
              }),
              button(t("admin.deleteUser", { name: u.username }), {
                icon: "trash",
                iconOnly: true,
                kind: "ghost danger-text",
                onclick: async () => {
                  if (!(await confirmDialog(t("admin.deleteUserConfirm", { name: u.username }), t("common.delete")))) return;
                  try {
                    await api.admin.deleteUser(u.username);
                    await refresh();
                  } catch (e) {
                    toast(errorText(e), "error");
                  }
                },
              }),
            ),
          );
        }),
      );
    const refresh = async () => draw(await api.admin.users());
    const name = h("input", { autocomplete: "off", autocapitalize: "none", spellcheck: "false", required: true });
    const pw = h("input", { type: "password", autocomplete: "new-password", required: true });
    const role = h("select", null, (["user", "admin"] as Role[]).map((r) => h("option", { value: r }, t(`admin.role.${r}`))));
    const err = formError();
    const submit = button(t("admin.createUser"), { type: "submit", kind: "primary", icon: "plus" });
    const form = h(
      "form",
      {
        class: "create-user",
        onsubmit: (e: Event) => {
          e.preventDefault();
          err.show(null);
          void busy(submit, async () => {
            try {
              await api.admin.createUser(name.value.trim(), pw.value, role.value as Role);
              toast(t("admin.userCreated", { name: name.value.trim() }));
              (form as HTMLFormElement).reset();
              await refresh();
            } catch (e) {
              err.show(errorText(e));
            }
          });
        },
      },
      h("div", { class: "form-row" }, field(t("admin.username"), name), field(t("admin.password"), pw), field(t("admin.role"), role), submit),
      err.el,
    );
    replace(
      panel,
      h("section", { class: "card", "aria-labelledby": "nu-h" }, h("h2", { id: "nu-h" }, t("admin.newUser")), form),
      h(
        "section",
        { class: "card flush" },
        h("div", { class: "table-wrap" }, h("table", { class: "table" }, h("caption", { class: "sr-only" }, t("admin.users")), h("thead", null, h("tr", null, h("th", { scope: "col" }, t("admin.username")), h("th", { scope: "col" }, t("admin.role")), h("th", { scope: "col" }, t("admin.status")), h("th", { scope: "col" }, t("admin.created")), h("th", { scope: "col" }, h("span", { class: "sr-only" }, t("admin.actions"))))), tableBody)),
      ),
    );
    try {
      await refresh();
    } catch (e) {
      replace(tableBody, h("tr", null, h("td", { colspan: "5", role: "alert" }, errorText(e))));
    }
  }

  // ---- rooms -------------------------------------------------------------------------------

  async function showHistory(room: string): Promise<void> {
    try {
      const { history } = await api.admin.roomParticipants(room);
      const content =
        history.length === 0
          ? h("p", { class: "muted" }, t("admin.noHistory"))
          : h(
              "div",
              { class: "table-wrap" },
              h(
                "table",
                { class: "table" },
                h("thead", null, h("tr", null, h("th", { scope: "col" }, t("admin.name")), h("th", { scope: "col" }, t("admin.joined")), h("th", { scope: "col" }, t("admin.leftAt")), h("th", { scope: "col" }, t("admin.reason")))),
                h(
                  "tbody",
                  null,
                  history.map((e) =>
                    h(
                      "tr",
                      null,
                      h("td", null, e.name || e.identity),
                      h("td", { class: "small" }, formatTime(e.joinedAt)),
                      h("td", { class: "small" }, e.leftAt ? formatTime(e.leftAt) : h("span", { class: "badge ok" }, t("admin.stillHere"))),
                      h("td", { class: "small muted" }, e.leaveReason ?? t("common.none")),
                    ),
                  ),
                ),
              ),
            );
      dialog(t("admin.history", { room }), content, { wide: true });
    } catch (e) {
      toast(errorText(e), "error");
    }
  }

  async function drawRooms(panel: HTMLElement): Promise<void> {
    const tbody = h("tbody");
    replace(
      panel,
      h(
        "section",
        { class: "card flush" },
        h("div", { class: "table-wrap" }, h("table", { class: "table" }, h("caption", { class: "sr-only" }, t("admin.rooms")), h("thead", null, h("tr", null, h("th", { scope: "col" }, t("admin.room")), h("th", { scope: "col" }, t("admin.liveCount")), h("th", { scope: "col" }, t("admin.guests")), h("th", { scope: "col" }, t("admin.created")), h("th", { scope: "col" }, h("span", { class: "sr-only" }, t("admin.actions"))))), tbody)),
      ),
    );
    const fill = (rooms: AdminRoom[]) =>
      replace(
        tbody,
        rooms.length === 0
          ? h("tr", null, h("td", { colspan: "5", class: "muted" }, t("admin.noRooms")))
          : rooms.map((r) =>
              h(
                "tr",
                null,
                h("td", null, h("a", { href: `/r/${encodeURIComponent(r.name)}`, "data-link": true, class: "strong" }, r.name)),
                h("td", null, h("span", { class: `live${r.liveParticipants > 0 ? " on" : ""}` }, h("span", { class: "dot", "aria-hidden": "true" }), String(r.liveParticipants))),
                h("td", null, r.settings.public ? t("common.yes") : t("common.no")),
                h("td", { class: "muted small" }, formatTime(r.createdAt)),
                h("td", { class: "row-actions" }, button(t("admin.historyShort"), { icon: "clock", kind: "ghost sm", onclick: () => void showHistory(r.name), attrs: { "aria-label": t("admin.showHistory", { room: r.name }) } })),
              ),
            ),
      );
    try {
      fill(await api.admin.rooms());
    } catch (e) {
      replace(tbody, h("tr", null, h("td", { colspan: "5", role: "alert" }, errorText(e))));
    }
  }

  function drawBody(): void {
    const panel = h("div", { id: "admin-panel", role: "tabpanel", "aria-labelledby": `tab-${tab}`, class: "tab-panel" });
    if (tab === "overview") {
      panel.append(stats, lkCard);
      drawLivekit();
      drawStats();
    } else if (tab === "users") {
      void drawUsers(panel);
    } else {
      void drawRooms(panel);
    }
    replace(body, panel);
  }

  root.append(appFrame("admin", [h("div", { class: "page-head" }, h("h1", null, t("admin.title"))), tabs, body]));
  drawTabs();
  drawBody();
  const stop = api.admin.watch(
    (o) => {
      overview = o;
      drawLivekit();
      drawStats();
    },
    (l) => {
      live = l;
      if (overview) drawLivekit();
    },
  );
  return stop;
}
