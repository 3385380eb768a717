"""Reports written as the verdicts settle: the JSON and CSV reports of any input in memory
bounded by what the engine keeps live, not by the input.

The records go to a spool file on disk as they settle (in time order); at the end the report
is assembled around them (the JSON head needs the sources' counts, known only then), so
the output is exactly the report an in-memory analysis writes.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator, Sequence
from typing import IO

from .analysis import Progress, Report, analyze_paths
from .engine.events import ExchangeVerdict
from .engine.profiles import EngineProfile

STREAMED_FORMATS = ("json", "csv")


class Spool:
    """Serialised EXCHANGE records (JSON lines, or CSV rows) in a temporary file."""

    def __init__(self, fmt: str, engine: str = "chromium") -> None:
        self.format = fmt
        self.cross_origin: list[ExchangeVerdict] = []
        """The CORS verdicts (not the rest): what the replayed changes list is computed from,
        so a streamed JSON report opens with the same changes as one held in memory."""
        import tempfile  # only large inputs get here: not imported for every command

        # Lives until the report is written out (closed by close()): not a with-block.
        self.file: IO[bytes] = tempfile.TemporaryFile(prefix="corsflow-report-")  # noqa: SIM115
        self._pending: list[bytes] = []
        if fmt == "json":
            import orjson

            from .report.json import exchange_to_dict

            dumps = orjson.dumps
            self._line: Callable[[ExchangeVerdict], bytes] = (
                lambda v: dumps(exchange_to_dict(v, engine=engine)) + b"\n")
        else:
            import csv

            from .report.text import csv_row

            text = io.StringIO()
            writerow = csv.writer(text, lineterminator="\n").writerow

            def line(v: ExchangeVerdict) -> bytes:
                writerow(csv_row(v))
                out = text.getvalue().encode()
                text.seek(0)
                text.truncate()
                return out

            self._line = line

    def write(self, verdict: ExchangeVerdict) -> None:
        if self.format == "json" and verdict.role != "other":
            self.cross_origin.append(verdict)
        pending = self._pending
        pending.append(self._line(verdict))
        if len(pending) >= 512:
            self._drain()

    def _drain(self) -> None:
        self.file.write(b"".join(self._pending))
        self._pending.clear()

    def reset(self) -> None:
        self._pending.clear()
        self.file.seek(0)
        self.file.truncate()

    def lines(self) -> Iterator[bytes]:
        self._drain()
        self.file.flush()
        self.file.seek(0)
        for line in self.file:
            yield line.rstrip(b"\n") if self.format == "json" else line

    def close(self) -> None:
        self.file.close()


def streamed_report(paths: Sequence[str], fmt: str, *,
                    engine: str | EngineProfile = "chromium", one_session: bool = False,
                    progress: Progress | None = None, read_ahead: bool = False
                    ) -> tuple[Report, Iterator[bytes]]:
    """Analyse ``paths`` with the verdicts spooled as they settle; returns the report
    (without its verdicts: its ``counts`` stand for them) and the ``fmt`` report's bytes
    (json or csv), to be written out once (the spool is removed when they are consumed).
    ``read_ahead``: as for :func:`~corsflow.analysis.analyze_paths`."""
    spool = Spool(fmt, engine if isinstance(engine, str) else engine.name)
    try:
        report = analyze_paths(paths, engine=engine, one_session=one_session,
                               progress=progress, sink=spool, read_ahead=read_ahead)
    except BaseException:
        spool.close()
        raise
    return report, _chunks(report, spool)


def _chunks(report: Report, spool: Spool) -> Iterator[bytes]:
    try:
        if spool.format == "json":
            from .changes import prime_changes
            from .report.json import iter_json

            prime_changes(report, spool.cross_origin)
            yield from iter_json(report, spool.lines())
            return
        import csv

        from .report.text import CSV_FIELDS

        text = io.StringIO()
        csv.writer(text, lineterminator="\n").writerow(CSV_FIELDS)
        yield text.getvalue().encode()
        yield from spool.lines()
    finally:
        spool.close()
