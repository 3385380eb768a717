"""The notebook-facing API: ``corsflow.load(...)`` returns a :class:`CorsAnalysis`.

It wraps a :class:`~corsflow.analysis.Report` with pandas frames (built on first use and
kept), the charts, one-exchange explanations, and a short HTML card for notebook display::

    import corsflow
    cors = corsflow.load("captures/*.har")
    cors.by_endpoint.head()
    cors.preflight_overhead()
    print(cors.explain("e12"))
"""

from __future__ import annotations

import glob
import os
from collections.abc import Iterable
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .analysis import Report
from .errors import UsageError

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from .fleet import FleetReport
    from .report.tally import Tally

PathLike = str | os.PathLike[str]
_GLOB_CHARS = frozenset("*?[")


def _expand(paths: PathLike | Iterable[PathLike]) -> list[str]:
    """Paths as given, with glob patterns expanded (sorted); a pattern matching nothing and a
    missing file are errors, so a typo never yields an empty analysis."""
    items = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
    out: list[str] = []
    for item in items:
        text = os.fspath(item)
        if not os.path.exists(text) and _GLOB_CHARS & set(text):
            matches = sorted(glob.glob(os.path.expanduser(text), recursive=True))
            matches = [m for m in matches if os.path.isfile(m)]
            if not matches:
                raise UsageError(f"{text}: the pattern matches no file")
            out += matches
        elif os.path.isdir(text):
            raise UsageError(
                f"{text}: is a directory; pass files or a pattern such as {text}/*.har"
            )
        else:
            out.append(text)
    if not out:
        raise UsageError("no capture files given")
    return out


def _figures_display_in_notebooks() -> None:
    """Let IPython show a bare :class:`~matplotlib.figure.Figure` as an image.

    The charts are built without pyplot (no global state, nothing to close), so IPython's
    inline backend, which registers its figure formatter when pyplot loads, may not know
    them yet; this registers the same PNG formatter ``%matplotlib inline`` would, once.
    """
    try:
        from IPython.core.getipython import get_ipython
    except ImportError:
        return
    shell = get_ipython()  # type: ignore[no-untyped-call]
    if shell is None:
        return
    from matplotlib.figure import Figure

    png = shell.display_formatter.formatters["image/png"]
    try:
        png.lookup_by_type(Figure)
    except KeyError:
        from IPython.core.pylabtools import select_figure_formats

        select_figure_formats(shell, {"png"})  # type: ignore[no-untyped-call]


def load(paths: PathLike | Iterable[PathLike], engine: str | None = None, *,
         one_session: bool = False, redact: bool = True) -> CorsAnalysis:
    """Analyse capture files (a path, several, or glob patterns such as ``"runs/**/*.har"``)
    as one browser session, merged by time (their order does not matter), unless they
    clearly are separate sessions; ``one_session=True`` forces one.

    ``engine``: the browser to model (``"chromium"``, ``"firefox"``, ``"webkit"``); by
    default the one the capture's User-Agent or HAR creator names, as the command line does
    (the report's first note says which, and why).

    Notebooks are saved with their outputs and shared: cookie, credential and URL token
    values are replaced with ``REDACTED`` unless ``redact=False``."""
    from .analysis import analyze_paths

    files = _expand(paths)
    report = analyze_paths(files, engine=engine, one_session=one_session)
    if redact:
        from .changes import redacted_from
        from .redact import redact_report

        redacted = redact_report(report)
        redacted_from(redacted, report)
        report = redacted
    return CorsAnalysis(report)


def load_fleet(paths: PathLike | Iterable[PathLike], engine: str | None = None, *,
               jobs: int | None = None, client: Any = None) -> FleetAnalysis:
    """Analyse many captures, each its own browser session, in parallel: on ``jobs`` local
    processes (default: every core), or on a Dask cluster through ``client`` (a
    ``dask.distributed.Client``). Directories are searched for capture files.
    ``engine``: one browser for all; by default each session is modelled as the browser its
    capture shows.

    For a fleet too big for one machine's memory, :meth:`FleetAnalysis.dask_exchanges` and
    the ``lazy`` frames keep the rows on the cluster, partitioned by session."""
    from .fleet import analyze_fleet

    files = expand_fleet(paths)
    return FleetAnalysis(analyze_fleet(files, engine, jobs=jobs, client=client), files, client)


