"""Express with the ``cors`` package: one ``cors()`` middleware per path rule and a small
dispatcher so the first matching rule alone answers.

``origin`` is given as an array, so the package sends an origin back only when it is in the
list; ``allowedHeaders`` is always given (without it the package reflects whatever the
preflight asks for); ``optionsSuccessStatus: 204`` answers preflights.
"""

from __future__ import annotations

import json

from .common import header_comment, ordered_rules
from .model import Policy, ServerPolicy

TESTED = ("Node.js with express 4 and cors 2.8 from the npm registry, answers compared "
          "with corsflow's policy for every request")
DEVIATIONS: dict[str, str] = {}


def deviations(server: ServerPolicy) -> dict[str, str]:
    """The known ways this configuration departs from answer() (Mismatch kinds)."""
    return dict(DEVIATIONS)


def _options(p: Policy) -> str:
    opts: dict[str, object] = {
        "origin": "*" if p.allow_origins == ("*",) else list(p.allow_origins or ()),
        "methods": list(p.allow_methods or ()),
        "allowedHeaders": list(p.allow_headers or ()),
        "exposedHeaders": list(p.expose_headers or ()),
        "credentials": bool(p.allow_credentials),
        "optionsSuccessStatus": 204,
    }
    if p.max_age is not None:
        opts["maxAge"] = p.max_age
    return json.dumps(opts)


def generate(server: ServerPolicy) -> str:
    rules = ordered_rules(server)
    lines = ['const cors = require("cors");', "", "const corsRules = ["]
    for regex, p in rules:
        pattern = "null" if regex is None else "new RegExp(" + json.dumps(regex) + ")"
        lines.append(f"  {{ path: {pattern}, options: {_options(p)},")
        lines.append(f"    privateNetwork: {json.dumps(bool(p.allow_private_network))},")
        lines.append(f"    vary: {json.dumps(bool(p.vary_origin))} }},")
    lines += [
        "];",
        "for (const rule of corsRules) rule.handler = cors(rule.options);",
        "",
        "// app.use(corsPolicy) before the routes: the first rule whose path matches answers.",
        "function corsPolicy(req, res, next) {",
        "  const rule = corsRules.find((r) => r.path === null || r.path.test(req.path));",
        '  if (rule.vary) res.vary("Origin");',
        "  const origin = req.headers.origin;",
        '  const preflight = req.method === "OPTIONS" &&',
        '    req.headers["access-control-request-method"] !== undefined;',
        "  const allowed = origin !== undefined && origin !== \"null\" &&",
        '    (rule.options.origin === "*" || rule.options.origin.includes(origin));',
        "  // the cors package has no Private Network Access option",
        "  if (preflight && allowed && rule.privateNetwork && String(",
        '      req.headers["access-control-request-private-network"]).trim().toLowerCase()',
        '      === "true") {',
        '    res.setHeader("Access-Control-Allow-Private-Network", "true");',
        "  }",
        '  // no Origin: not a CORS request; Origin null: never allowed',
        '  if (origin === undefined || origin === "null") return next();',
        "  // any other OPTIONS goes to the application, as the policy says",
        '  if (req.method === "OPTIONS" && !preflight) return next();',
        "  return rule.handler(req, res, next);",
        "}",
        "",
        "module.exports = corsPolicy;",
    ]
    return header_comment(server, "Express (the cors package)", "//", TESTED, deviations(server)) + \
        "\n".join(lines) + "\n"
