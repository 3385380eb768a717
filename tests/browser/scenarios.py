"""The scenario table: what the API answers on each path and which fetches the page makes.

Every scenario owns the path ``/s/<name>`` (and sub-paths for redirects or per-URL cases).
Its steps are ``fetch()`` calls made from the page's origin. Steps of sequential scenarios
run one after the other; steps with an ``at`` offset belong to the timed cache block, where
the timers of different URLs overlap so that the waits the preflight cache needs are paid
once. Unless a scenario is about one URL (``same_url``), each step gets its own URL
(``?s=<scenario>&n=<k>``), so the report's exchanges can be matched to the browser's truth by
(method, URL, order).

``preflight`` on a step is the author's claim that the request is not CORS-simple; the
browser's own behaviour (a preflight on the first such request) is checked against it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from .server import Reply, Route

H = tuple[tuple[str, str], ...]

ACAO = "Access-Control-Allow-Origin"
ACAC = "Access-Control-Allow-Credentials"
ACAM = "Access-Control-Allow-Methods"
ACAH = "Access-Control-Allow-Headers"
MAX_AGE = "Access-Control-Max-Age"

EVIL = "http://evil.example"


@dataclass(frozen=True, slots=True)
class Step:
    """One fetch() call."""

    method: str = "GET"
    headers: H = ()
    body: str | None = None
    credentials: str = "omit"
    sub: str = ""
    """Sub-path below the scenario's path (``"/1"``), for per-URL cases."""
    preflight: bool = False
    """True when the request is not CORS-simple, so the browser must preflight or hit."""
    at: float | None = None
    """Offset (s) from the start of the scenario's timed block; None when sequential."""
    cache_disabled: bool = False
    """Made while DevTools' cache is disabled (``Network.setCacheDisabled``)."""
    cache: str = "default"
    """fetch()'s cache mode (``no-store``, ``reload``, ``no-cache``, ``force-cache``...)."""
    frame: str = "top"
    """Where the fetch runs: ``top`` (the page) or a sandboxed iframe with an opaque origin,
    ``opaque-a`` / ``opaque-b`` (each keeps its frame, hence its origin, between steps)."""
    origin: str = "api"
    """Which server the URL names: ``api`` (cross-origin) or ``page`` (same-origin)."""


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    routes: dict[str, Route]
    """Keyed by sub-path; ``""`` is ``/s/<name>`` itself."""
    steps: tuple[Step, ...]
    same_url: bool = False
    block: str = "sequential"
    """``sequential``, ``timed`` (the overlapping cache block) or ``nocache`` (a timed block
    of its own, since disabling the cache affects the whole page)."""
    control: str | None = None
    """For a cache-disabled scenario: the scenario with the same steps run with the cache on;
    its hits say which of this scenario's preflights a cache would have saved."""
    about: str = ""
    url_length: int | None = None
    """Pad the query so that every URL of the scenario is exactly this long."""

    def path(self, sub: str = "") -> str:
        return f"/s/{self.name}{sub}"

    def url(self, api_origin: str, k: int, page_origin: str = "") -> str:
        step = self.steps[k]
        query = f"?s={self.name}" if self.same_url else f"?s={self.name}&n={k}"
        base = page_origin if step.origin == "page" else api_origin
        url = f"{base}{self.path(step.sub)}{query}"
        if self.url_length is not None:
            pad = self.url_length - len(url) - len("&pad=")
            assert pad >= 0, (self.name, len(url))
            url += "&pad=" + "x" * pad
        return url


def actual(*extra: tuple[str, str], status: int = 200, acao: str | None = "{origin}") -> Reply:
    headers = ((ACAO, acao),) if acao is not None else ()
    return Reply(status, headers + tuple(extra))


