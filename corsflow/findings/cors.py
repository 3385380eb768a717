"""Findings about one exchange, raised as soon as its verdict is settled: CORS failures with the
server change that fixes each, redundant preflights, Max-Age problems, model contradictions.
"""

from __future__ import annotations

from ..changes.safe import NULL_ORIGIN_ADVICE, browser_origin
from ..engine.events import ExchangeVerdict, Finding
from ..engine.machine import MODEL_CONTRADICTED
from ..engine.profiles import EngineProfile
from ..urls import endpoint, path_template, url_path
from .catalogue import make_finding as _finding

# --- CORS failures ---------------------------------------------------------------------------


def _got(v: ExchangeVerdict) -> str | None:
    """What the failed check was about: the browser's failed parameter, or for the errors
    it names none for, the preflight's own status or unparsable header."""
    if v.failed_parameter is not None or v.role != "preflight":
        return v.failed_parameter
    ex = v.exchange
    if v.cors_error == "PreflightInvalidStatus":
        return None if ex.status is None else str(ex.status)
    name = {"InvalidAllowMethodsPreflightResponse": "access-control-allow-methods",
            "InvalidAllowHeadersPreflightResponse": "access-control-allow-headers"}.get(
                v.cors_error or "")
    if name is None or ex.response is None:
        return None
    return ", ".join(ex.response.headers.scan(name)) or None


def _failure_hint(v: ExchangeVerdict, preflight_for: str | None) -> str:
    """The server change that fixes the failure, with the values of this exchange."""
    error = (v.cors_error or "").removeprefix("Preflight")
    ex = v.exchange
    # Advice names the origin as the browser serialises it, and never `null`.
    safe_origin = browser_origin(v.origin)
    origin = safe_origin or "the page's origin"
    path = path_template(ex.url)
    on = (f"the OPTIONS response for {path}" if v.role == "preflight" or preflight_for
          else f"responses to {ex.method} {path}")
    param = _got(v)
    if safe_origin is None and v.origin is not None and error in (
            "MissingAllowOriginHeader", "AllowOriginMismatch", "InvalidAllowOriginValue",
            "MultipleAllowOriginValues", "WildcardOriginNotAllowed"):
        return NULL_ORIGIN_ADVICE
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
        return (f"answer OPTIONS at {endpoint(ex.url)} itself: a preflight never follows redirects "
                "(check for a trailing-slash or http-to-https redirect, and request the final "
                "URL from the page)")
    if v.cors_error in ("PreflightMissingAllowPrivateNetwork",
                        "PreflightInvalidAllowPrivateNetwork"):
        return _private_network_hint(origin, on)
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


def _private_network_hint(origin: str, on: str) -> str:
    return (f"if this private-network server is meant to be reached from {origin}, send "
            f"`Access-Control-Allow-Private-Network: true` (exactly) on {on}, together with an "
            "exact Access-Control-Allow-Origin; otherwise leave it out: the browser is "
            "protecting the device")


