// The analyst map page: sign in, tasks and their AOIs, new tasks, results of a task.

import { geometryOf, TaskForm, TaskPanel } from "./tasks.js";
import { ResultsPanel } from "./results.js";
import { JobList } from "./jobs.js";
import { InboxPanel } from "./inbox.js";
import { addDrawing, createMap } from "./map.js";
import { loadConfig } from "./api.js";
import { messenger, setupSession } from "./session.js";

const REFRESH_MS = 4000;
const $ = (id) => document.getElementById(id);

/** The page's parts, once the configuration and the map are loaded; `session()` is the
 * sign-in session (wired before any of this, see `main`). */
async function start(session) {
  const config = await loadConfig();
  $("version").textContent = `v${config.version}`;
  const map = await createMap($("map"), config);
  const toggle = $("sidebar-toggle");
  toggle.addEventListener("click", () => {
    const collapsed = $("sidebar").classList.toggle("collapsed");
    toggle.setAttribute("aria-expanded", String(!collapsed));
    map.invalidateSize();
  });
  const say = messenger($("message"));
  let refreshTimer = null;

  const results = new ResultsPanel({
    map,
    onMessage: say,
    elements: {
      timeline: $("timeline"),
      details: $("result-details"),
      polygons: $("polygon-rows"),
      downloads: $("downloads"),
      compare: $("compare"),
      opacity: $("overlay-opacity"),
      showUnchanged: $("show-unchanged"),
      imagerySwipe: $("imagery-swipe"),
      resultSection: $("result-section"),
    },
  });
  const inbox = new InboxPanel({
    onMessage: say,
    onOpen: (alert) => results.openAlert(alert).catch((err) => say(`Cannot open the change: ${err.message}`, "error")),
    elements: {
      list: $("inbox-list"),
      count: $("inbox-count"),
      classFilter: $("inbox-class"),
      taskFilter: $("inbox-task"),
      since: $("inbox-since"),
      minConfidence: $("inbox-confidence"),
      markSeen: $("inbox-seen"),
    },
  });
  const jobs = new JobList($("job-list"));
  const tasks = new TaskPanel({
    map,
    list: $("task-list"),
    onMessage: say,
    onSelect: (task) => {
      $("results-title").textContent = task ? `Results of ${task.spec.name}` : "Results";
      results.showTask(task).catch((err) => say(`Cannot list results: ${err.message}`, "error"));
      jobs.show(task).catch((err) => say(`Cannot list jobs: ${err.message}`, "error"));
    },
  });
  const form = new TaskForm({
    form: $("task-form"),
    presetSelect: $("task-presets"),
    onMessage: say,
    onCreated: async (task) => {
      drawing.clear();
      form.setAOI(null);
      $("task-form").reset();
      form.renderPresets();
      await tasks.refresh();
      tasks.select(task.id);
    },
  });
  const drawing = addDrawing(map, (geometry) => form.setAOI(geometry, "the map"));
  form.setAOI(null);

  $("aoi-file").addEventListener("change", async (event) => {
    const file = event.target.files[0];
    if (!file) return;
    try {
      const geometry = geometryOf(JSON.parse(await file.text()));
      drawing.show(geometry);
      form.setAOI(geometry, file.name);
    } catch (err) {
      say(`${file.name} is not a usable AOI: ${err.message}`, "error");
    }
  });

  const refresh = async () => {
    try {
      await tasks.refresh();
      await Promise.all([results.refreshTimeline(), jobs.refresh(), inbox.refresh()]);
    } catch (err) {
      if (!session().check(err)) say(`Refresh failed: ${err.message}`, "error");
    }
  };

  return {
    async signedIn(who) {
      results.setUser(who);
      $("new-task").hidden = who.role === "partner";
      try {
        await Promise.all([
          tasks.refresh(),
          inbox.refresh(),
          who.role === "partner" ? null : form.loadPresets(),
        ]);
      } catch (err) {
        say(err.message, "error");
      }
      clearInterval(refreshTimer);
      refreshTimer = setInterval(refresh, REFRESH_MS);
    },
    signedOut() {
      clearInterval(refreshTimer);
      tasks.reset();
      results.showTask(null);
      jobs.show(null);
    },
  };
}

/** Wire the sign-in form at once, before the configuration and the map load: a key
 * entered meanwhile is checked, and its result shown once the page is ready (a form
 * without its handler would submit natively, reload the page and lose the key). */
function main() {
  let session = null;
  const ready = start(() => session);
  const whenReady = (use) => ready.then(use, () => {}); // a failed start is reported below
  session = setupSession({
    onSignedIn: (who) => whenReady((page) => page.signedIn(who)),
    onSignedOut: () => whenReady((page) => page.signedOut()),
  });
  return ready;
}

main().catch((err) => {
  const box = document.getElementById("message");
  box.textContent = `The application failed to start: ${err.message}`;
  box.className = "message error";
  box.hidden = false;
});