def preflight(
    *extra: tuple[str, str],
    status: int = 200,
    acao: str | None = "{origin}",
    methods: str | None = "{acrm}",
    headers: str | None = "{acrh}",
    max_age: str | None = "600",
) -> Reply:
    """A preflight answer; by default one that allows exactly what was asked for 600 s."""
    out: list[tuple[str, str]] = []
    if acao is not None:
        out.append((ACAO, acao))
    if methods is not None:
        out.append((ACAM, methods))
    if headers is not None:
        out.append((ACAH, headers))
    if max_age is not None:
        out.append((MAX_AGE, max_age))
    return Reply(status, tuple(out) + tuple(extra), b"")


XA = (("X-A", "1"),)
XB = (("X-B", "1"),)
JSON = (("Content-Type", "application/json"),)


def _one(name: str, route: Route, *steps: Step, about: str = "", **kw: object) -> Scenario:
    return Scenario(name, {"": route}, tuple(steps), about=about, **kw)  # type: ignore[arg-type]


def _sequential() -> list[Scenario]:
    pf = Step("PUT", XA, "x", preflight=True)
    pf_cred = Step("PUT", XA, "x", credentials="include", preflight=True)
    return [
        # --- successes
        _one("simple-get", Route(actual=actual()), Step(), about="simple GET, ACAO = origin"),
        _one("json-post", Route(preflight(), actual()),
             Step("POST", JSON, '{"a":1}', preflight=True), about="JSON POST, good preflight"),
        _one("wildcards", Route(preflight(acao="*", methods="*", headers="*"), actual(acao="*")),
             Step("PUT", XA, "x", preflight=True),
             about="ACAO/ACAM/ACAH * without credentials"),
        _one("text-plain-post", Route(actual=actual()),
             Step("POST", (("Content-Type", "text/plain;charset=UTF-8"),), "hi"),
             about="text/plain POST is simple: no preflight"),
        _one("long-safelisted-header", Route(preflight(), actual()),
             Step(headers=(("Accept-Language", "en-" + "a" * 130),), preflight=True),
             about="a safelisted header over 128 bytes needs a preflight"),
        _one("preflight-204", Route(preflight(status=204), actual()), pf,
             about="preflight answered 204"),
        _one("credentials-ok", Route(preflight((ACAC, "true")), actual((ACAC, "true"))),
             pf_cred, about="credentialed request, ACAO = origin, ACAC true"),
        _one("redirect-ok", Route(), Step(), about="302 with ACAO to a target with ACAO"),
        # --- the actual response fails the CORS check
        _one("no-acao", Route(actual=actual(acao=None)), Step(),
             about="no ACAO on a simple GET"),
        _one("acao-mismatch", Route(actual=actual(acao=EVIL)), Step(), about="ACAO names another origin"),
        _one("acao-null", Route(actual=actual(acao="null")), Step(), about="ACAO: null"),
        _one("wildcard-credentials", Route(actual=actual((ACAC, "true"), acao="*")),
             Step(credentials="include"), about="ACAO * on a credentialed request"),
        _one("missing-acac", Route(actual=actual()), Step(credentials="include"),
             about="credentialed request, no ACAC"),
        _one("acac-uppercase", Route(actual=actual((ACAC, "TRUE"))), Step(credentials="include"),
             about="ACAC: TRUE is not true"),
        _one("multiple-acao", Route(actual=actual((ACAO, EVIL))), Step(),
             about="two ACAO header lines"),
        _one("invalid-acao", Route(actual=actual(acao="invalid.origin")), Step(),
             about="ACAO is not an origin"),
        _one("actual-no-acao", Route(preflight(), actual(acao=None)), pf,
             about="preflight passes, the actual response lacks ACAO"),
        # --- the preflight fails
        _one("preflight-404-bare", Route(Reply(404, (), b"")), pf,
             about="404 preflight without CORS headers: ACAO is checked before the status"),
        _one("preflight-401-bare", Route(Reply(401, (("WWW-Authenticate", "Bearer"),), b"")), pf,
             about="401 preflight without CORS headers"),
        _one("preflight-404-cors", Route(preflight(status=404)), pf,
             about="404 preflight with CORS headers"),
        _one("preflight-401-cors", Route(preflight(status=401)), pf,
             about="401 preflight with CORS headers"),
        _one("preflight-302", Route(preflight(("Location", "/s/preflight-302/next"), status=302),
                                    actual()), pf, about="302 preflight with CORS headers"),
        _one("preflight-302-bare",
             Route(Reply(302, (("Location", "/s/preflight-302-bare/next"),), b""), actual()), pf,
             about="302 preflight without CORS headers"),
        _one("preflight-no-acao", Route(preflight(acao=None)), pf,
             about="200 preflight without ACAO"),
        _one("preflight-acao-mismatch", Route(preflight(acao=EVIL)), pf,
             about="preflight ACAO names another origin"),
        _one("preflight-wildcard-credentials", Route(preflight((ACAC, "true"), acao="*")),
             pf_cred, about="preflight ACAO * on a credentialed request"),
        _one("preflight-missing-acac", Route(preflight()), pf_cred,
             about="credentialed, preflight without ACAC"),
        _one("preflight-multiple-acao", Route(preflight((ACAO, EVIL))), pf,
             about="two ACAO lines on the preflight"),
        _one("preflight-invalid-acao", Route(preflight(acao="invalid.origin")), pf,
             about="preflight ACAO is not an origin"),
        _one("method-not-allowed", Route(preflight(methods="GET, POST"), actual()), pf,
             about="PUT against ACAM: GET, POST"),
        _one("header-not-allowed", Route(preflight(headers="x-b"), actual()), pf,
             about="X-A against ACAH: x-b"),
        _one("invalid-acam", Route(preflight(methods="PUT, (bad)"), actual()), pf,
             about="ACAM item that is not a token"),
        _one("invalid-acah", Route(preflight(headers="x-a, x/b"), actual()), pf,
             about="ACAH item that is not a token"),
        _one("wildcard-acah-credentials",
             Route(preflight((ACAC, "true"), headers="*"), actual((ACAC, "true"))), pf_cred,
             about="ACAH * is literal with credentials"),
        _one("wildcard-acam-credentials",
             Route(preflight((ACAC, "true"), methods="*"), actual((ACAC, "true"))), pf_cred,
             about="ACAM * is literal with credentials"),
        _one("acam-lowercase-put", Route(preflight(methods="put"), actual()), pf,
             about="PUT against ACAM: put"),
        _one("acah-uppercase", Route(preflight(headers="X-A"), actual()), pf,
             about="x-a against ACAH: X-A (header names are case-insensitive)"),
        _one("acam-omits-post", Route(preflight(methods="PUT"), actual()),
             Step("POST", XA, "x", preflight=True),
             about="POST with X-A, ACAM lists only PUT: safelisted methods always pass"),
        _one("chromium-safelist", Route(actual=actual()),
             Step(headers=(("Save-Data", "on"), ("DPR", "2"), ("Device-Memory", "8"))),
             about="client-hint headers Chromium safelists beyond the standard"),
        _one("chromium-safelist-values", Route(preflight(), actual()),
             Step(headers=(("Save-Data", "off"),), preflight=True),
             about="Chromium checks client-hint values: Save-Data: off needs a preflight"),
        _one("preflight-302-no-location", Route(preflight(status=302), actual()), pf,
             about="302 preflight without Location: a status that is not ok, not a redirect"),
        _one("acao-unparsable", Route(actual=actual(acao="http://[::1")), Step(),
             about="ACAO that does not parse as a URL"),
        # --- method case
        _one("lowercase-patch", Route(preflight(methods="PATCH"), actual()),
             Step("patch", XA, "x", preflight=True),
             about="fetch method 'patch' is not normalised; ACAM lists PATCH"),
        _one("lowercase-patch-listed", Route(preflight(methods="patch"), actual()),
             Step("patch", XA, "x", preflight=True), about="'patch' against ACAM: patch"),
        _one("upper-patch-vs-lower", Route(preflight(methods="patch"), actual()),
             Step("PATCH", XA, "x", preflight=True), about="'PATCH' against ACAM: patch"),
        # --- redirects of the actual request
        _one("redirect-target-no-acao", Route(), Step(),
             about="302 with ACAO to a target without ACAO"),
        _one("redirect-no-acao-on-302", Route(), Step(), about="302 without ACAO"),
        _one("preflighted-redirect-307", Route(), Step("PUT", XA, "x", preflight=True),
             about="PUT + X-A answered 307: the new URL gets its own preflight"),
        _one("preflighted-redirect-302", Route(), Step("POST", XA, "x", preflight=True),
             about="POST + X-A answered 302: a GET that keeps X-A, preflighted"),
        _one("redirect-credentials-in-location", Route(), Step(),
             about="302 to a URL with user:password"),
    ]


