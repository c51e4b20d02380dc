// Learned region rules: an admin accepts, edits or refuses what the text gate proposed.
// Values go into the page as text only; the token stays in this tab's session storage.
"use strict";

const TOKEN_KEY = "relay-token";

function el(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  if (className) node.className = className;
  return node;
}

async function call(path, options = {}) {
  const headers = { Authorization: "Bearer " + sessionStorage.getItem(TOKEN_KEY),
                    ...(options.body ? { "Content-Type": "application/json" } : {}) };
  const response = await fetch(path, { ...options, headers });
  if (response.status === 401) { signOut("The token is not valid."); throw new Error("401"); }
  return response;
}

async function api(path, options = {}) {
  const response = await call(path, options);
  const body = await response.json();
  if (!response.ok) throw new Error(typeof body.detail === "string" ? body.detail
                                     : JSON.stringify(body.errors || body.detail));
  return body;
}

function signOut(message) {
  sessionStorage.removeItem(TOKEN_KEY);
  document.getElementById("board").hidden = true;
  document.getElementById("whoami").hidden = true;
  document.getElementById("signout").hidden = true;
  document.getElementById("login").hidden = false;
  document.getElementById("login-error").textContent = message || "";
}

async function signIn() {
  let role;
  try {
    role = (await api("/api/v1/me")).role;
  } catch (error) {
    return;
  }
  if (role !== "admin") { signOut("This page needs an admin token."); return; }
  document.getElementById("login").hidden = true;
  document.getElementById("board").hidden = false;
  const who = document.getElementById("whoami");
  who.textContent = "signed in as " + role;
  who.hidden = false;
  document.getElementById("signout").hidden = false;
  await load();
}

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

async function act(rule, path, method, body) {
  document.getElementById("error").textContent = "";
  try {
    const answer = await api("/api/v1/pixel-rules/" + rule.id + path,
      { method, body: body ? JSON.stringify(body) : undefined });
    document.getElementById("message").textContent =
      "Rule " + answer.id + " is " + answer.state + ".";
  } catch (error) {
    document.getElementById("error").textContent = error.message;
  }
  await load();
}

async function load() {
  const rules = await api("/api/v1/pixel-rules");
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
  const response = await call("/api/v1/pixel-rules/export");
  const link = document.getElementById("download");
  link.href = URL.createObjectURL(await response.blob());
  link.hidden = false;
}

document.addEventListener("DOMContentLoaded", () => {
  document.getElementById("login-form").addEventListener("submit", (event) => {
    event.preventDefault();
    sessionStorage.setItem(TOKEN_KEY, document.getElementById("token").value.trim());
    document.getElementById("token").value = "";
    signIn();
  });
  document.getElementById("signout").addEventListener("click", () => signOut());
  document.getElementById("export").addEventListener("click", exportRules);
  if (sessionStorage.getItem(TOKEN_KEY)) signIn();
});
