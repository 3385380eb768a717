"""Caddy 2: a Caddyfile snippet for the API's site block, with CEL ``expression`` matchers.

The request's Origin is copied into Access-Control-Allow-Origin only by a handler whose
matcher checked it against the explicit allow-list; ``respond`` answers preflights with 204
before anything else in the site block runs.
"""

from __future__ import annotations

from .common import header_comment, ident, ordered_rules
from .model import ServerPolicy

TESTED = "Debian's caddy package, answers compared with corsflow's policy for every request"
DEVIATIONS: dict[str, str] = {}


def deviations(server: ServerPolicy) -> dict[str, str]:
    """The known ways this configuration departs from answer() (Mismatch kinds)."""
    return dict(DEVIATIONS)


def generate(server: ServerPolicy) -> str:
    v = f"cors_{ident(server.server)}"
    origin = "{http.request.header.Origin}"
    preflight = ('{http.request.method} == "OPTIONS" && '
                 '{http.request.header.Access-Control-Request-Method} != ""')
    lines: list[str] = []
    earlier: list[str] = []
    for i, (regex, p) in enumerate(ordered_rules(server)):
        where = f'{{http.request.uri.path}}.matches(r"{regex}")' if regex is not None else ""
        rule = " && ".join(c for c in [where, *(f"!{c}" for c in earlier)] if c) or "true"
        if regex is not None:
            earlier.append(where)
        if p.allow_origins == ("*",):
            allowed = f'{origin} != "" && {origin} != "null"'
            value = "*"
        else:
            names = ", ".join(f'"{o}"' for o in p.allow_origins or ())
            allowed = f"{origin} in [{names}]"
            value = origin
        m = f"@{v}_{i}"
        lines.append(f"# {'paths matching ' + regex if regex else 'every other path'}")
        lines.append(f"{m}_rule expression `{rule}`")
        lines.append(f"{m}_ok expression `{rule} && {allowed}`")
        lines.append(f"{m}_preflight expression `{rule} && {allowed} && {preflight}`")
        lines.append(f"{m}_actual expression `{rule} && {allowed} && !({preflight})`")
        lines.append(f"header {m}_ok Access-Control-Allow-Origin \"{value}\"")
        if p.allow_credentials:
            lines.append(f"header {m}_ok Access-Control-Allow-Credentials \"true\"")
        if p.allow_methods:
            lines.append(f"header {m}_preflight Access-Control-Allow-Methods "
                         f"\"{', '.join(p.allow_methods)}\"")
        if p.allow_headers:
            lines.append(f"header {m}_preflight Access-Control-Allow-Headers "
                         f"\"{', '.join(p.allow_headers)}\"")
        if p.max_age is not None:
            lines.append(f"header {m}_preflight Access-Control-Max-Age \"{p.max_age}\"")
        if p.allow_private_network:
            lines.append(f"{m}_pna expression `{rule} && {allowed} && {preflight} && "
                         "{http.request.header.Access-Control-Request-Private-Network}"
                         ".lowerAscii() == \"true\"`")
            lines.append(f"header {m}_pna Access-Control-Allow-Private-Network \"true\"")
        if p.expose_headers:
            lines.append(f"header {m}_actual Access-Control-Expose-Headers "
                         f"\"{', '.join(p.expose_headers)}\"")
        if p.vary_origin:
            lines.append(f"header {m}_rule +Vary \"Origin\"")
    lines.append(f"@{v}_preflight expression `{preflight}`")
    lines.append("# a preflight is answered here, before authentication or the application")
    lines.append(f"respond @{v}_preflight 204")
    return header_comment(server, "Caddy 2 (Caddyfile, inside the API's site block)", "#",
                          TESTED, deviations(server)) + "\n".join(lines) + "\n"
