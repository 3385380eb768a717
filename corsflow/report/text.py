"""Text reports: the terminal view, Markdown (for CI comments) and CSV (one row per exchange).

The terminal view reads top-down the way someone debugging reads: a header with what was
analysed, then each page origin with its failures first (the reason, the failed check and
the fix), its Max-Age and other findings, its redundant preflights and a per-endpoint table,
then what the ingest had to skip. Colour comes from rich when writing to a terminal; capture
values are always appended as plain text, never parsed as rich markup.
"""

from __future__ import annotations

import csv
import io
import os
import sys
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from contextvars import ContextVar
from typing import IO

from rich.console import Console, Group, RenderableType
from rich.padding import Padding
from rich.table import Table
from rich.text import Text

from ..analysis import Report
from ..engine.events import ExchangeVerdict, Finding
from ..engine.words import engine_reason
from ..findings import CATALOGUE, SEVERITY_ORDER
from ..findings.security import is_security, security_by_server
from ..urls import endpoint, path_template
from .changes import changes_markdown, changes_renderables
from .inert import csv_cell, md_code, visible
from .tally import (
    Counts,
    Tally,
    duration_ms,
    failed_step,
    failures,
    origin_label,
    tally,
)

DEFAULT_WIDTH = 100
LIST_LIMIT = 8
"""Lines of one kind shown per origin before the rest is summarised."""
_LIMIT: ContextVar[int] = ContextVar("corsflow_text_limit", default=LIST_LIMIT)
"""LIST_LIMIT for the report being rendered (``--all`` lifts it)."""

_SEVERITY_STYLE = {"error": "bold red", "warning": "yellow", "info": "cyan"}
_SEVERITY_MARK = {"error": "✗", "warning": "!", "info": "i"}


# --------------------------------------------------------------------------- shared words


def _plural(n: int, word: str, plural: str | None = None) -> str:
    return f"{n} {word if n == 1 else (plural or word + 's')}"


def _ms(value: float | None) -> str:
    if value is None:
        return "?"
    return f"{value:,.0f} ms"


def _seconds(value: float) -> str:
    return f"{value:g} s"


def _max_age_phrase(v: ExchangeVerdict) -> str | None:
    m = v.max_age
    if m is None:
        return None
    if m.raw is None:
        return f"absent (cached {_seconds(m.effective)})"
    if m.parsed is None:
        return f"{m.raw!r} unparsable (cached {_seconds(m.effective)})"
    if m.clamped:
        return f"{m.parsed} clamped to {_seconds(m.effective)}"
    if m.effective <= 0:
        return f"{m.parsed} (not cached)"
    return f"{m.parsed} s"


def _header_lines(report: Report, t: Tally) -> list[str]:
    c = t.total
    sources = (
        ", ".join(
            f"{s.path} ({s.format}, {_plural(s.exchanges, 'exchange')}"
            + (f", {s.skipped} skipped)" if s.skipped else ")")
            for s in report.sources
        )
        or "no sources"
    )
    severities: Counter[str] = Counter(f.severity for f in report.findings)
    labels = {
        "error": ("error", "errors"),
        "warning": ("warning", "warnings"),
        "info": ("info", "info"),
    }
    findings = (
        ", ".join(
            f"{severities[s]} {labels[s][severities[s] != 1]}" for s in labels if severities[s]
        )
        or "none"
    )
    counts = (
        f"{_plural(c.exchanges, 'exchange')}: {_plural(c.requests, 'cross-origin request')} "
        f"({c.preflighted} preflighted, {c.simple} simple), {_plural(c.preflights, 'preflight')} "
        f"({_plural(c.cache_hits, 'cache hit')}, {c.avoidable} avoidable, "
        f"{_ms(c.preflight_ms)}), {c.blocked} blocked"
        + (f", {_plural(c.failed_preflights, 'failed preflight')}" if c.failed_preflights else "")
        + f", {c.other} not cross-origin"
    )
    return [f"corsflow · {report.engine} engine · {sources}", counts, f"findings: {findings}"]


