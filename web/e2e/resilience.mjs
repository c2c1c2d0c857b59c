// What a meeting survives: a join token that expired before the page connected is replaced by
// joining again (no error shown); the microphone is switched to another device during the call;
// livekit-server dies in the middle of the call, the page says it is reconnecting, and media
// flows again once bedrud has restarted LiveKit.
//
// input: {"url", "users": [{"username","password"}, {"username","password"}], "room",
//         "apiSecret", "livekitPid"}

import { createHmac } from "node:crypto";
import { assert, assertMediaFrom, input, joinFromPrejoin, newPage, run, shot, signIn } from "./lib.mjs";

const cfg = input();

/** The same LiveKit token, re-signed with a lifetime that ended two minutes ago. */
function expired(token, secret) {
  const [head, body] = token.split(".");
  const claims = JSON.parse(Buffer.from(body, "base64url").toString());
  const now = Math.floor(Date.now() / 1000);
  Object.assign(claims, { nbf: now - 600, exp: now - 120 });
  const payload = `${head}.${Buffer.from(JSON.stringify(claims)).toString("base64url")}`;
  return `${payload}.${createHmac("sha256", secret).update(payload).digest("base64url")}`;
}

await run("resilience", 180_000, async (browser) => {
  const [a, b] = cfg.users;
  const pageA = await newPage(browser, cfg.url);
  const pageB = await newPage(browser, cfg.url);

  // A's first join answer carries an expired token; the page must join again by itself.
  let joins = 0;
  await pageA.route("**/api/room/join", async (route) => {
    joins += 1;
    const resp = await route.fetch();
    const json = await resp.json();
    if (joins === 1 && json.token) json.token = expired(json.token, cfg.apiSecret);
    await route.fulfill({ response: resp, json });
  });
  const errors = [];
  pageA.on("console", (m) => m.type() === "error" && errors.push(m.text()));

  for (const [page, user] of [[pageA, a], [pageB, b]]) {
    await signIn(page, user.username, user.password);
    await page.goto(`/r/${cfg.room}`);
    await joinFromPrejoin(page);
  }
  const aSees = await assertMediaFrom(pageA, b.username);
  assert(joins === 2, `the page joined ${joins} times; expected a second join after the expired token`);
  assert((await pageA.getByRole("alert").count()) === 0, "an error was shown for the expired token");

  // Switch A's microphone during the call: the published track comes from the new device.
  const micLabel = () =>
    pageA.evaluate(() => {
      const pub = [...window.bedrud.call.room.localParticipant.trackPublications.values()].find((p) => p.source === "microphone");
      return pub?.track?.mediaStreamTrack?.label ?? "";
    });
  const before = await micLabel();
  await pageA.getByRole("button", { name: "Devices" }).click();
  const picker = pageA.getByRole("combobox", { name: "Microphone", exact: true });
  // The panel lists devices as soon as the browser has enumerated them.
  await picker.locator("option").nth(1).waitFor({ state: "attached", timeout: 15_000 });
  const options = await picker.locator("option").allTextContents();
  const other = options.find((o) => o !== before);
  assert(other, `only one microphone to choose from: ${options}`);
  await picker.selectOption({ label: other });
  await pageA.waitForFunction(
    (want) => {
      const pub = [...window.bedrud.call.room.localParticipant.trackPublications.values()].find((p) => p.source === "microphone");
      return pub?.track?.mediaStreamTrack?.label === want && pub.track.mediaStreamTrack.readyState === "live";
    },
    other,
    { timeout: 15_000 },
  );
  await shot(pageA, "meeting-devices-switched");
  // B still hears A after the switch.
  const bHears = await assertMediaFrom(pageB, a.username);
  await pageA.getByRole("button", { name: "Devices" }).click();

  // livekit-server dies: both pages say they are reconnecting, then media flows again.
  process.kill(cfg.livekitPid, "SIGKILL");
  const banner = pageA.getByText("Connection lost. Reconnecting…");
  await banner.waitFor({ state: "visible", timeout: 20_000 });
  await shot(pageA, "meeting-reconnecting");
  await banner.waitFor({ state: "hidden", timeout: 60_000 });
  const afterRestart = await assertMediaFrom(pageA, b.username);
  const status = await pageA.evaluate(() => window.bedrud.call.status);
  assert(status === "connected", `status after the restart: ${status}`);
  await shot(pageA, "meeting-reconnected");

  return { joins, micBefore: before, micAfter: other, aSees, bHears, afterRestart, consoleErrors: errors.length };
});
