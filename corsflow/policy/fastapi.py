"""FastAPI and Starlette: Starlette's ``CORSMiddleware``, one per path rule, behind a small
ASGI dispatcher so the first matching rule alone answers.

``app.add_middleware(CorsPolicy)`` (FastAPI or Starlette). Requests with ``Origin: null``
bypass the CORS middleware, so a ``*`` rule never answers them.
"""

from __future__ import annotations

from .common import header_comment, ordered_rules
from .model import Policy, ServerPolicy

TESTED = ("FastAPI and Starlette from the package index under uvicorn, answers compared "
          "with corsflow's policy for every request")
DEVIATIONS: dict[str, str] = {
    "headers-extra": "Starlette always allows the safelisted request headers (Accept, "
                     "Accept-Language, Content-Language, Content-Type) in preflights, "
                     "Content-Type with any value.",
}


def _kwargs(p: Policy) -> str:
    args = [
        f"allow_origins={list(p.allow_origins or ())!r}",
        f"allow_methods={list(p.allow_methods or ())!r}",
        f"allow_headers={list(p.allow_headers or ())!r}",
        f"allow_credentials={bool(p.allow_credentials)!r}",
        f"expose_headers={list(p.expose_headers or ())!r}",
        # Starlette always sends Max-Age (600 s when not given)
        f"max_age={p.max_age if p.max_age is not None else 0}",
    ]
    if p.allow_private_network:
        args.append("allow_private_network=True")
    return ", ".join(args)


def deviations(server: ServerPolicy) -> dict[str, str]:
    """The known ways this configuration departs from answer() (Mismatch kinds)."""
    out = dict(DEVIATIONS)
    if any(p.max_age is None for _, p in ordered_rules(server)):
        out["max-age"] = ("Starlette always sends Access-Control-Max-Age: the policy sends "
                          "none, this sends 0 (no caching).")
    return out


def generate(server: ServerPolicy) -> str:
    lines = [
        "import re",
        "",
        "from starlette.middleware.cors import CORSMiddleware",
        "",
        "CORS_RULES = [",
    ]
    for regex, p in ordered_rules(server):
        pattern = "None" if regex is None else f"re.compile({regex!r})"
        lines.append(f"    ({pattern}, dict({_kwargs(p)})),")
    lines += [
        "]",
        "",
        "",
        "class CorsPolicy:",
        '    """ASGI middleware: app.add_middleware(CorsPolicy); the first rule whose path',
        '    matches answers."""',
        "",
        "    def __init__(self, app):",
        "        self.app = app",
        "        self.rules = [(pattern, CORSMiddleware(app, **options))",
        "                      for pattern, options in CORS_RULES]",
        "",
        "    async def __call__(self, scope, receive, send):",
        '        if scope["type"] != "http" or (b"origin", b"null") in scope["headers"]:',
        "            return await self.app(scope, receive, send)   # Origin null: never allowed",
        "        for pattern, middleware in self.rules:",
        '            if pattern is None or pattern.match(scope["path"]):',
        "                return await middleware(scope, receive, send)",
    ]
    return header_comment(server, "FastAPI / Starlette (CORSMiddleware)", "#", TESTED,
                          deviations(server)) + "\n".join(lines) + "\n"
