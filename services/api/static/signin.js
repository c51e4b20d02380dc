// What the review pages share: signing in with a token kept in this tab's session
// storage, calling the JSON API with it, and building nodes whose values are text only.
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

// Signs in with the form's token; `roles` may use the page, `ready(role)` fills it.
function setUpSignIn(roles, ready) {
  async function signIn() {
    let role;
    try {
      role = (await api("/api/v1/me")).role;
    } catch (error) {
      return;
    }
    if (!roles.includes(role)) {
      signOut("This page needs a " + roles.join(" or ") + " token; this one is " + role + ".");
      return;
    }
    document.getElementById("login").hidden = true;
    document.getElementById("board").hidden = false;
    const who = document.getElementById("whoami");
    who.textContent = "signed in as " + role;
    who.hidden = false;
    document.getElementById("signout").hidden = false;
    await ready(role);
  }
  document.getElementById("login-form").addEventListener("submit", (event) => {
    event.preventDefault();
    sessionStorage.setItem(TOKEN_KEY, document.getElementById("token").value.trim());
    document.getElementById("token").value = "";
    signIn();
  });
  document.getElementById("signout").addEventListener("click", () => signOut());
  if (sessionStorage.getItem(TOKEN_KEY)) signIn();
}
