"""The what-if's before/after tables in every output format (text, markdown, HTML, JSON)."""

from __future__ import annotations

import html
import json
from typing import Any

from . import WhatIf
from .replay import Replay, Totals

_COLUMNS = (("preflights", "preflights"), ("cache_hits", "cache hits"),
            ("blocked", "blocked requests"), ("preflight_ms", "preflight time (ms)"))


def _cells(before: Totals, after: Totals) -> list[str]:
    out = []
    for key, _ in _COLUMNS:
        b, a = getattr(before, key), getattr(after, key)
        if key == "preflight_ms":
            out.append(f"{b:,.0f} → {a:,.0f}")
        else:
            delta = a - b
            out.append(f"{b} → {a}" + (f" ({delta:+d})" if delta else ""))
    return out


def _sections(w: WhatIf) -> list[tuple[str, list[tuple[str, Totals, Totals]]]]:
    r = w.combined
    total = r.totals().get("", (Totals(), Totals()))
    sections = [("all", [("all requests", total[0], total[1])])]
    sections.append(("per origin", [(k, b, a) for k, (b, a) in r.totals("origin").items()]))
    sections.append(("per server", [(k, b, a) for k, (b, a) in r.totals("server").items()]))
    if w.each:
        rows = []
        for one in w.each:
            t = one.totals().get("", (Totals(), Totals()))
            rows.append((one.changes.label, t[0], t[1]))
        sections.append(("per change (each alone)", rows))
    return sections


def _summary(r: Replay) -> list[str]:
    lines = [f"changes: {r.changes.label}"]
    fixes, breaks = r.fixes, r.breaks
    if fixes:
        lines.append(f"fixes {len(fixes)} blocked request(s): {', '.join(fixes[:12])}"
                     + (" …" if len(fixes) > 12 else ""))
    if breaks:
        lines.append(f"BLOCKS {len(breaks)} request(s) allowed as captured: "
                     f"{', '.join(breaks[:12])}" + (" …" if len(breaks) > 12 else ""))
    if r.predicted:
        lines.append(f"{r.predicted} outcome(s) rest on answers the capture does not show (the "
                     "request was blocked there): predicted from what the server answered "
                     "elsewhere")
    return lines


def render_whatif_text(w: WhatIf) -> str:
    out = ["corsflow what-if · " + ", ".join(s.path for s in w.report.sources), *_summary(w.combined)]
    for title, rows in _sections(w):
        out.append("")
        out.append(title)
        width = max(len(name) for name, _, _ in rows) if rows else 0
        head = "  " + "".ljust(width) + "  " + "  ".join(f"{h:>22}" for _, h in _COLUMNS)
        out.append(head.rstrip())
        for name, b, a in rows:
            out.append(("  " + name.ljust(width) + "  "
                        + "  ".join(f"{c:>22}" for c in _cells(b, a))).rstrip())
    return "\n".join(out) + "\n"


def _md(value: str) -> str:
    return value.replace("\\", "\\\\").replace("|", "\\|").replace("`", "\\`") \
        .replace("<", "&lt;").replace(">", "&gt;").replace("\n", " ")


def render_whatif_markdown(w: WhatIf) -> str:
    out = ["# CORS what-if", "", *(f"- {_md(line)}" for line in _summary(w.combined))]
    for title, rows in _sections(w):
        out += ["", f"## {title}", "",
                "| | " + " | ".join(h for _, h in _COLUMNS) + " |",
                "|---|" + "---|" * len(_COLUMNS)]
        out += ["| " + _md(name) + " | " + " | ".join(_cells(b, a)) + " |" for name, b, a in rows]
    return "\n".join(out) + "\n"


def render_whatif_html(w: WhatIf) -> str:
    e = html.escape
    parts = [('<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
             "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
             "style-src 'unsafe-inline'\"><title>CORS what-if</title><style>"
             "body{font:14px system-ui,sans-serif;margin:2em}td,th{padding:2px 10px;"
             "text-align:right}td:first-child{text-align:left}</style></head><body>"),
             "<h1>CORS what-if</h1><ul>"]
    parts += [f"<li>{e(line)}</li>" for line in _summary(w.combined)]
    parts.append("</ul>")
    for title, rows in _sections(w):
        parts.append(f"<h2>{e(title)}</h2><table><tr><th></th>"
                     + "".join(f"<th>{e(h)}</th>" for _, h in _COLUMNS) + "</tr>")
        for name, b, a in rows:
            parts.append(f"<tr><td>{e(name)}</td>"
                         + "".join(f"<td>{e(c)}</td>" for c in _cells(b, a)) + "</tr>")
        parts.append("</table>")
    parts.append("</body></html>\n")
    return "".join(parts)


def _pair(b: Totals, a: Totals) -> dict[str, Any]:
    return {"before": b.as_dict(), "after": a.as_dict()}


def replay_to_dict(r: Replay) -> dict[str, Any]:
    total = r.totals().get("", (Totals(), Totals()))
    return {
        "changes": r.changes.label,
        "set": [line for rule in r.changes.rules for line in rule.text()],
        "policy_servers": sorted(r.changes.answers or {}),
        "totals": _pair(*total),
        "by_origin": {k: _pair(b, a) for k, (b, a) in r.totals("origin").items()},
        "by_server": {k: _pair(b, a) for k, (b, a) in r.totals("server").items()},
        "fixes": list(r.fixes),
        "breaks": list(r.breaks),
        "predicted": r.predicted,
        "requests": [
            {"id": q.id, "origin": q.origin, "url": q.url, "method": q.method,
             "before": {"verdict": b.verdict, "preflight": b.preflight, "cache_hit": b.cache_hit,
                        "cors_error": b.cors_error},
             "after": {"verdict": a.verdict, "preflight": a.preflight, "cache_hit": a.cache_hit,
                       "cors_error": a.cors_error, "predicted": a.predicted}}
            for q, b, a in zip(r.requests, r.before, r.after, strict=True)
        ],
    }


def whatif_to_dict(w: WhatIf) -> dict[str, Any]:
    out = {"schema": 1, "engine": w.report.engine,
           "sources": [s.path for s in w.report.sources], **replay_to_dict(w.combined)}
    out["each"] = [{k: v for k, v in replay_to_dict(r).items() if k != "requests"}
                   for r in w.each]
    return out


def render_whatif_json(w: WhatIf) -> str:
    return json.dumps(whatif_to_dict(w), indent=2, ensure_ascii=False) + "\n"
