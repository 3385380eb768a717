"""The decision trace of one exchange, in words (``corsflow explain``)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ..engine.events import ExchangeVerdict
from ..engine.words import engine_reason
from .inert import visible

if TYPE_CHECKING:
    from ..analysis import Report

_MARK = {"pass": "ok  ", "fail": "FAIL", "info": "    ", "unknown": "??  "}


def explain(v: ExchangeVerdict, report: Report) -> str:
    """Every step the engine took for ``v``, the values it looked at, and what follows."""
    ex = v.exchange
    lines = [
        f"{ex.id}  {ex.method} {ex.url}",
        f"  from {ex.source.path}, {ex.source.where}; status {ex.status if ex.status is not None else '-'}"
        + (f"; recorded failure: {ex.failure}" if ex.failure else ""),
        f"  role: {v.role}    verdict: {v.verdict or '-'}"
        + (f"    CorsError: {v.cors_error}" if v.cors_error else "")
        + (f" ({v.failed_parameter})" if v.failed_parameter else ""),
    ]
    reason = engine_reason(report.engine, v.cors_error)
    if reason is not None:
        lines.append(f"  {reason.engine} says: {reason.words}"
                     + (f"  ({reason.link})" if reason.link else ""))
    if v.origin:
        lines.append(f"  origin: {v.origin}    credentials: {v.credentials}")
    if v.preflight_id:
        lines.append(f"  preflight: {v.preflight_id} (cache {v.cache})")
    if v.redundant is not None:
        lines.append(f"  redundant: {'yes' if v.redundant else 'no'}"
                     + (f" ({v.redundant_cause})" if v.redundant_cause else ""))
    if v.max_age is not None:
        m = v.max_age
        lines.append(f"  Access-Control-Max-Age: {m.raw if m.raw is not None else 'absent'}"
                     f" -> cached {m.effective:g} s by {report.engine}"
                     + (f" ({m.problem})" if m.problem else ""))
    if v.unknown_reason:
        lines.append(f"  unknown because {v.unknown_reason}")
    lines.append("  decision:")
    for step in v.trace:
        spec = f"  [{step.spec}]" if step.spec else ""
        lines.append(f"    {_MARK[step.outcome]} {step.step}: {step.detail}{spec}")
    related = [f for f in report.findings if ex.id in f.exchange_ids]
    for f in related:
        lines.append(f"  {f.severity}: {f.code}: {f.message}")
        if f.hint:
            lines.append(f"    fix: {f.hint}")
    # Each line is one line of the report: a captured newline or escape sequence is written
    # out, never acted on.
    return "\n".join(map(visible, lines))


def explain_json(chosen: Sequence[ExchangeVerdict], report: Report) -> str:
    """``explain --format json``: per exchange, its EXCHANGE record (trace included), the
    findings that name it and the changes whose replay fixes it."""
    from ..changes import changes_of
    from .changes import change_to_dict
    from .json import exchange_to_dict, finding_to_dict

    changes = changes_of(report)
    # A preflight is fixed with the request it was sent for.
    requests_of: dict[str, set[str]] = {}
    for r in report.exchanges:
        if r.preflight_id and r.cache == "miss":
            requests_of.setdefault(r.preflight_id, set()).add(r.exchange.id)
    out: list[dict[str, Any]] = []
    for v in chosen:
        ex_id = v.exchange.id
        concerned = {ex_id} | requests_of.get(ex_id, set())
        out.append({
            "exchange": exchange_to_dict(v),
            "findings": [finding_to_dict(f) for f in report.findings if ex_id in f.exchange_ids],
            "changes": [change_to_dict(c) for c in changes if concerned & set(c.fixes)],
            "explanation": explain(v, report),
        })
    return json.dumps({"schema": 1, "engine": report.engine, "exchanges": out}, indent=2,
                      ensure_ascii=False) + "\n"
