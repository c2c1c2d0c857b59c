// Links sent by mail, opened in the browser: the account page sets an e-mail address, the
// confirmation link from the real SMTP server (tests/py/smtp_sink.py writes each message to
// `mailDir`) confirms it once and is refused the second time; "Forgot your password?" sends
// a reset link that sets a new password once; a reset asked for in Chinese arrives in Chinese.
// Then the user mails an invite link to a guest from the room's "Invite links" dialog: the
// guest opens the link from the mail and is in the members-only room; a second person with
// the same (single-use) link is told it has been used up.
//
// input: {"url", "user": {"username","password"}, "email", "mailDir"}

import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { assert, input, joinFromPrejoin, newPage, run, shot, signIn } from "./lib.mjs";

const cfg = input();

/** The newest message to `to` whose subject contains `subject`, waiting up to 20 s. */
async function mailFor(to, subject, after = 0) {
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline) {
    const files = readdirSync(cfg.mailDir).filter((f) => f.endsWith(".json")).sort();
    const found = files
      .slice(after)
      .map((f) => JSON.parse(readFileSync(join(cfg.mailDir, f), "utf8")))
      .filter((m) => m.to.includes(to) && m.subject.includes(subject));
    if (found.length) return { ...found[found.length - 1], count: files.length };
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`no mail to ${to} about "${subject}"`);
}

const linkIn = (body, page) => {
  const m = body.match(new RegExp(`${cfg.url.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}${page}\\?token=[A-Za-z0-9_-]+`));
  assert(m, `no ${page} link in: ${body}`);
  return m[0];
};

const count = () => readdirSync(cfg.mailDir).filter((f) => f.endsWith(".json")).length;

await run("mail", 150_000, async (browser) => {
  const { url, user, email } = cfg;
  const page = await newPage(browser, url);

  // The account page: an address, confirmed by its link.
  await signIn(page, user.username, user.password);
  await page.getByRole("link", { name: "Account" }).click();
  await page.getByLabel("E-mail address").fill(email);
  await page.getByRole("button", { name: "Save address" }).click();
  await page.getByText(`We sent a confirmation link to ${email}.`).waitFor();
  const unverified = await page.getByText("Not verified").isVisible();
  await shot(page, "account-email-sent");
  const confirm = linkIn((await mailFor(email, "Confirm")).body, "/verify-email");
  await page.goto(confirm);
  await page.getByText(`Your address ${email} is confirmed.`).waitFor();
  const tokenHidden = !page.url().includes("token=");
  await shot(page, "verify-email");
  await page.goto(confirm);
  const usedTwice = (await page.getByRole("alert").innerText()).trim();
  await shot(page, "verify-email-used");
  await page.goto("/account");
  await page.getByText("Verified", { exact: true }).waitFor();

  // Forgot the password: the link sets a new one, once.
  await page.getByRole("button", { name: "Sign out" }).first().click();
  await page.getByRole("link", { name: "Forgot your password?" }).click();
  await page.getByLabel("E-mail address").fill(email);
  await page.getByRole("button", { name: "Send the link" }).click();
  await page.getByText("If an account has this verified address, a link is on its way.").waitFor();
  await shot(page, "forgot-password");
  const reset = linkIn((await mailFor(email, "Reset")).body, "/reset-password");
  const newPassword = `${user.password}-new`;
  const setPassword = async () => {
    await page.goto(reset);
    await page.getByLabel("New password", { exact: true }).fill(newPassword);
    await page.getByLabel("Repeat new password").fill(newPassword);
    await page.getByRole("button", { name: "Set password" }).click();
  };
  await setPassword();
  await page.getByRole("heading", { name: "Sign in to bedrud" }).waitFor();
  await signIn(page, user.username, newPassword);
  await page.getByRole("heading", { name: "Your rooms" }).waitFor();
  await page.getByRole("button", { name: "Sign out" }).first().click();
  await page.getByRole("heading", { name: "Sign in to bedrud" }).waitFor();
  await setPassword();
  const resetTwice = (await page.getByRole("alert").innerText()).trim();
  await shot(page, "reset-password-used");

  // Asked for in Chinese, the mail is in Chinese.
  const before = count();
  await page.goto("/forgot-password");
  await page.getByLabel("Language").selectOption("zh");
  await page.getByLabel("电子邮件地址").fill(email);
  await page.getByRole("button", { name: "发送链接" }).click();
  await page.getByRole("status").filter({ hasText: "链接已经发出" }).waitFor();
  const zh = await mailFor(email, "重置", before);

  // An invite link by mail, single use, for a members-only room.
  const room = "mailed-invite";
  const guestAddress = "guest@example.org";
  await page.getByLabel("语言").selectOption("en");
  await page.goto("/signin");
  await signIn(page, user.username, newPassword);
  await page.getByLabel("Room name").fill(room);
  await page.getByRole("button", { name: "Create room" }).click();
  await page.getByRole("heading", { name: room }).waitFor();
  await page.getByRole("button", { name: `Invite links for ${room}` }).click();
  const dlg = page.getByRole("dialog");
  await dlg.getByLabel("Uses").fill("1");
  await dlg.getByLabel("Send the link to (optional)").fill(guestAddress);
  await dlg.getByRole("button", { name: "Create link" }).click();
  await page.getByText(`Invite link sent to ${guestAddress}`).waitFor();
  await shot(page, "invite-mailed");
  const invite = await mailFor(guestAddress, room);
  const m = invite.body.match(new RegExp(`${cfg.url.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}/r/${room}\\?invite=[A-Za-z0-9_-]+`));
  assert(m, `no invite link in: ${invite.body}`);
  const shown = await dlg.getByLabel("New invite link").inputValue();
  assert(shown === m[0], `mailed ${m[0]}, shown ${shown}`);

  const guest = await newPage(browser, url);
  await guest.goto(m[0]);
  await guest.getByText(`You are invited to ${room}.`).waitFor();
  await joinFromPrejoin(guest, "Gwen");
  await guest.getByRole("toolbar").waitFor();
  const late = await newPage(browser, url);
  await late.goto(m[0]);
  const lateSees = (await late.getByRole("alert").first().innerText()).trim();
  await shot(late, "invite-used-up");

  return { unverified, tokenHidden, usedTwice, resetTwice, zhSubject: zh.subject, newPassword, inviteSubject: invite.subject, lateSees };
});
