// The dashboard reads the JSON API with the bearer token kept in this tab's session
// storage. Every value goes into the page as text (textContent), never as markup.
"use strict";

const TOKEN_KEY = "relay-token";
const RANKS = { reader: 1, operator: 2, admin: 3 };
const STATUSES = ["NEW", "PROCESSING", "DONEPROCESSING", "SENT", "DONE", "FAILED", "QUARANTINED",
                  "HELD", "IGNORED"];
let role = null;
let timer = null;

function el(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  if (className) node.className = className;
  return node;
}

async function api(path, options = {}) {
  // Signed in through the identity provider, the session cookie goes along instead of a
  // token; the header tells the api the request comes from this page.
  const headers = { "X-Relay-Dashboard": "1" };
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (token) headers.Authorization = "Bearer " + token;
  const response = await fetch(path, { ...options, headers, credentials: "same-origin" });
  if (response.status === 401) {
    signOut(token ? "The token is not valid." : "");
    throw new Error("401");
  }
  const body = await response.json();
  if (!response.ok) throw new Error(body.detail || response.statusText);
  return body;
}

function signOut(message) {
  if (!sessionStorage.getItem(TOKEN_KEY) && role) {
    fetch("/dashboard/logout", { method: "POST", headers: { "X-Relay-Dashboard": "1" },
                                 credentials: "same-origin" });
  }
  sessionStorage.removeItem(TOKEN_KEY);
  role = null;
  clearInterval(timer);
  document.getElementById("board").hidden = true;
  document.getElementById("whoami").hidden = true;
  document.getElementById("signout").hidden = true;
  document.getElementById("login").hidden = false;
  document.getElementById("login-error").textContent = message || "";
}

async function signIn() {
  let me;
  try {
    me = await api("/api/v1/me");
  } catch (error) {
    return;
  }
  role = me.role;
  document.getElementById("login").hidden = true;
  document.getElementById("board").hidden = false;
  const who = document.getElementById("whoami");
  who.textContent = me.kind === "user" ? "signed in as " + me.name + " (" + role + ")"
                                       : "signed in as " + role;
  who.hidden = false;
  document.getElementById("signout").hidden = false;
  await refresh();
  const seconds = Number(document.body.dataset.refreshSeconds) || 5;
  timer = setInterval(refresh, seconds * 1000);
}

function renderCounts(stats) {
  const cards = document.getElementById("counts");
  cards.replaceChildren(...STATUSES.map((status) => {
    const card = el("div", null, "card status-" + status);
    card.dataset.status = status;
    card.append(el("b", stats.series_by_status[status] || 0), el("span", status));
    return card;
  }));
  const queues = stats.queues
    ? Object.entries(stats.queues).map(([q, n]) => q + " " + n).join(", ")
    : "unknown";
  const hour = stats.last_hour;
  document.getElementById("summary").textContent =
    stats.in_flight + " in flight · last hour: " + hour.series_done + " series done, " +
    hour.images_done + " images, " + hour.series_failed + " failed · queues: " + queues;
}

function progressBar(series) {
  const bar = el("div", null, "bar");
  if (series.status === "FAILED" || series.status === "QUARANTINED") bar.classList.add("failed");
  bar.setAttribute("role", "progressbar");
  bar.setAttribute("aria-valuenow", Math.round(series.progress * 100));
  const fill = el("div");
  fill.style.width = Math.round(series.progress * 100) + "%";
  bar.append(fill);
  return bar;
}

function renderSeries(page) {
  const rows = page.items.map((s) => {
    const row = el("tr");
    row.dataset.seriesId = s.id;
    const status = el("td", s.status, "status-" + s.status);
    const bar = el("td");
    bar.append(progressBar(s));
    row.append(el("td", s.id), el("td", s.project || "–"), el("td", s.modality || "–"),
      el("td", s.patient_pseudonym || "–"),
      status, el("td", s.image_count), bar, el("td", new Date(s.updated_at).toLocaleString()));
    return row;
  });
  document.querySelector("#series tbody").replaceChildren(...rows);
}

function retryButton(failure) {
  const button = el("button", "Retry", "retry");
  button.type = "button";
  button.addEventListener("click", async () => {
    button.disabled = true;
    try {
      await api("/api/v1/series/" + failure.series_id + "/retry", { method: "POST" });
      button.textContent = "Queued";
    } catch (error) {
      button.textContent = "Retry failed: " + error.message;
    }
    refresh();
  });
  return button;
}

function renderFailures(page) {
  const rows = page.items.map((f) => {
    const row = el("tr");
    row.dataset.seriesId = f.series_id;
    const reason = el("td", f.error || (f.failed_images.length + " image(s) failed"));
    const list = el("ul", null, "reasons");
    for (const image of f.failed_images.slice(0, 5)) {
      list.append(el("li", "image " + image.image_id + ": " + (image.reason || image.status)));
    }
    if (f.failed_images.length) reason.append(list);
    const action = el("td");
    const retryable = f.status === "FAILED" && f.stage !== "ingest";
    if (retryable && RANKS[role] >= RANKS.operator) action.append(retryButton(f));
    row.append(el("td", f.series_id), el("td", f.status, "status-" + f.status),
      el("td", f.stage), reason, action);
    return row;
  });
  document.querySelector("#failures tbody").replaceChildren(...rows);
  document.getElementById("no-failures").hidden = rows.length > 0;
  document.getElementById("failures").hidden = rows.length === 0;
}

async function refresh() {
  if (!role) return;
  try {
    const [stats, series, failures] = await Promise.all([
      api("/api/v1/stats"), api("/api/v1/series?limit=50&sort=-id"),
      api("/api/v1/failures?limit=50")]);
    renderCounts(stats);
    renderSeries(series);
    renderFailures(failures);
    document.getElementById("updated").textContent = new Date().toLocaleTimeString();
    document.getElementById("fetch-error").textContent = "";
  } catch (error) {
    document.getElementById("fetch-error").textContent = "Could not refresh: " + error.message;
  }
}

document.addEventListener("DOMContentLoaded", () => {
  document.getElementById("login-form").addEventListener("submit", (event) => {
    event.preventDefault();
    sessionStorage.setItem(TOKEN_KEY, document.getElementById("token").value.trim());
    document.getElementById("token").value = "";
    signIn();
  });
  document.getElementById("signout").addEventListener("click", () => signOut());
  document.getElementById("oidc").hidden = document.body.dataset.oidc !== "on";
  document.getElementById("signin-failed").hidden =
    new URLSearchParams(location.search).get("signin") !== "failed";
  // A token in this tab, or else perhaps a session cookie from the identity provider.
  if (sessionStorage.getItem(TOKEN_KEY) || document.body.dataset.oidc === "on") signIn();
});