def _redirects() -> dict[str, dict[str, Route]]:
    loc = ("Location", "{api}/s/{name}/next")
    return {
        "redirect-ok": {"": Route(actual=actual(loc, status=302)), "/next": Route(actual=actual())},
        "redirect-target-no-acao": {"": Route(actual=actual(loc, status=302)),
                                    "/next": Route(actual=actual(acao=None))},
        "redirect-no-acao-on-302": {"": Route(actual=actual(loc, status=302, acao=None)),
                                    "/next": Route(actual=actual())},
        "preflighted-redirect-307": {
            "": Route(preflight(), actual(loc, status=307)),
            "/next": Route(preflight(), actual())},
        "preflighted-redirect-302": {
            "": Route(preflight(), actual(loc, status=302)),
            "/next": Route(preflight(), actual())},
        "redirect-credentials-in-location": {
            "": Route(actual=actual(("Location", "http://user:secret@{api_host}/s/{name}/next"),
                                    status=302)),
            "/next": Route(actual=actual())},
    }


def _timed() -> list[Scenario]:
    """The preflight-cache scenarios: one URL each, steps at offsets in seconds."""

    def cache(name: str, max_age: str | None, times: tuple[float, ...], *extra_max_age: str,
              about: str = "") -> Scenario:
        pre = preflight(*((MAX_AGE, v) for v in extra_max_age), max_age=max_age)
        steps = tuple(Step("PUT", XA, "x", preflight=True, at=t) for t in times)
        return Scenario(name, {"": Route(pre, actual())}, steps, same_url=True, block="timed",
                        about=about)

    def seq(name: str, route: Route, *steps: Step, about: str = "", **kw: object) -> Scenario:
        timed = tuple(replace(s, at=0.4 * i) for i, s in enumerate(steps))
        return Scenario(name, {"": route}, timed, same_url=True, block="timed", about=about,
                        **kw)  # type: ignore[arg-type]

    put = Step("PUT", XA, "x", preflight=True)
    put_b = Step("PUT", XB, "x", preflight=True)
    auth = Step("PUT", (("Authorization", "Bearer t"),), "x", preflight=True)
    out = [
        cache("maxage-absent", None, (0, 3.0, 6.5), about="no Max-Age: 5 s default"),
        cache("maxage-0", "0", (0, 1.5), about="Max-Age 0: never cached"),
        cache("maxage-2", "2", (0, 0.3, 4.5), about="Max-Age 2: hit at 0.3 s, expired at 4.5 s"),
        cache("maxage-600", "600", (0, 3.0, 6.5), about="Max-Age 600"),
        cache("maxage-86400", "86400", (0, 3.0, 6.5), about="above the cap: clamped, cached"),
        cache("maxage-invalid", "abc", (0, 3.0, 6.5), about="Max-Age abc"),
        cache("maxage-negative", "-1", (0, 1.5), about="Max-Age -1"),
        cache("maxage-fraction", "2.5", (0, 3.0, 6.5), about="Max-Age 2.5"),
        cache("maxage-plus", "+3", (0, 0.3, 4.8), about="Max-Age +3"),
        cache("maxage-twice", "600", (0, 3.0, 6.5), "600", about="two Max-Age lines: 600, 600"),
        Scenario(
            "maxage-per-url",
            {"/1": Route(preflight(), actual()), "/2": Route(preflight(), actual())},
            (Step("PUT", XA, "x", sub="/1", preflight=True, at=0),
             Step("PUT", XA, "x", sub="/2", preflight=True, at=0.2),
             Step("PUT", XA, "x", sub="/1", preflight=True, at=1.0),
             Step("PUT", XA, "x", sub="/2", preflight=True, at=1.2)),
            same_url=True, block="timed", about="two URLs, one Max-Age: one cache entry each",
        ),
        seq("cache-header-replace", Route(preflight(), actual()), put, put_b, put, put,
            about="ACAH echoes the request: X-A, X-B, X-A"),
        seq("cache-erase-on-insufficient", Route(preflight(headers="x-a"), actual()),
            put, put_b, put, about="an insufficient hit whose new preflight fails"),
        seq("cache-superset", Route(preflight(headers="x-a, x-b"), actual()), put, put_b, put,
            about="ACAH lists both: X-A, X-B, X-A all use one entry"),
        seq("cache-method-replace", Route(preflight(methods="{acrm}"), actual()),
            put, Step("DELETE", XA, preflight=True), put, put,
            about="ACAM echoes the request: PUT, DELETE, PUT, PUT"),
        seq("cache-credentials",
            Route(preflight((ACAC, "true")), actual((ACAC, "true"))),
            put, Step("PUT", XA, "x", credentials="include", preflight=True), put,
            Step("PUT", XA, "x", credentials="include", preflight=True),
            about="omit, include, omit, include on one URL"),
        seq("wildcard-authorization", Route(preflight(methods="*", headers="*"), actual()),
            auth, auth, about="ACAH * and an Authorization header"),
        seq("wildcard-cache", Route(preflight(methods="*", headers="*"), actual()), put, put,
            about="ACAM/ACAH *, X-A twice: the second is a cache hit"),
        seq("authorization-listed", Route(preflight(headers="authorization"), actual()),
            auth, auth, about="ACAH lists authorization: the second is a cache hit"),
        seq("url-1023", Route(preflight(), actual()), put, put, url_length=1023,
            about="a 1023-character URL: cached"),
        seq("url-1024", Route(preflight(), actual()), put, put, url_length=1024,
            about="a 1024-character URL: never cached"),
        seq("nocache-control", Route(preflight(), actual()), put, put, put, put,
            about="the control for nocache: the same steps with the cache on"),
    ]
    return out


