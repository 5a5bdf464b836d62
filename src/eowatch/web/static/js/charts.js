// Small inline SVG charts for the operations dashboard (no chart library): stacked bars
// over time, horizontal bars per category, and a sparkline of sampled values.

const NS = "http://www.w3.org/2000/svg";

function svg(width, height, label) {
  const root = document.createElementNS(NS, "svg");
  root.setAttribute("viewBox", `0 0 ${width} ${height}`);
  root.setAttribute("role", "img");
  root.setAttribute("aria-label", label);
  root.classList.add("chart");
  return root;
}

function add(parent, tag, attributes, text) {
  const node = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attributes)) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  parent.append(node);
  return node;
}

function niceMax(value) {
  if (value <= 0) return 1;
  const power = 10 ** Math.floor(Math.log10(value));
  return [1, 2, 5, 10].map((m) => m * power).find((m) => m >= value);
}

function hhmm(iso) {
  return iso ? String(iso).slice(11, 16) : "";
}

/** Stacked bars of `series` (keys with colours) over `points` [{t, key: n}], time on x. */
export function stackedBars(points, series, { width = 640, height = 180, label = "chart" } = {}) {
  const root = svg(width, height, label);
  const left = 34, bottom = 20, top = 8;
  const plotW = width - left - 6, plotH = height - top - bottom;
  const totals = points.map((p) => series.reduce((sum, s) => sum + (p[s.key] || 0), 0));
  const max = niceMax(Math.max(0, ...totals));
  for (const fraction of [0, 0.5, 1]) {
    const y = top + plotH * (1 - fraction);
    add(root, "line", { x1: left, x2: width - 6, y1: y, y2: y, class: "grid" });
    add(root, "text", { x: left - 4, y: y + 4, class: "axis", "text-anchor": "end" }, String(max * fraction));
  }
  const barW = points.length ? plotW / points.length : plotW;
  points.forEach((point, i) => {
    let y = top + plotH;
    for (const s of series) {
      const value = point[s.key] || 0;
      if (!value) continue;
      const h = (value / max) * plotH;
      y -= h;
      const bar = add(root, "rect", {
        x: left + i * barW + 0.5, y, width: Math.max(1, barW - 1), height: h, fill: s.colour,
        "data-series": s.key, "data-value": value,
      });
      add(bar, "title", {}, `${hhmm(point.t)} UTC: ${value} ${s.key}`);
    }
  });
  const ticks = Math.min(6, points.length);
  for (let k = 0; k < ticks; k++) {
    const i = Math.round((k * (points.length - 1)) / Math.max(1, ticks - 1));
    const anchor = k === 0 ? "start" : k === ticks - 1 ? "end" : "middle";
    add(root, "text", { x: left + (i + 0.5) * barW, y: height - 5, class: "axis", "text-anchor": anchor },
      hhmm(points[i].t));
  }
  return root;
}

/** Horizontal bars: rows [{label, value, extra}] with a marker for `extra` (e.g. p90). */
export function horizontalBars(rows, { width = 640, rowHeight = 22, unit = "s", label = "chart" } = {}) {
  const height = Math.max(rowHeight, rows.length * rowHeight) + 18;
  const root = svg(width, height, label);
  const left = 110, right = 70;
  const max = niceMax(Math.max(0, ...rows.map((r) => Math.max(r.value || 0, r.extra || 0))));
  const scale = (v) => ((v || 0) / max) * (width - left - right);
  rows.forEach((row, i) => {
    const y = 4 + i * rowHeight;
    add(root, "text", { x: left - 6, y: y + rowHeight / 2 + 4, class: "axis", "text-anchor": "end" }, row.label);
    const bar = add(root, "rect", { x: left, y: y + 3, width: Math.max(1, scale(row.value)), height: rowHeight - 8,
      class: "bar", "data-label": row.label, "data-value": row.value });
    add(bar, "title", {}, row.title || `${row.label}: ${row.value} ${unit}`);
    if (row.extra) {
      const x = left + scale(row.extra);
      add(root, "line", { x1: x, x2: x, y1: y + 1, y2: y + rowHeight - 3, class: "marker" });
    }
    add(root, "text", { x: left + scale(Math.max(row.value || 0, row.extra || 0)) + 6, y: y + rowHeight / 2 + 4,
      class: "value" }, row.text || `${row.value} ${unit}`);
  });
  add(root, "text", { x: left, y: height - 3, class: "axis" }, `0 – ${max} ${unit}`);
  return root;
}

/** A line of sampled values [{t: ms, v}] (what this page has seen since it opened). */
export function sparkline(samples, { width = 640, height = 60, label = "chart" } = {}) {
  const root = svg(width, height, label);
  if (samples.length < 2) {
    add(root, "text", { x: 4, y: height / 2, class: "axis" }, "collecting samples…");
    return root;
  }
  const max = niceMax(Math.max(1, ...samples.map((s) => s.v)));
  const t0 = samples[0].t, t1 = samples[samples.length - 1].t;
  const points = samples.map((s) => {
    const x = 4 + ((s.t - t0) / Math.max(1, t1 - t0)) * (width - 40);
    const y = 4 + (1 - s.v / max) * (height - 12);
    return `${x.toFixed(1)},${y.toFixed(1)}`;
  });
  add(root, "polyline", { points: points.join(" "), class: "line" });
  add(root, "text", { x: width - 4, y: 12, class: "axis", "text-anchor": "end" }, `max ${max}`);
  return root;
}

/** Dots over time: points [{t: ISO time, v: value, colour, title}], time on x, value on y. */
export function timeScatter(points, { width = 640, height = 160, unit = "s", label = "chart" } = {}) {
  const root = svg(width, height, label);
  if (!points.length) {
    add(root, "text", { x: 4, y: height / 2, class: "axis" }, "no finished jobs yet");
    return root;
  }
  const left = 40, bottom = 20, top = 8;
  const plotW = width - left - 10, plotH = height - top - bottom;
  const times = points.map((p) => Date.parse(p.t));
  const t0 = Math.min(...times), t1 = Math.max(...times);
  const max = niceMax(Math.max(...points.map((p) => p.v)));
  for (const fraction of [0, 0.5, 1]) {
    const y = top + plotH * (1 - fraction);
    add(root, "line", { x1: left, x2: width - 10, y1: y, y2: y, class: "grid" });
    add(root, "text", { x: left - 4, y: y + 4, class: "axis", "text-anchor": "end" }, `${max * fraction} ${unit}`);
  }
  points.forEach((point, i) => {
    const x = left + (t1 > t0 ? ((times[i] - t0) / (t1 - t0)) * plotW : plotW / 2);
    const y = top + (1 - point.v / max) * plotH;
    const dot = add(root, "circle", { cx: x.toFixed(1), cy: y.toFixed(1), r: 3.5, fill: point.colour,
      "data-value": point.v });
    add(dot, "title", {}, point.title);
  });
  add(root, "text", { x: left, y: height - 5, class: "axis" }, `${hhmm(new Date(t0).toISOString())} UTC`);
  add(root, "text", { x: width - 10, y: height - 5, class: "axis", "text-anchor": "end" },
    `${hhmm(new Date(t1).toISOString())} UTC`);
  return root;
}
