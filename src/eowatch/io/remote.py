"""Limits on every remote read: GDAL's network file systems (``/vsicurl/``,
``/vsis3/``, ...), pystac's reads of STAC documents and the requests sessions of
discovery, so that a server that accepts a connection and never answers fails
a job in bounded time instead of hanging it.

GDAL's configuration is per process, so the limits are too: ``apply_limits``
sets them from a run's or a service's settings (every run starts with it). GDAL
remembers a URL that failed for the life of the process (it answers later
opens from that memory, even after the server is back): a failed remote open
or read forgets the URL (``forget``), so the next attempt asks the server again.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import pystac
import rasterio
import requests
from pystac.stac_io import DefaultStacIO
from rasterio.env import set_gdal_config
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from ..errors import InputReadError, RemoteReadError

__all__ = [
    "RemoteLimits",
    "RETRY_STATUSES",
    "apply_limits",
    "current_limits",
    "read_bytes",
    "gdal_href",
    "forget",
    "is_remote",
    "make_retry",
    "make_session",
    "open_raster",
    "read_failure",
    "read_stac",
]

log = logging.getLogger(__name__)

#: HTTP statuses worth retrying: rate limiting and server-side failures.
RETRY_STATUSES = (429, 500, 502, 503, 504)

# What GDAL and requests say when a server is slow, unreachable or failing for now.
_TRANSIENT = re.compile(
    r"timed? ?out|timeout|connection (refused|reset|aborted)|could not resolve|couldn't connect|"
    r"could not connect|failed to connect|"
    r"empty reply|recv failure|send failure|ssl|response code: (429|5\d\d)|temporarily",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class RemoteLimits:
    """How long one remote request may take and how often a failed one is tried again."""

    timeout_s: float = 30.0
    connect_timeout_s: float = 10.0
    retries: int = 3
    retry_delay_s: float = 0.5

    @classmethod
    def from_settings(cls, settings: Any) -> RemoteLimits:
        """The limits of ``settings`` (``http_timeout_s``, ``http_connect_timeout_s``,
        ``http_retries``, ``http_backoff_s``)."""
        return cls(
            settings.http_timeout_s, settings.http_connect_timeout_s, settings.http_retries,
            settings.http_backoff_s,
        )  # fmt: skip

    def gdal_config(self) -> dict[str, str]:
        """GDAL's options: a request that connects but receives nothing for ``timeout_s``
        (``LOW_SPEED``) or lasts longer than that (``TIMEOUT``) fails and is retried."""
        seconds = str(max(1, math.ceil(self.timeout_s)))
        return {
            "GDAL_HTTP_TIMEOUT": seconds,
            "GDAL_HTTP_LOW_SPEED_TIME": seconds,
            "GDAL_HTTP_LOW_SPEED_LIMIT": "1",
            "GDAL_HTTP_CONNECTTIMEOUT": str(max(1, math.ceil(self.connect_timeout_s))),
            "GDAL_HTTP_MAX_RETRY": str(self.retries),
            "GDAL_HTTP_RETRY_DELAY": str(self.retry_delay_s),
        }


_limits = RemoteLimits()


def apply_limits(limits: RemoteLimits) -> None:
    """Make ``limits`` the process's limits for GDAL's and pystac's remote reads."""
    global _limits
    for key, value in limits.gdal_config().items():
        set_gdal_config(key, value)
    _limits = limits


def current_limits() -> RemoteLimits:
    return _limits


_REMOTE_PREFIXES = (
    "http://", "https://", "s3://", "gs://", "az://",
    "/vsicurl", "/vsis3", "/vsigs", "/vsiaz", "/vsiadls", "/vsioss", "/vsiswift", "/vsiwebhdfs",
)  # fmt: skip


def is_remote(href: str) -> bool:
    return href.startswith(_REMOTE_PREFIXES)


def gdal_href(href: str) -> str:
    """``href`` as GDAL opens it: ``s3://bucket/key`` as ``/vsis3/bucket/key``, others as they are."""
    return "/vsis3/" + href[len("s3://") :] if href.startswith("s3://") else href


def _vsi_path(href: str) -> str:
    if href.startswith(("http://", "https://")):
        return f"/vsicurl/{href}"
    for scheme, prefix in (("s3://", "/vsis3/"), ("gs://", "/vsigs/"), ("az://", "/vsiaz/")):
        if href.startswith(scheme):
            return prefix + href[len(scheme) :]
    return href


@cache
def _gdal_library() -> Any:
    """The GDAL library rasterio runs on, or None. A wheel's own copy comes first:
    other packages (pyogrio, fiona) may have loaded copies of their own."""
    bundled = Path(rasterio.__file__).parent
    candidates = [str(p) for folder in (bundled.parent / "rasterio.libs", bundled / ".dylibs")
                  for p in sorted(folder.glob("libgdal*"))]  # fmt: skip
    maps = Path("/proc/self/maps")
    if maps.exists():  # a rasterio built on the system's GDAL: the one this process loaded
        loaded = {line.split()[-1] for line in maps.read_text().splitlines() if "libgdal" in line}
        candidates += sorted(loaded)
    if found := ctypes.util.find_library("gdal"):
        candidates.append(found)
    for path in candidates:
        try:
            library = ctypes.CDLL(path)
            library.VSICurlPartialClearCache.argtypes = [ctypes.c_char_p]
            return library
        except (OSError, AttributeError):
            continue
    log.warning("GDAL's library was not found: failed remote reads stay cached for this process")
    return None


