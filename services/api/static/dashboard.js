// The console: sign-in with a token, then a small router over the address's hash.
// Each page is a module exporting {section, title, show(params, match), refresh()} and
// one line in ROUTES below; its markup is one <section> of the page's template.
"use strict";

import {
  ApiError, TOKEN_KEY, session, showSignedIn, showSignedOut, whenUnauthorised, whoAmI,
} from "./core.js";
import { overview } from "./overview.js";
import { search, wire as wireSearch } from "./search.js";
import { seriesPage, wire as wireSeries } from "./series.js";

const ROUTES = [
  { pattern: /^\/series\/(\d+)$/, page: seriesPage },
  { pattern: /^\/series$/, page: search },
  { pattern: /^\/?$/, page: overview },
];
let timer = null;
let active = null;

function resolve() {
  const [path, query] = location.hash.replace(/^#/, "").split("?");
  for (const route of ROUTES) {
    const match = path.match(route.pattern);
    if (match) return { page: route.page, match, params: new URLSearchParams(query || "") };
  }
  return { page: overview, match: [], params: new URLSearchParams() };
}

function showSection(page) {
  for (const section of document.querySelectorAll("main > section[data-page]")) {
    section.hidden = section.id !== page.section;
  }
  for (const a of document.querySelectorAll("#console-nav a")) {
    if (a.dataset.section === page.section) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  document.title = `${page.title} · DICOM Relay`;
}

async function route() {
  if (!session.role) return;
  const { page, match, params } = resolve();
  const changed = active !== page;
  active = page;
  showSection(page);
  await guarded(() => page.show(params, match));
  if (changed) {
    // A new page: its heading takes the focus, so a screen reader starts reading there.
    const heading = document.querySelector(`#${page.section} h2`);
    if (heading) heading.focus();
  }
}

async function guarded(work) {
  const problem = document.getElementById("fetch-error");
  try {
    await work();
    document.getElementById("updated").textContent = new Date().toLocaleTimeString();
    problem.textContent = "";
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) return;
    problem.textContent = "Could not refresh: " + error.message;
  }
}

function signOut(message) {
  showSignedOut(message);
  active = null;
  clearInterval(timer);
  document.getElementById("board-main").hidden = true;
  document.getElementById("console-nav").hidden = true;
}

async function signIn() {
  const me = await whoAmI();
  if (me === null) return;
  showSignedIn(me);
  document.body.dataset.role = session.role;
  document.getElementById("board-main").hidden = false;
  document.getElementById("console-nav").hidden = false;
  await route();
  const seconds = Number(document.body.dataset.refreshSeconds) || 5;
  timer = setInterval(() => {
    if (active && !document.querySelector("dialog[open]")) guarded(active.refresh);
  }, seconds * 1000);
}

document.addEventListener("DOMContentLoaded", () => {
  whenUnauthorised(signOut);
  document.getElementById("login-form").addEventListener("submit", (event) => {
    event.preventDefault();
    sessionStorage.setItem(TOKEN_KEY, document.getElementById("token").value.trim());
    document.getElementById("token").value = "";
    signIn();
  });
  document.getElementById("signout").addEventListener("click", () => signOut());
  // The skip link moves the focus only: its target is no page of the router.
  document.querySelector(".skip").addEventListener("click", (event) => {
    event.preventDefault();
    document.getElementById("board-main").focus();
  });
  window.addEventListener("hashchange", route);
  wireSearch();
  wireSeries();
  document.getElementById("oidc").hidden = document.body.dataset.oidc !== "on";
  document.getElementById("signin-failed").hidden =
    new URLSearchParams(location.search).get("signin") !== "failed";
  // A token in this tab, or else perhaps a session cookie from the identity provider.
  if (sessionStorage.getItem(TOKEN_KEY) || document.body.dataset.oidc === "on") signIn();
});
