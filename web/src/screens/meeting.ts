// The meeting: video tiles in a grid or speaker layout, the control bar, participants (with
// the managers' mute / stop publishing / remove), chat, devices, and what the person sees when
// the host acts on them or the connection drops. All LiveKit state comes from `Call`.

import { type LocalTrack, type Participant, Room, Track, type TrackPublication, type VideoTrack } from "livekit-client";
import { api, type Join } from "../api";
import { Call, type Notice, qualityName } from "../call";
import { h, hue, initials, replace } from "../dom";
import { formatClock, onLangChange, t } from "../i18n";
import { icon, type IconName, qualityBars } from "../icons";
import { session } from "../router";
import { copyText, confirmDialog, errorText, toast } from "../ui";
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
export function start(root: HTMLElement, join: Join, tracks: LocalTrack[], displayName: string, devices: { videoinput?: string; audioinput?: string }): () => void {
  const call = new Call(join, devices);
  // Diagnostics from the browser console (and the end-to-end tests) reach the call here.
  (window as unknown as { bedrud?: { call: Call } }).bedrud = { call };
  root.setAttribute("data-keep", "");
  let layout: "grid" | "speaker" = "grid";
  let panel: Panel = null;
  let unread = 0;
  const tiles = new Map<string, Tile>();
  const audios = new Map<string, HTMLMediaElement>();

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
    replace(
      tile.caption,
      !screen && micOff ? h("span", { class: "cap-icon muted", title: t("meeting.muted") }, icon("micOff", "icon xs")) : null,
      screen ? icon("screen", "icon xs") : null,
      h("span", { class: "cap-name" }, label),
      !screen ? qualityBars(q, t("meeting.quality", { quality: t(`meeting.quality.${q}` as "meeting.quality.good") })) : null,
    );
  }

  function drawTiles(): void {
    const wanted: { key: string; p: Participant; pub?: TrackPublication; screen: boolean }[] = [];
    for (const p of call.participants()) {
      const share = p.getTrackPublication(Track.Source.ScreenShare);
      if (share && share.track) wanted.push({ key: `${p.identity}:screen`, p, pub: share, screen: true });
    }
    for (const p of call.participants()) wanted.push({ key: `${p.identity}:camera`, p, pub: p.getTrackPublication(Track.Source.Camera), screen: false });
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
      main = screenKey ?? `${speaker}:camera`;
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
        call.canChat() ? ctl(t("meeting.chat"), "chat", { pressed: panel === "chat", badge: unread, onclick: toggle("chat") }) : null,
        ctl(t("meeting.people"), "users", { pressed: panel === "people", onclick: toggle("people") }),
        ctl(t("meeting.devices"), "settings", { pressed: panel === "devices", onclick: toggle("devices") }),
      ),
      ctl(t("meeting.leave"), "leave", { danger: true, cls: "leave", onclick: () => void call.leave() }),
    );
    controls.setAttribute("aria-label", t("meeting.devices"));
  }

  function drawTop(): void {
    replace(title, join.room);
    replace(count, t("meeting.count", { count: call.participants().length }));
    replace(
      topEnd,
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

  function drawPeople(): HTMLElement {
    const manager = call.isManager();
    const rows = call.participants().map((p) => {
      const local = p === call.room.localParticipant;
      const name = p.name || p.identity;
      const mic = p.getTrackPublication(Track.Source.Microphone);
      const cam = p.getTrackPublication(Track.Source.Camera);
      const micLive = !!mic && !mic.isMuted;
      const q = qualityName(p.connectionQuality);
      const speaking = p.isSpeaking;
      return h(
        "li",
        { class: `person${speaking ? " speaking" : ""}`, "aria-label": local ? t("meeting.you", { name }) : name },
        h("span", { class: "avatar sm", "data-hue": String(hue(p.identity) % 12), "aria-hidden": "true" }, initials(name)),
        h(
          "span",
          { class: "person-name" },
          h("span", null, local ? t("meeting.you", { name }) : name),
          local ? h("span", { class: "muted small" }, t(`meeting.role.${join.role}`)) : null,
        ),
        h("span", { class: `speak-dot${speaking ? " on" : ""}`, role: "img", "aria-label": speaking ? t("meeting.speaking") : "" }, h("span"), h("span"), h("span")),
        micLive ? icon("mic", "icon xs dim") : h("span", { role: "img", "aria-label": t("meeting.muted"), class: "muted-ic" }, icon("micOff", "icon xs")),
        qualityBars(q, t("meeting.quality", { quality: t(`meeting.quality.${q}` as "meeting.quality.good") })),
        manager && !local
          ? h(
              "span",
              { class: "person-actions" },
              micLive ? managerAction(t("meeting.mute", { name }), "micOff", () => api.rooms.mute(join.room, p.identity, "microphone")) : null,
              cam && !cam.isMuted ? managerAction(t("meeting.muteCam", { name }), "videoOff", () => api.rooms.mute(join.room, p.identity, "camera")) : null,
              p.permissions?.canPublish !== false ? managerAction(t("meeting.revoke", { name }), "ban", () => api.rooms.permissions(join.room, p.identity, { canPublish: false })) : null,
              managerAction(t("meeting.kick", { name }), "logout", async () => {
                if (!(await confirmDialog(t("meeting.kickConfirm", { name }), t("meeting.kick", { name })))) return;
                await api.rooms.kick(join.room, p.identity);
                toast(t("meeting.kicked", { name }));
              }),
            )
          : null,
      );
    });
    return h("div", { class: "side-panel", role: "region", "aria-labelledby": "side-title" }, panelHead(`${t("meeting.people")} · ${rows.length}`), h("ul", { class: "people" }, rows));
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
    }[n] as "meeting.mutedByHost";
    const el = h("div", { class: "banner info", role: "alert" }, icon(n === "publishRestored" ? "check" : "alert"), h("span", null, t(key)));
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
    offLang();
    offCall();
  }

  const offCall = call.on((what, detail) => {
    if (what === "notice") showNotice(detail as Notice);
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
