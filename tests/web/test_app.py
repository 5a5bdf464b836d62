"""The web application in a real browser (Debian's chromium through Playwright)
against ``eowatch serve --scheduler --worker``: sign in, create a monitoring
task from the Paris AOI, trigger it, follow its result onto the map (change-map
tiles, polygons, comparison, downloads), see it on the operations dashboard, and
check that a partner without a grant sees none of it."""

from __future__ import annotations

import io
import json
import time
import zipfile
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from PIL import Image
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from eowatch.pipeline import DetectRequest, detect_pair
from eowatch.results import ResultsCatalog
from eowatch.settings import Settings
from eowatch.store.auth import AccessStore

from .conftest import Service, WatchedPage

pytestmark = pytest.mark.slow

TASK = "paris-web"
RESULT_TIMEOUT_MS = 180_000


def sign_in(page: WatchedPage, url: str, key: str) -> None:
    page.page.goto(url)
    page.page.fill("#key-input", key)
    page.page.click("#sign-in")


def api(service: Service, user: str, path: str) -> Any:
    response = httpx.get(f"{service.url}{path}", headers={"X-API-Key": service.keys[user]}, timeout=30)
    response.raise_for_status()
    return response.json()


def visual_zoom(page: WatchedPage, at_least: int, timeout_s: float = 30) -> int:
    """The highest zoom of the imagery tiles requested, once one at ``at_least`` or more
    was (maps ask for tiles of a new view a moment after it is set)."""

    def highest() -> int:
        zooms = [int(r.url.split("_visual/")[1].split("/")[0]) for r in page.responses if "_visual/" in r.url]
        return max(zooms, default=0)

    deadline = time.monotonic() + timeout_s
    while highest() < at_least and time.monotonic() < deadline:
        page.page.wait_for_timeout(200)
    return highest()


def diagnosis(service: Service, user: str, task: str) -> str:
    """The task's poll error, its jobs and the end of the server's log (why nothing came)."""
    doc = api(service, user, f"/tasks/{task}")
    jobs = api(service, user, f"/tasks/{task}/jobs")["jobs"]
    log = service.log.read_text(errors="replace")[-4000:]
    return f"poll error {doc.get('last_poll_error')!r}; jobs {jobs}; server log:\n{log}"


def test_pages_are_public_and_the_data_is_not(service: Service) -> None:
    with httpx.Client(base_url=service.url, timeout=30) as client:
        page = client.get("/app/")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert 'src="js/analyst.js"' in page.text and "vendor/leaflet/leaflet.js" in page.text
        assert client.get("/app", follow_redirects=False).headers["location"] == "/app/"
        assert client.get("/app/ops.html").status_code == 200
        script = client.get("/app/js/api.js")
        assert script.status_code == 200 and script.headers["content-type"].startswith("text/javascript")
        assert client.get("/app/vendor/leaflet/leaflet.js").status_code == 200
        config = client.get("/app/config.json").json()
        assert config["basemap"] is None  # offline outlines unless web_basemap_url is set
        outlines = client.get(f"/app/{config['outlines']}")
        assert outlines.status_code == 200 and json.loads(outlines.content)["type"] == "Topology"
        # no file outside the static folder, however the path is spelled
        assert client.get("/app/%2e%2e/routes.py").status_code == 404
        assert client.get("/app/..%2f__init__.py").status_code == 404
        assert client.get("/app/missing.js").status_code == 404
        # the data stays behind the key
        assert client.get("/tasks").status_code == 401
        assert client.get("/search").status_code == 401


def test_a_wrong_key_is_refused_with_a_clear_message(service: Service, watched: Any) -> None:
    page = watched()
    sign_in(page, f"{service.url}/app/", "eow_this-is-not-a-key")
    message = page.page.locator("#auth-error")
    message.filter(has_text="not accepted").wait_for()
    assert "ask an administrator" in message.inner_text()
    assert page.page.locator("#sign-in-form").is_visible() and not page.page.locator("#whoami").is_visible()
    assert page.page.evaluate("sessionStorage.getItem('eowatch.apiKey')") is None
    page.shot("00-wrong-key")
    # the refused /whoami is the one failure the browser may report
    assert page.console_errors(allowed=("status of 401",)) == []
    assert any(r.url.endswith("/whoami") and r.status == 401 for r in page.responses)


