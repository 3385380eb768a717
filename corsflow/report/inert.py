"""Captured text made inert for each output: a terminal, Markdown, a spreadsheet.

Everything a capture holds (URLs, header names and values, status texts, the producer's
name) was written by someone else and is data, never markup or control: a header value
must not recolour, retitle or clear the reader's terminal, forge report lines, become a
Markdown link, image or mention, or run as a spreadsheet formula. The HTML report escapes
with :func:`html.escape`; this module holds the other outputs' rules.
"""

from __future__ import annotations

import re

# C0 controls (newline and tab included: a captured newline forges a report line), DEL,
# C1 controls (0x9b is a one-byte CSI on many terminals), the Unicode line and paragraph
# separators, and the bidirectional overrides that reorder what a reader sees.
_CONTROL_POINTS = (*range(0x20), *range(0x7F, 0xA0), 0x2028, 0x2029,
                   *range(0x202A, 0x202F), *range(0x2066, 0x206A))
_NAMED = {0x0A: "\\n", 0x0D: "\\r", 0x09: "\\t"}
_VISIBLE = {c: _NAMED.get(c, f"\\x{c:02x}" if c < 0x100 else f"\\u{c:04x}")
            for c in _CONTROL_POINTS}
_HAS_CONTROL = re.compile("[" + "".join(re.escape(chr(c)) for c in _CONTROL_POINTS) + "]")


def visible(value: object) -> str:
    """Captured text with every control character written out (``\\x1b``, ``\\n``): one line,
    nothing a terminal or a log viewer would act on."""
    text = "" if value is None else str(value)
    if _HAS_CONTROL.search(text) is None:
        return text
    return text.translate(_VISIBLE)


def md_code(value: object, *, in_table: bool = True) -> str:
    """Captured text as a Markdown code span: nothing inside one is markup (no emphasis,
    links, autolinks, images, mentions or HTML). In a GFM table a pipe still ends the
    cell unless escaped, even inside a code span."""
    text = visible(value)
    if not text:
        return ""
    if in_table:
        text = text.replace("|", "\\|")
    longest = max((len(run) for run in re.findall("`+", text)), default=0)
    fence = "`" * (longest + 1)
    # CommonMark strips one space on each side of a code span's content: pad both sides so
    # content that starts or ends with a backtick or a space survives as written.
    return f"{fence} {text} {fence}"


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\n", "\uff1d", "\uff0b", "\uff0d", "\uff20")


def csv_cell(value: object) -> str:
    """Captured text for a CSV cell: control characters written out, and a leading
    ``= + - @`` (or their full-width forms, which some spreadsheets also take) quoted, so
    a spreadsheet never evaluates it as a formula. A real method, URL or Origin never starts
    so, so quoting changes nothing legitimate."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    text = str(value)
    quoted = "'" + text if text.lstrip(" ").startswith(_FORMULA_START) else text
    return visible(quoted)
