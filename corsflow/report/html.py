"""A self-contained HTML report: one file, readable offline, safe to open.

Everything is inline: the stylesheet, and the charts as base64 PNG images. There is no
script, font or stylesheet to fetch, and a Content-Security-Policy forbids any (so even a
mistake in escaping could not run code). Every value that comes from a capture (URLs,
header values, methods, origins, file names) is attacker-controlled and goes through
:func:`html.escape`; decision traces sit in ``<details>`` so the page opens short.
"""

from __future__ import annotations

import base64
import io
import logging
import re
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from html import escape

from .. import __version__
from ..analysis import Report
from ..engine.events import ExchangeVerdict, Finding, TraceStep
from ..findings import CATALOGUE, SEVERITY_ORDER
from ..findings.security import security_by_server
from ..urls import endpoint
from .changes import changes_html
from .optional import MissingDependency
from .tally import (
    CORS_ROLES,
    Counts,
    Tally,
    duration_ms,
    failures,
    tally,
)

log = logging.getLogger(__name__)

TRACES_PER_FINDING = 5
EXCHANGE_ROWS = 2000

CSP = (
    "default-src 'none'; img-src data:; style-src 'unsafe-inline'; base-uri 'none'; "
    "form-action 'none'"
)

_STYLE = """
:root { --fg:#1d232a; --muted:#5b6570; --line:#dde2e7; --bg:#fff; --soft:#f5f7f9; --error:#b42318;
  --warning:#9a6700; --info:#0b6bcb; --ok:#1a7f37; }
* { box-sizing: border-box; }
body { margin:0; font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;
  color:var(--fg); background:var(--bg); }
main { max-width:1180px; margin:0 auto; padding:24px 28px 60px; }
h1 { font-size:26px; margin:0 0 4px; }
h2 { font-size:20px; margin:36px 0 12px; border-bottom:1px solid var(--line); padding-bottom:6px; }
h3 { font-size:16px; margin:22px 0 8px; }
.meta { color:var(--muted); margin:0; overflow-wrap:anywhere; }
nav a { margin-right:14px; color:var(--info); text-decoration:none; }
.cards { display:flex; flex-wrap:wrap; gap:12px; margin:18px 0; }
.card { background:var(--soft); border:1px solid var(--line); border-radius:8px;
  padding:10px 16px; min-width:150px; }
.card b { display:block; font-size:24px; }
.card span { color:var(--muted); font-size:13px; }
.card.bad b { color:var(--error); }
.card.warn b { color:var(--warning); }
.finding { border:1px solid var(--line); border-left:5px solid var(--info); border-radius:6px;
  padding:10px 14px; margin:10px 0; background:#fff; }
.finding.error { border-left-color:var(--error); }
.finding.warning { border-left-color:var(--warning); }
.badge { display:inline-block; font-size:12px; font-weight:600; text-transform:uppercase;
  padding:1px 7px; border-radius:10px; color:#fff; background:var(--info); margin-right:6px; }
.badge.error { background:var(--error); }
.badge.warning { background:var(--warning); }
.code { font-weight:600; }
.fix { margin:6px 0 0; }
.fix b { color:var(--ok); }
.where { color:var(--muted); font-size:13px; overflow-wrap:anywhere; }
code, .mono { font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace; font-size:13px;
  overflow-wrap:anywhere; }
details { margin:6px 0; }
summary { cursor:pointer; color:var(--muted); }
ol.trace { margin:6px 0 4px; padding-left:22px; }
ol.trace li { margin:2px 0; }
li.pass::marker { color:var(--ok); }
li.fail { color:var(--error); font-weight:600; }
li.unknown { color:var(--warning); }
.outcome { font-size:12px; text-transform:uppercase; margin-right:6px; }
table { border-collapse:collapse; width:100%; margin:8px 0 14px; font-size:13.5px; }
th, td { text-align:left; padding:5px 8px; border-bottom:1px solid var(--line);
  vertical-align:top; }
th { background:var(--soft); font-weight:600; }
td.n, th.n { text-align:right; white-space:nowrap; }
td code { white-space:nowrap; }
.scroll { overflow-x:auto; }
td.err { overflow-wrap:anywhere; min-width:120px; }
td.url { min-width:240px; overflow-wrap:anywhere;
  font-family:ui-monospace,Menlo,Consolas,monospace; font-size:12.5px; }
tr.blocked td { background:#fdf0ef; }
.v-blocked { color:var(--error); font-weight:600; }
.v-allowed { color:var(--ok); }
.v-unknown { color:var(--warning); }
figure { margin:16px 0 28px; }
figure img { max-width:100%; height:auto; border:1px solid var(--line); }
figcaption { color:var(--muted); font-size:13px; }
footer { margin-top:40px; color:var(--muted); font-size:12.5px; }
"""


