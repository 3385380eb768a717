"""What HTTP itself does to header fields before any CORS rule sees them, done once here so
every capture format gets it (a HAR writer may skip what a browser's HTTP stack did).

- Field values lose their leading and trailing whitespace: RFC 9110 #fields.values, "a field
  value does not include leading or trailing whitespace". A HAR that keeps `" *  "` must
  read as `*`, exactly as the same response read from a pcap does.
- A request never carries two Origin fields (Fetch #origin-header: the browser *sets* it),
  so repeated Origin values that are equal are one field listed twice by the capturing tool
  (chrome-har does so), not a header the browser sent twice.
"""

from __future__ import annotations

from operator import itemgetter

from ..model import Exchange, Headers, Response

_OWS = " \t"


def _trimmed(headers: Headers) -> Headers | None:
    """The headers with trimmed values, or None when none needs it (the common case)."""
    strip = str.strip
    for _, value in headers.items:
        if strip(value, _OWS) != value:  # one C call per value (same object when kept)
            break
    else:
        return None
    return Headers(tuple((name, value.strip(_OWS)) for name, value in headers.items))


def _one_origin(headers: Headers) -> Headers | None:
    """Equal repeated Origin fields as one (the first); None when there is nothing to drop."""
    # Two Origin fields need "origin" twice in the names: one C pass rules out nearly all.
    if "\n".join(map(itemgetter(0), headers.items)).lower().count("origin") < 2:
        return None
    origins = headers.scan("origin")
    if len(origins) < 2 or len(set(origins)) > 1:
        return None
    seen = False
    kept = []
    for name, value in headers.items:
        if name.lower() == "origin":
            if seen:
                continue
            seen = True
        kept.append((name, value))
    return Headers(tuple(kept))


def normalize(exchange: Exchange) -> Exchange:
    """The exchange as HTTP delivered it to the browser's CORS code (the same object when
    nothing changes)."""
    request = exchange.request_headers
    new_request = _trimmed(request)
    if new_request is not None:
        request = new_request
    single = _one_origin(request)
    if single is not None:
        request = new_request = single
    response = exchange.response
    new_response: Response | None = None
    if response is not None:
        headers = _trimmed(response.headers)
        if headers is not None:
            new_response = Response(response.status, headers, response.reason,
                                    response.http_version, response.finished)
    if new_request is None and new_response is None:
        return exchange
    return exchange.replace_headers(request, new_response or response)
