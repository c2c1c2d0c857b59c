// Pre-join: display name, camera and microphone with a live preview and a level meter, join
// with either off. Guests join by name when the server and the room allow it, or through an
// invite link (`?invite=`); otherwise the page says why and offers sign-in. In a room with a
// lobby, a guest waits here (camera preview still on) until a host lets them in.

import { createAudioAnalyser, createLocalAudioTrack, createLocalVideoTrack, type LocalAudioTrack, type LocalTrack, type LocalVideoTrack, Room } from "livekit-client";
import { ApiError, api, type Join, type LobbyPlace, type Waiting } from "../api";
import { field, h, initials, replace } from "../dom";
import { t } from "../i18n";
import { icon } from "../icons";
import { session } from "../router";
import { brand, busy, button, errorText, langSwitch } from "../ui";

const NAME_KEY = "bedrud.name";

function shell(content: Node[]): HTMLElement {
  return h(
    "div",
    { class: "prejoin-page" },
    h("header", { class: "topbar plain" }, brand(), h("div", { class: "topbar-end" }, langSwitch(true))),
    h("main", { id: "main", class: "prejoin" }, content),
  );
}

function signInBox(room: string, message: string): HTMLElement {
  return h(
    "div",
    { class: "notice-card", role: "alert" },
    icon("lock", "icon lg"),
    h("p", null, message),
    h("a", { class: "btn primary", href: `/signin?next=${encodeURIComponent(`/r/${room}`)}`, "data-link": true }, icon("user"), h("span", null, t("prejoin.signIn"))),
  );
}

/** Codes of refusals that signing in could overcome (others, like a ban, it would not). */
const SIGN_IN_HELPS = new Set(["unauthorized", "forbidden"]);

