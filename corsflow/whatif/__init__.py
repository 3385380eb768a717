"""What-if replay: the session again, with the servers' answers changed.

``corsflow whatif CAPTURE --set 'URL-PATTERN: Header: value'`` or ``--policy proposed.json``
(the JSON of ``corsflow policy``) replays the page's requests through the engine's own
preflight cache and checks with the changed answers, and prints preflights, cache hits,
blocked requests and preflight time before and after: in all, per origin, per server and
per change. With no change it reproduces the analysis.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .replay import Outcome, PageRequest, Replay, Totals, page_requests, replay
from .rules import Answer, ChangeSet, HeaderEdit, Rule, parse_set

if TYPE_CHECKING:
    from ..analysis import Report

__all__ = ["ChangeSet", "HeaderEdit", "Outcome", "PageRequest", "Replay", "Rule", "Totals",
           "WhatIf", "page_requests", "parse_set", "replay", "what_if"]


@dataclass(frozen=True, slots=True)
class WhatIf:
    """The replay with every change applied, and one replay per change on its own."""

    report: Report
    combined: Replay
    each: tuple[Replay, ...]


def what_if(report: Report, changes: Sequence[ChangeSet]) -> WhatIf:
    """Replay ``report``'s session with all of ``changes`` together and each alone.

    Every server is replayed, touched or not, so with no change the after column is the
    replay's own account of the capture (it equals the analysis')."""
    requests = page_requests(report.exchanges)
    servers = {r.server for r in requests}
    rules = tuple(r for c in changes for r in c.rules)
    answers: dict[str, Answer] = {}
    for c in changes:
        answers.update(c.answers or {})
    together = ChangeSet(rules, answers or None,
                         " + ".join(c.label for c in changes) if changes else "no change")
    combined = replay(report, together, servers=servers, requests=requests)
    each = tuple(replay(report, c, requests=requests) for c in changes) if len(changes) > 1 \
        else ()
    return WhatIf(report, combined, each)
