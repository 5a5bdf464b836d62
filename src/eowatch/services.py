"""The services a process builds once from ``Settings``: the results catalogue and its
database, the monitoring database, the access store, the job queue, the task service,
discovery providers, and job executors.

The app (``create_app(services)``), the scheduler, the worker and every CLI command
take one ``Services``; each part is built on first use (a CLI command that only
searches never opens a database), and the monitoring tables share the catalogue's
engine unless ``monitor_database_url`` names another database.
"""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING

from .settings import Settings

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from .catalog.providers import DiscoveryProvider
    from .monitor.executors import Executor
    from .monitor.jobs import JobQueue
    from .monitor.tasks import TaskService
    from .results import ResultsCatalog
    from .store.auth import AccessStore

__all__ = ["Services"]


class Services:
    """``results`` and ``monitor_engine`` may be given (tests, a caller that already has them)."""

    def __init__(
        self,
        settings: Settings,
        *,
        results: ResultsCatalog | None = None,
        monitor_engine: Engine | None = None,
    ) -> None:
        self.settings = settings
        from .io.remote import RemoteLimits, apply_limits

        apply_limits(RemoteLimits.from_settings(settings))  # discovery's and the tiles' reads too
        self._given = {
            name for name, value in (("results", results), ("monitor_engine", monitor_engine)) if value
        }
        if results is not None:
            self.__dict__["results"] = results
        if monitor_engine is not None:
            self.__dict__["monitor_engine"] = monitor_engine
        self._providers: dict[str, DiscoveryProvider] = {}

    @cached_property
    def results(self) -> ResultsCatalog:
        from .results import ResultsCatalog

        return ResultsCatalog(self.settings.results_database_url())

    @cached_property
    def monitor_engine(self) -> Engine:
        """The monitoring tables' engine (the catalogue's, unless a database of their own is set)."""
        from .store import make_engine
        from .store.db import create_schema

        url = self.settings.monitor_database_url
        engine = make_engine(url) if url else self.results.engine
        create_schema(engine)
        return engine

    @cached_property
    def access(self) -> AccessStore:
        from .store.auth import AccessStore

        return AccessStore(self.results.engine)

    @cached_property
    def queue(self) -> JobQueue:
        from .monitor.jobs import JobQueue

        return JobQueue.from_settings(self.settings, self.monitor_engine)

    @cached_property
    def tasks(self) -> TaskService:
        from .monitor.tasks import TaskService

        return TaskService(self.settings, self.monitor_engine)

    def provider(self, name: str | None = None) -> DiscoveryProvider:
        """The discovery provider ``name`` (default ``settings.discovery_provider``), built once."""
        from .catalog.providers import get_provider

        key = name or self.settings.discovery_provider
        if key not in self._providers:
            self._providers[key] = get_provider(key, self.settings)
        return self._providers[key]

    def executor(self, name: str | None = None) -> Executor:
        """A job executor (``inline``, ``local`` or ``dask``; default from the settings);
        the caller closes it."""
        from .monitor.executors import get_executor

        return get_executor(name, self.settings)

    def close(self) -> None:
        """Release the database connections this object opened (not those it was given)."""
        results = self.__dict__.get("results")
        monitor = self.__dict__.get("monitor_engine")
        if monitor is not None and "monitor_engine" not in self._given:
            if results is None or monitor is not results.engine:
                monitor.dispose()
        if results is not None and "results" not in self._given:
            results.close()
