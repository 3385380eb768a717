"""The JSON report (contract version 1: shared with other tools; fields are a promise).

Fields named in the contract are never renamed or dropped without a new ``schema`` number;
extra fields (traces, hints, timings) are added freely.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

from .. import __version__
from ..engine.events import ExchangeVerdict, Finding
from ..engine.words import engine_reason
from ..findings.security import is_security
from .changes import changes_json
from .summary import summarize

if TYPE_CHECKING:
    from ..analysis import Report

SCHEMA = 1


def exchange_to_dict(v: ExchangeVerdict,
                     traces: dict[int, list[dict[str, Any]]] | None = None,
                     engine: str = "chromium") -> dict[str, Any]:
    """One EXCHANGE record. ``traces``, when given, memoises the trace lists by the identity
    of the trace tuple (verdicts share traces), for a caller that serialises the dicts at
    once and keeps the report alive meanwhile."""
    ex = v.exchange
    trace = None if traces is None else traces.get(id(v.trace))
    if trace is None:
        trace = [{"step": s.step, "outcome": s.outcome, "detail": s.detail, "spec": s.spec}
                 for s in v.trace]
        if traces is not None:
            traces[id(v.trace)] = trace
    out: dict[str, Any] = {
        "id": ex.id,
        "method": ex.method,
        "url": ex.url,
        "origin": v.origin,
        "started": ex.started,
        "status": ex.status,
        "role": v.role,
        "verdict": v.verdict,
        "cors_error": v.cors_error,
        "preflight_id": v.preflight_id,
        "cache": v.cache,
        "redundant": v.redundant,
        # Beyond the contract:
        "failed_parameter": v.failed_parameter,
        "unknown_reason": v.unknown_reason,
        "redundant_cause": v.redundant_cause,
        "credentials": v.credentials,
        "unsafe_headers": list(v.unsafe_headers),
        "preflight_reasons": list(v.preflight_reasons),
        "failure": ex.failure,
        "source": {"path": ex.source.path, "format": ex.source.format,
                   "where": ex.source.where},
        "time_ms": ex.timings.total if ex.timings else None,
        "trace": trace,
    }
    reason = engine_reason(engine, v.cors_error)
    if reason is not None:
        # Firefox's and WebKit's own words for the failure (engine/words.py).
        out["engine_reason"] = {"engine": reason.engine, "words": reason.words,
                                "link": reason.link}
    if v.max_age is not None:
        m = v.max_age
        out["max_age"] = {"raw": m.raw, "parsed": m.parsed, "effective": m.effective,
                          "clamped": m.clamped, "problem": m.problem}
    browser = ex.hints.browser
    if browser is not None:  # what the browser itself logged (NetLog), beside the verdict
        out["browser"] = {f.name: value for f in dataclasses.fields(browser)
                          if (value := getattr(browser, f.name)) is not None}
    return out


def finding_to_dict(f: Finding) -> dict[str, Any]:
    return {
        "code": f.code,
        "severity": f.severity,
        "message": f.message,
        "exchange_ids": list(f.exchange_ids),
        "hint": f.hint,
        "origin": f.origin,
        "url": f.url,
        "spec": f.spec,
        "count": f.count,
        "saved": f.saved,
        # Beyond the contract: "security" for the passive CWE-942 review, else "cors".
        "category": "security" if is_security(f) else "cors",
    }


def _head(report: Report) -> dict[str, Any]:
    return {
        "schema": SCHEMA,
        "corsflow_version": __version__,
        "engine": report.engine,
        "sources": [{"path": s.path, "format": s.format, "exchanges": s.exchanges,
                     "skipped": s.skipped} for s in report.sources],
        # Beyond the contract: how the files were grouped into browsing sessions.
        "sessions": [{"number": s.number, "paths": list(s.paths)} for s in report.sessions],
        # Whether secret values (cookies, credentials, URL tokens) were replaced, and how many.
        "redaction": {"applied": report.redacted is not None, "values": report.redacted or 0},
    }


def report_to_dict(report: Report) -> dict[str, Any]:
    """The contract's single JSON object."""
    return {
        **_head(report),
        "exchanges": [exchange_to_dict(v, engine=report.engine) for v in report.exchanges],
        "findings": [finding_to_dict(f) for f in report.findings],
        "changes": changes_json(report),
        "summary": summarize(report),
    }


def iter_json(report: Report, exchanges: Iterable[bytes] | None = None) -> Iterator[bytes]:
    """The object of :func:`report_to_dict`, serialised piece by piece with one exchange per
    line, so a report of a million exchanges is never held twice in memory. ``exchanges``:
    the EXCHANGE records already serialised (written as the verdicts settled), when the
    report does not keep its verdicts."""
    import orjson

    yield orjson.dumps(_head(report))[:-1] + b',\n"exchanges": ['
    if exchanges is None:
        traces: dict[int, list[dict[str, Any]]] = {}
        exchanges = (orjson.dumps(exchange_to_dict(v, traces, report.engine)) for v in report.exchanges)
    for n, line in enumerate(exchanges):
        yield (b"\n" if n == 0 else b",\n") + line
    findings = [finding_to_dict(f) for f in report.findings]
    yield b'\n],\n"findings": ' + orjson.dumps(findings, option=orjson.OPT_INDENT_2)
    yield b',\n"changes": ' + orjson.dumps(changes_json(report), option=orjson.OPT_INDENT_2)
    yield (b',\n"summary": ' + orjson.dumps(summarize(report), option=orjson.OPT_INDENT_2)
           + b"\n}\n")


def render_json(report: Report) -> str:
    return b"".join(iter_json(report)).decode()