def e(value: object) -> str:
    """Escape anything for HTML text and attribute values."""
    return escape("" if value is None else str(value), quote=True)


def _camel_breaks(escaped: str) -> str:
    """Let a long CorsError name wrap between its words (on already escaped text)."""
    return re.sub(r"(?<=[a-z])(?=[A-Z])", "<wbr>", escaped)


def _ms(value: float | None) -> str:
    return "–" if value is None else f"{value:,.0f} ms"


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


# --------------------------------------------------------------------------- pieces


def _cards(t: Tally) -> str:
    c = t.total
    share = (
        f" ({c.preflight_share:.0%} of cross-origin time)" if c.preflight_share is not None else ""
    )
    cards = [
        ("", c.requests, "cross-origin requests"),
        ("", c.preflights, "preflights sent"),
        ("", c.cache_hits, "preflight cache hits"),
        ("warn" if c.avoidable else "", c.avoidable, "avoidable preflights"),
        ("bad" if c.blocked else "", c.blocked, "blocked requests"),
        *([("bad", c.failed_preflights, "failed preflights")] if c.failed_preflights else []),
        ("", _ms(c.preflight_ms), "spent in preflights" + share),
    ]
    return (
        '<section class="cards">'
        + "".join(
            f'<div class="card {cls}"><b>{e(value)}</b><span>{e(label)}</span></div>'
            for cls, value, label in cards
        )
        + "</section>"
    )


def _trace(steps: Sequence[TraceStep]) -> str:
    items = []
    for s in steps:
        spec = f" <code>{e(s.spec)}</code>" if s.spec else ""
        items.append(
            f'<li class="{e(s.outcome)}"><span class="outcome">{e(s.outcome)}</span>'
            f'{e(s.step)}: <span class="mono">{e(s.detail)}</span>{spec}</li>'
        )
    return '<ol class="trace">' + "".join(items) + "</ol>"


def _exchange_line(v: ExchangeVerdict) -> str:
    ex = v.exchange
    status = ex.status if ex.status is not None else (ex.failure or "no response")
    return (
        f"<code>{e(ex.id)}</code> <code>{e(ex.method)} {e(ex.url)}</code> "
        f'<span class="where">→ {e(status)} · {e(ex.source.path)} {e(ex.source.where)}</span>'
    )


def _trace_details(v: ExchangeVerdict) -> str:
    summary = f"Decision for {_exchange_line(v)}"
    if v.verdict is not None:
        summary += f' <span class="v-{e(v.verdict)}">{e(v.verdict)}</span>'
    body = (
        _trace(v.trace)
        if v.trace
        else '<p class="where">The engine recorded no decision steps.</p>'
    )
    reasons = (
        f'<p class="where">Needed a preflight because of: {e(", ".join(v.preflight_reasons))}</p>'
        if v.preflight_reasons
        else ""
    )
    return f"<details><summary>{summary}</summary>{reasons}{body}</details>"


