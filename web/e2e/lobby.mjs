// Who gets in: the owner makes a members-only room with a lobby and creates an invite link in
// the browser (its secret shown once); two guests open the link, are told they are invited,
// and wait in the lobby (each sees their place; the owner's list updates live). The owner lets
// the first in (media flows both ways) and turns the second away (whose page says so).
//
// input: {"url", "owner": {"username","password"}, "room", "guests": [first, second]}

import { assert, assertMediaFrom, input, joinFromPrejoin, newPage, run, shot, signIn } from "./lib.mjs";

const cfg = input();

await run("lobby", 150_000, async (browser) => {
  const { url, owner, room, guests } = cfg;
  const [first, second] = guests;
  const host = await newPage(browser, url);

  // A members-only room with a lobby.
  await signIn(host, owner.username, owner.password);
  await host.getByLabel("Room name").fill(room);
  await host.getByRole("button", { name: "Create room" }).click();
  await host.getByRole("heading", { name: room }).waitFor();
  await host.getByRole("button", { name: `Settings for ${room}` }).click();
  await host.getByRole("switch", { name: /^Lobby/ }).check();
  await shot(host, "room-settings-lobby");
  await host.getByRole("button", { name: "Save settings" }).click();
  await host.getByRole("listitem", { name: room }).getByText("Lobby", { exact: true }).waitFor();

  // An invite link: participant, a day, five uses. Its secret is shown once.
  await host.getByRole("button", { name: `Invite links for ${room}` }).click();
  const dlg = host.getByRole("dialog");
  await dlg.getByLabel("Valid for").selectOption({ label: "1 day" });
  await dlg.getByLabel("Uses").fill("5");
  await dlg.getByRole("button", { name: "Create link" }).click();
  const link = await dlg.getByLabel("New invite link").inputValue();
  assert(link.startsWith(`${url}/r/${room}?invite=`), `invite link ${link}`);
  await dlg.getByRole("listitem", { name: /^Invite link / }).getByText("used 0 of 5").waitFor();
  await dlg.getByText("Copy it now: this link is shown only once.").waitFor();
  await shot(host, "invites");
  await dlg.getByRole("button", { name: "Close" }).click();

  // The owner goes in.
  await host.getByRole("link", { name: `Join ${room}` }).click();
  await joinFromPrejoin(host);
  await host.getByText("You are the only one here.").waitFor();

  // The first guest opens the link: invited, then waiting (no token, no meeting yet).
  const a = await newPage(browser, url);
  await a.goto(link);
  await a.getByText(`You are invited to ${room}.`).waitFor();
  await shot(a, "prejoin-invited");
  await joinFromPrejoin(a, first, { lobby: true });
  await a.getByText("You are number 1 in line").waitFor();
  assert((await a.getByRole("toolbar").count()) === 0, "a waiting guest has no meeting controls");
  assert(!(await a.evaluate(() => !!window.bedrud)), "a waiting guest has no LiveKit room");
  await shot(a, "lobby-waiting");

  // The owner is told, and sees who waits.
  await host.getByText(`${first} is waiting to join`).waitFor();
  await host.getByRole("button", { name: "Participants" }).click();
  const lobby = host.getByRole("region").getByRole("listitem", { name: first });
  await lobby.getByRole("button", { name: `Let ${first} in` }).waitFor();
  await host.waitForTimeout(300);
  await shot(host, "lobby-host");

  // The second guest, on a phone, is number two; the owner's list has both, in order.
  const b = await newPage(browser, url, { viewport: { width: 390, height: 844 }, scale: 2 });
  await b.goto(link);
  await b.getByText(`You are invited to ${room}.`).waitFor();
  await joinFromPrejoin(b, second, { lobby: true });
  await b.getByText("You are number 2 in line").waitFor();
  await shot(b, "lobby-waiting-phone");
  await host.getByRole("heading", { name: "Waiting to join · 2" }).waitFor();
  const order = await host.locator(".lobby-box .person").evaluateAll((els) => els.map((e) => e.getAttribute("aria-label")));
  assert(order.join(",") === `${first},${second}`, `lobby order ${order}`);
  await shot(host, "lobby-host-two");

  // Let the first in: their page joins the meeting, media both ways; the second moves up.
  await host.getByRole("button", { name: `Let ${first} in` }).click();
  await a.getByRole("toolbar").waitFor();
  const hostSeesGuest = await assertMediaFrom(host, first);
  const guestSeesHost = await assertMediaFrom(a, owner.username);
  const guestIdentity = await a.evaluate(() => window.bedrud.call.join.identity);
  await b.getByText("You are number 1 in line").waitFor();
  await host.getByRole("heading", { name: "Waiting to join · 1" }).waitFor();

  // Turn the second away: their page says so, and offers to ask again.
  await host.getByRole("button", { name: `Turn ${second} away` }).click();
  await b.getByRole("heading", { name: "The host did not let you in" }).waitFor();
  await b.getByRole("button", { name: "Ask again" }).waitFor();
  await shot(b, "lobby-denied-phone");
  await host.locator(".lobby-box").waitFor({ state: "detached" });
  await shot(host, "lobby-host-after");

  return { link, guestIdentity, hostSeesGuest, guestSeesHost, order };
});
