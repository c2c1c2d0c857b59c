// Who speaks: in a room that is a stage, a listener (signed in) has no microphone or camera,
// raises a hand; the host sees the queue and lowers it; the listener raises it again and the
// host invites them to speak: their controls appear at once and their camera reaches the host.
// The host spotlights them (both layouts follow), locks the meeting (a third person is refused,
// everyone sees the lock), and ends it for all (every page says so).
//
// input: {"url", "owner": {"username","password"}, "listener": {...}, "late": {...}, "room"};
// the room exists with `stage` on.

import { assert, input, joinFromPrejoin, newPage, run, shot, signIn } from "./lib.mjs";

const cfg = input();

/** Whether the page plays the video of the participant shown as `name`, with frames coming. */
async function plays(page, name) {
  await page.waitForFunction(
    (n) => {
      const v = document.querySelector(`figure[aria-label="${n}"] video`);
      return v && !v.hidden && v.videoWidth > 0 && v.currentTime > 0;
    },
    name,
    { timeout: 30_000 },
  );
}

await run("stage", 150_000, async (browser) => {
  const { url, owner, listener, late, room } = cfg;
  const host = await newPage(browser, url);
  await signIn(host, owner.username, owner.password);
  await host.goto(`/r/${room}`);
  await joinFromPrejoin(host);
  await host.getByText("Stage", { exact: true }).waitFor();

  // The listener: the audience of a stage has no microphone or camera, only a hand.
  const lee = await newPage(browser, url);
  await signIn(lee, listener.username, listener.password);
  await lee.goto(`/r/${room}`);
  await joinFromPrejoin(lee);
  const bar = lee.getByRole("toolbar");
  await bar.getByRole("button", { name: "Raise hand" }).waitFor();
  await lee.getByText("You are in the audience: raise your hand to speak").waitFor();
  await lee.waitForFunction(() => window.bedrud?.call?.status === "connected");
  const audience = {
    mic: await bar.getByRole("button", { name: /microphone/ }).count(),
    camera: await bar.getByRole("button", { name: /camera/ }).count(),
  };
  assert(audience.mic === 0 && audience.camera === 0, `the audience has publish controls: ${JSON.stringify(audience)}`);
  await shot(lee, "stage-audience");

  // A hand goes up: the host sees it in order in the queue, and lowers it.
  await bar.getByRole("button", { name: "Raise hand" }).click();
  await bar.getByRole("button", { name: "Lower hand" }).waitFor();
  await host.getByRole("button", { name: "Participants" }).click();
  const queue = host.getByRole("list", { name: "Raised hands, first first" });
  await queue.getByRole("listitem", { name: listener.username }).waitFor();
  await host.getByRole("list", { name: "In the meeting" }).getByRole("listitem", { name: listener.username }).getByRole("img", { name: "hand raised" }).waitFor();
  // The audience has no tile; the host's is the only one on the stage.
  const tiles = await host.locator(".stage figure").count();
  await host.waitForTimeout(300);
  await shot(host, "hands-host");
  await queue.getByRole("button", { name: `Lower the hand of ${listener.username}` }).click();
  await lee.getByText("A host lowered your hand.").waitFor();
  await bar.getByRole("button", { name: "Raise hand" }).waitFor();
  await queue.waitFor({ state: "detached" });

  // Again, and this time the host invites them to speak: their controls follow at once.
  await bar.getByRole("button", { name: "Raise hand" }).click();
  await host.getByRole("button", { name: `Invite ${listener.username} to speak` }).click();
  await lee.getByText("A host invited you to speak").waitFor();
  await bar.getByRole("button", { name: "Turn camera on" }).click();
  await bar.getByRole("button", { name: "Turn camera off" }).waitFor();
  await plays(host, listener.username);
  assert((await host.locator(".stage figure").count()) === 2, "a speaker gets a tile");
  const speakerHand = await bar.getByRole("button", { name: "Raise hand" }).count();
  await shot(lee, "stage-speaker");

  // Spotlight: both layouts put the listener large.
  await host.getByRole("button", { name: `More actions for ${listener.username}` }).click();
  await shot(host, "host-actions-menu");
  await host.getByRole("menuitem", { name: `Spotlight ${listener.username} for everyone` }).click();
  for (const page of [host, lee]) {
    await page.locator(".stage.speaker").getByRole("figure", { name: new RegExp(`^${listener.username}`) }).waitFor();
  }
  await host.getByRole("button", { name: "Close" }).first().click();
  await host.waitForTimeout(400);
  await shot(host, "spotlight-host");

  // Lock: everyone sees it; someone new is refused; unlocked, they could come in.
  await host.getByRole("button", { name: "Lock meeting" }).click();
  await lee.getByText("Locked", { exact: true }).waitFor();
  const third = await newPage(browser, url);
  await signIn(third, late.username, late.password);
  await third.goto(`/r/${room}`);
  await third.waitForFunction(() => (document.querySelector(".preview-video")?.videoWidth ?? 0) > 0);
  await third.getByRole("button", { name: "Join meeting" }).click();
  await third.getByRole("alert").getByText("This meeting is locked").waitFor();
  await shot(third, "locked-refused");
  await host.getByRole("button", { name: "Unlock meeting" }).click();
  await lee.getByText("Locked", { exact: true }).waitFor({ state: "detached" });

  // End for all: every page says so.
  await host.getByRole("button", { name: "End meeting for all" }).click();
  await host.getByRole("dialog").getByRole("button", { name: "End meeting for all" }).click();
  for (const page of [host, lee]) {
    await page.getByRole("heading", { name: "The meeting ended" }).waitFor();
    await page.getByText(`The meeting in ${room} was ended for everyone.`).waitFor();
  }
  await shot(lee, "ended-for-all");

  return { audience, speakerHand, tilesWhileAudience: tiles };
});
