/*
 * Staff identity for the display's pages: who is logged in, and sending
 * state-changing requests with the session's CSRF token.
 *
 *   await GymStaff.me();                       // {name, csrf, expires_in_s} or {name: null}
 *   await GymStaff.login("Alice", "493817");   // throws Error("wrong name or PIN")
 *   await GymStaff.post("/api/ack", {station, id});
 *   await GymStaff.logout();
 *
 * The session itself is an HttpOnly cookie this script cannot read; the CSRF
 * token comes from /api/me (same origin only) and goes back in X-CSRF-Token.
 * Used by the wall (app.js) and the login page (login.js), and by any page
 * that later sits behind the same login.
 */
"use strict";

window.GymStaff = (function () {
  let current = { name: null };
  const listeners = [];

  function changed() { for (const fn of listeners) fn(current); }

  async function errorOf(reply) {
    let why = "HTTP " + reply.status;
    try { why = (await reply.json()).error || why; } catch (e) { /* keep the status */ }
    const err = new Error(why);
    err.status = reply.status;
    return err;
  }

  async function me() {
    const reply = await fetch("/api/me", { cache: "no-store", credentials: "same-origin" });
    if (!reply.ok) throw await errorOf(reply);
    current = await reply.json();
    changed();
    return current;
  }

  async function post(url, body) {
    const reply = await fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": current.csrf || "" },
      body: JSON.stringify(body || {}),
    });
    if (reply.status === 401 && current.name) { current = { name: null }; changed(); }
    if (!reply.ok) throw await errorOf(reply);
    return reply.json();
  }

  async function login(name, pin) {
    const reply = await post("/api/login", { name, pin });
    current = { name: reply.name, csrf: reply.csrf, expires_in_s: reply.expires_in_s };
    changed();
    return current;
  }

  async function logout() {
    try { await post("/api/logout", {}); } finally { current = { name: null }; changed(); }
  }

  return {
    me, login, logout, post,
    get name() { return current.name; },
    onChange(fn) { listeners.push(fn); },
  };
})();
