// Dashboard actions: create a map, move one to the trash, restore one from it.
import { api } from "./api.js";
import { notify } from "./ui.js";

export function initDashboard() {
  const create = document.getElementById("create-map");
  if (create) {
    create.addEventListener("submit", async (event) => {
      event.preventDefault();
      const title = create.elements.title.value.trim();
      try {
        const map = await api("POST", "/api/v1/maps", { json: { title } });
        window.location.assign(`/m/${map.id}`);
      } catch (exc) {
        notify(exc.message, "error");
      }
    });
  }
  document.body.addEventListener("click", async (event) => {
    const button = event.target.closest("button[data-action]");
    if (!button) return;
    const { action, mapId, title } = button.dataset;
    try {
      if (action === "trash") {
        if (!window.confirm(`Move "${title}" to the trash? You can restore it for 30 days.`)) return;
        await api("DELETE", `/api/v1/maps/${mapId}`);
      } else if (action === "restore") {
        await api("POST", `/api/v1/maps/${mapId}/restore`);
      }
      window.location.reload();
    } catch (exc) {
      notify(exc.message, "error");
    }
  });
}