def _origin_order(t: Tally) -> list[str]:
    """Origins with cross-origin traffic; those with failures first, then the busiest."""
    names = [o for o, c in t.origins.items() if c.requests or c.preflights]
    return sorted(
        names,
        key=lambda o: (
            -t.origins[o].blocked - t.origins[o].failed_preflights,
            -(t.origins[o].requests + t.origins[o].preflights),
        ),
    )


def _origin_summary(c: Counts) -> str:
    parts = [
        _plural(c.requests, "request"),
        _plural(c.preflights, "preflight"),
        _plural(c.cache_hits, "cache hit"),
        f"{c.blocked} blocked"
        + (f" · {_plural(c.failed_preflights, 'failed preflight')}" if c.failed_preflights else ""),
        f"{c.avoidable} avoidable",
        f"preflights {_ms(c.preflight_ms)}",
    ]
    if c.preflight_share is not None:
        parts[-1] += f" ({c.preflight_share:.0%} of cross-origin time)"
    return " · ".join(parts)


class _FailureGroup:
    """Blocked requests failing the same way on the same endpoint: one explanation for all."""

    __slots__ = ("key", "verdicts")

    def __init__(self, key: tuple[str, str, str | None, str | None]) -> None:
        self.key = key
        self.verdicts: list[ExchangeVerdict] = []


def _failures(t: Tally, verdicts: Iterable[ExchangeVerdict]) -> list[_FailureGroup]:
    groups: dict[tuple[str, str, str | None, str | None], _FailureGroup] = {}
    for v in failures(t, verdicts):
        key = (v.exchange.method, endpoint(v.exchange.url), v.cors_error, v.failed_parameter)
        groups.setdefault(key, _FailureGroup(key)).verdicts.append(v)
    return list(groups.values())


def _failure_reason(v: ExchangeVerdict) -> str:
    reason = v.cors_error or "blocked"
    if v.failed_parameter:
        reason += f" ({v.failed_parameter})"
    return reason


def _origin_findings(report: Report, origin: str, shown: set[str]) -> list[Finding]:
    """Findings for this origin other than the failures already explained above them."""
    return [
        f
        for f in report.findings
        if f.origin == origin
        and not (f.severity == "error" and f.exchange_ids and set(f.exchange_ids) <= shown)
    ]


def _max_age_census(verdicts: Iterable[ExchangeVerdict]) -> str | None:
    census: Counter[str] = Counter()
    for v in verdicts:
        if v.role == "preflight" and v.max_age is not None and v.verdict != "blocked":
            census[_max_age_phrase(v) or "?"] += 1
    if not census:
        return None
    return "; ".join(f"{phrase} ×{n}" for phrase, n in census.most_common())


# --------------------------------------------------------------------------- terminal


def safe(value: str) -> str:
    """Capture text with control characters escaped, so a header value cannot send terminal
    escape sequences (ANSI colours, cursor moves, window titles) to the reader's terminal, or
    forge a line of the report with a newline of its own."""
    return visible(value)


class _Ours(str):
    """Text of the renderer's own (a line break), which :class:`_Text` appends as it is."""


NL = _Ours("\n")


class _Text(Text):
    """rich Text whose appended strings are always made safe first (all but :data:`NL`)."""

    def append(self, text: str | Text, style: str | None = None) -> _Text:  # type: ignore[override]
        if isinstance(text, str) and not isinstance(text, _Ours):
            text = safe(text)
        super().append(text, style=style)
        return self


def _styled(*parts: tuple[str, str] | str) -> Text:
    text = _Text()
    for part in parts:
        if isinstance(part, str):
            text.append(part)
        else:
            text.append(part[0], style=part[1])
    return text


def _plain(value: str, style: str = "") -> Text:
    return _styled((value, style))


