"""A capture file's exchanges as the analysis takes them: read, normalised, in time order.

Light to import on purpose (the readers, the time order, nothing of the engine or the
findings): the command line starts the process that reads a large capture
(:mod:`corsflow.ingest.ahead`) before it imports the analysis, so that the two overlap
instead of the reading waiting for the imports (:func:`start_reading`).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from functools import partial

from .engine.normalize import normalize
from .errors import CorsflowError, Diagnostics
from .ingest import detect_format, reader_for
from .ingest.ahead import Stream, Told, start, worth_reading_ahead
from .ingest.lean import RESPONSE_FIELDS_READ, response_fields_read
from .model import Exchange, SourceFormat
from .timeorder import LowWater, nearly_sorted, spilled_sort

__all__ = ["RESPONSE_FIELDS_READ", "lean_reading", "ordered", "response_fields_read",
           "start_reading"]


def ordered(path: str, fmt: SourceFormat, diagnostics: Diagnostics, noticed: Told, *,
            unordered: bool, lean: bool = False) -> Iterator[Exchange]:
    """The file's exchanges, normalised, in time order: sorted on disk when the file is
    known to be ``unordered``, else through the look-ahead (which raises
    :class:`~corsflow.timeorder.OutOfOrder` when the file goes further out of order).
    ``lean``: only the response fields the analysis reads (for a reading process)."""
    low_water = None
    if fmt in ("pcap", "pcapng") and not unordered:
        # Completion order: its reader tells how early what is still to come started.
        from .ingest.pcap import read_pcap

        low_water = LowWater()
        exchanges = read_pcap(path, diagnostics, low_water, lean=lean)
        lean = False  # left out by the reader: the response is built once
    elif lean and fmt == "har":
        from .ingest.har import read_har

        exchanges = read_har(path, diagnostics, lean=True)
        lean = False
    else:
        exchanges = reader_for(fmt)(path, diagnostics)
    if lean:  # first: the response fields left out need no normalising
        exchanges = map(response_fields_read, exchanges)
    raw = map(normalize, exchanges)
    if unordered:
        return spilled_sort(raw)
    return nearly_sorted(raw, path, noticed=noticed, low_water=low_water)


def lean_reading(path: str, fmt: SourceFormat, unordered: bool) -> tuple[Stream, object]:
    """What a reading process runs for ``path``, and the key a started one is known by."""
    read: Stream = partial(ordered, path, fmt, unordered=unordered, lean=True)
    return read, ("lean", fmt, unordered)


def start_reading(paths: Sequence[str]) -> None:
    """Start reading ``paths`` in a child process now, where the analysis would read them
    ahead anyway (one file, large enough): :func:`corsflow.analysis.analyze_paths` called
    with ``read_ahead=True`` takes the reading up. Several files are scanned in this process
    first (their order and sessions), so each is read ahead only when the analysis opens
    it."""
    if len(paths) != 1 or not worth_reading_ahead(paths[0]):
        return
    path = paths[0]
    try:
        fmt = detect_format(path)
    except (CorsflowError, OSError):
        return  # the analysis names the problem
    read, key = lean_reading(path, fmt, False)
    start(path, read, key, Diagnostics().keep)
