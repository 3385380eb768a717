"""One analysis: exchanges in, a :class:`Report` out. The one library every surface uses.

The CLI, the mitmproxy addon and the notebook API are thin shells over this module:
:class:`Analysis` is fed exchanges one at a time (from files or live flows) and can produce a
:class:`Report` at any moment; :func:`analyze_paths` runs it over capture files.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable

from .engine.events import ExchangeVerdict, Finding
from .errors import Diagnostics, Skipped
from .model import Exchange, SourceFormat


@dataclass(frozen=True, slots=True)
class SourceInfo:
    """One input of the analysis."""

    path: str
    format: SourceFormat
    exchanges: int = 0
    skipped: int = 0


@dataclass(frozen=True, slots=True)
class Report:
    """Everything the engine concluded about a set of captures."""

    engine: str
    sources: tuple[SourceInfo, ...]
    exchanges: tuple[ExchangeVerdict, ...]
    """In capture order (time of the request)."""
    findings: tuple[Finding, ...]
    """Most severe first."""
    skipped: tuple[Skipped, ...] = ()
    skipped_by_reason: tuple[tuple[str, int], ...] = ()
    notes: tuple[str, ...] = ()
    _index: dict[str, ExchangeVerdict] = field(default_factory=dict, repr=False, compare=False)

    def get(self, exchange_id: str) -> ExchangeVerdict | None:
        """The verdict of one exchange by its id."""
        if not self._index and self.exchanges:
            self._index.update((v.exchange.id, v) for v in self.exchanges)
        return self._index.get(exchange_id)


@dataclass(frozen=True, slots=True)
class Fed:
    """What feeding one exchange settled: verdicts whose evidence is now complete, and the
    findings they raise at once (CORS failures, redundant preflights, Max-Age problems).
    Aggregate findings (per-URL preflights, avoidable preflights) come with the report."""

    verdicts: tuple[ExchangeVerdict, ...] = ()
    findings: tuple[Finding, ...] = ()