def _spec_link(spec: str | None) -> str:
    if not spec:
        return ""
    if spec.startswith("https://"):
        return f' · <a href="{e(spec)}" rel="noreferrer noopener">{e(spec)}</a>'
    return f" · <code>{e(spec)}</code>"


def _finding(f: Finding, t: Tally, why: str | None = None) -> str:
    where = " · ".join(
        x for x in (f.origin and f"from {e(f.origin)}", f.url and f"<code>{e(f.url)}</code>") if x
    )
    count = f" · {e(f.count)} occurrence{'s' if f.count != 1 else ''}" if f.count else ""
    parts = [
        f'<article class="finding {e(f.severity)}">',
        (
            f'<div><span class="badge {e(f.severity)}">{e(f.severity)}</span>'
            f'<span class="code">{e(f.code)}</span> — {e(f.message)}</div>'
        ),
        (
            f'<div class="where">{where}{count}{_spec_link(f.spec)}</div>'
            if where or count or f.spec
            else ""
        ),
        f'<p class="fix"><b>Why:</b> {e(why)}</p>' if why else "",
        f'<p class="fix"><b>Fix:</b> {e(f.hint)}</p>' if f.hint else "",
    ]
    shown = [t.by_id[x] for x in f.exchange_ids if x in t.by_id][:TRACES_PER_FINDING]
    parts += [_trace_details(v) for v in shown]
    if len(f.exchange_ids) > len(shown):
        rest = len(f.exchange_ids) - len(shown)
        parts.append(
            f'<p class="where">and {rest} more: <code>'
            f"{e(', '.join(f.exchange_ids[len(shown) : len(shown) + 50]))}</code></p>"
        )
    parts.append("</article>")
    return "".join(parts)


def _table(headers: Sequence[tuple[str, str]], rows: Iterable[str]) -> str:
    head = "".join(f'<th class="{cls}">{e(h)}</th>' for h, cls in headers)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _counts_cells(c: Counts) -> str:
    share = "–" if c.preflight_share is None else f"{c.preflight_share:.0%}"
    return "".join(
        f'<td class="n">{e(x)}</td>'
        for x in (
            c.requests,
            c.preflights,
            c.cache_hits,
            c.avoidable,
            c.blocked,
            _ms(c.preflight_ms),
            share,
        )
    )


_COUNT_HEADERS = [
    ("requests", "n"),
    ("preflights", "n"),
    ("cache hits", "n"),
    ("avoidable", "n"),
    ("blocked", "n"),
    ("preflight time", "n"),
    ("preflight share", "n"),
]


def _origin_section(report: Report, t: Tally, origin: str) -> str:
    verdicts = t.cors_by_origin.get(origin, [])
    endpoints: dict[str, Counts] = {}
    for v in verdicts:
        endpoints.setdefault(endpoint(v.exchange.url), Counts()).add(
            v, v.exchange.id in t.avoidable
        )
    ordered = sorted(
        endpoints.items(),
        key=lambda kv: (-kv[1].blocked - kv[1].failed_preflights, -kv[1].preflight_ms, kv[0]),
    )
    rows = [
        f'<tr class="{"blocked" if c.blocked or c.failed_preflights else ""}">'
        f'<td class="url">{e(name)}</td>'
        f"<td>{e(', '.join(sorted(c.methods)) or 'OPTIONS')}</td>{_counts_cells(c)}</tr>"
        for name, c in ordered
    ]
    out = [
        f"<h3>{e(origin)}</h3>",
        _table([("endpoint", ""), ("methods", "")] + _COUNT_HEADERS, rows),
    ]
    blocked = failures(t, verdicts)
    if blocked:
        out.append("<p><b>Failures</b></p>")
        out += [_trace_details(v) for v in blocked[: TRACES_PER_FINDING * 4]]
    redundant = [v for v in verdicts if v.role == "preflight" and v.redundant]
    if redundant:
        out.append("<p><b>Redundant preflights</b></p><ul>")
        out += [
            f"<li>{_exchange_line(v)} · {_ms(duration_ms(v))}"
            + (f" · cause: <code>{e(v.redundant_cause)}</code>" if v.redundant_cause else "")
            + "</li>"
            for v in redundant[:50]
        ]
        out.append("</ul>")
    return "".join(out)


