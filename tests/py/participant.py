"""A scriptable LiveKit meeting participant for bedrud's integration tests.

    python participant.py --url ws://127.0.0.1:7880 --token JWT [--timeout 20]

Joins the room the token grants (auto-subscribe on), then reads commands as JSON lines on
stdin and writes events as JSON lines on stdout (one object per line, each with an "event"
key). See tests/py/README.md for the protocol and the exit codes.
"""

from __future__ import annotations

import argparse
import array
import asyncio
import contextlib
import json
import math
import os
import stat
import sys
from collections.abc import Callable, Coroutine
from typing import Any

from livekit import rtc
from livekit.rtc.participant import PublishDataError, PublishTrackError

EXIT_OK = 0
EXIT_CONNECT_FAILED = 3
EXIT_TIMEOUT = 4
CLOSE_GRACE = 5.0  # seconds allowed for leaving the room after the time limit
SET_ATTRIBUTES_WAIT = 5.0  # seconds to wait for the server to take (or refuse) attributes

SAMPLE_RATE = 48_000
FRAME_SAMPLES = SAMPLE_RATE // 100  # 10 ms
TONE_HZ = 400  # a whole number of periods per 10 ms frame, so frames join seamlessly
VIDEO_WIDTH, VIDEO_HEIGHT, VIDEO_FPS = 160, 120, 5


def emit(event: str, **fields: Any) -> None:
    try:
        print(json.dumps({"event": event, **fields}), flush=True)
    except BrokenPipeError:
        pass  # the test that read us has gone; nothing left to tell


def source_name(source: rtc.TrackSource.ValueType) -> str:
    """rtc.TrackSource.SOURCE_MICROPHONE -> "microphone"."""
    return rtc.TrackSource.Name(source).removeprefix("SOURCE_").lower()


def permissions(participant: rtc.Participant) -> dict[str, Any]:
    p = participant.permissions
    return {
        "can_publish": p.can_publish,
        "can_subscribe": p.can_subscribe,
        "can_publish_data": p.can_publish_data,
        "can_publish_sources": [source_name(s) for s in p.can_publish_sources],
    }


async def feed_audio(source: rtc.AudioSource) -> None:
    """Feed a continuous sine tone; capture_frame waits while the source's queue is full."""
    tone = array.array(
        "h",
        (
            int(8000 * math.sin(2 * math.pi * TONE_HZ * i / SAMPLE_RATE))
            for i in range(FRAME_SAMPLES)
        ),
    ).tobytes()
    while True:
        await source.capture_frame(rtc.AudioFrame(tone, SAMPLE_RATE, 1, FRAME_SAMPLES))


async def feed_video(source: rtc.VideoSource) -> None:
    """Feed a solid-colour picture a few times a second."""
    pixels = bytes([32, 160, 96, 255]) * (VIDEO_WIDTH * VIDEO_HEIGHT)
    frame = rtc.VideoFrame(VIDEO_WIDTH, VIDEO_HEIGHT, rtc.VideoBufferType.RGBA, pixels)
    while True:
        source.capture_frame(frame)
        await asyncio.sleep(1 / VIDEO_FPS)


