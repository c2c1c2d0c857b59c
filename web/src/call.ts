// The LiveKit room of a meeting, kept in one place. The meeting screen reads this state and
// listens for `change`; every LiveKit call the client makes goes through here.

import {
  ConnectionError,
  ConnectionErrorReason,
  ConnectionQuality,
  DisconnectReason,
  type LocalTrack,
  type Participant,
  type RemoteParticipant,
  Room,
  RoomEvent,
  Track,
  type TrackPublication,
} from "livekit-client";
import { api, type Join } from "./api";

export type Status = "connecting" | "connected" | "reconnecting" | "ended";
export type EndReason = "left" | "removed" | "room_deleted" | "disconnected";
export type Notice = "mutedByHost" | "camMutedByHost" | "publishRevoked" | "publishRestored" | "chatRefused" | "handLowered" | "onStage" | "offStage";

/** What bedrud keeps in the LiveKit room's metadata; only bedrud can change it. */
export interface RoomMeta {
  locked: boolean;
  spotlight: string | null;
  lobby: boolean;
  stage: boolean;
}

/** The participant attribute bedrud sets for a raised hand: when it went up (Unix ms). */
const HAND = "hand";

export interface ChatMessage {
  id: string;
  from: string;
  identity: string;
  text: string;
  at: number;
  mine: boolean;
}

/** Sources as LiveKit's protocol numbers them in `canPublishSources`. */
const PROTO_SOURCE: Record<string, number> = { camera: 1, microphone: 2, screen_share: 3, screen_share_audio: 4 };
const CHAT_TOPIC = "chat";

type Listener = (what: "change" | "notice" | "chat" | "hand", detail?: unknown) => void;

export class Call {
  readonly room: Room;
  status: Status = "connecting";
  endReason: EndReason | null = null;
  join: Join;
  messages: ChatMessage[] = [];
  /** Identities of the current active speakers, loudest first. */
  speakers: string[] = [];
  private listeners = new Set<Listener>();
  /** Sources the user just muted themselves: a mute that is not here came from the host. */
  private selfMuting = new Set<string>();
  private canPublishBefore = true;
  /** The user just lowered their own hand: a lowering that is not this came from a host. */
  private selfLowering = false;
  private handBefore = false;
  /** The invite link's secret this person came with, for joining again. */
  private readonly invite?: string;
  /** While `connect` runs, a failed attempt's `Disconnected` does not end the call. */
  private connecting = false;

  constructor(join: Join, devices: { videoinput?: string; audioinput?: string } = {}, invite?: string) {
    this.join = join;
    this.invite = invite;
    this.room = new Room({
      adaptiveStream: true,
      dynacast: true,
      disconnectOnPageLeave: true,
      videoCaptureDefaults: { deviceId: devices.videoinput },
      audioCaptureDefaults: { deviceId: devices.audioinput },
    });
    this.wire();
  }

  on(f: Listener): () => void {
    this.listeners.add(f);
    return () => this.listeners.delete(f);
  }

  private emit(what: "change" | "notice" | "chat" | "hand", detail?: unknown): void {
    for (const f of this.listeners) f(what, detail);
  }

