// The legend: the shown layers with their colour, in a corner of the map (embeds mostly,
// where the layers panel is not there). Updated when layers change or are shown/hidden.
import L from "./leaflet-setup.js";
import { safeColor } from "./style.js";
import { el } from "./ui.js";

export function legendControl(ctx) {
  const box = el("section", { class: "wm-legend leaflet-control", "aria-label": "Legend" });
  const render = () => {
    const items = ctx.orderedLayers().filter((e) => e.shown).map((entry) => {
      const swatch = el("span", { class: "layer-swatch", "aria-hidden": "true" });
      swatch.style.background = safeColor((entry.info.style || {}).markerColor || (entry.info.style || {}).color);
      return el("li", {}, swatch, el("span", {}, entry.info.name));
    });
    box.replaceChildren(el("h2", {}, "Legend"), el("ul", {}, items));
    box.hidden = !items.length;
  };
  const Control = L.Control.extend({ options: { position: "bottomleft" }, onAdd: () => {
    render();
    return box;
  } });
  ctx.on("layersChanged", render);
  ctx.on("layerToggled", render);
  return new Control();
}
