// Shared by the end-to-end scenarios: a headless Debian chromium driven by playwright-core
// with fake camera and microphone, screenshots, and proof that media flows (from getStats()).
//
// Every scenario is `node e2e/NAME.mjs '<json>'` with at least {"url": "http://127.0.0.1:PORT"};
// it prints one JSON line of results and exits 0, or prints the error and exits 1. It closes
// its browser on every path and gives up after its own time limit.

import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { chromium } from "playwright-core";

export const CHROMIUM = process.env.BEDRUD_CHROMIUM ?? "/usr/bin/chromium";
export const ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--use-fake-device-for-media-stream",
  "--use-fake-ui-for-media-stream",
];

export function input() {
  const raw = process.argv[2];
  if (!raw) throw new Error("usage: node e2e/SCENARIO.mjs '{\"url\":\"http://127.0.0.1:PORT\", ...}'");
  return JSON.parse(raw);
}

const shotDir = process.env.BEDRUD_SCREENSHOTS ?? new URL("../../target/screenshots/", import.meta.url).pathname;

/** Saves a screenshot as target/screenshots/NAME.png (or under $BEDRUD_SCREENSHOTS). */
export async function shot(page, name) {
  mkdirSync(shotDir, { recursive: true });
  await page.screenshot({ path: join(shotDir, `${name}.png`) });
}

/** Saves a screenshot of one element (a card, a dialog) as target/screenshots/NAME.png. */
export async function shotOf(locator, name) {
  mkdirSync(shotDir, { recursive: true });
  await locator.screenshot({ path: join(shotDir, `${name}.png`) });
}

/**
 * Runs `body(browser)` with a fresh chromium (fresh profile each launch) and always closes it;
 * fails the scenario after `limitMs`.
 */
export async function run(name, limitMs, body) {
  let browser;
  const timer = setTimeout(async () => {
    console.error(`${name}: gave up after ${limitMs} ms`);
    await browser?.close().catch(() => undefined);
    process.exit(1);
  }, limitMs);
  try {
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS, headless: true, timeout: 60_000 });
    const out = await body(browser);
    console.log(JSON.stringify({ scenario: name, ok: true, ...out }));
    await browser.close();
    clearTimeout(timer);
    process.exit(0);
  } catch (e) {
    console.error(`${name}: ${e?.stack ?? e}`);
    // What each page showed when it failed.
    let i = 0;
    for (const context of browser?.contexts() ?? []) {
      for (const page of context.pages()) await shot(page, `${name}-failed-${i++}`).catch(() => undefined);
    }
    await browser?.close().catch(() => undefined);
    clearTimeout(timer);
    process.exit(1);
  }
}

/** A new context (its own cookies) with camera and microphone allowed; records peer connections. */
export async function newPage(browser, url, opts = {}) {
  const context = await browser.newContext({
    baseURL: url,
    viewport: opts.viewport ?? { width: 1280, height: 800 },
    locale: opts.locale ?? "en-US",
    permissions: ["camera", "microphone", "clipboard-read", "clipboard-write"],
    colorScheme: opts.colorScheme ?? "light",
    deviceScaleFactor: opts.scale ?? 1,
  });
  await context.addInitScript(() => {
    const Native = window.RTCPeerConnection;
    const pcs = [];
    window.__pcs = pcs;
    window.RTCPeerConnection = function (...a) {
      const pc = new Native(...a);
      pcs.push(pc);
      return pc;
    };
    window.RTCPeerConnection.prototype = Native.prototype;
    Object.setPrototypeOf(window.RTCPeerConnection, Native);
  });
  if (opts.loopbackOnly) {
    // Pages from elsewhere (an OpenID provider's login page) may name resources on the
    // internet; the tests stay on this machine.
    await context.route(
      (u) => !["127.0.0.1", "localhost", "[::1]"].includes(u.hostname),
      (route) => route.abort("blockedbyclient"),
    );
  }
  const page = await context.newPage();
  page.setDefaultTimeout(opts.timeout ?? 20_000);
  page.on("console", (m) => {
    if (m.type() === "error" && process.env.BEDRUD_E2E_VERBOSE) console.error(`[page] ${m.text()}`);
  });
  return page;
}

/** Inbound RTP totals over every peer connection of the page. */
export async function inbound(page) {
  return page.evaluate(async () => {
    let framesDecoded = 0;
    let audioPackets = 0;
    let videoPackets = 0;
    for (const pc of window.__pcs ?? []) {
      if (pc.connectionState === "closed") continue;
      const stats = await pc.getStats();
      stats.forEach((r) => {
        if (r.type !== "inbound-rtp") return;
        if (r.kind === "video") {
          framesDecoded += r.framesDecoded ?? 0;
          videoPackets += r.packetsReceived ?? 0;
        }
        if (r.kind === "audio") audioPackets += r.packetsReceived ?? 0;
      });
    }
    return { framesDecoded, audioPackets, videoPackets };
  });
}

/**
 * Proves that `page` plays the video of the participant shown as `name` and receives audio:
 * the tile's <video> has a width, decoded frames and audio packets go up over ~1.5 s.
 */
export async function assertMediaFrom(page, name) {
  const playing = (n) => {
    const v = [...document.querySelectorAll("figure")].find((f) => f.getAttribute("aria-label") === n)?.querySelector("video");
    return v && !v.hidden && v.videoWidth > 0 && v.currentTime > 0 ? v.videoWidth : 0;
  };
  const videoWidth = await (await page.waitForFunction(playing, name, { timeout: 30_000 })).jsonValue();
  const a = await inbound(page);
  await page.waitForTimeout(1500);
  const b = await inbound(page);
  if (!(b.framesDecoded > a.framesDecoded)) throw new Error(`video frames not increasing from ${name}: ${a.framesDecoded} -> ${b.framesDecoded}`);
  if (!(b.audioPackets > a.audioPackets)) throw new Error(`audio packets not increasing from ${name}: ${a.audioPackets} -> ${b.audioPackets}`);
  return { videoWidth, framesDecoded: [a.framesDecoded, b.framesDecoded], audioPackets: [a.audioPackets, b.audioPackets] };
}

export async function signIn(page, username, password) {
  await page.goto("/signin");
  await page.getByLabel("Username").fill(username);
  await page.getByLabel("Password").fill(password);
  await page.getByRole("button", { name: "Sign in", exact: true }).click();
  await page.getByRole("heading", { level: 1 }).filter({ hasNotText: "Sign in" }).waitFor();
}

/**
 * From the pre-join page: waits for the camera preview, then joins, and (unless `lobby`: the
 * page is expected to wait in the lobby) waits for the meeting's controls.
 */
export async function joinFromPrejoin(page, displayName, { lobby = false } = {}) {
  if (displayName !== undefined) await page.getByLabel("Your name").fill(displayName);
  await page.waitForFunction(() => {
    const v = document.querySelector(".preview-video");
    const meter = document.querySelector(".meter");
    return v && v.videoWidth > 0 && meter && !meter.classList.contains("off");
  });
  await page.getByRole("button", { name: "Join meeting" }).click();
  if (lobby) await page.getByRole("heading", { name: "Waiting to be let in" }).waitFor();
  else await page.getByRole("toolbar").waitFor();
}

export function assert(cond, message) {
  if (!cond) throw new Error(message);
}
