"""The catalogue of findings, and the rules that raise them from the engine's verdicts.

Every code has a severity, a one-line description, why it matters and a reference. CORS
failures use Chromium's ``Network.CorsError`` names; the rest are corsflow's own. Findings
about one exchange are raised as soon as its verdict is settled (:func:`findings_for`); those
that need the whole capture (re-preflights a longer Max-Age would have saved, per-URL
fragmentation, avoidable preflights) are accumulated by :class:`Aggregator`, whose state is
one small record per preflight key, not per exchange.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..engine.events import ExchangeVerdict, Finding, Severity
from ..engine.machine import MODEL_CONTRADICTED
from ..engine.profiles import EngineProfile
from ..urls import endpoint, path_template, url_origin, url_path

SPEC = "https://fetch.spec.whatwg.org/"


@dataclass(frozen=True, slots=True)
class Rule:
    code: str
    severity: Severity
    title: str
    why: str
    reference: str


def _r(code: str, severity: Severity, title: str, why: str, reference: str) -> Rule:
    return Rule(code, severity, title, why, reference)


_CORS = "the browser blocked the response: the page's fetch() rejects with a TypeError"
_PREFLIGHT = "the browser refused the preflight, so it never sent the actual request"

CATALOGUE: dict[str, Rule] = {r.code: r for r in (
    _r("MissingAllowOriginHeader", "error", "The response has no Access-Control-Allow-Origin",
       _CORS, SPEC + "#cors-check"),
    _r("AllowOriginMismatch", "error", "Access-Control-Allow-Origin names another origin",
       _CORS, SPEC + "#cors-check"),
    _r("WildcardOriginNotAllowed", "error", "Access-Control-Allow-Origin '*' on a credentialed request",
       _CORS, SPEC + "#cors-protocol-and-credentials"),
    _r("MultipleAllowOriginValues", "error", "Access-Control-Allow-Origin has several values",
       _CORS, SPEC + "#cors-check"),
    _r("InvalidAllowOriginValue", "error", "Access-Control-Allow-Origin is not an origin",
       _CORS, SPEC + "#cors-check"),
    _r("InvalidAllowCredentials", "error", "Access-Control-Allow-Credentials is not 'true'",
       _CORS, SPEC + "#cors-check"),
    _r("RedirectContainsCredentials", "error",
       "A redirect of a CORS request points at a URL with a user name or password", _CORS,
       SPEC + "#http-redirect-fetch"),
    _r("PreflightMissingAllowOriginHeader", "error",
       "The preflight response has no Access-Control-Allow-Origin", _PREFLIGHT,
       SPEC + "#cors-preflight-fetch-0"),
    _r("PreflightAllowOriginMismatch", "error",
       "The preflight's Access-Control-Allow-Origin names another origin", _PREFLIGHT,
       SPEC + "#cors-preflight-fetch-0"),
    _r("PreflightWildcardOriginNotAllowed", "error",
       "The preflight allows origin '*' for a credentialed request", _PREFLIGHT,
       SPEC + "#cors-protocol-and-credentials"),
    _r("PreflightMultipleAllowOriginValues", "error",
       "The preflight's Access-Control-Allow-Origin has several values", _PREFLIGHT,
       SPEC + "#cors-preflight-fetch-0"),
    _r("PreflightInvalidAllowOriginValue", "error",
       "The preflight's Access-Control-Allow-Origin is not an origin", _PREFLIGHT,
       SPEC + "#cors-preflight-fetch-0"),
    _r("PreflightInvalidAllowCredentials", "error",
       "The preflight's Access-Control-Allow-Credentials is not 'true'", _PREFLIGHT,
       SPEC + "#cors-preflight-fetch-0"),
    _r("PreflightInvalidStatus", "error", "The preflight was not answered with a 2xx status",
       _PREFLIGHT, SPEC + "#cors-preflight-fetch-0"),
    _r("PreflightDisallowedRedirect", "error", "The preflight was redirected", _PREFLIGHT,
       SPEC + "#cors-preflight-fetch-0"),
    _r("InvalidAllowMethodsPreflightResponse", "error",
       "Access-Control-Allow-Methods cannot be parsed", _PREFLIGHT,
       SPEC + "#extract-header-list-values"),
    _r("InvalidAllowHeadersPreflightResponse", "error",
       "Access-Control-Allow-Headers cannot be parsed", _PREFLIGHT,
       SPEC + "#extract-header-list-values"),
    _r("MethodDisallowedByPreflightResponse", "error",
       "The method is not in Access-Control-Allow-Methods", _PREFLIGHT,
       SPEC + "#cors-preflight-fetch-0"),
    _r("HeaderDisallowedByPreflightResponse", "error",
       "A request header is not in Access-Control-Allow-Headers", _PREFLIGHT,
       SPEC + "#cors-preflight-fetch-0"),
    _r("RequestBlocked", "error",
       "The browser blocked a request; the capture does not show which check failed",
       "the browser recorded a CORS failure but not the response that caused it",
       SPEC + "#cors-check"),
    _r("RedundantPreflight", "warning", "A preflight was sent although a cached result covered it",
       "each one costs a round trip the preflight cache should have saved",
       SPEC + "#cors-preflight-cache"),
    _r("PreflightWithoutRequest", "info", "A preflight passed but no request followed it",
       "the capture may have lost the request, or the page aborted it",
       SPEC + "#cors-preflight-fetch"),
    _r("RequestWithoutPreflight", "info",
       "Requests that needed a preflight have none in the capture",
       "their verdict cannot be checked: the capturing tool may omit preflights, or they "
       "were sent before the capture began", SPEC + "#cors-preflight-fetch"),
    _r("MaxAgeMissing", "warning", "Preflight responses without Access-Control-Max-Age",
       "browsers then cache the result for 5 seconds only, so most requests re-preflight",
       SPEC + "#http-access-control-max-age"),
    _r("MaxAgeAboveCap", "warning", "Access-Control-Max-Age above the browser's cap",
       "the browser clamps it; the value does not do what it says",
       SPEC + "#cors-preflight-fetch-0"),
    _r("MaxAgeInvalid", "warning", "Access-Control-Max-Age cannot be parsed",
       "browsers fall back to 5 seconds (Firefox caches nothing)",
       SPEC + "#http-access-control-max-age"),
    _r("MaxAgeDisabled", "warning", "Access-Control-Max-Age of 0 or less on repeated preflights",
       "every request pays for a preflight", SPEC + "#http-access-control-max-age"),
    _r("MaxAgeTooShort", "info", "Access-Control-Max-Age shorter than the traffic needs",
       "requests re-preflighted after the cached result expired",
       SPEC + "#http-access-control-max-age"),
    _r("PerUrlPreflights", "warning", "Preflights for many URLs of one endpoint",
       "the preflight cache is keyed by the full URL: no Max-Age helps requests whose path or "
       "query changes", SPEC + "#cors-preflight-cache"),
    _r("AvoidablePreflight", "info", "Preflights caused only by what the client chose to send",
       "a request without that header or content type would need no preflight",
       SPEC + "#cors-safelisted-request-header"),
    _r("AuthorizationWildcardRepreflight", "warning",
       "Access-Control-Allow-Headers '*' with Authorization re-preflights every request",
       "Chromium never lets a cached '*' cover Authorization, so each request preflights again",
       "https://github.com/whatwg/fetch/issues/1278"),
    _r("ModelDisagreement", "warning", "The capture contradicts corsflow's browser model",
       "the browser let through a request the model says it would block: please report it",
       "https://fetch.spec.whatwg.org/"),
)}


def _finding(code: str, message: str, ids: tuple[str, ...], hint: str | None, *,
             origin: str | None = None, url: str | None = None, count: int | None = None,
             saved: int | None = None, severity: Severity | None = None) -> Finding:
    r = CATALOGUE[code]
    return Finding(code, severity or r.severity, message, ids, hint, origin, url, r.reference,
                   count, saved)


# --- CORS failures ---------------------------------------------------------------------------


def _failure_hint(v: ExchangeVerdict, preflight_for: str | None) -> str:
    """The server change that fixes the failure, with the values of this exchange."""
    error = (v.cors_error or "").removeprefix("Preflight")
    ex = v.exchange
    origin = v.origin or "the page's origin"
    path = url_path(ex.url)
    on = (f"the OPTIONS response for {path}" if v.role == "preflight" or preflight_for
          else f"responses to {ex.method} {path}")
    param = v.failed_parameter
    if error == "MissingAllowOriginHeader":
        status = ex.status
        extra = (f" (this one was answered {status}: add the CORS headers to error responses "
                 "too, and answer OPTIONS before authentication)"
                 if status is not None and not 200 <= status <= 299 else "")
        return f"send `Access-Control-Allow-Origin: {origin}` on {on}{extra}"
    if error in ("AllowOriginMismatch", "InvalidAllowOriginValue"):
        return (f"send `Access-Control-Allow-Origin: {origin}` on {on} (the exact origin: "
                "scheme, host and port, no path or trailing slash) and `Vary: Origin`")
    if error == "MultipleAllowOriginValues":
        return (f"send exactly one `Access-Control-Allow-Origin: {origin}` on {on}: two layers "
                "(a framework and a proxy, say) are both adding it")
    if error == "WildcardOriginNotAllowed":
        return (f"for credentialed requests send `Access-Control-Allow-Origin: {origin}` with "
                f"`Access-Control-Allow-Credentials: true` and `Vary: Origin` on {on}, or "
                "send the request without credentials")
    if error == "InvalidAllowCredentials":
        return f"send `Access-Control-Allow-Credentials: true` (exactly, lower case) on {on}"
    if v.cors_error == "RedirectContainsCredentials":
        return (f"redirect {ex.method} {path} to a URL without `user:password@` (got "
                f"{param!r}); send credentials in a header instead")
    if v.cors_error == "PreflightInvalidStatus":
        return (f"answer OPTIONS {path} with 204 (or 200) — the preflight never carries "
                f"cookies or Authorization, so it must pass before any authentication (it "
                f"got {param})")
    if v.cors_error == "PreflightDisallowedRedirect":
        return (f"answer OPTIONS at {ex.url} itself: a preflight never follows redirects "
                "(check for a trailing-slash or http-to-https redirect, and request the final "
                "URL from the page)")
    if v.cors_error == "InvalidAllowMethodsPreflightResponse":
        return (f"send a comma-separated list of method names, e.g. "
                f"`Access-Control-Allow-Methods: GET, POST, PUT`, on {on} (got {param!r})")
    if v.cors_error == "InvalidAllowHeadersPreflightResponse":
        return (f"send a comma-separated list of header names, e.g. "
                f"`Access-Control-Allow-Headers: Content-Type, Authorization`, on {on} "
                f"(got {param!r})")
    if v.cors_error == "MethodDisallowedByPreflightResponse":
        method = param or ex.method
        case = (f"; methods compare case-sensitively, so either send `{method.upper()}` from "
                f"the page or list `{method}`" if method != method.upper() else "")
        return f"add `{method}` to Access-Control-Allow-Methods in {on}{case}"
    if v.cors_error == "HeaderDisallowedByPreflightResponse":
        name = param or "the header"
        pretty = "-".join(p.capitalize() for p in name.split("-"))
        if name == "authorization":
            return (f"list `Authorization` explicitly in Access-Control-Allow-Headers in {on}: "
                    "'*' never covers it")
        return f"add `{pretty}` to Access-Control-Allow-Headers in {on}"
    return f"fix the CORS headers on {on}"


def _failure_message(v: ExchangeVerdict) -> str:
    ex = v.exchange
    requested = ex.request_headers.get("access-control-request-method") or "?"
    what = (f"preflight for {requested} {ex.url}" if v.role == "preflight"
            else f"{ex.method} {ex.url}")
    detail = {
        "MissingAllowOriginHeader": "no Access-Control-Allow-Origin header",
        "AllowOriginMismatch": f"Access-Control-Allow-Origin is {v.failed_parameter!r}, "
                               f"not {v.origin!r}",
        "WildcardOriginNotAllowed": "Access-Control-Allow-Origin is '*' but the request is "
                                    "credentialed",
        "MultipleAllowOriginValues": f"Access-Control-Allow-Origin has several values "
                                     f"{v.failed_parameter!r}",
        "InvalidAllowOriginValue": f"Access-Control-Allow-Origin {v.failed_parameter!r} is not "
                                   "an origin",
        "InvalidAllowCredentials": "the request is credentialed and Access-Control-Allow-"
                                   f"Credentials is {v.failed_parameter or 'absent'!r}",
        "InvalidStatus": f"status {v.failed_parameter}, not 2xx",
        "DisallowedRedirect": "the preflight was redirected",
        "InvalidAllowMethodsPreflightResponse": f"Access-Control-Allow-Methods "
                                                f"{v.failed_parameter!r} cannot be parsed",
        "InvalidAllowHeadersPreflightResponse": f"Access-Control-Allow-Headers "
                                                f"{v.failed_parameter!r} cannot be parsed",
        "MethodDisallowedByPreflightResponse": f"method {v.failed_parameter} is not allowed",
        "RedirectContainsCredentials": f"the redirect to {v.failed_parameter!r} carries "
                                       "credentials",
        "HeaderDisallowedByPreflightResponse": f"request header {v.failed_parameter} is not "
                                               "allowed",
    }.get((v.cors_error or "").removeprefix("Preflight"),
          {"PreflightInvalidStatus": f"status {v.failed_parameter}, not 2xx",
           "PreflightDisallowedRedirect": "the preflight was redirected"}.get(
              v.cors_error or "", v.cors_error or "blocked"))
    origin = f" from {v.origin}" if v.origin else ""
    return f"blocked: {what}{origin}: {detail}"


# --- findings about one exchange ----------------------------------------------------------------


def findings_for(v: ExchangeVerdict, profile: EngineProfile) -> list[Finding]:
    """Findings one settled verdict raises at once."""
    out: list[Finding] = []
    ex = v.exchange
    if v.verdict == "blocked" and v.cors_error:
        # A request blocked by its preflight repeats the preflight's failure: report it once,
        # on the preflight. A failure of the request's own response is its own finding.
        if v.role == "preflighted" and v.cache == "miss" and _preflight_stage(v.cors_error):
            return out
        ids = (ex.id,)
        out.append(_finding(v.cors_error, _failure_message(v), ids, _failure_hint(v, None),
                            origin=v.origin, url=ex.url))
    if v.verdict == "blocked" and not v.cors_error:
        out.append(_finding(
            "RequestBlocked",
            f"blocked: {ex.method} {ex.url}" + (f" from {v.origin}" if v.origin else "")
            + f": the browser recorded {ex.failure or 'a failure'}; the capture does not show "
            "which CORS check failed",
            (ex.id,),
            "record the session with a tool that keeps the responses and preflights (Chrome "
            "DevTools' HAR export, mitmproxy, tcpdump) and run `corsflow explain` on it",
            origin=v.origin, url=ex.url))
    if v.role == "preflight" and v.redundant:
        devtools = v.redundant_cause == "devtools-disable-cache"
        out.append(_finding(
            "RedundantPreflight",
            f"redundant preflight for {ex.url}: a cached result still covered it"
            + (" (the HTTP cache was bypassed: DevTools' 'Disable cache' or a hard reload)"
               if devtools else ""),
            (ex.id,),
            ("untick 'Disable cache' in DevTools before recording: with it, Chromium preflights "
             "every non-simple request" if devtools else
             "nothing to change on the server; check for several tabs or browser profiles, or "
             "a cache partition change between the requests"),
            origin=v.origin, url=ex.url, severity="info" if devtools else None))
    if v.role == "preflight" and v.max_age is not None and v.max_age.problem in (
            "above-cap", "invalid"):
        m = v.max_age
        if m.problem == "above-cap":
            out.append(_finding(
                "MaxAgeAboveCap",
                f"Access-Control-Max-Age {m.raw} on the preflight for {url_path(ex.url)} is "
                f"above {profile.name}'s cap: it is clamped to {m.effective:g} s",
                (ex.id,),
                f"send at most the cap you mean; {profile.name} caches for {m.effective:g} s "
                "whatever is sent (Chromium 7200, Firefox 86400, Safari 600)",
                origin=v.origin, url=ex.url))
        else:
            out.append(_finding(
                "MaxAgeInvalid",
                f"Access-Control-Max-Age {m.raw!r} on the preflight for {url_path(ex.url)} cannot "
                f"be parsed: {profile.name} caches for {m.effective:g} s",
                (ex.id,),
                "send a single integer number of seconds, e.g. `Access-Control-Max-Age: 7200` "
                "(one header, no units)",
                origin=v.origin, url=ex.url))
    if v.role == "preflight" and v.verdict == "allowed" and "authorization" in v.unsafe_headers \
            and profile.wildcard_in_cache == "except-authorization":
        allowed = _allow_headers(v)
        if "*" in allowed and "authorization" not in allowed:
            out.append(_finding(
                "AuthorizationWildcardRepreflight",
                f"the preflight for {url_path(ex.url)} allows headers '*' and the request sends "
                f"Authorization: {profile.name} will preflight every such request",
                (ex.id,),
                "list `Authorization` explicitly in Access-Control-Allow-Headers "
                "(e.g. `Access-Control-Allow-Headers: Authorization, *`)",
                origin=v.origin, url=ex.url))
    if v.unknown_reason == MODEL_CONTRADICTED:
        out.append(_finding(
            "ModelDisagreement",
            f"{ex.method} {ex.url} was sent and answered although the {profile.name} model says "
            f"its preflight {v.preflight_id} fails",
            tuple(i for i in (v.preflight_id, ex.id) if i),
            "please report this capture: the engine profile needs correcting",
            origin=v.origin, url=ex.url))
    return out


def _preflight_stage(cors_error: str) -> bool:
    """Whether a CorsError is one the preflight's response raises."""
    return cors_error.startswith("Preflight") or cors_error.endswith("PreflightResponse")


