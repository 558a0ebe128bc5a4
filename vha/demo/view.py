"""A demo-only, read-only view of the remediator a browser can open.

The remediator's pages need its bearer token, which a browser cannot send.  The demo
serves this small proxy on loopback: GET of the remediator's page (``/``) and journal
(``/api/v1/actions``, ``/api/v1/actions/ID``) with the token added; nothing else, and no
method but GET, so nothing reachable here can post an alert.  Real deployments put a
reverse proxy with authentication in front instead (docs/deploy.md).
"""

from __future__ import annotations

import re
import threading
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ALLOWED = re.compile(r"^/(api/v1/actions(/\d+)?)?(\?[\w=&%.-]*)?$")


class ReadOnlyView:
    """Serves GET-only, token-adding proxy of the remediator on 127.0.0.1:``port``."""

    def __init__(self, upstream: str, token: str, port: int) -> None:
        self.upstream = upstream.rstrip("/")
        self.token = token
        view = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                if not ALLOWED.match(self.path):
                    self._send(404, b"not part of the demo's read-only view\n", "text/plain")
                    return
                req = urllib.request.Request(
                    view.upstream + self.path, headers={"Authorization": f"Bearer {view.token}"}
                )
                try:
                    with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310
                        body = resp.read()
                        self._send(resp.status, body, resp.headers.get("Content-Type", ""))
                except urllib.error.HTTPError as exc:
                    self._send(exc.code, exc.read(), exc.headers.get("Content-Type", ""))
                except OSError as exc:
                    self._send(502, f"remediator unreachable: {exc}\n".encode(), "text/plain")

            def _send(self, status: int, body: bytes, ctype: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", ctype or "application/octet-stream")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.port = int(self.server.server_address[1])
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> ReadOnlyView:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
