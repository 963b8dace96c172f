// The account administration page: disable, enable and delete accounts (administrators).
import { api } from "./api.js";
import { notify } from "./ui.js";

function askDelete(email, maps) {
  const dialog = document.getElementById("delete-user-dialog");
  const form = document.getElementById("delete-user-form");
  const error = form.querySelector(".form-error");
  document.getElementById("delete-user-text").textContent =
    `Delete ${email}? Their account, memberships and tokens go; their past edits stay, anonymous.`;
  document.getElementById("delete-user-maps").hidden = !Number(maps);
  error.textContent = "";
  return new Promise((resolve) => {
    const done = (value) => {
      form.removeEventListener("submit", onSubmit);
      document.getElementById("delete-user-cancel").removeEventListener("click", onCancel);
      dialog.close();
      resolve(value);
    };
    const onCancel = () => done(null);
    const onSubmit = (event) => {
      event.preventDefault();
      const choice = form.elements.maps.value;
      const to = form.elements.to.value.trim();
      if (Number(maps) && choice === "transfer" && !to) {
        error.textContent = "Enter the e-mail of the user who receives the maps.";
        return;
      }
      done(Number(maps) ? { maps: choice, to } : {});
    };
    form.addEventListener("submit", onSubmit);
    document.getElementById("delete-user-cancel").addEventListener("click", onCancel);
    dialog.showModal();
  });
}

export function initAdmin() {
  document.body.addEventListener("click", async (event) => {
    const button = event.target.closest("button[data-admin]");
    if (!button) return;
    const { admin, userId, email, maps } = button.dataset;
    const url = `/api/v1/admin/users/${userId}`;
    try {
      if (admin === "disable") {
        if (!window.confirm(`Disable ${email}? They are logged out everywhere and their API tokens stop working.`)) return;
        await api("POST", `${url}/disable`);
      } else if (admin === "enable") {
        await api("POST", `${url}/enable`);
      } else if (admin === "delete") {
        const choice = await askDelete(email, maps);
        if (!choice) return;
        const query = new URLSearchParams(choice.maps ? { maps: choice.maps, ...(choice.maps === "transfer" ? { to: choice.to } : {}) } : {});
        await api("DELETE", `${url}?${query}`);
      }
      window.location.reload();
    } catch (exc) {
      notify(exc.message, "error");
    }
  });
}
