// Signing in on the review pages, over the console's own core (core.js): a token kept in
// this tab, or the session cookie of the hospital's sign-on, which the api accepts only
// with the console's header. Signing out, whoever signs in next, first empties the page:
// nothing the last person saw (an admin's values before de-identification) stays in it.
"use strict";

import {
  TOKEN_KEY, session, showSignedIn, showSignedOut, whenUnauthorised, whoAmI,
} from "./core.js";

let generation = 0;

// Work started for one sign-in that finishes after it ended (a frame still loading)
// checks this and leaves the page alone.
export function signedInAs(started) {
  return started === generation && session.role !== null;
}

// `roles` may use the page; `ready(role, started)` fills it; `clear()` empties it.
export function setUpSignIn(roles, ready, clear) {
  function signOut(message) {
    generation += 1;
    showSignedOut(message);
    clear();
    document.body.classList.remove("admin");
    document.getElementById("board").hidden = true;
  }

  async function signIn() {
    const me = await whoAmI();
    if (me === null) return;
    if (!roles.includes(me.role)) {
      const needed = "This page needs the " + roles.join(" or ") + " role; this sign-in has " +
        me.role + ".";
      // A sign-on session stays: the console may still be this person's to use.
      signOut(needed);
      return;
    }
    generation += 1;
    showSignedIn(me);
    document.body.classList.toggle("admin", me.role === "admin");
    document.getElementById("board").hidden = false;
    await ready(me.role, generation);
  }

  whenUnauthorised(signOut);
  document.getElementById("login-form").addEventListener("submit", (event) => {
    event.preventDefault();
    sessionStorage.setItem(TOKEN_KEY, document.getElementById("token").value.trim());
    document.getElementById("token").value = "";
    signIn();
  });
  document.getElementById("signout").addEventListener("click", () => signOut());
  const oidc = document.body.dataset.oidc === "on";
  document.getElementById("oidc").hidden = !oidc;
  document.getElementById("signin-failed").hidden =
    new URLSearchParams(location.search).get("signin") !== "failed";
  // A token in this tab, or else perhaps a session cookie from the identity provider.
  if (sessionStorage.getItem(TOKEN_KEY) || oidc) signIn();
}
