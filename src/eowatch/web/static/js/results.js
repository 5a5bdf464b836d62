// Results of the selected task: a timeline of its STAC items (whatever /search lets the
// caller see), and for the selected item the change-map tiles, the change polygons with
// popups (and their verdicts: feedback.js), a before/after comparison cut from the item's quicklook, and the downloads.

import { download, escapeHTML, formatArea, formatDate, getJSON, objectURL, searchAll } from "./api.js";
import { authTileLayer, bboxBounds } from "./map.js";
import { ImagerySwipe } from "./imagery.js";
import { comparePanels } from "./compare.js";
import { ItemFeedback } from "./feedback.js";

const L = window.L;
const CLASS_COLOURS = {
  "vegetation loss": "#e8590c",
  "vegetation gain": "#2f9e44",
  "water gain": "#1971c2",
  "water loss": "#c2255c",
  "new bare/built surface": "#862e9c",
  "burn scar": "#343a40",
  "other change": "#f08c00",
};
const MAX_LISTED_POLYGONS = 300;

// Asset hrefs of the API end in the asset key, not a file name: name downloads by media type.
const EXTENSIONS = [
  ["geotiff", ".tif"], ["tiff", ".tif"], ["geo+json", ".geojson"], ["flatgeobuf", ".fgb"],
  ["png", ".png"], ["jpeg", ".jpg"], ["json", ".json"],
];

function extensionOf(asset) {
  const fromHref = asset.href.split("?")[0].match(/\/[^/]+(\.[a-z0-9]+)$/i);
  if (fromHref) return fromHref[1];
  const type = (asset.type || "").toLowerCase();
  const match = EXTENSIONS.find(([needle]) => type.includes(needle));
  return match ? match[1] : "";
}

export function taskCollection(task) {
  return task.collection || (task.spec && task.spec.collection) || `task-${task.spec ? task.spec.name : task.id}`;
}

function itemDates(item) {
  const p = item.properties || {};
  return { before: p.start_datetime || null, after: p.end_datetime || p.datetime || null };
}

function tileUrl(item, asset, query = "") {
  const c = encodeURIComponent(item.collection);
  const i = encodeURIComponent(item.id);
  return `/collections/${c}/items/${i}/tiles/${asset}/{z}/{x}/{y}.png${query}`;
}

/** Rows that act on a click also act on Enter and Space (keyboard users reach them with Tab). */
function keyboardClicks(container, selector) {
  container.addEventListener("keydown", (event) => {
    if (event.key !== "Enter" && event.key !== " ") return;
    const row = event.target.closest(selector);
    if (row && row === event.target) {
      event.preventDefault();
      row.click();
    }
  });
}

/** A legend of the change map's classes (its classification:classes) on the map. */
function classLegend(item) {
  const classes = ((item.assets.change_map || {})["classification:classes"] || []).filter((c) => !c.nodata && c.value !== 0);
  if (!classes.length) return null;
  const legend = L.control({ position: "bottomright" });
  legend.onAdd = () => {
    const box = L.DomUtil.create("div", "map-legend");
    box.innerHTML = `<strong>Changes</strong>${classes
      .map((c) => `<div><span class="swatch" style="background:#${escapeHTML(c.color_hint || "f08c00")}"></span>${escapeHTML(c.name)}</div>`)
      .join("")}`;
    return box;
  };
  return legend;
}

export class ResultsPanel {
  constructor({ map, elements, onMessage }) {
    this.map = map;
    this.el = elements; // timeline, details, polygons, downloads, compare, opacity
    this.onMessage = onMessage;
    this.items = [];
    this.selected = null;
    this.overlays = [];
    this.polygonLayers = new Map();
    this.canvas = L.canvas({ padding: 0.5 });
    this.imagery = new ImagerySwipe(map, elements.imagerySwipe); // before/after under the changes
    this.user = null; // who is signed in (GET /whoami), for the verdicts in the popups
    this.el.timeline.addEventListener("click", (event) => {
      const row = event.target.closest("li[data-item-id]");
      if (row) this.select(row.dataset.itemId);
    });
    keyboardClicks(this.el.timeline, "li[data-item-id]");
    keyboardClicks(this.el.polygons, "tr[data-polygon]");
    this.el.polygons.addEventListener("click", (event) => {
      const row = event.target.closest("tr[data-polygon]");
      const layer = row && this.polygonLayers.get(Number(row.dataset.polygon));
      if (layer) {
        this.map.fitBounds(layer.getBounds(), { maxZoom: 16 });
        layer.openPopup();
      }
    });
    this.el.downloads.addEventListener("click", (event) => {
      const button = event.target.closest("button[data-href]");
      if (!button) return;
      download(button.dataset.href, button.dataset.filename).catch((err) =>
        this.onMessage(`Download failed: ${err.message}`, "error"),
      );
    });
    this.el.showUnchanged.addEventListener("change", () => {
      if (this.selected) this.select(this.selected.id);
    });
    this.el.opacity.addEventListener("input", () => {
      for (const layer of this.overlays) if (layer.setOpacity) layer.setOpacity(Number(this.el.opacity.value));
    });
  }

