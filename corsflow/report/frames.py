"""pandas DataFrames of a report, for notebooks: exchanges, preflights, findings, and
summaries by origin and by endpoint.

Times are timezone-aware UTC Timestamps, durations are milliseconds (NaN when the capture
does not say), and the few-valued columns (role, verdict, cache, cors_error, method,
severity) are categoricals so ``value_counts`` and ``groupby`` stay small and ordered.
pandas is imported only when a frame is asked for.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from ..analysis import Report
from ..engine.events import ExchangeVerdict
from ..urls import endpoint, path_template
from .optional import require
from .tally import CORS_ROLES, Counts, Tally, duration_ms, origin_label, tally, wait_ms

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)

ROLES = ("preflight", "preflighted", "simple", "other")
VERDICTS = ("allowed", "blocked", "unknown")
CACHE = ("hit", "miss")
SEVERITIES = ("error", "warning", "info")
CREDENTIALS = ("include", "omit", "unknown")

EXCHANGE_COLUMNS = (
    "id",
    "source",
    "where",
    "time",
    "origin",
    "url",
    "host",
    "path",
    "path_template",
    "endpoint",
    "method",
    "role",
    "status",
    "verdict",
    "cors_error",
    "failed_parameter",
    "preflight_id",
    "cache",
    "redundant",
    "redundant_cause",
    "avoidable",
    "credentials",
    "unsafe_headers",
    "preflight_reasons",
    "total_ms",
    "wait_ms",
)
PREFLIGHT_COLUMNS = (
    "id",
    "time",
    "origin",
    "url",
    "endpoint",
    "path_template",
    "requested_method",
    "requested_headers",
    "status",
    "verdict",
    "cors_error",
    "max_age_sent",
    "max_age",
    "max_age_effective",
    "max_age_clamped",
    "max_age_problem",
    "cost_ms",
    "request_ids",
    "request_count",
    "cache_hits",
    "redundant",
    "redundant_cause",
    "avoidable",
)
FINDING_COLUMNS = (
    "code",
    "severity",
    "message",
    "hint",
    "origin",
    "url",
    "spec",
    "count",
    "exchange_ids",
    "exchange_count",
)
SUMMARY_COLUMNS = (
    "requests",
    "preflighted",
    "simple",
    "preflights",
    "cache_hits",
    "redundant_preflights",
    "avoidable_preflights",
    "blocked",
    "unknown",
    "failed_preflights",
    "preflight_ms",
    "request_ms",
    "preflight_share",
)


def host_of(url: str) -> str:
    """``host[:port]`` (lower case, no user info), or ``""`` when the URL has none."""
    try:
        return urlsplit(url).netloc.rsplit("@", 1)[-1].lower()
    except ValueError:
        return ""


def path_of(url: str) -> str:
    """The URL's path without the query, ``/`` when empty."""
    try:
        return urlsplit(url).path or "/"
    except ValueError:
        return url.split("?", 1)[0]


def _pd() -> Any:
    return require("pandas", "DataFrames")


def _categorical(
    pd: Any, values: list[Any], categories: Iterable[str] | None = None, ordered: bool = False
) -> Any:
    if categories is None:
        categories = sorted({v for v in values if v is not None})
    return pd.Categorical(values, categories=list(categories), ordered=ordered)


def _times(pd: Any, seconds: list[float]) -> Any:
    # Epoch floats carry about a microsecond of precision; rounding there avoids ".130000114".
    micros = pd.Series(seconds, dtype="float64").mul(1e6).round().astype("int64")
    return pd.DatetimeIndex(pd.to_datetime(micros, unit="us", utc=True))


def _floats(values: list[float | None]) -> list[float]:
    return [float("nan") if v is None else float(v) for v in values]


