// Monitoring tasks: the list (with state, job counts and pause/resume/trigger), their
// AOIs on the map, and the form that creates one from a drawn or uploaded AOI.

import { escapeHTML, formatDate, getJSON, postJSON } from "./api.js";

const L = window.L;
const SENSOR_OF_PREFIX = { s1: "sentinel-1", s2: "sentinel-2" };

function taskName(task) {
  return (task.spec && task.spec.name) || task.id;
}

function jobSummary(jobs) {
  const entries = Object.entries(jobs || {});
  if (!entries.length) return "no jobs yet";
  return entries.map(([status, count]) => `${count} ${status}`).join(", ");
}

export class TaskPanel {
  constructor({ map, list, onSelect, onMessage }) {
    this.map = map;
    this.list = list;
    this.onSelect = onSelect;
    this.onMessage = onMessage;
    this.tasks = [];
    this.selectedId = null;
    this.layer = L.featureGroup().addTo(map);
    list.addEventListener("click", (event) => this.clicked(event));
  }

  async refresh() {
    const body = await getJSON("/tasks");
    const signature = JSON.stringify(body.tasks || []);
    if (signature !== this.signature) {
      // redraw only on a change: a periodic redraw would flicker and swallow clicks in flight
      this.signature = signature;
      this.tasks = body.tasks || [];
      this.render();
    }
    return this.tasks;
  }

  reset() {
    this.tasks = [];
    this.signature = null;
    this.selectedId = null;
    this.render();
  }

  selected() {
    return this.tasks.find((t) => t.id === this.selectedId) || null;
  }

  render() {
    this.layer.clearLayers();
    if (!this.tasks.length) {
      this.list.innerHTML = '<li class="empty">No tasks visible to you yet.</li>';
      return;
    }
    this.list.innerHTML = this.tasks
      .map((task) => {
        const spec = task.spec || {};
        const active = task.state === "active";
        return `<li data-task-id="${escapeHTML(task.id)}" class="${task.id === this.selectedId ? "selected" : ""}">
          <div class="task-head">
            <button type="button" class="link task-name" data-action="select">${escapeHTML(taskName(task))}</button>
            <span class="state state-${escapeHTML(task.state)}">${escapeHTML(task.state)}</span>
          </div>
          <div class="task-meta">${escapeHTML((spec.sensors || []).join(", "))} ·
            ${escapeHTML((spec.presets || []).join(", ") || "default preset")} ·
            ${formatDate(spec.start)} → ${spec.end ? formatDate(spec.end) : "ongoing"}</div>
          <div class="task-meta jobs">${escapeHTML(jobSummary(task.jobs))}</div>
          ${task.last_poll_error ? `<div class="task-meta poll-error">Last check failed: ${escapeHTML(task.last_poll_error)}</div>` : ""}
          <div class="task-actions">
            <button type="button" data-action="${active ? "pause" : "resume"}">${active ? "Pause" : "Resume"}</button>
            <button type="button" data-action="trigger" ${active ? "" : "disabled"}>Check now</button>
          </div>
        </li>`;
      })
      .join("");
    for (const task of this.tasks) {
      const aoi = task.spec && task.spec.aoi;
      if (!aoi) continue;
      const selected = task.id === this.selectedId;
      const shape = L.geoJSON(aoi, {
        style: { color: selected ? "#1c7ed6" : "#495057", weight: selected ? 3 : 1.5, fillOpacity: 0.05 },
      });
      shape.bindTooltip(escapeHTML(taskName(task)));
      shape.on("click", () => this.select(task.id));
      this.layer.addLayer(shape);
    }
  }

  async clicked(event) {
    const button = event.target.closest("button[data-action]");
    const row = event.target.closest("li[data-task-id]");
    if (!button || !row) return;
    const id = row.dataset.taskId;
    const action = button.dataset.action;
    if (action === "select") {
      this.select(id);
      return;
    }
    const task = this.tasks.find((t) => t.id === id);
    const name = task ? taskName(task) : id;
    button.disabled = true;
    try {
      await postJSON(`/tasks/${encodeURIComponent(id)}/${action}`);
      const done = { trigger: "Check requested for", pause: "Paused", resume: "Resumed" }[action];
      this.onMessage(`${done} task ${name}`, "info");
      await this.refresh();
    } catch (err) {
      this.onMessage(`Cannot ${action} task ${name}: ${err.message}`, "error");
      button.disabled = false;
    }
  }

  select(id, { zoom = true } = {}) {
    this.selectedId = id;
    this.render();
    const task = this.selected();
    if (task && zoom && task.spec && task.spec.aoi) {
      this.map.fitBounds(L.geoJSON(task.spec.aoi).getBounds(), { maxZoom: 14 });
    }
    this.onSelect(task);
  }
}

