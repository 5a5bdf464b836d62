// The alert inbox (GET /inbox): change polygons of the results new to the analyst, across
// their tasks, most confident and largest first; filters by class, task, date and
// confidence; one click (or Enter) opens the result on the map zoomed to the change, with
// its before/after imagery. "Mark seen" empties it until new results arrive.

import { escapeHTML, formatArea, formatDate, getJSON, postJSON } from "./api.js";

const SHOWN = 200;

export class InboxPanel {
  /** `el`: list, count, classFilter, taskFilter, since, minConfidence, markSeen (elements);
   * `onOpen(alert)` opens an alert on the map. */
  constructor({ elements, onOpen, onMessage }) {
    this.el = elements;
    this.onOpen = onOpen;
    this.onMessage = onMessage;
    this.alerts = [];
    const open = (event) => {
      const row = event.target.closest("li[data-alert]");
      if (!row) return;
      if (event.type === "keydown" && event.key !== "Enter" && event.key !== " ") return;
      event.preventDefault();
      this.onOpen(this.alerts[Number(row.dataset.alert)]);
    };
    this.el.list.addEventListener("click", open);
    this.el.list.addEventListener("keydown", open);
    for (const input of [this.el.classFilter, this.el.taskFilter, this.el.since, this.el.minConfidence]) {
      input.addEventListener("change", () => this.refresh().catch((err) => this.failed(err)));
    }
    this.el.markSeen.addEventListener("click", async () => {
      try {
        await postJSON("/inbox/seen", {});
        await this.refresh();
      } catch (err) {
        this.failed(err);
      }
    });
  }

  failed(err) {
    this.onMessage(`Cannot read the inbox: ${err.message}`, "error");
  }

  query() {
    const params = new URLSearchParams({ limit: "500" });
    if (this.el.classFilter.value) params.set("class", this.el.classFilter.value);
    if (this.el.taskFilter.value) params.set("collection", this.el.taskFilter.value);
    if (this.el.since.value) params.set("start", this.el.since.value);
    if (this.el.minConfidence.value) params.set("min_confidence", String(Number(this.el.minConfidence.value) / 100));
    return params;
  }

  async refresh() {
    const doc = await getJSON(`/inbox?${this.query()}`);
    this.alerts = doc.alerts || [];
    this.fillFilter(this.el.classFilter, this.alerts.map((a) => a.class_name), "every class");
    this.fillFilter(this.el.taskFilter, this.alerts.map((a) => a.collection), "every task");
    const seen = doc.last_seen ? `since ${formatDate(doc.last_seen)}` : "in the last 7 days";
    this.el.count.textContent = `${doc.matched} new change${doc.matched === 1 ? "" : "s"} ${seen}`;
    this.el.list.innerHTML =
      this.alerts
        .slice(0, SHOWN)
        .map((a, i) => `<li data-alert="${i}" data-collection="${escapeHTML(a.collection)}" data-polygon="${a.polygon}" tabindex="0">
          <span class="alert-class">${escapeHTML(a.class_name)}</span>
          <span class="alert-confidence">${a.confidence === null ? "–" : `${Math.round(100 * a.confidence)} %`}</span>
          <span class="alert-meta">${formatArea(a.area_m2)} · ${escapeHTML(a.collection)} · ${formatDate(a.before)} → ${formatDate(a.after)}</span>
        </li>`)
        .join("") || '<li class="empty">Nothing new.</li>';
  }

  /** Keep the chosen value; offer the values seen (the chosen one even when filtered out). */
  fillFilter(select, values, everything) {
    const chosen = select.value;
    const names = [...new Set([...values, ...(chosen ? [chosen] : [])])].sort();
    select.innerHTML = [`<option value="">${everything}</option>`, ...names.map((n) => `<option value="${escapeHTML(n)}">${escapeHTML(n)}</option>`)].join("");
    select.value = chosen;
  }
}
