"""Alerts: tell a task's targets when a job found changes above its minimum area.

Each alert is first recorded (``monitor_alerts``: one row per job and target,
so a job run twice never alerts twice), then delivered: a webhook POST of a
JSON summary signed with HMAC-SHA256 (``X-Eowatch-Signature: sha256=<hex>`` of
the raw body, keyed by the target's secret), or an e-mail through SMTP.
Failed deliveries are retried with exponential back-off by any worker
(``deliver_due``) until ``alert_max_attempts``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import smtplib
import time
import urllib.error
import urllib.request
from email.message import EmailMessage
from typing import Any
from urllib.parse import quote

from sqlalchemy import Engine, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from ..errors import InputError
from ..outbound import check_outbound
from ..settings import Settings
from ..store.monitoring import AlertRow, TaskRow
from .jobs import Job, backoff_delay
from .tasks import TaskSpec

__all__ = ["SIGNATURE_HEADER", "sign", "verify_signature", "alert_payload", "queue_alerts", "deliver_due",
           "post_webhook", "send_email"]  # fmt: skip

SIGNATURE_HEADER = "X-Eowatch-Signature"
_LEASE_S = 60.0


def sign(body: bytes, secret: str) -> str:
    """The signature header value of ``body``: ``sha256=<hex HMAC-SHA256>``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify_signature(body: bytes, secret: str, header: str | None) -> bool:
    """Whether ``header`` is the signature of ``body`` with ``secret`` (constant time)."""
    return bool(header) and hmac.compare_digest(sign(body, secret), str(header))


def _links(settings: Settings, collection: str, item: dict[str, Any]) -> dict[str, str]:
    """The API's URLs of the Item and of each of its assets (``quicklook``...): under
    ``api_base_url``, else paths to resolve against the API; never the server's files."""
    base = (settings.api_base_url or "").rstrip("/")
    url = f"{base}/collections/{quote(collection, safe='')}/items/{quote(str(item['id']), safe='')}"
    assets = {key: f"{url}/assets/{quote(key, safe='')}" for key in item.get("assets") or {}}
    return {**assets, "item": url}


def alert_payload(spec: TaskSpec, task_id: str, job: Job, summary: dict[str, Any], item: dict[str, Any],
                  settings: Settings) -> dict[str, Any]:  # fmt: skip
    """The JSON summary sent to every target."""
    return {
        "event": "eowatch.change",
        "task": {"id": task_id, "name": spec.name, "collection": spec.collection},
        "job": job.id,
        "preset": job.preset,
        "before": summary.get("before"),
        "after": summary.get("after"),
        "changed_area_m2": summary.get("changed_area_m2"),
        "polygon_count": summary.get("polygon_count"),
        "min_alert_area_m2": spec.min_alert_area_m2,
        "bbox": item.get("bbox"),
        "links": _links(settings, str(spec.collection), item),
    }


def queue_alerts(
    engine: Engine, settings: Settings, job: Job, summary: dict[str, Any], item: dict[str, Any]
) -> int:
    """Record the alerts of a finished job (when its changed area reaches the task's
    minimum and is not zero). Returns how many new alert rows were added."""
    if job.task_id is None:  # a process execution: nobody subscribed to it
        return 0
    with Session(engine) as session:
        row = session.get(TaskRow, job.task_id)
        if row is None:
            return 0
        spec = TaskSpec.model_validate(row.spec)
    area = float(summary.get("changed_area_m2") or 0.0)
    if area <= 0 or area < spec.min_alert_area_m2:
        return 0
    payload = alert_payload(spec, job.task_id, job, summary, item, settings)
    targets = [("webhook", h.url) for h in spec.webhooks] + [("email", e) for e in spec.emails]
    dialect = postgresql if engine.dialect.name == "postgresql" else sqlite
    added = 0
    now = time.time()
    with engine.begin() as conn:
        for channel, target in targets:
            stmt = dialect.insert(AlertRow).values(
                job_id=job.id, task_id=job.task_id, channel=channel, target=target, payload=payload,
                status="pending", attempts=0, next_attempt_at=now, created=now,
                signed=channel == "webhook" and any(h.url == target and h.secret for h in spec.webhooks),
            )  # fmt: skip
            stmt = stmt.on_conflict_do_nothing(index_elements=["job_id", "channel", "target"])
            added += conn.execute(stmt.returning(AlertRow.id)).first() is not None
    return added


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A webhook that redirects fails: a redirect could lead to an address never checked."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirects())


