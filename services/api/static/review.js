// The review page (signin.js signs in, core.js calls the API). Every value goes into the
// page as text, never as markup; frames are fetched with the caller's credentials and
// shown as blob: pictures.
"use strict";

import { api, apiImage, el } from "./core.js";
import { setUpSignIn, signedInAs } from "./signin.js";

const MAX_FRAMES_SHOWN = 64;
let current = null;
// Which sign-in, and which opening of a series, work in flight belongs to: a late answer
// for an earlier one is dropped rather than drawn over what is shown now.
let signIn = 0;
let opening = 0;

function stale(started, opened) {
  return !signedInAs(started) || opened !== opening;
}

function clear() {
  current = null;
  opening += 1;
  const detail = document.getElementById("detail");
  detail.hidden = true;
  delete detail.dataset.seriesId;
  for (const id of ["detail-id", "detail-status", "detail-why", "decision", "decision-error",
                    "fetch-error"]) {
    document.getElementById(id).textContent = "";
  }
  document.getElementById("reason").value = "";
  document.getElementById("frames").replaceChildren();
  document.getElementById("image-choice").replaceChildren();
  document.querySelector("#attributes tbody").replaceChildren();
  document.querySelector("#waiting tbody").replaceChildren();
}

async function loadWaiting() {
  const started = signIn;
  try {
    const waiting = await api("/api/v1/review");
    if (!signedInAs(started)) return;
    const rows = waiting.map((s) => {
      const row = el("tr");
      row.dataset.seriesId = s.id;
      if (current === s.id) row.className = "chosen";
      const open = el("button", "Review", "open");
      open.type = "button";
      open.addEventListener("click", () => openSeries(s.id));
      const action = el("td");
      action.append(open);
      row.append(el("td", s.id), el("td", s.project || "–"), el("td", s.modality || "–"),
        el("td", s.patient_pseudonym || "–"), el("td", s.image_count),
        el("td", new Date(s.updated_at).toLocaleString()), action);
      return row;
    });
    document.querySelector("#waiting tbody").replaceChildren(...rows);
    document.getElementById("none-waiting").hidden = rows.length > 0;
    document.getElementById("waiting").hidden = rows.length === 0;
    document.getElementById("fetch-error").textContent = "";
  } catch (error) {
    if (error.status !== 401 && signedInAs(started)) {
      document.getElementById("fetch-error").textContent = "Could not load: " + error.message;
    }
  }
}

async function openSeries(seriesId) {
  const started = signIn;
  const opened = ++opening;
  current = seriesId;
  const detail = await api("/api/v1/review/" + seriesId);
  if (stale(started, opened)) return;
  document.getElementById("detail").hidden = false;
  document.getElementById("detail").dataset.seriesId = seriesId;
  document.getElementById("detail-id").textContent = seriesId;
  document.getElementById("detail-status").textContent = detail.series.status;
  const why = detail.events.filter((e) => e.kind === "review").pop();
  document.getElementById("detail-why").textContent = why ? why.detail : "";
  document.getElementById("decision").textContent = "";
  document.getElementById("decision-error").textContent = "";
  const waiting = detail.series.status === "REVIEW";
  document.getElementById("approve").disabled = !waiting;
  document.querySelector("#reject-form button").disabled = !waiting;
  const choice = document.getElementById("image-choice");
  choice.replaceChildren(...detail.images.map((image) => {
    const option = el("option", image.id);
    option.value = image.id;
    return option;
  }));
  document.querySelector("#attributes tbody").replaceChildren();
  await showFrames(seriesId, detail.images, started, opened);
  if (detail.images.length && !stale(started, opened)) {
    await showAttributes(seriesId, detail.images[0].id, started, opened);
  }
  await loadWaiting();
}

async function showFrames(seriesId, images, started, opened) {
  const box = document.getElementById("frames");
  box.replaceChildren();
  let shown = 0;
  for (const image of images) {
    for (let frame = 0; frame < image.frames && shown < MAX_FRAMES_SHOWN; frame++, shown++) {
      const figure = el("figure");
      const picture = el("img");
      picture.alt = "image " + image.id + " frame " + (frame + 1);
      picture.dataset.imageId = image.id;
      figure.append(picture, el("figcaption", "image " + image.id + " · frame " + (frame + 1)));
      box.append(figure);
      if (stale(started, opened)) return;
      try {
        picture.src = await apiImage("/api/v1/review/" + seriesId + "/images/" + image.id +
                                     "/frames/" + frame + ".png");
      } catch (error) {
        figure.append(el("span", "no picture: " + error.message, "error"));
      }
    }
  }
  const total = images.reduce((n, image) => n + image.frames, 0);
  if (total > shown) box.append(el("p", (total - shown) + " more frame(s) not shown", "muted"));
}

async function showAttributes(seriesId, imageId, started = signIn, opened = opening) {
  let rows;
  try {
    rows = await api("/api/v1/review/" + seriesId + "/images/" + imageId + "/attributes");
  } catch (error) {
    if (error.status !== 401 && !stale(started, opened)) {
      document.getElementById("fetch-error").textContent = "Could not load: " + error.message;
    }
    return;
  }
  if (stale(started, opened)) return;
  document.querySelector("#attributes tbody").replaceChildren(...rows.map((a) => {
    const row = el("tr");
    row.dataset.path = a.path;
    const action = el("td", a.action, "action-" + a.action.split(" ")[0]);
    row.append(el("td", a.path), el("td", a.keyword), el("td", a.vr), el("td", a.value),
      action, el("td", a.before === null ? "" : a.before, "admin-only"));
    return row;
  }));
}

async function decide(path, body) {
  const seriesId = current;
  document.getElementById("decision-error").textContent = "";
  try {
    const answer = await api("/api/v1/review/" + seriesId + "/" + path,
      { method: "POST", body: body ? JSON.stringify(body) : undefined });
    document.getElementById("decision").textContent =
      "Series " + seriesId + " " + answer.decision + ": now " + answer.status + ".";
    document.getElementById("detail-status").textContent = answer.status;
    document.getElementById("approve").disabled = true;
    document.querySelector("#reject-form button").disabled = true;
  } catch (error) {
    if (error.status !== 401) {
      document.getElementById("decision-error").textContent = error.message;
    }
  }
  await loadWaiting();
}

document.addEventListener("DOMContentLoaded", () => {
  document.getElementById("approve").addEventListener("click", () => decide("approve"));
  document.getElementById("reject-form").addEventListener("submit", (event) => {
    event.preventDefault();
    decide("reject", { reason: document.getElementById("reason").value.trim() });
  });
  document.getElementById("image-choice").addEventListener("change", (event) => {
    showAttributes(current, event.target.value);
  });
  setUpSignIn(["reviewer", "admin"], async (role, started) => {
    signIn = started;
    await loadWaiting();
  }, clear);
});
