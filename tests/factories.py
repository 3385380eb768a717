"""Small builders of exchanges for the engine's unit tests."""

from __future__ import annotations

from corsflow.model import Exchange, Headers, Response, SourceRef, Timings

PAGE = "http://api.bob.com"
API = "http://bar.other"


def exchange(
    n: int,
    method: str,
    url: str,
    headers: dict[str, str] | list[tuple[str, str]] | None = None,
    *,
    started: float,
    status: int | None = 200,
    response_headers: dict[str, str] | list[tuple[str, str]] | None = None,
    failure: str | None = None,
    finished: float | None = None,
    total_ms: float | None = None,
    resource_type: str | None = None,
    initiator_url: str | None = None,
) -> Exchange:
    def pairs(h: dict[str, str] | list[tuple[str, str]] | None) -> Headers:
        if h is None:
            return Headers()
        return Headers.of(h.items() if isinstance(h, dict) else h)

    response = None
    if status is not None:
        response = Response(status, pairs(response_headers), finished=finished)
    from corsflow.model import ProducerHints

    return Exchange(
        id=f"e{n}", method=method, url=url, request_headers=pairs(headers), started=started,
        source=SourceRef("test.har", "har", n, f"entry {n}"), response=response,
        failure=failure, timings=Timings(total=total_ms) if total_ms is not None else None,
        hints=ProducerHints(resource_type=resource_type, initiator_url=initiator_url),
    )


def preflight(n: int, url: str, method: str, headers: str | None = None, *, origin: str = PAGE,
              started: float, status: int = 204, allow: dict[str, str] | None = None,
              request_extra: dict[str, str] | None = None, **kw: object) -> Exchange:
    req = {"Origin": origin, "Access-Control-Request-Method": method}
    if headers:
        req["Access-Control-Request-Headers"] = headers
    req.update(request_extra or {})
    return exchange(n, "OPTIONS", url, req, started=started, status=status,
                    response_headers=allow or {}, **kw)  # type: ignore[arg-type]


WARM_UP_URL = API + "/warm-up"


def warm_up(first: int, started: float, origin: str = PAGE) -> list[Exchange]:
    """One URL preflighted three times, each result allowing the PUT that follows it (Max-Age
    600): a fresh Firefox session uses no result it stores until then (FIREFOX-FACTS.md), so
    a capture that begins with these shows a session past that warm-up. Ids from
    ``e{first}``, 0.3 s apart from ``started``."""
    allow = {"Access-Control-Allow-Origin": origin, "Access-Control-Allow-Methods": "PUT",
             "Access-Control-Allow-Headers": "x-w", "Access-Control-Max-Age": "600"}
    out: list[Exchange] = []
    for k in range(3):
        t = started + 0.3 * k
        out.append(preflight(first + 2 * k, WARM_UP_URL, "PUT", "x-w", origin=origin,
                             started=t, allow=allow))
        out.append(exchange(first + 2 * k + 1, "PUT", WARM_UP_URL,
                            {"Origin": origin, "X-W": "1"}, started=t + 0.1,
                            response_headers={"Access-Control-Allow-Origin": origin}))
    return out