/** The first geometry of a GeoJSON document (geometry, Feature or FeatureCollection). */
export function geometryOf(doc) {
  if (!doc || typeof doc !== "object") throw new Error("the file is not a GeoJSON object");
  if (doc.type === "FeatureCollection") {
    const geometries = (doc.features || []).map((f) => f.geometry).filter(Boolean);
    if (!geometries.length) throw new Error("the FeatureCollection has no geometry");
    if (geometries.length === 1) return geometries[0];
    const polygons = geometries.flatMap((g) =>
      g.type === "Polygon" ? [g.coordinates] : g.type === "MultiPolygon" ? g.coordinates : [],
    );
    return { type: "MultiPolygon", coordinates: polygons };
  }
  if (doc.type === "Feature") return geometryOf(doc.geometry);
  if (["Polygon", "MultiPolygon"].includes(doc.type)) return doc;
  throw new Error(`an AOI must be a Polygon or MultiPolygon, not ${doc.type}`);
}

/** "alpha=0.01, min_area_m2=500" -> {alpha: 0.01, min_area_m2: 500} (numbers and booleans typed;
 * the service checks each value against the preset's parameters when a job runs). */
export function parseParams(text) {
  const params = {};
  for (const part of String(text || "").split(/[,;\n]/)) {
    if (!part.trim()) continue;
    const [name, ...rest] = part.split("=");
    const raw = rest.join("=").trim();
    if (!name.trim() || !rest.length) throw new Error(`"${part.trim()}" is not name=value`);
    params[name.trim()] =
      raw === "true" ? true : raw === "false" ? false : raw !== "" && !Number.isNaN(Number(raw)) ? Number(raw) : raw;
  }
  return params;
}

export class TaskForm {
  constructor({ form, presetSelect, onCreated, onMessage }) {
    this.form = form;
    this.presetSelect = presetSelect;
    this.onCreated = onCreated;
    this.onMessage = onMessage;
    this.aoi = null;
    this.presets = [];
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.submit();
    });
    for (const box of form.querySelectorAll('input[name="sensor"]')) {
      box.addEventListener("change", () => this.renderPresets());
    }
  }

  async loadPresets() {
    const body = await getJSON("/processes");
    this.presets = (body.processes || []).map((p) => ({
      id: p.id,
      title: p.title || p.id,
      sensor: SENSOR_OF_PREFIX[p.id.slice(0, 2)] || (p.keywords || [])[0],
    }));
    this.renderPresets();
  }

  sensors() {
    return [...this.form.querySelectorAll('input[name="sensor"]:checked')].map((box) => box.value);
  }

  renderPresets() {
    const sensors = this.sensors();
    const chosen = new Set([...this.presetSelect.selectedOptions].map((o) => o.value));
    this.presetSelect.innerHTML = this.presets
      .filter((p) => sensors.includes(p.sensor))
      .map((p) => `<option value="${escapeHTML(p.id)}" ${chosen.has(p.id) ? "selected" : ""}>${escapeHTML(p.id)}</option>`)
      .join("");
  }

  setAOI(geometry, source) {
    this.aoi = geometry;
    const status = this.form.querySelector("#aoi-status");
    status.textContent = geometry ? `AOI: ${geometry.type} from ${source}` : "No AOI yet: draw one on the map or upload a GeoJSON file.";
    status.classList.toggle("ready", Boolean(geometry));
  }

  async submit() {
    const data = new FormData(this.form);
    const sensors = this.sensors();
    const presets = [...this.presetSelect.selectedOptions].map((o) => o.value);
    if (!this.aoi) return this.onMessage("Draw an AOI on the map or upload a GeoJSON file first.", "error");
    if (!sensors.length) return this.onMessage("Choose at least one sensor.", "error");
    let params;
    try {
      params = parseParams(data.get("params"));
    } catch (err) {
      return this.onMessage(`Parameters: ${err.message}`, "error");
    }
    if (Object.keys(params).length && !presets.length) {
      return this.onMessage("Choose the presets the parameters are for.", "error");
    }
    const cadence = String(data.get("cadence") || "").trim();
    const spec = {
      name: String(data.get("name") || "").trim(),
      aoi: this.aoi,
      sensors,
      presets,
      params: Object.fromEntries(presets.map((preset) => [preset, params])),
      start: data.get("start") || null,
      end: data.get("end") || null,
      cadence: /^\d+$/.test(cadence) ? Number(cadence) : cadence || undefined,
    };
    const button = this.form.querySelector('button[type="submit"]');
    button.disabled = true;
    try {
      const task = await postJSON("/tasks", spec);
      this.onMessage(`Created task ${taskName(task)}`, "info");
      this.onCreated(task);
    } catch (err) {
      this.onMessage(`The task was not created: ${err.message}`, "error");
    } finally {
      button.disabled = false;
    }
  }
}