def exchanges_frame(report: Report, *, t: Tally | None = None) -> pd.DataFrame:
    """One row per exchange, in capture order."""
    pd = _pd()
    t = t or tally(report)
    rows = report.exchanges
    ex = [v.exchange for v in rows]
    data = {
        "id": pd.array([e.id for e in ex], dtype="string"),
        "source": pd.array([e.source.path for e in ex], dtype="string"),
        "where": pd.array([e.source.where for e in ex], dtype="string"),
        "time": _times(pd, [e.started for e in ex]),
        "origin": pd.array([v.origin for v in rows], dtype="string"),
        "url": pd.array([e.url for e in ex], dtype="string"),
        "host": pd.array([host_of(e.url) for e in ex], dtype="string"),
        "path": pd.array([path_of(e.url) for e in ex], dtype="string"),
        "path_template": pd.array([path_template(e.url) for e in ex], dtype="string"),
        "endpoint": pd.array([endpoint(e.url) for e in ex], dtype="string"),
        "method": _categorical(pd, [e.method for e in ex]),
        "role": _categorical(pd, [v.role for v in rows], ROLES),
        "status": pd.array([e.status for e in ex], dtype="Int64"),
        "verdict": _categorical(pd, [v.verdict for v in rows], VERDICTS),
        "cors_error": _categorical(pd, [v.cors_error for v in rows]),
        "failed_parameter": pd.array([v.failed_parameter for v in rows], dtype="string"),
        "preflight_id": pd.array([v.preflight_id for v in rows], dtype="string"),
        "cache": _categorical(pd, [v.cache for v in rows], CACHE),
        "redundant": pd.array([v.redundant for v in rows], dtype="boolean"),
        "redundant_cause": pd.array([v.redundant_cause for v in rows], dtype="string"),
        "avoidable": pd.array(
            [v.exchange.id in t.avoidable if v.role == "preflight" else None for v in rows],
            dtype="boolean",
        ),
        "credentials": _categorical(pd, [v.credentials for v in rows], CREDENTIALS),
        # Joined into one string each, so value_counts() answers "why the preflights?".
        "unsafe_headers": pd.array(
            [", ".join(v.unsafe_headers) or None for v in rows], dtype="string"
        ),
        "preflight_reasons": pd.array(
            [", ".join(v.preflight_reasons) or None for v in rows], dtype="string"
        ),
        "total_ms": pd.array(_floats([duration_ms(v) for v in rows]), dtype="float64"),
        "wait_ms": pd.array(_floats([wait_ms(v) for v in rows]), dtype="float64"),
    }
    return pd.DataFrame(data, columns=list(EXCHANGE_COLUMNS))


def _requested_headers(v: ExchangeVerdict) -> str | None:
    raw = v.exchange.request_headers.get("access-control-request-headers")
    if raw is None:
        return None
    return ", ".join(sorted({h.strip().lower() for h in raw.split(",") if h.strip()}))


def preflights_frame(report: Report, *, t: Tally | None = None) -> pd.DataFrame:
    """One row per preflight: what it asked, what it was answered, what it cost and served.

    ``request_ids`` are the requests whose ``preflight_id`` names this preflight (those it
    authorised, or refused when it failed), ``cache_hits`` how many of them reused its
    cached result. ``max_age_sent`` is the header as captured, ``max_age`` its integer value,
    ``max_age_effective`` the seconds the engine caches it for (default applied, clamped).
    """
    pd = _pd()
    t = t or tally(report)
    rows = [v for v in report.exchanges if v.role == "preflight"]
    served = [t.authorised.get(v.exchange.id, ()) for v in rows]
    data = {
        "id": pd.array([v.exchange.id for v in rows], dtype="string"),
        "time": _times(pd, [v.exchange.started for v in rows]),
        "origin": pd.array([v.origin for v in rows], dtype="string"),
        "url": pd.array([v.exchange.url for v in rows], dtype="string"),
        "endpoint": pd.array([endpoint(v.exchange.url) for v in rows], dtype="string"),
        "path_template": pd.array([path_template(v.exchange.url) for v in rows], dtype="string"),
        "requested_method": _categorical(
            pd, [v.exchange.request_headers.get("access-control-request-method") for v in rows]
        ),
        "requested_headers": pd.array([_requested_headers(v) for v in rows], dtype="string"),
        "status": pd.array([v.exchange.status for v in rows], dtype="Int64"),
        "verdict": _categorical(pd, [v.verdict for v in rows], VERDICTS),
        "cors_error": _categorical(pd, [v.cors_error for v in rows]),
        "max_age_sent": pd.array(
            [v.max_age.raw if v.max_age else None for v in rows], dtype="string"
        ),
        "max_age": pd.array([v.max_age.parsed if v.max_age else None for v in rows], dtype="Int64"),
        "max_age_effective": pd.array(
            _floats([v.max_age.effective if v.max_age else None for v in rows]), dtype="float64"
        ),
        "max_age_clamped": pd.array(
            [v.max_age.clamped if v.max_age else None for v in rows], dtype="boolean"
        ),
        "max_age_problem": _categorical(
            pd,
            [v.max_age.problem if v.max_age else None for v in rows],
            ("missing", "invalid", "disabled", "above-cap"),
        ),
        "cost_ms": pd.array(_floats([duration_ms(v) for v in rows]), dtype="float64"),
        "request_ids": pd.Series([tuple(ids) for ids in served], dtype="object"),
        "request_count": pd.array([len(ids) for ids in served], dtype="int64"),
        "cache_hits": pd.array(
            [sum(1 for i in ids if t.by_id[i].cache == "hit") for ids in served], dtype="int64"
        ),
        "redundant": pd.array([v.redundant for v in rows], dtype="boolean"),
        "redundant_cause": pd.array([v.redundant_cause for v in rows], dtype="string"),
        "avoidable": pd.array([v.exchange.id in t.avoidable for v in rows], dtype="bool"),
    }
    return pd.DataFrame(data, columns=list(PREFLIGHT_COLUMNS))


