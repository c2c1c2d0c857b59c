// Scenarios 1-3 of the web client: the owner signs in, creates a room, opens it to guests,
// copies the room's link; a guest (phone-sized window) opens it and joins by name. Both pages
// play each other's video and receive audio; chat goes both ways; the owner mutes the guest
// and then removes them, and the guest's page says so.
//
// input: {"url", "owner": {"username","password"}, "room", "guest"}

import { assert, assertMediaFrom, joinFromPrejoin, newPage, run, shot, signIn } from "./lib.mjs";

const cfg = (await import("./lib.mjs")).input();

await run("meeting", 150_000, async (browser) => {
  const { url, owner, room, guest } = cfg;
  const host = await newPage(browser, url);

  // Sign in, create the room, open it to guests, copy its link.
  await host.goto("/signin");
  await shot(host, "signin");
  await signIn(host, owner.username, owner.password);
  await host.getByLabel("Room name").fill(room);
  await host.getByRole("button", { name: "Create room" }).click();
  await host.getByRole("heading", { name: room }).waitFor();
  await host.getByRole("button", { name: `Settings for ${room}` }).click();
  await host.getByRole("switch", { name: "Open to guests with the link" }).check();
  await shot(host, "room-settings");
  await host.getByRole("button", { name: "Save settings" }).click();
  await host.getByRole("listitem", { name: room }).getByText("Open to guests", { exact: true }).waitFor();
  await host.getByRole("button", { name: `Copy the link to ${room}` }).click();
  await host.getByText("Link copied").waitFor();
  const invite = await host.evaluate(() => navigator.clipboard.readText());
  assert(invite === `${url}/r/${room}`, `invite link ${invite}`);
  await shot(host, "home");

  // The owner goes through the pre-join page into the meeting.
  await host.getByRole("link", { name: `Join ${room}` }).click();
  await host.getByRole("heading", { name: "Ready to join?" }).waitFor();
  await host.waitForFunction(() => (document.querySelector(".preview-video")?.videoWidth ?? 0) > 0);
  await host.waitForTimeout(300);
  await shot(host, "prejoin");
  await joinFromPrejoin(host);
  await host.getByText("You are the only one here.").waitFor();
  await host.waitForFunction(() => (document.querySelector("figure video")?.videoWidth ?? 0) > 0);
  await shot(host, "meeting-alone");

  // The guest opens the link at phone width and joins by name.
  const visitor = await newPage(browser, url, { viewport: { width: 390, height: 844 }, scale: 2 });
  await visitor.goto(invite);
  await visitor.getByText("You are joining as a guest.").waitFor();
  await visitor.getByLabel("Your name").fill(guest);
  await visitor.waitForFunction(() => (document.querySelector(".preview-video")?.videoWidth ?? 0) > 0);
  await shot(visitor, "prejoin-guest-phone");
  await joinFromPrejoin(visitor);

  // Media both ways: video playing with frames decoded, audio packets arriving.
  const ownerSees = await assertMediaFrom(host, guest);
  const guestSees = await assertMediaFrom(visitor, owner.username);
  const guestIdentity = await visitor.evaluate(() => window.bedrud.call.join.identity);
  const guestRole = await visitor.evaluate(() => window.bedrud.call.join.role);
  assert(guestRole === "guest", `guest role ${guestRole}`);
  await shot(host, "meeting");
  await shot(visitor, "meeting-phone");

  // Speaker layout: the other person large, yourself in the strip; devices can be switched.
  await host.getByRole("button", { name: "Speaker layout" }).click();
  await host.locator(".stage.speaker").getByRole("figure", { name: guest, exact: true }).waitFor();
  await shot(host, "meeting-speaker");
  await host.getByRole("button", { name: "Grid layout" }).click();
  await host.getByRole("button", { name: "Devices" }).click();
  await host.getByLabel("Camera").locator("option").first().waitFor({ state: "attached" });
  const cameras = await host.getByLabel("Camera").locator("option").count();
  assert(cameras >= 1, "no camera listed in the devices panel");
  await shot(host, "meeting-devices");

  // Chat both ways over LiveKit data messages.
  await host.getByRole("button", { name: "Chat" }).click();
  await host.getByLabel("Chat message").fill("Hello from the host");
  await host.getByRole("button", { name: "Send message" }).click();
  await visitor.getByRole("button", { name: "Chat" }).click();
  await visitor.getByRole("log").getByText("Hello from the host").waitFor();
  await visitor.getByLabel("Chat message").fill("Hi! Guest here");
  await visitor.getByRole("button", { name: "Send message" }).click();
  await host.getByRole("log").getByText("Hi! Guest here").waitFor();
  await shot(host, "meeting-chat");
  await shot(visitor, "meeting-chat-phone");
  await visitor.getByRole("button", { name: "Close" }).click();

  // The owner mutes the guest's microphone from the participant list.
  await host.getByRole("button", { name: "Participants" }).click();
  const people = host.getByRole("list").filter({ has: host.getByRole("listitem", { name: guest }) });
  await people.getByRole("button", { name: `Mute microphone of ${guest}` }).click();
  await visitor.getByText("Your microphone was muted by the host").waitFor();
  await visitor.getByRole("button", { name: "Unmute microphone" }).waitFor();
  await host.getByRole("listitem", { name: guest }).getByRole("img", { name: "microphone muted" }).waitFor();
  await shot(host, "meeting-people");
  await shot(visitor, "meeting-muted-phone");

  // Then removes them: the guest's page says so.
  await host.getByRole("button", { name: `More actions for ${guest}` }).click();
  await host.getByRole("menuitem", { name: `Remove ${guest} from the meeting` }).click();
  await host.getByRole("dialog").getByRole("button", { name: `Remove ${guest} from the meeting` }).click();
  await visitor.getByRole("heading", { name: "You were removed from the meeting" }).waitFor();
  await shot(visitor, "removed-phone");
  await host.getByRole("listitem", { name: guest }).waitFor({ state: "detached" });

  // The owner leaves.
  await host.getByRole("button", { name: "Leave meeting" }).click();
  await host.getByRole("heading", { name: "You left the meeting" }).waitFor();
  await shot(host, "left");

  return { room, guestIdentity, cameras, ownerSees, guestSees };
});
