// Scenario 6 and the account pages: a wrong password shows the API's own message; Simplified
// Chinese renders when chosen (and is remembered) and when the browser prefers it; a visitor
// registers when registration is on; the password can be changed; phone-width screenshots; an
// invite link without guest access says why and returns to the room after sign-in.
//
// input: {"url", "user": {"username","password"}, "newUser"?, "room"?} (registration must be on)

import { assert, input, newPage, run, shot, signIn } from "./lib.mjs";

const cfg = input();

await run("signin", 90_000, async (browser) => {
  const { url, user } = cfg;
  const newUser = cfg.newUser ?? "newcomer";
  const room = cfg.room ?? "phone-room";
  const page = await newPage(browser, url);

  // What bedrud answers to a wrong password, and what the page shows.
  const api = await page.request.post(`${url}/api/auth/login`, { data: { username: user.username, password: "not-the-password" } });
  const apiMessage = (await api.json()).error.message;
  await page.goto("/signin");
  await page.getByLabel("Username").fill(user.username);
  await page.getByLabel("Password").fill("not-the-password");
  await page.getByRole("button", { name: "Sign in", exact: true }).click();
  const alert = page.getByRole("alert");
  await alert.waitFor();
  const shown = (await alert.innerText()).trim();
  assert(shown === apiMessage, `shown "${shown}", API said "${apiMessage}"`);
  await shot(page, "signin-error");

  // Switch to Simplified Chinese: the page re-renders, and the choice survives a reload.
  await page.getByLabel("Language").selectOption("zh");
  await page.getByRole("heading", { name: "登录 bedrud" }).waitFor();
  await page.reload();
  await page.getByRole("heading", { name: "登录 bedrud" }).waitFor();
  const htmlLang = await page.evaluate(() => document.documentElement.lang);
  assert(htmlLang === "zh-CN", `html lang ${htmlLang}`);
  await shot(page, "signin-zh");
  await page.getByLabel("用户名").fill(user.username);
  await page.getByLabel("密码").fill(user.password);
  await page.getByRole("button", { name: "登录", exact: true }).click();
  await page.getByRole("heading", { name: "我的会议室" }).waitFor();
  await shot(page, "home-zh");

  // A browser that prefers Chinese gets it without choosing.
  const zhPage = await newPage(browser, url, { locale: "zh-CN" });
  await zhPage.goto("/signin");
  await zhPage.getByRole("heading", { name: "登录 bedrud" }).waitFor();

  // Registration (on for this server), then the account page at phone width.
  const phone = await newPage(browser, url, { viewport: { width: 390, height: 844 }, scale: 2 });
  await phone.goto("/signin");
  await phone.getByRole("link", { name: "Create one" }).click();
  await phone.getByRole("heading", { name: "Create your account" }).waitFor();
  await phone.getByLabel("Username").fill(newUser);
  await phone.getByLabel("Password", { exact: true }).fill(`${newUser}-password-1`);
  await phone.getByLabel("Repeat password").fill(`${newUser}-password-1`);
  await shot(phone, "register-phone");
  await phone.getByRole("button", { name: "Create account" }).click();
  await phone.getByRole("heading", { name: "Your rooms" }).waitFor();
  await phone.getByLabel("Room name").fill(room);
  await phone.getByRole("button", { name: "Create room" }).click();
  await phone.getByRole("heading", { name: room }).waitFor();
  await shot(phone, "home-phone");

  // Change the password on the account page, then sign in with the new one.
  await phone.getByRole("link", { name: "Account" }).click();
  await phone.getByLabel("Current password").fill(`${newUser}-password-1`);
  await phone.getByLabel("New password", { exact: true }).fill(`${newUser}-password-2`);
  await phone.getByLabel("Repeat new password").fill(`${newUser}-password-2`);
  await phone.getByRole("button", { name: "Change password" }).click();
  await phone.getByText("Password changed.").waitFor();
  await shot(phone, "account-phone");
  await phone.getByRole("button", { name: "Sign out" }).first().click();
  await phone.getByRole("heading", { name: "Sign in to bedrud" }).waitFor();
  await signIn(phone, newUser, `${newUser}-password-2`);
  await phone.getByRole("heading", { name: "Your rooms" }).waitFor();

  // With guest access off, an invite link explains why and leads through sign-in back to it.
  const visitor = await newPage(browser, url);
  await visitor.goto(`/r/${room}`);
  await visitor.getByText("This server does not let guests join.").waitFor();
  await shot(visitor, "prejoin-guests-off");
  await visitor.getByRole("link", { name: "Sign in to join" }).click();
  await visitor.getByLabel("Username").fill(user.username);
  await visitor.getByLabel("Password").fill(user.password);
  await visitor.getByRole("button", { name: "Sign in", exact: true }).click();
  await visitor.getByRole("heading", { name: "Ready to join?" }).waitFor();
  const backAt = new URL(visitor.url()).pathname;
  assert(backAt === `/r/${room}`, `after sign-in at ${backAt}`);

  return { apiMessage, shown, htmlLang, backAt };
});
