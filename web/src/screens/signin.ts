// Sign-in, registration when the server allows it (`auth.registration`), and the first run's
// setup page that creates the administrator with the one-time link from bedrud's log.

import { api } from "../api";
import { field, h } from "../dom";
import { t } from "../i18n";
import { icon } from "../icons";
import { navigate, session } from "../router";
import { brand, busy, button, errorText, formError, langSwitch, toast } from "../ui";

/** Where to go after signing in: the `next` parameter when it is a path of this client. */
function next(): string {
  const n = new URLSearchParams(location.search).get("next");
  return n && n.startsWith("/") && !n.startsWith("//") ? n : "/";
}

function frame(title: string, subtitle: string, form: HTMLElement, footer: HTMLElement | null): HTMLElement {
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
  const username = h("input", { name: "username", autocomplete: "username", required: true, autocapitalize: "none", spellcheck: "false" });
  const password = h("input", { name: "password", type: "password", autocomplete: "current-password", required: true });
  const err = formError();
  const submit = button(t("signin.submit"), { type: "submit", kind: "primary block" });
  const form = h(
    "form",
    {
      class: "form",
      onsubmit: (e: Event) => {
        e.preventDefault();
        err.show(null);
        void busy(submit, async () => {
          try {
            session.user = await api.login(username.value.trim(), password.value);
            navigate(next(), true);
          } catch (e) {
            err.show(errorText(e));
            password.select();
          }
        });
      },
    },
    field(t("signin.username"), username),
    field(t("signin.password"), password),
    err.el,
    submit,
  );
  const footer = session.info.registration
    ? h("p", { class: "auth-switch" }, t("signin.noAccount"), " ", h("a", { href: `/register${location.search}`, "data-link": true }, t("signin.toRegister")))
    : null;
  root.append(frame(t("signin.title"), t("signin.subtitle"), form, footer));
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
