"""What the live addon shows of a verdict on its flow: a comment line, and whether the flow
is marked blocked.

Made where the verdict is: in the analysis process, which sends the proxy these few strings
with each batch instead of verdicts to decode (the proxy decodes a whole verdict only for a
report or an explanation), or in the proxy when it analyses itself.
"""

from __future__ import annotations

from dataclasses import dataclass

from .engine.events import ExchangeVerdict
from .frozen import quick_init
from .report.inert import visible

COMMENT_PREFIX = "corsflow:"
"""Starts every line corsflow writes into a flow's comment (and only those)."""


@quick_init
@dataclass(frozen=True, slots=True)
class Mark:
    id: str
    """The exchange's id (``f12``): the flow it is shown on."""
    target: str
    """``METHOD URL [id]``: what a log line about the exchange names."""
    line: str | None
    """The comment line; None for an exchange that is not cross-origin (nothing to say)."""
    blocked: bool
    """The browser blocked it: the flow gets the blocked mark."""


def mark_of(v: ExchangeVerdict) -> Mark:
    ex = v.exchange
    return Mark(ex.id, f"{ex.method} {ex.url} [{ex.id}]",
                None if v.role == "other" else verdict_line(v), v.verdict == "blocked")


def verdict_line(v: ExchangeVerdict) -> str:
    """``corsflow: actual, blocked — ... (...), preflight e3, cache miss``."""
    parts = [f"{v.role}"]
    state: str = v.verdict or "no verdict"
    if v.verdict == "blocked" and v.cors_error:
        state += f" — {v.cors_error}"
        if v.failed_parameter:
            state += f" ({v.failed_parameter})"
    elif v.verdict == "unknown" and v.unknown_reason:
        state += f" ({v.unknown_reason})"
    parts.append(state)
    if v.preflight_id:
        parts.append(f"preflight {v.preflight_id}")
    if v.cache:
        parts.append(f"cache {v.cache}")
    if v.redundant:
        parts.append("redundant" + (f" ({v.redundant_cause})" if v.redundant_cause else ""))
    return visible(f"{COMMENT_PREFIX} " + ", ".join(parts))