  setUser(user) {
    this.user = user;
  }

  clear() {
    for (const layer of this.overlays) this.map.removeLayer(layer);
    this.overlays = [];
    if (this.legend) this.map.removeControl(this.legend);
    this.legend = null;
    this.imagery.clear();
    this.polygonLayers.clear();
    this.selected = null;
    this.el.details.innerHTML = "";
    this.el.polygons.innerHTML = "";
    this.el.downloads.innerHTML = "";
    this.el.compare.hidden = true;
    this.el.resultSection.hidden = true;
  }

  async showTask(task) {
    const changed = !task || !this.task || task.id !== this.task.id;
    this.task = task;
    if (changed) {
      this.items = [];
      this.clear();
      this.el.timeline.innerHTML = "";
    }
    if (task) await this.refreshTimeline();
  }

  async refreshTimeline() {
    const task = this.task;
    if (!task) return;
    const collection = taskCollection(task);
    const items = await searchAll({ collections: collection });
    if (this.task !== task) return; // another task was chosen meanwhile
    items.sort((a, b) => String(itemDates(a).after).localeCompare(String(itemDates(b).after)));
    const changed = items.map((i) => i.id).join() !== this.items.map((i) => i.id).join();
    this.items = items;
    if (!changed && this.el.timeline.children.length) return;
    if (!items.length) {
      this.el.timeline.innerHTML = '<li class="empty">No results yet.</li>';
      return;
    }
    this.el.timeline.innerHTML = items
      .map((item) => {
        const p = item.properties || {};
        const { before, after } = itemDates(item);
        const status = p["eowatch:status"] || "ok";
        return `<li data-item-id="${escapeHTML(item.id)}" tabindex="0" class="${this.selected && this.selected.id === item.id ? "selected" : ""}">
          <span class="dates">${formatDate(before)} → ${formatDate(after)}</span>
          <span class="preset">${escapeHTML(p["eowatch:preset"] || "")}</span>
          <span class="area">${status === "ok" ? formatArea(p["eowatch:changed_area_m2"]) : escapeHTML(status)}</span>
        </li>`;
      })
      .join("");
  }

  /** Open an inbox alert: its result (fetched when not in the timeline), zoomed to the
   * polygon, its popup open. */
  async openAlert(alert) {
    let item = this.items.find((i) => i.id === alert.item && i.collection === alert.collection);
    if (!item) {
      const c = encodeURIComponent(alert.collection);
      item = await getJSON(`/collections/${c}/items/${encodeURIComponent(alert.item)}`);
      this.items.push(item);
    }
    await this.select(item.id);
    if (alert.bbox) {
      const [west, south, east, north] = alert.bbox;
      this.map.fitBounds([[south, west], [north, east]], { maxZoom: 17, padding: [60, 60] });
    }
    const layer = this.polygonLayers.get(alert.polygon);
    if (layer) layer.openPopup();
  }

  async select(itemId) {
    const item = this.items.find((i) => i.id === itemId);
    if (!item) return;
    this.clear();
    this.selected = item;
    for (const row of this.el.timeline.querySelectorAll("li")) {
      row.classList.toggle("selected", row.dataset.itemId === itemId);
    }
    this.el.resultSection.hidden = false;
    this.renderDetails(item);
    this.renderDownloads(item);
    const bounds = bboxBounds(item.bbox);
    this.map.fitBounds(bounds);
    this.imagery.show(item, tileUrl, bounds);
    this.legend = classLegend(item);
    if (this.legend) this.legend.addTo(this.map);
    if (item.assets.change_map) {
      // No-change pixels are transparent in the tiles unless asked for.
      const query = this.el.showUnchanged.checked ? "?no_change=opaque" : "";
      const tiles = authTileLayer(tileUrl(item, "change_map", query), {
        bounds, // no requests outside the raster (they would be 404s)
        maxZoom: 19,
        opacity: Number(this.el.opacity.value),
        className: "change-tiles",
        zIndex: 20,
      });
      tiles.on("tilefailure", (e) => this.onMessage(`A change-map tile failed: ${e.error.message}`, "error"));
      tiles.addTo(this.map);
      this.overlays.push(tiles);
    }
    await Promise.all([this.showPolygons(item), this.showComparison(item)]);
  }

  renderDetails(item) {
    const p = item.properties || {};
    const { before, after } = itemDates(item);
    const rows = [
      ["Before", formatDate(before)],
      ["After", formatDate(after)],
      ["Preset", p["eowatch:preset"]],
      ["Status", p["eowatch:status"]],
      ["Changed area", formatArea(p["eowatch:changed_area_m2"])],
      ["Polygons", p["eowatch:polygon_count"]],
      ["Valid fraction", p["eowatch:valid_fraction"] !== undefined ? `${(100 * p["eowatch:valid_fraction"]).toFixed(1)} %` : "–"],
    ];
    this.el.details.innerHTML = `<h3>${escapeHTML(item.id)}</h3><dl>${rows
      .map(([k, v]) => `<dt>${k}</dt><dd>${escapeHTML(v ?? "–")}</dd>`)
      .join("")}</dl>`;
  }

