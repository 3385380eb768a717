"""Findings of one kind merged into few, so a report stays readable and memory stays flat.

A failure repeated on 300 identical requests is one finding that counts 300. Requests that
differ in what the message names (each from another origin, say) are findings of their own,
up to a bound per place (code, severity, endpoint template) and a bound overall; past them,
the rest of a place fold into one finding that counts them, so a live proxy driven with
100,000 distinct origins holds a few thousand findings, not 100,000.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from dataclasses import dataclass, field

from ..engine.events import Finding, Severity

KEEP_IDS = 50
"""Exchange ids listed per finding; ``count`` says how many it stands for."""
MESSAGES_PER_PLACE = 20
"""Distinct messages kept as findings of their own per (code, severity, endpoint)."""
MAX_FINDINGS = 5000
"""Distinct findings kept in all before every new one folds."""
MAX_FOLDS = 1000
"""Places with folded findings; past it, new places fold per (code, severity)."""
_KEEP_ORIGINS = 1000
"""Distinct origins counted per fold ("1000+" past it)."""

_Place = tuple[str, Severity, str | None]


@dataclass(slots=True)
class _Fold:
    """Findings of one place past the bounds: counted, with the first one as the example."""

    first: Finding
    count: int = 0
    ids: list[str] = field(default_factory=list)
    origins: set[str] = field(default_factory=set)


@dataclass(slots=True)
class FindingMerger:
    """Add findings one at a time; :meth:`findings` gives the merged ones at any moment."""

    keep_ids: int = KEEP_IDS
    per_place: int = MESSAGES_PER_PLACE
    max_findings: int = MAX_FINDINGS
    max_folds: int = MAX_FOLDS
    _exact: dict[tuple[str, Severity, str | None, str], Finding] = field(default_factory=dict)
    _messages: Counter[_Place] = field(default_factory=Counter)
    _folds: dict[_Place, _Fold] = field(default_factory=dict)

    def add(self, f: Finding) -> None:
        key = (f.code, f.severity, f.url, f.message)
        first = self._exact.get(key)
        if first is not None:
            self._exact[key] = _merged(first, f, self.keep_ids)
            return
        place = (f.code, f.severity, f.url)
        if self._messages[place] < self.per_place and len(self._exact) < self.max_findings:
            self._messages[place] += 1
            self._exact[key] = f
            return
        if place not in self._folds and len(self._folds) >= self.max_folds:
            place = (f.code, f.severity, None)
        fold = self._folds.get(place)
        if fold is None:
            fold = self._folds[place] = _Fold(f)
        fold.count += f.count or len(f.exchange_ids)
        if len(fold.ids) < self.keep_ids:
            fold.ids.extend(f.exchange_ids[: self.keep_ids - len(fold.ids)])
        if f.origin is not None and len(fold.origins) < _KEEP_ORIGINS:
            fold.origins.add(f.origin)

    def findings(self) -> list[Finding]:
        return [*self._exact.values(), *(_folded(place, fold) for place, fold in
                                         self._folds.items())]


def _merged(first: Finding, f: Finding, keep_ids: int) -> Finding:
    ids = first.exchange_ids
    if len(ids) < keep_ids:
        ids = ids + tuple(i for i in f.exchange_ids if i not in ids)[: keep_ids - len(ids)]
    return dataclasses.replace(
        first, exchange_ids=ids,
        count=(first.count or len(first.exchange_ids)) + (f.count or len(f.exchange_ids)))


def _folded(place: _Place, fold: _Fold) -> Finding:
    code, _, url = place
    first = fold.first
    n = len(fold.origins)
    origins = (f" from {n}{'+' if n >= _KEEP_ORIGINS else ''} origin(s)" if n > 1
               else f" from {first.origin}" if n == 1 else "")
    where = f" at {url}" if url else " at other endpoints"
    message = (f"{fold.count} more {code} request(s){where}{origins}, each with details of "
               f"its own (the first: {first.message})")
    hint = f"as for the first of them: {first.hint}" if first.hint else None
    return dataclasses.replace(
        first, message=message, hint=hint, exchange_ids=tuple(fold.ids), count=fold.count,
        origin=first.origin if n == 1 else None, url=url, saved=None)