def test_sign_in_before_the_page_has_finished_loading(service: Service, watched: Any) -> None:
    """A key typed while the configuration and the map still load (a cold server, a slow
    link) is checked, not lost to a native form submission that reloads the page."""
    page = watched()
    held: list[Any] = []
    page.page.route("**/app/config.json", lambda route: held.append(route))  # answered later
    sign_in(page, f"{service.url}/app/", service.keys["ana"])
    page.page.locator("#whoami").filter(has_text="analyst").wait_for(timeout=15_000)
    assert page.page.url.rstrip("/").endswith("/app") and held, "the page reloaded or never asked"
    held[0].continue_()
    page.page.unroute("**/app/config.json")
    page.page.wait_for_selector(".leaflet-outlines-pane path", state="attached")
    page.page.locator("#task-list").wait_for()
    assert page.console_errors() == []


def test_world_view_has_no_antimeridian_stripes(service: Service, watched: Any) -> None:
    """Country outlines that cross the antimeridian (Russia, Fiji) drawn the wrong way
    round fill whole rows of the world view (stripes at about 65-70 N and 17 S). The
    partner sees no task, so the map stays at its first view (centre 30 N 10 E, zoom 2):
    every row between 75 N and 60 S must show ocean somewhere."""
    page = watched()
    sign_in(page, f"{service.url}/app/", service.keys["pat"])
    page.page.locator("#whoami").filter(has_text="partner").wait_for()
    page.page.wait_for_selector(".leaflet-outlines-pane path", state="attached")
    page.page.wait_for_timeout(500)  # the SVG renderer draws on the next frame
    shot = page.page.locator("#map").screenshot()
    page.shot("00-world-view")
    rgb = np.asarray(Image.open(io.BytesIO(shot)).convert("RGB")).astype(int)
    height, width, _ = rgb.shape
    ocean = np.abs(rgb - np.array([197, 217, 234])).sum(-1) < 40  # .map.offline-basemap
    land = np.abs(rgb - np.array([233, 238, 243])).sum(-1) < 40  # the outlines' fill
    line = ~ocean & ~land  # outline strokes (and their anti-aliasing)

    def longest_run(flags: np.ndarray) -> int:
        edges = np.flatnonzero(np.diff(np.r_[0, flags.astype(int), 0]))
        return int((edges[1::2] - edges[::2]).max()) if edges.size else 0

    def row(lat: float) -> int:  # Web Mercator at zoom 2 (1024 px around the world)
        merc = lambda phi: np.log(np.tan(np.pi / 4 + np.radians(phi) / 2))  # noqa: E731
        return int(round(height / 2 - (merc(lat) - merc(30.0)) * 1024 / (2 * np.pi)))

    top, bottom = max(row(80.0), 0), min(row(-60.0), height)
    assert bottom - top > 300, (top, bottom, height)
    # A border along a parallel is at most ~100 px long at zoom 2 (49 N: 80 px); a stripe
    # crosses the whole world (1024 px).
    runs = {y: longest_run(line[y]) for y in range(top, bottom)}
    stripes = {y: n for y, n in runs.items() if n > 250}
    assert not stripes, f"horizontal lines across the map at rows {stripes} (of {height})"
    assert land.mean() > 0.1 and ocean.mean() > 0.3  # the outlines are drawn at all
    assert page.console_errors() == []


