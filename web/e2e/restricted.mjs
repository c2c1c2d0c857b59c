// Scenarios 2 (second half) and 4: in a room with `allowChat` and `allowScreenShare` off there
// is no chat and no screen-share control, the grants LiveKit holds say so, and a data message
// published anyway is refused by LiveKit: the other participant never receives it.
//
// input: {"url", "owner": {"username","password"}, "room", "guest"}; the room exists, is public,
// and has allowChat and allowScreenShare off.

import { assert, input, joinFromPrejoin, newPage, run, shot, signIn } from "./lib.mjs";

const cfg = input();

/** The grants this page's participant has: from LiveKit (live) and from the token's claims. */
async function grants(page) {
  return page.evaluate(() => {
    const call = window.bedrud.call;
    const p = call.room.localParticipant.permissions;
    const claims = JSON.parse(atob(call.join.token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/")));
    return {
      live: { canPublish: p.canPublish, canPublishData: p.canPublishData, canPublishSources: [...p.canPublishSources] },
      token: claims.video,
    };
  });
}

await run("restricted", 120_000, async (browser) => {
  const { url, owner, room, guest } = cfg;
  const host = await newPage(browser, url);
  await signIn(host, owner.username, owner.password);
  await host.goto(`/r/${room}`);
  await joinFromPrejoin(host);

  const visitor = await newPage(browser, url);
  await visitor.goto(`/r/${room}`);
  await visitor.getByLabel("Your name").fill(guest);
  await joinFromPrejoin(visitor);
  await host.getByRole("figure", { name: guest, exact: true }).waitFor();
  await visitor.getByRole("figure", { name: owner.username, exact: true }).waitFor();

  const controls = {};
  for (const [who, page] of [["owner", host], ["guest", visitor]]) {
    const bar = page.getByRole("toolbar");
    controls[who] = {
      mic: await bar.getByRole("button", { name: "Mute microphone" }).count(),
      camera: await bar.getByRole("button", { name: "Turn camera off" }).count(),
      share: await page.getByRole("button", { name: "Share screen" }).count(),
      chat: await page.getByRole("button", { name: "Chat" }).count(),
    };
    assert(controls[who].mic === 1 && controls[who].camera === 1, `${who}: microphone and camera controls missing`);
    assert(controls[who].share === 0, `${who}: a screen-share button is shown`);
    assert(controls[who].chat === 0, `${who}: a chat button is shown`);
  }
  const ownerGrants = await grants(host);
  const guestGrants = await grants(visitor);
  await shot(host, "meeting-no-chat-no-share");

  // Publish data anyway, straight through livekit-client: LiveKit must not deliver it.
  await visitor.evaluate(() => {
    window.__received = 0;
    window.bedrud.call.room.on("dataReceived", () => window.__received++);
  });
  const sent = await host.evaluate(async () => {
    const lp = window.bedrud.call.room.localParticipant;
    let errors = 0;
    for (let i = 0; i < 5; i++) {
      try {
        await lp.publishData(new TextEncoder().encode(JSON.stringify({ id: `x${i}`, text: "should not arrive" })), { reliable: true, topic: "chat" });
      } catch {
        errors++;
      }
    }
    return { attempts: 5, errors };
  });
  await visitor.waitForTimeout(2500);
  const received = await visitor.evaluate(() => window.__received);
  const guestMessages = await visitor.evaluate(() => window.bedrud.call.messages.length);
  assert(received === 0 && guestMessages === 0, `data arrived although chat is off: ${received}`);

  return { controls, ownerGrants, guestGrants, dataSent: sent, dataReceived: received };
});
