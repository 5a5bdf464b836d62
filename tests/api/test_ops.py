"""Operations: health, readiness, Prometheus metrics, request ids and JSON logs,
and the Grafana dashboard that reads those metrics."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from eowatch.api.ops import JsonFormatter, request_id
from eowatch.store.auth import AccessStore

from .service import REPO, service, user_key


@pytest.fixture(scope="module")
def app(database: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, AccessStore]]:
    with service(database, tmp_path_factory.mktemp("ops")) as pair:
        yield pair


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_health_and_readiness(app: tuple[TestClient, AccessStore], monkeypatch: pytest.MonkeyPatch) -> None:
    client, _ = app
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["checks"] == {"database": "ok", "executor": "ok"}
    engine = client.app.state.catalog.engine  # type: ignore[attr-defined]

    def broken() -> None:
        raise ConnectionError("database down")

    monkeypatch.setattr(engine, "connect", broken)
    down = client.get("/readyz")
    assert down.status_code == 503 and down.json()["checks"]["database"].startswith("unreachable")


def test_metrics_by_route_template(app: tuple[TestClient, AccessStore]) -> None:
    client, access = app
    headers = user_key(access, "root", "admin")
    for coll in ("urban", "water", "ghost"):
        client.get(f"/collections/{coll}", headers=headers)
    client.get("/no/such/path", headers=headers)
    resp = client.get("/metrics")
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/plain")
    samples = _samples(resp.text)
    route = "/collections/{collection_id}"
    ok = ("eowatch_http_requests_total", (("method", "GET"), ("route", route), ("status", "200")))
    missing = ("eowatch_http_requests_total", (("method", "GET"), ("route", route), ("status", "404")))
    assert samples[ok] == 2 and samples[missing] == 1
    assert (
        samples[
            ("eowatch_http_requests_total", (("method", "GET"), ("route", "unmatched"), ("status", "404")))
        ]
        == 1
    )
    count = ("eowatch_http_request_duration_seconds_count", (("method", "GET"), ("route", route)))
    assert samples[count] == 3
    for kind in ("task", "process"):  # one queue: every kind of job, counted once
        for state in ("queued", "running", "succeeded", "failed", "cancelled"):
            assert ("eowatch_jobs", (("kind", kind), ("state", state))) in samples
    assert ("eowatch_queue_depth", ()) in samples
    # the job hook feeds the duration histogram and the failure counter
    client.app.state.metrics.job_finished("s2-cva", "failed", 3.0, "NoValidDataError")  # type: ignore[attr-defined]
    samples = _samples(client.get("/metrics").text)
    assert samples[("eowatch_job_duration_seconds_count", (("outcome", "failed"), ("preset", "s2-cva")))] == 1
    assert (
        samples[("eowatch_job_failures_total", (("error_class", "NoValidDataError"), ("preset", "s2-cva")))]
        == 1
    )


def test_request_ids_and_json_logs(
    app: tuple[TestClient, AccessStore], caplog: pytest.LogCaptureFixture
) -> None:
    client, _ = app
    with caplog.at_level(logging.INFO, logger="eowatch.access"):
        given = client.get("/healthz", headers={"X-Request-ID": "abc-123"})
        made = client.get("/healthz", headers={"X-Request-ID": "bad id\n"})
    assert given.headers["x-request-id"] == "abc-123"
    assert re.fullmatch(r"[0-9a-f]{32}", made.headers["x-request-id"])
    record = next(r for r in caplog.records if r.name == "eowatch.access")
    line = json.loads(JsonFormatter().format(record))
    assert line["message"] == "request" and line["route"] == "/healthz" and line["status"] == 200
    assert line["method"] == "GET" and "duration_ms" in line
    token = request_id.set("req-1")
    try:
        plain = logging.LogRecord("eowatch.x", logging.WARNING, __file__, 1, "job %s failed", ("j1",), None)
        assert json.loads(JsonFormatter().format(plain)) | {"time": "-"} == {
            "time": "-",
            "level": "warning",
            "logger": "eowatch.x",
            "message": "job j1 failed",
            "request_id": "req-1",
        }
    finally:
        request_id.reset(token)


def test_oversized_body_is_refused(app: tuple[TestClient, AccessStore]) -> None:
    client, access = app
    admin = user_key(access, "big", "admin")
    json_type = {"Content-Type": "application/json"}
    resp = client.post("/search", content=b"x" * ((1 << 20) + 1), headers=json_type)
    assert resp.status_code == 413 and "larger than 1048576 bytes" in resp.json()["description"]

    def chunks() -> Iterator[bytes]:
        for _ in range(20):
            yield b"x" * (1 << 17)

    streamed = client.post("/search", content=chunks(), headers={**admin, "Content-Type": "application/json"})
    assert streamed.status_code == 413 and "larger than" in streamed.json()["description"]


def test_grafana_dashboard_uses_the_metrics() -> None:
    path: Path = REPO / "deploy" / "grafana" / "eowatch-dashboard.json"
    dashboard = json.loads(path.read_text())
    exprs = " ".join(target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", []))
    for metric in (
        "eowatch_http_requests_total",
        "eowatch_http_request_duration_seconds_bucket",
        "eowatch_jobs",
        "eowatch_queue_depth",
        "eowatch_job_duration_seconds_bucket",
        "eowatch_job_failures_total",
    ):
        assert metric in exprs, metric
    assert all(panel.get("datasource") for panel in dashboard["panels"])
