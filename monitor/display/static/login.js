/*
 * The staff login page: /login?next=/some/page. After logging in it goes to
 * `next` when that is a path on this site, else to the wall.
 */
"use strict";

(function () {
  const form = document.getElementById("login-form");
  const error = document.getElementById("login-error");
  const who = document.getElementById("who");

  function nextPath() {
    const next = new URLSearchParams(location.search).get("next") || "/";
    // Only a path here: never "//elsewhere" or "https://elsewhere".
    return /^\/(?![\/\\])/.test(next) ? next : "/";
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.hidden = true;
    const button = form.querySelector("button");
    button.disabled = true;
    try {
      await GymStaff.login(form.elements.name.value.trim(), form.elements.pin.value);
      location.assign(nextPath());
    } catch (err) {
      error.textContent = err.message;
      error.hidden = false;
      form.elements.pin.value = "";
    } finally {
      button.disabled = false;
    }
  });

  GymStaff.me().then((me) => {
    if (me.name) {
      who.textContent = "Logged in as " + me.name + ".";
      who.hidden = false;
    }
  }, () => {});
})();
