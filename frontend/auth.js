// Log-in and sign-up forms post JSON to the API, then go on to the next page.
import { api } from "./api.js";

function safeNext(raw) {
  return raw && raw.startsWith("/") && !raw.startsWith("//") ? raw : "/dashboard";
}

export function initAuthForms() {
  const form = document.querySelector("form[data-auth]");
  if (!form) return;
  if (new URLSearchParams(window.location.search).get("reset") === "1") {
    form.querySelector(".form-error").insertAdjacentHTML("beforebegin", '<p class="form-ok" role="status">Your password was changed. Log in with the new one.</p>');
  }
  const error = form.querySelector(".form-error");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.textContent = "";
    const data = Object.fromEntries(new FormData(form).entries());
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    try {
      await api("POST", `/api/v1/auth/${form.dataset.auth}`, { json: data });
      window.location.assign(safeNext(new URLSearchParams(window.location.search).get("next")));
    } catch (exc) {
      error.textContent = exc.message;
      button.disabled = false;
    }
  });
}

/** "Forgot password?": ask for a link; then choose a new password with the link's token. */
export function initPasswordReset() {
  const form = document.querySelector("form[data-reset]");
  if (!form) return;
  const error = form.querySelector(".form-error");
  // the token travels in the link's fragment, so it never reaches a server log
  const token = new URLSearchParams(window.location.hash.slice(1)).get("token") || "";
  if (form.dataset.reset === "reset" && !token) {
    error.textContent = "This page needs the link from the reset mail. Ask for a new link below.";
  }
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.textContent = "";
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    try {
      if (form.dataset.reset === "forgot") {
        const answer = await api("POST", "/api/v1/auth/password-reset", { json: { email: form.elements.email.value.trim() } });
        const done = document.querySelector(".form-done");
        done.textContent = answer.message;
        done.hidden = false;
        form.hidden = true;
      } else {
        await api("POST", "/api/v1/auth/password-reset/confirm", { json: { token, password: form.elements.password.value } });
        history.replaceState(null, "", window.location.pathname); // the spent token leaves the address bar
        window.location.assign("/login?reset=1");
      }
    } catch (exc) {
      error.textContent = exc.message;
      button.disabled = false;
    }
  });
}

/** Forms marked data-confirm ask first (used by log out only when asked). */
export function initLogout() {
  for (const form of document.querySelectorAll("form[data-confirm]")) {
    form.addEventListener("submit", (event) => {
      if (!window.confirm(form.dataset.confirm)) event.preventDefault();
    });
  }
}
