"""A small Flask API with one CORS misconfiguration per endpoint, and the pages that call it.

Every host name ends in ``.test`` and resolves to 127.0.0.1 (Chromium's host-resolver
rules), so one server on one port plays the API (``api.example.test``) and every page
origin: the site's own (``app.example.test``, ``admin.example.test``), unrelated sites,
and names that only look like the site (``evil-example.test``, ``example.test.attacker.test``).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit

from flask import Flask, Response, request
from werkzeug.serving import make_server

API_HOST = "api.example.test"
TRUSTED = ("app.example.test", "admin.example.test")

SEEN: list[tuple[str, str, str]] = []
"""(method, path, Origin) of every API request the app answered, in order."""

PAGE = "<!doctype html><title>page</title><p>corsflow security test page</p>"


def _host(origin: str) -> str:
    return urlsplit(origin).hostname or ""


def create_app() -> Flask:
    app = Flask(__name__)

    @app.route("/page")
    def page() -> Response:
        return Response(PAGE, mimetype="text/html")

    @app.route("/api/<name>", methods=["GET", "PUT", "OPTIONS"])
    def api(name: str) -> Response:
        origin = request.headers.get("Origin", "")
        SEEN.append((request.method, request.path, origin))
        r = Response("{}", mimetype="application/json")
        h = r.headers
        if name == "reflect":  # copies any Origin back, with credentials
            h["Access-Control-Allow-Origin"] = origin
            h["Access-Control-Allow-Credentials"] = "true"
            h["Vary"] = "Origin"
        elif name == "allowlist":  # a correct list, but no Vary: Origin
            if _host(origin) in TRUSTED:
                h["Access-Control-Allow-Origin"] = origin
        elif name == "suffix":  # `endswith("example.test")`: evil-example.test passes
            if _host(origin).endswith("example.test"):
                h["Access-Control-Allow-Origin"] = origin
                h["Access-Control-Allow-Credentials"] = "true"
                h["Vary"] = "Origin"
        elif name == "prefix":  # `startswith("http://example.test")`-like check on the host
            if _host(origin).startswith("example.test"):
                h["Access-Control-Allow-Origin"] = origin
                h["Vary"] = "Origin"
        elif name == "null":
            h["Access-Control-Allow-Origin"] = "null"
            h["Access-Control-Allow-Credentials"] = "true"
        elif name == "star-cookie":
            h["Access-Control-Allow-Origin"] = "*"
            h["Set-Cookie"] = "session=abc; Path=/; SameSite=None"
        elif name == "creds-star":
            h["Access-Control-Allow-Origin"] = origin if _host(origin) in TRUSTED else ""
            h["Access-Control-Allow-Credentials"] = "true"
            h["Access-Control-Allow-Methods"] = "*"
            h["Access-Control-Allow-Headers"] = "*"
            h["Vary"] = "Origin"
        elif name == "expose":
            if _host(origin) in TRUSTED:
                h["Access-Control-Allow-Origin"] = origin
            h["Access-Control-Allow-Credentials"] = "true"
            h["Access-Control-Expose-Headers"] = "Authorization, X-Request-Id"
            h["Vary"] = "Origin"
        elif name == "good":  # the safe pattern: exact list, Vary, explicit names
            if _host(origin) in TRUSTED:
                h["Access-Control-Allow-Origin"] = origin
                h["Access-Control-Allow-Credentials"] = "true"
            h["Access-Control-Allow-Methods"] = "GET, PUT"
            h["Access-Control-Allow-Headers"] = "X-Custom"
            h["Vary"] = "Origin"
        if not h.get("Access-Control-Allow-Origin"):
            h.pop("Access-Control-Allow-Origin", None)
        if request.method == "OPTIONS":
            r.status_code = 204
            r.set_data(b"")
        return r

    return app


@contextmanager
def serve(tls: bool = False) -> Iterator[int]:
    """The app on 127.0.0.1 and a free port, in a thread; yields the port. ``tls``: over
    https, with a throw-away self-signed certificate."""
    server = make_server("127.0.0.1", 0, create_app(), threaded=True,
                         ssl_context="adhoc" if tls else None)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_port
    finally:
        server.shutdown()
        thread.join(5)
