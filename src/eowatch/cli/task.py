"""``eowatch task ...`` (create, list, show, pause, resume, delete, trigger),
``eowatch scheduler`` and ``eowatch worker``: thin commands over ``eowatch.monitor``."""

from __future__ import annotations

import json
import logging
import signal
import threading
from pathlib import Path
from typing import Any

import click

from ..errors import EowatchError, InputError
from ..services import Services
from .context import services_of_command
from .exits import EowatchCommand, EowatchGroup

__all__ = ["task", "scheduler", "worker"]


def _tasks() -> Any:
    return services_of_command().tasks


def _services() -> Services:
    return services_of_command()


def _stop_on_signals() -> threading.Event:
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    return stop


def _line(t: Any) -> str:
    jobs = " ".join(f"{k}={v}" for k, v in sorted(t.jobs.items())) or "no jobs"
    return f"{t.name:<24} {t.state:<7} {','.join(t.spec.sensors):<22} {t.spec.collection:<28} {jobs}"


@click.group(cls=EowatchGroup)
def task() -> None:
    """Monitoring tasks: watch an AOI and process each new acquisition."""


@task.command()
@click.argument("name")
@click.option("--aoi", required=True, help="GeoJSON file or text, WKT, or minx,miny,maxx,maxy (degrees).")
@click.option("--sensor", "sensors", multiple=True, default=("s2",), show_default=True, help="s1 or s2.")
@click.option("--preset", "presets", multiple=True, help="Preset(s) to run (default: the sensor's default).")
@click.option("--start", help="First date (ISO 8601); a past period is backfilled.")
@click.option("--end", help="Last date; omit to watch continuously.")
@click.option("--cadence", default="3600", show_default=True, help="Seconds between polls, or a cron line.")
@click.option("--provider", help="Discovery provider (earth-search, ..., local:FOLDER, a STAC API URL).")
@click.option("--max-gap-days", type=float, help="Largest gap of a pair (pairing rule).")
@click.option("--max-cloud", type=float, help="Largest cloud cover over the AOI, percent.")
@click.option(
    "--min-alert-area", type=float, default=0.0, show_default=True, help="m² of change to alert on."
)
@click.option("--webhook", "webhooks", multiple=True, help="Webhook URL (repeatable).")
@click.option("--webhook-secret", envvar="EOWATCH_WEBHOOK_SECRET", help="HMAC-SHA256 key of the webhooks.")
@click.option("--email", "emails", multiple=True, help="E-mail address to alert (needs EOWATCH_SMTP_HOST).")
@click.option("--owner", help="Owning user.")
@click.option("--collection", help="Results collection (default task-<name>).")
@click.option("--spec", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="A JSON task spec; command-line options override it.")  # fmt: skip
def create(name: str, aoi: str, sensors: tuple[str, ...], presets: tuple[str, ...], start: str | None,
           end: str | None, cadence: str, provider: str | None, max_gap_days: float | None,
           max_cloud: float | None, min_alert_area: float, webhooks: tuple[str, ...],
           webhook_secret: str | None, emails: tuple[str, ...], owner: str | None, collection: str | None,
           spec: Path | None) -> None:  # fmt: skip
    """Create task NAME."""
    try:
        data: dict[str, Any] = json.loads(spec.read_text()) if spec else {}
    except (OSError, ValueError) as exc:
        raise InputError(f"--spec {spec}: cannot read it as JSON ({exc}); give a JSON task spec") from None
    if not isinstance(data, dict):
        raise InputError(f"--spec {spec}: a task spec is a JSON object, not {type(data).__name__}")
    data.update(name=name, aoi=aoi, sensors=list(sensors), cadence=cadence, min_alert_area_m2=min_alert_area)
    optional = {"presets": list(presets), "start": start, "end": end, "provider": provider,
                "max_cloud_cover": max_cloud, "owner": owner, "collection": collection,
                "emails": list(emails),
                "webhooks": [{"url": u, "secret": webhook_secret} for u in webhooks]}  # fmt: skip
    data.update({k: v for k, v in optional.items() if v})
    if max_gap_days:
        data.setdefault("pairing", {})["max_gap_days"] = max_gap_days
    created = _tasks().create(data)
    click.echo(f"created task {created.name} ({created.id}); results go to {created.spec.collection}")


