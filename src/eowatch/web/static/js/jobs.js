// The jobs of the selected task (GET /tasks/{id}/jobs): what ran, what is waiting, and
// why a job failed — the answer to "why is there no result yet?".

import { escapeHTML, getJSON } from "./api.js";

const SHOWN = 20;

export class JobList {
  constructor(element) {
    this.element = element;
    this.task = null;
    this.signature = null;
  }

  async show(task) {
    this.task = task;
    this.signature = null;
    this.element.innerHTML = "";
    if (task) await this.refresh();
  }

  async refresh() {
    const task = this.task;
    if (!task) return;
    const { jobs = [] } = await getJSON(`/tasks/${encodeURIComponent(task.id)}/jobs?limit=${SHOWN}`);
    if (this.task !== task) return;
    const signature = JSON.stringify(jobs);
    if (signature === this.signature) return;
    this.signature = signature;
    this.element.innerHTML =
      jobs
        .map((job) => `<li data-job-id="${escapeHTML(job.id)}" data-status="${escapeHTML(job.status)}">
          <span class="state state-${escapeHTML(job.status)}">${escapeHTML(job.status)}</span>
          <span class="job-preset">${escapeHTML(job.preset)}</span>
          <span class="job-time">${escapeHTML(String(job.finished || job.started || job.created || "").replace("T", " ").slice(0, 16))}</span>
          ${job.duration_s !== null && job.duration_s !== undefined ? `<span class="job-time">${job.duration_s.toFixed(1)} s</span>` : ""}
          ${job.error ? `<div class="job-error">${escapeHTML(job.error)}</div>` : ""}
        </li>`)
        .join("") || '<li class="empty">No jobs yet: the task has not found a new pair of acquisitions.</li>';
  }
}
