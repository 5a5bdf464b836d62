"""A webhook receiver for the tests: ``python webhook_receiver.py LOG [FAIL_FIRST]``
prints its port, then appends each POST as a JSON line (headers, body) to LOG.
The first FAIL_FIRST requests are answered 503 (to exercise retries)."""

from __future__ import annotations

import json
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

LOG = Path(sys.argv[1])
FAIL_FIRST = int(sys.argv[2]) if len(sys.argv) > 2 else 0
seen = 0


class Handler(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib signature
        pass

    def do_POST(self) -> None:  # noqa: N802 - stdlib name
        global seen
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        seen += 1
        if seen <= FAIL_FIRST:
            self.send_response(503)
            self.end_headers()
            return
        with LOG.open("a") as f:
            f.write(json.dumps({"headers": dict(self.headers), "body": body.decode()}) + "\n")
        self.send_response(204)
        self.end_headers()


server = HTTPServer(("127.0.0.1", 0), Handler)
print(server.server_address[1], flush=True)
server.serve_forever()
