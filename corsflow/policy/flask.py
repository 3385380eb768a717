"""Flask with Flask-CORS: one resource per path rule, origins as exact regular expressions.

Flask-CORS orders resources by its own idea of specificity, so each rule's pattern excludes
the paths of the rules before it and the first-match order holds whatever it does. A hook
registered before ``CORS(app)`` (so Flask runs it after) keeps ``Origin: null`` from ever
being answered.
"""

from __future__ import annotations

import re

from .common import header_comment, ordered_rules
from .model import Policy, ServerPolicy

TESTED = ("Flask and Flask-CORS from the package index under Flask's server, answers "
          "compared with corsflow's policy for every request")
DEVIATIONS: dict[str, str] = {
    "headers-missing": "Flask-CORS answers a preflight with only the requested headers it "
                       "allows, so a cached preflight covers only those headers.",
    "methods-missing": "Flask-CORS sends no Allow-Methods (nor Allow-Headers, Max-Age) when "
                       "the requested method is not allowed; the browser refuses either way.",
    "max-age": "the same: no Max-Age when the requested method is not allowed.",
}


def deviations(server: ServerPolicy) -> dict[str, str]:
    """The known ways this configuration departs from answer() (Mismatch kinds)."""
    return dict(DEVIATIONS)


def _origins(p: Policy) -> str:
    if p.allow_origins == ("*",):
        return '"*"'
    return "[" + ", ".join(f"re.compile({'^' + re.escape(o) + '$'!r})"
                           for o in p.allow_origins or ()) + "]"


def _options(p: Policy) -> str:
    opts = [
        f'"origins": {_origins(p)}',
        f'"methods": {list(p.allow_methods or ())!r}',
        f'"allow_headers": {list(p.allow_headers or ())!r}',
        f'"expose_headers": {list(p.expose_headers or ())!r}',
        f'"supports_credentials": {bool(p.allow_credentials)!r}',
        '"always_send": False',
        '"vary_header": True',
        f'"send_wildcard": {p.allow_origins == ("*",)!r}',
    ]
    if p.max_age is not None:
        opts.append(f'"max_age": {p.max_age}')
    if p.allow_private_network:
        opts.append('"allow_private_network": True')
    return "{" + ", ".join(opts) + "}"


def generate(server: ServerPolicy) -> str:
    earlier: list[str] = []
    resources = []
    for regex, p in ordered_rules(server):
        body = regex[1:-1] if regex is not None else ".*"
        guard = f"(?!(?:{'|'.join(earlier)})$)" if earlier else ""
        resources.append(f"    {'^' + guard + body + '$'!r}: {_options(p)},")
        if regex is not None:
            earlier.append(regex[1:-1])
    lines = [
        "import re",
        "",
        "from flask import request",
        "from flask_cors import CORS",
        "",
        "CORS_RESOURCES = {",
        *resources,
        "}",
        "",
        "",
        "def _never_null(response):",
        '    """Origin null is never allowed (registered before CORS(app): runs after it)."""',
        '    if request.headers.get("Origin") == "null":',
        "        for name in [n for n in response.headers.keys()",
        '                     if n.lower().startswith("access-control-")]:',
        "            del response.headers[name]",
        "    return response",
        "",
        "",
        "def init_cors(app):",
        "    app.after_request(_never_null)",
        "    CORS(app, resources=CORS_RESOURCES)",
    ]
    return header_comment(server, "Flask (Flask-CORS)", "#", TESTED, deviations(server)) + \
        "\n".join(lines) + "\n"
