// Single sign-on through a real OpenID provider (node-oidc-provider, e2e/oidc-provider.mjs)
// with its own login and consent pages: an administrator by group, a member, someone outside
// the allowed groups, a callback with another browser's `state`, a token for another audience, a provider that is down,
// an account linked by its verified e-mail, and a password sign-in that still works.
//
// input: {"url": "http://localhost:PORT", "corp": "<button label>", "partner": "<label>",
//         "down": "<label>", "admin": {"username","password"}}

import { assert, input, newPage, run, shot, shotOf, signIn } from "./lib.mjs";

const cfg = input();

await run("sso", 180_000, async (browser) => {
  const { url } = cfg;
  const fresh = () => newPage(browser, url, { loopbackOnly: true });

  /** From bedrud's sign-in page through the provider's login (and consent) back to bedrud. */
  const viaProvider = async (page, label, login, opts = {}) => {
    await page.goto("/signin");
    await page.getByRole("link", { name: `Continue with ${label}` }).click();
    if (opts.expectProvider === false) return;
    await page.locator('input[name="login"]').fill(login);
    await page.locator('input[name="password"]').fill("any-password");
    if (opts.shotLogin) await shot(page, opts.shotLogin);
    await page.getByRole("button", { name: "Sign-in" }).click();
    const consent = page.getByRole("button", { name: "Continue" });
    const back = page.waitForURL((u) => u.origin === url, { timeout: 20_000 }).then(() => "back");
    if ((await Promise.race([consent.waitFor().then(() => "consent"), back])) === "consent") await consent.click();
    await page.waitForURL((u) => u.origin === url);
  };
  const alertText = async (page) => {
    const a = page.getByRole("alert");
    await a.waitFor();
    return (await a.innerText()).trim();
  };

  // The sign-in page offers a button per provider.
  const alice = await fresh();
  await alice.goto("/signin");
  await alice.getByRole("link", { name: `Continue with ${cfg.corp}` }).waitFor();
  const buttons = await alice.locator("a.sso").allInnerTexts();
  await shot(alice, "signin-sso");
  await shotOf(alice.locator(".auth-card"), "signin-sso-card");

  // alice is in the admin group: signed in, and the admin console is hers.
  await viaProvider(alice, cfg.corp, "alice", { shotLogin: "sso-provider-login" });
  await alice.getByRole("heading", { name: "Your rooms" }).waitFor();
  const aliceAdmin = await alice.getByRole("link", { name: "Admin" }).isVisible();
  await alice.getByRole("link", { name: "Account" }).click();
  const aliceHow = await alice.getByText(`through ${cfg.corp}`).innerText();
  await shot(alice, "account-sso");

  // bob is staff only: signed in as a member. The provider's redirect back is noted.
  const bob = await fresh();
  let bobCallback = null;
  bob.on("request", (r) => {
    if (r.url().includes("/callback?")) bobCallback = r.url();
  });
  await viaProvider(bob, cfg.corp, "bob");
  await bob.getByRole("heading", { name: "Your rooms" }).waitFor();
  const bobAdmin = await bob.getByRole("link", { name: "Admin" }).isVisible();
  assert(bobCallback, "the provider sent bob's browser back to the callback");

  // carol is not in an allowed group.
  const carol = await fresh();
  await viaProvider(carol, cfg.corp, "carol");
  const carolSees = await alertText(carol);
  await shot(carol, "signin-sso-not-allowed");
  const carolSession = (await carol.request.get(`${url}/api/auth/me`)).status();

  // Another browser starts its own sign-in, then is sent bob's callback (code and state of
  // another browser's flow): the state is not this browser's, and it gets no session.
  const forged = await fresh();
  await forged.goto("/signin");
  await forged.getByRole("link", { name: `Continue with ${cfg.corp}` }).click();
  await forged.locator('input[name="login"]').waitFor();
  await forged.goto(bobCallback);
  const forgedSees = await alertText(forged);
  const forgedSession = (await forged.request.get(`${url}/api/auth/me`)).status();

  // The partner client's ID tokens are made out to another application.
  const partner = await fresh();
  await viaProvider(partner, cfg.partner, "bob");
  const partnerSees = await alertText(partner);
  const partnerSession = (await partner.request.get(`${url}/api/auth/me`)).status();

  // A provider that does not answer: said so on the page; a password still signs in.
  const down = await fresh();
  await viaProvider(down, cfg.down, "", { expectProvider: false });
  const downSees = await alertText(down);
  await shot(down, "signin-sso-down");
  await signIn(down, cfg.admin.username, cfg.admin.password);
  const passwordStillWorks = await down.getByRole("link", { name: "Admin" }).isVisible();

  // dora's provider account carries the verified address of the local account "dora".
  const dora = await fresh();
  await viaProvider(dora, cfg.corp, "dora");
  await dora.getByRole("heading", { name: "Your rooms" }).waitFor();
  const doraIs = (await (await dora.request.get(`${url}/api/auth/me`)).json()).user.username;

  // alice again, in another browser: the same account.
  const again = await fresh();
  await viaProvider(again, cfg.corp, "alice");
  await again.getByRole("heading", { name: "Your rooms" }).waitFor();
  const aliceAgain = (await (await again.request.get(`${url}/api/auth/me`)).json()).user.username;

  return { buttons, aliceAdmin, aliceHow, bobAdmin, carolSees, carolSession, forgedSees, forgedSession, partnerSees, partnerSession, downSees, passwordStillWorks, doraIs, aliceAgain };
});
