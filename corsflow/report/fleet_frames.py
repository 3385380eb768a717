"""A fleet as DataFrames: pandas for a fleet that fits in memory, Dask for one that does not.

The Dask frames are built from one task per session, partitioned by session: a worker
reads its capture and hands back that session's rows, so no machine ever holds the fleet.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from typing import TYPE_CHECKING, Any, cast

from ..fleet import COUNT_FIELDS, TIME_FIELDS, FleetReport, SessionResult, analyze_session
from .fleet import grouped
from .optional import require

if TYPE_CHECKING:
    import pandas as pd
    from pandas import DataFrame

GROUP_COLUMNS = ("sessions", *COUNT_FIELDS, *TIME_FIELDS)
SESSION_COLUMNS = ("path", "format", "engine", "error", "bytes", "exchanges", "skipped", "started",
                   *COUNT_FIELDS, *TIME_FIELDS, "errors", "warnings", "infos")
FLEET_FINDING_COLUMNS = ("code", "severity", "message", "hint", "origin", "url", "sessions",
                         "count", "saved")


def _pd() -> Any:
    return require("pandas", "DataFrames")


def _session_row(s: SessionResult) -> dict[str, Any]:
    total = asdict(s.total) if s.total is not None else {}
    return {
        "path": s.path, "format": s.format, "engine": s.engine, "error": s.error,
        "bytes": s.size, "exchanges": s.exchanges, "skipped": s.skipped,
        "started": s.first_started, **{f: total.get(f) for f in COUNT_FIELDS + TIME_FIELDS},
        "errors": sum(f.severity == "error" for f in s.findings),
        "warnings": sum(f.severity == "warning" for f in s.findings),
        "infos": sum(f.severity == "info" for f in s.findings),
    }


def sessions_frame(report: FleetReport) -> pd.DataFrame:
    """One row per session, in the order the files were given."""
    pd = _pd()
    frame = pd.DataFrame([_session_row(s) for s in report.sessions], columns=list(SESSION_COLUMNS))
    frame["started"] = pd.to_datetime(frame["started"], unit="s", utc=True)
    return cast("DataFrame", frame)


def fleet_findings_frame(report: FleetReport) -> pd.DataFrame:
    pd = _pd()
    rows = [{"code": f.code, "severity": f.severity, "message": f.message, "hint": f.hint,
             "origin": f.origin, "url": f.url, "sessions": f.sessions, "count": f.exchanges,
             "saved": f.saved} for f in report.findings]
    return cast("DataFrame", pd.DataFrame(rows, columns=list(FLEET_FINDING_COLUMNS)))


def fleet_groups_frame(report: FleetReport, kind: str) -> pd.DataFrame:
    """Per origin or endpoint over the fleet (``kind``: ``"origins"`` or ``"endpoints"``),
    busiest preflighters first."""
    pd = _pd()
    groups = grouped(report, kind)
    index = pd.Index(list(groups), name=kind[:-1], dtype="string")
    frame = pd.DataFrame([groups[k] for k in groups], columns=list(GROUP_COLUMNS), index=index)
    for col in ("sessions", *COUNT_FIELDS):
        frame[col] = frame[col].astype("int64")
    return cast("DataFrame", frame)


# --- Dask: partitioned by session --------------------------------------------------------------


def _session_exchanges(path: str, engine: str | None) -> pd.DataFrame:
    """One session's exchanges frame, with its path: one partition of the Dask frame."""
    from ..analysis import analyze_paths
    from ..errors import CorsflowError, Diagnostics
    from .frames import exchanges_frame

    pd = _pd()
    try:
        report = analyze_paths([path], engine=engine, diagnostics=Diagnostics())
    except CorsflowError:
        return _empty_exchanges(engine or "chromium")  # the fleet report names the file
    frame = _uncategorical(exchanges_frame(report))
    frame.insert(0, "session", pd.array([path] * len(frame), dtype="string"))
    return frame


def _uncategorical(frame: DataFrame) -> DataFrame:
    """Categorical columns as strings: each session has its own categories, which Dask
    cannot join into one partitioned column."""
    kinds = {c: "string" for c, t in frame.dtypes.items() if str(t) == "category"}
    return frame.astype(kinds) if kinds else frame


def _session_groups(path: str, engine: str | None, kind: str) -> pd.DataFrame:
    pd = _pd()
    s = analyze_session(path, engine)
    rows = [{kind[:-1]: r.key, "session": path, **{f: getattr(r, f) for f in
                                                    COUNT_FIELDS + TIME_FIELDS}}
            for r in getattr(s, kind)]
    frame = pd.DataFrame(rows, columns=[kind[:-1], "session", *COUNT_FIELDS, *TIME_FIELDS])
    return cast("DataFrame", frame.astype(
        {f: "int64" for f in COUNT_FIELDS} | {f: "float64" for f in TIME_FIELDS}
        | {kind[:-1]: "string", "session": "string"}))


def dask_exchanges(paths: Sequence[str], engine: str | None) -> Any:
    """Every exchange of the fleet as a Dask DataFrame with one partition per session."""
    dd = require("dask.dataframe", "Dask DataFrames")
    delayed = require("dask", "Dask DataFrames").delayed
    parts = [delayed(_session_exchanges)(p, engine) for p in paths]
    return dd.from_delayed(parts, meta=_empty_exchanges(engine or "chromium"))


def _empty_exchanges(engine: str) -> pd.DataFrame:
    """The Dask frame's meta: an empty session frame with the real column types."""
    from ..analysis import Report
    from .frames import exchanges_frame

    pd = _pd()
    frame = _uncategorical(exchanges_frame(Report(engine=engine, sources=(), exchanges=(),
                                                  findings=())))
    frame.insert(0, "session", pd.array([], dtype="string"))
    return frame


def dask_groups(paths: Sequence[str], engine: str | None, kind: str) -> Any:
    """Per-session origin or endpoint rows (one partition per session), and their sum over
    the fleet computed by Dask: ``(rows, totals)``."""
    dd = require("dask.dataframe", "Dask DataFrames")
    delayed = require("dask", "Dask DataFrames").delayed
    pd = _pd()
    name = kind[:-1]
    meta = pd.DataFrame({name: pd.Series(dtype="string"), "session": pd.Series(dtype="string"),
                         **{f: pd.Series(dtype="int64") for f in COUNT_FIELDS},
                         **{f: pd.Series(dtype="float64") for f in TIME_FIELDS}})
    rows = dd.from_delayed([delayed(_session_groups)(p, engine, kind) for p in paths], meta=meta)
    totals = rows.groupby(name).agg(
        {"session": "count", **{f: "sum" for f in COUNT_FIELDS + TIME_FIELDS}}
    ).rename(columns={"session": "sessions"})
    return rows, totals
