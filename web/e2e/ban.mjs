// A ban holds: a guest who came through an invite link is banned by the host; their page says
// they were removed; opening the same link again under a new name is refused, and so is a
// fresh browser with the same link (the ban withdrew it). The host sees the ban in the list and
// lifts it; the link works again.
//
// input: {"url", "owner": {"username","password"}, "room", "invite": "/r/ROOM?invite=...",
// "guest"}; the room exists (members only) and the invite is a participant link of it.

import { assert, input, joinFromPrejoin, newPage, run, shot, signIn } from "./lib.mjs";

const cfg = input();

await run("ban", 120_000, async (browser) => {
  const { url, owner, room, invite, guest } = cfg;
  const host = await newPage(browser, url);
  await signIn(host, owner.username, owner.password);
  await host.goto(`/r/${room}`);
  await joinFromPrejoin(host);

  const g = await newPage(browser, url);
  await g.goto(invite);
  await joinFromPrejoin(g, guest);
  const identity = await g.evaluate(() => window.bedrud.call.join.identity);
  await host.getByRole("figure", { name: guest, exact: true }).waitFor();

  // The host bans the guest from the participant list.
  await host.getByRole("button", { name: "Participants" }).click();
  await host.getByRole("button", { name: `More actions for ${guest}` }).click();
  await host.getByRole("menuitem", { name: `Ban ${guest}` }).click();
  await host.getByRole("dialog").getByRole("button", { name: `Ban ${guest}` }).click();
  await g.getByRole("heading", { name: "You were removed from the meeting" }).waitFor();
  await shot(g, "banned-removed");
  await host.getByText(`${guest} was banned`).waitFor();

  // Same browser (same guest session), same link: the page says so, and bedrud refuses the
  // join under another name whatever the page does.
  await g.goto(invite);
  const refused = await g.getByRole("alert").filter({ hasText: "banned" }).textContent();
  assert(/You are banned from this room/.test(refused ?? ""), `refusal ${refused}`);
  assert(await g.getByRole("button", { name: "Join meeting" }).isDisabled(), "the join button stays off for a banned guest");
  await g.getByLabel("Your name").fill(`Not ${guest}`);
  await shot(g, "banned-rejoin");
  const token = new URL(invite, url).searchParams.get("invite");
  const direct = await g.evaluate(
    async ([r, inv]) => {
      const resp = await fetch("/api/room/join", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ room: r, name: "Not Gina", invite: inv, session: "cookie" }) });
      return { status: resp.status, body: await resp.json() };
    },
    [room, token],
  );
  assert(direct.status === 403 && direct.body.error.code === "banned", `a join under a new name: ${JSON.stringify(direct)}`);

  // A fresh browser with the same link: the ban withdrew it.
  const fresh = await newPage(browser, url);
  await fresh.goto(invite);
  const withdrawn = await fresh.getByRole("alert").filter({ hasText: "invite link" }).textContent();
  assert(/withdrawn/.test(withdrawn ?? ""), `fresh guest saw: ${withdrawn}`);
  assert(await fresh.getByRole("button", { name: "Join meeting" }).isDisabled(), "the join button stays off for a dead invite");
  await shot(fresh, "banned-invite-withdrawn");

  // The host lifts the ban from the list; the link works again.
  await host.locator("summary").filter({ hasText: "Banned · 1" }).click();
  await shot(host, "bans-host");
  await host.getByRole("button", { name: `Lift the ban on ${guest}` }).click();
  await host.getByText(`The ban on ${guest} was lifted`).waitFor();
  await fresh.reload();
  await fresh.getByText(`You are invited to ${room}.`).waitFor();

  return { identity, refused, withdrawn, direct };
});
