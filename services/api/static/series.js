// One series: what it is, what can be done with it, each failure's reason, its images
// with each destination's result, and its timeline of events.
"use strict";

import {
  act, announce, api, apiImage, button, el, keepFocusOnThePage, may, replaceKeepingFocus, timeEl,
} from "./core.js";
import { progressBar, retryable, retryButton } from "./overview.js";

let seriesId = null;

function fact(list, term, value) {
  list.append(el("dt", term));
  const detail = el("dd");
  if (value instanceof Node) detail.append(value); else detail.textContent = value ?? "–";
  list.append(detail);
}

function renderFacts(s) {
  document.getElementById("series-title").textContent = `Series ${s.id}`;
  const status = document.getElementById("series-status");
  status.textContent = s.status_text;
  status.className = "status-" + s.status;
  status.dataset.status = s.status;
  const facts = el("dl", null, "facts");
  fact(facts, "Project", s.project);
  fact(facts, "Modality", s.modality);
  fact(facts, "Patient pseudonym", s.patient_pseudonym);
  fact(facts, "Images", String(s.image_count));
  fact(facts, "Progress", progressBar(s));
  if (retryable(s)) fact(facts, "A retry starts from", `the ${s.stage} stage`);
  fact(facts, "Arrived", timeEl(s.created_at));
  fact(facts, "Last change", timeEl(s.updated_at));
  if (s.error) fact(facts, "Reason", s.error);
  document.getElementById("series-facts").replaceChildren(facts);
}

function heldSeriesButtons(s) {
  const release = button("Release", "release-series", () => act({
    title: `Release series ${s.id}`,
    text: `Series ${s.id} goes on to be de-identified by project ${s.project} and sent.`,
    confirmLabel: `Release series ${s.id}`,
    path: `/api/v1/series/${s.id}/release`,
    done: () => `Series ${s.id} was released and waits for de-identification.`,
    refresh,
  }));
  const drop = button("Drop", "drop-series", () => act({
    title: `Drop series ${s.id}`,
    text: `Series ${s.id} is sent nowhere and its files are removed; its record stays. ` +
          "This cannot be undone.",
    confirmLabel: `Drop series ${s.id}`,
    path: `/api/v1/series/${s.id}/drop`,
    done: () => `Series ${s.id} was dropped.`,
    refresh,
  }));
  release.dataset.focusKey = "release-series";
  drop.dataset.focusKey = "drop-series";
  return [release, drop];
}

function renderActions(s) {
  const actions = [];
  if (retryable(s) && may("operator")) actions.push(retryButton(s.id, s.stage, refresh));
  if (s.status === "HELD" && may("operator")) actions.push(...heldSeriesButtons(s));
  const bar = document.getElementById("series-actions");
  replaceKeepingFocus(bar, actions);
  bar.hidden = actions.length === 0;
}

function renderFailures(s) {
  const rows = [];
  if (s.status === "FAILED" || s.status === "QUARANTINED") {
    const row = el("tr");
    row.append(el("td", "the series"), el("td", s.status_text), el("td", s.error || "–"));
    rows.push(row);
  }
  for (const f of s.failures) {
    const row = el("tr");
    row.dataset.imageId = f.image_id;
    row.append(el("td", `image ${f.image_id}`), el("td", `${f.status_text} (${f.code})`),
               el("td", f.reason || "–"));
    rows.push(row);
  }
  document.querySelector("#series-failures tbody").replaceChildren(...rows);
  document.getElementById("series-failures").hidden = rows.length === 0;
  document.getElementById("series-no-failures").hidden = rows.length > 0;
}

function deliveries(image) {
  if (!image.deliveries.length) return el("span", "not sent yet", "muted");
  const list = el("ul", null, "deliveries");
  for (const d of image.deliveries) {
    const item = el("li");
    item.dataset.destination = d.destination;
    const attempts = `${d.attempts} attempt${d.attempts === 1 ? "" : "s"}`;
    item.textContent = d.state === "CONFIRMED"
      ? `${d.destination}: confirmed (${attempts})`
      : `${d.destination}: not confirmed (${attempts}) — ${d.error || "no reason given"}`;
    item.className = d.state === "CONFIRMED" ? "status-DONE" : "status-FAILED";
    list.append(item);
  }
  return list;
}