CAPTURE_SUFFIXES = (".har", ".json", ".pcap", ".pcapng", ".cap", ".flows", ".mitm", ".dump",
                    ".zhar", ".gz", ".bz2", ".xz", ".zst", ".jsonp")
"""What a directory search takes for a capture file (the format is still read from content)."""


def expand_fleet(paths: PathLike | Iterable[PathLike]) -> list[str]:
    """Files, patterns and directories (searched recursively, hidden entries skipped)."""
    items = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
    out: list[str] = []
    for item in items:
        text = os.fspath(item)
        if os.path.isdir(text):
            found = []
            for root, dirs, files in os.walk(text):
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                found += [os.path.join(root, f) for f in sorted(files)
                          if not f.startswith(".") and f.lower().endswith(CAPTURE_SUFFIXES)]
            if not found:
                raise UsageError(f"{text}: no capture files in this directory")
            out += found
        else:
            out += _expand(text)
    if not out:
        raise UsageError("no capture files given")
    return out


class CorsAnalysis:
    """A report with the views a notebook wants; frames are computed once, on first use."""

    def __init__(self, report: Report) -> None:
        self.report = report

    def __repr__(self) -> str:
        r = self.report
        return (
            f"<CorsAnalysis engine={r.engine} sources={len(r.sources)} "
            f"exchanges={len(r.exchanges)} findings={len(r.findings)}>"
        )

    def _repr_html_(self) -> str:
        from .report.card import report_card_html

        return report_card_html(self.report)

    @cached_property
    def _tally(self) -> Tally:
        from .report.tally import tally

        return tally(self.report)

    # Frames -------------------------------------------------------------------------
    @cached_property
    def exchanges(self) -> pd.DataFrame:
        """One row per exchange (see :func:`corsflow.report.frames.exchanges_frame`)."""
        from .report.frames import exchanges_frame

        return exchanges_frame(self.report, t=self._tally)

    @cached_property
    def preflights(self) -> pd.DataFrame:
        """One row per preflight, with the requests it stood for and its Max-Age."""
        from .report.frames import preflights_frame

        return preflights_frame(self.report, t=self._tally)

    @cached_property
    def findings(self) -> pd.DataFrame:
        from .report.frames import findings_frame

        return findings_frame(self.report)

    @cached_property
    def changes(self) -> pd.DataFrame:
        """What to change, per server, ranked by the effect a replay of the session shows."""
        from .report.changes import changes_frame

        return changes_frame(self.report)

    def whatif(self, *sets: str, policy: str | None = None) -> Any:
        """Replay the session with ``--set``-style changes (or a policy JSON file): a
        :class:`corsflow.whatif.WhatIf` with the before/after counts."""
        from .whatif import ChangeSet, parse_set, what_if
        from .whatif.load import load_policy

        changes = [ChangeSet((parse_set(s),), label=s) for s in sets]
        if policy is not None:
            changes.insert(0, load_policy(policy))
        return what_if(self.report, changes)

    @cached_property
    def by_origin(self) -> pd.DataFrame:
        from .report.frames import by_origin

        return by_origin(self.report, t=self._tally)

    @cached_property
    def by_endpoint(self) -> pd.DataFrame:
        from .report.frames import by_endpoint

        return by_endpoint(self.report, t=self._tally)

    # Charts -------------------------------------------------------------------------
    def timeline(self, origin: str | None = None, *, ax: Axes | None = None) -> Figure:
        from .report.plots import timeline

        _figures_display_in_notebooks()
        return timeline(self.report, origin, ax=ax)

    def preflight_overhead(self, *, ax: Axes | None = None, top: int = 15) -> Figure:
        from .report.plots import preflight_overhead

        _figures_display_in_notebooks()
        return preflight_overhead(self.report, ax=ax, top=top)

    def verdicts_by_origin(self, *, ax: Axes | None = None) -> Figure:
        from .report.plots import verdicts_by_origin

        _figures_display_in_notebooks()
        return verdicts_by_origin(self.report, ax=ax)

    # Words --------------------------------------------------------------------------
    def explain(self, exchange_id: str) -> str:
        """One exchange in full: role, verdict, pairing, Max-Age, decision steps, fixes."""
        from .report.explain import explain

        v = self.report.get(exchange_id)
        if v is None:
            known = (
                ", ".join(x.exchange.id for x in self.report.exchanges[:3]) or "none: it is empty"
            )
            raise UsageError(
                f"no exchange with id {exchange_id!r} in this analysis (ids look like {known})"
            )
        return explain(v, self.report)

    def text(self, *, width: int | None = None) -> str:
        """The terminal report, uncoloured."""
        from .report.text import render_text

        return render_text(self.report, color=False, width=width)

    def to_html(self, path: PathLike | None = None) -> str:
        """The self-contained HTML report; written to ``path`` too when one is given."""
        from .report.html import render_html

        page = render_html(self.report)
        if path is not None:
            Path(path).write_text(page, encoding="utf-8")
        return page

    def __getstate__(self) -> dict[str, Any]:
        # Frames are caches: pickle the report only.
        return {"report": self.report}