def _exchange_rows(report: Report, t: Tally) -> str:
    rows = []
    cors = [v for v in report.exchanges if v.role in CORS_ROLES]
    for v in cors[:EXCHANGE_ROWS]:
        ex = v.exchange
        extra = v.cors_error or ""
        if v.role == "preflight" and v.redundant:
            extra = ("redundant; " + extra) if extra else "redundant"
        link = v.preflight_id or ""
        if v.cache:
            link += f" ({v.cache})"
        rows.append(
            f'<tr class="{"blocked" if v.verdict == "blocked" else ""}">'
            f"<td><code>{e(ex.id)}</code></td>"
            f'<td class="n">{e(f"{ex.started - (t.first_started or 0):.3f}")}</td>'
            f'<td>{e(v.origin)}</td><td>{e(ex.method)}</td><td class="url">{e(ex.url)}</td>'
            f'<td class="n">{e(ex.status if ex.status is not None else "–")}</td>'
            f"<td>{e(v.role)}</td>"
            f'<td class="v-{e(v.verdict)}">{e(v.verdict)}</td><td>{e(link)}</td>'
            f'<td class="err">{_camel_breaks(e(extra))}</td>'
            f'<td class="n">{e(_ms(duration_ms(v)))}</td></tr>'
        )
    table = _table(
        [
            ("id", ""),
            ("t (s)", "n"),
            ("origin", ""),
            ("method", ""),
            ("URL", ""),
            ("status", "n"),
            ("role", ""),
            ("verdict", ""),
            ("preflight", ""),
            ("CORS error / note", ""),
            ("time", "n"),
        ],
        rows,
    )
    note = (
        f'<p class="where">Showing the first {EXCHANGE_ROWS} of {len(cors)}.</p>'
        if len(cors) > EXCHANGE_ROWS
        else ""
    )
    return (
        f"<details><summary>All {len(cors)} cross-origin exchanges "
        f"(preflights and requests) in capture order</summary>{note}"
        f'<div class="scroll">{table}</div></details>'
    )


def _png(fig: object) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=96)  # type: ignore[attr-defined]
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _charts(report: Report) -> str:
    try:
        from . import plots
    except MissingDependency as err:  # pragma: no cover - matplotlib is a dependency
        return f'<p class="where">{e(err)}</p>'
    charts: list[tuple[str, Callable[[Report], object], str]] = [
        (
            "Timeline",
            plots.timeline,
            (
                "Preflights (diamonds) with the cache lifetime each bought (bars), and requests "
                "(circles: blue when a preflight was sent, green on a cache hit; red crosses when "
                "blocked)."
            ),
        ),
        (
            "Preflight overhead",
            plots.preflight_overhead,
            "Time spent in preflights per endpoint; the hatched part was avoidable.",
        ),
        (
            "Verdicts by origin",
            plots.verdicts_by_origin,
            "Cross-origin requests per page origin; blocked ones split by CorsError.",
        ),
    ]
    out = []
    for title, draw, caption in charts:
        try:
            data = _png(draw(report))
        except MissingDependency as err:
            return f'<p class="where">{e(err)}</p>'
        except (ValueError, OverflowError, OSError):
            # Times of a damaged capture (NaN, infinite, past year 9999) cannot be placed on
            # an axis: the page goes without this chart rather than without everything.
            out.append(f'<p class="where">{e(title)}: not drawn, the capture\'s times are '
                       "out of range</p>")
            continue
        out.append(
            f'<figure><img alt="{e(title)} chart" src="data:image/png;base64,{data}">'
            f"<figcaption>{e(caption)}</figcaption></figure>"
        )
    return "".join(out)


