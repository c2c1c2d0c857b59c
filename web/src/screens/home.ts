// Home: my rooms (owned, moderated, public), creating one, its settings, moderators and bans,
// deleting it, its link, and its invite links (made, listed, revoked; each secret shown once).

import { api, type Invite, type InviteRole, type Room, type RoomSettings } from "../api";
import { field, h, replace } from "../dom";
import { formatTime, lang, t } from "../i18n";
import { icon } from "../icons";
import { requireUser, session } from "../router";
import { appFrame, busy, button, confirmDialog, copyText, dialog, errorText, formError, toast } from "../ui";

export function inviteLink(room: string): string {
  return `${location.origin}/r/${encodeURIComponent(room)}`;
}

function canManage(r: Room): boolean {
  const u = session.user;
  return !!u && (u.role === "admin" || r.owner === u.username || r.moderators.includes(u.username));
}

/** Fills `list` with a row per item `load` returns (`empty` when none), or with its error. */
async function fillList<T>(list: HTMLElement, load: () => Promise<T[]>, empty: string, row: (item: T) => Node): Promise<void> {
  try {
    const items = await load();
    replace(list, items.length === 0 ? h("li", { class: "muted small" }, empty) : items.map(row));
  } catch (e) {
    replace(list, h("li", { class: "form-error", role: "alert" }, errorText(e)));
  }
}