def findings_frame(report: Report) -> pd.DataFrame:
    """One row per finding, most severe first (the report's order)."""
    pd = _pd()
    fs = report.findings
    data = {
        "code": _categorical(pd, [f.code for f in fs]),
        "severity": _categorical(pd, [f.severity for f in fs], SEVERITIES, ordered=True),
        "message": pd.array([f.message for f in fs], dtype="string"),
        "hint": pd.array([f.hint for f in fs], dtype="string"),
        "origin": pd.array([f.origin for f in fs], dtype="string"),
        "url": pd.array([f.url for f in fs], dtype="string"),
        "spec": pd.array([f.spec for f in fs], dtype="string"),
        "count": pd.array([f.count for f in fs], dtype="Int64"),
        "exchange_ids": pd.Series([tuple(f.exchange_ids) for f in fs], dtype="object"),
        "exchange_count": pd.array([len(f.exchange_ids) for f in fs], dtype="int64"),
    }
    return pd.DataFrame(data, columns=list(FINDING_COLUMNS))


def _summary(
    pd: Any, groups: dict[str, Counts], index_name: str, extra: dict[str, list[Any]]
) -> Any:
    names = list(groups)
    cs = [groups[n] for n in names]
    data: dict[str, Any] = {
        "requests": [c.requests for c in cs],
        "preflighted": [c.preflighted for c in cs],
        "simple": [c.simple for c in cs],
        "preflights": [c.preflights for c in cs],
        "cache_hits": [c.cache_hits for c in cs],
        "redundant_preflights": [c.redundant for c in cs],
        "avoidable_preflights": [c.avoidable for c in cs],
        "blocked": [c.blocked for c in cs],
        "unknown": [c.unknown for c in cs],
        "failed_preflights": [c.failed_preflights for c in cs],
        "preflight_ms": pd.array([c.preflight_ms for c in cs], dtype="float64"),
        "request_ms": pd.array([c.request_ms for c in cs], dtype="float64"),
        "preflight_share": pd.array(_floats([c.preflight_share for c in cs]), dtype="float64"),
    }
    data.update(extra)
    frame = pd.DataFrame(data, index=pd.Index(names, name=index_name, dtype="string"))
    for col in SUMMARY_COLUMNS[:10]:
        frame[col] = frame[col].astype("int64")
    return frame.sort_values(["preflight_ms", "requests"], ascending=False, kind="stable")


def by_origin(report: Report, *, t: Tally | None = None) -> pd.DataFrame:
    """Per page origin (the requests' Origin header): cross-origin traffic and its cost.

    ``avoidable_preflights`` counts redundant preflights and those an avoidable-preflight
    finding names; ``preflight_share`` is preflight time over preflight plus request time.
    Exchanges that are not cross-origin requests are left out. Busiest preflighters first.
    """
    pd = _pd()
    t = t or tally(report)
    groups = {o: c for o, c in t.origins.items() if c.requests or c.preflights}
    return _summary(pd, groups, "origin", {})


def by_endpoint(report: Report, *, t: Tally | None = None) -> pd.DataFrame:
    """Per endpoint (scheme, host and path template): the same columns as :func:`by_origin`,
    with the methods used and the origins calling it."""
    pd = _pd()
    t = t or tally(report)
    origins: dict[str, set[str]] = {}
    for v in report.exchanges:
        if v.role in CORS_ROLES:
            origins.setdefault(endpoint(v.exchange.url), set()).add(origin_label(v.origin))
    names = list(t.endpoints)
    extra = {
        "methods": pd.array(
            [", ".join(sorted(t.endpoints[n].methods)) for n in names], dtype="string"
        ),
        "origins": pd.array([", ".join(sorted(origins.get(n, ()))) for n in names], dtype="string"),
    }
    return _summary(pd, t.endpoints, "endpoint", extra)
