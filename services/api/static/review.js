// The review page (signin.js signs in and calls the API). Every value goes into the page
// as text, never as markup; frames are fetched with the token and shown as blob: pictures.
"use strict";

const MAX_FRAMES_SHOWN = 64;
let current = null;

async function loadWaiting() {
  try {
    const waiting = await api("/api/v1/review");
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
    document.getElementById("fetch-error").textContent = "Could not load: " + error.message;
  }
}

async function openSeries(seriesId) {
  current = seriesId;
  const detail = await api("/api/v1/review/" + seriesId);
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
  await showFrames(seriesId, detail.images);
  if (detail.images.length) await showAttributes(seriesId, detail.images[0].id);
  await loadWaiting();
}

async function showFrames(seriesId, images) {
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
      const response = await call("/api/v1/review/" + seriesId + "/images/" + image.id +
                                  "/frames/" + frame + ".png");
      if (response.ok) picture.src = URL.createObjectURL(await response.blob());
      else figure.append(el("span", "no picture", "error"));
    }
  }
  const total = images.reduce((n, image) => n + image.frames, 0);
  if (total > shown) box.append(el("p", (total - shown) + " more frame(s) not shown", "muted"));
}

async function showAttributes(seriesId, imageId) {
  const rows = await api("/api/v1/review/" + seriesId + "/images/" + imageId + "/attributes");
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
    document.getElementById("decision-error").textContent = error.message;
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
  setUpSignIn(["reviewer", "admin"], async (role) => {
    document.body.classList.toggle("admin", role === "admin");
    await loadWaiting();
  });
});
