"""Django with django-cors-headers: settings, and a middleware that keeps ``Origin: null``
from ever being answered.

django-cors-headers has one configuration per project, so per-path rules cannot be written
with it: when the policy has them, the output says which paths it cannot serve as proposed.
"""

from __future__ import annotations

from .common import header_comment
from .model import ServerPolicy

TESTED = ("Django and django-cors-headers from the package index under Django's runserver, "
          "answers compared with corsflow's policy for every request")
DEVIATIONS: dict[str, str] = {}


def deviations(server: ServerPolicy) -> dict[str, str]:
    """The known ways this configuration departs from answer() (Mismatch kinds, and
    ``paths``: the per-path rules are not implemented)."""
    out = dict(DEVIATIONS)
    if server.proposed.paths:
        out["paths"] = (
            "django-cors-headers cannot vary the policy by path: these settings implement "
            "the server default only; the per-path rules for "
            + ", ".join(r.path for r in server.proposed.paths) + " are NOT implemented.")
    return out


def generate(server: ServerPolicy) -> str:
    p = server.proposed.default
    lines = []
    if p.allow_origins == ("*",):
        lines.append("CORS_ALLOW_ALL_ORIGINS = True")
    else:
        lines.append(f"CORS_ALLOWED_ORIGINS = {list(p.allow_origins or ())!r}")
    lines += [
        f"CORS_ALLOW_METHODS = {list(p.allow_methods or ())!r}",
        f"CORS_ALLOW_HEADERS = {list(p.allow_headers or ())!r}",
        f"CORS_ALLOW_CREDENTIALS = {bool(p.allow_credentials)!r}",
        f"CORS_EXPOSE_HEADERS = {list(p.expose_headers or ())!r}",
        # django-cors-headers sends no Max-Age for 0
        f"CORS_PREFLIGHT_MAX_AGE = {p.max_age if p.max_age is not None else 0}",
        f"CORS_ALLOW_PRIVATE_NETWORK = {bool(p.allow_private_network)!r}",
        "",
        '# INSTALLED_APPS += ["corsheaders"]; MIDDLEWARE starts with (in this order):',
        '#     "yourapp.cors.NeverNullOrigin", "corsheaders.middleware.CorsMiddleware",',
        "",
        "",
        "class NeverNullOrigin:",
        '    """Origin null is never allowed: listed before CorsMiddleware, it sees the',
        '    response after it and removes what it added."""',
        "",
        "    def __init__(self, get_response):",
        "        self.get_response = get_response",
        "",
        "    def __call__(self, request):",
        "        response = self.get_response(request)",
        '        if request.headers.get("Origin") == "null":',
        "            for name in [n for n in response.headers",
        '                         if n.lower().startswith("access-control-")]:',
        "                del response.headers[name]",
        "        return response",
    ]
    return header_comment(server, "Django (django-cors-headers settings)", "#", TESTED,
                          deviations(server)) + "\n".join(lines) + "\n"
