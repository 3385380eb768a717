"""Rendering a :class:`~corsflow.fleet.FleetReport`: text, markdown, CSV and JSON.

The fleet's JSON is schema 1's object for many sessions: ``"fleet": true``, one entry per
session in ``sessions`` (in place of ``exchanges``), findings counted over sessions.
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from typing import Any

from .. import __version__
from ..fleet import COUNT_FIELDS, TIME_FIELDS, FleetFinding, FleetReport, GroupRow, SessionResult
from .text import md, safe

FINDINGS_SHOWN = 25


def _totals(rows: list[GroupRow]) -> dict[str, float]:
    out: dict[str, float] = dict.fromkeys(COUNT_FIELDS + TIME_FIELDS, 0)
    for r in rows:
        for f in COUNT_FIELDS + TIME_FIELDS:
            out[f] += getattr(r, f)
    return out


def fleet_totals(report: FleetReport) -> dict[str, float]:
    """Every session's counts added up."""
    return _totals([s.total for s in report.analysed if s.total is not None])


def grouped(report: FleetReport, kind: str) -> dict[str, dict[str, float]]:
    """Per origin (``kind="origins"``) or endpoint (``"endpoints"``): counts over the fleet,
    with ``sessions``, the number of sessions that had traffic there."""
    rows: dict[str, list[GroupRow]] = defaultdict(list)
    for s in report.analysed:
        for r in getattr(s, kind):
            rows[r.key].append(r)
    out = {k: {**_totals(rs), "sessions": len(rs)} for k, rs in rows.items()}
    return dict(sorted(out.items(), key=lambda kv: (-kv[1]["preflight_ms"], kv[0])))


def _session_dict(s: SessionResult) -> dict[str, Any]:
    total = s.total
    return {
        "path": s.path, "format": s.format, "engine": s.engine, "error": s.error,
        "bytes": s.size, "exchanges": s.exchanges, "skipped": s.skipped,
        "started": s.first_started,
        **({f: getattr(total, f) for f in COUNT_FIELDS + TIME_FIELDS} if total else {}),
        "findings": {sev: sum(1 for f in s.findings if f.severity == sev)
                     for sev in ("error", "warning", "info")},
    }


def _finding_dict(f: FleetFinding) -> dict[str, Any]:
    return {"code": f.code, "severity": f.severity, "message": f.message, "hint": f.hint,
            "origin": f.origin, "url": f.url, "spec": f.spec, "sessions": f.sessions,
            "count": f.exchanges, "saved": f.saved, "session_paths": list(f.session_paths),
            "exchange_ids": []}


def fleet_to_dict(report: FleetReport) -> dict[str, Any]:
    from .json import SCHEMA

    return {
        "schema": SCHEMA, "corsflow_version": __version__, "engine": report.engine,
        "fleet": True,
        "sources": [{"path": s.path, "format": s.format, "exchanges": s.exchanges,
                     "skipped": s.skipped, "error": s.error} for s in report.sessions],
        "sessions": [_session_dict(s) for s in report.sessions],
        "findings": [_finding_dict(f) for f in report.findings],
        "summary": {"sessions": len(report.sessions), "failed": len(report.failed),
                    "engines": report.engines, "engine_detected": report.detected,
                    **fleet_totals(report)},
    }


def render_fleet_json(report: FleetReport) -> str:
    import orjson

    return orjson.dumps(fleet_to_dict(report), option=orjson.OPT_INDENT_2).decode() + "\n"


# A refused preflight blocks the request it was for, which a capture may not hold: "blocked"
# counts both.


def engines_text(report: FleetReport) -> str:
    """``engine chromium``, or how many sessions each engine modelled when each session's
    capture told its own."""
    engines = report.engines
    if not report.detected:
        return f"engine {report.engine}"
    if len(engines) <= 1:
        return f"engine {report.engine} (detected)"
    return "engines detected per session: " + ", ".join(f"{e} {n}" for e, n in engines.items())


