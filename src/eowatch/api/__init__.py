"""The eowatch web service, built by ``create_app(services)``."""

from __future__ import annotations

from .app import STATUS_CODES, create_app

__all__ = ["create_app", "STATUS_CODES"]