def _allow_headers(v: ExchangeVerdict) -> set[str]:
    response = v.exchange.response
    if response is None:
        return set()
    value = response.headers.get("access-control-allow-headers") or ""
    return {h.strip().lower() for h in value.split(",") if h.strip()}


# --- findings that need the whole capture ---------------------------------------------------------


@dataclass(slots=True)
class _KeyState:
    """The last allowed preflight of one (origin, URL, method, headers) key."""

    last_id: str
    last_time: float
    last_effective: float
    last_problem: str | None
    last_raw: str | None


@dataclass(slots=True)
class _Group:
    ids: list[str] = field(default_factory=list)
    count: int = 0
    saved: int = 0
    values: set[str] = field(default_factory=set)
    urls: set[str] = field(default_factory=set)


@dataclass(slots=True)
class Aggregator:
    """Accumulates what needs more than one exchange; :meth:`findings` can be called any time."""

    profile: EngineProfile
    keep_ids: int = 50
    """At most this many exchange ids are listed per finding (the count says the rest)."""
    _keys: dict[tuple[str, str, str, tuple[str, ...]], _KeyState] = field(default_factory=dict)
    _max_age: dict[tuple[str, str, str], _Group] = field(default_factory=dict)
    _per_url: dict[tuple[str, str, str], _Group] = field(default_factory=dict)
    _avoidable: dict[tuple[str, str, tuple[str, ...]], _Group] = field(default_factory=dict)
    _without_preflight: dict[str, _Group] = field(default_factory=dict)
    _unpaired: dict[str, _Group] = field(default_factory=dict)

    def _add(self, group: _Group, exchange_id: str) -> None:
        if len(group.ids) < self.keep_ids:
            group.ids.append(exchange_id)

    def add(self, v: ExchangeVerdict) -> None:
        ex = v.exchange
        if v.role == "preflight":
            self._add_preflight(v)
        elif v.role == "preflighted":
            if v.preflight_id is None and v.cache is None:
                g = self._without_preflight.setdefault(v.origin or "", _Group())
                self._add(g, ex.id)
                g.saved += 1
            elif v.cache == "miss" and v.preflight_reasons and all(
                    _client_choice(r) for r in v.preflight_reasons):
                key = (v.origin or "", endpoint(ex.url), v.preflight_reasons)
                g = self._avoidable.setdefault(key, _Group())
                self._add(g, v.preflight_id or ex.id)
                g.saved += 1

    def _add_preflight(self, v: ExchangeVerdict) -> None:
        ex = v.exchange
        origin = v.origin or ""
        if v.verdict == "allowed" and not v.redundant:
            per_url = self._per_url.setdefault(
                (origin, url_origin(ex.url) + path_template(ex.url), ex.method), _Group())
            self._add(per_url, ex.id)
            per_url.saved += 1
            if len(per_url.urls) < 1000:
                per_url.urls.add(ex.url)
        if v.verdict == "allowed" and v.preflight_id is None and self._is_unpaired(v):
            g = self._unpaired.setdefault(origin, _Group())
            self._add(g, ex.id)
            g.saved += 1
        if v.verdict != "allowed" or v.max_age is None:
            return
        key = (origin, ex.url, _requested_method(v), v.unsafe_headers)
        prev = self._keys.get(key)
        m = v.max_age
        server = url_origin(ex.url)
        if m.problem == "missing":
            g = self._max_age.setdefault(("MaxAgeMissing", origin, server), _Group())
            self._add(g, ex.id)
            g.count += 1
            g.urls.add(path_template(ex.url))
        if prev is not None and not v.redundant:
            gap = ex.started - prev.last_time
            # Re-preflighted after the cached result expired, within what a longer Max-Age
            # could have covered: the earlier response's Max-Age cost this preflight.
            if prev.last_effective < gap <= self.profile.max_age_cap:
                code = {"missing": "MaxAgeMissing", "disabled": "MaxAgeDisabled",
                        None: "MaxAgeTooShort"}.get(prev.last_problem)
                if code is not None:
                    g = self._max_age.setdefault((code, origin, server), _Group())
                    if code != "MaxAgeMissing":
                        self._add(g, ex.id)
                        g.count += 1
                    g.saved += 1
                    g.values.add(prev.last_raw if prev.last_raw is not None else "absent")
                    g.urls.add(path_template(ex.url))
        self._keys[key] = _KeyState(ex.id, ex.started, m.effective, m.problem, m.raw)
        if len(self._keys) > 100_000:
            # Bounded: forget the oldest keys (a re-preflight after this many others is rare).
            for old in list(self._keys)[:10_000]:
                del self._keys[old]

    @staticmethod
    def _is_unpaired(v: ExchangeVerdict) -> bool:
        return any(s.step == "Request sent after the preflight" for s in v.trace)

    def notes(self) -> tuple[str, ...]:
        """Report-wide observations about what the capture lacks."""
        missing = sum(g.saved for g in self._without_preflight.values())
        if not missing:
            return ()
        note = (f"{missing} request(s) needed a preflight that is not in the capture (Playwright's "
                "HAR, for one, leaves preflights out): which preflight authorised them, and "
                "whether the cache was used, is unknown")
        return (note,)

    def findings(self) -> list[Finding]:
        out: list[Finding] = []
        cap = self.profile.max_age_cap
        for (code, origin, server), g in sorted(self._max_age.items()):
            paths = ", ".join(sorted(g.urls)[:3]) + ("..." if len(g.urls) > 3 else "")
            where = f"{server} ({paths})"
            saved = (f"; {g.saved} re-preflight(s) followed that a longer Max-Age would have "
                     "saved" if g.saved else "")
            if code == "MaxAgeMissing":
                msg = (f"{g.count} preflight response(s) from {where} to {origin} send no "
                       f"Access-Control-Max-Age, so results are cached for 5 s{saved}")
            elif code == "MaxAgeTooShort":
                msg = (f"{g.saved} preflight(s) from {origin} to {where} were repeated after "
                       f"Access-Control-Max-Age {', '.join(sorted(g.values))} expired")
            else:
                msg = (f"{g.saved} preflight(s) from {origin} to {where} were repeated because "
                       f"Access-Control-Max-Age is {', '.join(sorted(g.values))}")
            hint = (f"send `Access-Control-Max-Age: {cap}` on the OPTIONS responses of {server} "
                    f"({self.profile.name}'s cap)"
                    + (f"; it would have saved {g.saved} preflight(s)" if g.saved else ""))
            severity: Severity | None = "info" if code == "MaxAgeMissing" and not g.saved \
                else None
            out.append(_finding(code, msg, tuple(g.ids), hint, origin=origin, url=server,
                                count=g.count, saved=g.saved, severity=severity))
        for (origin, template, _method), g in sorted(self._per_url.items()):
            if len(g.urls) >= 3 and g.saved >= 3:
                out.append(_finding(
                    "PerUrlPreflights",
                    f"{g.saved} preflights from {origin} for {len(g.urls)}"
                    f"{'+' if len(g.urls) >= 1000 else ''} different URLs of {template}: the "
                    "preflight cache is per URL, so Max-Age cannot help",
                    tuple(g.ids),
                    "make these requests simple (no custom headers, a safelisted Content-Type), "
                    "move the varying part out of the URL (into the body), or serve the API "
                    "from the page's own origin",
                    origin=origin, url=template, count=g.saved))
        for (origin, ep, reasons), g in sorted(self._avoidable.items()):
            out.append(_finding(
                "AvoidablePreflight",
                f"{g.saved} preflight(s) from {origin} to {ep} only because of "
                f"{' and '.join(reasons)}",
                tuple(g.ids),
                _avoidable_hint(reasons),
                origin=origin, url=ep, count=g.saved, saved=g.saved))
        for origin, g in sorted(self._without_preflight.items()):
            out.append(_finding(
                "RequestWithoutPreflight",
                f"{g.saved} request(s) from {origin} needed a preflight that is not in the "
                "capture: their verdicts are unknown",
                tuple(g.ids),
                "capture with a tool that records preflights (Chrome DevTools' HAR export, "
                "mitmproxy, or a pcap); Playwright's HAR leaves them out",
                origin=origin, count=g.saved))
        for origin, g in sorted(self._unpaired.items()):
            out.append(_finding(
                "PreflightWithoutRequest",
                f"{g.saved} preflight(s) from {origin} passed but no request followed in the "
                "capture",
                tuple(g.ids),
                "check whether the capture was cut short or the page aborted the requests",
                origin=origin, count=g.saved))
        return out


def _requested_method(v: ExchangeVerdict) -> str:
    return v.exchange.request_headers.get("access-control-request-method") or ""


def _client_choice(reason: str) -> bool:
    """A preflight reason the page's own code could drop (not a method, not Authorization)."""
    if reason.startswith("method "):
        return False
    return reason != "header authorization"


def _avoidable_hint(reasons: tuple[str, ...]) -> str:
    parts = []
    for r in reasons:
        if r.startswith("Content-Type"):
            parts.append("send the body as text/plain (and parse it as JSON on the server)")
        else:
            parts.append(f"drop the {r.removeprefix('header ')} header (or move it into the "
                         "body or the query)")
    return ("; ".join(parts) + "; or, if they must stay, make the preflights cacheable with "
            "`Access-Control-Max-Age: 7200`")


SEVERITY_ORDER = {"error": 0, "warning": 1, "info": 2}


def sort_findings(findings: list[Finding]) -> list[Finding]:
    """Most severe first; then by code and the first exchange, for stable output."""
    return sorted(findings, key=lambda f: (SEVERITY_ORDER[f.severity], f.code,
                                           f.exchange_ids[:1]))
