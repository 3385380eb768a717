"""nginx: ``map`` blocks (http context) and ``add_header ... always`` (server context).

Every value is chosen by a ``map`` keyed on the path rule, the request's Origin and whether
the request is a preflight, so no header ever echoes what the client sent: an origin gets
its own name back only when it is in the allow-list (matched case-sensitively, ``~``), and
an empty value makes nginx leave the header out. ``always`` adds the headers to error
answers too (a 401 or 500 that the page must be able to read).
"""

from __future__ import annotations

from .common import header_comment, ident, ordered_rules
from .model import ServerPolicy

TESTED = "Debian's nginx package, answers compared with corsflow's policy for every request"
DEVIATIONS: dict[str, str] = {}

HTTP_MARK = "# ---- in the http { } block:"
SERVER_MARK = "# ---- in the server { } block of the API (and in every location that has its own "\
              "add_header, since nginx inherits add_header only into locations without any):"


def deviations(server: ServerPolicy) -> dict[str, str]:
    """The known ways this configuration departs from answer() (Mismatch kinds)."""
    return dict(DEVIATIONS)


def _re(text: str) -> str:
    """A literal for an nginx regex inside double quotes (origins are plain characters)."""
    return "".join("\\" + c if c in ".+*?()[]{}|^$\\" else c for c in text)


def generate(server: ServerPolicy) -> str:
    v = f"cors_{ident(server.server)}"
    rules = ordered_rules(server)
    http: list[str] = []

    # Which rule applies: the first path regex that matches (nginx checks a map's regexes in
    # the order they appear); the default is the last rule.
    default_index = len(rules) - 1
    http.append(f"map $uri ${v}_rule {{")
    http.append(f"    default {default_index};")
    for i, (regex, _) in enumerate(rules):
        if regex is not None:
            http.append(f'    "~{regex}" {i};')
    http.append("}")

    http.append(f'map "$request_method $http_access_control_request_method" ${v}_preflight {{')
    http.append("    default 0;")
    http.append('    "~^OPTIONS ." 1;')
    http.append("}")

    http.append(f'map "${v}_rule $http_origin" ${v}_origin {{')
    http.append('    default "";')
    for i, (_, p) in enumerate(rules):
        if p.allow_origins == ("*",):
            http.append(f'    "~^{i} (?!null$)." "*";')
            continue
        for origin in p.allow_origins or ():
            http.append(f'    "~^{i} {_re(origin)}$" "{origin}";')
    http.append("}")

    def by_rule(name: str, key: str, values: list[tuple[str, str]]) -> None:
        """A map from "rule|preflight|...|origin" to a value; only allowed origins match
        (the origin part must be non-empty)."""
        http.append(f'map "{key}" ${v}_{name} {{')
        http.append('    default "";')
        for pattern, value in values:
            http.append(f'    "~{pattern}" "{value}";')
        http.append("}")

    key = f"${v}_rule|${v}_preflight|${v}_origin"
    creds, methods, headers, max_age, expose, vary, pna = ([] for _ in range(7))
    for i, (_, p) in enumerate(rules):
        if p.allow_credentials:
            creds.append((f"^{i}\\|[01]\\|.", "true"))
        if p.allow_methods:
            methods.append((f"^{i}\\|1\\|.", ", ".join(p.allow_methods)))
        if p.allow_headers:
            headers.append((f"^{i}\\|1\\|.", ", ".join(p.allow_headers)))
        if p.max_age is not None:
            max_age.append((f"^{i}\\|1\\|.", str(p.max_age)))
        if p.expose_headers:
            expose.append((f"^{i}\\|0\\|.", ", ".join(p.expose_headers)))
        if p.vary_origin:
            vary.append((f"^{i}$", "Origin"))
        if p.allow_private_network:
            pna.append((f"^{i}\\|1\\|(?i:true)\\|.", "true"))
    by_rule("credentials", key, creds)
    by_rule("methods", key, methods)
    by_rule("headers", key, headers)
    by_rule("max_age", key, max_age)
    by_rule("expose", key, expose)
    by_rule("vary", f"${v}_rule", vary)
    by_rule("private_network",
            f"${v}_rule|${v}_preflight|$http_access_control_request_private_network|${v}_origin",
            pna)

    srv = [
        f"add_header Access-Control-Allow-Origin ${v}_origin always;",
        f"add_header Access-Control-Allow-Credentials ${v}_credentials always;",
        f"add_header Access-Control-Allow-Methods ${v}_methods always;",
        f"add_header Access-Control-Allow-Headers ${v}_headers always;",
        f"add_header Access-Control-Max-Age ${v}_max_age always;",
        f"add_header Access-Control-Expose-Headers ${v}_expose always;",
        f"add_header Access-Control-Allow-Private-Network ${v}_private_network always;",
        f"add_header Vary ${v}_vary always;",
        "# a preflight is answered here, before authentication or the application",
        f"if (${v}_preflight) {{",
        "    return 204;",
        "}",
    ]
    return (header_comment(server, "nginx", "#", TESTED, deviations(server))
            + HTTP_MARK + "\n" + "\n".join(http) + "\n"
            + SERVER_MARK + "\n" + "\n".join(srv) + "\n")


def split(text: str) -> tuple[str, str]:
    """The http-context part and the server-context part of a generated configuration."""
    _head, _, rest = text.partition(HTTP_MARK)
    http, _, srv = rest.partition(SERVER_MARK)
    return http, srv
