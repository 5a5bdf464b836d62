"""A local HTTP server with byte-range support (what GDAL's /vsicurl/ needs),
serving a folder on loopback for remote-COG and STAC-over-HTTP tests."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


class RangeHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib signature
        pass

    def send_head(self):  # type: ignore[no-untyped-def]
        rng = self.headers.get("Range")
        path = Path(self.translate_path(self.path))
        if not rng or not path.is_file():
            return super().send_head()
        size = path.stat().st_size
        start_s, end_s = rng.replace("bytes=", "").split("-")
        start = int(start_s)
        end = min(int(end_s) if end_s else size - 1, size - 1)
        f = path.open("rb")
        f.seek(start)
        self.send_response(206)
        self.send_header("Content-Type", self.guess_type(str(path)))
        self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        self.send_header("Content-Length", str(end - start + 1))
        self.send_header("Accept-Ranges", "bytes")
        self.end_headers()
        self._remaining = end - start + 1
        return f

    def copyfile(self, source, outputfile):  # type: ignore[no-untyped-def]
        remaining = getattr(self, "_remaining", None)
        if remaining is None:
            return super().copyfile(source, outputfile)
        outputfile.write(source.read(remaining))
        self._remaining = None


@contextmanager
def serve(folder: Path, fail_first: int = 0) -> Iterator[str]:
    """Serve ``folder`` on 127.0.0.1 at a free port; yields the base URL. The first
    ``fail_first`` requests are answered 503 (a server that is down, then comes back)."""
    with server_process([sys.executable, "-u", __file__, os.fspath(folder), str(fail_first)]) as url:
        yield url


@contextmanager
def serve_silent() -> Iterator[str]:
    """A server that accepts every connection and never answers; yields its base URL."""
    with server_process([sys.executable, "-u", __file__, "--silent"]) as url:
        yield url


@contextmanager
def server_process(argv: list[str]) -> Iterator[str]:
    """Run a test server in a separate process (GDAL's reads hold the GIL, so an
    in-process server thread would starve). The process prints its port on its
    first line; yields ``http://127.0.0.1:<port>`` and stops it afterwards."""
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        port = int(proc.stdout.readline().strip())
        yield f"http://127.0.0.1:{port}"
    finally:
        stop_process(proc)


def stop_process(proc: subprocess.Popen, timeout: float = 10) -> None:
    """Ask a server process to stop (SIGTERM), kill it if it has not after
    ``timeout`` seconds, and close its piped output."""
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    if proc.stdout:
        proc.stdout.close()


class FailingFirstHandler(RangeHandler):
    """Answers 503 to the first ``server.fail_first`` requests, then serves files."""

    def send_head(self):  # type: ignore[no-untyped-def]
        server = self.server
        with server.lock:  # type: ignore[attr-defined]
            server.requests += 1  # type: ignore[attr-defined]
            failing = server.requests <= server.fail_first  # type: ignore[attr-defined]
        if failing:
            self.send_error(503, "down for now")
            return None
        return super().send_head()


def main(folder: str, fail_first: int = 0) -> None:
    import threading

    handler = partial(FailingFirstHandler, directory=folder)
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.fail_first, server.requests, server.lock = fail_first, 0, threading.Lock()  # type: ignore[attr-defined]
    print(server.server_address[1], flush=True)
    server.serve_forever()


def silent() -> None:
    """Accept connections, read nothing, answer nothing."""
    import socket

    listener = socket.create_server(("127.0.0.1", 0), backlog=128)
    print(listener.getsockname()[1], flush=True)
    held = []
    while True:
        held.append(listener.accept()[0])


if __name__ == "__main__":
    if sys.argv[1] == "--silent":
        silent()
    else:
        main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 0)


def wait_until_serving(
    url: str, proc: subprocess.Popen, *, timeout: float = 60, path: str = "/healthz", log: Path | None = None
) -> None:
    """Wait until ``url + path`` answers 200; if ``proc`` exits or ``timeout`` passes,
    stop it and raise with what it printed (from ``log`` or its piped stdout)."""
    import time

    import httpx

    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(f"{url}{path}", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            out = log.read_text() if log else (proc.stdout.read() if proc.stdout else "")
            out = out.decode() if isinstance(out, bytes) else out
            raise RuntimeError(f"the server at {url} did not start:\n{out}")
        time.sleep(0.2)