def _indented(grid: Table) -> Padding:
    return Padding(grid, (0, 0, 0, 2))


def _grid() -> Table:
    grid = Table.grid(padding=(0, 1))
    grid.add_column(no_wrap=True, width=1)
    grid.add_column(no_wrap=True)
    grid.add_column(overflow="fold")
    return grid


def _section(title: str) -> Text:
    return _styled("  ", (title, "bold underline"))


def _ids(ids: Sequence[str], limit: int = 6) -> str:
    shown = ", ".join(ids[:limit])
    return shown + (f" +{len(ids) - limit} more" if len(ids) > limit else "")


def _origin_block(report: Report, t: Tally, origin: str) -> list[RenderableType]:
    verdicts = t.cors_by_origin.get(origin, [])
    out: list[RenderableType] = [
        Text(""),
        _styled(
            ("▌ ", "bold blue"),
            (origin, "bold"),
            NL,
            "  ",
            (_origin_summary(t.origins[origin]), "dim"),
        ),
    ]
    groups = _failures(t, verdicts)
    shown: set[str] = set()
    if groups:
        out.append(_section("Failures"))
        grid = _grid()
        for group in groups[:_LIMIT.get()]:
            first = group.verdicts[0]
            ids = [v.exchange.id for v in group.verdicts]
            shown.update(ids)
            shown.update(v.preflight_id for v in group.verdicts if v.preflight_id)
            body = _styled((f"{first.exchange.method} {first.exchange.url}", "bold"))
            if len(ids) > 1:
                body.append(f"  ×{len(ids)} ({_ids(ids)})", style="dim")
            body.append(NL)
            body.append("blocked: ")
            body.append(_failure_reason(first), style="bold red")
            words = engine_reason(report.engine, first.cors_error)
            if words is not None:
                body.append(NL)
                body.append(f"{words.engine} says: {words.words}"
                            + (f" ({words.link})" if words.link else ""))
            step = failed_step(first)
            if step:
                body.append(NL)
                body.append(f"failed check: {step}")
            if first.role == "preflight":
                status = first.exchange.status
                body.append(NL)
                body.append(
                    "preflight answered "
                    + (str(status) if status is not None else "nothing")
                    + "; the request it was sent for is not in the capture",
                    style="dim",
                )
            elif first.preflight_id is not None:
                pf = t.by_id.get(first.preflight_id)
                status = pf.exchange.status if pf is not None else None
                body.append(NL)
                body.append(
                    f"preflight {first.preflight_id}"
                    + (f" answered {status}" if status is not None else " got no response"),
                    style="dim",
                )
            hint = t.hint_for(first.exchange.id)
            if hint:
                body.append(NL)
                body.append("fix: ", style="bold green")
                body.append(hint)
            grid.add_row(Text("✗", style="bold red"), _plain(first.exchange.id, "dim"), body)
        out.append(_indented(grid))
        if len(groups) > _LIMIT.get():
            out.append(Text(f"    … and {len(groups) - _LIMIT.get()} more kinds of failure"))

    census = _max_age_census(verdicts)
    findings = _origin_findings(report, origin, shown)
    if census or findings:
        out.append(_section("Findings"))
        grid = _grid()
        if census:
            grid.add_row(Text("·"), Text(""), _styled(("Max-Age sent: ", "dim"), census))
        for f in findings[:_LIMIT.get()]:
            grid.add_row(*_finding_row(f))
        out.append(_indented(grid))
        if len(findings) > _LIMIT.get():
            out.append(Text(f"    … and {len(findings) - _LIMIT.get()} more findings (--all lists them)"))

    redundant = [v for v in verdicts if v.role == "preflight" and v.redundant]
    if redundant:
        out.append(_section("Redundant preflights"))
        grid = _grid()
        for v in redundant[:_LIMIT.get()]:
            body = _styled(f"{v.exchange.url}  ", (_ms(duration_ms(v)), "dim"))
            if v.redundant_cause:
                body.append(f"  cause: {v.redundant_cause}", style="yellow")
            grid.add_row(Text("!", style="yellow"), _plain(v.exchange.id, "dim"), body)
        out.append(_indented(grid))
        if len(redundant) > _LIMIT.get():
            out.append(Text(f"    … and {len(redundant) - _LIMIT.get()} more"))

    out.append(_section("Endpoints"))
    out.append(_endpoint_table(t, verdicts))
    return out


