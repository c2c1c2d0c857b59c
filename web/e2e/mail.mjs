// Links sent by mail, opened in the browser: the account page sets an e-mail address, the
// confirmation link from the real SMTP server (tests/py/smtp_sink.py writes each message to
// `mailDir`) confirms it once and is refused the second time; "Forgot your password?" sends
// a reset link that sets a new password once; a reset asked for in Chinese arrives in Chinese.
//
// input: {"url", "user": {"username","password"}, "email", "mailDir"}

import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { assert, input, newPage, run, shot, signIn } from "./lib.mjs";

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

await run("mail", 120_000, async (browser) => {
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

  return { unverified, tokenHidden, usedTwice, resetTwice, zhSubject: zh.subject, newPassword };
});
