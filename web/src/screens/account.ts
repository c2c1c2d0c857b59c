// Account: who is signed in and how, the e-mail address (confirmed by a mailed link),
// passkeys (add several, remove one), change password, sign out.

import { type Passkey, api } from "../api";
import { field, h, replace } from "../dom";
import { formatTime, lang, t } from "../i18n";
import { icon } from "../icons";
import { requireUser, session } from "../router";
import { appFrame, busy, button, confirmDialog, errorText, formError, signOut, submitting, toast } from "../ui";
import { cancelled, createPasskey, passkeysSupported } from "../webauthn";

/** The names of the providers linked to the account, as their buttons call them. */
function providers(names: string[]): string {
  return names.map((n) => session.info.oidc.find((p) => p.name === n)?.label ?? n).join(", ");
}

function passwordCard(): HTMLElement {
  const current = h("input", { type: "password", autocomplete: "current-password", required: true });
  const next = h("input", { type: "password", autocomplete: "new-password", required: true });
  const repeat = h("input", { type: "password", autocomplete: "new-password", required: true });
  const err = formError();
  const submit = button(t("account.change"), { type: "submit", kind: "primary" });
  const form = h(
    "form",
    {
      class: "form",
      onsubmit: submitting(submit, err, async () => {
        if (next.value !== repeat.value) return t("register.mismatch");
        await api.changePassword(current.value, next.value);
        (form as HTMLFormElement).reset();
        toast(t("account.changed"));
      }),
    },
    field(t("account.current"), current),
    field(t("account.new"), next),
    field(t("account.repeat"), repeat),
    err.el,
    h("div", { class: "actions start" }, submit),
  );
  return h("section", { class: "card narrow-card", "aria-labelledby": "pw-h" }, h("h2", { id: "pw-h" }, t("account.password")), form);
}

function emailCard(): HTMLElement {
  const me = session.user!;
  const input = h("input", { type: "email", autocomplete: "email", value: me.email ?? "" });
  const err = formError();
  const note = h("p", { class: "soft-ok", role: "status", hidden: true });
  const state = h("span");
  const save = button(t("account.emailSave"), { type: "submit", kind: "primary" });
  const resend = button(t("account.resend"), {
    kind: "secondary",
    onclick: () => {
      err.show(null);
      void busy(resend, async () => {
        try {
          await api.email.resend(lang());
          say(t("account.verifySent", { email: session.user?.email ?? "" }));
        } catch (e) {
          err.show(errorText(e));
        }
      });
    },
  });
  const say = (text: string | null) => {
    note.hidden = !text;
    note.textContent = text ?? "";
  };
  const draw = () => {
    const u = session.user!;
    replace(state, u.email ? h("span", { class: `badge ${u.emailVerified ? "ok" : "warn"}` }, t(u.emailVerified ? "account.verified" : "account.unverified")) : null);
    resend.hidden = !u.email || u.emailVerified || !session.info.mail;
  };
  draw();
  const form = h(
    "form",
    {
      class: "form",
      onsubmit: submitting(save, err, async () => {
        say(null);
        const r = await api.email.set(input.value.trim(), lang());
        session.user = r.user;
        input.value = r.user.email ?? "";
        draw();
        if (!r.user.email) toast(t("account.emailRemoved"));
        else if (r.user.emailVerified) toast(t("account.emailSaved"));
        else if (!session.info.mail) say(t("account.noMail"));
        else say(t(r.verificationSent ? "account.verifySent" : "account.verifyNotSent", { email: r.user.email }));
      }),
    },
    field(t("account.email"), input, t("account.emailHint")),
    err.el,
    note,
    h("div", { class: "actions start" }, save, resend),
  );
  return h("section", { class: "card narrow-card", "aria-labelledby": "mail-h" }, h("div", { class: "card-head" }, h("h2", { id: "mail-h" }, t("account.emailTitle")), state), form);
}

function passkeysCard(): HTMLElement {
  const list = h("ul", { class: "key-list", "aria-label": t("account.passkeys") });
  const err = formError();
  let keys: Passkey[] = [];
  const name = h("input", { autocomplete: "off", maxlength: "64" });
  const draw = () => {
    name.value = t("account.passkeyDefault", { n: keys.length + 1 });
    replace(
      list,
      keys.length === 0
        ? h("li", { class: "muted small" }, t("account.noPasskeys"))
        : keys.map((k) =>
            h(
              "li",
              null,
              h("span", { class: "key-icon", "aria-hidden": "true" }, icon("key")),
              h(
                "div",
                { class: "grow" },
                h("strong", null, k.name),
                h(
                  "p",
                  { class: "muted small" },
                  `${t("account.passkeyAddedOn", { date: formatTime(k.createdAt) })} · ${k.lastUsedAt ? t("account.passkeyUsed", { date: formatTime(k.lastUsedAt) }) : t("account.passkeyNeverUsed")}`,
                ),
              ),
              button(t("account.removePasskey", { name: k.name }), {
                icon: "trash",
                iconOnly: true,
                kind: "ghost danger-text",
                onclick: async () => {
                  if (!(await confirmDialog(t("account.removePasskeyConfirm", { name: k.name }), t("account.remove")))) return;
                  try {
                    await api.passkeys.remove(k.id);
                    keys = keys.filter((x) => x.id !== k.id);
                    draw();
                    toast(t("account.passkeyRemoved", { name: k.name }));
                  } catch (e) {
                    err.show(errorText(e));
                  }
                },
              }),
            ),
          ),
    );
  };
  const add = button(t("account.addPasskey"), { type: "submit", kind: "secondary", icon: "plus" });
  const form = h(
    "form",
    {
      class: "inline-form",
      onsubmit: submitting(
        add,
        err,
        async () => {
          const label = name.value.trim();
          if (!label) return name.focus();
          const c = await api.passkeys.options();
          const credential = await createPasskey(c.publicKey);
          keys.push(await api.passkeys.register(c.ceremony, label, credential));
          draw();
          toast(t("account.passkeyAdded", { name: label }));
        },
        (e) => (cancelled(e) ? "" : errorText(e)),
      ),
    },
    field(t("account.passkeyName"), name),
    add,
  );
  const supported = passkeysSupported();
  const card = h(
    "section",
    { class: "card narrow-card", "aria-labelledby": "keys-h" },
    h("h2", { id: "keys-h" }, t("account.passkeys")),
    h("p", { class: "hint" }, t("account.passkeysHint")),
    list,
    supported ? form : h("p", { class: "soft-alert" }, t("account.passkeyUnsupported")),
    err.el,
  );
  draw();
  api.passkeys.list().then(
    (k) => {
      keys = k;
      draw();
    },
    (e) => err.show(errorText(e)),
  );
  return card;
}

export function render(root: HTMLElement): void {
  if (!requireUser()) return;
  const me = session.user!;
  const how = me.sso.length ? t(me.hasPassword ? "account.sso" : "account.noPassword", { providers: providers(me.sso) }) : null;
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
          how ? h("p", { class: "muted small" }, how) : null,
        ),
        button(t("nav.signOut"), { icon: "logout", kind: "secondary", onclick: () => void signOut() }),
      ),
      h("div", { class: "account-grid" }, emailCard(), session.info.passkeys ? passkeysCard() : null, me.hasPassword ? passwordCard() : null),
    ]),
  );
}
