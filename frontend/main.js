// The one entry point. Each page says what it is in <body data-page="...">.
import "leaflet/dist/leaflet.css";
import "@geoman-io/leaflet-geoman-free/dist/leaflet-geoman.css";
import "./styles.css";
import { initAdmin } from "./admin.js";
import { initAuthForms, initLogout, initPasswordReset } from "./auth.js";
import { initDashboard } from "./dashboard.js";
import { initMapPage } from "./map.js";

function start() {
  const page = document.body.dataset.page;
  initLogout();
  if (page === "login" || page === "signup") initAuthForms();
  else if (page === "dashboard") initDashboard();
  else if (page === "map" || page === "embed") initMapPage();
  else if (page === "admin-users") initAdmin();
  else if (page === "password-forgot" || page === "password-reset") initPasswordReset();
}

if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
else start();