class FleetAnalysis:
    """Many sessions, merged: the fleet's views for a notebook (pandas frames, computed once)."""

    def __init__(self, report: FleetReport, paths: list[str], client: Any = None) -> None:
        self.report = report
        self.paths = paths
        self.client = client

    def __repr__(self) -> str:
        r = self.report
        return (f"<FleetAnalysis engine={r.engine} sessions={len(r.sessions)} "
                f"failed={len(r.failed)} findings={len(r.findings)}>")

    @cached_property
    def sessions(self) -> pd.DataFrame:
        """One row per session (file), in the order given; failed files with their error."""
        from .report.fleet_frames import sessions_frame

        return sessions_frame(self.report)

    @cached_property
    def findings(self) -> pd.DataFrame:
        """Findings across sessions, with how many sessions raised each."""
        from .report.fleet_frames import fleet_findings_frame

        return fleet_findings_frame(self.report)

    @cached_property
    def by_origin(self) -> pd.DataFrame:
        from .report.fleet_frames import fleet_groups_frame

        return fleet_groups_frame(self.report, "origins")

    @cached_property
    def by_endpoint(self) -> pd.DataFrame:
        from .report.fleet_frames import fleet_groups_frame

        return fleet_groups_frame(self.report, "endpoints")

    def preflight_overhead(self, *, ax: Axes | None = None, top: int = 15) -> Figure:
        """The endpoints that cost the most preflight time over the fleet."""
        from .report.plots import fleet_preflight_overhead

        _figures_display_in_notebooks()
        return fleet_preflight_overhead(self.by_endpoint, ax=ax, top=top)

    # Dask: rows stay on the cluster, one partition per session ---------------------------
    def dask_exchanges(self) -> Any:
        """Every exchange of the fleet as a Dask DataFrame (one partition per session)."""
        from .report.fleet_frames import dask_exchanges

        return dask_exchanges(self.report_paths, self._engine)

    def dask_by(self, kind: str = "endpoints") -> Any:
        """``(rows, totals)``: per-session origin or endpoint rows and their fleet totals,
        as Dask DataFrames (``kind``: ``"origins"`` or ``"endpoints"``)."""
        from .report.fleet_frames import dask_groups

        if kind not in ("origins", "endpoints"):
            raise UsageError(f"kind must be 'origins' or 'endpoints', not {kind!r}")
        return dask_groups(self.report_paths, self._engine, kind)

    @property
    def _engine(self) -> str | None:
        """What each session is analysed again with: the report's engine, or each its own."""
        return None if self.report.detected else self.report.engine

    @property
    def report_paths(self) -> list[str]:
        """The sessions that could be read."""
        return [s.path for s in self.report.analysed]

    def text(self) -> str:
        from .report.fleet import render_fleet_text

        return render_fleet_text(self.report)
