// Live collaboration for the map page: others' edits appear live, a presence indicator
// shows who is here, live-data markers move. Works with MapContext from map.js:
//   import { connectRealtime } from "./realtime.js";
//   connectRealtime(ctx);            // after the layers are loaded (end of initMapPage)
// The websocket reconnects on its own (with back-off; promptly after a 1012 "service restart"
// close) and sends the last sequence number it saw, so it receives what it missed; when it is
// too far behind (or Redis was down) the server says "resync" and the layers are refetched.

import L from "./leaflet-setup.js";

const BACKOFF_MIN = 500;
const BACKOFF_MAX = 15000;

function wsUrl(ctx, since) {
  const proto = location.protocol === "https:" ? "wss:" : "ws:";
  const q = since !== null && since !== undefined ? `?since=${since}` : "";
  return `${proto}//${location.host}${ctx.base}/ws${q}`;
}

function escapeText(text) {
  const div = document.createElement("div");
  div.textContent = text == null ? "" : String(text);
  return div.innerHTML;
}

/** Apply one edit event from the server to the Leaflet layers of `ctx`. */
export function applyEdit(ctx, ev) {
  const entry = ev.layer ? ctx.layers.get(ev.layer) : null;
  switch (ev.op) {
    case "feature.create":
    case "feature.update": {
      if (!entry) return;
      const existing = ctx.findFeature(ev.feature.id);
      if (existing && existing.feature && existing.feature.version >= ev.feature.version) return;
      // being edited here (shape editing or a save in flight): keep it; our next save meets
      // the newer version and the conflict view shows both
      if (existing && ((existing.pm && existing.pm.enabled && existing.pm.enabled()) || existing._wmSaving)) return;
      if (existing) entry.group.removeLayer(existing);
      ctx.addFeature(ev.layer, ev.feature);
      break;
    }
    case "feature.delete": {
      const existing = ctx.findFeature(ev.id);
      if (existing && entry) entry.group.removeLayer(existing);
      break;
    }
    case "layer.reload":
      if (entry) ctx.reloadLayer(ev.layer);
      break;
    case "layer.create":
      if (!entry && ev.data) {
        ctx.addLayer(ev.data, []);
        ctx.emit("layersChanged");
      }
      break;
    case "layer.update":
      if (entry && ev.data) {
        entry.info = { ...entry.info, ...ev.data };
        ctx.restyle(entry);
        ctx.emit("layersChanged");
      }
      break;
    case "layer.delete":
      if (entry) {
        ctx.hideEntry(entry);
        ctx.layers.delete(ev.layer);
        ctx.emit("layersChanged");
      }
      break;
    case "map.update":
      if (ev.data) {
        ctx.info = { ...ctx.info, ...ev.data, role: ctx.info.role };
        ctx.emit("mapChanged");
      }
      break;
    case "map.reload":
      resync(ctx);
      break;
    default:
      break;
  }
}

/** Refetch every layer (after a gap the server could not fill). */
export async function resync(ctx) {
  try {
    const info = await fetch(ctx.base, { credentials: "same-origin" }).then((r) => r.json());
    for (const layer of info.layers || []) {
      if (!ctx.layers.has(layer.id)) ctx.addLayer(layer, []);
    }
    for (const id of [...ctx.layers.keys()]) {
      if (!(info.layers || []).some((l) => l.id === id)) {
        ctx.hideEntry(ctx.layers.get(id));
        ctx.layers.delete(id);
      }
    }
    await Promise.all([...ctx.layers.keys()].map((id) => ctx.reloadLayer(id)));
  } catch (exc) {
    console.warn("waymark: resync failed", exc);
  }
}

/** A small Leaflet control listing who is here; returns {update(presence), setStatus(s)}. */
export function presenceControl(map) {
  const Control = L.Control.extend({
    options: { position: "topright" },
    onAdd() {
      const el = L.DomUtil.create("div", "wm-presence leaflet-bar");
      el.setAttribute("aria-live", "polite");
      el.style.cssText = "background:#fff;padding:4px 8px;font:12px/1.4 system-ui,sans-serif;max-width:220px";
      el.dataset.testid = "presence";
      return el;
    },
  });
  const control = new Control();
  control.addTo(map);
  const el = control.getContainer();
  let status = "ok";
  let last = { users: [], anonymous: 0 };
  function render() {
    const rows = last.users.map((u) => `<li data-user="${u.id}" title="${escapeText(u.role || "")}">${u.state === "editing" ? "✎ " : ""}${escapeText(u.name || "someone")}</li>`);
    if (last.anonymous) rows.push(`<li>${last.anonymous} visitor${last.anonymous > 1 ? "s" : ""}</li>`);
    const banner = status === "ok" ? "" : `<div class="wm-rt-status" data-state="${status}">${status === "degraded" ? "Live updates paused — reconnecting…" : "Offline — reconnecting…"}</div>`;
    el.innerHTML = `${banner}<strong>Here now (${last.users.length + last.anonymous})</strong><ul style="margin:0;padding-left:16px">${rows.join("")}</ul>`;
  }
  render();
  return {
    update(presence) { last = presence; render(); },
    setStatus(s) { status = s; el.dataset.status = s; render(); },
  };
}