def _finding_row(f: Finding) -> tuple[Text, Text, Text]:
    style = _SEVERITY_STYLE.get(f.severity, "")
    body = _styled((f.code, style), "  ", f.message)
    if f.exchange_ids:
        body.append(f"  [{_ids(f.exchange_ids)}]", style="dim")
    if f.hint:
        body.append(NL)
        body.append("fix: ", style="bold green")
        body.append(f.hint)
    return Text(_SEVERITY_MARK.get(f.severity, "·"), style=style), Text(""), body


def _endpoint_rows(t: Tally, verdicts: Iterable[ExchangeVerdict]) -> list[tuple[str, Counts]]:
    groups: dict[str, Counts] = {}
    for v in verdicts:
        if v.role in ("preflight", "preflighted", "simple"):
            groups.setdefault(endpoint(v.exchange.url), Counts()).add(
                v, v.exchange.id in t.avoidable
            )
    return sorted(
        groups.items(),
        key=lambda kv: (-kv[1].blocked - kv[1].failed_preflights, -kv[1].preflight_ms, kv[0]),
    )


def _endpoint_table(t: Tally, verdicts: Iterable[ExchangeVerdict]) -> RenderableType:
    grid = _grid()
    rows = _endpoint_rows(t, verdicts)
    for name, c in rows[: _LIMIT.get() * 2]:
        body = _styled((name, "bold" if c.blocked else ""), NL)
        body.append(f"{_plural(c.requests, 'request')} · {_plural(c.preflights, 'preflight')}")
        if c.preflights:
            body.append(f" ({_ms(c.preflight_ms)})")
        if c.cache_hits:
            body.append(f" · {_plural(c.cache_hits, 'cache hit')}")
        if c.avoidable:
            body.append(f" · {c.avoidable} avoidable", style="yellow")
        if c.blocked:
            body.append(f" · {c.blocked} blocked", style="bold red")
        grid.add_row(_plain("·"), _plain(",".join(sorted(c.methods)) or "OPTIONS", "dim"), body)
    if len(rows) > _LIMIT.get() * 2:
        grid.add_row("", "", _plain(f"… and {len(rows) - _LIMIT.get() * 2} more endpoints"))
    return _indented(grid)


def _diagnostics(report: Report) -> list[RenderableType]:
    out: list[RenderableType] = []
    skipped_total = sum(n for _, n in report.skipped_by_reason) or len(report.skipped)
    if skipped_total or report.notes:
        out += [Text(""), _styled(("▌ ", "bold blue"), ("Diagnostics", "bold"))]
    if skipped_total:
        out.append(Text(f"  {_plural(skipped_total, 'record')} skipped:"))
        where: defaultdict[str, list[str]] = defaultdict(list)
        for s in report.skipped:
            where[s.reason].append(f"{s.path} {s.where}")
        reasons = report.skipped_by_reason or tuple(
            Counter(s.reason for s in report.skipped).items()
        )
        for reason, n in reasons:
            line = _styled("    ", (f"{n} × ", "dim"), reason)
            if where.get(reason):
                line.append(f"  ({_ids(where[reason], 3)})", style="dim")
            out.append(line)
    for note in report.notes:
        out.append(_styled(("  note: ", "cyan"), note))
    return out


