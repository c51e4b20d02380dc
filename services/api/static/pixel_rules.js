// Learned region rules: an admin accepts, edits or refuses what the text gate proposed
// (signin.js signs in, core.js calls the API). Values go into the page as text only.
"use strict";

import { api, apiBlob, el } from "./core.js";
import { setUpSignIn, signedInAs } from "./signin.js";

let signIn = 0;

function boxesText(boxes) {
  return boxes.map((b) => b.join(", ")).join("; ");
}

function parseBoxes(text) {
  return text.split(";").map((part) => part.trim()).filter(Boolean)
    .map((part) => part.split(",").map((v) => Number(v.trim())));
}

function button(label, className, action) {
  const node = el("button", label, className);
  node.type = "button";
  node.addEventListener("click", action);
  return node;
}

function clear() {
  document.querySelector("#rules tbody").replaceChildren();
  const link = document.getElementById("download");
  link.hidden = true;
  link.removeAttribute("href");
  for (const id of ["message", "error"]) document.getElementById(id).textContent = "";
}

async function act(rule, path, method, body) {
  document.getElementById("error").textContent = "";
  try {
    const answer = await api("/api/v1/pixel-rules/" + rule.id + path,
      { method, body: body ? JSON.stringify(body) : undefined });
    document.getElementById("message").textContent =
      "Rule " + answer.id + " is " + answer.state + ".";
  } catch (error) {
    if (error.status !== 401) document.getElementById("error").textContent = error.message;
  }
  await load();
}

async function load() {
  const started = signIn;
  let rules;
  try {
    rules = await api("/api/v1/pixel-rules");
  } catch (error) {
    if (error.status !== 401 && signedInAs(started)) {
      document.getElementById("error").textContent = "Could not load: " + error.message;
    }
    return;
  }
  if (!signedInAs(started)) return;
  document.querySelector("#rules tbody").replaceChildren(...rules.map((rule) => {
    const row = el("tr");
    row.dataset.ruleId = rule.id;
    const boxes = el("input", null, "boxes");
    boxes.value = boxesText(rule.boxes);
    boxes.size = 40;
    const covers = el("input", null, "covers");
    covers.type = "checkbox";
    covers.checked = rule.covers_text;
    const edit = () => ({ boxes: parseBoxes(boxes.value), covers_text: covers.checked });
    const actions = el("td");
    if (rule.state !== "REFUSED") {
      boxes.disabled = false;
      actions.append(button("Save", "save", () => act(rule, "", "PUT", edit())));
      if (rule.state === "PROPOSED") {
        actions.append(button("Accept", "accept", () => act(rule, "/accept", "POST", edit())));
      }
      actions.append(button("Refuse", "refuse", () => act(rule, "/refuse", "POST")));
    } else {
      boxes.disabled = true;
      covers.disabled = true;
    }
    const boxCell = el("td");
    boxCell.append(boxes);
    const coverCell = el("td");
    coverCell.append(covers);
    row.append(el("td", rule.id), el("td", rule.manufacturer), el("td", rule.model || "–"),
      el("td", rule.columns + " × " + rule.rows), el("td", rule.images_seen),
      el("td", rule.state, "state"), boxCell, coverCell, actions);
    return row;
  }));
}

async function exportRules() {
  const started = signIn;
  try {
    const exported = await apiBlob("/api/v1/pixel-rules/export");
    if (!signedInAs(started)) return;
    const link = document.getElementById("download");
    link.href = URL.createObjectURL(exported);
    link.hidden = false;
  } catch (error) {
    if (error.status !== 401) document.getElementById("error").textContent = error.message;
  }
}

document.addEventListener("DOMContentLoaded", () => {
  document.getElementById("export").addEventListener("click", exportRules);
  setUpSignIn(["admin"], async (role, started) => {
    signIn = started;
    await load();
  }, clear);
});