  renderDownloads(item) {
    this.el.downloads.innerHTML = Object.entries(item.assets || {})
      .map(([key, asset]) => {
        const filename = `${item.id}-${key}${extensionOf(asset)}`;
        return `<li><button type="button" class="link" data-asset="${escapeHTML(key)}" data-href="${escapeHTML(asset.href)}"
          data-filename="${escapeHTML(filename)}">${escapeHTML(asset.title || key)}</button>
          <span class="media">${escapeHTML((asset.type || "").split(";")[0])}</span></li>`;
      })
      .join("");
    const report = `/feedback/report.zip?collection=${encodeURIComponent(item.collection)}`;
    this.el.downloads.insertAdjacentHTML(
      "beforeend",
      `<li><button type="button" class="link" data-asset="report" data-href="${escapeHTML(report)}"
        data-filename="${escapeHTML(`eowatch-confirmed-${item.collection}.zip`)}">Confirmed changes of this
        collection (GeoJSON, KML, GeoPackage, image chips)</button> <span class="media">application/zip</span></li>`,
    );
  }

  async showPolygons(item) {
    const asset = item.assets.polygons;
    if (!asset) {
      this.el.polygons.innerHTML = '<tr><td colspan="4">This result has no polygons.</td></tr>';
      return;
    }
    let collection;
    const verdicts = ItemFeedback.load(item, this.user).catch((err) => {
      this.onMessage(`Cannot load the verdicts: ${err.message}`, "error");
      return null;
    });
    try {
      collection = await getJSON(asset.href);
    } catch (err) {
      this.onMessage(`Cannot load the change polygons: ${err.message}`, "error");
      return;
    }
    const feedback = await verdicts;
    if (this.selected !== item) return; // another result was chosen meanwhile
    const { before, after } = itemDates(item);
    // the API names a polygon by its feature id (its area rank, from 1)
    const features = (collection.features || []).map((f, index) => ({ ...f, id: f.id ?? index + 1 }));
    const layer = L.geoJSON(features, {
      renderer: this.canvas, // thousands of polygons draw faster on a canvas than as SVG paths
      style: (f) => ({ color: CLASS_COLOURS[f.properties.class_name] || "#f08c00", weight: 1.5, fillOpacity: 0.15 }),
      onEachFeature: (feature, shape) => {
        const p = feature.properties;
        shape.bindPopup(() => {
          const popup = document.createElement("div");
          popup.className = "polygon-popup";
          popup.innerHTML = `<strong>${escapeHTML(p.class_name || `class ${p.class}`)}</strong>
          <div>Area: ${formatArea(p.area_m2)}</div>
          <div>Confidence: ${p.confidence !== undefined ? (100 * p.confidence).toFixed(1) + " %" : "–"}</div>
          ${p.direction ? `<div>Direction: ${escapeHTML(p.direction)}</div>` : ""}
          <div>Dates: ${formatDate(before)} → ${formatDate(after)}</div>`;
          if (feedback) {
            const onChange = () => shape.getPopup() && shape.getPopup().update();
            popup.append(feedback.section(feature, { onMessage: this.onMessage, onChange }));
          }
          return popup;
        });
        this.polygonLayers.set(feature.id, shape);
      },
    }).addTo(this.map);
    this.overlays.push(layer);
    const ranked = [...features].sort((a, b) => (b.properties.area_m2 || 0) - (a.properties.area_m2 || 0));
    const shown = ranked.slice(0, MAX_LISTED_POLYGONS);
    this.el.polygons.innerHTML =
      shown
        .map(
          (f) => `<tr data-polygon="${f.id}" tabindex="0"><td><span class="swatch" style="background:${
            CLASS_COLOURS[f.properties.class_name] || "#f08c00"
          }"></span>${escapeHTML(f.properties.class_name || f.properties.class)}</td>
          <td>${formatArea(f.properties.area_m2)}</td>
          <td>${f.properties.confidence !== undefined ? (100 * f.properties.confidence).toFixed(0) + " %" : "–"}</td>
          <td>${escapeHTML(f.properties.direction || "")}</td></tr>`,
        )
        .join("") +
      (ranked.length > shown.length
        ? `<tr class="more"><td colspan="4">${ranked.length - shown.length} smaller polygons on the map only</td></tr>`
        : "") || '<tr><td colspan="4">No change polygons.</td></tr>';
  }

  async showComparison(item) {
    const asset = item.assets.quicklook;
    if (!asset) return;
    try {
      const url = await objectURL(asset.href);
      const shape = (item.properties || {})["proj:shape"];
      const shown = await comparePanels(this.el.compare, url, shape);
      URL.revokeObjectURL(url);
      this.el.compare.hidden = !shown;
    } catch (err) {
      this.onMessage(`Cannot load the quicklook: ${err.message}`, "error");
    }
  }
}