export function render(root: HTMLElement, params: Record<string, string>): () => void {
  const room = params.room;
  const user = session.user;
  const invite = new URLSearchParams(location.search).get("invite") ?? undefined;
  if (!user && !session.info.guestJoin && !invite) {
    root.append(shell([h("section", { class: "card prejoin-card single" }, h("h1", null, t("prejoin.room", { room })), signInBox(room, t("prejoin.guestOff")))]));
    return () => undefined;
  }

  let video: LocalVideoTrack | null = null;
  let audio: LocalAudioTrack | null = null;
  let camWanted = true;
  let micWanted = true;
  let devices = { videoinput: "", audioinput: "" };
  let meterStop: (() => void) | null = null;
  let handedOver = false;
  let meetingCleanup: (() => void) | null = null;
  let closed = false;
  let stopWaiting: (() => void) | null = null;

  const preview = h("video", { class: "preview-video", autoplay: true, muted: true, playsinline: true, "aria-label": t("prejoin.camera") });
  const placeholder = h("div", { class: "preview-off" }, h("div", { class: "avatar xl" }, initials(user?.username ?? "?")), h("p", null, t("prejoin.noCamera")));
  const meterFill = h("span", { class: "meter-fill" });
  const meter = h("div", { class: "meter", role: "meter", "aria-label": t("prejoin.level"), "aria-valuemin": "0", "aria-valuemax": "100", "aria-valuenow": "0" }, meterFill);
  const camBtn = h("button", { type: "button", class: "round" });
  const micBtn = h("button", { type: "button", class: "round" });
  const camSel = h("select", { "aria-label": t("prejoin.camera") });
  const micSel = h("select", { "aria-label": t("prejoin.microphone") });
  const stored = (() => {
    try {
      return localStorage.getItem(NAME_KEY) ?? "";
    } catch {
      return "";
    }
  })();
  const nameInput = h("input", { name: "display-name", autocomplete: "nickname", maxlength: "64", value: user ? user.username : stored, required: !user });
  const notice = h("div", { class: "prejoin-notice" });
  const invited = h("div", { class: "prejoin-invite" });
  const joinBtn = button(t("prejoin.join"), { type: "submit", kind: "primary block lg", icon: "video" });

  const drawButtons = () => {
    replace(camBtn, icon(camWanted ? "video" : "videoOff"));
    camBtn.setAttribute("aria-label", camWanted ? t("prejoin.cameraOn") : t("prejoin.cameraOff"));
    camBtn.setAttribute("aria-pressed", String(camWanted));
    camBtn.title = camBtn.getAttribute("aria-label") ?? "";
    camBtn.classList.toggle("off", !camWanted);
    replace(micBtn, icon(micWanted ? "mic" : "micOff"));
    micBtn.setAttribute("aria-label", micWanted ? t("prejoin.micOn") : t("prejoin.micOff"));
    micBtn.setAttribute("aria-pressed", String(micWanted));
    micBtn.title = micBtn.getAttribute("aria-label") ?? "";
    micBtn.classList.toggle("off", !micWanted);
    const showVideo = camWanted && !!video;
    preview.hidden = !showVideo;
    placeholder.hidden = showVideo;
    meter.classList.toggle("off", !micWanted || !audio);
  };

  const startMeter = () => {
    meterStop?.();
    meterStop = null;
    if (!audio) return;
    const a = createAudioAnalyser(audio, { cloneTrack: true });
    let raf = 0;
    const tick = () => {
      const v = micWanted ? Math.min(1, a.calculateVolume() * 4) : 0;
      meterFill.style.transform = `scaleX(${v.toFixed(3)})`;
      meter.setAttribute("aria-valuenow", String(Math.round(v * 100)));
      raf = requestAnimationFrame(tick);
    };
    tick();
    meterStop = () => {
      cancelAnimationFrame(raf);
      void a.cleanup();
    };
  };

  const openCamera = async () => {
    video?.stop();
    video = null;
    if (!camWanted) return drawButtons();
    try {
      video = await createLocalVideoTrack({ deviceId: devices.videoinput || undefined, resolution: { width: 1280, height: 720 } });
      if (closed) return video.stop();
      video.attach(preview);
      devices.videoinput = video.mediaStreamTrack.getSettings().deviceId ?? devices.videoinput;
    } catch {
      video = null;
    }
    drawButtons();
  };

  const openMic = async () => {
    audio?.stop();
    audio = null;
    try {
      audio = await createLocalAudioTrack({ deviceId: devices.audioinput || undefined, echoCancellation: true, noiseSuppression: true });
      if (closed) return audio.stop();
      devices.audioinput = audio.mediaStreamTrack.getSettings().deviceId ?? devices.audioinput;
      startMeter();
    } catch {
      audio = null;
    }
    drawButtons();
  };

  const fillDevices = async () => {
    for (const [kind, sel] of [["videoinput", camSel], ["audioinput", micSel]] as const) {
      const list = await Room.getLocalDevices(kind, false).catch(() => [] as MediaDeviceInfo[]);
      replace(sel, list.length ? list.map((d, i) => h("option", { value: d.deviceId, selected: d.deviceId === devices[kind] }, d.label || `${t("prejoin.default")} ${i + 1}`)) : h("option", { value: "" }, t("common.none")));
      sel.disabled = list.length === 0;
    }
    if (!video && !audio) replace(notice, h("p", { class: "soft-alert" }, icon("alert"), h("span", null, t("prejoin.noDevices"))));
  };

  camBtn.addEventListener("click", () => {
    camWanted = !camWanted;
    void openCamera();
  });
  micBtn.addEventListener("click", () => {
    micWanted = !micWanted;
    drawButtons();
  });
  camSel.addEventListener("change", () => {
    devices.videoinput = camSel.value;
    void openCamera();
  });
  micSel.addEventListener("change", () => {
    devices.audioinput = micSel.value;
    void openMic();
  });

  const form = h(
    "form",
    {
      class: "form",
      onsubmit: (e: Event) => {
        e.preventDefault();
        replace(notice);
        const name = nameInput.value.trim();
        void busy(joinBtn, async () => {
          try {
            if (!user) {
              try {
                localStorage.setItem(NAME_KEY, name);
              } catch {
                /* remembered only when storage is on */
              }
            }
            await knock(name);
          } catch (e) {
            showRefusal(e);
          }
        });
      },
    },
    invited,
    h("p", { class: "who" }, user ? t("prejoin.signedInAs", { name: user.username }) : t("prejoin.asGuest")),
    field(t("prejoin.name"), nameInput),
    h("div", { class: "device-row" }, h("div", { class: "field" }, h("label", null, icon("video", "icon xs"), t("prejoin.camera")), camSel), h("div", { class: "field" }, h("label", null, icon("mic", "icon xs"), t("prejoin.microphone")), micSel)),
    notice,
    joinBtn,
  );
  // Labels point at the selects (the selects also carry aria-label).
  camSel.id = "cam-select";
  micSel.id = "mic-select";
  form.querySelectorAll(".device-row label").forEach((l, i) => l.setAttribute("for", i === 0 ? "cam-select" : "mic-select"));

  const showRefusal = (e: unknown) => {
    if (e instanceof ApiError && (e.status === 401 || e.status === 403) && SIGN_IN_HELPS.has(e.code) && !user) {
      replace(notice, signInBox(room, e.message || t("prejoin.notPublic")));
    } else {
      replace(notice, h("p", { class: "form-error", role: "alert" }, icon("alert"), h("span", null, errorText(e))));
    }
  };

  /** Starts the meeting with the tracks chosen here. */
  const enter = async (join: Join, name: string) => {
    const tracks: LocalTrack[] = [];
    if (camWanted && video) tracks.push(video);
    if (micWanted && audio) tracks.push(audio);
    meterStop?.();
    meterStop = null;
    if (!camWanted) video?.stop();
    if (!micWanted) audio?.stop();
    handedOver = true;
    const meeting = await import("./meeting");
    if (closed) return;
    meetingCleanup = meeting.start(root, join, tracks, name, { ...devices }, invite);
  };

  /** Asks to join: straight in, or into the lobby. */
  const knock = async (name: string) => {
    const answer = await api.rooms.join(room, name, invite);
    if ("token" in answer) return enter(answer, name);
    waitInLobby(answer, name);
  };

  /** The lobby: the card says where the person stands, live, until a host decides. */
  const waitInLobby = (w: Waiting, name: string) => {
    const card = form.closest(".prejoin-card") as HTMLElement;
    const before = [...card.childNodes];
    const body = h("div", { class: "lobby-wait", role: "status", "aria-live": "polite" });
    const leave = () => {
      stopWaiting?.();
      stopWaiting = null;
      card.replaceChildren(...before);
    };
    let last: LobbyPlace["status"] = "waiting";
    const show = (p: LobbyPlace) => {
      const waiting = p.status === "waiting";
      const title = {
        waiting: "lobby.waiting",
        admitted: "lobby.admitted",
        denied: "lobby.denied",
        ended: "lobby.ended",
        banned: "lobby.banned",
        gone: "lobby.waiting",
      }[p.status] as "lobby.waiting";
      replace(
        body,
        h("div", { class: `lobby-icon${p.status === "denied" || p.status === "banned" ? " danger" : ""}`, "aria-hidden": "true" }, waiting ? h("span", { class: "spinner" }) : icon(p.status === "admitted" ? "check" : p.status === "ended" ? "leave" : "ban", "icon lg")),
        h("h1", null, t(title)),
        h("p", { class: "muted" }, waiting ? t("lobby.waitingText", { room }) : p.status === "denied" ? t("lobby.deniedText") : p.status === "ended" ? t("lobby.endedText") : p.status === "banned" ? t("lobby.bannedText") : t("lobby.joining")),
        waiting && p.position ? h("p", { class: "lobby-place" }, t("lobby.position", { position: p.position })) : null,
        h(
          "div",
          { class: "actions center" },
          p.status === "denied" || p.status === "ended"
            ? button(t("lobby.askAgain"), { kind: "primary", icon: "refresh", onclick: () => void knock(name).catch((e: unknown) => (leave(), showRefusal(e))) })
            : null,
          p.status !== "admitted" ? button(t("lobby.leave"), { kind: "secondary", onclick: leave }) : null,
        ),
      );
    };
    card.replaceChildren(h("p", { class: "eyebrow" }, t("prejoin.room", { room })), body);
    show({ status: "waiting", position: w.lobby.position });
    stopWaiting = api.rooms.waitInLobby(room, (p) => {
      const was = last;
      last = p.status;
      if (p.status === "gone" && was === "waiting") {
        // The entry went (e.g. bedrud restarted): ask again, keeping the person in line.
        void knock(name).catch((e: unknown) => (leave(), showRefusal(e)));
        return;
      }
      show(p);
      if (p.status === "admitted") {
        stopWaiting?.();
        stopWaiting = null;
        void knock(name).catch((e: unknown) => (leave(), showRefusal(e)));
      }
    });
  };

  if (invite) {
    api.rooms.checkInvite(invite).then(
      (i) => replace(invited, h("p", { class: "invite-note" }, icon("link", "icon xs"), h("span", null, i.role === "moderator" ? t("prejoin.invitedModerator", { room: i.room }) : t("prejoin.invited", { room: i.room })))),
      (e: unknown) => {
        replace(invited, h("p", { class: "form-error", role: "alert" }, icon("alert"), h("span", null, errorText(e))));
        if (!user) joinBtn.disabled = true;
      },
    );
  }

  root.append(
    shell([
      h(
        "section",
        { class: "prejoin-grid" },
        h("div", { class: "preview" }, preview, placeholder, h("div", { class: "preview-bar" }, micBtn, camBtn, meter)),
        h(
          "div",
          { class: "card prejoin-card" },
          h("p", { class: "eyebrow" }, t("prejoin.room", { room })),
          h("h1", null, t("prejoin.title")),
          form,
          user ? h("a", { class: "back-link", href: "/", "data-link": true }, icon("back", "icon xs"), t("prejoin.back")) : null,
        ),
      ),
    ]),
  );
  drawButtons();
  void (async () => {
    await Promise.all([openCamera(), openMic()]);
    await fillDevices();
  })();
  (user ? joinBtn : nameInput).focus();

  return () => {
    closed = true;
    stopWaiting?.();
    meetingCleanup?.();
    meterStop?.();
    if (!handedOver) {
      video?.stop();
      audio?.stop();
    }
  };
}