def _security_block(report: Report) -> list[RenderableType]:
    """The passive security review (CWE-942), one block per server origin."""
    by_server = security_by_server(report.findings)
    out: list[RenderableType] = [
        Text(""), _styled(("▌ ", "bold magenta"), ("Security review (CWE-942)", "bold"))]
    if not by_server:
        out.append(Text("  No CORS misconfiguration shown by this capture.", style="dim"))
        return out
    for server, group in by_server.items():
        out.append(_styled("  ", (server, "bold")))
        grid = _grid()
        for f in group:
            mark, blank, body = _finding_row(f)
            rule = CATALOGUE.get(f.code)
            if rule is not None:
                body.append(NL)
                body.append("why: ", style="bold")
                body.append(rule.why)
            if f.spec:
                body.append(NL)
                body.append(f"see: {f.spec}", style="dim")
            grid.add_row(mark, blank, body)
        out.append(_indented(grid))
    return out


def _renderables(report: Report, security_only: bool = False) -> list[RenderableType]:
    t = tally(report)
    head = _header_lines(report, t)
    out: list[RenderableType] = [
        _styled((head[0], "bold")),
        Text(head[1]),
        _styled(
            ("findings: ", ""),
            (head[2].removeprefix("findings: "), "bold red" if t.total.blocked else ""),
        ),
    ]
    if security_only:
        return out + _security_block(report)
    out += changes_renderables(report)
    origins = _origin_order(t)
    if not origins:
        out.append(Text("\nNo cross-origin requests in this capture.", style="dim"))
    for origin in origins:
        out += _origin_block(report, t, origin)
    out += _security_block(report)
    stray = [
        f for f in report.findings
        if not is_security(f) and (f.origin is None or origin_label(f.origin) not in origins)
    ]
    if stray:
        grid = _grid()
        for f in stray:
            grid.add_row(*_finding_row(f))
        out += [Text(""), _styled(("▌ ", "bold blue"), ("Other findings", "bold")), _indented(grid)]
    out += _diagnostics(report)
    return out


def _wants_color(stream: IO[str]) -> bool:
    if os.environ.get("NO_COLOR"):
        return False
    if os.environ.get("FORCE_COLOR"):
        return True
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def _terminal_width(stream: IO[str]) -> int | None:
    isatty = getattr(stream, "isatty", None)
    if not (isatty and isatty()):
        return None
    try:
        return max(40, os.get_terminal_size(stream.fileno()).columns)
    except (OSError, ValueError, AttributeError):
        return None


def render_text(report: Report, *, color: bool | None = None, width: int | None = None,
                show_all: bool = False, security_only: bool = False) -> str:
    """The terminal report as a string.

    ``color=None`` colours it when stdout is a terminal (and ``NO_COLOR`` is not set);
    ``width=None`` wraps at the terminal's width, or 100 columns when stdout is not one;
    ``show_all`` lists every failure, finding and endpoint instead of the first few.
    """
    if color is None:
        color = _wants_color(sys.stdout)
    if width is None:
        width = _terminal_width(sys.stdout)
    buffer = io.StringIO()
    console = Console(
        file=buffer,
        force_terminal=color,
        no_color=not color,
        color_system="standard" if color else None,
        width=width or DEFAULT_WIDTH,
        highlight=False,
        emoji=False,
        markup=False,
        force_jupyter=False,
        legacy_windows=False,
        soft_wrap=False,
    )
    token = _LIMIT.set(sys.maxsize if show_all else LIST_LIMIT)
    try:
        console.print(Group(*_renderables(report, security_only)))
    finally:
        _LIMIT.reset(token)
    text = buffer.getvalue()
    if not color:
        # rich pads table cells to the full width; trailing blanks only get in the way of a pipe.
        text = "\n".join(line.rstrip() for line in text.split("\n"))
    return text


def write_text(report: Report, stream: IO[str], *, color: bool | None = None) -> None:
    """Write the terminal report to ``stream``, coloured only if it is a terminal."""
    if color is None:
        color = _wants_color(stream)
    width = _terminal_width(stream) or DEFAULT_WIDTH
    stream.write(render_text(report, color=color, width=width))


