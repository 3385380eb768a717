"""A compact HTML card of a report for notebooks: the numbers and the findings, no rows.

This is what a notebook shows when an analysis is the last value of a cell; the frames and
charts are a method call away, so the card stays short whatever the capture's size.
"""

from __future__ import annotations

from html import escape

from ..analysis import Report
from ..findings import SEVERITY_ORDER
from .changes import changes_html
from .tally import tally

FINDINGS_SHOWN = 12
_COLOURS = {"error": "#b42318", "warning": "#9a6700", "info": "#0b6bcb"}


def _e(value: object) -> str:
    return escape("" if value is None else str(value), quote=True)


def report_card_html(report: Report) -> str:
    """The summary and the most severe findings as a small HTML fragment."""
    t = tally(report)
    c = t.total
    sources = ", ".join(s.path for s in report.sources) or "no sources"
    share = (
        f" ({c.preflight_share:.0%} of cross-origin time)" if c.preflight_share is not None else ""
    )
    numbers = [
        ("exchanges", c.exchanges),
        ("cross-origin requests", c.requests),
        ("preflights", c.preflights),
        ("cache hits", c.cache_hits),
        ("avoidable preflights", c.avoidable),
        ("blocked requests", c.blocked),
        ("preflight time", f"{c.preflight_ms:,.0f} ms{share}"),
    ]
    cells = "".join(
        f'<td style="padding:2px 14px 2px 0"><b>{_e(v)}</b><br><small>{_e(k)}</small></td>'
        for k, v in numbers
    )
    findings = sorted(report.findings, key=lambda f: SEVERITY_ORDER.get(f.severity, 9))
    rows = "".join(
        f'<tr><td style="color:{_COLOURS.get(f.severity, "inherit")};font-weight:600;'
        f'text-align:left">{_e(f.severity)}</td><td style="text-align:left"><code>{_e(f.code)}'
        f'</code></td><td style="text-align:left">{_e(f.message)}'
        + (f"<br><small><b>fix:</b> {_e(f.hint)}</small>" if f.hint else "")
        + f'</td><td style="text-align:left"><small>{_e(", ".join(f.exchange_ids[:5]))}'
        + (" …" if len(f.exchange_ids) > 5 else "")
        + "</small></td></tr>"
        for f in findings[:FINDINGS_SHOWN]
    )
    more = (
        f"<p><small>… and {len(findings) - FINDINGS_SHOWN} more findings "
        "(<code>.findings</code> has them all)</small></p>"
        if len(findings) > FINDINGS_SHOWN
        else ""
    )
    table = (
        f"<table><thead><tr><th>severity</th><th>code</th><th>finding</th><th>exchanges</th>"
        f"</tr></thead><tbody>{rows}</tbody></table>{more}"
        if findings
        else "<p>No findings.</p>"
    )
    return (
        f'<div class="corsflow-report"><p><b>CORS analysis</b> · engine {_e(report.engine)} · '
        f"{_e(sources)}</p><table><tr>{cells}</tr></table>{changes_html(report, _e)}{table}"
        "</div>"
    )
