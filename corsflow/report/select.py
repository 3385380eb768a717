"""A narrower view of a report for the text report's filters (``--origin``, ``--url``,
``--code``). The changes stay those of the whole session, filtered the same way."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from ..analysis import Report
from ..changes import changes_of, remember
from ..urls import url_origin


def narrow(report: Report, *, origin: str | None = None, url: str | None = None,
           codes: Sequence[str] | None = None) -> Report:
    """Exchanges of ``origin`` (the page's or the server's) whose URL contains ``url``;
    findings about them with one of ``codes``; changes likewise."""
    origin = origin.rstrip("/") if origin else None
    wanted = {c.lower() for c in codes} if codes else None

    def origin_ok(page: str | None, target: str | None) -> bool:
        return origin is None or origin in (page, url_origin(target or ""))

    exchanges = tuple(v for v in report.exchanges
                      if origin_ok(v.origin, v.exchange.url)
                      and (url is None or url in v.exchange.url))
    kept = {v.exchange.id for v in exchanges}
    findings = tuple(
        f for f in report.findings
        if (wanted is None or f.code.lower() in wanted)
        and (origin is None and url is None
             or any(i in kept for i in f.exchange_ids)
             or (origin_ok(f.origin, f.url) and (url is None or url in (f.url or "")))))
    changes = tuple(
        c for c in changes_of(report)
        if (wanted is None or wanted & {code.lower() for code in c.finding_codes})
        and (origin is None or c.server == origin or any(i in kept for i in c.fixes)
             or origin in {v.origin for v in exchanges})
        and (url is None or any(url in c.server + e for e in c.endpoints)
             or any(i in kept for i in c.fixes)))
    narrowed = dataclasses.replace(report, exchanges=exchanges, findings=findings, _index={})
    remember(narrowed, changes)
    return narrowed
