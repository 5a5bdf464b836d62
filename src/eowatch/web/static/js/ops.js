// The operations dashboard: GET /ops/summary every few seconds, drawn as figures,
// tables and inline SVG charts. ?refresh=<seconds> changes the interval.

import { escapeHTML, getJSON, loadConfig } from "./api.js";
import { horizontalBars, sparkline, stackedBars, timeScatter } from "./charts.js";
import { messenger, setupSession } from "./session.js";

const $ = (id) => document.getElementById(id);
const REFRESH_S = Math.max(1, Number(new URLSearchParams(location.search).get("refresh")) || 5);
const MAX_SAMPLES = 360;
const JOBS_EVERY_S = 30; // the per-job run times cost one request per task: read them less often
const MAX_TASKS = 20;
const STATUS_COLOURS = { succeeded: "var(--ok)", failed: "var(--bad)" };

/** Run time of each finished job of the most recently changed tasks the caller may read. */
async function recentJobs() {
  const { tasks = [] } = await getJSON("/tasks");
  const recent = [...tasks].sort((a, b) => String(b.updated).localeCompare(String(a.updated))).slice(0, MAX_TASKS);
  const lists = await Promise.all(
    recent.map((task) =>
      getJSON(`/tasks/${encodeURIComponent(task.id)}/jobs?limit=50`).then((body) =>
        (body.jobs || []).map((job) => ({ ...job, taskName: task.spec.name })),
      ),
    ),
  );
  return lists.flat().filter((job) => job.finished && job.duration_s !== null && job.duration_s !== undefined);
}

function renderJobs(jobs) {
  const points = jobs.map((job) => ({
    t: job.finished,
    v: job.duration_s,
    colour: STATUS_COLOURS[job.status] || "var(--warn)",
    title: `${job.taskName} · ${job.preset} · ${job.status} · ${seconds(job.duration_s)} · ${job.finished}`,
  }));
  $("job-durations").replaceChildren(timeScatter(points, { label: "Run time of recent jobs" }));
}

function seconds(value) {
  if (value === null || value === undefined) return "–";
  if (value < 120) return `${value.toFixed(1)} s`;
  if (value < 7200) return `${(value / 60).toFixed(1)} min`;
  if (value < 172800) return `${(value / 3600).toFixed(1)} h`;
  return `${(value / 86400).toFixed(1)} d`;
}

function total(states, name) {
  return Object.values(states).reduce((sum, bySource) => sum + (bySource[name] || 0), 0);
}

/** The error class in bold, then the message without the class it may start with. */
function errorText(f) {
  const name = String(f.error_class || "");
  const short = name.split(".").pop();
  let message = String(f.error || "");
  for (const prefix of [`${name}: `, `${short}: `]) {
    if (prefix.length > 2 && message.startsWith(prefix)) message = message.slice(prefix.length);
  }
  return `<strong>${escapeHTML(short)}</strong> ${escapeHTML(message)}`;
}

/** Failures (newest first) with the same task, preset, class and message as one row: the
 * newest, with how many there were (a retried job fails the same way each time). */
function failureGroups(failures) {
  const groups = new Map();
  for (const f of failures) {
    const key = JSON.stringify([f.source, f.task, f.preset, f.error_class, f.error]);
    if (groups.has(key)) groups.get(key).count += 1;
    else groups.set(key, { f, count: 1 });
  }
  return [...groups.values()];
}