@task.command("list")
@click.option("--owner", help="Only this user's tasks.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def list_(owner: str | None, as_json: bool) -> None:
    """List the tasks."""
    tasks = _tasks().list(owner=owner)
    if as_json:
        click.echo(json.dumps([t.as_dict() for t in tasks], indent=1))
        return
    for t in tasks:
        click.echo(_line(t))


@task.command()
@click.argument("name")
@click.option("--jobs", "with_jobs", is_flag=True, help="Also list the task's jobs.")
def show(name: str, with_jobs: bool) -> None:
    """Show task NAME (JSON)."""
    service = _tasks()
    shown = service.get(name)
    data = shown.as_dict()
    if with_jobs:
        from ..monitor import JobQueue

        data["job_list"] = [j.as_dict() for j in JobQueue(service.engine).list(task_id=shown.id)]
    click.echo(json.dumps(data, indent=1, default=str))


def _simple(action: str, help_text: str) -> None:
    @task.command(action, help=help_text)
    @click.argument("name")
    def command(name: str) -> None:
        result = getattr(_tasks(), action)(name)
        click.echo(f"{action}: {name}" + (f" ({result.state})" if result is not None else ""))


_simple("pause", "Stop polling task NAME.")
_simple("resume", "Poll task NAME again, at once.")
_simple("trigger", "Make task NAME due now (the next scheduler tick polls it).")
_simple("delete", "Delete task NAME and its jobs (catalogued products stay).")


@click.command(cls=EowatchCommand)
@click.option("--once", is_flag=True, help="One tick, then exit.")
@click.option("--interval", type=float, default=10.0, show_default=True, help="Seconds between ticks.")
def scheduler(once: bool, interval: float) -> None:
    """Poll the due tasks and queue a job per new pair and preset."""
    from ..monitor import Scheduler

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    sched = Scheduler(_services())
    if once:
        report = sched.tick()
        click.echo(json.dumps({"polled": report.polled, "enqueued": len(report.enqueued),
                               "existing": report.existing, "errors": report.errors}))  # fmt: skip
        if report.errors and set(report.errors) >= set(report.polled):
            raise EowatchError(f"every poll failed ({len(report.errors)} task(s)); see the errors above")
        return
    sched.run_forever(_stop_on_signals(), poll_s=interval)


@click.command(cls=EowatchCommand)
@click.option("--once", is_flag=True, help="Run the queued jobs, then exit (1 when one failed).")
@click.option("--max-jobs", type=int, help="Exit after this many jobs (1 when one failed).")
@click.option("--executor", help="inline, local (worker processes) or dask (default: from settings).")
@click.option("--concurrency", type=int, default=1, show_default=True, help="Jobs at once.")
def worker(once: bool, max_jobs: int | None, executor: str | None, concurrency: int) -> None:
    """Claim and run queued jobs; SIGINT/SIGTERM stop after the jobs in flight."""
    from ..monitor import Worker

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    runner = Worker(_services(), executor=executor, concurrency=concurrency)
    try:
        outcomes = runner.run(None if once else _stop_on_signals(), max_jobs=max_jobs, until_empty=once)
    finally:
        runner.close()
    for outcome in outcomes:
        click.echo(f"{outcome.job_id} {outcome.status}" + (f" {outcome.error}" if outcome.error else ""))
    failed = [o for o in outcomes if o.status == "failed"]
    if failed and (once or max_jobs is not None):  # a batch run reports its failures (a service runs on)
        raise EowatchError(f"{len(failed)} of {len(outcomes)} job(s) failed; see the lines above")