/** Live-data markers (device positions): one marker per device with a short track. */
function liveLayer(ctx) {
  const markers = new Map();
  return {
    apply(msg) {
      for (const p of msg.positions || []) {
        const key = `${msg.layer}:${p.device}`;
        let m = markers.get(key);
        if (!m) {
          m = { marker: L.circleMarker([p.lat, p.lon], { radius: 7, weight: 2 }).bindTooltip(p.device).addTo(ctx.map),
                track: L.polyline([], { weight: 2, opacity: 0.6 }).addTo(ctx.map) };
          markers.set(key, m);
        }
        m.marker.setLatLng([p.lat, p.lon]);
        m.track.addLatLng([p.lat, p.lon]);
        const pts = m.track.getLatLngs();
        if (pts.length > 50) m.track.setLatLngs(pts.slice(-50));
      }
    },
  };
}

/**
 * Connect the map page to /api/v1/maps/{id}/ws. Options: onPresence(p), onStatus(s), onEdit(ev),
 * showPresence (default true: adds the presence control). Returns
 * {close(), setEditing(bool), sendEdit(msg) -> Promise(ack), get seq()}.
 */
export function connectRealtime(ctx, options = {}) {
  const { onPresence, onStatus, onEdit, showPresence = true } = options;
  const indicator = showPresence ? presenceControl(ctx.map) : null;
  const live = liveLayer(ctx);
  const pending = new Map();
  let socket = null;
  let seq = null;
  let backoff = BACKOFF_MIN;
  let closed = false;
  let state = "viewing";
  let refs = 0;

  const setStatus = (s) => {
    if (indicator) indicator.setStatus(s);
    if (onStatus) onStatus(s);
    document.body.dataset.realtime = s;
  };

  function handle(msg) {
    switch (msg.type) {
      case "hello":
        backoff = BACKOFF_MIN;
        setStatus(msg.status);
        if (msg.presence) { if (indicator) indicator.update(msg.presence); if (onPresence) onPresence(msg.presence); }
        if (seq === null || msg.replay === null) seq = msg.seq;
        if (state !== "viewing") socket.send(JSON.stringify({ type: "presence", state }));
        break;
      case "edit":
        if (typeof msg.seq === "number") {
          if (seq !== null && msg.seq <= seq) return; // already applied
          seq = msg.seq;
        }
        applyEdit(ctx, msg);
        if (onEdit) onEdit(msg);
        break;
      case "resync":
        seq = typeof msg.seq === "number" ? msg.seq : null; // null: accept whatever comes next
        resync(ctx);
        break;
      case "presence":
        if (indicator) indicator.update(msg);
        if (onPresence) onPresence(msg);
        break;
      case "status":
        setStatus(msg.state);
        break;
      case "live":
        live.apply(msg);
        break;
      case "ack":
      case "error": {
        const p = msg.ref !== undefined ? pending.get(msg.ref) : null;
        if (p) {
          pending.delete(msg.ref);
          if (msg.type === "ack") p.resolve(msg); else p.reject(Object.assign(new Error(msg.error.message), msg.error));
        } else if (msg.type === "error") console.warn("waymark realtime:", msg.error);
        break;
      }
      default:
        break;
    }
  }

  function open() {
    if (closed) return;
    socket = new WebSocket(wsUrl(ctx, seq));
    socket.addEventListener("message", (e) => {
      try { handle(JSON.parse(e.data)); } catch (exc) { console.warn("waymark realtime: bad message", exc); }
    });
    socket.addEventListener("close", (e) => {
      for (const p of pending.values()) p.reject(new Error("connection closed"));
      pending.clear();
      if (closed || (e.code >= 4400 && e.code < 4500)) { setStatus(closed ? "closed" : "refused"); return; }
      setStatus("offline");
      // 1012 "service restart": the server is stopping (deploy, restart) and another one (or
      // this one, back) takes over: come back after the shortest wait, not a grown back-off
      if (e.code === 1012) backoff = BACKOFF_MIN;
      const wait = Math.min(BACKOFF_MAX, backoff) * (0.75 + Math.random() * 0.5);
      backoff = Math.min(BACKOFF_MAX, backoff * 2);
      setTimeout(open, wait);
    });
  }
  document.addEventListener("visibilitychange", () => {
    if (!document.hidden && socket && socket.readyState === WebSocket.CLOSED) { backoff = BACKOFF_MIN; open(); }
  });
  open();

  return {
    get seq() { return seq; },
    close() { closed = true; if (socket) socket.close(1000); },
    setEditing(on) {
      state = on ? "editing" : "viewing";
      if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify({ type: "presence", state }));
    },
    /** Send {layer, op: create|update|delete, id, geometry, properties, version}; resolves with the ack. */
    sendEdit(edit) {
      return new Promise((resolve, reject) => {
        if (!socket || socket.readyState !== WebSocket.OPEN) { reject(new Error("not connected")); return; }
        const ref = `r${++refs}`;
        pending.set(ref, { resolve, reject });
        socket.send(JSON.stringify({ type: "edit", ref, ...edit }));
      });
    },
  };
}