def test_analyst_creates_a_task_and_follows_its_result(service: Service, watched: Any, paris: Path) -> None:
    page = watched()
    p = page.page
    started = time.perf_counter()
    sign_in(page, f"{service.url}/app/", service.keys["ana"])
    p.locator("#whoami").filter(has_text="analyst").wait_for()
    assert "ana" in p.inner_text("#whoami")
    p.wait_for_selector(".leaflet-outlines-pane path", state="attached")  # offline country outlines
    timings = {"open + sign in + outlines": time.perf_counter() - started}
    page.shot("01-signed-in")

    # a new task from the uploaded Paris AOI
    p.click("#new-task-details summary")
    p.set_input_files("#aoi-file", str(paris / "paris.geojson"))
    p.locator("#aoi-status.ready").filter(has_text="paris.geojson").wait_for()
    p.fill("#task-name", TASK)
    p.wait_for_selector("#task-presets option[value='s2-imad']", state="attached")
    assert "s1-logratio" not in p.inner_text("#task-presets")  # Sentinel-2 only: S2 presets only
    p.select_option("#task-presets", "s2-imad")
    p.fill("#task-start", "2016-11-01")
    p.fill("#task-end", "2017-11-30")
    p.fill("#task-cadence", "86400")
    page.shot("02-task-form")
    p.click("#task-create")
    row = p.locator("#task-list li[data-task-id]").filter(has_text=TASK)
    row.wait_for()
    assert row.locator(".state").inner_text() == "active"
    (task,) = api(service, "ana", "/tasks")["tasks"]
    assert task["spec"]["presets"] == ["s2-imad"] and task["spec"]["sensors"] == ["sentinel-2"]
    assert task["spec"]["start"].startswith("2016-11-01") and task["spec"]["end"].startswith("2017-11-30")
    assert task["spec"]["aoi"]["type"] in ("Polygon", "MultiPolygon")
    page.shot("03-task-created")

    row.locator("button[data-action='trigger']").click()
    triggered = time.perf_counter()
    p.locator("#message.info").filter(has_text=f"Check requested for task {TASK}").wait_for()

    # the result appears in the timeline (scheduler -> queue -> worker -> catalogue)
    result = p.locator("#timeline li[data-item-id]")
    try:
        result.first.wait_for(timeout=RESULT_TIMEOUT_MS)
    except PlaywrightTimeout:
        pytest.fail(f"no result in the timeline: {diagnosis(service, 'ana', TASK)}")
    timings["trigger -> result in timeline"] = time.perf_counter() - triggered
    assert "2016-11-30 → 2017-11-07" in result.first.inner_text()
    page.shot("04-result-in-timeline")

    tile_responses = len(page.responses)
    selected = time.perf_counter()
    result.first.click()
    p.wait_for_selector("#result-section:not([hidden])")
    polygons = p.locator("#polygon-rows tr[data-polygon]")
    polygons.first.wait_for()
    item = api(service, "ana", f"/collections/task-{TASK}/items")["features"][0]
    assert polygons.count() == min(300, item["properties"]["eowatch:polygon_count"]) > 0
    p.wait_for_function(
        "document.querySelectorAll('.change-tiles img.leaflet-tile-loaded').length > 0", timeout=30_000
    )
    p.wait_for_function("!document.querySelector('.change-tiles img:not(.leaflet-tile-loaded)')")
    timings["select result -> polygons + all tiles"] = time.perf_counter() - selected
    tiles = [r for r in page.responses[tile_responses:] if "/tiles/change_map/" in r.url]
    assert tiles, "no change-map tile was requested"
    for response in tiles:
        assert response.status == 200, response.url
        assert response.headers["content-type"] == "image/png"
    loaded = p.evaluate(
        "[...document.querySelectorAll('.change-tiles img.leaflet-tile-loaded')].map(i => i.naturalWidth)"
    )
    assert loaded and set(loaded) == {256}
    # unchanged pixels are see-through, changed ones are drawn
    alpha = p.evaluate(
        """() => {
          const counts = {clear: 0, drawn: 0};
          for (const img of document.querySelectorAll('.change-tiles img.leaflet-tile-loaded')) {
            const c = document.createElement('canvas'); c.width = c.height = 256;
            const g = c.getContext('2d'); g.drawImage(img, 0, 0);
            const px = g.getImageData(0, 0, 256, 256).data;
            for (let i = 3; i < px.length; i += 4) px[i] ? counts.drawn++ : counts.clear++;
          }
          return counts;
        }"""
    )
    assert alpha["clear"] > 0 and alpha["drawn"] > 0, alpha
    # the before and after imagery under the change layer (the run's visual COGs), with a swipe
    loaded_imagery = "document.querySelectorAll('.imagery-after img.leaflet-tile-loaded').length > 0"
    p.wait_for_function(loaded_imagery, timeout=30_000)
    pending = (
        "document.querySelector('.imagery-before img:not(.leaflet-tile-loaded), "
        ".imagery-after img:not(.leaflet-tile-loaded)')"
    )
    p.wait_for_function(f"!{pending}")
    timings["select result -> imagery + changes + polygons"] = time.perf_counter() - selected
    imagery = [r for r in page.responses[tile_responses:] if "_visual/" in r.url]
    assert {"before_visual", "after_visual"} <= {r.url.split("/tiles/")[1].split("/")[0] for r in imagery}
    assert all(r.status == 200 for r in imagery)
    swipe = p.locator("#imagery-swipe")
    assert swipe.is_visible()
    box = p.locator("#map").bounding_box()
    assert box is not None
    region = {"x": box["x"] + box["width"] * 0.3, "y": box["y"] + box["height"] * 0.3,
              "width": box["width"] * 0.4, "height": box["height"] * 0.4}  # fmt: skip
    shots = {}
    for value in ("0", "100"):  # all after, all before
        swipe.fill(value)
        p.wait_for_timeout(200)
        shots[value] = np.asarray(Image.open(io.BytesIO(p.screenshot(clip=region))).convert("RGB")).astype(
            int
        )
    for shot in shots.values():  # imagery, not a flat background: thousands of colours
        assert len(np.unique(shot.reshape(-1, 3), axis=0)) > 2000
    assert np.abs(shots["0"] - shots["100"]).mean() > 5  # the two dates differ where the swipe moved
    divider = p.evaluate("getComputedStyle(document.querySelector('.swipe-divider')).left")
    assert abs(float(divider.rstrip("px")) - box["width"]) < 2
    swipe.fill("50")
    p.wait_for_timeout(200)
    legend = p.locator(".map-legend")
    assert legend.is_visible() and "other change" in legend.inner_text()  # the classes, on the map
    page.shot("05a-imagery-under-changes")  # before on the left of the divider, after on the right
    # the comparison cut from the quicklook: before and after panels of the raster's aspect
    p.wait_for_selector("#compare:not([hidden]) .compare-view canvas.over")
    sizes = p.evaluate("[...document.querySelectorAll('.compare-view canvas')].map(c => [c.width, c.height])")
    rows, cols = item["properties"]["proj:shape"]
    assert len(sizes) == 2 and all(abs(h / w - rows / cols) < 0.02 for w, h in sizes), sizes
    p.locator("#compare-swipe").fill("20")
    assert "inset(0px 80%" in p.evaluate("document.querySelector('.compare-view canvas.over').style.clipPath")
    page.shot("05-result-selected")

    # a polygon's popup tells class, area, confidence and both dates
    polygons.first.click()
    popup = p.locator(".leaflet-popup-content")
    popup.wait_for()
    text = popup.inner_text()
    assert "Area:" in text and "Confidence:" in text and "2016-11-30 → 2017-11-07" in text
    page.shot("06-polygon-popup")
    # zoomed to the polygon: the imagery is drawn from tiles at full resolution (zoom >= 15,
    # under 5 m per pixel for 10 m bands)
    assert visual_zoom(page, 15) >= 15
    page.shot("06a-full-resolution")

    # downloads go through the key (fetch + object URL)
    with p.expect_download() as download_info:
        p.click("#downloads button[data-asset='polygons']")
    saved = Path(download_info.value.path())
    downloaded = json.loads(saved.read_text())
    assert len(downloaded["features"]) == item["properties"]["eowatch:polygon_count"]
    assert download_info.value.suggested_filename.endswith("-polygons.geojson")

    # a task whose parameters its preset refuses: its job fails, and says why
    p.set_input_files("#aoi-file", str(paris / "paris.geojson"))
    p.fill("#task-name", "paris-bad")
    p.select_option("#task-presets", "s2-imad")
    p.fill("#task-params", "alpha=2")
    p.fill("#task-start", "2016-11-01")
    p.click("#task-create")
    bad = p.locator("#task-list li[data-task-id]").filter(has_text="paris-bad")
    bad.wait_for()
    assert api(service, "ana", "/tasks/paris-bad")["spec"]["params"] == {"s2-imad": {"alpha": 2}}
    bad.locator("button[data-action='trigger']").click()
    p.click("#jobs-details summary")  # the selected task's jobs tell why it has no result
    failed_job = p.locator("#job-list li[data-status='failed']")
    try:
        failed_job.wait_for(timeout=RESULT_TIMEOUT_MS)
    except PlaywrightTimeout:
        pytest.fail(f"the job did not fail: {diagnosis(service, 'ana', 'paris-bad')}")
    assert "ParameterError" in failed_job.inner_text() and "alpha" in failed_job.inner_text()
    assert p.locator("#timeline li.empty").is_visible()
    page.shot("07-failed-job")

    # the operations dashboard counts the job as succeeded and shows the failure with its message
    p.click("nav a[href='ops.html']")
    p.locator("#whoami").filter(has_text="ana").wait_for()  # same tab: the key is still in sessionStorage
    cell = p.locator("#jobs-by-state tr[data-source='monitoring'][data-state='succeeded'] td.num")
    cell.wait_for()
    assert int(cell.inner_text()) >= 1
    assert int(p.inner_text("#succeeded")) >= 1
    p.wait_for_selector("#throughput rect[data-series='succeeded']")
    p.wait_for_selector("#durations rect[data-label='s2-imad']")
    succeeded_dot = p.locator("#job-durations circle[fill='var(--ok)']")
    succeeded_dot.first.wait_for()
    assert float(succeeded_dot.first.get_attribute("data-value") or 0) > 0  # the job's run time, seconds
    # the bundled dates are from 2017: a backfill, reported apart from the live latency
    assert p.inner_text("#latency-median") == "–"
    backfill = p.locator("#latency tr").filter(has_text="backfill")
    assert int(backfill.locator("td.num").first.inner_text()) >= 1
    assert backfill.locator("td.num").nth(1).inner_text().endswith(" d")
    failure = p.locator("#failures tr").filter(has_text="paris-bad")
    failure.wait_for(timeout=RESULT_TIMEOUT_MS)
    assert "alpha" in failure.inner_text() and failure.inner_text().count("ParameterError") == 1
    assert int(p.inner_text("#failed")) >= 1
    page.shot("08-dashboard")
    measured = ", ".join(f"{k} {v:.2f}" for k, v in timings.items())
    print(f"\nweb timings (s): {measured}; {len(tiles)} change-map tiles")
    assert page.console_errors() == []

    # a partner without a grant sees no task and no result
    partner = watched()
    sign_in(partner, f"{service.url}/app/", service.keys["pat"])
    partner.page.locator("#whoami").filter(has_text="partner").wait_for()
    partner.page.locator("#task-list li.empty").wait_for()
    assert partner.page.locator("#task-list li[data-task-id]").count() == 0
    assert not partner.page.locator("#new-task").is_visible()
    seen = partner.page.evaluate(
        """async () => {
          const key = sessionStorage.getItem('eowatch.apiKey');
          const headers = {Authorization: `Bearer ${key}`};
          const r = await fetch('/search?collections=task-paris-web', {headers});
          return (await r.json()).features.length;
        }"""
    )
    assert seen == 0
    partner.shot("09-partner-sees-nothing")
    assert partner.console_errors() == []

    # granted the task's collection, the partner reads that task and its result, and changes nothing
    catalog = ResultsCatalog(service.database)
    AccessStore(catalog.engine).grant("acme", f"task-{TASK}")
    catalog.close()
    q = partner.page
    q.reload()
    shared = q.locator("#task-list li[data-task-id]")
    shared.first.wait_for()
    assert shared.count() == 1 and TASK in shared.first.inner_text()  # not paris-bad
    assert not shared.first.locator(".task-actions").is_visible()
    shared.first.locator("[data-action='select']").click()
    q.locator("#timeline li[data-item-id]").first.click()
    q.locator("#polygon-rows tr[data-polygon]").first.wait_for()
    q.wait_for_function("document.querySelectorAll('.change-tiles img.leaflet-tile-loaded').length > 0")
    partner.shot("10-partner-with-grant")
    assert partner.console_errors() == []

    # the dashboard is for admins and analysts: a partner is told so once, not every refresh
    q.click("nav a[href='ops.html']")
    q.locator("#message.error").filter(has_text="partner role may not").wait_for()
    q.wait_for_timeout(6_000)  # longer than the 5 s refresh
    asked = [r for r in partner.responses if r.url.endswith("/ops/summary")]
    assert [r.status for r in asked] == [403]
    partner.shot("11-partner-dashboard-refused")
    assert partner.console_errors(allowed=(f"status of 403 (Forbidden) ({service.url}/ops/summary)",)) == []


