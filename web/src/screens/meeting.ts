// The meeting: video tiles in a grid or speaker layout (or the spotlight), the control bar with
// a raised hand, participants (with the lobby, the queue of hands, and the managers' mute,
// stage, spotlight, remove and ban), chat, devices, the lock and the end for all, and what the
// person sees when the host acts on them or the connection drops. All LiveKit state comes from
// `Call`; the lobby comes from bedrud's event stream.

import { type LocalTrack, type Participant, Room, Track, type TrackPublication, type VideoTrack } from "livekit-client";
import { api, type Ban, type Join, type LobbyEntry } from "../api";
import { Call, type Notice, qualityName } from "../call";
import { h, hue, initials, replace } from "../dom";
import { formatClock, onLangChange, t } from "../i18n";
import { icon, type IconName, qualityBars } from "../icons";
import { session } from "../router";
import { copyText, confirmDialog, errorText, menuButton, type MenuItem, toast } from "../ui";
import { inviteLink } from "./home";

type Panel = "people" | "chat" | "devices" | null;

interface Tile {
  el: HTMLElement;
  video: HTMLVideoElement;
  avatar: HTMLElement;
  caption: HTMLElement;
  track: VideoTrack | null;
}

/** Starts the call and draws the meeting into `root`; returns the cleanup. */
export function start(root: HTMLElement, join: Join, tracks: LocalTrack[], displayName: string, devices: { videoinput?: string; audioinput?: string }, invite?: string): () => void {
  const call = new Call(join, devices, invite);
  // Diagnostics from the browser console (and the end-to-end tests) reach the call here.
  (window as unknown as { bedrud?: { call: Call } }).bedrud = { call };
  root.setAttribute("data-keep", "");
  let layout: "grid" | "speaker" = "grid";
  let panel: Panel = null;
  let unread = 0;
  const tiles = new Map<string, Tile>();
  const audios = new Map<string, HTMLMediaElement>();
  /** Managers: who waits in the lobby (live), and who is banned (loaded with the panel). */
  let lobby: LobbyEntry[] = [];
  let bans: Ban[] | null = null;
  let bansOpen = false;
  let stopLobby: (() => void) | null = null;
  let lastSpotlight: string | null = null;

  const title = h("h1", { class: "meet-title" });
  const count = h("span", { class: "meet-count" });
  const topEnd = h("div", { class: "meet-top-end" });
  const banners = h("div", { class: "banners", "aria-live": "assertive" });
  const reconnect = h("div", { class: "banner warn", role: "status", hidden: true });
  const stage = h("section", { class: "stage grid" });
  const strip = h("div", { class: "strip" });
  const side = h("aside", { class: "side", hidden: true });
  const controls = h("div", { class: "controls", role: "toolbar" });
  const audioBox = h("div", { class: "sr-only", "aria-hidden": "true" });
  const view = h(
    "div",
    { class: "meeting" },
    h("header", { class: "meet-top" }, h("div", { class: "meet-id" }, h("span", { class: "logo sm", "aria-hidden": "true" }, icon("video")), title, count), topEnd),
    reconnect,
    banners,
    h("div", { class: "meet-body" }, h("main", { id: "main", class: "stage-wrap" }, stage, strip), side),
    h("footer", { class: "controls-bar" }, controls),
    audioBox,
  );
  root.replaceChildren(view);

  // ---- tiles -------------------------------------------------------------------------------

  function tileFor(key: string): Tile {
    let tile = tiles.get(key);
    if (tile) return tile;
    const video = h("video", { autoplay: true, playsinline: true, muted: true });
    const avatar = h("div", { class: "tile-avatar" });
    const caption = h("figcaption", { class: "tile-caption" });
    const el = h("figure", { class: "tile" }, video, avatar, caption);
    el.addEventListener("dblclick", () => {
      layout = layout === "grid" ? "speaker" : "grid";
      draw();
    });
    tile = { el, video, avatar, caption, track: null };
    tiles.set(key, tile);
    return tile;
  }

  function updateTile(tile: Tile, p: Participant, pub: TrackPublication | undefined, screen: boolean): void {
    const local = p === call.room.localParticipant;
    const name = p.name || p.identity;
    const label = screen ? t("meeting.screenOf", { name }) : local ? t("meeting.you", { name }) : name;
    tile.el.setAttribute("aria-label", label);
    tile.el.dataset.identity = p.identity;
    tile.el.dataset.source = screen ? "screen_share" : "camera";
    const track = pub && pub.track && !pub.isMuted ? (pub.track as VideoTrack) : null;
    if (track !== tile.track) {
      tile.track?.detach(tile.video);
      tile.track = track;
      if (track) track.attach(tile.video);
    }
    tile.video.hidden = !track;
    tile.el.classList.toggle("mirror", local && !screen);
    tile.el.classList.toggle("screen", screen);
    tile.el.classList.toggle("speaking", !screen && p.isSpeaking);
    tile.avatar.hidden = !!track;
    if (!track) {
      replace(tile.avatar, h("span", { class: "avatar xl", "data-hue": String(hue(p.identity) % 12) }, initials(name)));
    }
    const mic = p.getTrackPublication(Track.Source.Microphone);
    const micOff = !mic || mic.isMuted;
    const q = qualityName(p.connectionQuality);
    const raised = !screen && call.handRaisedAt(p) !== null;
    tile.el.classList.toggle("hand-up", raised);
    replace(
      tile.caption,
      raised ? h("span", { class: "cap-icon hand", role: "img", "aria-label": t("meeting.handUp") }, icon("hand", "icon xs")) : null,
      !screen && call.meta().spotlight === p.identity ? h("span", { class: "cap-icon spot", role: "img", "aria-label": t("meeting.spotlit") }, icon("spotlight", "icon xs")) : null,
      !screen && micOff ? h("span", { class: "cap-icon muted", title: t("meeting.muted") }, icon("micOff", "icon xs")) : null,
      screen ? icon("screen", "icon xs") : null,
      h("span", { class: "cap-name" }, label),
      !screen ? qualityBars(q, t("meeting.quality", { quality: t(`meeting.quality.${q}` as "meeting.quality.good") })) : null,
    );
  }

  function drawTiles(): void {
    const wanted: { key: string; p: Participant; pub?: TrackPublication; screen: boolean }[] = [];
    // On a stage the tiles are the speakers'; the audience is in the participant list.
    const stageRoom = call.meta().stage;
    const onStage = (p: Participant) => !stageRoom || (p === call.room.localParticipant ? call.canPublish() : p.permissions?.canPublish !== false);
    const shown = call.participants().filter(onStage);
    for (const p of shown) {
      const share = p.getTrackPublication(Track.Source.ScreenShare);
      if (share && share.track) wanted.push({ key: `${p.identity}:screen`, p, pub: share, screen: true });
    }
    for (const p of shown) wanted.push({ key: `${p.identity}:camera`, p, pub: p.getTrackPublication(Track.Source.Camera), screen: false });
    for (const [key, tile] of tiles) {
      if (!wanted.some((w) => w.key === key)) {
        tile.track?.detach(tile.video);
        tile.el.remove();
        tiles.delete(key);
      }
    }
    for (const w of wanted) updateTile(tileFor(w.key), w.p, w.pub, w.screen);

    let main: string | null = null;
    if (layout === "speaker") {
      const screenKey = wanted.find((w) => w.screen)?.key;
      const local = call.room.localParticipant.identity;
      const speaker = call.speakers.find((s) => s !== local) ?? [...call.room.remoteParticipants.keys()][0] ?? local;
      // The spotlight a manager set wins over whoever speaks.
      const spot = call.meta().spotlight;
      const candidate = spot && call.byIdentity(spot) ? `${spot}:camera` : screenKey ?? `${speaker}:camera`;
      main = wanted.some((w) => w.key === candidate) ? candidate : wanted[0]?.key ?? null;
    }
    const order = wanted.map((w) => w.key);
    const inStage = layout === "grid" ? order : order.filter((k) => k === main);
    const inStrip = layout === "grid" ? [] : order.filter((k) => k !== main);
    stage.className = `stage ${layout}`;
    stage.dataset.count = String(Math.min(inStage.length, 10));
    syncChildren(stage, inStage.map((k) => tiles.get(k)!.el));
    syncChildren(strip, inStrip.map((k) => tiles.get(k)!.el));
    strip.hidden = inStrip.length === 0;
    if (call.room.remoteParticipants.size === 0 && call.status === "connected") {
      if (!stage.querySelector(".alone")) {
        stage.append(h("div", { class: "alone" }, h("p", null, t("meeting.alone")), h("button", { type: "button", class: "btn secondary", onclick: copyInvite }, icon("link"), h("span", null, t("meeting.copyInvite")))));
      }
    } else {
      stage.querySelector(".alone")?.remove();
    }
  }

  /** Puts `els` into `parent` in order, moving only what is out of place (videos keep playing). */
  function syncChildren(parent: HTMLElement, els: HTMLElement[]): void {
    els.forEach((el, i) => {
      if (parent.children[i] !== el) parent.insertBefore(el, parent.children[i] ?? null);
    });
    while (parent.children.length > els.length) {
      const last = parent.children[parent.children.length - 1];
      if (last.classList.contains("alone")) break;
      last.remove();
    }
  }

  function drawAudio(): void {
    const seen = new Set<string>();
    for (const p of call.room.remoteParticipants.values()) {
      for (const pub of p.audioTrackPublications.values()) {
        if (!pub.track || !pub.trackSid) continue;
        seen.add(pub.trackSid);
        if (!audios.has(pub.trackSid)) {
          const el = pub.track.attach();
          audioBox.append(el);
          audios.set(pub.trackSid, el);
        }
      }
    }
    for (const [sid, el] of audios) {
      if (!seen.has(sid)) {
        el.remove();
        audios.delete(sid);
      }
    }
  }

  // ---- controls ----------------------------------------------------------------------------

  function ctl(label: string, ic: IconName, opts: { on?: boolean; danger?: boolean; pressed?: boolean; badge?: number; onclick: () => void; cls?: string }): HTMLButtonElement {
    return h(
      "button",
      {
        type: "button",
        class: `ctl${opts.on === false ? " off" : ""}${opts.danger ? " danger" : ""}${opts.pressed ? " active" : ""} ${opts.cls ?? ""}`.trim(),
        "aria-label": label,
        title: label,
        "aria-pressed": opts.pressed === undefined ? undefined : String(opts.pressed),
        onclick: opts.onclick,
      },
      icon(ic),
      opts.badge ? h("span", { class: "ctl-badge", "aria-hidden": "true" }, String(opts.badge)) : null,
    );
  }

  async function guarded(work: () => Promise<void>): Promise<void> {
    try {
      await work();
    } catch (e) {
      toast(t("meeting.publishFailed", { message: e instanceof Error ? e.message : String(e) }), "error");
    }
  }

  function drawControls(): void {
    const micAllowed = call.mayPublish(Track.Source.Microphone);
    const camAllowed = call.mayPublish(Track.Source.Camera);
    const shareAllowed = call.mayPublish(Track.Source.ScreenShare) && !!navigator.mediaDevices?.getDisplayMedia;
    const mic = call.micOn();
    const cam = call.camOn();
    const share = call.sharing();
    const hand = call.handRaisedAt(call.room.localParticipant) !== null;
    const audience = call.meta().stage && !call.canPublish();
    const toggle = (p: Panel) => () => {
      panel = panel === p ? null : p;
      if (panel === "chat") unread = 0;
      draw();
      if (panel === "chat") (side.querySelector("input") as HTMLInputElement | null)?.focus();
    };
    replace(
      controls,
      h(
        "div",
        { class: "ctl-group" },
        micAllowed ? ctl(mic ? t("meeting.micOn") : t("meeting.micOff"), mic ? "mic" : "micOff", { on: mic, onclick: () => void guarded(() => call.setMic(!mic)) }) : null,
        camAllowed ? ctl(cam ? t("meeting.camOn") : t("meeting.camOff"), cam ? "video" : "videoOff", { on: cam, onclick: () => void guarded(() => call.setCam(!cam)) }) : null,
        shareAllowed ? ctl(share ? t("meeting.shareOn") : t("meeting.shareOff"), "screen", { pressed: share, onclick: () => void guarded(() => call.setShare(!share)) }) : null,
      ),
      h(
        "div",
        { class: "ctl-group" },
        ctl(hand ? t("meeting.lowerHand") : t("meeting.raiseHand"), "hand", { pressed: hand, cls: "hand", onclick: () => void guarded(() => call.setHand(!hand)) }),
        call.canChat() ? ctl(t("meeting.chat"), "chat", { pressed: panel === "chat", badge: unread, onclick: toggle("chat") }) : null,
        ctl(t("meeting.people"), "users", { pressed: panel === "people", badge: call.isManager() ? lobby.length : 0, onclick: toggle("people") }),
        ctl(t("meeting.devices"), "settings", { pressed: panel === "devices", onclick: toggle("devices") }),
      ),
      audience ? h("span", { class: "ctl-note" }, icon("hand", "icon xs"), t("meeting.audience")) : null,
      h(
        "div",
        { class: "ctl-group" },
        call.isManager() ? ctl(t("meeting.endForAll"), "power", { danger: true, cls: "end-all", onclick: () => void endForAll() }) : null,
        ctl(t("meeting.leave"), "leave", { danger: true, cls: "leave", onclick: () => void call.leave() }),
      ),
    );
    controls.setAttribute("aria-label", t("meeting.devices"));
  }

  function drawTop(): void {
    const meta = call.meta();
    replace(title, join.room);
    replace(
      count,
      t("meeting.count", { count: call.participants().length }),
      meta.locked ? h("span", { class: "meet-flag" }, icon("lock", "icon xs"), t("meeting.locked")) : null,
      meta.stage ? h("span", { class: "meet-flag" }, icon("users", "icon xs"), t("meeting.stage")) : null,
    );
    replace(
      topEnd,
      call.isManager()
        ? ctl(meta.locked ? t("meeting.unlock") : t("meeting.lock"), meta.locked ? "lock" : "unlock", {
            pressed: meta.locked,
            cls: "sm",
            onclick: () => void api.rooms.lock(join.room, !meta.locked).then(() => toast(meta.locked ? t("meeting.unlocked") : t("meeting.lockedToast")), (e: unknown) => toast(errorText(e), "error")),
          })
        : null,
      !call.room.canPlaybackAudio ? h("button", { type: "button", class: "btn secondary sm", onclick: () => void call.room.startAudio() }, icon("volume"), h("span", null, t("meeting.enableAudio"))) : null,
      h(
        "div",
        { class: "seg", role: "group", "aria-label": t("meeting.layoutGrid") },
        ctl(t("meeting.layoutGrid"), "grid", { pressed: layout === "grid", cls: "sm", onclick: () => ((layout = "grid"), draw()) }),
        ctl(t("meeting.layoutSpeaker"), "speaker", { pressed: layout === "speaker", cls: "sm", onclick: () => ((layout = "speaker"), draw()) }),
      ),
      ctl(t("meeting.copyInvite"), "link", { cls: "sm", onclick: copyInvite }),
    );
    reconnect.hidden = call.status !== "reconnecting";
    replace(reconnect, h("span", { class: "spinner", "aria-hidden": "true" }), t("meeting.reconnecting"));
  }

  async function endForAll(): Promise<void> {
    if (!(await confirmDialog(t("meeting.endConfirm"), t("meeting.endForAll")))) return;
    try {
      await api.rooms.end(join.room);
    } catch (e) {
      toast(errorText(e), "error");
    }
  }

  async function copyInvite(): Promise<void> {
    const link = inviteLink(join.room);
    if (await copyText(link)) toast(t("home.copied"));
    else toast(t("home.copyFailed", { link }), "info");
  }

  // ---- side panels -------------------------------------------------------------------------

  function panelHead(titleText: string): HTMLElement {
    return h("header", { class: "side-head" }, h("h2", { id: "side-title" }, titleText), h("button", { type: "button", class: "btn ghost icon-only", "aria-label": t("common.close"), title: t("common.close"), onclick: () => ((panel = null), draw()) }, icon("close")));
  }

  function managerAction(label: string, ic: IconName, work: () => Promise<unknown>): HTMLButtonElement {
    const b = h("button", { type: "button", class: "btn ghost icon-only sm", "aria-label": label, title: label }, icon(ic));
    b.addEventListener("click", async () => {
      b.disabled = true;
      try {
        await work();
      } catch (e) {
        toast(errorText(e), "error");
      } finally {
        b.disabled = false;
      }
    });
    return b;
  }

  function person(p: Participant, extra: Node | null): HTMLElement {
    const local = p === call.room.localParticipant;
    const name = p.name || p.identity;
    const mic = p.getTrackPublication(Track.Source.Microphone);
    const micLive = !!mic && !mic.isMuted;
    const q = qualityName(p.connectionQuality);
    const speaking = p.isSpeaking;
    const meta = call.meta();
    const role = local ? t(`meeting.role.${join.role}`) : meta.stage && p.permissions?.canPublish ? t("meeting.speaker") : null;
    return h(
      "li",
      { class: `person${speaking ? " speaking" : ""}`, "aria-label": local ? t("meeting.you", { name }) : name },
      h("span", { class: "avatar sm", "data-hue": String(hue(p.identity) % 12), "aria-hidden": "true" }, initials(name)),
      h("span", { class: "person-name" }, h("span", null, local ? t("meeting.you", { name }) : name), role ? h("span", { class: "muted small" }, role) : null),
      call.handRaisedAt(p) !== null ? h("span", { class: "hand-ic", role: "img", "aria-label": t("meeting.handUp") }, icon("hand", "icon xs")) : null,
      meta.spotlight === p.identity ? h("span", { class: "spot-ic", role: "img", "aria-label": t("meeting.spotlit") }, icon("spotlight", "icon xs")) : null,
      h("span", { class: `speak-dot${speaking ? " on" : ""}`, role: "img", "aria-label": speaking ? t("meeting.speaking") : "" }, h("span"), h("span"), h("span")),
      micLive ? icon("mic", "icon xs dim") : h("span", { role: "img", "aria-label": t("meeting.muted"), class: "muted-ic" }, icon("micOff", "icon xs")),
      qualityBars(q, t("meeting.quality", { quality: t(`meeting.quality.${q}` as "meeting.quality.good") })),
      extra,
    );
  }

  /** What a manager may do to `p`, beyond the mute button shown in the row. */
  function actionsFor(p: Participant): MenuItem[] {
    const name = p.name || p.identity;
    const meta = call.meta();
    const cam = p.getTrackPublication(Track.Source.Camera);
    const act = (label: string, ic: IconName, work: () => Promise<unknown>, danger = false): MenuItem => ({
      label,
      icon: ic,
      danger,
      run: () => work().then(() => undefined, (e: unknown) => toast(errorText(e), "error")),
    });
    const items: MenuItem[] = [];
    if (cam && !cam.isMuted) items.push(act(t("meeting.muteCam", { name }), "videoOff", () => api.rooms.mute(join.room, p.identity, "camera")));
    if (meta.spotlight === p.identity) items.push(act(t("meeting.unspotlight", { name }), "spotlight", () => api.rooms.spotlight(join.room, null)));
    else items.push(act(t("meeting.spotlight", { name }), "spotlight", () => api.rooms.spotlight(join.room, p.identity)));
    const peer = (JSON.parse(p.metadata || "{}") as { role?: string }).role;
    const peerManages = peer === "owner" || peer === "admin" || peer === "moderator";
    if (meta.stage && !peerManages) {
      if (p.permissions?.canPublish) items.push(act(t("meeting.demote", { name }), "down", () => api.rooms.demote(join.room, p.identity)));
      else items.push(act(t("meeting.promote", { name }), "up", () => api.rooms.promote(join.room, p.identity)));
    } else if (!meta.stage && p.permissions?.canPublish !== false) {
      items.push(act(t("meeting.revoke", { name }), "ban", () => api.rooms.permissions(join.room, p.identity, { canPublish: false })));
    }
    if (call.handRaisedAt(p) !== null) items.push(act(t("meeting.lowerHandOf", { name }), "hand", () => api.rooms.hand(join.room, p.identity, false)));
    items.push(
      act(t("meeting.kick", { name }), "logout", async () => {
        if (!(await confirmDialog(t("meeting.kickConfirm", { name }), t("meeting.kick", { name })))) return;
        await api.rooms.kick(join.room, p.identity);
        toast(t("meeting.kicked", { name }));
      }, true),
    );
    if (!peerManages) {
      items.push(
        act(t("meeting.ban", { name }), "ban", async () => {
          if (!(await confirmDialog(t("meeting.banConfirm", { name }), t("meeting.ban", { name })))) return;
          await api.rooms.ban(join.room, p.identity);
          toast(t("meeting.banned", { name }));
          void loadBans();
        }, true),
      );
    }
    return items;
  }

  function lobbySection(): HTMLElement | null {
    if (!call.isManager() || lobby.length === 0) return null;
    const pick = (who: string, admit: boolean) => () => void (admit ? api.rooms.admit(join.room, who) : api.rooms.deny(join.room, who)).catch((e: unknown) => toast(errorText(e), "error"));
    return h(
      "section",
      { class: "people-section lobby-box", "aria-labelledby": "lobby-h" },
      h("div", { class: "section-head" }, h("h3", { id: "lobby-h" }, icon("hourglass", "icon xs"), t("meeting.lobby", { count: lobby.length }))),
      h(
        "ul",
        { class: "people" },
        lobby.map((w) =>
          h(
            "li",
            { class: "person waiting", "aria-label": w.name },
            h("span", { class: "avatar sm", "data-hue": String(hue(w.identity) % 12), "aria-hidden": "true" }, initials(w.name)),
            h("span", { class: "person-name" }, h("span", null, w.name), h("span", { class: "muted small" }, w.invited ? t("meeting.viaInvite") : t("meeting.guest"))),
            h("button", { type: "button", class: "btn ghost icon-only sm", "aria-label": t("meeting.deny", { name: w.name }), title: t("meeting.deny", { name: w.name }), onclick: pick(w.identity, false) }, icon("close")),
            h("button", { type: "button", class: "btn primary sm", "aria-label": t("meeting.admit", { name: w.name }), onclick: pick(w.identity, true) }, icon("check", "icon xs"), h("span", null, t("meeting.admitShort"))),
          ),
        ),
      ),
      lobby.length > 1
        ? h(
            "div",
            { class: "section-actions" },
            h("button", { type: "button", class: "btn ghost sm", onclick: pick("all", false) }, t("meeting.denyAll")),
            h("button", { type: "button", class: "btn primary sm", onclick: pick("all", true) }, t("meeting.admitAll")),
          )
        : null,
    );
  }

  function handsSection(): HTMLElement | null {
    const up = call.hands();
    if (up.length === 0) return null;
    const manager = call.isManager();
    const stage = call.meta().stage;
    return h(
      "section",
      { class: "people-section", "aria-labelledby": "hands-h" },
      h("div", { class: "section-head" }, h("h3", { id: "hands-h" }, icon("hand", "icon xs"), t("meeting.hands", { count: up.length }))),
      h(
        "ol",
        { class: "people hand-queue", "aria-label": t("meeting.handQueue") },
        up.map((p, i) => {
          const name = p.name || p.identity;
          const local = p === call.room.localParticipant;
          return h(
            "li",
            { class: "person", "aria-label": name },
            h("span", { class: "queue-no", "aria-hidden": "true" }, String(i + 1)),
            h("span", { class: "person-name" }, h("span", null, local ? t("meeting.you", { name }) : name), h("span", { class: "muted small" }, formatClock(call.handRaisedAt(p) ?? 0))),
            manager && stage && !local && !p.permissions?.canPublish
              ? h("button", { type: "button", class: "btn primary sm", "aria-label": t("meeting.promote", { name }), onclick: () => void api.rooms.promote(join.room, p.identity).catch((e: unknown) => toast(errorText(e), "error")) }, icon("up", "icon xs"), h("span", null, t("meeting.promoteShort")))
              : null,
            manager || local
              ? h(
                  "button",
                  { type: "button", class: "btn ghost icon-only sm", "aria-label": local ? t("meeting.lowerHand") : t("meeting.lowerHandOf", { name }), title: local ? t("meeting.lowerHand") : t("meeting.lowerHandOf", { name }), onclick: () => void (local ? call.setHand(false) : api.rooms.hand(join.room, p.identity, false)).catch((e: unknown) => toast(errorText(e), "error")) },
                  icon("close"),
                )
              : null,
          );
        }),
      ),
    );
  }

  function bansSection(): HTMLElement | null {
    if (!call.isManager() || !bans || bans.length === 0) return null;
    const box = h(
      "details",
      { class: "people-section bans", open: bansOpen },
      h("summary", null, icon("ban", "icon xs"), t("meeting.bannedList", { count: bans.length })),
      h(
        "ul",
        { class: "people" },
        bans.map((b) =>
          h(
            "li",
            { class: "person", "aria-label": b.name },
            h("span", { class: "person-name" }, h("span", null, b.name), h("span", { class: "muted small" }, t("meeting.bannedBy", { name: b.by }))),
            h(
              "button",
              {
                type: "button",
                class: "btn ghost sm",
                "aria-label": t("meeting.unban", { name: b.name }),
                onclick: () =>
                  void api.rooms.unban(join.room, b.identity).then(
                    () => (toast(t("meeting.unbanned", { name: b.name })), loadBans()),
                    (e: unknown) => toast(errorText(e), "error"),
                  ),
              },
              t("meeting.unbanShort"),
            ),
          ),
        ),
      ),
    );
    // The panel is redrawn often: keep the list open (or closed) as the person left it.
    box.addEventListener("toggle", () => (bansOpen = box.open));
    return box;
  }

  async function loadBans(): Promise<void> {
    if (!call.isManager()) return;
    try {
      bans = await api.rooms.bans(join.room);
      draw();
    } catch {
      /* the list stays as it was; bans still work */
    }
  }

  function drawPeople(): HTMLElement {
    const manager = call.isManager();
    const rows = call.participants().map((p) => {
      const local = p === call.room.localParticipant;
      const name = p.name || p.identity;
      const mic = p.getTrackPublication(Track.Source.Microphone);
      return person(
        p,
        manager && !local
          ? h(
              "span",
              { class: "person-actions" },
              mic && !mic.isMuted ? managerAction(t("meeting.mute", { name }), "micOff", () => api.rooms.mute(join.room, p.identity, "microphone")) : null,
              menuButton(t("meeting.moreActions", { name }), () => actionsFor(p)),
            )
          : null,
      );
    });
    const people = h("ul", { class: "people", "aria-label": t("meeting.inMeeting") }, rows);
    return h(
      "div",
      { class: "side-panel", role: "region", "aria-labelledby": "side-title" },
      panelHead(`${t("meeting.people")} · ${rows.length}`),
      h("div", { class: "people-scroll" }, lobbySection(), handsSection(), people, bansSection()),
    );
  }

  const chatLog = h("ol", { class: "chat-log", role: "log", "aria-live": "polite" });
  const chatInput = h("input", { class: "chat-input", maxlength: "2000", autocomplete: "off" });
  function drawChatLog(): void {
    if (call.messages.length === 0) {
      replace(chatLog, h("li", { class: "chat-empty muted small" }, t("meeting.chatEmpty")));
      return;
    }
    replace(
      chatLog,
      call.messages.map((m) =>
        h("li", { class: `msg${m.mine ? " mine" : ""}` }, h("div", { class: "msg-head" }, h("span", { class: "msg-from" }, m.mine ? t("meeting.you", { name: m.from }) : m.from), h("time", { datetime: new Date(m.at).toISOString() }, formatClock(m.at))), h("p", { class: "msg-text" }, m.text)),
      ),
    );
    chatLog.scrollTop = chatLog.scrollHeight;
  }
  function drawChat(): HTMLElement {
    chatInput.placeholder = t("meeting.chatPlaceholder");
    chatInput.setAttribute("aria-label", t("meeting.chatLabel"));
    drawChatLog();
    return h(
      "div",
      { class: "side-panel", role: "region", "aria-labelledby": "side-title" },
      panelHead(t("meeting.chat")),
      chatLog,
      h(
        "form",
        {
          class: "chat-form",
          onsubmit: (e: Event) => {
            e.preventDefault();
            const text = chatInput.value.trim();
            if (!text) return;
            chatInput.value = "";
            call.sendChat(text).catch((err: unknown) => toast(errorText(err), "error"));
          },
        },
        chatInput,
        h("button", { type: "submit", class: "btn primary icon-only", "aria-label": t("meeting.chatSend"), title: t("meeting.chatSend") }, icon("send")),
      ),
    );
  }

  function drawDevices(): HTMLElement {
    const box = h("div", { class: "form" });
    const kinds: [MediaDeviceKind, string][] = [
      ["videoinput", t("prejoin.camera")],
      ["audioinput", t("prejoin.microphone")],
    ];
    for (const [kind, label] of kinds) {
      const id = `dev-${kind}`;
      const sel = h("select", { id });
      sel.addEventListener("change", () => {
        call.switchDevice(kind, sel.value).catch((e: unknown) => toast(t("meeting.deviceFailed", { message: e instanceof Error ? e.message : String(e) }), "error"));
      });
      void Room.getLocalDevices(kind, false).then((list) => {
        const active = call.room.getActiveDevice(kind);
        replace(sel, list.map((d, i) => h("option", { value: d.deviceId, selected: d.deviceId === active }, d.label || `${t("prejoin.default")} ${i + 1}`)));
      });
      box.append(h("div", { class: "field" }, h("label", { for: id }, label), sel));
    }
    return h("div", { class: "side-panel", role: "region", "aria-labelledby": "side-title" }, panelHead(t("meeting.devices")), box);
  }

  let drawnPanel: Panel = null;
  function drawSide(): void {
    if (panel === "chat" && !call.canChat()) panel = null;
    side.hidden = panel === null;
    view.classList.toggle("with-side", panel !== null);
    if (panel === "chat") {
      if (drawnPanel !== "chat") replace(side, drawChat());
    } else if (panel === "people") {
      replace(side, drawPeople());
    } else if (panel === "devices") {
      if (drawnPanel !== "devices") replace(side, drawDevices());
    } else {
      replace(side);
    }
    drawnPanel = panel;
  }

  // ---- notices and the end -----------------------------------------------------------------

  function showNotice(n: Notice): void {
    const key = {
      mutedByHost: "meeting.mutedByHost",
      camMutedByHost: "meeting.camMutedByHost",
      publishRevoked: "meeting.publishRevoked",
      publishRestored: "meeting.publishRestored",
      chatRefused: "meeting.chatRefused",
      handLowered: "meeting.handLowered",
      onStage: "meeting.onStage",
      offStage: "meeting.offStage",
    }[n] as "meeting.mutedByHost";
    const el = h("div", { class: "banner info", role: "alert" }, icon(n === "publishRestored" || n === "onStage" ? "check" : n === "handLowered" ? "hand" : "alert"), h("span", null, t(key)));
    const close = h("button", { type: "button", class: "btn ghost icon-only sm", "aria-label": t("common.close"), title: t("common.close"), onclick: () => el.remove() }, icon("close"));
    el.append(close);
    banners.prepend(el);
    while (banners.children.length > 3) banners.lastElementChild?.remove();
    window.setTimeout(() => el.remove(), 15000);
  }

  function drawEnd(): void {
    const reason = call.endReason ?? "disconnected";
    const titleKey = reason === "removed" ? "meeting.removed" : reason === "left" ? "meeting.left" : reason === "room_deleted" ? "meeting.ended" : "meeting.disconnected";
    stopAll();
    root.removeAttribute("data-keep");
    root.replaceChildren(
      h(
        "div",
        { class: "center-page dark" },
        h(
          "main",
          { class: "card end-card", id: "main" },
          h("div", { class: `end-icon${reason === "removed" ? " danger" : ""}`, "aria-hidden": "true" }, icon(reason === "removed" ? "ban" : "leave", "icon lg")),
          h("h1", { tabindex: "-1" }, t(titleKey)),
          reason === "removed" ? h("p", { class: "muted" }, t("meeting.removedText", { room: join.room })) : null,
          reason === "room_deleted" ? h("p", { class: "muted" }, t("meeting.endedText", { room: join.room })) : null,
          h(
            "div",
            { class: "actions center" },
            reason !== "removed" ? h("a", { class: "btn primary", href: `/r/${encodeURIComponent(join.room)}`, onclick: (e: Event) => (e.preventDefault(), location.assign(`/r/${encodeURIComponent(join.room)}`)) }, icon("refresh"), h("span", null, t("meeting.rejoin"))) : null,
            session.user ? h("a", { class: "btn secondary", href: "/", "data-link": true }, icon("door"), h("span", null, t("meeting.home"))) : null,
          ),
        ),
      ),
    );
    document.title = `bedrud`;
    (root.querySelector("h1") as HTMLElement | null)?.focus();
  }

  // ---- drawing -----------------------------------------------------------------------------

  let frame = 0;
  function draw(): void {
    if (frame) return;
    frame = requestAnimationFrame(() => {
      frame = 0;
      if (call.status === "ended") return drawEnd();
      const spot = call.meta().spotlight;
      if (spot !== lastSpotlight) {
        lastSpotlight = spot;
        if (spot) layout = "speaker";
      }
      drawTop();
      drawTiles();
      drawAudio();
      drawControls();
      drawSide();
    });
  }

  function stopAll(): void {
    for (const tile of tiles.values()) tile.track?.detach(tile.video);
    for (const el of audios.values()) el.remove();
    for (const tr of tracks) tr.stop();
    stopLobby?.();
    stopLobby = null;
    offLang();
    offCall();
  }

  const offCall = call.on((what, detail) => {
    if (what === "notice") showNotice(detail as Notice);
    if (what === "hand" && call.isManager()) toast(t("meeting.handRaised", { name: String(detail) }), "info");
    if (what === "chat") {
      if (panel !== "chat") unread++;
      else drawChatLog();
    }
    draw();
  });
  const offLang = onLangChange(() => {
    drawnPanel = null;
    draw();
  });

  document.title = `${join.room} · bedrud`;
  drawTop();
  replace(stage, h("div", { class: "connecting" }, h("span", { class: "spinner", "aria-hidden": "true" }), h("p", null, t("meeting.connecting"))));
  drawControls();
  call.connect(tracks, displayName).then(
    () => {
      stage.replaceChildren();
      draw();
      if (call.isManager()) {
        void loadBans();
        stopLobby = api.rooms.watchLobby(join.room, (list) => {
          const known = new Set(lobby.map((w) => w.identity));
          for (const w of list) if (!known.has(w.identity)) toast(t("meeting.knocking", { name: w.name }), "info");
          lobby = list;
          draw();
        });
      }
    },
    (e: unknown) => {
      stage.replaceChildren(h("div", { class: "connecting" }, h("p", { role: "alert" }, errorText(e)), h("button", { type: "button", class: "btn primary", onclick: () => location.reload() }, t("common.retry"))));
    },
  );

  return () => {
    if (call.status !== "ended") void call.leave();
    stopAll();
    root.removeAttribute("data-keep");
  };
}
