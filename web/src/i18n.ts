// Translations: English and Simplified Chinese. The language comes from the visitor's choice
// (remembered in localStorage: a preference, not a secret), else from navigator.languages.

import { en, type Key } from "./locales/en";
import { zh } from "./locales/zh";

export type Lang = "en" | "zh";
export const LANGS: { code: Lang; label: string }[] = [
  { code: "en", label: "English" },
  { code: "zh", label: "简体中文" },
];

const TABLES: Record<Lang, Record<Key, string>> = { en, zh };
const STORE_KEY = "bedrud.lang";

function detect(): Lang {
  try {
    const saved = localStorage.getItem(STORE_KEY);
    if (saved === "en" || saved === "zh") return saved;
  } catch {
    /* storage may be off: fall back to the browser's languages */
  }
  for (const l of navigator.languages ?? [navigator.language]) {
    const code = l.toLowerCase();
    if (code.startsWith("zh")) return "zh";
    if (code.startsWith("en")) return "en";
  }
  return "en";
}

let current: Lang = detect();
const listeners = new Set<() => void>();

export function lang(): Lang {
  return current;
}

export function setLang(l: Lang): void {
  current = l;
  try {
    localStorage.setItem(STORE_KEY, l);
  } catch {
    /* not remembered, still applied */
  }
  document.documentElement.lang = l === "zh" ? "zh-CN" : "en";
  for (const f of listeners) f();
}

export function onLangChange(f: () => void): () => void {
  listeners.add(f);
  return () => listeners.delete(f);
}

/** The string for `key` in the current language, with `{name}` placeholders filled. */
export function t(key: Key, vars?: Record<string, string | number>): string {
  const s = TABLES[current][key] ?? en[key] ?? key;
  return vars ? s.replace(/\{(\w+)\}/g, (m, k: string) => (k in vars ? String(vars[k]) : m)) : s;
}

export function formatTime(ms: number): string {
  return new Intl.DateTimeFormat(current === "zh" ? "zh-CN" : "en", { dateStyle: "medium", timeStyle: "short" }).format(ms);
}

export function formatClock(ms: number): string {
  return new Intl.DateTimeFormat(current === "zh" ? "zh-CN" : "en", { timeStyle: "short" }).format(ms);
}

export function formatAgo(ms: number): string {
  const secs = Math.max(0, Math.round((Date.now() - ms) / 1000));
  const rtf = new Intl.RelativeTimeFormat(current === "zh" ? "zh-CN" : "en", { numeric: "auto" });
  if (secs < 60) return rtf.format(-secs, "second");
  if (secs < 3600) return rtf.format(-Math.round(secs / 60), "minute");
  if (secs < 86400) return rtf.format(-Math.round(secs / 3600), "hour");
  return rtf.format(-Math.round(secs / 86400), "day");
}

document.documentElement.lang = current === "zh" ? "zh-CN" : "en";