def _diagnostics(report: Report) -> str:
    if not (report.skipped_by_reason or report.skipped or report.notes):
        return ""
    items = [f"<li>{e(n)} skipped: {e(reason)}</li>" for reason, n in report.skipped_by_reason]
    items += [
        f"<li>skipped {e(s.path)} {e(s.where)}: {e(s.reason)}</li>" for s in report.skipped[:50]
    ]
    items += [f"<li>note: {e(n)}</li>" for n in report.notes]
    return f'<h2 id="diagnostics">Diagnostics</h2><ul>{"".join(items)}</ul>'


# --------------------------------------------------------------------------- page


def _security_section(findings: Sequence[Finding], t: Tally) -> str:
    """The passive security review, per server origin (the findings above hold them too)."""
    out = ['<h2 id="security">Security review (CWE-942)</h2>']
    by_server = security_by_server(findings)
    if not by_server:
        return out[0] + "<p>No CORS misconfiguration shown by this capture.</p>"
    for server, group in by_server.items():
        out.append(f'<h3 class="url">{e(server)}</h3>')
        out += [_finding(f, t, CATALOGUE[f.code].why if f.code in CATALOGUE else None)
                for f in group]
    return "".join(out)


def render_html(report: Report, *, charts: bool = True, title: str = "CORS report") -> str:
    """The whole report as one self-contained HTML document."""
    t = tally(report)
    sources = ", ".join(f"{s.path} ({s.format})" for s in report.sources) or "no sources"
    origins = sorted(
        (o for o, c in t.origins.items() if c.requests or c.preflights),
        key=lambda o: (-t.origins[o].blocked, -t.origins[o].preflights, o),
    )
    findings = sorted(report.findings, key=lambda f: SEVERITY_ORDER.get(f.severity, 9))
    generated = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    origin_rows = [
        f'<tr class="{"blocked" if t.origins[o].blocked else ""}"><td class="url">{e(o)}</td>'
        f"{_counts_cells(t.origins[o])}</tr>"
        for o in origins
    ]
    body = [
        f"<header><h1>{e(title)}</h1>",
        (
            f'<p class="meta">{e(sources)} · engine <b>{e(report.engine)}</b> · '
            f"{e(_plural(t.total.exchanges, 'exchange'))} ({e(t.total.other)} not cross-origin)"
            "</p></header>"
        ),
        '<nav><a href="#changes">Changes</a><a href="#findings">Findings</a>'
        '<a href="#security">Security</a><a href="#origins">Origins</a>'
        '<a href="#charts">Charts</a><a href="#exchanges">Exchanges</a>'
        + (
            '<a href="#diagnostics">Diagnostics</a>'
            if report.skipped_by_reason or report.notes
            else ""
        )
        + "</nav>",
        _cards(t),
        changes_html(report, e),
        f'<h2 id="findings">Findings ({len(findings)})</h2>',
        "".join(_finding(f, t) for f in findings) or "<p>No findings: nothing to fix.</p>",
        _security_section(findings, t),
        '<h2 id="origins">Origins</h2>',
        _table([("page origin", "")] + _COUNT_HEADERS, origin_rows)
        if origins
        else "<p>No cross-origin requests in this capture.</p>",
        "".join(_origin_section(report, t, o) for o in origins),
        '<h2 id="charts">Charts</h2>' + (_charts(report) if charts else "<p>Charts left out.</p>"),
        f'<h2 id="exchanges">Exchanges</h2>{_exchange_rows(report, t)}',
        _diagnostics(report),
        f"<footer>corsflow {e(__version__)} · generated {e(generated)}</footer>",
    ]
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{e(title)} · {e(sources)}</title><style>{_STYLE}</style></head>"
        f"<body><main>{''.join(body)}</main></body></html>\n"
    )
