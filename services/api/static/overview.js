// The overview: counts by status, the throughput and queue chart, the newest series
// and the failures, with a retry for those allowed to.
"use strict";

import { drawQueues, drawThroughput } from "./chart.js";
import { act, api, button, el, link, may, replaceKeepingFocus, timeEl } from "./core.js";

const QUEUE_SAMPLES = 120;
const queueSamples = [];

export function progressBar(series) {
  const bar = el("div", null, "bar");
  if (series.status === "FAILED" || series.status === "QUARANTINED") bar.classList.add("failed");
  const percent = Math.round(series.progress * 100);
  bar.setAttribute("role", "progressbar");
  bar.setAttribute("aria-valuenow", percent);
  bar.setAttribute("aria-valuemin", 0);
  bar.setAttribute("aria-valuemax", 100);
  bar.setAttribute("aria-label", `series ${series.id} progress`);
  const fill = el("div");
  fill.style.width = percent + "%";
  bar.append(fill);
  return bar;
}

export function statusCell(status, words) {
  const cell = el("td", null, "status-" + status);
  cell.append(el("span", words));
  cell.dataset.status = status;
  return cell;
}

export function seriesRow(s) {
  const row = el("tr");
  row.dataset.seriesId = s.id;
  const idCell = el("td");
  const open = link(`#/series/${s.id}`, String(s.id), `open series ${s.id}`);
  open.dataset.focusKey = `open-${s.id}`;
  idCell.append(open);
  const bar = el("td");
  bar.append(progressBar(s));
  const updated = el("td");
  updated.append(timeEl(s.updated_at));
  row.append(idCell, el("td", s.project || "–"), el("td", s.modality || "–"),
    el("td", s.patient_pseudonym || "–"), statusCell(s.status, s.status_text),
    el("td", s.image_count), bar, updated);
  return row;
}

function renderCounts(stats) {
  for (const card of document.querySelectorAll("#counts .card")) {
    card.querySelector("b").textContent = stats.series_by_status[card.dataset.status] || 0;
  }
  const hour = stats.last_hour;
  document.getElementById("summary").textContent =
    `${stats.in_flight} in flight · last hour: ${hour.series_done} series done, ` +
    `${hour.images_done} images, ${hour.series_failed} failed`;
}

export function retryable(s) {
  return s.status === "FAILED" && s.stage !== "ingest";
}

export function retryButton(seriesId, stage, refresh) {
  const node = button("Retry", "retry", () => act({
    title: `Retry series ${seriesId}`,
    text: `Series ${seriesId} starts again from its ${stage} stage. Images a destination ` +
          "has already confirmed are not sent again.",
    confirmLabel: `Retry series ${seriesId}`,
    path: `/api/v1/series/${seriesId}/retry`,
    done: (answer) => `Series ${answer.series_id} is queued again from its ${answer.stage} stage.`,
    refresh,
  }), `Retry series ${seriesId}`);
  node.dataset.focusKey = `retry-${seriesId}`;
  return node;
}

function failureRow(f) {
  const row = el("tr");
  row.dataset.seriesId = f.series_id;
  const idCell = el("td");
  const open = link(`#/series/${f.series_id}`, String(f.series_id),
                    `open series ${f.series_id}`);
  open.dataset.focusKey = `failure-${f.series_id}`;
  idCell.append(open);
  const reason = el("td", f.error || `${f.failed_images.length} image(s) not sent`);
  const list = el("ul", null, "reasons");
  for (const image of f.failed_images.slice(0, 5)) {
    list.append(el("li", `image ${image.image_id}: ${image.reason || image.status_text}`));
  }
  if (f.failed_images.length) reason.append(list);
  const action = el("td");
  if (retryable(f) && may("operator")) action.append(retryButton(f.series_id, f.stage, refresh));
  row.append(idCell, statusCell(f.status, f.status_text), el("td", f.code, "code"), reason,
             action);
  return row;
}

function renderFailures(page) {
  const rows = page.items.map(failureRow);
  replaceKeepingFocus(document.querySelector("#failures tbody"), rows);
  document.getElementById("no-failures").hidden = rows.length > 0;
  document.getElementById("failures").hidden = rows.length === 0;
}

function renderChart(history) {
  drawThroughput(document.getElementById("throughput"), history);
  queueSamples.push({ at: Date.now(), depths: history.queues || {} });
  if (queueSamples.length > QUEUE_SAMPLES) queueSamples.shift();
  drawQueues(document.getElementById("queue-depths"),
             history.queues ? queueSamples.filter((s) => Object.keys(s.depths).length) : []);
}

export async function refresh() {
  const [stats, series, failures, history] = await Promise.all([
    api("/api/v1/stats"), api("/api/v1/series?limit=50&sort=-id"),
    api("/api/v1/failures?limit=50"), api("/api/v1/stats/throughput?hours=6")]);
  renderCounts(stats);
  replaceKeepingFocus(document.querySelector("#series tbody"), series.items.map(seriesRow));
  renderFailures(failures);
  renderChart(history);
}

export const overview = { section: "board", title: "Overview", show: refresh, refresh };
