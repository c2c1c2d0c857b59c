// Figures of the lobby (printed, never asserted):
//   lobby_admit_to_connected_ms    the host's click on "Let NAME in" -> the waiting page's
//                                  LiveKit room connected (bedrud answers the admitted guest's
//                                  event stream, the page fetches its join token and connects),
//                                  loopback, median of `runs`
//   lobby_admit_to_first_frame_ms  the same click -> the first frame of the host's video on the
//                                  admitted page
// Both ends are read from Date.now() in the two pages (one machine, one clock). Each run is a
// new guest in a fresh browser context, so each one waits in the lobby afresh.
//
// input: {"url", "owner": {"username","password"}, "runs"?: 5}. Creates its own room (members
// only, lobby on) and invite link.

import { assert, input, joinFromPrejoin, newPage, run, signIn } from "./lib.mjs";

const cfg = input();
const runs = cfg.runs ?? 5;

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

await run("bench-lobby", 90_000 + runs * 45_000, async (browser) => {
  const { owner } = cfg;
  const room = `lobby-bench-${Date.now().toString(36)}`;

  // The host: a members-only room with a lobby, an invite link, and the host in the meeting.
  const host = await newPage(browser, cfg.url);
  await signIn(host, owner.username, owner.password);
  const link = await host.evaluate(async (name) => {
    const post = (path, body) =>
      fetch(path, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) }).then(async (r) => ({ status: r.status, body: await r.json() }));
    const created = await post("/api/room/create", { name, settings: { lobby: true } });
    if (created.status !== 201) return { error: created };
    const inv = await post(`/api/room/${name}/invites`, { maxUses: 100 });
    return inv.status === 201 ? location.origin + inv.body.path : { error: inv };
  }, room);
  assert(typeof link === "string", `room and invite: ${JSON.stringify(link)}`);
  await host.goto(`/r/${room}`);
  await joinFromPrejoin(host);
  await host.getByRole("button", { name: "Participants" }).click();

  const connected = [];
  const firstFrame = [];
  for (let i = 0; i < runs; i++) {
    const name = `Guest ${i + 1}`;
    const guest = await newPage(browser, cfg.url);
    await guest.goto(link);
    await joinFromPrejoin(guest, name, { lobby: true });
    const admit = host.getByRole("button", { name: `Let ${name} in` });
    await admit.waitFor();
    // The guest's page notes when its room connects and when the host's first frame plays.
    const ends = guest.evaluate(
      (hostName) =>
        new Promise((resolve) => {
          let connectedAt = null;
          const tick = () => {
            if (connectedAt === null && window.bedrud?.call?.status === "connected") connectedAt = Date.now();
            const v = document.querySelector(`figure[aria-label="${hostName}"] video`);
            if (connectedAt !== null && v && v.videoWidth > 0 && v.currentTime > 0) resolve({ connectedAt, frameAt: Date.now() });
            else requestAnimationFrame(tick);
          };
          tick();
        }),
      owner.username,
    );
    await admit.evaluate((btn) => btn.addEventListener("click", () => (window.__t0 = Date.now()), { capture: true, once: true }));
    await admit.click();
    const { connectedAt, frameAt } = await ends;
    const t0 = await host.evaluate(() => window.__t0);
    connected.push(connectedAt - t0);
    firstFrame.push(frameAt - t0);
    await guest.getByRole("button", { name: "Leave meeting" }).click();
    await guest.context().close();
  }

  return {
    lobby_admit_to_connected_ms: median(connected),
    lobby_admit_to_connected_runs_ms: connected,
    lobby_admit_to_first_frame_ms: median(firstFrame),
    lobby_admit_to_first_frame_runs_ms: firstFrame,
  };
});