def test_inbox_shows_new_changes_and_opens_one(
    service: Service, watched: Any, paris: Path, tmp_path: Path
) -> None:
    """The admin's inbox after the analyst's result: its polygons, most confident first;
    one click opens the result zoomed to the change with the before/after imagery;
    "Mark seen" empties it until a new result is catalogued."""
    page = watched()
    p = page.page
    sign_in(page, f"{service.url}/app/", service.keys["ada"])
    p.locator("#whoami").filter(has_text="admin").wait_for()
    first = p.locator("#inbox-list li[data-alert]").first
    first.wait_for(timeout=RESULT_TIMEOUT_MS)
    assert "new change" in p.inner_text("#inbox-count")
    shown = [float(t.rstrip(" %")) for t in p.locator("#inbox-list .alert-confidence").all_inner_texts()]
    assert shown == sorted(shown, reverse=True)
    page.shot("11-inbox")
    first.click()
    p.wait_for_selector("#result-section:not([hidden])")
    p.locator(".leaflet-popup-content").wait_for()

    alert = api(service, "ada", "/inbox?limit=1")["alerts"][0]
    assert visual_zoom(page, 15) >= 15, alert  # zoomed to the change, at full resolution
    page.shot("11b-inbox-opened")
    p.click("#inbox-seen")
    p.locator("#inbox-list li.empty").filter(has_text="Nothing new").wait_for()
    # a new result (another collection) appears after the next refresh
    product = detect_pair(
        DetectRequest(paris / "imgs_1", paris / "imgs_2", preset="s2-cva"),
        Settings(output_dir=tmp_path),
        tmp_path / "s2-cva",
    ).folder
    catalog = ResultsCatalog(service.database)
    catalog.ingest_folder(product, "inbox-web")
    catalog.close()
    later = watched()  # the admin opens the application again
    sign_in(later, f"{service.url}/app/", service.keys["ada"])
    later.page.locator("#inbox-list li[data-alert]").first.wait_for()
    collections = set(later.page.locator("#inbox-list .alert-meta").all_inner_texts())
    assert collections and all("inbox-web" in c for c in collections)
    later.shot("11c-inbox-after-a-new-result")
    assert page.console_errors() == [] and later.console_errors() == []