# --------------------------------------------------------------------------- markdown


_MD_SPECIAL = str.maketrans(
    {
        "\\": "\\\\",
        "|": "\\|",
        "`": "\\`",
        "*": "\\*",
        "_": "\\_",
        "[": "\\[",
        "]": "\\]",
        "<": "&lt;",
        ">": "&gt;",
        "&": "&amp;",
        "#": "\\#",
        "\n": " ",
        "\r": " ",
    }
)


def md(value: object) -> str:
    """Text of the report's own (words, counts, file names) with Markdown's special
    characters escaped; captured values go through :func:`md_code` instead."""
    return visible(value).translate(_MD_SPECIAL)


class _Captured(str):
    """A table cell holding captured text: rendered as a code span (:func:`md_code`)."""


def _md_cell(value: object) -> str:
    return md_code(value) if isinstance(value, _Captured) else md(value)


def _md_table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> list[str]:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in rows]
    return lines


MARKDOWN_ROWS = 50
"""Rows per table or list, so the page fits a CI comment (GitHub takes 65,536 characters)."""


def _md_more(total: int, what: str) -> list[str]:
    if total <= MARKDOWN_ROWS:
        return []
    return ["", f"… and {total - MARKDOWN_ROWS} more {what} (the CSV or JSON report has them all)."]


def _md_security(report: Report) -> list[str]:
    out = ["## Security review (CWE-942)", ""]
    by_server = security_by_server(report.findings)
    if not by_server:
        return [*out, "No CORS misconfiguration shown by this capture.", ""]
    for server, group in by_server.items():
        out += [f"### {md_code(server, in_table=False)}", ""]
        out += _md_table(
            ("severity", "code", "evidence", "why", "fix", "reference", "exchanges"),
            ((f.severity, f.code, _Captured(f.message),
              CATALOGUE[f.code].why if f.code in CATALOGUE else "", _Captured(f.hint or ""),
              f.spec or "", _ids(f.exchange_ids)) for f in group[:MARKDOWN_ROWS]))
        out.append("")
    return out


