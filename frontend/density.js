// Loaded on demand (display.js) for layers whose points are clustered or drawn as a heatmap:
// Leaflet.markercluster and Leaflet.heat, which extend the page's Leaflet (window.L).
import "leaflet.markercluster/dist/MarkerCluster.css";
import "leaflet.markercluster/dist/MarkerCluster.Default.css";
import "leaflet.markercluster";
import "leaflet.heat";

window.dispatchEvent(new CustomEvent("waymark:density-loaded"));
