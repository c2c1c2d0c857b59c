// Any path the client does not know.
import { h } from "../dom";
import { t } from "../i18n";
import { brand } from "../ui";

export function render(root: HTMLElement): void {
  root.append(
    h("div", { class: "center-page" }, h("main", { class: "card narrow", id: "main" }, brand(), h("h1", null, t("error.notFound")), h("a", { href: "/", "data-link": true, class: "btn primary" }, t("nav.home")))),
  );
}
