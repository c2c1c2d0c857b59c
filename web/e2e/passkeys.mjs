// Passkeys in chromium with the DevTools virtual authenticator (CDP WebAuthn domain): a user
// signed in with the password adds a passkey on one authenticator ("Laptop") and another on a
// second one ("Phone"), signs out, signs in with the passkey (no password), removes "Laptop",
// and still signs in with "Phone". The page is on http://localhost, a secure context and a
// host name, as WebAuthn requires.
//
// input: {"url": "http://localhost:PORT", "user": {"username","password"}}

import { assert, input, newPage, run, shot, signIn } from "./lib.mjs";

const cfg = input();

/** An authenticator like a platform one: resident keys, user verification that succeeds. */
const AUTHENTICATOR = {
  protocol: "ctap2",
  transport: "internal",
  hasResidentKey: true,
  hasUserVerification: true,
  isUserVerified: true,
  automaticPresenceSimulation: true,
};

await run("passkeys", 120_000, async (browser) => {
  const { url, user } = cfg;
  const page = await newPage(browser, url, { loopbackOnly: true });
  const cdp = await page.context().newCDPSession(page);
  await cdp.send("WebAuthn.enable", { enableUI: false });
  const add = async () => (await cdp.send("WebAuthn.addVirtualAuthenticator", { options: AUTHENTICATOR })).authenticatorId;
  const keyList = () => page.getByRole("list", { name: "Passkeys" }).getByRole("listitem").allInnerTexts();

  const register = async (name) => {
    await page.getByLabel("Name for the new passkey").fill(name);
    await page.getByRole("button", { name: "Add a passkey" }).click();
    await page.getByText(`Passkey “${name}” added`).waitFor();
  };

  await signIn(page, user.username, user.password);
  await page.getByRole("link", { name: "Account" }).click();
  await page.getByRole("heading", { name: "Passkeys" }).waitFor();
  await page.getByText("No passkeys yet.").waitFor();

  const laptop = await add();
  await register("Laptop");
  // The first authenticator holds this account's credential and would refuse a second one;
  // the second passkey is made on another device.
  await cdp.send("WebAuthn.removeVirtualAuthenticator", { authenticatorId: laptop });
  const phone = await add();
  await register("Phone");
  const registered = (await keyList()).map((t) => t.split("\n")[0].trim());
  await page.locator(".toast").first().waitFor({ state: "detached" });
  await shot(page, "account-passkeys");

  // Sign out; sign in with the passkey alone.
  const signInWithPasskey = async (screenshot) => {
    await page.getByRole("button", { name: "Sign out" }).first().click();
    await page.getByRole("heading", { name: "Sign in to bedrud" }).waitFor();
    await page.getByLabel("Username").fill(user.username);
    assert((await page.getByLabel("Password").inputValue()) === "", "the password field is empty");
    if (screenshot) await shot(page, screenshot);
    await page.getByRole("button", { name: "Sign in with a passkey" }).click();
    await page.getByRole("heading", { name: "Your rooms" }).waitFor();
  };
  await signInWithPasskey("signin-passkey");
  const [cred] = (await cdp.send("WebAuthn.getCredentials", { authenticatorId: phone })).credentials;
  assert(cred && cred.signCount >= 1, `the phone's credential signed: ${JSON.stringify(cred)}`);

  // Remove "Laptop"; "Phone" still signs in.
  await page.getByRole("link", { name: "Account" }).click();
  await page.getByRole("button", { name: "Remove passkey Laptop" }).click();
  await page.getByRole("dialog").getByRole("button", { name: "Remove" }).click();
  await page.getByText("Passkey “Laptop” removed").waitFor();
  const afterRemove = (await keyList()).map((t) => t.split("\n")[0].trim());
  await signInWithPasskey();
  const [again] = (await cdp.send("WebAuthn.getCredentials", { authenticatorId: phone })).credentials;

  return { registered, afterRemove, phoneCredentialId: cred.credentialId, signCount: [cred.signCount, again.signCount] };
});
