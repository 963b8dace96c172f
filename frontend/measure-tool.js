// Measuring on the map page: the live length/area readout while drawing any shape, and the
// Measure tool (a path that is measured, not saved; it stays until the tool is closed).
import L from "./leaflet-setup.js";
import { describeSize, formatArea, formatLength, pathLength, ringArea } from "./measure.js";

const coordsOf = (latlngs) => latlngs.map((p) => [p.lng, p.lat]);

/** The size of what is being drawn, with the cursor as the next vertex. */
function liveSize(shape, working, cursor) {
  if (shape === "Circle") {
    const r = working.getRadius ? working.getRadius() : 0;
    return r ? `Radius ${formatLength(r)} · area ${formatArea(Math.PI * r * r)}` : "";
  }
  if (shape === "Rectangle") return working._map ? describeSize(working.toGeoJSON().geometry) : "";
  const points = coordsOf(L.LineUtil.isFlat(working.getLatLngs()) ? working.getLatLngs() : working.getLatLngs()[0]);
  if (cursor) points.push([cursor.lng, cursor.lat]);
  if (points.length < 2) return "";
  if (shape === "Polygon" && points.length >= 3) {
    return `Area ${formatArea(ringArea(points))} · perimeter ${formatLength(pathLength([...points, points[0]]))}`;
  }
  return `Length ${formatLength(pathLength(points))}`;
}

export function initMeasure(ctx) {
  const readout = document.getElementById("measure-readout");
  const map = ctx.map;
  let drawing = null; // {shape, working}
  let result = null; // the finished measurement on the map
  const show = (text) => {
    readout.textContent = text;
    readout.hidden = !text;
  };
  const update = (cursor) => {
    if (drawing) show(liveSize(drawing.shape, drawing.working, cursor));
  };
  map.on("pm:drawstart", ({ shape, workingLayer }) => {
    if (shape === "Marker") return;
    drawing = { shape, working: workingLayer };
    workingLayer.on("pm:vertexadded", () => update(null));
  });
  map.on("mousemove", (e) => update(drawing && drawing.shape !== "Rectangle" && drawing.shape !== "Circle" ? e.latlng : null));
  map.on("pm:drawend", () => {
    drawing = null;
    if (!result) show("");
  });

  const tool = {
    active: false,
    start() {
      tool.clear();
      tool.active = true;
      map.pm.enableDraw("Line", { snappable: true, continueDrawing: false,
        templineStyle: { color: "#f08c00", dashArray: "6,6" }, hintlineStyle: { color: "#f08c00", dashArray: "2,6" } });
    },
    /** A finished measurement: drawn dashed, labelled with its length, not saved. */
    keep(layer) {
      const text = describeSize(layer.toGeoJSON().geometry);
      result = L.polyline(layer.getLatLngs(), { color: "#f08c00", weight: 3, dashArray: "6,6", interactive: false, pmIgnore: true })
        .bindTooltip(text, { permanent: true, direction: "top", className: "wm-measure-label" }).addTo(map);
      show(`${text} — press Measure or Cancel to close`);
    },
    clear() {
      tool.active = false;
      if (result) result.remove();
      result = null;
      show("");
    },
  };
  return tool;
}