def test_narrow_screen_and_keyboard(service: Service, watched: Any) -> None:
    """At 360 px wide the sidebar sits above a usable map and collapses; a result is
    opened from the keyboard alone (Tab to the timeline row, Enter). Runs after the
    analyst's test, whose task has a result."""
    page = watched()
    p = page.page
    p.set_viewport_size({"width": 360, "height": 740})
    sign_in(page, f"{service.url}/app/", service.keys["ana"])
    p.locator("#whoami").filter(has_text="analyst").wait_for()
    p.locator("#task-list li[data-task-id]").filter(has_text=TASK).locator(
        "button[data-action='select']"
    ).click()
    row = p.locator("#timeline li[data-item-id]").first
    row.wait_for(timeout=RESULT_TIMEOUT_MS)
    assert p.evaluate("document.scrollingElement.scrollWidth") <= 360  # nothing wider than the screen
    box = p.locator("#map").bounding_box()
    assert box is not None and box["width"] >= 340 and box["height"] >= 300, box
    row.focus()
    p.keyboard.press("Enter")
    p.wait_for_selector("#result-section:not([hidden])")
    p.locator("#polygon-rows tr[data-polygon]").first.wait_for()
    page.shot("10-narrow-result")
    toggle = p.locator("#sidebar-toggle")
    assert toggle.is_visible() and toggle.get_attribute("aria-expanded") == "true"
    toggle.focus()
    p.keyboard.press("Enter")
    assert toggle.get_attribute("aria-expanded") == "false" and not p.locator("#sidebar").is_visible()
    grown = p.locator("#map").bounding_box()
    assert grown is not None and grown["height"] > box["height"] + 150, (box, grown)
    page.shot("10b-narrow-map")
    p.set_viewport_size({"width": 3840, "height": 2160})  # a 4K screen: the map takes the room
    p.wait_for_timeout(300)
    assert not toggle.is_visible() and p.locator("#sidebar").is_visible()  # beside the map again
    wide = p.locator("#map").bounding_box()
    assert wide is not None and wide["width"] > 3400 and wide["height"] > 2000, wide
    page.shot("10c-4k")
    assert page.console_errors() == []


