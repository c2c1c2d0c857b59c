// Scenario 5 and the rest of the admin console: the LiveKit card follows the event stream and
// shows `restarting` after the livekit-server child is killed with SIGKILL, then `ready` again,
// without a reload; users are created, promoted, disabled and deleted; rooms show their history.
//
// input: {"url", "admin": {"username","password"}, "room"} (room: one with some history)

import { assert, input, newPage, run, shot, signIn } from "./lib.mjs";

const cfg = input();

await run("admin", 120_000, async (browser) => {
  const { url, admin, room } = cfg;
  const page = await newPage(browser, url);
  await signIn(page, admin.username, admin.password);
  await page.getByRole("link", { name: "Admin" }).click();
  const card = page.getByRole("region", { name: "LiveKit media server" });
  const state = card.getByRole("status");
  await state.filter({ hasText: "Ready" }).waitFor();
  await card.getByText("Live", { exact: true }).waitFor();
  await shot(page, "admin");

  // Record every state the card shows, and mark the page so a reload would be noticed.
  await page.evaluate(() => {
    window.__seen = [];
    window.__samePage = true;
    const note = () => {
      const s = document.querySelector(".lk-state")?.getAttribute("data-state");
      if (s && window.__seen[window.__seen.length - 1] !== s) window.__seen.push(s);
    };
    note();
    new MutationObserver(note).observe(document.body, { subtree: true, childList: true, attributes: true });
  });
  const before = await page.evaluate(() => fetch("/api/admin/overview").then((r) => r.json()));
  const pid = before.livekit.pid;
  assert(Number.isInteger(pid) && pid > 1, `no livekit pid in the overview: ${JSON.stringify(before.livekit)}`);
  process.kill(pid, "SIGKILL");
  await state.filter({ hasText: "Restarting" }).waitFor({ timeout: 20_000 });
  await shot(page, "admin-restarting");
  await state.filter({ hasText: "Ready" }).waitFor({ timeout: 30_000 });
  const restarts = Number(await card.locator("dt", { hasText: "Restarts" }).locator("xpath=following-sibling::dd").innerText());
  const seen = await page.evaluate(() => window.__seen);
  const samePage = await page.evaluate(() => window.__samePage === true);
  assert(samePage, "the admin page was reloaded");
  const r = seen.indexOf("restarting");
  assert(r >= 0 && seen.indexOf("ready", r) > r, `states seen: ${seen.join(" -> ")}`);
  assert(restarts >= 1, `restarts shown: ${restarts}`);
  const after = await page.evaluate(() => fetch("/api/admin/overview").then((r) => r.json()));
  await shot(page, "admin-ready-again");

  // Users: create, promote, disable, delete.
  await page.getByRole("tab", { name: "Users" }).click();
  await page.getByLabel("Username").fill("carol");
  await page.getByLabel("Password").fill("carol-password-1");
  await page.getByRole("button", { name: "Create user" }).click();
  const carol = page.getByRole("row").filter({ hasText: "carol" });
  await carol.waitFor();
  await page.getByLabel("Role of carol").selectOption("admin");
  await page.waitForFunction(() => document.querySelector('select[aria-label="Role of carol"]')?.value === "admin");
  await page.getByRole("button", { name: "Disable carol" }).click();
  await carol.getByText("Disabled").waitFor();
  await shot(page, "admin-users");
  const api = await page.evaluate(() => fetch("/api/admin/users").then((r) => r.json()));
  const c = api.users.find((u) => u.username === "carol");
  assert(c && c.role === "admin" && c.disabled === true, `carol: ${JSON.stringify(c)}`);
  await page.getByRole("button", { name: "Delete user carol" }).click();
  await page.getByRole("dialog").getByRole("button", { name: "Delete" }).click();
  await carol.waitFor({ state: "detached" });

  // Rooms with live counts and history.
  await page.getByRole("tab", { name: "Rooms" }).click();
  await page.getByRole("row").filter({ hasText: room }).waitFor();
  await shot(page, "admin-rooms");
  await page.getByRole("button", { name: `Show history of ${room}` }).click();
  const history = page.getByRole("dialog", { name: `History of ${room}` });
  await history.waitFor();
  const historyRows = await history.getByRole("row").count();
  await shot(page, "admin-history");

  return { pidBefore: pid, pidAfter: after.livekit.pid, seen, restarts, historyRows: historyRows - 1 };
});
