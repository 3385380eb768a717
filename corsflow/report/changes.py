"""Rendering of the changes list (:mod:`corsflow.changes`) in every report format.

Kept apart from the renderers' own code: each format calls one function here to open the
report with what to change, per server origin, ranked by effect. Capture values (servers,
endpoints, origins in actions) are escaped by the caller's escaping function.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from ..changes import Change, changes_of

if TYPE_CHECKING:
    import pandas as pd

    from ..analysis import Report


def change_to_dict(c: Change) -> dict[str, Any]:
    """One entry of the JSON report's ``changes`` list."""
    return {
        "server": c.server,
        "endpoints": list(c.endpoints),
        "action": c.action,
        "headers": [{"name": e.name, "op": e.op, "value": e.value} for e in c.edits],
        "fixes": list(c.fixes),
        "saves": {"preflights": c.saves_preflights, "ms": c.saves_ms},
        "finding_codes": list(c.finding_codes),
        "breaks": list(c.breaks),
        "predicted": c.predicted,
        "effect": c.effect,
        "note": c.note,
        "set": [line for r in c.rules for line in r.text()],
    }


def changes_json(report: Report) -> list[dict[str, Any]]:
    return [change_to_dict(c) for c in changes_of(report)]


def by_server(changes: Sequence[Change]) -> list[tuple[str, list[Change]]]:
    """Changes grouped by server origin, in the order they are ranked."""
    groups: dict[str, list[Change]] = {}
    for c in changes:
        groups.setdefault(c.server, []).append(c)
    return list(groups.items())


def change_line(c: Change) -> str:
    """``add `X-Trace-Id` to ... on https://api.example/v2/items/{id}: fixes 41 blocked
    requests``."""
    return f"{c.action}: {c.effect}"


def effect_line(c: Change) -> str:
    """The effect, and how much of it rests on answers the capture does not show."""
    return c.effect + (f" (predicted for {c.predicted} request(s) the capture shows "
                       "unanswered)" if c.predicted else "")


def changes_text_lines(report: Report, escape: Callable[[str], str] = str) -> list[str]:
    """Plain lines for the terminal (the caller styles them)."""
    changes = changes_of(report)
    if not changes:
        return []
    out = [(f"What to change ({len(changes)} change{'s' * (len(changes) != 1)}, "
            "each replayed on this session)")]
    n = 0
    for server, items in by_server(changes):
        out.append(f"  {escape(server)}")
        for c in items:
            n += 1
            out.append(f"   {n}. {escape(c.short)}")
            out.append(f"      → {escape(effect_line(c))}")
            if c.note:
                out.append(f"      why: {escape(c.note)}")
    return out


def changes_renderables(report: Report) -> list[Any]:
    """The terminal block (rich renderables): a heading, then per server a numbered list
    whose lines wrap under their own text."""
    from rich.padding import Padding
    from rich.table import Table
    from rich.text import Text

    from .inert import visible

    changes = changes_of(report)
    if not changes:
        return []
    head = Text("▌ ", style="bold green")
    head.append(f"What to change ({len(changes)} change{'s' * (len(changes) != 1)}, each "
                "replayed on this session)", style="bold")
    out: list[Any] = [Text(""), head]
    n = 0
    for server, items in by_server(changes):
        out.append(Text("  " + visible(server), style="bold"))
        grid = Table.grid(padding=(0, 1))
        grid.add_column(no_wrap=True, justify="right")
        grid.add_column(overflow="fold")
        for c in items:
            n += 1
            # Captured text (paths, origins) is written out, never acted on by the terminal.
            body = Text(visible(c.short))
            body.append("\n→ " + visible(effect_line(c)), style="bold")
            if c.note:
                body.append("\nwhy: " + visible(c.note), style="dim")
            grid.add_row(Text(f"{n}.", style="bold green"), body)
        out.append(Padding(grid, (0, 0, 0, 3)))
    return out


def changes_markdown(report: Report, escape: Callable[[str], str]) -> list[str]:
    changes = changes_of(report)
    if not changes:
        return []
    out = ["## What to change", ""]
    for server, items in by_server(changes):
        out.append(f"**{escape(server)}**")
        out.append("")
        for c in items:
            out.append(f"1. {escape(c.short)}: **{escape(effect_line(c))}**")
            if c.note:
                out.append(f"   - why: {escape(c.note)}")
        out.append("")
    return out


def changes_html(report: Report, escape: Callable[[object], str]) -> str:
    changes = changes_of(report)
    if not changes:
        return ""
    parts = [f'<h2 id="changes">What to change ({len(changes)})</h2>']
    for server, items in by_server(changes):
        parts.append(f'<h3 class="url">{escape(server)}</h3><ol class="changes">')
        for c in items:
            note = f'<div class="note">why: {escape(c.note)}</div>' if c.note else ""
            parts.append(f"<li>{escape(c.short)}: <b>{escape(effect_line(c))}</b>{note}</li>")
        parts.append("</ol>")
    return "".join(parts)


def changes_frame(report: Report) -> pd.DataFrame:
    """One row per change (the notebook's ``a.changes``)."""
    import pandas as pd

    rows = [{"server": c.server, "endpoints": list(c.endpoints), "action": c.action,
             "fixes": len(c.fixes), "saves_preflights": c.saves_preflights,
             "saves_ms": c.saves_ms, "breaks": len(c.breaks),
             "finding_codes": list(c.finding_codes), "fixed_ids": list(c.fixes)}
            for c in changes_of(report)]
    columns = ["server", "endpoints", "action", "fixes", "saves_preflights", "saves_ms",
               "breaks", "finding_codes", "fixed_ids"]
    return pd.DataFrame(rows, columns=columns)
