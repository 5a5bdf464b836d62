// Analyst feedback on change polygons: the verdicts on the polygons of one result
// (GET /collections/{c}/items/{i}/feedback), shown in each polygon's popup, with buttons
// to give one (POST .../polygons/{p}/feedback) where the API says the caller may
// (`writable`: admins, analysts, partners whose grant on the collection says write).

import { escapeHTML, formatDate, getJSON, postJSON } from "./api.js";

const LABELS = { confirmed: "Confirmed", false_alarm: "False alarm", wrong_class: "Wrong class" };
const BUTTONS = [
  ["confirmed", "Confirm"],
  ["false_alarm", "False alarm"],
  ["wrong_class", "Wrong class"],
];
const MAX_NOTE_CHARS = 2000; // eowatch.store.feedback.MAX_NOTE_CHARS

function itemPath(item) {
  return `/collections/${encodeURIComponent(item.collection)}/items/${encodeURIComponent(item.id)}`;
}

function verdictText(v) {
  const corrected = v.verdict === "wrong_class" && (v.class_name || v.class != null)
    ? ` → ${escapeHTML(v.class_name || `class ${v.class}`)}`
    : "";
  const note = v.note ? `<div class="verdict-note">${escapeHTML(v.note)}</div>` : "";
  return `<li data-author="${escapeHTML(v.author)}" data-verdict="${escapeHTML(v.verdict)}">
    <span class="verdict verdict-${escapeHTML(v.verdict)}">${LABELS[v.verdict] || escapeHTML(v.verdict)}${corrected}</span>
    by ${escapeHTML(v.author)}, ${formatDate(v.updated)}${note}</li>`;
}

/** The verdicts on one result's polygons, and whether (and with which classes) the
 * signed-in user may give one. */
export class ItemFeedback {
  constructor(item, listing, user) {
    this.item = item;
    this.writable = Boolean(listing.writable);
    this.classes = listing.classes || [];
    this.verdicts = listing.verdicts || [];
    this.user = user;
  }

  static async load(item, user) {
    return new ItemFeedback(item, await getJSON(`${itemPath(item)}/feedback`), user);
  }

  on(polygon) {
    return this.verdicts.filter((v) => v.polygon === polygon);
  }

  /** Give (or replace) the user's verdict on `polygon`; keeps the list up to date. */
  async give(polygon, body) {
    const stored = await postJSON(`${itemPath(this.item)}/polygons/${polygon}/feedback`, body);
    this.verdicts = [
      ...this.verdicts.filter((v) => !(v.polygon === polygon && v.author === stored.author)),
      stored,
    ];
    return stored;
  }

  /** The popup's feedback part for `feature`: its verdicts, and the buttons when writable;
   * `onChange()` after it was redrawn (the popup fits itself to it). */
  section(feature, { onMessage, onChange }) {
    const box = document.createElement("div");
    box.className = "feedback";
    box.dataset.polygon = feature.id;
    this.render(box, feature);
    box.addEventListener("click", async (event) => {
      const button = event.target.closest("button[data-verdict]");
      if (!button) return;
      const form = box.querySelector(".verdict-form");
      const note = form.elements.namedItem("note").value.trim();
      const corrected = form.elements.namedItem("class").value;
      const body = { verdict: button.dataset.verdict, note };
      if (body.verdict === "wrong_class" && corrected) body.class = Number(corrected);
      for (const b of box.querySelectorAll("button")) b.disabled = true;
      try {
        const stored = await this.give(feature.id, body);
        this.render(box, feature);
        onChange();
        onMessage(`Verdict stored: ${LABELS[stored.verdict]} on polygon ${feature.id}.`);
      } catch (err) {
        for (const b of box.querySelectorAll("button")) b.disabled = false;
        box.querySelector(".feedback-error").textContent = `Not stored: ${err.message}`;
        onChange();
      }
    });
    return box;
  }

  render(box, feature) {
    const given = this.on(feature.id);
    const mine = given.find((v) => this.user && v.author === this.user.name);
    const own = feature.properties.class;
    const choices = this.classes
      .filter((c) => c.value !== own)
      .map((c) => `<option value="${c.value}">${escapeHTML(c.name)}</option>`)
      .join("");
    box.innerHTML = `<ul class="verdicts">${given.map(verdictText).join("") || '<li class="none">No verdict yet.</li>'}</ul>
      ${this.writable ? `<form class="verdict-form">
        <textarea name="note" rows="2" maxlength="${MAX_NOTE_CHARS}" placeholder="Note (optional)"
          aria-label="Note">${escapeHTML(mine ? mine.note : "")}</textarea>
        <div class="verdict-buttons">${BUTTONS.map(([value, text]) =>
          `<button type="button" data-verdict="${value}">${text}</button>`).join("")}</div>
        ${choices ? `<label>Right class <select name="class"><option value="">(not sure)</option>${choices}</select></label>` : '<input type="hidden" name="class" value="">'}
      </form>` : ""}
      <div class="feedback-error" role="alert"></div>`;
    const form = box.querySelector(".verdict-form");
    if (form) form.addEventListener("submit", (event) => event.preventDefault());
  }
}
