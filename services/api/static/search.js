// Finding series: the filters live in the address (#/series?status=FAILED&page=2), so a
// search can be bookmarked, shared and gone back to.
"use strict";

import { api, el, replaceKeepingFocus } from "./core.js";
import { seriesRow } from "./overview.js";

const PAGE_SIZE = 25;
const FIELDS = ["status", "project", "modality", "patient_pseudonym", "from", "to"];
let current = new URLSearchParams();

function form() {
  return document.getElementById("search-form");
}

function fillForm(params) {
  for (const name of FIELDS) form().elements[name].value = params.get(name) || "";
}

function nextDay(day) {
  const date = new Date(day + "T00:00:00Z");
  date.setUTCDate(date.getUTCDate() + 1);
  return date.toISOString().slice(0, 10);
}

// The API's own query: dates are whole UTC days, `to` included.
export function apiQuery(params) {
  const query = new URLSearchParams({ limit: PAGE_SIZE, sort: "-id" });
  for (const name of ["status", "project", "modality", "patient_pseudonym"]) {
    const value = (params.get(name) || "").trim();
    if (value) query.set(name, value);
  }
  if (params.get("from")) query.set("created_from", params.get("from"));
  if (params.get("to")) query.set("created_to", nextDay(params.get("to")));
  const page = Math.max(1, Number(params.get("page")) || 1);
  query.set("offset", (page - 1) * PAGE_SIZE);
  return query;
}

function go(params) {
  const text = params.toString();
  location.hash = "#/series" + (text ? "?" + text : "");
}

function pageButton(text, page, enabled) {
  const node = el("button", text);
  node.type = "button";
  node.disabled = !enabled;
  node.dataset.focusKey = "page-" + text;
  node.addEventListener("click", () => {
    const params = new URLSearchParams(current);
    params.set("page", page);
    go(params);
  });
  return node;
}

function renderPage(page) {
  const first = page.total ? page.offset + 1 : 0;
  const last = page.offset + page.items.length;
  document.getElementById("search-count").textContent = page.total
    ? `Series ${first}–${last} of ${page.total}` : "No series match these filters.";
  replaceKeepingFocus(document.querySelector("#search-results tbody"),
                      page.items.map(seriesRow));
  document.getElementById("search-results").hidden = page.total === 0;
  const number = Math.floor(page.offset / PAGE_SIZE) + 1;
  document.getElementById("search-pages").hidden = page.total <= PAGE_SIZE && number === 1;
  replaceKeepingFocus(document.getElementById("search-pages"), [
    pageButton("Previous", number - 1, number > 1),
    pageButton("Next", number + 1, last < page.total)]);
}

async function loadProjects() {
  const list = document.getElementById("project-names");
  if (list.childElementCount) return;
  const projects = await api("/api/v1/projects");
  list.replaceChildren(...projects.names.map((name) => {
    const option = el("option");
    option.value = name;
    return option;
  }));
}

export async function refresh() {
  const problem = document.getElementById("search-error");
  try {
    renderPage(await api("/api/v1/series?" + apiQuery(current)));
    problem.textContent = "";
  } catch (error) {
    if (error.status !== 422) throw error;
    problem.textContent = "These filters are not valid: check the dates and the lengths.";
  }
}

async function show(params) {
  current = params;
  fillForm(params);
  // Which filters the form shows now: a test waits for it after a change of address.
  document.getElementById("search-view").dataset.query = params.toString();
  await Promise.all([refresh(), loadProjects()]);
}

export function wire() {
  form().addEventListener("submit", (event) => {
    event.preventDefault();
    const params = new URLSearchParams();
    for (const name of FIELDS) {
      const value = form().elements[name].value.trim();
      if (value) params.set(name, value);
    }
    go(params);
  });
  document.getElementById("search-clear").addEventListener("click", () => go(new URLSearchParams()));
}

export const search = { section: "search-view", title: "Series", show, refresh };