export function render(summary, samples) {
  const states = summary.jobs_by_state || {};
  $("queue-depth").textContent = summary.queue_depth ?? "–";
  $("running").textContent = total(states, "running");
  $("succeeded").textContent = total(states, "succeeded") + total(states, "successful");
  $("failed").textContent = total(states, "failed");
  const latency = summary.latency_s || {};
  const acquisition = latency.acquisition_to_product || latency;
  $("latency-median").textContent = seconds(acquisition.median);

  const rows = Object.entries(states).flatMap(([source, byState]) =>
    Object.entries(byState).filter(([, n]) => n > 0).map(([state, n]) => `<tr data-source="${escapeHTML(source)}" data-state="${escapeHTML(state)}">
      <td>${escapeHTML(source)}</td><td><span class="state state-${escapeHTML(state)}">${escapeHTML(state)}</span></td>
      <td class="num">${n}</td></tr>`),
  );
  $("jobs-by-state").innerHTML = rows.join("") || '<tr><td colspan="3">No jobs yet.</td></tr>';

  const span = summary.throughput_window;
  $("throughput-window").textContent = span ? `(last ${span.hours} h, ${span.bucket_s / 60}-minute bars)` : "";
  $("throughput").replaceChildren(
    stackedBars(summary.throughput || [], [
      { key: "succeeded", colour: "var(--ok)" },
      { key: "failed", colour: "var(--bad)" },
    ], { label: "Jobs finished per interval" }),
  );

  const durations = Object.entries(summary.duration_s || {}).map(([preset, s]) => ({
    label: preset, value: s.median, extra: s.p90,
    text: `${seconds(s.median)} (p90 ${seconds(s.p90)}, n=${s.count})`,
  }));
  $("durations").replaceChildren(
    durations.length
      ? horizontalBars(durations, { label: "Run time per preset" })
      : Object.assign(document.createElement("p"), { className: "note", textContent: "No finished jobs yet." }),
  );

  const measures = [
    ["Acquisition → product (live)", latency.acquisition_to_product || latency],
    ["Acquisition → product (backfill of past dates)", latency.backfill_acquisition_to_product],
    ["Queued → product", latency.enqueued_to_product],
  ].filter(([, s]) => s);
  $("latency").innerHTML = measures
    .map(([name, s]) => `<tr><td>${name}</td><td class="num">${s.count ?? 0}</td><td class="num">${seconds(s.median)}</td>
      <td class="num">${seconds(s.p90)}</td></tr>`)
    .join("");
  $("latency-note").textContent = latency.description || "";

  $("queue-history").replaceChildren(sparkline(samples, { label: "Queue depth over time" }));

  $("failures").innerHTML =
    failureGroups(summary.recent_failures || [])
      .map(({ f, count }) => `<tr><td>${escapeHTML(String(f.time || "").replace("T", " ").slice(0, 19))}</td>
        <td>${escapeHTML(f.source)}</td><td>${escapeHTML(f.task || "")}</td><td>${escapeHTML(f.preset || "")}</td>
        <td class="error-text">${errorText(f)}${count > 1 ? ` <span class="repeat">× ${count}</span>` : ""}</td></tr>`)
      .join("") || '<tr><td colspan="5">No failures.</td></tr>';
  $("updated").textContent = new Date().toISOString().slice(11, 19) + " UTC";
}

/** Wire the sign-in form at once (see analyst.js), then load the configuration. */
async function main() {
  const config = loadConfig();
  $("refresh-s").textContent = REFRESH_S;
  const say = messenger($("message"));
  const samples = [];
  let timer = null;
  let jobsReadAt = 0;

  const refresh = async () => {
    try {
      const summary = await getJSON("/ops/summary");
      samples.push({ t: Date.now(), v: summary.queue_depth || 0 });
      if (samples.length > MAX_SAMPLES) samples.shift();
      render(summary, samples);
      if (Date.now() - jobsReadAt >= JOBS_EVERY_S * 1000) {
        jobsReadAt = Date.now();
        renderJobs(await recentJobs());
      }
    } catch (err) {
      if (session.check(err)) return;
      if (err.status === 403) clearInterval(timer); // this role may not read it: asking again will not help
      say(`Cannot read the operations summary: ${err.message}`, "error");
    }
  };
  const session = setupSession({
    onSignedIn: () => {
      jobsReadAt = 0;
      refresh();
      clearInterval(timer);
      timer = setInterval(refresh, REFRESH_S * 1000);
    },
    onSignedOut: () => clearInterval(timer),
  });
  $("version").textContent = `v${(await config).version}`;
}

main().catch((err) => {
  const box = document.getElementById("message");
  box.textContent = `The dashboard failed to start: ${err.message}`;
  box.className = "message error";
  box.hidden = false;
});
