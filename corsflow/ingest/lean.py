"""What a reading process keeps of a response: the header fields the analysis reads.

A response's other fields, often most of them, need not be normalised, encoded, sent to
the analysing process and decoded there (:mod:`corsflow.reading`). Readers that build
their exchanges' headers themselves can leave them out as they go (:func:`field_read`);
:func:`response_fields_read` does it to any exchange. The report is the same either way.
"""

from __future__ import annotations

from ..memo import capture_memo
from ..model import Exchange, Headers, Response

RESPONSE_FIELDS_READ = frozenset({"location", "vary", "set-cookie"})
"""Besides the Access-Control-* fields: the response header fields the analysis reads (the
engine, Location and Vary; the security review, Vary and Set-Cookie: a test holds this to
``findings.security.REVIEWED_RESPONSE_FIELDS``, which is not imported here to keep this
module light)."""


@capture_memo(4096)
def field_read(name: str) -> bool:
    """Whether the analysis reads the response header field ``name``: remembered, since a
    capture writes the same few dozen names thousands of times (bounded: a hostile one may
    write a new name every time)."""
    low = name.lower()
    return low.startswith("access-control-") or low in RESPONSE_FIELDS_READ


def fields_read(items: tuple[tuple[str, str], ...]) -> tuple[tuple[str, str], ...]:
    """The response header fields among ``items`` that the analysis reads, in order."""
    return tuple([item for item in items if field_read(item[0])])


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
