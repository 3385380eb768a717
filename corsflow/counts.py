"""Counts over every settled verdict, kept as they settle: what the report's summary needs
when the verdicts themselves are written out and not kept."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from .engine.events import ExchangeVerdict


@dataclass(slots=True)
class ExchangeCounts:
    exchanges: int = 0
    roles: Counter[str] = field(default_factory=Counter)
    verdicts: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    cache: Counter[str] = field(default_factory=Counter)
    preflight_ms: float = 0.0
    request_ms: float = 0.0
    redundant: int = 0
    first_started: float | None = None

    def add(self, v: ExchangeVerdict) -> None:
        self.exchanges += 1
        self.roles[v.role] += 1
        if v.verdict is not None:
            self.verdicts[v.verdict] += 1
        if v.cors_error:
            self.errors[v.cors_error] += 1
        if v.cache:
            self.cache[v.cache] += 1
        timings = v.exchange.timings
        total = timings.total if timings is not None else None
        if total is not None and total >= 0:
            self.request_ms += total
            if v.role == "preflight":
                self.preflight_ms += total
        if v.redundant:
            self.redundant += 1
        started = v.exchange.started
        if self.first_started is None or started < self.first_started:
            self.first_started = started