def render_markdown(report: Report, *, security_only: bool = False) -> str:
    """The report as GitHub-flavoured Markdown: summary, findings, failures, origins."""
    t = tally(report)
    head = _header_lines(report, t)
    out = ["# CORS report", "", f"{md(head[0])}  ", f"{md(head[1])}  ", md(head[2]), ""]
    if security_only:
        return "\n".join(out + _md_security(report))
    out += changes_markdown(report, lambda v: md_code(v, in_table=False))
    if report.findings:
        out += ["## Findings", ""]
        out += _md_table(
            ("severity", "code", "origin", "message", "fix", "exchanges"),
            (
                (f.severity, f.code, _Captured(f.origin or ""), _Captured(f.message),
                 _Captured(f.hint or ""), _ids(f.exchange_ids))
                for f in sorted(report.findings, key=lambda f: SEVERITY_ORDER.get(f.severity, 9))
            ),
        )
        out.append("")
    out += _md_security(report)
    groups = _failures(t, report.exchanges)
    if groups:
        out += ["## Failures", ""]
        for group in groups[:MARKDOWN_ROWS]:
            first = group.verdicts[0]
            ids = [v.exchange.id for v in group.verdicts]
            origin = md_code(first.origin, in_table=False) if first.origin else "(no Origin)"
            out.append(
                f"- **{md_code(f'{first.exchange.method} {first.exchange.url}', in_table=False)}**"
                f" from {origin}: {md_code(_failure_reason(first), in_table=False)} "
                f"({md(_ids(ids))})"
            )
            words = engine_reason(report.engine, first.cors_error)
            if words is not None:
                out.append(f"  - {words.engine} says: {md(words.words)}"
                           + (f" ({words.link})" if words.link else ""))
            step = failed_step(first)
            if step:
                out.append(f"  - failed check: {md_code(step, in_table=False)}")
            hint = t.hint_for(first.exchange.id)
            if hint:
                out.append(f"  - fix: {md_code(hint, in_table=False)}")
        if len(groups) > MARKDOWN_ROWS:
            out.append(f"- … and {len(groups) - MARKDOWN_ROWS} more kinds of failure")
        out.append("")
    origins = _origin_order(t)
    if origins:
        out += ["## Origins", ""]
        out += _md_table(
            (
                "origin",
                "requests",
                "preflights",
                "cache hits",
                "avoidable",
                "blocked",
                "preflight ms",
                "preflight share",
            ),
            (
                (
                    _Captured(o),
                    c.requests,
                    c.preflights,
                    c.cache_hits,
                    c.avoidable,
                    c.blocked,
                    f"{c.preflight_ms:,.0f}",
                    "" if c.preflight_share is None else f"{c.preflight_share:.0%}",
                )
                for o in origins[:MARKDOWN_ROWS]
                for c in [t.origins[o]]
            ),
        )
        out += _md_more(len(origins), "origins")
        endpoints = _endpoint_rows(t, report.exchanges)
        out += ["", "## Endpoints", ""]
        out += _md_table(
            (
                "endpoint",
                "methods",
                "requests",
                "preflights",
                "cache hits",
                "avoidable",
                "blocked",
                "preflight ms",
            ),
            (
                (
                    _Captured(name),
                    _Captured(",".join(sorted(c.methods))),
                    c.requests,
                    c.preflights,
                    c.cache_hits,
                    c.avoidable,
                    c.blocked,
                    f"{c.preflight_ms:,.0f}",
                )
                for name, c in endpoints[:MARKDOWN_ROWS]
            ),
        )
        out += _md_more(len(endpoints), "endpoints")
        out.append("")
    skipped_total = sum(n for _, n in report.skipped_by_reason) or len(report.skipped)
    if skipped_total or report.notes:
        out += ["## Diagnostics", ""]
        out += [f"- {n} skipped: {md_code(reason, in_table=False)}"
                for reason, n in report.skipped_by_reason]
        out += [f"- note: {md(note)}" for note in report.notes]
        out.append("")
    return "\n".join(out)


# --------------------------------------------------------------------------- csv

CSV_FIELDS = (
    "id",
    "method",
    "url",
    "origin",
    "started",
    "status",
    "role",
    "verdict",
    "cors_error",
    "preflight_id",
    "cache",
    "redundant",
    # Beyond the JSON contract's EXCHANGE fields:
    "failed_parameter",
    "redundant_cause",
    "credentials",
    "endpoint",
    "path_template",
    "duration_ms",
    "source",
    "where",
)
_cell = csv_cell


def render_csv(report: Report) -> str:
    """One row per exchange, in capture order, with the JSON contract's EXCHANGE fields."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_FIELDS)
    for v in report.exchanges:
        writer.writerow(csv_row(v))
    return buffer.getvalue()


def csv_row(v: ExchangeVerdict) -> list[str]:
    """The CSV row of one exchange (rows can be written as verdicts settle)."""
    ex = v.exchange
    ms = duration_ms(v)
    return [
        _cell(ex.id),
        _cell(ex.method),
        _cell(ex.url),
        _cell(v.origin),
        repr(ex.started),
        _cell(ex.status),
        v.role,
        _cell(v.verdict),
        _cell(v.cors_error),
        _cell(v.preflight_id),
        _cell(v.cache),
        _cell(v.redundant),
        _cell(v.failed_parameter),
        _cell(v.redundant_cause),
        v.credentials,
        _cell(endpoint(ex.url)),
        _cell(path_template(ex.url)),
        "" if ms is None else f"{ms:g}",
        _cell(ex.source.path),
        _cell(ex.source.where),
    ]