function imageRow(image) {
  const row = el("tr");
  row.dataset.imageId = image.id;
  const status = el("td", image.status_text, "status-" + image.status);
  const where = el("td");
  where.append(deliveries(image));
  const action = el("td");
  if (image.status === "QUARANTINED" && image.pixel_gate === "held" && may("admin")) {
    const review = button("Review", "review-image", () => reviewHeldImage(image.id),
                          `Review held image ${image.id}`);
    review.dataset.focusKey = `review-${image.id}`;
    action.append(review);
  }
  row.append(el("td", image.id), status, el("td", image.reason || "–"), where, action);
  return row;
}

function renderImages(s) {
  replaceKeepingFocus(document.querySelector("#series-images tbody"), s.images.map(imageRow));
}

function renderTimeline(s) {
  const items = s.events.map((e) => {
    const item = el("li");
    item.dataset.kind = e.kind;
    item.append(timeEl(e.at), el("span", ` ${e.service} `, "muted"), el("strong", e.kind));
    if (e.detail) item.append(el("span", " — " + e.detail));
    return item;
  });
  document.getElementById("series-timeline").replaceChildren(...items);
}

// The review of an image held for burned-in text: its de-identified thumbnail first;
// release needs the reviewer to say they looked, drop sends it nowhere for good.
async function reviewHeldImage(imageId) {
  const dialog = document.getElementById("review-dialog");
  const picture = document.getElementById("review-image");
  const looked = document.getElementById("review-looked");
  const release = document.getElementById("review-release");
  const drop = document.getElementById("review-drop");
  const returnTo = document.activeElement;
  document.getElementById("review-title").textContent = `Held image ${imageId}`;
  document.getElementById("review-error").textContent = "";
  picture.removeAttribute("src");
  picture.alt = `De-identified thumbnail of image ${imageId}, loading`;
  looked.checked = false;
  release.disabled = drop.disabled = looked.disabled = true;
  dialog.returnValue = "";
  dialog.showModal();
  try {
    picture.src = await apiImage(`/api/v1/images/${imageId}/thumbnail`);
    await picture.decode();
    picture.alt = `De-identified thumbnail of image ${imageId}`;
    looked.disabled = drop.disabled = false;
    looked.focus();
  } catch (error) {
    picture.alt = "";
    document.getElementById("review-error").textContent =
      `The thumbnail could not be shown: ${error.message}`;
  }
  const choice = await new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue), { once: true });
  });
  if (picture.src) URL.revokeObjectURL(picture.src);
  if (returnTo && returnTo.isConnected) returnTo.focus();
  if (choice === "release" || choice === "drop") {
    await decideHeldImage(imageId, choice);
  } else {
    announce("Cancelled: nothing was changed.");
  }
}

async function decideHeldImage(imageId, choice) {
  try {
    const answer = await api(`/api/v1/images/${imageId}/${choice}`, { method: "POST" });
    announce(choice === "release"
      ? `Image ${imageId} was released` + (answer.queued_for_send ? " and is queued to be sent."
                                                                   : ".")
      : `Image ${imageId} was dropped: it will never be sent.`);
  } catch (error) {
    if (error.status !== 401) announce(`The ${choice} of image ${imageId} failed: ` +
                                       error.message, true);
  }
  await refresh();
  keepFocusOnThePage();
}

export async function refresh() {
  if (seriesId === null) return;
  let s;
  try {
    s = await api(`/api/v1/series/${seriesId}`);
  } catch (error) {
    if (error.status !== 404) throw error;
    document.getElementById("series-title").textContent = `Series ${seriesId} does not exist`;
    document.getElementById("series-body").hidden = true;
    return;
  }
  document.getElementById("series-body").hidden = false;
  renderFacts(s);
  renderActions(s);
  renderFailures(s);
  renderImages(s);
  renderTimeline(s);
}

async function show(params, match) {
  seriesId = Number(match[1]);
  await refresh();
}

export function wire() {
  const looked = document.getElementById("review-looked");
  looked.addEventListener("change", () => {
    document.getElementById("review-release").disabled = !looked.checked;
  });
}

export const seriesPage = { section: "series-view", title: "Series", show, refresh };