  private wire(): void {
    const r = this.room;
    const changed = () => this.emit("change");
    for (const ev of [
      RoomEvent.ParticipantConnected,
      RoomEvent.ParticipantDisconnected,
      RoomEvent.TrackSubscribed,
      RoomEvent.TrackUnsubscribed,
      RoomEvent.TrackPublished,
      RoomEvent.TrackUnpublished,
      RoomEvent.TrackUnmuted,
      RoomEvent.LocalTrackPublished,
      RoomEvent.LocalTrackUnpublished,
      RoomEvent.ConnectionQualityChanged,
      RoomEvent.ParticipantNameChanged,
      RoomEvent.AudioPlaybackStatusChanged,
      RoomEvent.ActiveDeviceChanged,
      RoomEvent.MediaDevicesChanged,
      RoomEvent.RoomMetadataChanged,
    ] as const) {
      r.on(ev, changed);
    }
    r.on(RoomEvent.TrackMuted, (pub: TrackPublication, p: Participant) => {
      if (p === r.localParticipant) {
        const source = pub.source as string;
        if (this.selfMuting.has(source)) this.selfMuting.delete(source);
        else if (pub.source === Track.Source.Microphone) this.emit("notice", "mutedByHost" satisfies Notice);
        else if (pub.source === Track.Source.Camera) this.emit("notice", "camMutedByHost" satisfies Notice);
      }
      changed();
    });
    r.on(RoomEvent.ActiveSpeakersChanged, (speakers: Participant[]) => {
      this.speakers = speakers.map((s) => s.identity);
      changed();
    });
    r.on(RoomEvent.ParticipantPermissionsChanged, (_prev, p: Participant) => {
      if (p === r.localParticipant) {
        const now = this.canPublish();
        const stage = this.meta().stage;
        if (this.canPublishBefore && !now) this.emit("notice", (stage ? "offStage" : "publishRevoked") satisfies Notice);
        if (!this.canPublishBefore && now) this.emit("notice", (stage ? "onStage" : "publishRestored") satisfies Notice);
        this.canPublishBefore = now;
      }
      changed();
    });
    r.on(RoomEvent.ParticipantAttributesChanged, (changedAttrs: Record<string, string>, p: Participant) => {
      // Someone else's hand went up: `hand` with their name.
      if (p !== r.localParticipant && changedAttrs[HAND]) this.emit("hand", p.name || p.identity);
      if (p === r.localParticipant) {
        const up = this.handRaisedAt(p) !== null;
        // Let the permission of the same update land first: a promotion also lowers the hand.
        if (this.handBefore && !up && !this.selfLowering) window.setTimeout(() => !(this.meta().stage && this.canPublish()) && this.emit("notice", "handLowered" satisfies Notice), 0);
        if (!up) this.selfLowering = false;
        this.handBefore = up;
      }
      changed();
    });
    r.on(RoomEvent.Reconnecting, () => {
      this.status = "reconnecting";
      changed();
    });
    r.on(RoomEvent.SignalReconnecting, () => {
      this.status = "reconnecting";
      changed();
    });
    r.on(RoomEvent.Reconnected, () => {
      this.status = "connected";
      changed();
    });
    r.on(RoomEvent.Disconnected, (reason?: DisconnectReason) => {
      if (this.status === "ended" || this.connecting) return;
      this.status = "ended";
      this.endReason =
        reason === DisconnectReason.PARTICIPANT_REMOVED
          ? "removed"
          : reason === DisconnectReason.ROOM_DELETED
            ? "room_deleted"
            : reason === DisconnectReason.CLIENT_INITIATED
              ? "left"
              : "disconnected";
      changed();
    });
    r.on(RoomEvent.DataReceived, (payload: Uint8Array, p?: RemoteParticipant, _kind?: unknown, topic?: string) => {
      if (topic !== CHAT_TOPIC || !p) return;
      try {
        const m = JSON.parse(new TextDecoder().decode(payload)) as { id?: string; text?: string };
        if (typeof m.text !== "string" || !m.text.trim()) return;
        this.messages.push({ id: m.id ?? crypto.randomUUID(), from: p.name || p.identity, identity: p.identity, text: m.text.slice(0, 2000), at: Date.now(), mine: false });
        this.emit("chat");
      } catch {
        /* not a chat message of this client */
      }
    });
  }

  /**
   * Connects with the join answer's token and publishes the tracks from the pre-join screen.
   * A token that expired while the page waited is replaced by joining again, silently.
   */
  async connect(tracks: LocalTrack[], displayName: string): Promise<void> {
    this.connecting = true;
    try {
      await this.room.connect(this.join.url, this.join.token);
    } catch (e) {
      if (!(e instanceof ConnectionError && e.reason === ConnectionErrorReason.NotAllowed)) throw e;
      const again = await api.rooms.join(this.join.room, displayName, this.invite);
      if (!("token" in again)) throw e;
      this.join = again;
      await this.room.connect(this.join.url, this.join.token);
    } finally {
      this.connecting = false;
    }
    this.status = "connected";
    this.canPublishBefore = this.canPublish();
    for (const track of tracks) {
      const source = track.kind === Track.Kind.Video ? Track.Source.Camera : Track.Source.Microphone;
      if (!this.mayPublish(source)) {
        track.stop();
        continue;
      }
      await this.room.localParticipant.publishTrack(track, { source });
    }
    this.emit("change");
  }

  canPublish(): boolean {
    return this.room.localParticipant.permissions?.canPublish ?? this.join.canPublish !== false;
  }

