"""Apache httpd 2.4: ``Header always set`` lines with ``expr=`` conditions, and mod_rewrite
answering preflights with 204.

Each allowed origin gets its own line with its name written out, so no header echoes what
the client sent; ``always`` puts the headers on error answers too. Needs mod_headers and
mod_rewrite; the lines go in the ``<VirtualHost>`` of the API.
"""

from __future__ import annotations

from .common import header_comment, ordered_rules
from .model import ServerPolicy

TESTED = "Debian's apache2 package, answers compared with corsflow's policy for every request"
DEVIATIONS: dict[str, str] = {}


def deviations(server: ServerPolicy) -> dict[str, str]:
    """The known ways this configuration departs from answer() (Mismatch kinds)."""
    return dict(DEVIATIONS)


def _path(regex: str) -> str:
    return f"%{{REQUEST_URI}} =~ m#{regex}#"


def generate(server: ServerPolicy) -> str:
    rules = ordered_rules(server)
    preflight = "%{REQUEST_METHOD} == 'OPTIONS' && -n %{HTTP:Access-Control-Request-Method}"
    lines = ["<IfModule !headers_module>",
             "    Error \"corsflow's CORS policy needs mod_headers (a2enmod headers)\"",
             "</IfModule>",
             "<IfModule !rewrite_module>",
             "    Error \"corsflow's CORS policy needs mod_rewrite (a2enmod rewrite)\"",
             "</IfModule>"]
    earlier: list[str] = []
    for regex, p in rules:
        where = _path(regex) if regex is not None else ""
        # the first matching rule wins: exclude the paths of the rules before this one
        conds = [c for c in [where, *(f"!({c})" for c in earlier)] if c]
        if regex is not None:
            earlier.append(where)
        rule = " && ".join(conds) or "true"
        lines.append(f"# {'paths matching ' + regex if regex else 'every other path'}")
        if p.allow_origins == ("*",):
            allowed = "-n %{HTTP:Origin} && %{HTTP:Origin} != 'null'"
            lines.append("Header always set Access-Control-Allow-Origin \"*\" "
                         f"\"expr={rule} && {allowed}\"")
        else:
            origins = p.allow_origins or ()
            allowed = ("%{HTTP:Origin} in {" + ", ".join(f"'{o}'" for o in origins) + "}"
                       if origins else "false")
            for o in origins:
                lines.append(f"Header always set Access-Control-Allow-Origin \"{o}\" "
                             f"\"expr={rule} && %{{HTTP:Origin}} == '{o}'\"")
        ok = f"{rule} && {allowed}"
        if p.allow_credentials:
            lines.append(f"Header always set Access-Control-Allow-Credentials \"true\" "
                         f"\"expr={ok}\"")
        pre = f"{ok} && {preflight}"
        if p.allow_methods:
            lines.append(f"Header always set Access-Control-Allow-Methods "
                         f"\"{', '.join(p.allow_methods)}\" \"expr={pre}\"")
        if p.allow_headers:
            lines.append(f"Header always set Access-Control-Allow-Headers "
                         f"\"{', '.join(p.allow_headers)}\" \"expr={pre}\"")
        if p.max_age is not None:
            lines.append(f"Header always set Access-Control-Max-Age \"{p.max_age}\" "
                         f"\"expr={pre}\"")
        if p.allow_private_network:
            lines.append("Header always set Access-Control-Allow-Private-Network \"true\" "
                         f"\"expr={pre} && "
                         "tolower(%{HTTP:Access-Control-Request-Private-Network}) == 'true'\"")
        if p.expose_headers:
            lines.append(f"Header always set Access-Control-Expose-Headers "
                         f"\"{', '.join(p.expose_headers)}\" \"expr={ok} && !({preflight})\"")
        if p.vary_origin:
            lines.append(f"Header always merge Vary \"Origin\" \"expr={rule}\"")
    lines += [
        "# a preflight is answered here, before authentication or the application",
        "RewriteEngine On",
        "RewriteCond %{REQUEST_METHOD} =OPTIONS",
        "RewriteCond %{HTTP:Access-Control-Request-Method} .",
        "RewriteRule ^ - [R=204,L]",
    ]
    return header_comment(server, "Apache httpd 2.4", "#", TESTED, deviations(server)) + \
        "\n".join(lines) + "\n"
