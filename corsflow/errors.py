"""Errors and the record of what ingest had to skip.

A whole input that cannot be read raises :class:`IngestError` (the CLI prints its one line
and exits 2). A damaged record inside an otherwise readable input is not an error: it is
counted in :class:`Diagnostics` and skipped, and the rest is still analysed.
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from dataclasses import dataclass, field

log = logging.getLogger(__name__)


class CorsflowError(Exception):
    """Base of every error corsflow raises on purpose."""


class IngestError(CorsflowError):
    """An input that cannot be read at all. ``str()`` is one line: what, and where."""

    def __init__(self, path: str, message: str, where: str | None = None) -> None:
        self.path = path
        self.where = where
        self.message = message
        location = f"{path}, {where}" if where else path
        super().__init__(f"{location}: {message}")

    def __reduce__(self) -> tuple[type[IngestError], tuple[str, str, str | None]]:
        # Sent by a reading child process, raised again in its parent (corsflow.ingest.ahead).
        return type(self), (self.path, self.message, self.where)


def where_raised(exc: BaseException) -> str | None:
    """``corsflow/x.py:12``: the innermost corsflow frame ``exc`` came from (for the one line
    a bug gets); for an error a reading child process sent, that process's frame."""
    reader: str | None = getattr(exc, "raised_in_reader", None)
    if reader is not None:
        return reader  # the traceback here ends where it was raised again
    where = None
    tb = exc.__traceback__
    while tb is not None:
        filename = tb.tb_frame.f_code.co_filename
        if os.sep + "corsflow" + os.sep in filename:
            package = filename.rsplit(os.sep + "corsflow" + os.sep, 1)[1]
            where = f"corsflow/{package.replace(os.sep, '/')}:{tb.tb_lineno}"
        tb = tb.tb_next
    return where


class UsageError(CorsflowError):
    """The caller asked for something that does not exist (an unknown id, engine...)."""


@dataclass(frozen=True, slots=True)
class Skipped:
    """One record that was skipped or only partly read."""

    path: str
    where: str
    """``"entry 12"``, ``"packet 345"``, ``"flow 3"``."""
    reason: str
    """Short and stable, so equal reasons can be counted together."""


@dataclass(slots=True)
class Diagnostics:
    """Collects what ingest skipped and what it noticed, for the report's summary.

    It keeps the first ``keep`` records in full and counts the rest by reason, so a capture
    with a million bad packets does not make a million objects.
    """

    keep: int = 200
    skipped: list[Skipped] = field(default_factory=list)
    skipped_by_reason: Counter[str] = field(default_factory=Counter)
    notes: list[str] = field(default_factory=list)
    """One-off observations worth telling the user (``"42 TLS connections could not be
    read: export a HAR or use mitmproxy for HTTPS"``)."""

    def skip(self, path: str, where: str, reason: str) -> None:
        self.skipped_by_reason[reason] += 1
        if len(self.skipped) < self.keep:
            self.skipped.append(Skipped(path, where, reason))
            log.warning("%s, %s: skipped: %s", path, where, reason)

    def note(self, message: str) -> None:
        if message not in self.notes:
            self.notes.append(message)
            log.info("%s", message)

    @property
    def skipped_count(self) -> int:
        return sum(self.skipped_by_reason.values())
