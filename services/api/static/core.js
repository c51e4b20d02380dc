// What every page of the console shares: the API with the tab's token, the caller's
// role, building nodes as text (never markup), the confirmation dialog and the live
// region that tells a screen reader what an action did.
"use strict";

export const TOKEN_KEY = "relay-token";
export const RANKS = { reader: 1, operator: 2, admin: 3 };
export const session = { role: null, name: null, kind: null };

export function may(role) {
  return session.role !== null && RANKS[session.role] >= RANKS[role];
}

export function el(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  if (className) node.className = className;
  return node;
}

export function link(href, text, label) {
  const a = el("a", text);
  a.href = href;
  if (label) a.setAttribute("aria-label", label);
  return a;
}

export function button(text, className, onClick, label) {
  const node = el("button", text, className);
  node.type = "button";
  if (label) node.setAttribute("aria-label", label);
  node.addEventListener("click", onClick);
  return node;
}

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

let onUnauthorised = () => {};
export function whenUnauthorised(handler) { onUnauthorised = handler; }

// A signed-in session ends when its person has done nothing for a while; the page's own
// refreshes must not keep it alive, so requests say whether someone used the page lately.
const ACTIVE_WITHIN_MS = 60 * 1000;
let lastActivity = Date.now();  // loading the page is someone's doing
for (const kind of ["pointerdown", "keydown", "wheel", "touchstart"]) {
  window.addEventListener(kind, () => { lastActivity = Date.now(); },
                          { capture: true, passive: true });
}

// Signed in through the identity provider, the session cookie goes along instead of a
// token; the header tells the api the request comes from this page (a cookie alone
// changes nothing there).
function headers(options) {
  const sent = { "X-Relay-Dashboard": "1" };
  if (Date.now() - lastActivity < ACTIVE_WITHIN_MS) sent["X-Relay-Activity"] = "1";
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (token) sent.Authorization = "Bearer " + token;
  if (options.body) sent["Content-Type"] = "application/json";
  return sent;
}

async function send(path, options) {
  const response = await fetch(path, { ...options, headers: headers(options),
                                       credentials: "same-origin" });
  if (response.status === 401) {
    onUnauthorised(sessionStorage.getItem(TOKEN_KEY) ? "The token is not valid."
      : session.role ? "The session has ended (a time without activity, or its whole " +
                       "lifetime): sign in again." : "");
    throw new ApiError(401, "not signed in");
  }
  return response;
}

export async function api(path, options = {}) {
  const response = await send(path, options);
  const body = await response.json();
  if (!response.ok) throw new ApiError(response.status, detailOf(body, response));
  return body;
}

function detailOf(body, response) {
  if (typeof body.detail === "string") return body.detail;
  if (body.errors || body.detail) return JSON.stringify(body.errors || body.detail);
  return response.statusText;
}

// What the API serves that is not JSON (a PNG, an export), as it came.
export async function apiBlob(path) {
  const response = await send(path, {});
  if (!response.ok) {
    const body = await response.json().catch(() => ({}));
    throw new ApiError(response.status, detailOf(body, response));
  }
  return response.blob();
}

// A picture the API serves as an object URL the page's policy allows (blob:).
export async function apiImage(path) {
  return URL.createObjectURL(await apiBlob(path));
}

// What every page does when someone signs in or out: the session's fields, the header's
// "signed in as", the sign-out button and the sign-in form. A sign-on session is ended at
// the api too (a token simply leaves the tab).
// Who the token or the sign-on session is, or null (unauthorised: the page's sign-out
// handler has shown why).
export async function whoAmI() {
  try {
    return await api("/api/v1/me");
  } catch (error) {
    return null;
  }
}

export function showSignedIn(me) {
  session.role = me.role;
  session.name = me.name;
  session.kind = me.kind;
  document.getElementById("login").hidden = true;
  const who = document.getElementById("whoami");
  who.textContent = me.kind === "user" ? "signed in as " + me.name + " (" + me.role + ")"
    : "signed in as " + me.role;
  who.hidden = false;
  document.getElementById("signout").hidden = false;
}

export function showSignedOut(message) {
  if (!sessionStorage.getItem(TOKEN_KEY) && session.role) {
    fetch("/dashboard/logout", { method: "POST", headers: { "X-Relay-Dashboard": "1" },
                                 credentials: "same-origin" });
  }
  sessionStorage.removeItem(TOKEN_KEY);
  session.role = null;
  session.name = null;
  session.kind = null;
  document.getElementById("whoami").hidden = true;
  document.getElementById("signout").hidden = true;
  document.getElementById("login").hidden = false;
  document.getElementById("login-error").textContent = message || "";
}

export function announce(message, isError = false) {
  const region = document.getElementById("announce");
  region.classList.toggle("error", isError);
  // Emptied first, so the same words said twice are read twice.
  region.textContent = "";
  setTimeout(() => { region.textContent = message; }, 50);
}

export function when(iso) {
  return iso ? new Date(iso).toLocaleString() : "–";
}

export function timeEl(iso) {
  const node = el("time", when(iso));
  if (iso) node.dateTime = iso;
  return node;
}

// Replaces `container`'s children and keeps the keyboard focus where it was: a
// refresh must not throw a keyboard user back to the top of the page.
export function replaceKeepingFocus(container, nodes) {
  const active = document.activeElement;
  const key = active && container.contains(active) ? active.dataset.focusKey : undefined;
  container.replaceChildren(...nodes);
  if (key) {
    const again = container.querySelector(`[data-focus-key="${CSS.escape(key)}"]`);
    if (again) again.focus();
  }
}

// Asks before an action: resolves true when confirmed, false when cancelled (Escape too).
export function confirmAction({ title, text, confirmLabel }) {
  const dialog = document.getElementById("confirm-dialog");
  const returnTo = document.activeElement;
  document.getElementById("confirm-title").textContent = title;
  document.getElementById("confirm-text").textContent = text;
  const ok = document.getElementById("confirm-ok");
  ok.textContent = confirmLabel;
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => {
      if (returnTo && returnTo.isConnected) returnTo.focus();
      resolve(dialog.returnValue === "confirm");
    }, { once: true });
    dialog.returnValue = "";
    dialog.showModal();
    document.getElementById("confirm-cancel").focus();
  });
}

// Runs an action the caller confirmed, says what came of it and refreshes the view.
export async function act({ title, text, confirmLabel, path, done, refresh }) {
  if (!await confirmAction({ title, text, confirmLabel })) {
    announce("Cancelled: nothing was changed.");
    return false;
  }
  try {
    const answer = await api(path, { method: "POST" });
    announce(done(answer));
    return true;
  } catch (error) {
    if (error.status !== 401) announce(`${title} failed: ${error.message}`, true);
    return false;
  } finally {
    if (refresh) await refresh().catch(() => {});
    keepFocusOnThePage();
  }
}

// When an action removed the control that had the focus, the page's heading takes it,
// rather than the focus falling back to the top of the document.
export function keepFocusOnThePage() {
  if (document.activeElement && document.activeElement !== document.body) return;
  const heading = document.querySelector("main > section[data-page]:not([hidden]) h2");
  if (heading) heading.focus();
}
