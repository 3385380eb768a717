"""The report's summary: counts by role, verdict and code, and what preflights cost."""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..analysis import Report


def summarize(report: Report) -> dict[str, Any]:
    """Free-form counts for the JSON report's ``summary`` and the text header."""
    roles: Counter[str] = Counter()
    verdicts: Counter[str] = Counter()
    errors: Counter[str] = Counter()
    cache: Counter[str] = Counter()
    preflight_ms = 0.0
    request_ms = 0.0
    redundant = 0
    for v in report.exchanges:
        roles[v.role] += 1
        if v.verdict is not None:
            verdicts[v.verdict] += 1
        if v.cors_error:
            errors[v.cors_error] += 1
        if v.cache:
            cache[v.cache] += 1
        total = v.exchange.timings.total if v.exchange.timings else None
        if total is not None and total >= 0:
            request_ms += total
            if v.role == "preflight":
                preflight_ms += total
        if v.redundant:
            redundant += 1
    codes = Counter(f.code for f in report.findings)
    severities: Counter[str] = Counter(f.severity for f in report.findings)
    avoidable = sum(f.saved or 0 for f in report.findings if f.code == "AvoidablePreflight")
    saved_by_max_age = sum(f.saved or 0 for f in report.findings if f.code.startswith("MaxAge"))
    return {
        "exchanges": len(report.exchanges),
        "by_role": dict(sorted(roles.items())),
        "by_verdict": dict(sorted(verdicts.items())),
        "by_cors_error": dict(sorted(errors.items())),
        "by_finding_code": dict(sorted(codes.items())),
        "by_severity": {k: severities.get(k, 0) for k in ("error", "warning", "info")},
        "preflights": {
            "sent": roles.get("preflight", 0),
            "redundant": redundant,
            "avoidable": avoidable,
            "saved_by_longer_max_age": saved_by_max_age,
            "cache_hits": cache.get("hit", 0),
            "cache_misses": cache.get("miss", 0),
            "time_ms": round(preflight_ms, 3),
            "share_of_request_time": round(preflight_ms / request_ms, 4) if request_ms else None,
        },
        "skipped_records": sum(n for _, n in report.skipped_by_reason),
        "skipped_by_reason": dict(report.skipped_by_reason),
        "notes": list(report.notes),
    }

