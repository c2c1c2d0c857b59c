// Entry point: reads who is signed in, then hands the page to the router. Screens are
// loaded on demand, so the sign-in and home pages never download the media code.

import "./styles.css";
import { api } from "./api";
import { onLangChange } from "./i18n";
import { render, route, session, startRouter } from "./router";

route("/", () => import("./screens/home").then((m) => m.render));
route("/signin", () => import("./screens/signin").then((m) => m.render));
route("/register", () => import("./screens/signin").then((m) => m.renderRegister));
route("/setup", () => import("./screens/signin").then((m) => m.renderSetup));
route("/account", () => import("./screens/account").then((m) => m.render));
route("/forgot-password", () => import("./screens/recover").then((m) => m.renderForgot));
route("/reset-password", () => import("./screens/recover").then((m) => m.renderReset));
route("/verify-email", () => import("./screens/recover").then((m) => m.renderVerify));
route("/admin", () => import("./screens/admin").then((m) => m.render));
route("/r/:room", () => import("./screens/prejoin").then((m) => m.render));
route(".*", () => import("./screens/notfound").then((m) => m.render));

// A screen that must not be rebuilt (a running call) sets `data-keep` on the root and
// updates its own labels.
const root = document.getElementById("app") as HTMLElement;
onLangChange(() => {
  if (!root.hasAttribute("data-keep")) void render();
});

async function boot(): Promise<void> {
  const [info, user] = await Promise.all([api.info().catch(() => null), api.me().catch(() => null)]);
  if (info) session.info = info;
  session.user = user;
  startRouter(root);
}

void boot();