def _cache_disabled() -> list[Scenario]:
    off = Step("PUT", XA, "x", preflight=True, cache_disabled=True)
    steps = (replace(off, at=0), replace(off, at=0.4), replace(off, at=0.8),
             Step("PUT", XA, "x", preflight=True, at=1.2))
    return [
        Scenario("nocache", {"": Route(preflight(), actual())}, steps, same_url=True,
                 block="nocache", control="nocache-control",
                 about="Network.setCacheDisabled(true), Max-Age 600; the last step with the "
                 "cache enabled again"),
    ]


def all_scenarios() -> list[Scenario]:
    redirects = _redirects()
    out: list[Scenario] = []
    for s in _sequential():
        if s.name in redirects:
            routes = {
                sub: _named(route, s.name) for sub, route in redirects[s.name].items()
            }
            s = replace(s, routes=routes)
        out.append(s)
    return out + _timed() + _cache_disabled()


def _named(route: Route, name: str) -> Route:
    def fix(r: Reply) -> Reply:
        return Reply(r.status, tuple((n, v.replace("{name}", name)) for n, v in r.headers),
                     r.body)

    return Route(fix(route.preflight), fix(route.actual))


def route_table(scenarios: list[Scenario]) -> dict[str, Route]:
    table: dict[str, Route] = {}
    for s in scenarios:
        for sub, route in s.routes.items():
            table[s.path(sub)] = route
    return table