  /** Whether the token's grant (as LiveKit holds it now) lets this participant publish `source`. */
  mayPublish(source: Track.Source): boolean {
    const perm = this.room.localParticipant.permissions;
    // Until LiveKit has said, the join answer does (false for the audience of a stage).
    if (!perm) return this.join.canPublish !== false;
    if (!perm.canPublish) return false;
    const allowed = perm.canPublishSources ?? [];
    return allowed.length === 0 || allowed.includes(PROTO_SOURCE[source] as never);
  }

  canChat(): boolean {
    return this.room.localParticipant.permissions?.canPublishData ?? false;
  }

  isManager(): boolean {
    return this.join.role === "owner" || this.join.role === "admin" || this.join.role === "moderator";
  }

  /** bedrud's room metadata: lock, spotlight, lobby, stage (defaults until the first arrives). */
  meta(): RoomMeta {
    try {
      const m = JSON.parse(this.room.metadata || "{}") as Partial<RoomMeta>;
      return { locked: m.locked === true, spotlight: typeof m.spotlight === "string" ? m.spotlight : null, lobby: m.lobby === true, stage: m.stage === true };
    } catch {
      return { locked: false, spotlight: null, lobby: false, stage: false };
    }
  }

  /** When `p` raised their hand (Unix ms), or null. */
  handRaisedAt(p: Participant): number | null {
    const v = Number(p.attributes?.[HAND]);
    return Number.isFinite(v) && v > 0 ? v : null;
  }

  /** Raised hands, first up first. */
  hands(): Participant[] {
    return this.participants()
      .filter((p) => this.handRaisedAt(p) !== null)
      .sort((a, b) => (this.handRaisedAt(a) ?? 0) - (this.handRaisedAt(b) ?? 0));
  }

  /** Raises or lowers this person's hand; bedrud sets the attribute everyone sees. */
  async setHand(up: boolean): Promise<void> {
    if (!up) this.selfLowering = true;
    await api.rooms.hand(this.join.room, this.join.identity, up);
  }

  /** The participant with this identity, if in the meeting. */
  byIdentity(identity: string): Participant | undefined {
    return identity === this.room.localParticipant.identity ? this.room.localParticipant : this.room.remoteParticipants.get(identity);
  }

  micOn(): boolean {
    return this.room.localParticipant.isMicrophoneEnabled;
  }

  camOn(): boolean {
    return this.room.localParticipant.isCameraEnabled;
  }

  sharing(): boolean {
    return this.room.localParticipant.isScreenShareEnabled;
  }

  async setMic(on: boolean): Promise<void> {
    if (!on) this.selfMuting.add(Track.Source.Microphone);
    await this.room.localParticipant.setMicrophoneEnabled(on);
    this.emit("change");
  }

  async setCam(on: boolean): Promise<void> {
    if (!on) this.selfMuting.add(Track.Source.Camera);
    await this.room.localParticipant.setCameraEnabled(on);
    this.emit("change");
  }

  async setShare(on: boolean): Promise<void> {
    await this.room.localParticipant.setScreenShareEnabled(on, { audio: false });
    this.emit("change");
  }

  async switchDevice(kind: MediaDeviceKind, deviceId: string): Promise<void> {
    await this.room.switchActiveDevice(kind, deviceId);
    this.emit("change");
  }

  async sendChat(text: string): Promise<void> {
    const msg = { id: crypto.randomUUID(), text };
    await this.room.localParticipant.publishData(new TextEncoder().encode(JSON.stringify(msg)), { reliable: true, topic: CHAT_TOPIC });
    const me = this.room.localParticipant;
    this.messages.push({ id: msg.id, from: me.name || me.identity, identity: me.identity, text, at: Date.now(), mine: true });
    this.emit("chat");
  }

  participants(): Participant[] {
    return [this.room.localParticipant, ...this.room.remoteParticipants.values()];
  }

  async leave(): Promise<void> {
    this.status = "ended";
    this.endReason = "left";
    await this.room.disconnect();
    this.emit("change");
  }
}

export function qualityName(q: ConnectionQuality): string {
  switch (q) {
    case ConnectionQuality.Excellent:
      return "excellent";
    case ConnectionQuality.Good:
      return "good";
    case ConnectionQuality.Poor:
      return "poor";
    case ConnectionQuality.Lost:
      return "lost";
    default:
      return "unknown";
  }
}
