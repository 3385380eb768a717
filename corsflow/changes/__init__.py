"""What to change: root causes grouped by the server change that fixes them, each change's
effect computed by replaying the session (:mod:`corsflow.whatif`), not estimated.

Every report format opens with :func:`changes_of`; the rendering of changes lives in
:mod:`corsflow.report.changes`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..aside import Aside, worth_forking
from ..redact import Redactor
from .derive import Change, compute_changes
from .safe import NULL_ORIGIN_ADVICE, browser_origin

if TYPE_CHECKING:
    from collections.abc import Sequence

    from ..analysis import Report
    from ..engine.events import ExchangeVerdict

__all__ = ["NULL_ORIGIN_ADVICE", "Change", "browser_origin", "changes_of", "compute_changes",
           "redacted_from", "remember", "same_changes", "start_changes"]

_MEMO: list[tuple[Report, tuple[Change, ...]]] = []
_ASIDE: list[tuple[Report, Aside[tuple[Change, ...]]]] = []
"""Changes being computed in a child process (:func:`start_changes`)."""

_DERIVED: list[tuple[Report, Report, bool]] = []
"""(report, the report whose changes it has, whether they are redacted for it):
:func:`redacted_from` and :func:`same_changes`."""

ASIDE_FROM = 1000
"""Exchanges from which a report's changes are worth a process of their own (fewer are
replayed in less time than a fork saves)."""


def redacted_from(redacted: Report, original: Report) -> None:
    """Tell that ``redacted`` is ``original`` with its secrets redacted
    (:func:`corsflow.redact.redact_report`). Its changes are then ``original``'s, replayed on
    the capture as it was (two URLs that differ only in a token must stay two URLs to the
    replay's preflight cache), with every string in them redacted in turn."""
    _derived(redacted, original, redact=True)


def same_changes(view: Report, report: Report) -> None:
    """Tell that ``view`` shows ``report``'s exchanges (its findings narrowed, say): its
    changes are ``report``'s, worked out when first asked for."""
    _derived(view, report, redact=False)


def _derived(report: Report, source: Report, *, redact: bool) -> None:
    _DERIVED.append((report, source, redact))
    del _DERIVED[:-2]  # only until its changes are asked for: reports are large


def _source(report: Report) -> tuple[Report, bool] | None:
    return next(((source, redact) for r, source, redact in _DERIVED if r is report), None)


def _root(report: Report) -> Report:
    """The report whose changes ``report``'s come from (itself, when it is no other's)."""
    while (source := _source(report)) is not None:
        report = source[0]
    return report


def start_changes(report: Report) -> None:
    """Start computing ``report``'s changes in a child process (:mod:`corsflow.aside`)
    where that pays, for :func:`changes_of` to take up: a renderer that writes the
    exchanges before the changes (JSON) then does both at once. The changes are the same.
    Of a redacted report, or a view of one, its original's are computed
    (:func:`redacted_from`, :func:`same_changes`)."""
    report = _root(report)
    if len(report.exchanges) < ASIDE_FROM or not worth_forking() \
            or any(seen is report for seen, _ in (*_MEMO, *_ASIDE)):
        return
    exchanges, engine = report.exchanges, report.engine
    _ASIDE.append((report, Aside(lambda: compute_changes(exchanges, engine))))
    while len(_ASIDE) > 1:  # one at a time: a second would only wait for a core
        _ASIDE.pop(0)[1].cancel()


def prime_changes(report: Report, verdicts: Sequence[ExchangeVerdict]) -> None:
    """Compute ``report``'s changes from ``verdicts`` (a report written as its verdicts
    settled holds none of them itself)."""
    _MEMO.append((report, compute_changes(tuple(verdicts), report.engine)))
    del _MEMO[:-4]


def changes_of(report: Report) -> tuple[Change, ...]:
    """The changes for a report (computed once per report: several formats may render it)."""
    for seen, changes in _MEMO:
        if seen is report:
            return changes
    source = _source(report)
    for i, (seen, aside) in enumerate(_ASIDE):
        if seen is report:
            del _ASIDE[i]
            changes = aside.result()
            break
    else:
        if source is None:
            changes = compute_changes(report.exchanges, report.engine)
        elif source[1]:
            redactor = Redactor()
            changes = tuple(redactor.record(c) for c in changes_of(source[0]))
        else:
            changes = changes_of(source[0])
    _MEMO.append((report, changes))
    del _MEMO[:-4]
    return changes


def remember(report: Report, changes: tuple[Change, ...]) -> None:
    """Give a derived report (a filtered view of another) the changes of the whole session:
    a replay of part of a session would prove less."""
    _MEMO.append((report, changes))
    del _MEMO[:-4]