def forget(href: str) -> None:
    """Drop what GDAL remembers of ``href`` (its size, its existence, cached blocks)."""
    library = _gdal_library() if is_remote(href) else None
    if library is not None:
        library.VSICurlPartialClearCache(_vsi_path(href).encode())


def read_failure(href: str, exc: BaseException, what: str = "cannot read") -> InputReadError:
    """The error for a failed open or read of ``href``: retryable (``RemoteReadError``)
    when a remote server was slow, unreachable or failing for now. A failed remote
    read is forgotten, so that the next try asks the server again."""
    reason = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
    if not is_remote(href):
        return InputReadError(f"{what} {href}: {reason}. Check the path and that it is a raster.")
    forget(href)
    if _TRANSIENT.search(reason) or _transient_request(exc):
        limits = current_limits()
        return RemoteReadError(
            f"{what} {href}: the server did not answer in time or is unreachable ({reason}; "
            f"{limits.timeout_s:g} s per request, {limits.retries} retries). The read is tried again "
            "later; check the URL and the network (EOWATCH_HTTP_TIMEOUT_S sets the limit)."
        )
    return InputReadError(f"{what} {href}: {reason}. Check the URL and network access for remote files.")


def _transient_request(exc: BaseException) -> bool:
    if isinstance(exc, requests.HTTPError) and exc.response is not None:
        return exc.response.status_code in RETRY_STATUSES
    transient = (TimeoutError, ConnectionError, requests.Timeout, requests.ConnectionError,
                 requests.exceptions.RetryError)  # fmt: skip
    return isinstance(exc, transient)


def open_raster(href: str, what: str = "cannot read") -> Any:
    """``rasterio.open(href)``; a failure raises ``read_failure``'s error."""
    try:
        return rasterio.open(href)
    except rasterio.errors.RasterioIOError as exc:
        raise read_failure(href, exc, what) from exc


def make_retry(retries: int, backoff_s: float) -> Retry:
    """urllib3 retry policy: ``retries`` more tries after the first, waiting
    ``backoff_s * 2**(n-1)`` seconds (or the server's ``Retry-After``)."""
    return Retry(
        total=retries,
        connect=retries,
        read=retries,
        status=retries,
        backoff_factor=backoff_s,
        status_forcelist=RETRY_STATUSES,
        allowed_methods=None,  # searches are POSTs but idempotent: retry every verb
        respect_retry_after_header=True,
        raise_on_status=True,
    )


def make_session(
    retries: int, backoff_s: float, headers: Mapping[str, str] | None = None
) -> requests.Session:
    """A requests session retrying transient failures (for token services and the like)."""
    session = requests.Session()
    adapter = HTTPAdapter(max_retries=make_retry(retries, backoff_s))
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.headers.update(dict(headers or {}))
    return session


class _LimitedStacIO(DefaultStacIO):
    """pystac's reader with the process's limits on http(s) reads (pystac's own has no timeout)."""

    def read_text_from_href(self, href: str) -> str:
        if not href.startswith(("http://", "https://")):
            return str(super().read_text_from_href(href))
        limits = current_limits()
        with make_session(limits.retries, limits.retry_delay_s, self.headers) as session:
            response = session.get(href, timeout=(limits.connect_timeout_s, limits.timeout_s))
            response.raise_for_status()
            return response.text


def read_bytes(href: str, what: str = "cannot read") -> bytes:
    """The bytes of a local file, an http(s) URL (within the remote limits) or an object in
    a GDAL network file system (``s3://``, ``/vsis3/``, ...: read through GDAL, with its
    credentials and configuration)."""
    try:
        if href.startswith(("http://", "https://")):
            limits = current_limits()
            with make_session(limits.retries, limits.retry_delay_s) as session:
                response = session.get(href, timeout=(limits.connect_timeout_s, limits.timeout_s))
                response.raise_for_status()
                return response.content
        if is_remote(href) or href.startswith("/vsi"):
            return _vsi_read(_vsi_path(href))
        return Path(href).read_bytes()
    except (OSError, requests.RequestException) as exc:
        raise read_failure(href, exc, what) from exc


def _vsi_read(path: str) -> bytes:
    library = _gdal_library()
    if library is None:
        raise OSError(f"GDAL's library was not found to read {path}")
    library.VSIFOpenL.restype = ctypes.c_void_p
    library.VSIFOpenL.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
    library.VSIFSeekL.argtypes = [ctypes.c_void_p, ctypes.c_uint64, ctypes.c_int]
    library.VSIFTellL.restype = ctypes.c_uint64
    library.VSIFTellL.argtypes = [ctypes.c_void_p]
    library.VSIFReadL.restype = ctypes.c_size_t
    library.VSIFReadL.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_size_t, ctypes.c_void_p]
    library.VSIFCloseL.argtypes = [ctypes.c_void_p]
    handle = library.VSIFOpenL(path.encode(), b"rb")
    if not handle:
        raise OSError(f"cannot open {path} (missing, or not allowed with the credentials GDAL has)")
    try:
        library.VSIFSeekL(handle, 0, 2)
        size = library.VSIFTellL(handle)
        library.VSIFSeekL(handle, 0, 0)
        buffer = ctypes.create_string_buffer(size)
        if library.VSIFReadL(buffer, 1, size, handle) != size:
            raise OSError(f"short read of {path}")
        return buffer.raw
    finally:
        library.VSIFCloseL(handle)


def read_stac(href: str) -> pystac.STACObject:
    """The STAC object at ``href`` (path or URL), read within the remote limits."""
    return pystac.read_file(href, stac_io=_LimitedStacIO())
