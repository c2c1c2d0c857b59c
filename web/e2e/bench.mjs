// Figures of the web client for `make bench` (printed, never asserted):
//   meeting_page_js_css_bytes   compressed bytes of JS and CSS a browser fetches to open a room
//                               and join it (Resource Timing encodedBodySize, so what bedrud sent)
//   join_to_first_frame_ms      click on "Join meeting" -> first frame of the other person's
//                               video on screen, loopback, median of `runs`
//   js_heap_bytes               the joining page's JS heap (CDP Performance.getMetrics,
//                               JSHeapUsedSize) after `heapSeconds` in a two-person call
//
// input: {"url", "users": [{"username","password"}, {"username","password"}], "runs"?: 3,
//         "heapSeconds"?: 60}. Creates its own room.

import { assert, input, newPage, run, signIn } from "./lib.mjs";

const cfg = input();
const runs = cfg.runs ?? 3;
const heapSeconds = cfg.heapSeconds ?? 60;

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

await run("bench", 120_000 + heapSeconds * 1000 + runs * 30_000, async (browser) => {
  const [a, b] = cfg.users;
  const room = `bench-${Date.now().toString(36)}`;

  // The first person creates the room and waits in it.
  const first = await newPage(browser, cfg.url);
  await signIn(first, a.username, a.password);
  const created = await first.evaluate(
    (name) => fetch("/api/room/create", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ name }) }).then((r) => r.status),
    room,
  );
  assert(created === 201, `create room: ${created}`);
  await first.goto(`/r/${room}`);
  await first.waitForFunction(() => (document.querySelector(".preview-video")?.videoWidth ?? 0) > 0);
  await first.getByRole("button", { name: "Join meeting" }).click();
  await first.getByRole("toolbar").waitFor();

  // The second person opens the room's page (a full load) and joins, `runs` times.
  const second = await newPage(browser, cfg.url);
  await signIn(second, b.username, b.password);
  const times = [];
  let bytes = null;
  for (let i = 0; i < runs; i++) {
    await second.goto(`/r/${room}`);
    await second.waitForFunction(() => (document.querySelector(".preview-video")?.videoWidth ?? 0) > 0);
    await second.evaluate(() => {
      const btn = [...document.querySelectorAll("button")].find((x) => x.textContent?.includes("Join meeting"));
      btn?.addEventListener("click", () => (window.__t0 = performance.now()), { capture: true, once: true });
    });
    await second.getByRole("button", { name: "Join meeting" }).click();
    const ms = await (
      await second.waitForFunction(
        (name) => {
          const v = document.querySelector(`figure[aria-label="${name}"] video`);
          return v && v.videoWidth > 0 && v.currentTime > 0 ? performance.now() - window.__t0 : null;
        },
        a.username,
        { polling: "raf", timeout: 30_000 },
      )
    ).jsonValue();
    times.push(Math.round(ms));
    if (i === 0) {
      bytes = await second.evaluate(() => {
        const list = performance.getEntriesByType("resource").filter((e) => /\.(js|css)(\?|$)/.test(e.name));
        return {
          encoded: list.reduce((n, e) => n + e.encodedBodySize, 0),
          decoded: list.reduce((n, e) => n + e.decodedBodySize, 0),
          files: list.map((e) => ({ file: new URL(e.name).pathname, encoded: e.encodedBodySize, decoded: e.decodedBodySize })),
        };
      });
    }
    if (i < runs - 1) {
      await second.getByRole("button", { name: "Leave meeting" }).click();
      await second.getByRole("heading", { name: "You left the meeting" }).waitFor();
    }
  }

  // Stay in the call, then read the heap.
  await second.waitForTimeout(heapSeconds * 1000);
  const cdp = await second.context().newCDPSession(second);
  await cdp.send("Performance.enable");
  const { metrics } = await cdp.send("Performance.getMetrics");
  const heap = metrics.find((m) => m.name === "JSHeapUsedSize")?.value ?? 0;
  const stillPlaying = await second.evaluate((name) => (document.querySelector(`figure[aria-label="${name}"] video`)?.videoWidth ?? 0) > 0, a.username);

  return {
    meeting_page_js_css_bytes: bytes.encoded,
    meeting_page_js_css_uncompressed_bytes: bytes.decoded,
    meeting_page_files: bytes.files,
    join_to_first_frame_ms: median(times),
    join_to_first_frame_runs_ms: times,
    js_heap_bytes: Math.round(heap),
    heap_seconds: heapSeconds,
    video_still_playing: stillPlaying,
  };
});
