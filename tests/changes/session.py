"""A small session built with the engine's own exchange builders: an SPA calling an API
whose preflights forget X-Trace-Id on per-id URLs, send no Max-Age on /search, and a
payments API whose OPTIONS answer 403 without CORS headers."""

from __future__ import annotations

from corsflow.analysis import Report, analyze_exchanges
from corsflow.model import Exchange
from tests.factories import exchange, preflight

APP = "https://app.example"
API = "https://api.example"
PAY = "https://pay.example"
T0 = 1_763_770_000.0

GOOD = {"Access-Control-Allow-Origin": APP, "Access-Control-Allow-Methods": "GET, PUT",
        "Access-Control-Allow-Headers": "X-Client", "Access-Control-Max-Age": "600"}
NO_TRACE = {**GOOD}
NO_MAX_AGE = {k: v for k, v in GOOD.items() if k != "Access-Control-Max-Age"}
ACAO = {"Access-Control-Allow-Origin": APP}


def build() -> list[Exchange]:
    out: list[Exchange] = []
    n = 0
    t = T0

    def add(e: Exchange) -> None:
        out.append(e)

    # PUT /items/<id> with X-Trace-Id: the preflight does not allow it; Chrome's HAR shows
    # the preflight and the request it blocked (status 0, net::ERR_FAILED).
    for item in (101, 202, 303, 101):
        n += 1
        add(preflight(n, f"{API}/v2/items/{item}", "PUT", "x-trace-id", origin=APP, started=t,
                      allow=NO_TRACE, total_ms=40.0, finished=t + 0.04))
        n += 1
        add(exchange(n, "PUT", f"{API}/v2/items/{item}",
                     {"Origin": APP, "X-Trace-Id": "abc"}, started=t + 0.05, status=None,
                     failure="net::ERR_FAILED"))
        t += 1.0
    # GET /search?q=... with X-Client, no Max-Age: repeated every 10 s on one URL.
    for _ in range(4):
        n += 1
        add(preflight(n, f"{API}/v2/search?q=a", "GET", "x-client", origin=APP, started=t,
                      allow=NO_MAX_AGE, total_ms=30.0, finished=t + 0.03))
        n += 1
        add(exchange(n, "GET", f"{API}/v2/search?q=a", {"Origin": APP, "X-Client": "1"},
                     started=t + 0.04, response_headers=ACAO, finished=t + 0.08))
        t += 10.0
    # POST /charges with Authorization: OPTIONS answered 403 without CORS headers.
    for _ in range(2):
        n += 1
        add(preflight(n, f"{PAY}/v1/charges", "POST", "authorization,content-type",
                      origin=APP, started=t, status=403, allow={}, total_ms=20.0,
                      finished=t + 0.02))
        n += 1
        add(exchange(n, "POST", f"{PAY}/v1/charges",
                     {"Origin": APP, "Authorization": "Bearer x",
                      "Content-Type": "application/json"},
                     started=t + 0.03, status=None, failure="net::ERR_FAILED"))
        t += 1.0
    # A simple GET from a sandboxed iframe (Origin: null) without Allow-Origin.
    n += 1
    add(exchange(n, "GET", f"{API}/v2/public", {"Origin": "null"}, started=t,
                 response_headers={}, finished=t + 0.01))
    return out


def report() -> Report:
    return analyze_exchanges(build())