class Participant:
    def __init__(self) -> None:
        self.room = rtc.Room()
        self.feeders: set[asyncio.Task[None]] = set()
        self.muted: dict[str, bool] = {}  # local track sid -> muted, as last reported
        self.leaving = False
        self.disconnected: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._listen()

    def is_local(self, participant: rtc.Participant) -> bool:
        return participant.identity == self.room.local_participant.identity

    def _listen(self) -> None:
        room = self.room

        @room.on("participant_connected")
        def _(p: rtc.RemoteParticipant) -> None:
            emit("participant_connected", identity=p.identity)

        @room.on("participant_disconnected")
        def _(p: rtc.RemoteParticipant) -> None:
            emit("participant_disconnected", identity=p.identity)

        @room.on("track_subscribed")
        def _(track: rtc.Track, pub: rtc.RemoteTrackPublication, p: rtc.RemoteParticipant) -> None:
            emit(
                "track_subscribed", identity=p.identity, source=source_name(pub.source), sid=pub.sid
            )

        def mute_changed(p: rtc.Participant, pub: rtc.TrackPublication, muted: bool) -> None:
            # The SDK reports a server-side mute of a local track more than once; report changes.
            if self.is_local(p) and self.muted.get(pub.sid) != muted:
                self.muted[pub.sid] = muted
                emit(
                    "track_muted" if muted else "track_unmuted",
                    sid=pub.sid,
                    source=source_name(pub.source),
                )

        room.on("track_muted", lambda p, pub: mute_changed(p, pub, True))
        room.on("track_unmuted", lambda p, pub: mute_changed(p, pub, False))

        @room.on("participant_permissions_changed")
        def _(p: rtc.Participant, _perms: object) -> None:
            if self.is_local(p):
                emit("permissions_changed", permissions=permissions(p))

        @room.on("participant_attributes_changed")
        def _(changed: dict[str, str], p: rtc.Participant) -> None:
            emit("attributes_changed", identity=p.identity, changed=changed, attributes=dict(p.attributes))

        @room.on("room_metadata_changed")
        def _(_old: str, new: str) -> None:
            emit("room_metadata_changed", metadata=new)

        @room.on("data_received")
        def _(packet: rtc.DataPacket) -> None:
            identity = packet.participant.identity if packet.participant else None
            emit("data_received", identity=identity, payload=packet.data.decode(errors="replace"))

        @room.on("disconnected")
        def _(reason: rtc.DisconnectReason.ValueType) -> None:
            if not self.leaving:
                emit("disconnected", reason=rtc.DisconnectReason.Name(reason).lower())
            if not self.disconnected.done():
                self.disconnected.set_result(None)

    async def connect(self, url: str, token: str) -> bool:
        try:
            await self.room.connect(url, token, rtc.RoomOptions(auto_subscribe=True))
        except rtc.ConnectError as e:
            emit("connect_failed", error=str(e))
            return False
        emit(
            "connected",
            identity=self.room.local_participant.identity,
            room=self.room.name,
            sid=self.room.local_participant.sid,
        )
        return True

    async def publish(
        self,
        track: rtc.LocalTrack,
        source: rtc.TrackSource.ValueType,
        feed: Callable[[], Coroutine[Any, Any, None]],
    ) -> None:
        name = source_name(source)
        try:
            pub = await self.room.local_participant.publish_track(
                track, rtc.TrackPublishOptions(source=source)
            )
        except PublishTrackError as e:
            emit("publish_failed", source=name, error=e.message)
            return
        self.muted[pub.sid] = pub.muted
        self.feeders.add(asyncio.create_task(feed()))
        emit("published", source=name, sid=pub.sid)

    async def handle(self, cmd: dict[str, Any]) -> bool:
        """Run one command; False means the participant has left."""
        lp = self.room.local_participant
        match cmd.get("cmd"):
            case "publish_audio":
                audio = rtc.AudioSource(SAMPLE_RATE, 1)
                mic = rtc.LocalAudioTrack.create_audio_track("microphone", audio)
                await self.publish(
                    mic, rtc.TrackSource.SOURCE_MICROPHONE, lambda: feed_audio(audio)
                )
            case "publish_video":
                video = rtc.VideoSource(VIDEO_WIDTH, VIDEO_HEIGHT)
                cam = rtc.LocalVideoTrack.create_video_track("camera", video)
                await self.publish(cam, rtc.TrackSource.SOURCE_CAMERA, lambda: feed_video(video))
            case "publish_data":
                try:
                    await lp.publish_data(str(cmd.get("payload", "")), reliable=True)
                    emit("data_sent")
                except PublishDataError as e:
                    emit("data_failed", error=e.message)
            case "set_attributes":
                try:
                    async with asyncio.timeout(SET_ATTRIBUTES_WAIT):
                        await lp.set_attributes({str(k): str(v) for k, v in cmd.get("attributes", {}).items()})
                    emit("attributes_sent")
                except Exception as e:  # noqa: BLE001 - the SDK raises several kinds here
                    emit("attributes_failed", error=str(e) or type(e).__name__)
            case "state":
                emit(
                    "state",
                    connected=self.room.isconnected(),
                    permissions=permissions(lp),
                    tracks=[
                        {"sid": pub.sid, "source": source_name(pub.source), "muted": pub.muted}
                        for pub in lp.track_publications.values()
                    ],
                    remote_participants=sorted(self.room.remote_participants),
                    attributes=dict(lp.attributes),
                    remote_attributes={
                        identity: dict(p.attributes)
                        for identity, p in self.room.remote_participants.items()
                    },
                    room_metadata=self.room.metadata,
                )
            case "leave":
                await self.close()
                emit("left")
                return False
            case other:
                emit("error", error=f"unknown command {other!r}")
        return True

    async def serve(self, commands: asyncio.StreamReader) -> None:
        """Run commands until `leave`, stdin EOF, or a disconnect from the server's side."""
        while True:
            line = asyncio.ensure_future(commands.readline())
            pending: set[asyncio.Future[Any]] = {line, self.disconnected}
            await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            if self.disconnected.done():
                line.cancel()
                await self.close()
                return
            raw = line.result()
            if not raw:  # EOF: whoever drove us is done
                await self.close()
                emit("left")
                return
            if not raw.strip():
                continue
            try:
                cmd = json.loads(raw)
            except json.JSONDecodeError as e:
                emit("error", error=f"bad command: {e}")
                continue
            if not await self.handle(cmd):
                return

    async def close(self) -> None:
        self.leaving = True
        for task in self.feeders:
            task.cancel()
        await asyncio.gather(*self.feeders, return_exceptions=True)
        self.feeders.clear()
        await self.room.disconnect()


async def stdin_reader() -> asyncio.StreamReader:
    reader = asyncio.StreamReader()
    mode = os.fstat(sys.stdin.fileno()).st_mode
    if stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode) or sys.stdin.isatty():
        protocol = asyncio.StreamReaderProtocol(reader)
        await asyncio.get_running_loop().connect_read_pipe(lambda: protocol, sys.stdin)
    else:  # a regular file or /dev/null cannot be polled, and never blocks
        reader.feed_data(sys.stdin.buffer.read())
        reader.feed_eof()
    return reader


async def run(url: str, token: str, timeout: float) -> int:
    participant = Participant()
    try:
        async with asyncio.timeout(timeout):
            if not await participant.connect(url, token):
                return EXIT_CONNECT_FAILED
            await participant.serve(await stdin_reader())
            return EXIT_OK
    except TimeoutError:
        emit("timeout")
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(CLOSE_GRACE):
                await participant.close()
        return EXIT_TIMEOUT


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--url", required=True, help="LiveKit server URL, e.g. ws://127.0.0.1:7880")
    ap.add_argument("--token", required=True, help="LiveKit join token (JWT)")
    ap.add_argument("--timeout", type=float, default=20.0, help="total run time limit, seconds")
    args = ap.parse_args()
    return asyncio.run(run(args.url, args.token, args.timeout))


if __name__ == "__main__":
    sys.exit(main())
