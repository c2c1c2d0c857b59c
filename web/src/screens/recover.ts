// The pages that links sent by mail open: confirm an e-mail address, choose a new password;
// and the page that asks for a reset link. Each link's token is read from the address, then
// removed from it, and used by calling the API (so a mail scanner that opens links uses
// nothing up).

import { ApiError, api } from "../api";
import { field, h } from "../dom";
import { lang, t } from "../i18n";
import { navigate, session } from "../router";
import { button, errorText, formError, submitting, toast } from "../ui";
import { frame } from "./signin";

// Tokens taken out of the address bar, kept for this page's life (a language change renders
// the page again).
const tokens = new Map<string, string>();
// What the verification said, for the same reason: its token works once.
let verified: { ok: boolean; text: string } | null = null;

/** The `token` of the link that opened the page, taken out of the address bar. */
function takeToken(): string | null {
  const token = new URLSearchParams(location.search).get("token");
  if (token) {
    tokens.set(location.pathname, token);
    history.replaceState(null, "", location.pathname);
    if (location.pathname === "/verify-email") verified = null;
  }
  return tokens.get(location.pathname) ?? null;
}

function linkError(e: unknown): string {
  return e instanceof ApiError && e.code === "invalid_link" ? t("link.invalid") : errorText(e);
}

const back = () => h("p", { class: "auth-switch" }, h("a", { href: "/signin", "data-link": true }, t("forgot.back")));

export function renderForgot(root: HTMLElement): void {
  const email = h("input", { name: "email", type: "email", autocomplete: "email", required: true });
  const err = formError();
  const done = h("p", { class: "soft-ok", role: "status", hidden: true });
  const submit = button(t("forgot.submit"), { type: "submit", kind: "primary block" });
  const form = h(
    "form",
    {
      class: "form",
      onsubmit: submitting(submit, err, async () => {
        await api.forgotPassword(email.value.trim(), lang());
        done.textContent = t("forgot.sent");
        done.hidden = false;
      }),
    },
    field(t("forgot.email"), email),
    err.el,
    done,
    submit,
  );
  root.append(frame(t("forgot.title"), t("forgot.subtitle"), form, back()));
  email.focus();
}

export function renderReset(root: HTMLElement): void {
  const token = takeToken();
  const pw = h("input", { type: "password", autocomplete: "new-password", required: true });
  const repeat = h("input", { type: "password", autocomplete: "new-password", required: true });
  const err = formError();
  const submit = button(t("reset.submit"), { type: "submit", kind: "primary block" });
  const form = h(
    "form",
    {
      class: "form",
      onsubmit: submitting(
        submit,
        err,
        async () => {
          if (!token) return t("link.missing");
          if (pw.value !== repeat.value) return t("register.mismatch");
          await api.resetPassword(token, pw.value);
          session.user = null;
          toast(t("reset.done"));
          navigate("/signin", true);
        },
        linkError,
      ),
    },
    field(t("reset.new"), pw),
    field(t("reset.repeat"), repeat),
    err.el,
    submit,
  );
  root.append(frame(t("reset.title"), "", form, back()));
  if (!token) err.show(t("link.missing"));
  pw.focus();
}

export async function renderVerify(root: HTMLElement): Promise<void> {
  const token = takeToken();
  const status = h("p", { class: "muted", role: "status" }, t("verify.busy"));
  const err = formError();
  const go = h("a", { href: session.user ? "/account" : "/signin", "data-link": true, class: "btn primary block", hidden: true }, t("verify.continue"));
  root.append(frame(t("verify.title"), "", h("div", { class: "form" }, status, err.el, go), null));
  if (!verified) {
    try {
      if (!token) throw new Error(t("link.missing"));
      const user = await api.email.verify(token);
      if (session.user?.id === user.id) session.user = user;
      verified = { ok: true, text: user.email ?? "" };
    } catch (e) {
      verified = { ok: false, text: e instanceof Error && !(e instanceof ApiError) ? e.message : linkError(e) };
    }
  }
  if (verified.ok) {
    status.textContent = t("verify.done", { email: verified.text });
    status.className = "soft-ok";
  } else {
    status.hidden = true;
    err.show(verified.text);
  }
  go.hidden = false;
}
