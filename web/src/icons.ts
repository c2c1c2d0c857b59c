// Inline SVG icons (24x24, stroked), drawn for bedrud. `icon("mic")` returns a fresh element,
// hidden from screen readers: the button around it carries the accessible name.

import { svg } from "./dom";

const PATHS = {
  mic: "M12 3a3 3 0 0 1 3 3v6a3 3 0 0 1-6 0V6a3 3 0 0 1 3-3Z|M19 11a7 7 0 0 1-14 0|M12 18v3",
  micOff: "M15 9.3V6a3 3 0 0 0-5.7-1.3|M9 9v3a3 3 0 0 0 4.9 2.3|M19 11a7 7 0 0 1-1.2 3.9|M5 11a7 7 0 0 0 10.4 6.1|M12 18v3|M3 3l18 18",
  video: "M3 8a2 2 0 0 1 2-2h9a2 2 0 0 1 2 2v8a2 2 0 0 1-2 2H5a2 2 0 0 1-2-2Z|M16 10.5l5-3v9l-5-3",
  videoOff: "M10 6h4a2 2 0 0 1 2 2v4|M16 10.5l5-3v9l-3.5-2.1|M16 16a2 2 0 0 1-2 2H5a2 2 0 0 1-2-2V8a2 2 0 0 1 2-2|M3 3l18 18",
  screen: "M3 5a1 1 0 0 1 1-1h16a1 1 0 0 1 1 1v11a1 1 0 0 1-1 1H4a1 1 0 0 1-1-1Z|M8 21h8|M12 17v4|M12 13V8|M9.5 10.5 12 8l2.5 2.5",
  chat: "M4 5h16a1 1 0 0 1 1 1v10a1 1 0 0 1-1 1H9l-5 4v-4H4a1 1 0 0 1-1-1V6a1 1 0 0 1 1-1Z",
  users: "M9 11a4 4 0 1 0 0-8 4 4 0 0 0 0 8Z|M2 21a7 7 0 0 1 14 0|M16 3.5a4 4 0 0 1 0 7|M18 14.5a7 7 0 0 1 4 6.5",
  settings: "M12 15a3 3 0 1 0 0-6 3 3 0 0 0 0 6Z|M19.4 15a1.7 1.7 0 0 0 .3 1.8l.1.1a2 2 0 1 1-2.8 2.8l-.1-.1a1.7 1.7 0 0 0-1.8-.3 1.7 1.7 0 0 0-1 1.5V21a2 2 0 1 1-4 0v-.1a1.7 1.7 0 0 0-1.1-1.5 1.7 1.7 0 0 0-1.8.3l-.1.1a2 2 0 1 1-2.8-2.8l.1-.1a1.7 1.7 0 0 0 .3-1.8 1.7 1.7 0 0 0-1.5-1H3a2 2 0 1 1 0-4h.1a1.7 1.7 0 0 0 1.5-1.1 1.7 1.7 0 0 0-.3-1.8l-.1-.1a2 2 0 1 1 2.8-2.8l.1.1a1.7 1.7 0 0 0 1.8.3H9a1.7 1.7 0 0 0 1-1.5V3a2 2 0 1 1 4 0v.1a1.7 1.7 0 0 0 1 1.5 1.7 1.7 0 0 0 1.8-.3l.1-.1a2 2 0 1 1 2.8 2.8l-.1.1a1.7 1.7 0 0 0-.3 1.8V9a1.7 1.7 0 0 0 1.5 1H21a2 2 0 1 1 0 4h-.1a1.7 1.7 0 0 0-1.5 1Z",
  leave: "M3.6 12.8c-.6-.6-.6-1.6 0-2.2C8.3 6.4 15.7 6.4 20.4 10.6c.6.6.6 1.6 0 2.2l-1.6 1.6a1.2 1.2 0 0 1-1.6.1l-2-1.5a1.2 1.2 0 0 1-.5-1v-1.6a11 11 0 0 0-5.4 0V12a1.2 1.2 0 0 1-.5 1l-2 1.5a1.2 1.2 0 0 1-1.6-.1Z",
  copy: "M9 9a2 2 0 0 1 2-2h8a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2h-8a2 2 0 0 1-2-2Z|M15 7V5a2 2 0 0 0-2-2H5a2 2 0 0 0-2 2v10a2 2 0 0 0 2 2h2",
  check: "M5 12.5l4.5 4.5L19 7.5",
  send: "M21 3 10 14|M21 3l-6.5 18-4.5-7-7-4.5Z",
  trash: "M4 7h16|M10 11v6|M14 11v6|M6 7l1 12a2 2 0 0 0 2 2h6a2 2 0 0 0 2-2l1-12|M9 7V4h6v3",
  plus: "M12 5v14|M5 12h14",
  logout: "M9 21H5a2 2 0 0 1-2-2V5a2 2 0 0 1 2-2h4|M16 17l5-5-5-5|M21 12H9",
  shield: "M12 3l8 3v6c0 5-3.5 8-8 9-4.5-1-8-4-8-9V6Z",
  grid: "M4 4h7v7H4Z|M13 4h7v7h-7Z|M4 13h7v7H4Z|M13 13h7v7h-7Z",
  speaker: "M3 4h18v11H3Z|M4 18h4v2H4Z|M10 18h4v2h-4Z|M16 18h4v2h-4Z",
  close: "M6 6l12 12|M18 6 6 18",
  user: "M12 12a4 4 0 1 0 0-8 4 4 0 0 0 0 8Z|M4 21a8 8 0 0 1 16 0",
  globe: "M12 21a9 9 0 1 0 0-18 9 9 0 0 0 0 18Z|M3 12h18|M12 3c2.5 2.5 3.5 5.5 3.5 9s-1 6.5-3.5 9c-2.5-2.5-3.5-5.5-3.5-9s1-6.5 3.5-9Z",
  key: "M8 16a4 4 0 1 0 0-8 4 4 0 0 0 0 8Z|M12 12h9|M18 12v3|M21 12v3",
  link: "M10 14a4 4 0 0 0 5.7 0l3-3a4 4 0 0 0-5.7-5.7l-1 1|M14 10a4 4 0 0 0-5.7 0l-3 3a4 4 0 0 0 5.7 5.7l1-1",
  back: "M15 18l-6-6 6-6",
  lock: "M5 11h14v10H5Z|M8 11V7a4 4 0 0 1 8 0v4",
  clock: "M12 21a9 9 0 1 0 0-18 9 9 0 0 0 0 18Z|M12 7v5l3 2",
  more: "M5 12h.01|M12 12h.01|M19 12h.01",
  alert: "M12 3 2 20h20Z|M12 10v4|M12 17h.01",
  server: "M4 4h16v6H4Z|M4 14h16v6H4Z|M8 7h.01|M8 17h.01",
  door: "M4 21h16|M6 21V4a1 1 0 0 1 1-1h10a1 1 0 0 1 1 1v17|M14 12h.01",
  volume: "M4 9h4l5-4v14l-5-4H4Z|M16.5 8.5a5 5 0 0 1 0 7|M19 6a8.5 8.5 0 0 1 0 12",
  ban: "M12 21a9 9 0 1 0 0-18 9 9 0 0 0 0 18Z|M5.6 5.6l12.8 12.8",
  refresh: "M20 11a8 8 0 0 0-14.9-3.5L4 9|M4 4v5h5|M4 13a8 8 0 0 0 14.9 3.5L20 15|M20 20v-5h-5",
  hand: "M8 13V5.5a1.5 1.5 0 0 1 3 0V11|M11 10.5v-6a1.5 1.5 0 0 1 3 0V11|M14 6.5a1.5 1.5 0 0 1 3 0V12|M17 9.5a1.5 1.5 0 0 1 3 0V15a6 6 0 0 1-6 6h-1.5a6 6 0 0 1-4.8-2.4L4.4 15a1.5 1.5 0 0 1 2.3-1.9L8 14.5",
  unlock: "M5 11h14v10H5Z|M8 11V7a4 4 0 0 1 7.7-1.5",
  spotlight: "M12 21a9 9 0 1 0 0-18 9 9 0 0 0 0 18Z|M12 16a4 4 0 1 0 0-8 4 4 0 0 0 0 8Z|M12 12h.01",
  up: "M12 19V5|M5 12l7-7 7 7",
  down: "M12 5v14|M19 12l-7 7-7-7",
  power: "M12 3v8|M6.3 6.3a8 8 0 1 0 11.4 0",
  bell: "M6 16v-5a6 6 0 0 1 12 0v5l2 2H4Z|M10 20a2 2 0 0 0 4 0",
  hourglass: "M6 3h12|M6 21h12|M7 3c0 5 10 6 10 9s-10 4-10 9|M17 3c0 5-10 6-10 9s10 4 10 9",
} as const;

export type IconName = keyof typeof PATHS;

export function icon(name: IconName, cls = "icon"): SVGElement {
  return svg(
    "svg",
    { class: cls, viewBox: "0 0 24 24", fill: "none", stroke: "currentColor", "stroke-width": "1.8", "stroke-linecap": "round", "stroke-linejoin": "round", "aria-hidden": "true", focusable: "false" },
    PATHS[name].split("|").map((d) => svg("path", { d })),
  );
}

/** Signal bars for LiveKit's connection quality (excellent/good/poor/lost/unknown). */
export function qualityBars(quality: string, label: string): SVGElement {
  const level = { excellent: 3, good: 2, poor: 1 }[quality] ?? 0;
  return svg(
    "svg",
    { class: `quality q-${quality}`, viewBox: "0 0 16 16", role: "img", "aria-label": label },
    svg("title", null, label),
    [0, 1, 2].map((i) => svg("rect", { x: String(2 + i * 5), y: String(10 - i * 4), width: "3", height: String(4 + i * 4), rx: "1", class: i < level ? "on" : "off" })),
  );
}