def _ms(value: float) -> str:
    return f"{value / 1000:.1f} s" if value >= 1000 else f"{value:.0f} ms"


def render_fleet_text(report: FleetReport, *, all_findings: bool = False) -> str:
    t = fleet_totals(report)
    n, failed = len(report.sessions), len(report.failed)
    lines = [
        f"corsflow: {n} session(s), {engines_text(report)}"
        + (f"; {failed} could not be read" if failed else ""),
        (f"  {int(t['requests'])} cross-origin requests, {int(t['preflights'])} preflights "
         f"({_ms(t['preflight_ms'])}), {int(t['cache_hits'])} cache hits, "
         f"{int(t['blocked'] + t['failed_preflights'])} blocked, "
         f"{int(t['redundant'])} redundant preflights"),
        "",
    ]
    shown = report.findings if all_findings else report.findings[:FINDINGS_SHOWN]
    if shown:
        lines.append("Findings across sessions (most severe first, then the most widespread):")
    for f in shown:
        saved = f"; would save {f.saved} preflights" if f.saved else ""
        lines.append(f"  {f.severity:<7} {f.code}: in {f.sessions} of {n} session(s), "
                     f"{f.exchanges} exchange(s){saved}")
        lines.append(f"          {safe(f.message)}")
        if f.hint:
            lines.append(f"          fix: {safe(f.hint)}")
    if len(report.findings) > len(shown):
        lines.append(f"  ... and {len(report.findings) - len(shown)} more (--all lists them)")
    endpoints = grouped(report, "endpoints")
    if endpoints:
        lines += ["", "Endpoints by preflight time:"]
        for key, c in list(endpoints.items())[:10]:
            lines.append(f"  {safe(key)}: {int(c['preflights'])} preflights "
                         f"({_ms(c['preflight_ms'])}), "
                         f"{int(c['blocked'] + c['failed_preflights'])} blocked, "
                         f"in {int(c['sessions'])} session(s)")
    if failed:
        lines += ["", "Could not be read:"]
        lines += [f"  {safe(s.error or s.path)}" for s in report.failed]
    return "\n".join(lines) + "\n"


def render_fleet_markdown(report: FleetReport) -> str:
    t = fleet_totals(report)
    n = len(report.sessions)
    totals = (f"{int(t['requests'])} cross-origin requests, {int(t['preflights'])} preflights, "
              f"{int(t['blocked'] + t['failed_preflights'])} blocked; {len(report.failed)} file(s) "
              "could not be read.")
    out = [f"# corsflow: {n} sessions ({engines_text(report)})", "", totals, "",
           "| severity | code | sessions | exchanges | message | fix |",
           "| --- | --- | --- | --- | --- | --- |"]
    out += [f"| {f.severity} | {f.code} | {f.sessions} | {f.exchanges} | {md(f.message)} | "
            f"{md(f.hint or '')} |" for f in report.findings]
    if report.failed:
        out += ["", "## Could not be read", ""] + [f"- {md(s.error or s.path)}" for s in report.failed]
    return "\n".join(out) + "\n"


def render_fleet_csv(report: FleetReport) -> str:
    """One row per session: the sessions table."""
    buf = io.StringIO()
    columns = ["path", "format", "engine", "error", "bytes", "exchanges", "skipped", "started",
               *COUNT_FIELDS, *TIME_FIELDS, "errors", "warnings", "infos"]
    w = csv.writer(buf)
    w.writerow(columns)
    for s in report.sessions:
        d = _session_dict(s)
        counts = d.pop("findings")
        row = [d.get(c) for c in columns[:-3]] + [counts["error"], counts["warning"], counts["info"]]
        w.writerow(["" if v is None else _csv_safe(v) for v in row])
    return buf.getvalue()


def _csv_safe(value: object) -> object:
    # A spreadsheet would run a cell that starts like a formula.
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@"):
        return "'" + value
    return value
