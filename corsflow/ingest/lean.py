"""What a reading process keeps of a response: the header fields the analysis reads.

A response's other fields, often most of them, need not be normalised, encoded, sent to
the analysing process and decoded there (:mod:`corsflow.reading`). Readers that build
their exchanges' headers themselves can leave them out as they go (:func:`field_read`);
:func:`response_fields_read` does it to any exchange. The report is the same either way.
"""

from __future__ import annotations

from ..model import Exchange, Headers, Response

RESPONSE_FIELDS_READ = frozenset({"location", "vary", "set-cookie"})
"""Besides the Access-Control-* fields: the response header fields the analysis reads (the
engine, Location and Vary; the security review, Vary and Set-Cookie: a test holds this to
``findings.security.REVIEWED_RESPONSE_FIELDS``, which is not imported here to keep this
module light)."""


def _read_by_analysis(name: str) -> bool:
    low = name.lower()
    return low.startswith("access-control-") or low in RESPONSE_FIELDS_READ


READ: dict[str, bool] = {}
"""Field name as written -> whether the analysis reads it: a capture writes the same few
dozen names thousands of times. ``READ.get`` is the look-up for names seen already (None
for one not seen: :func:`field_read` tells)."""
READ_MAX = 4096
"""Names remembered at most: a hostile capture may write a new one every time."""


def field_read(name: str) -> bool:
    """Whether the analysis reads the response header field ``name`` (remembered)."""
    read = READ.get(name)
    if read is None:
        if len(READ) >= READ_MAX:
            READ.clear()
        read = READ[name] = _read_by_analysis(name)
    return read


def fields_read(items: tuple[tuple[str, str], ...]) -> tuple[tuple[str, str], ...]:
    """The response header fields among ``items`` that the analysis reads, in order."""
    known = READ.get
    # One dict look-up per field, each name lower-cased once per capture.
    return tuple([item for item in items if known(name := item[0]) or (
        name not in READ and field_read(name))])


def response_fields_read(exchange: Exchange) -> Exchange:
    """The exchange with only the response header fields the analysis reads, in their
    order."""
    response = exchange.response
    if response is None:
        return exchange
    items = response.headers.items
    kept = fields_read(items)
    if len(kept) == len(items):
        return exchange
    return exchange.replace_headers(exchange.request_headers, Response(
        response.status, Headers(kept), response.reason, response.http_version,
        response.finished))
