"""What to change: root causes grouped by the server change that fixes them, each change's
effect computed by replaying the session (:mod:`corsflow.whatif`), not estimated.

Every report format opens with :func:`changes_of`; the rendering of changes lives in
:mod:`corsflow.report.changes`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .derive import Change, compute_changes
from .safe import NULL_ORIGIN_ADVICE, browser_origin

if TYPE_CHECKING:
    from collections.abc import Sequence

    from ..analysis import Report
    from ..engine.events import ExchangeVerdict

__all__ = ["NULL_ORIGIN_ADVICE", "Change", "browser_origin", "changes_of", "compute_changes",
           "remember"]

_MEMO: list[tuple[Report, tuple[Change, ...]]] = []


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
    changes = compute_changes(report.exchanges, report.engine)
    _MEMO.append((report, changes))
    del _MEMO[:-4]
    return changes


def remember(report: Report, changes: tuple[Change, ...]) -> None:
    """Give a derived report (a filtered view of another) the changes of the whole session:
    a replay of part of a session would prove less."""
    _MEMO.append((report, changes))
    del _MEMO[:-4]
