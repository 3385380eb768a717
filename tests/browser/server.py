"""A two-origin HTTP server whose CORS answers are chosen per path, logging every request.

The page is served from ``http://localhost:P1`` and the API from ``http://127.0.0.1:P2``
(both bound to 127.0.0.1), so every fetch from the page to the API is cross-origin. The API
answers each path from a route table: one :class:`Reply` for ``OPTIONS`` (the preflight) and
one for every other method (the actual request). The log it keeps of what arrived is the
ground truth for "which preflights did the browser really send".

Header values in a Reply may use these placeholders, filled per request:
``{origin}`` the page's origin, ``{api}`` the API's origin, ``{api_host}`` its host and port,
``{req_origin}`` the request's
``Origin`` header, ``{acrm}`` / ``{acrh}`` its Access-Control-Request-Method / -Headers,
``{query}`` its query string.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Self
from urllib.parse import urlsplit

log = logging.getLogger(__name__)

# The empty icon link keeps Chromium from asking for /favicon.ico.
PAGE_HTML = (
    b"<!doctype html><meta charset=utf-8><link rel=icon href='data:,'>"
    b"<title>corsflow browser test</title><p>ok</p>\n"
)


@dataclass(frozen=True, slots=True)
class Reply:
    """What the server answers: status, header lines (repeats allowed) and a body."""

    status: int = 200
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b"ok\n"


@dataclass(frozen=True, slots=True)
class Route:
    """The answers for one path: to the preflight and to the actual request."""

    preflight: Reply = Reply(404, (), b"no preflight route\n")
    actual: Reply = Reply(404, (), b"no route\n")


@dataclass(frozen=True, slots=True)
class LoggedRequest:
    """One request as it arrived at a server."""

    time: float
    server: str  # "page" or "api"
    method: str
    target: str  # the request target as sent (path and query)
    headers: tuple[tuple[str, str], ...]
    status: int

    @property
    def path(self) -> str:
        return urlsplit(self.target).path

    def header(self, name: str) -> str | None:
        name = name.lower()
        values = [v for n, v in self.headers if n.lower() == name]
        return ", ".join(values) if values else None


@dataclass
class RequestLog:
    """Thread-safe, append-only list of what both servers received."""

    entries: list[LoggedRequest] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, entry: LoggedRequest) -> None:
        with self._lock:
            self.entries.append(entry)

    def snapshot(self) -> list[LoggedRequest]:
        with self._lock:
            return list(self.entries)

    def __len__(self) -> int:
        with self._lock:
            return len(self.entries)


def _fill(value: str, values: dict[str, str]) -> str:
    for key, replacement in values.items():
        value = value.replace("{" + key + "}", replacement)
    return value


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as a real API server would
    server: _Server

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        path = urlsplit(self.path).path
        if self.server.role == "page" and not path.startswith("/s/"):
            # The page; paths under /s/ are same-origin scenario routes.
            reply = Reply(200, (("Content-Type", "text/html; charset=utf-8"),),
                          self.server.page_html)
        else:
            route = self.server.routes.get(path, Route())
            reply = route.preflight if self.command == "OPTIONS" else route.actual
        values = {
            "origin": self.server.page_origin,
            "api": self.server.api_origin,
            "api_host": self.server.api_origin.split("//", 1)[1],
            "req_origin": self.headers.get("Origin") or "",
            # An Allow-Origin that fails only for GET: a visible CORS failure on a URL
            # whose preflighted requests pass (scenario failure-clears-cache).
            "origin_unless_get": "" if self.command == "GET" else self.server.page_origin,
            "acrm": self.headers.get("Access-Control-Request-Method") or "",
            "acrh": self.headers.get("Access-Control-Request-Headers") or "",
            # The request's query: a redirect that keeps a concurrent fetch's marker.
            "query": urlsplit(self.path).query,
        }
        self.server.log.add(
            LoggedRequest(
                time=time.time(),
                server=self.server.role,
                method=self.command,
                target=self.path,
                headers=tuple(self.headers.items()),
                status=reply.status,
            )
        )
        self.send_response(reply.status)
        names = set()
        for name, value in reply.headers:
            names.add(name.lower())
            self.send_header(name, _fill(value, values))
        if "cache-control" not in names:
            # Keep Chromium's HTTP cache out of the way: every request must reach us.
            self.send_header("Cache-Control", "no-store")
        body = b"" if self.command == "HEAD" else reply.body
        if body and "content-type" not in names:
            self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_HEAD = _handle

    def __getattr__(self, name: str) -> object:
        # Any other method (lowercase "patch", custom verbs) is answered like the rest.
        if name.startswith("do_"):
            return self._handle
        raise AttributeError(name)

    def log_message(self, format: str, *args: object) -> None:
        log.debug("%s %s", self.server.role, format % args)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        # Browsers drop keep-alive connections at will; a reset is not an error here.
        log.debug("connection from %s ended abruptly", client_address)

    def __init__(self, role: str, log: RequestLog, routes: dict[str, Route]) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.role = role
        self.log = log
        self.routes = routes
        self.page_origin = ""
        self.api_origin = ""
        self.page_html = PAGE_HTML


class TwoOrigins:
    """The page server and the API server, started together; use as a context manager."""

    def __init__(self, routes: dict[str, Route] | None = None) -> None:
        self.log = RequestLog()
        self.routes: dict[str, Route] = dict(routes or {})
        self._page = _Server("page", self.log, self.routes)
        self._api = _Server("api", self.log, self.routes)
        self.page_port = self._page.server_address[1]
        self.api_port = self._api.server_address[1]
        self.page_origin = f"http://localhost:{self.page_port}"
        self.api_origin = f"http://127.0.0.1:{self.api_port}"
        for s in (self._page, self._api):
            s.page_origin = self.page_origin
            s.api_origin = self.api_origin
        self._threads: list[threading.Thread] = []

    def set_page_html(self, html: bytes) -> None:
        """Serve ``html`` as the page instead of the empty test page."""
        self._page.page_html = html

    def start(self) -> Self:
        for s in (self._page, self._api):
            t = threading.Thread(target=s.serve_forever, kwargs={"poll_interval": 0.05})
            t.daemon = True
            t.start()
            self._threads.append(t)
        return self

    def stop(self) -> None:
        for s in (self._page, self._api):
            s.shutdown()
            s.server_close()
        for t in self._threads:
            t.join(timeout=5)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
