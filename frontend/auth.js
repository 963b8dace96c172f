// Log-in and sign-up forms post JSON to the API, then go on to the next page.
import { api } from "./api.js";

function safeNext(raw) {
  return raw && raw.startsWith("/") && !raw.startsWith("//") ? raw : "/dashboard";
}

export function initAuthForms() {
  const form = document.querySelector("form[data-auth]");
  if (!form) return;
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

/** Forms marked data-confirm ask first (used by log out only when asked). */
export function initLogout() {
  for (const form of document.querySelectorAll("form[data-confirm]")) {
    form.addEventListener("submit", (event) => {
      if (!window.confirm(form.dataset.confirm)) event.preventDefault();
    });
  }
}