def post_webhook(url: str, payload: dict[str, Any], secret: str | None, timeout: float, delivery: str,
                 allow: tuple[str, ...] = ()) -> int:  # fmt: skip
    """POST ``payload`` as JSON to ``url`` when it is still a public address (or allowed:
    ``eowatch.outbound``); returns the HTTP status. Raises ``OSError`` on failure,
    ``InputError`` for a URL that may not be called."""
    check_outbound(url, "webhook", allow)
    body = json.dumps(payload, sort_keys=True).encode()
    headers = {"Content-Type": "application/json", "User-Agent": "eowatch-alerts",
               "X-Eowatch-Event": str(payload.get("event")), "X-Eowatch-Delivery": delivery}  # fmt: skip
    if secret:
        headers[SIGNATURE_HEADER] = sign(body, secret)
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    with _OPENER.open(request, timeout=timeout) as response:  # http(s), checked just above
        return int(response.status)


def send_email(settings: Settings, to: str, payload: dict[str, Any]) -> None:
    """Send ``payload`` as an e-mail through ``settings.smtp_host`` (STARTTLS when
    ``smtp_starttls``, login when ``smtp_user``)."""
    host = settings.smtp_host
    if not host:
        raise InputError("e-mail alerts need an SMTP server: set EOWATCH_SMTP_HOST (and EOWATCH_SMTP_FROM)")
    msg = EmailMessage()
    msg["From"] = settings.smtp_from or "eowatch@localhost"
    msg["To"] = to
    msg["Subject"] = (f"[eowatch] {payload['task']['name']}: {payload['changed_area_m2']:.0f} m² changed "
                      f"({payload['polygon_count']} areas)")  # fmt: skip
    msg.set_content(json.dumps(payload, indent=2))
    with smtplib.SMTP(host, settings.smtp_port, timeout=settings.http_timeout_s) as smtp:
        if settings.smtp_starttls:
            smtp.starttls()
        if settings.smtp_user:
            smtp.login(settings.smtp_user, settings.smtp_password or "")
        smtp.send_message(msg)


def _claim(engine: Engine, alert_id: int, now: float) -> bool:
    due = or_(
        (AlertRow.status == "pending") & (AlertRow.next_attempt_at <= now),
        (AlertRow.status == "sending") & (AlertRow.lease_expires_at < now),
    )
    with Session(engine) as session, session.begin():
        result = session.execute(
            update(AlertRow).where(AlertRow.id == alert_id, due)
            .values(status="sending", lease_expires_at=now + _LEASE_S, attempts=AlertRow.attempts + 1)
        )  # fmt: skip
    return bool(result.rowcount)  # type: ignore[attr-defined]


def deliver_due(engine: Engine, settings: Settings, *, backoff_s: float | None = None) -> dict[int, str]:
    """Send every alert that is due; returns {alert id: new status}. A failed delivery
    is tried again after ``backoff_s`` (``settings.alert_backoff_s``), doubling."""
    now = time.time()
    max_attempts = settings.alert_max_attempts
    base = backoff_s if backoff_s is not None else settings.alert_backoff_s
    timeout = settings.http_timeout_s
    with Session(engine) as session:
        due = session.scalars(
            select(AlertRow).where(or_(
                (AlertRow.status == "pending") & (AlertRow.next_attempt_at <= now),
                (AlertRow.status == "sending") & (AlertRow.lease_expires_at < now),
            )).order_by(AlertRow.id)
        ).all()  # fmt: skip
        secrets: dict[tuple[str, str], str | None] = {}
        for task in session.scalars(select(TaskRow).where(TaskRow.id.in_({a.task_id for a in due}))):
            for hook in TaskSpec.model_validate(task.spec).webhooks:
                secrets[(task.id, hook.url)] = hook.secret
    results: dict[int, str] = {}
    for alert in due:
        if not _claim(engine, alert.id, time.time()):
            continue  # another worker is sending it
        code, error = None, None
        try:
            if alert.channel == "webhook":
                code = post_webhook(alert.target, alert.payload, secrets.get((alert.task_id, alert.target)),
                                    timeout, str(alert.id), settings.outbound_allow)  # fmt: skip
            else:
                send_email(settings, alert.target, alert.payload)
            status = "sent"
        except (OSError, smtplib.SMTPException, InputError) as exc:
            error = f"{type(exc).__name__}: {exc}"
            code = exc.code if isinstance(exc, urllib.error.HTTPError) else None
            status = (
                "failed" if alert.attempts + 1 >= max_attempts or isinstance(exc, InputError) else "pending"
            )
        values: dict[str, Any] = dict(status=status, response_code=code, error=error, lease_expires_at=None)
        if status == "sent":
            values["sent_at"] = time.time()
        elif status == "pending":
            values["next_attempt_at"] = time.time() + backoff_delay(alert.attempts + 1, base)
        with Session(engine) as session, session.begin():
            session.execute(update(AlertRow).where(AlertRow.id == alert.id).values(**values))
        results[alert.id] = status
    return results
