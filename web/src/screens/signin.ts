// Sign-in (password, a passkey, or a button per OpenID provider), registration when the server
// allows it (`auth.registration`), and the first run's setup page that creates the
// administrator with the one-time link from bedrud's log.

import { api } from "../api";
import { field, h } from "../dom";
import { t } from "../i18n";
import type { Key } from "../locales/en";
import { icon } from "../icons";
import { navigate, session } from "../router";
import { brand, busy, button, errorText, formError, langSwitch, submitting, toast } from "../ui";
import { cancelled, passkeysSupported, usePasskey } from "../webauthn";

const SSO_ERRORS = ["invalid_state", "provider_unavailable", "provider_refused", "token_exchange_failed", "invalid_id_token", "wrong_audience", "not_allowed", "user_disabled", "busy"];

/** The message for a failed single sign-on (`/signin?sso_error=<code>&provider=<name>`). */
function ssoError(params: URLSearchParams): string | null {
  const code = params.get("sso_error");
  if (!code) return null;
  const name = params.get("provider") ?? "";
  const provider = session.info.oidc.find((p) => p.name === name)?.label ?? name;
  const key = (SSO_ERRORS.includes(code) ? `sso.error.${code}` : "sso.error.other") as Key;
  return t(key, { provider });
}

/** Where to go after signing in: the `next` parameter when it is a path of this client. */
export function next(): string {
  const n = new URLSearchParams(location.search).get("next");
  return n && n.startsWith("/") && !n.startsWith("//") ? n : "/";
}

export function frame(title: string, subtitle: string, form: HTMLElement, footer: HTMLElement | null): HTMLElement {
  return h(
    "div",
    { class: "auth" },
    h(
      "aside",
      { class: "auth-art", "aria-hidden": "true" },
      h("div", { class: "art-tiles" }, [0, 1, 2, 3].map((i) => h("div", { class: `art-tile t${i}` }, icon(i === 3 ? "mic" : "user")))),
      h("p", { class: "art-line" }, t("app.tagline")),
    ),
    h(
      "main",
      { class: "auth-main", id: "main" },
      h("div", { class: "auth-top" }, brand(), langSwitch(true)),
      h("div", { class: "auth-card" }, h("h1", null, title), h("p", { class: "muted" }, subtitle), form, footer),
    ),
  );
}

export function render(root: HTMLElement): void {
  if (session.user) return navigate(next(), true);
  const params = new URLSearchParams(location.search);
  const failure = ssoError(params);
  if (failure) {
    // Shown once: a reload or a language change does not bring it back.
    params.delete("sso_error");
    params.delete("provider");
    const rest = params.toString();
    history.replaceState(null, "", `/signin${rest ? `?${rest}` : ""}`);
  }
  const username = h("input", { name: "username", autocomplete: "username webauthn", required: true, autocapitalize: "none", spellcheck: "false" });
  const password = h("input", { name: "password", type: "password", autocomplete: "current-password", required: true });
  const err = formError();
  const submit = button(t("signin.submit"), { type: "submit", kind: "primary block" });
  const withPasskey = button(t("signin.passkey"), {
    icon: "key",
    kind: "secondary block",
    onclick: () => {
      err.show(null);
      const name = username.value.trim();
      if (!name) {
        err.show(t("signin.passkeyNeedsName"));
        return username.focus();
      }
      void busy(withPasskey, async () => {
        try {
          const c = await api.passkeys.signInOptions(name);
          const credential = await usePasskey(c.publicKey);
          session.user = await api.passkeys.signIn(c.ceremony, credential);
          navigate(next(), true);
        } catch (e) {
          err.show(cancelled(e) ? t("signin.passkeyCancelled") : errorText(e));
        }
      });
    },
  });
  const sso = session.info.oidc.map((p) =>
    h("a", { href: api.ssoStart(p.name, next()), class: "btn secondary block sso" }, icon("link"), h("span", null, t("signin.with", { provider: p.label }))),
  );
  const others = [session.info.passkeys && passkeysSupported() ? withPasskey : null, ...sso].filter(Boolean);
  const form = h(
    "form",
    {
      class: "form",
      onsubmit: submitting(
        submit,
        err,
        async () => {
          session.user = await api.login(username.value.trim(), password.value);
          navigate(next(), true);
        },
        (e) => {
          password.select();
          return errorText(e);
        },
      ),
    },
    field(t("signin.username"), username),
    field(t("signin.password"), password),
    err.el,
    submit,
    session.info.mail ? h("a", { href: "/forgot-password", "data-link": true, class: "forgot small" }, t("signin.forgot")) : null,
    others.length ? [h("p", { class: "divider", role: "separator" }, h("span", null, t("signin.or"))), h("div", { class: "alt-signin" }, others)] : null,
  );
  const footer = session.info.registration
    ? h("p", { class: "auth-switch" }, t("signin.noAccount"), " ", h("a", { href: `/register${location.search}`, "data-link": true }, t("signin.toRegister")))
    : null;
  root.append(frame(t("signin.title"), t("signin.subtitle"), form, footer));
  if (failure) err.show(failure);
  username.focus();
  // A new install: say where the first administrator comes from.
  void api.setupNeeded().then(
    (needed) => needed && form.before(h("p", { class: "soft-alert", role: "status" }, icon("alert"), h("span", null, t("setup.pending")))),
    () => undefined,
  );
}