def test_admin_draws_an_aoi_then_pauses_and_resumes(service: Service, watched: Any, paris: Path) -> None:
    page = watched()
    p = page.page
    sign_in(page, f"{service.url}/app/", service.keys["ada"])
    p.locator("#whoami").filter(has_text="admin").wait_for()
    p.click("#new-task-details summary")
    p.wait_for_selector("#task-presets option[value='s2-imad']", state="attached")
    box = p.locator("#map").bounding_box()
    assert box is not None
    centre_x, centre_y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2

    def draw_rectangle(half: float) -> None:
        p.click(".leaflet-draw-draw-rectangle")
        p.mouse.move(centre_x - half, centre_y - half)
        p.mouse.down()
        p.mouse.move(centre_x, centre_y, steps=5)
        p.mouse.move(centre_x + half, centre_y + half, steps=5)
        p.mouse.up()
        p.locator("#aoi-status.ready").filter(has_text="the map").wait_for()

    # at world zoom a rectangle covers a continent: refused, with the limit named
    draw_rectangle(120)
    p.fill("#task-name", "too-big")
    p.click("#task-create")
    p.locator("#message.error").filter(has_text="km²").wait_for()
    assert "The task was not created" in p.inner_text("#message")
    page.shot("20-aoi-too-large")

    # zoom onto Paris (from its file), then draw a small rectangle there: a Sentinel-1 task on a cron
    p.set_input_files("#aoi-file", str(paris / "paris.geojson"))
    p.locator("#aoi-status.ready").filter(has_text="paris.geojson").wait_for()
    # a polygon: click its corners, close it on the first one
    p.click(".leaflet-draw-draw-polygon")
    corners = [(-50, -40), (50, -45), (40, 50), (-45, 40)]
    for dx, dy in [*corners, corners[0]]:
        p.mouse.click(centre_x + dx, centre_y + dy)
        p.wait_for_timeout(150)
    p.locator("#aoi-status.ready").filter(has_text="Polygon from the map").wait_for()
    draw_rectangle(60)
    p.uncheck("input[name='sensor'][value='sentinel-2']")
    p.check("input[name='sensor'][value='sentinel-1']")
    presets = p.locator("#task-presets option").all_inner_texts()
    assert presets and all(name.startswith("s1-") for name in presets), presets
    p.select_option("#task-presets", "s1-logratio")
    p.fill("#task-name", "drawn-box")
    p.fill("#task-cadence", "0 6 * * *")
    p.click("#task-create")
    row = p.locator("#task-list li[data-task-id]").filter(has_text="drawn-box")
    row.wait_for()
    task = api(service, "ada", "/tasks/drawn-box")
    assert task["spec"]["sensors"] == ["sentinel-1"] and task["spec"]["cadence"] == "0 6 * * *"
    assert task["spec"]["aoi"]["type"] == "Polygon" and len(task["spec"]["aoi"]["coordinates"][0]) == 5
    ring = task["spec"]["aoi"]["coordinates"][0]
    west, south = min(c[0] for c in ring), min(c[1] for c in ring)
    assert 2.2 < west < 2.5 and 48.7 < south < 48.9  # drawn over Paris
    assert len({c[0] for c in ring}) == 2 and len({c[1] for c in ring}) == 2  # the rectangle, not the polygon
    page.shot("21-drawn-task")

    row.locator("button[data-action='pause']").click()
    row.locator(".state").filter(has_text="paused").wait_for()
    assert api(service, "ada", "/tasks/drawn-box")["state"] == "paused"
    assert row.locator("button[data-action='trigger']").is_disabled()
    row.locator("button[data-action='resume']").click()
    row.locator(".state").filter(has_text="active").wait_for()
    assert api(service, "ada", "/tasks/drawn-box")["state"] == "active"
    page.shot("22-paused-and-resumed")
    refused = f"status of 400 (Bad Request) ({service.url}/tasks)"  # the too-large AOI, and nothing else
    assert len(page.console_errors()) == 1 and page.console_errors(allowed=(refused,)) == []

    # a key revoked while the page is open: the next refresh signs out and says why
    catalog = ResultsCatalog(service.database)
    access = AccessStore(catalog.engine)
    access.revoke_key(service.keys["ada"])
    service.keys["ada"] = access.create_key("ada")  # for any later test
    catalog.close()
    p.locator("#auth-error").filter(has_text="no longer accepted").wait_for(timeout=15_000)
    assert p.locator("#sign-in-form").is_visible() and p.locator("#task-list").is_hidden()
    assert p.evaluate("sessionStorage.getItem('eowatch.apiKey')") is None
    page.shot("23-key-revoked")


