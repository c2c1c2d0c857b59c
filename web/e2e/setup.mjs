// First run: the sign-in page of a new install says that no administrator exists yet; the
// setup link from bedrud's log opens a page that creates the administrator and signs in as it;
// afterwards the same link says setup is complete.
//
// input: {"url", "link", "admin": {"username","password"}}

import { assert, input, newPage, run, shot } from "./lib.mjs";

const cfg = input();

await run("setup", 60_000, async (browser) => {
  const page = await newPage(browser, cfg.url);
  await page.goto("/signin");
  await page.getByText("No administrator yet.").waitFor();
  await shot(page, "signin-setup-pending");

  await page.goto(cfg.link);
  await page.getByRole("heading", { name: "Create the administrator" }).waitFor();
  await page.getByLabel("Username").fill(cfg.admin.username);
  await page.getByLabel("Password", { exact: true }).fill(cfg.admin.password);
  await page.getByLabel("Repeat password").fill(cfg.admin.password);
  await shot(page, "setup");
  await page.getByRole("button", { name: "Create administrator" }).click();
  await page.getByRole("heading", { name: "Administration" }).waitFor();
  const me = await page.evaluate(() => fetch("/api/auth/me").then((r) => r.json()));
  assert(me.user?.username === cfg.admin.username && me.user?.role === "admin", `signed in as ${JSON.stringify(me)}`);
  await shot(page, "setup-done");

  // The link is used up.
  const again = await newPage(browser, cfg.url);
  await again.goto(cfg.link);
  await again.getByText("Setup is complete").waitFor();
  return { admin: me.user.username };
});