export function render(root: HTMLElement): void {
  if (!requireUser()) return;
  const me = session.user!;
  const list = h("ul", { class: "room-grid", "aria-label": t("home.title") });
  const moreBox = h("div", { class: "more" });
  const rooms = new Map<string, Room>();
  let next: string | null = null;

  const name = h("input", { name: "room", autocomplete: "off", spellcheck: "false", autocapitalize: "none", placeholder: "team-sync", "aria-describedby": "room-hint" });
  const err = formError();
  const create = button(t("home.createSubmit"), { type: "submit", kind: "primary", icon: "plus" });
  const form = h(
    "form",
    {
      class: "create-room",
      onsubmit: (e: Event) => {
        e.preventDefault();
        err.show(null);
        void busy(create, async () => {
          try {
            const r = await api.rooms.create(name.value.trim());
            rooms.set(r.name, r);
            name.value = "";
            draw();
          } catch (e) {
            err.show(errorText(e));
            name.focus();
          }
        });
      },
    },
    h("label", { for: "room-name", class: "sr-only" }, t("home.roomName")),
    h("div", { class: "create-row" }, Object.assign(name, { id: "room-name" }), create),
    h("p", { class: "hint", id: "room-hint" }, t("home.roomNameHint")),
    err.el,
  );
  name.setAttribute("aria-label", t("home.roomName"));

  function card(r: Room): HTMLElement {
    const manage = canManage(r);
    const mine = r.owner === me.username;
    const badges = [
      mine ? h("span", { class: "badge accent" }, t("home.owner")) : r.moderators.includes(me.username) ? h("span", { class: "badge" }, t("home.moderator")) : null,
      h("span", { class: "badge subtle" }, icon(r.settings.public ? "globe" : "lock", "icon xs"), r.settings.public ? t("home.public") : t("home.private")),
      r.settings.lobby ? h("span", { class: "badge subtle" }, icon("hourglass", "icon xs"), t("home.lobby")) : null,
      r.settings.stage ? h("span", { class: "badge subtle" }, icon("users", "icon xs"), t("home.stage")) : null,
    ];
    const live = r.liveParticipants > 0;
    return h(
      "li",
      { class: "room-card", "aria-labelledby": `room-${r.name}` },
      h(
        "div",
        { class: "room-head" },
        h("div", { class: "room-avatar", "aria-hidden": "true" }, icon("video")),
        h("div", { class: "room-title" }, h("h3", { id: `room-${r.name}` }, r.name), h("p", { class: "muted small" }, r.owner && !mine ? t("home.ownedBy", { owner: r.owner }) : "")),
      ),
      h("div", { class: "badges" }, badges),
      h("p", { class: `live${live ? " on" : ""}` }, h("span", { class: "dot", "aria-hidden": "true" }), live ? t("home.live", { count: r.liveParticipants }) : t("home.idle")),
      h(
        "div",
        { class: "room-actions" },
        h("a", { class: "btn primary", href: `/r/${encodeURIComponent(r.name)}`, "data-link": true, "aria-label": t("home.joinRoom", { room: r.name }) }, icon("video"), h("span", null, t("home.join"))),
        button(t("home.copyLink", { room: r.name }), {
          icon: "link",
          iconOnly: true,
          kind: "ghost",
          onclick: async () => {
            const link = inviteLink(r.name);
            if (await copyText(link)) toast(t("home.copied"));
            else toast(t("home.copyFailed", { link }), "info");
          },
        }),
        manage ? button(t("home.invites", { room: r.name }), { icon: "key", iconOnly: true, kind: "ghost", onclick: () => openInvites(r) }) : null,
        manage ? button(t("home.settings", { room: r.name }), { icon: "settings", iconOnly: true, kind: "ghost", onclick: () => openSettings(r) }) : null,
        manage
          ? button(t("home.delete", { room: r.name }), {
              icon: "trash",
              iconOnly: true,
              kind: "ghost danger-text",
              onclick: async () => {
                if (!(await confirmDialog(t("home.deleteConfirm", { room: r.name }), t("common.delete")))) return;
                try {
                  await api.rooms.remove(r.name);
                  rooms.delete(r.name);
                  draw();
                  toast(t("home.deleted", { room: r.name }));
                } catch (e) {
                  toast(errorText(e), "error");
                }
              },
            })
          : null,
      ),
    );
  }

  function draw(): void {
    const sorted = [...rooms.values()].sort((a, b) => a.name.localeCompare(b.name));
    if (sorted.length === 0) {
      replace(list, h("li", { class: "empty" }, h("div", { class: "empty-icon", "aria-hidden": "true" }, icon("door")), h("h3", null, t("home.empty")), h("p", { class: "muted" }, t("home.emptyText"))));
    } else {
      replace(list, sorted.map(card));
    }
    replace(moreBox, next ? button(t("home.more"), { kind: "secondary", onclick: () => void load() }) : null);
  }

  async function load(): Promise<void> {
    try {
      const page = await api.rooms.list(next ?? undefined);
      for (const r of page.rooms) rooms.set(r.name, r);
      next = page.next;
      draw();
    } catch (e) {
      replace(list, h("li", { class: "empty" }, h("p", { role: "alert" }, errorText(e))));
    }
  }

  function openSettings(r: Room): void {
    const s: RoomSettings = { ...r.settings };
    const toggle = (key: keyof RoomSettings, label: string, hint?: string) => {
      const input = h("input", { type: "checkbox", role: "switch", checked: Boolean(s[key]), onchange: (e: Event) => ((s[key] as boolean) = (e.target as HTMLInputElement).checked) });
      return h("label", { class: "switch-row" }, h("span", { class: "switch-text" }, h("span", null, label), hint ? h("span", { class: "hint" }, hint) : null), input);
    };
    const max = h("input", { type: "number", min: "0", max: "10000", value: String(s.maxParticipants), inputmode: "numeric" });
    const err = formError();
    const save = button(t("settings.save"), { type: "submit", kind: "primary" });
    const mods = h("ul", { class: "mod-list" });
    const modName = h("input", { autocomplete: "off", autocapitalize: "none", spellcheck: "false" });
    const modErr = formError();
    const drawMods = () =>
      replace(
        mods,
        r.moderators.length === 0
          ? h("li", { class: "muted small" }, t("settings.noModerators"))
          : r.moderators.map((m) =>
              h(
                "li",
                null,
                h("span", { class: "avatar xs", "aria-hidden": "true" }, m.slice(0, 1).toUpperCase()),
                h("span", null, m),
                button(t("settings.removeModerator", { name: m }), {
                  icon: "close",
                  iconOnly: true,
                  kind: "ghost",
                  onclick: async () => {
                    try {
                      await api.rooms.removeModerator(r.name, m);
                      r.moderators = r.moderators.filter((x) => x !== m);
                      drawMods();
                      draw();
                    } catch (e) {
                      modErr.show(errorText(e));
                    }
                  },
                }),
              ),
            ),
      );
    drawMods();
    const addMod = button(t("settings.addModerator"), { type: "submit", kind: "secondary", icon: "plus" });
    const { el: bansBox, draw: drawBans } = bansList(r);
    const d = dialog(
      `${t("settings.title")} · ${r.name}`,
      [
        h(
          "form",
          {
            class: "form",
            onsubmit: (e: Event) => {
              e.preventDefault();
              err.show(null);
              void busy(save, async () => {
                try {
                  s.maxParticipants = Number(max.value) || 0;
                  const updated = await api.rooms.update(r.name, s);
                  rooms.set(updated.name, updated);
                  draw();
                  toast(t("settings.saved"));
                  d.close();
                } catch (e) {
                  err.show(errorText(e));
                }
              });
            },
          },
          toggle("public", t("settings.public"), t("settings.publicHint")),
          toggle("lobby", t("settings.lobby"), t("settings.lobbyHint")),
          toggle("stage", t("settings.stage"), t("settings.stageHint")),
          h("fieldset", { class: "allow" }, h("legend", null, t("settings.allow")), toggle("allowAudio", t("settings.audio")), toggle("allowVideo", t("settings.video")), toggle("allowScreenShare", t("settings.screenShare")), toggle("allowChat", t("settings.chat"))),
          field(t("settings.maxParticipants"), max, t("settings.maxHint")),
          err.el,
          h("div", { class: "actions" }, save),
        ),
        h("hr"),
        h(
          "section",
          { class: "mods", "aria-labelledby": "mods-h" },
          h("h3", { id: "mods-h" }, t("settings.moderators")),
          h("p", { class: "hint" }, t("settings.moderatorsHint")),
          mods,
          h(
            "form",
            {
              class: "inline-form",
              onsubmit: (e: Event) => {
                e.preventDefault();
                modErr.show(null);
                const who = modName.value.trim();
                if (!who) return;
                void busy(addMod, async () => {
                  try {
                    await api.rooms.addModerator(r.name, who);
                    if (!r.moderators.includes(who)) r.moderators.push(who);
                    modName.value = "";
                    drawMods();
                    draw();
                  } catch (e) {
                    modErr.show(errorText(e));
                  }
                });
              },
            },
            field(t("settings.moderatorName"), modName),
            addMod,
          ),
          modErr.el,
        ),
        bansBox,
      ],
      { wide: true },
    );
    void drawBans();
  }

  /** The people banned from `r`, each with a button that lifts the ban. */
  function bansList(r: Room): { el: HTMLElement; draw: () => Promise<void> } {
    const list = h("ul", { class: "mod-list" });
    const el = h("section", { class: "mods", "aria-labelledby": "bans-h" }, h("h3", { id: "bans-h" }, t("settings.bans")), h("p", { class: "hint" }, t("settings.bansHint")), list);
    const draw = (): Promise<void> =>
      fillList(list, () => api.rooms.bans(r.name), t("settings.noBans"), (b) =>
        h(
          "li",
          null,
          h("span", { class: "avatar xs", "aria-hidden": "true" }, b.name.slice(0, 1).toUpperCase()),
          h("span", null, b.name, h("span", { class: "muted small" }, ` · ${b.guest ? t("meeting.guest") : t("settings.account")} · ${formatTime(b.at)}`)),
          button(t("meeting.unban", { name: b.name }), {
            icon: "close",
            iconOnly: true,
            kind: "ghost",
            onclick: async () => {
              try {
                await api.rooms.unban(r.name, b.identity);
                toast(t("meeting.unbanned", { name: b.name }));
                await draw();
              } catch (e) {
                toast(errorText(e), "error");
              }
            },
          }),
        ),
      );
    return { el, draw };
  }

  /** Invite links of `r`: make one (its secret is shown this once), list them, revoke. */
  function openInvites(r: Room): void {
    const role = h("select", null, h("option", { value: "participant" }, t("invites.participant")), h("option", { value: "moderator" }, t("invites.moderator")));
    const expiry = h(
      "select",
      null,
      ([[3600, "invites.hour"], [86400, "invites.day"], [604800, "invites.week"], [2592000, "invites.month"], [0, "invites.never"]] as const).map(([secs, key]) =>
        h("option", { value: String(secs), selected: secs === 604800 }, t(key)),
      ),
    );
    const uses = h("input", { type: "number", min: "1", max: "100000", inputmode: "numeric", placeholder: t("invites.noLimit") });
    // With mail configured, the link can also go straight to someone's inbox.
    const email = session.info.mail ? h("input", { type: "email", autocomplete: "off", placeholder: t("invites.emailPlaceholder") }) : null;
    const err = formError();
    const made = h("div", { class: "invite-made" });
    const list = h("ul", { class: "invite-list", "aria-label": t("invites.list") });
    const submit = button(t("invites.create"), { type: "submit", kind: "primary", icon: "plus" });
    const statusBadge = (i: Invite) => h("span", { class: `badge ${i.status === "active" ? "ok" : "subtle"}` }, t(`invites.status.${i.status}`));
    const drawList = (): Promise<void> =>
      fillList(list, () => api.rooms.invites(r.name), t("invites.none"), (i) =>
        h(
          "li",
          { class: "invite-row", "aria-label": t("invites.rowLabel", { id: i.id }) },
          h(
            "div",
            { class: "invite-info" },
            h("div", { class: "badges" }, statusBadge(i), h("span", { class: "badge subtle" }, t(i.role === "moderator" ? "invites.moderator" : "invites.participant"))),
            h(
              "p",
              { class: "muted small" },
              i.maxUses ? t("invites.usesOf", { uses: i.uses, max: i.maxUses }) : t("invites.uses", { uses: i.uses }),
              " · ",
              i.expiresAt ? t("invites.expires", { when: formatTime(i.expiresAt) }) : t("invites.noExpiry"),
              " · ",
              t("invites.by", { name: i.createdBy }),
            ),
          ),
          i.status === "active" || i.status === "banned"
            ? button(t("invites.revoke"), {
                kind: "ghost danger-text sm",
                attrs: { "aria-label": t("invites.revokeLabel", { id: i.id }) },
                onclick: async () => {
                  try {
                    await api.rooms.revokeInvite(r.name, i.id);
                    toast(t("invites.revoked"));
                    await drawList();
                  } catch (e) {
                    toast(errorText(e), "error");
                  }
                },
              })
            : null,
        ),
      );
    const form = h(
      "form",
      {
        class: "form invite-form",
        onsubmit: (e: Event) => {
          e.preventDefault();
          err.show(null);
          void busy(submit, async () => {
            try {
              const max = Number(uses.value);
              const to = email?.value.trim() || undefined;
              const res = await api.rooms.createInvite(r.name, { role: role.value as InviteRole, expiresIn: Number(expiry.value), maxUses: max > 0 ? max : undefined, email: to, lang: lang() });
              if (res.mailedTo) {
                toast(t("invites.mailed", { to: res.mailedTo }));
                if (email) email.value = "";
              }
              const link = `${location.origin}${res.path}`;
              const out = h("input", { readonly: true, value: link, class: "mono", "aria-label": t("invites.newLink") });
              replace(
                made,
                h(
                  "div",
                  { class: "soft-alert invite-secret", role: "status" },
                  h("p", { class: "strong" }, icon("key", "icon xs"), t("invites.once")),
                  h(
                    "div",
                    { class: "create-row" },
                    out,
                    button(t("invites.copy"), {
                      icon: "copy",
                      kind: "secondary",
                      onclick: async () => {
                        if (await copyText(link)) toast(t("invites.copied"));
                        else toast(t("home.copyFailed", { link }), "info");
                      },
                    }),
                  ),
                ),
              );
              out.select();
              await drawList();
            } catch (e) {
              err.show(errorText(e));
            }
          });
        },
      },
      h("div", { class: "form-row three" }, field(t("invites.role"), role), field(t("invites.expiry"), expiry), field(t("invites.maxUses"), uses)),
      email ? field(t("invites.email"), email, t("invites.emailHint")) : null,
      err.el,
      h("div", { class: "actions" }, submit),
    );
    dialog(`${t("invites.title")} · ${r.name}`, [h("p", { class: "hint" }, t("invites.hint")), form, made, h("hr"), h("h3", null, t("invites.list")), list], { wide: true });
    void drawList();
  }

  root.append(
    appFrame("home", [
      h("div", { class: "page-head" }, h("div", null, h("h1", null, t("home.title")), h("p", { class: "muted" }, t("home.subtitle")))),
      h("section", { class: "card create-card", "aria-labelledby": "create-h" }, h("h2", { id: "create-h" }, t("home.create")), form),
      list,
      moreBox,
    ]),
  );
  replace(list, h("li", { class: "empty" }, h("p", { class: "muted" }, t("app.loading"))));
  void load();
}
