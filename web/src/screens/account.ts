// Account: who is signed in, change password, sign out.

import { api } from "../api";
import { field, h } from "../dom";
import { formatTime, t } from "../i18n";
import { requireUser, session } from "../router";
import { appFrame, busy, button, errorText, formError, signOut, toast } from "../ui";

export function render(root: HTMLElement): void {
  if (!requireUser()) return;
  const me = session.user!;
  const current = h("input", { type: "password", autocomplete: "current-password", required: true });
  const next = h("input", { type: "password", autocomplete: "new-password", required: true });
  const repeat = h("input", { type: "password", autocomplete: "new-password", required: true });
  const err = formError();
  const submit = button(t("account.change"), { type: "submit", kind: "primary" });
  const form = h(
    "form",
    {
      class: "form",
      onsubmit: (e: Event) => {
        e.preventDefault();
        err.show(null);
        if (next.value !== repeat.value) return err.show(t("register.mismatch"));
        void busy(submit, async () => {
          try {
            await api.changePassword(current.value, next.value);
            (form as HTMLFormElement).reset();
            toast(t("account.changed"));
          } catch (e) {
            err.show(errorText(e));
          }
        });
      },
    },
    field(t("account.current"), current),
    field(t("account.new"), next),
    field(t("account.repeat"), repeat),
    err.el,
    h("div", { class: "actions start" }, submit),
  );
  root.append(
    appFrame("account", [
      h("div", { class: "page-head" }, h("h1", null, t("account.title"))),
      h(
        "section",
        { class: "card profile" },
        h("div", { class: "avatar lg", "aria-hidden": "true" }, me.username.slice(0, 1).toUpperCase()),
        h(
          "div",
          { class: "grow" },
          h("h2", null, me.username),
          h("p", { class: "muted" }, `${t(me.role === "admin" ? "account.role.admin" : "account.role.user")} · ${formatTime(me.createdAt)}`),
        ),
        button(t("nav.signOut"), { icon: "logout", kind: "secondary", onclick: () => void signOut() }),
      ),
      h("section", { class: "card narrow-card", "aria-labelledby": "pw-h" }, h("h2", { id: "pw-h" }, t("account.password")), form),
    ]),
  );
}