def _failure_message(v: ExchangeVerdict) -> str:
    ex = v.exchange
    requested = ex.request_headers.get("access-control-request-method") or "?"
    where = endpoint(ex.url)
    what = (f"preflight for {requested} {where}" if v.role == "preflight"
            else f"{ex.method} {where}")
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
        "InvalidStatus": f"status {_got(v)}, not 2xx",
        "DisallowedRedirect": "the preflight was redirected",
        "InvalidAllowMethodsPreflightResponse": f"Access-Control-Allow-Methods "
                                                f"{_got(v)!r} cannot be parsed",
        "InvalidAllowHeadersPreflightResponse": f"Access-Control-Allow-Headers "
                                                f"{_got(v)!r} cannot be parsed",
        "MethodDisallowedByPreflightResponse": f"method {v.failed_parameter} is not allowed",
        "RedirectContainsCredentials": f"the redirect to {v.failed_parameter!r} carries "
                                       "credentials",
        "HeaderDisallowedByPreflightResponse": f"request header {v.failed_parameter} is not "
                                               "allowed",
    }.get((v.cors_error or "").removeprefix("Preflight"),
          {"PreflightInvalidStatus": f"status {_got(v)}, not 2xx",
           "PreflightDisallowedRedirect": "the preflight was redirected",
           "PreflightMissingAllowPrivateNetwork": "no Access-Control-Allow-Private-Network "
                                                  "on a private network preflight",
           "PreflightInvalidAllowPrivateNetwork": f"Access-Control-Allow-Private-Network is "
                                                  f"{v.failed_parameter!r}, not 'true'"}.get(
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
                            origin=v.origin, url=endpoint(ex.url)))
    if v.verdict == "blocked" and not v.cors_error:
        out.append(_finding(
            "RequestBlocked",
            f"blocked: {ex.method} {endpoint(ex.url)}" + (f" from {v.origin}" if v.origin else "")
            + f": the browser recorded {ex.failure or 'a failure'}; the capture does not show "
            "which CORS check failed",
            (ex.id,),
            "record the session with a tool that keeps the responses and preflights (Chrome "
            "DevTools' HAR export, mitmproxy, tcpdump) and run `corsflow explain` on it",
            origin=v.origin, url=endpoint(ex.url)))
    if v.role == "preflight" and v.redundant:
        devtools = v.redundant_cause == "devtools-disable-cache"
        no_cache = v.redundant_cause == "fetch-no-cache"
        out.append(_finding(
            "RedundantPreflight",
            f"redundant preflight for {endpoint(ex.url)}: a cached result still covered it"
            + (" (the cache was bypassed: DevTools' 'Disable cache', a hard reload, or fetch() "
               "with cache 'no-store' or 'reload')" if devtools else
               " (fetch() with cache 'no-cache': the preflight cache is not looked up)"
               if no_cache else ""),
            (ex.id,),
            ("untick 'Disable cache' in DevTools before recording, and check the page's "
             "fetch() cache option: with either, the browser preflights every non-simple "
             "request" if devtools else
             "drop cache: 'no-cache' from the page's fetch() where the response may be "
             f"revalidated anyway: {profile.name} preflights every such request" if no_cache
             else "nothing to change on the server; check for several tabs or browser "
             "profiles, or a cache partition change between the requests"),
            origin=v.origin, url=endpoint(ex.url),
            severity="info" if devtools or no_cache else None))
    if v.role == "preflight" and v.max_age is not None and v.max_age.problem in (
            "above-cap", "invalid"):
        m = v.max_age
        if m.problem == "above-cap":
            out.append(_finding(
                "MaxAgeAboveCap",
                f"Access-Control-Max-Age {m.raw} on the preflight for {path_template(ex.url)} is "
                f"above {profile.name}'s cap: it is clamped to {m.effective:g} s",
                (ex.id,),
                f"send at most the cap you mean; {profile.name} caches for {m.effective:g} s "
                "whatever is sent (Chromium 7200, Firefox 86400, Safari 600)",
                origin=v.origin, url=endpoint(ex.url)))
        else:
            out.append(_finding(
                "MaxAgeInvalid",
                f"Access-Control-Max-Age {m.raw!r} on the preflight for {path_template(ex.url)} cannot "
                f"be parsed: {profile.name} caches for {m.effective:g} s",
                (ex.id,),
                "send a single integer number of seconds, e.g. `Access-Control-Max-Age: 7200` "
                "(one header, no units)",
                origin=v.origin, url=endpoint(ex.url)))
    if v.role == "preflight" and v.verdict == "allowed" and "authorization" in v.unsafe_headers \
            and profile.wildcard_in_cache == "except-authorization":
        allowed = _allow_headers(v)
        if "*" in allowed and "authorization" not in allowed:
            out.append(_finding(
                "AuthorizationWildcardRepreflight",
                f"the preflight for {path_template(ex.url)} allows headers '*' and the request sends "
                f"Authorization: {profile.name} will preflight every such request",
                (ex.id,),
                "list `Authorization` explicitly in Access-Control-Allow-Headers "
                "(e.g. `Access-Control-Allow-Headers: Authorization, *`)",
                origin=v.origin, url=endpoint(ex.url)))
    if v.role == "preflight" and v.private_network_warning:
        out.append(_finding(
            "PrivateNetworkAccessWarning",
            f"the private network preflight for {url_path(ex.url)}"
            + (f" from {v.origin}" if v.origin else "")
            + f" fails its private-network check ({v.private_network_warning}); the browser "
            "only warned and sent the request",
            (ex.id,),
            _private_network_hint(v.origin or "the page's origin",
                                  f"the OPTIONS response for {url_path(ex.url)}"),
            origin=v.origin, url=endpoint(ex.url)))
    if v.unknown_reason == MODEL_CONTRADICTED:
        out.append(_finding(
            "ModelDisagreement",
            f"{ex.method} {endpoint(ex.url)} was sent and answered although the {profile.name} model says "
            f"its preflight {v.preflight_id} fails",
            tuple(i for i in (v.preflight_id, ex.id) if i),
            "please report this capture: the engine profile needs correcting",
            origin=v.origin, url=endpoint(ex.url)))
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