def test_analyst_confirms_a_polygon_and_sees_the_verdict_after_reload(
    service: Service, watched: Any, paris: Path, tmp_path: Path
) -> None:
    """A result of a task's collection: the analyst confirms a polygon from its popup (with a
    note), the verdict is stored and shown again after a reload; a partner with a read-only
    grant sees it without the buttons."""
    collection = "feedback-web"
    product = detect_pair(
        DetectRequest(paris / "imgs_1", paris / "imgs_2", preset="s2-imad"),
        Settings(output_dir=tmp_path),
        tmp_path / "s2-imad",
    ).folder
    catalog = ResultsCatalog(service.database)
    item = catalog.ingest_folder(product, collection)
    access = AccessStore(catalog.engine)
    access.create_user("rea", "partner", "readers")
    service.keys["rea"] = access.create_key("rea")
    access.grant("readers", collection)  # read only
    access.create_user("ali", "analyst", "lab")  # a colleague of the analyst
    service.keys["ali"] = access.create_key("ali")
    catalog.close()
    aoi = json.loads((paris / "paris.geojson").read_text())
    # paused, and no imagery in its period: the task never runs a job
    task = {"name": collection, "aoi": aoi, "presets": ["s2-imad"], "collection": collection,
            "start": "2020-01-01", "end": "2020-02-01"}  # fmt: skip
    headers = {"X-API-Key": service.keys["ana"]}
    created = httpx.post(f"{service.url}/tasks", json=task, headers=headers, timeout=30)
    assert created.status_code == 201, created.text
    httpx.post(f"{service.url}/tasks/{collection}/pause", headers=headers, timeout=30).raise_for_status()
    polygon_path = f"/collections/{collection}/items/{item['id']}/polygons/1/feedback"

    def open_first_polygon(page: WatchedPage) -> Any:
        p = page.page
        p.locator("#task-list li[data-task-id]").filter(has_text=collection).locator(
            "[data-action='select']"
        ).click()
        p.locator("#timeline li[data-item-id]").first.click()
        p.locator("#polygon-rows tr[data-polygon='1']").click()  # the largest polygon: id 1
        popup = p.locator(".leaflet-popup-content .feedback[data-polygon='1']")
        popup.wait_for()
        return popup

    page = watched()
    sign_in(page, f"{service.url}/app/", service.keys["ana"])
    page.page.locator("#whoami").filter(has_text="analyst").wait_for()
    popup = open_first_polygon(page)
    assert "No verdict yet." in popup.inner_text()
    assert [b.inner_text() for b in popup.locator(".verdict-buttons button").all()] == [
        "Confirm", "False alarm", "Wrong class"]  # fmt: skip
    assert popup.locator("select[name='class'] option").count() > 1  # the Item's classes
    popup.locator("textarea[name='note']").fill("new warehouse, seen on site")
    popup.locator("button[data-verdict='confirmed']").click()
    popup.locator("li[data-author='ana'][data-verdict='confirmed']").wait_for()
    page.page.locator("#message.info").filter(has_text="Verdict stored").wait_for()
    stored = api(service, "ana", polygon_path)["verdicts"]
    assert [(v["author"], v["verdict"], v["note"]) for v in stored] == [
        ("ana", "confirmed", "new warehouse, seen on site")]  # fmt: skip
    page.shot("30-verdict-given")

    page.page.reload()  # the key stays in sessionStorage
    page.page.locator("#whoami").filter(has_text="analyst").wait_for()
    popup = open_first_polygon(page)
    verdict = popup.locator("li[data-author='ana'][data-verdict='confirmed']")
    assert "Confirmed" in verdict.inner_text() and "new warehouse, seen on site" in verdict.inner_text()
    assert popup.locator("textarea[name='note']").input_value() == "new warehouse, seen on site"
    page.shot("31-verdict-after-reload")
    # the report of confirmed changes: opened and checked
    with page.page.expect_download() as download_info:
        page.page.click("#downloads button[data-asset='report']")
    archive = zipfile.ZipFile(download_info.value.path())
    confirmed = json.loads(archive.read("confirmed.geojson"))["features"]
    assert [(f["properties"]["polygon"], f["properties"]["note"]) for f in confirmed] == [
        (1, "new warehouse, seen on site")]  # fmt: skip
    chips = [confirmed[0]["properties"][f"chip_{when}"] for when in ("before", "after")]
    assert all(Image.open(io.BytesIO(archive.read(c))).size[0] >= 64 for c in chips)
    assert {"confirmed.kml", "confirmed.gpkg"} <= set(archive.namelist())
    assert page.console_errors() == []

    # a second analyst (who does not see the task, only its results) opens the change from
    # the inbox, sees the colleague's verdict, and may give one too
    colleague = watched()
    sign_in(colleague, f"{service.url}/app/", service.keys["ali"])
    colleague.page.locator("#whoami").filter(has_text="analyst").wait_for()
    colleague.page.locator(f"#inbox-task option[value='{collection}']").wait_for(state="attached")
    colleague.page.select_option("#inbox-task", collection)
    colleague.page.locator(f"#inbox-list li[data-collection='{collection}'][data-polygon='1']").click()
    popup = colleague.page.locator(".leaflet-popup-content .feedback[data-polygon='1']")
    seen = popup.locator("li[data-author='ana'][data-verdict='confirmed']")
    seen.wait_for()
    assert "new warehouse, seen on site" in seen.inner_text()
    assert popup.locator("button[data-verdict='confirmed']").is_visible()
    colleague.shot("31b-verdict-seen-by-a-colleague")
    assert colleague.console_errors() == []

    # a partner who may only read the collection sees the verdict, and no buttons
    partner = watched()
    sign_in(partner, f"{service.url}/app/", service.keys["rea"])
    partner.page.locator("#whoami").filter(has_text="partner").wait_for()
    popup = open_first_polygon(partner)
    popup.locator("li[data-author='ana'][data-verdict='confirmed']").wait_for()
    assert popup.locator(".verdict-form, button").count() == 0
    partner.shot("32-partner-reads-verdicts")
    assert partner.console_errors() == []