export function renderRegister(root: HTMLElement): void {
  if (session.user) return navigate(next(), true);
  if (!session.info.registration) return navigate(`/signin${location.search}`, true);
  const username = h("input", { name: "username", autocomplete: "username", required: true, autocapitalize: "none", spellcheck: "false" });
  const password = h("input", { name: "password", type: "password", autocomplete: "new-password", required: true });
  const repeat = h("input", { name: "repeat", type: "password", autocomplete: "new-password", required: true });
  const err = formError();
  const submit = button(t("register.submit"), { type: "submit", kind: "primary block" });
  const form = h(
    "form",
    {
      class: "form",
      onsubmit: (e: Event) => {
        e.preventDefault();
        err.show(null);
        if (password.value !== repeat.value) return err.show(t("register.mismatch"));
        void busy(submit, async () => {
          try {
            await api.register(username.value.trim(), password.value);
            session.user = await api.login(username.value.trim(), password.value);
            toast(t("register.done"));
            navigate(next(), true);
          } catch (e) {
            err.show(errorText(e));
          }
        });
      },
    },
    field(t("signin.username"), username),
    field(t("signin.password"), password),
    field(t("register.confirm"), repeat),
    err.el,
    submit,
  );
  const footer = h("p", { class: "auth-switch" }, t("signin.haveAccount"), " ", h("a", { href: `/signin${location.search}`, "data-link": true }, t("signin.toSignin")));
  root.append(frame(t("register.title"), t("signin.subtitle"), form, footer));
  username.focus();
}

export function renderSetup(root: HTMLElement): void {
  const token = new URLSearchParams(location.search).get("token") ?? "";
  const username = h("input", { name: "username", autocomplete: "username", required: true, autocapitalize: "none", spellcheck: "false", value: "admin" });
  const password = h("input", { name: "password", type: "password", autocomplete: "new-password", required: true });
  const repeat = h("input", { name: "repeat", type: "password", autocomplete: "new-password", required: true });
  const err = formError();
  const submit = button(t("setup.submit"), { type: "submit", kind: "primary block" });
  const form = h(
    "form",
    {
      class: "form",
      onsubmit: (e: Event) => {
        e.preventDefault();
        err.show(null);
        if (password.value !== repeat.value) return err.show(t("register.mismatch"));
        void busy(submit, async () => {
          try {
            session.user = await api.setup(token, username.value.trim(), password.value);
            toast(t("setup.done"));
            navigate("/admin", true);
          } catch (e) {
            err.show(errorText(e));
          }
        });
      },
    },
    field(t("signin.username"), username),
    field(t("signin.password"), password),
    field(t("register.confirm"), repeat),
    err.el,
    submit,
  );
  const footer = h("p", { class: "auth-switch" }, t("signin.haveAccount"), " ", h("a", { href: "/signin", "data-link": true }, t("signin.toSignin")));
  root.append(frame(t("setup.title"), t("setup.subtitle"), form, footer));
  // Without a token, or once an administrator exists, the form cannot succeed: say so.
  const notice = (key: "setup.noToken" | "setup.finished") => {
    form.replaceChildren(h("p", { class: "soft-alert", role: "status" }, icon("alert"), h("span", null, t(key))));
  };
  void api.setupNeeded().then(
    (needed) => (!needed ? notice("setup.finished") : token ? password.focus() : notice("setup.noToken")),
    () => undefined,
  );
}
