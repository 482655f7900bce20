/*
 * The coach's pages: who is logged in, and the two staff actions (a display
 * name for the wall, forgetting an athlete), sent as JSON with the session's
 * CSRF token through GymStaff (the display's staff.js).
 */
"use strict";

(function () {
  const who = document.getElementById("who");
  const logout = document.getElementById("logout");

  GymStaff.onChange((me) => {
    who.textContent = me.name ? "Logged in as " + me.name : "";
    logout.hidden = !me.name;
  });
  GymStaff.me().catch(() => {});
  logout.addEventListener("click", async () => {
    await GymStaff.logout().catch(() => {});
    location.assign("/login?next=" + encodeURIComponent(location.pathname));
  });

  for (const form of document.querySelectorAll("form[data-action]")) {
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const result = form.querySelector(".result");
      const body = Object.fromEntries(new FormData(form).entries());
      if (form.dataset.confirm && body.confirm !== form.dataset.confirm) {
        result.textContent = "Type the athlete id exactly to confirm.";
        return;
      }
      const button = form.querySelector("button");
      button.disabled = true;
      try {
        await GymStaff.post(form.dataset.action, body);
        result.textContent = "Done.";
        if (form.dataset.done) location.assign(form.dataset.done);
        else if (form.dataset.reload) location.reload();
      } catch (err) {
        result.textContent = err.message;
      } finally {
        button.disabled = false;
      }
    });
  }
})();
