"""Exchanges in time order, whatever order a capture file lists them in, in bounded memory.

The engine takes exchanges in the order the browser issued them (it tolerates a reorder
window of a couple of seconds). Files do not always list them so: a HAR writer may list
entries by completion time, or not sorted at all; pieces of one capture may be given in any
order. Two ways to put one stream in order, both bounded:

- :func:`nearly_sorted`: a look-ahead heap of ``capacity`` exchanges and ``horizon``
  seconds. A stream whose disorder stays within both (almost every capture) comes out
  sorted in one pass; one that goes further raises :class:`OutOfOrder` before yielding
  anything out of order, and the caller makes a second pass with the other way.
- :func:`spilled_sort`: an external merge sort. Runs of ``run_size`` exchanges are sorted
  and pickled to temporary files, then merged; memory holds one run while reading and one
  exchange per run while merging.

Ties keep the file's own order, so the result is a function of the file's content alone.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable, Iterator
from typing import IO

from .model import Exchange

LOOK_AHEAD = 4096
"""Exchanges :func:`nearly_sorted` holds: a capture listed by completion time stays well
within this (it needs as many as start while one long request is in flight)."""

HORIZON = 300.0
"""Seconds after which :func:`nearly_sorted` lets an exchange go even with room left: a
capture spread over hours starts flowing at once instead of after the look-ahead fills (what
lets the analysis run beside a reader in another process). A response that takes longer is
a stream, not a request (proxies and load balancers end silent ones after a minute or so);
listed when it completes (a pcap gives exchanges so), it makes the caller read the file
again, sorted: the same report, later."""

RUN_SIZE = 20_000
"""Exchanges in one sorted run of :func:`spilled_sort`."""


class OutOfOrder(Exception):
    """A stream's disorder exceeded the look-ahead: it needs :func:`spilled_sort`."""

    def __init__(self, path: str, where: str) -> None:
        self.path = path
        self.where = where
        super().__init__(f"{path}, {where}: listed further out of time order than the "
                         "look-ahead holds")

    def __reduce__(self) -> tuple[type[OutOfOrder], tuple[str, str]]:
        # Raised in a reading child, handled in its parent (corsflow.ingest.ahead).
        return type(self), (self.path, self.where)


class LowWater:
    """What a reader knows of the exchanges it has still to give: none started before
    ``low`` (on the exchanges' clock; ``-inf`` while it knows nothing). A pcap's reader
    knows it from the requests still in flight (:mod:`corsflow.ingest.pcap`): with it,
    :func:`nearly_sorted` lets each exchange go as soon as nothing can come before it, so a
    capture shorter than the horizon flows at once instead of after the look-ahead fills."""

    __slots__ = ("low",)

    def __init__(self) -> None:
        self.low = float("-inf")


NOTICED = 2.0
"""Seconds of disorder worth telling (the engine's own reorder window absorbs less)."""


def nearly_sorted(stream: Iterable[Exchange], path: str, capacity: int = LOOK_AHEAD,
                  noticed: Callable[[str], None] | None = None,
                  horizon: float = HORIZON,
                  low_water: LowWater | None = None) -> Iterator[Exchange]:
    """The stream in (start time, file order), if its disorder stays within ``capacity``
    exchanges and ``horizon`` seconds; raises :class:`OutOfOrder` at the first exchange
    that would come too late. ``noticed`` is called once with the path if an exchange came
    more than ``NOTICED`` seconds after a later one. ``low_water``: the stream's reader
    tells what can still come (:class:`LowWater`); what started before it goes at once,
    and the horizon is not needed."""
    heap: list[tuple[float, int, Exchange]] = []
    released = newest = float("-inf")
    push, pop = heapq.heappush, heapq.heappop
    for seq, exchange in enumerate(stream):
        started = exchange.started
        if started < newest - NOTICED and noticed is not None:
            noticed(path)
            noticed = None
        newest = max(newest, started)
        if started < released:
            raise OutOfOrder(path, exchange.source.where)
        push(heap, (started, seq, exchange))
        if len(heap) > capacity:
            released, _, oldest = pop(heap)
            yield oldest
        # The reader's own account, where it gives one, is exact: the horizon guesses.
        edge = newest - horizon if low_water is None else low_water.low
        while heap[0][0] < edge:
            released, _, oldest = pop(heap)
            yield oldest
            if not heap:
                break
    while heap:
        yield pop(heap)[2]


def _write_run(items: list[tuple[float, int, Exchange]]) -> IO[bytes]:
    # Imported here: only a file listed far out of time order spills (and they are slow to
    # import for every run of the command line).
    import pickle
    import tempfile

    items.sort(key=lambda item: item[:2])
    # Closed by _read_run once merged, or by spilled_sort's cleanup: not a with-block.
    run = tempfile.TemporaryFile(prefix="corsflow-run-")  # noqa: SIM115
    dump = pickle.Pickler(run, protocol=pickle.HIGHEST_PROTOCOL).dump
    for item in items:
        dump(item)
    run.seek(0)
    return run


def _read_run(run: IO[bytes]) -> Iterator[tuple[float, int, Exchange]]:
    import pickle

    with run:
        unpickler = pickle.Unpickler(run)
        while True:
            try:
                yield unpickler.load()
            except EOFError:
                return


def spilled_sort(stream: Iterable[Exchange], run_size: int = RUN_SIZE) -> Iterator[Exchange]:
    """The stream in (start time, file order), however unordered: an external merge sort
    (a stream that fits one run is sorted in memory and nothing is written)."""
    runs: list[IO[bytes]] = []
    items: list[tuple[float, int, Exchange]] = []
    try:
        for seq, exchange in enumerate(stream):
            items.append((exchange.started, seq, exchange))
            if len(items) >= run_size:
                runs.append(_write_run(items))
                items = []
        if not runs:
            items.sort(key=lambda item: item[:2])
            for item in items:
                yield item[2]
            return
        if items:
            runs.append(_write_run(items))
            items = []
        for item in heapq.merge(*map(_read_run, runs), key=lambda item: item[:2]):
            yield item[2]
    finally:
        for run in runs:
            run.close()
