// The throughput chart: series finished per interval, stacked by status, drawn as
// inline SVG; the same figures as a table for screen readers and for copying.
"use strict";

import { el } from "./core.js";

const SVG = "http://www.w3.org/2000/svg";
// Drawn bottom to top; each colour also has its own name in the legend and the table.
export const SERIES = [
  { status: "DONE", label: "Done", colour: "#2f7d4f" },
  { status: "FAILED", label: "Failed", colour: "#b3261e" },
  { status: "QUARANTINED", label: "Quarantined", colour: "#c26a00" },
  { status: "HELD", label: "Held", colour: "#6b4fa0" },
  { status: "IGNORED", label: "Dropped", colour: "#7b8794" },
];
const WIDTH = 720;
const HEIGHT = 200;
const PAD = { left: 36, right: 8, top: 10, bottom: 24 };

function svg(tag, attrs, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, String(value));
  if (text !== undefined) node.textContent = text;
  return node;
}

function clock(iso) {
  return new Date(iso).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

export function totals(history) {
  const sums = Object.fromEntries(SERIES.map((s) => [s.status, 0]));
  for (const interval of history.intervals) {
    for (const s of SERIES) sums[s.status] += interval.finished[s.status] || 0;
  }
  return sums;
}

export function drawThroughput(figure, history) {
  const intervals = history.intervals;
  const highest = Math.max(1, ...intervals.map(
    (i) => SERIES.reduce((n, s) => n + (i.finished[s.status] || 0), 0)));
  const plotWidth = WIDTH - PAD.left - PAD.right;
  const plotHeight = HEIGHT - PAD.top - PAD.bottom;
  const slot = plotWidth / Math.max(1, intervals.length);
  const sums = totals(history);
  const summary = "Series finished per " + history.interval_seconds / 60 + " minutes: " +
    SERIES.map((s) => sums[s.status] + " " + s.label.toLowerCase()).join(", ") + ".";
  const chart = svg("svg", { viewBox: `0 0 ${WIDTH} ${HEIGHT}`, role: "img",
                             "aria-label": summary, class: "chart" });
  chart.append(svg("line", { x1: PAD.left, x2: WIDTH - PAD.right, y1: HEIGHT - PAD.bottom,
                             y2: HEIGHT - PAD.bottom, class: "axis" }));
  chart.append(svg("text", { x: PAD.left - 6, y: PAD.top + 8, "text-anchor": "end",
                             class: "tick" }, String(highest)));
  chart.append(svg("text", { x: PAD.left - 6, y: HEIGHT - PAD.bottom, "text-anchor": "end",
                             class: "tick" }, "0"));
  const every = Math.max(1, Math.ceil(intervals.length / 6));
  intervals.forEach((interval, n) => {
    let y = HEIGHT - PAD.bottom;
    for (const s of SERIES) {
      const count = interval.finished[s.status] || 0;
      if (!count) continue;
      const height = (count / highest) * plotHeight;
      y -= height;
      const bar = svg("rect", { x: PAD.left + n * slot + 1, y, width: Math.max(1, slot - 2),
                                height, fill: s.colour, "data-status": s.status });
      bar.append(svg("title", {}, `${clock(interval.start)}: ${count} ${s.label.toLowerCase()}`));
      chart.append(bar);
    }
    if (n % every === 0) {
      chart.append(svg("text", { x: PAD.left + n * slot, y: HEIGHT - 6, class: "tick" },
                       clock(interval.start)));
    }
  });
  const legend = el("ul", null, "legend");
  for (const s of SERIES) {
    const item = el("li");
    const swatch = el("span", null, "swatch");
    swatch.style.background = s.colour;
    swatch.setAttribute("aria-hidden", "true");
    item.append(swatch, document.createTextNode(`${s.label} (${sums[s.status]})`));
    legend.append(item);
  }
  figure.querySelector(".plot").replaceChildren(chart, legend);
  figure.querySelector("tbody").replaceChildren(...intervals.map((interval) => {
    const row = el("tr");
    row.append(el("th", clock(interval.start)));
    row.lastChild.scope = "row";
    for (const s of SERIES) row.append(el("td", interval.finished[s.status] || 0));
    return row;
  }));
}

// Queue depths as the page sampled them since it opened: the API knows only the present.
export function drawQueues(container, samples) {
  const queues = samples.length ? Object.keys(samples[samples.length - 1].depths) : [];
  if (!queues.length) {
    container.replaceChildren(el("p", "Queue depths are unknown: the message bus did not " +
                                      "answer.", "muted"));
    return;
  }
  const list = el("ul", null, "queues");
  for (const queue of queues) {
    const values = samples.map((s) => s.depths[queue] ?? 0);
    const now = values[values.length - 1];
    const item = el("li");
    item.dataset.queue = queue;
    item.append(el("span", `${queue}: ${now} waiting`));
    item.append(sparkline(values));
    list.append(item);
  }
  container.replaceChildren(list);
}

function sparkline(values) {
  const width = 160;
  const height = 24;
  const top = Math.max(1, ...values);
  const step = values.length > 1 ? width / (values.length - 1) : width;
  const points = values.map((v, n) => `${(n * step).toFixed(1)},${
    (height - 2 - (v / top) * (height - 4)).toFixed(1)}`).join(" ");
  const line = svg("svg", { viewBox: `0 0 ${width} ${height}`, class: "sparkline",
                            "aria-hidden": "true", focusable: "false" });
  line.append(svg("polyline", { points, fill: "none", stroke: "#1f5fa8", "stroke-width": 1.5 }));
  return line;
}
