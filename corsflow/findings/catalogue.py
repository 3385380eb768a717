"""The catalogue of findings: every code with its severity, title, why it matters and a reference.

CORS failures use Chromium's ``Network.CorsError`` names; the rest are corsflow's own. The
rules that raise findings live beside this module (:mod:`.cors`, :mod:`.aggregate`); the
report layer only renders them.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..engine.events import Finding, Severity

SPEC = "https://fetch.spec.whatwg.org/"
PNA = "https://wicg.github.io/private-network-access/"
CWE942 = "https://cwe.mitre.org/data/definitions/942.html"
PORTSWIGGER = "https://portswigger.net/research/exploiting-cors-misconfigurations-for-bitcoins-and-bounties"


@dataclass(frozen=True, slots=True)
class Rule:
    code: str
    severity: Severity
    title: str
    why: str
    reference: str
    severity_why: str = ""
    """Why this severity: what it costs the page's users."""
    info_when: str | None = None
    """When a finding of this code is only ``info`` (None: never downgraded)."""
    error_when: str | None = None
    """When a finding of this code is an ``error`` (None: never raised)."""

    @property
    def severity_cell(self) -> str:
        """The severity as README's table writes it."""
        return (self.severity + (f" (info when {self.info_when})" if self.info_when else "")
                + (f" (error when {self.error_when})" if self.error_when else ""))


_BLOCKS = "the page's request fails"

_SEVERITY: dict[str, tuple[str, str | None]] = {
    "PrivateNetworkAccessWarning": (
        "the browser sent the request this time; a later Chromium may block it", None),
    "RequestBlocked": ("the browser blocked the request; only the check is unknown", None),
    "RedundantPreflight": (
        "a preflight the cache should have saved costs a round trip",
        "DevTools' 'Disable cache' sent it: an artefact of recording, not of the site"),
    "PreflightWithoutRequest": (
        "nothing is proven wrong: the capture may have been cut short", None),
    "RequestWithoutPreflight": ("about the capture, not the site", None),
    "MaxAgeMissing": (
        "every request 5 s after the last preflight pays for another one",
        "no re-preflight followed in this capture: it cost nothing here"),
    "MaxAgeAboveCap": (
        "harmless: the browser clamps the value to its cap and caches that long", None),
    "MaxAgeInvalid": ("browsers fall back to 5 s, Firefox to no caching at all", None),
    "MaxAgeDisabled": ("every request pays for a preflight", None),
    "MaxAgeTooShort": (
        ("a short value can be deliberate (policy changes take effect sooner); the changes "
         "list shows what a longer one saves"), None),
    "PerUrlPreflights": ("a preflight per URL that no Max-Age can save", None),
    "AvoidablePreflight": (
        ("the client may need that header or content type; the cost is shown, the choice is "
         "the page's"), None),
    "AuthorizationWildcardRepreflight": ("every such request preflights again", None),
    "ModelDisagreement": ("corsflow's model is wrong here: verdicts near it are doubtful", None),
}


_CREDENTIALED = "the server also sends Access-Control-Allow-Credentials: true"
_SECURITY: dict[str, tuple[str, str | None]] = {
    "OriginReflected": ("any site may read these responses", _CREDENTIALED),
    "NullOriginAllowed": ("sandboxed frames of any site send Origin: null", _CREDENTIALED),
    "LookalikeOriginAllowed": ("a domain anyone can register is trusted", _CREDENTIALED),
    "InsecureOriginAllowed": ("a network attacker can act as the http:// origin", _CREDENTIALED),
    "VaryOriginMissing": ("caches may serve one origin's answer to another", None),
    "WildcardOnCredentialedData": ("any site may read what should be private", None),
    "WildcardIgnoredWithCredentials": ("the policy does not do what it seems to", None),
    "SensitiveHeaderExposed": ("scripts of other origins read a sensitive header", None),
    "PrivateNetworkAccessAllowed": ("a public site may reach a private-network service", None),
}
"""Security findings: why each severity, and when the first four are errors."""


def _r(code: str, severity: Severity, title: str, why: str, reference: str) -> Rule:
    if code in _SECURITY:
        security_why, error_when = _SECURITY[code]
        return Rule(code, severity, title, why, reference, security_why, None, error_when)
    severity_why, info_when = _SEVERITY.get(code, (_BLOCKS, None))
    return Rule(code, severity, title, why, reference, severity_why, info_when)


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
    _r("PreflightMissingAllowPrivateNetwork", "error",
       "A Private Network Access preflight got no Access-Control-Allow-Private-Network",
       _PREFLIGHT, PNA + "#cors-preflight"),
    _r("PreflightInvalidAllowPrivateNetwork", "error",
       "The preflight's Access-Control-Allow-Private-Network is not 'true'", _PREFLIGHT,
       PNA + "#cors-preflight"),
    _r("PrivateNetworkAccessWarning", "warning",
       "A Private Network Access preflight failed its private-network check; the browser "
       "only warned",
       "the browser ran Private Network Access in warning mode; where it is enforced the "
       "request is blocked", PNA + "#cors-preflight"),
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
    _r("MaxAgeAboveCap", "info", "Access-Control-Max-Age above the browser's cap",
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
    # Passive security review (findings/security.py): CWE-942, permissive cross-domain policy.
    _r("OriginReflected", "warning",
       "Access-Control-Allow-Origin echoes whatever Origin is sent",
       "CWE-942: every site can read the responses (with credentials: as the signed-in user); "
       "error when Access-Control-Allow-Credentials is true", PORTSWIGGER),
    _r("NullOriginAllowed", "warning", "Access-Control-Allow-Origin: null",
       "CWE-942: any site can send Origin: null from a sandboxed iframe; error with "
       "credentials", PORTSWIGGER),
    _r("LookalikeOriginAllowed", "warning",
       "An allowed origin only shares a prefix or suffix with the site",
       "CWE-942: a prefix/suffix check trusts names anyone can register "
       "(evil-example.com, example.com.evil.net); error with credentials", PORTSWIGGER),
    _r("InsecureOriginAllowed", "warning", "An http:// origin may read an https:// API",
       "CWE-942: a network attacker can inject script into the plain-http page and read the "
       "API through it; error with credentials", PORTSWIGGER),
    _r("VaryOriginMissing", "warning",
       "Allow-Origin depends on the request's Origin but Vary: Origin is missing",
       "CWE-942 / cache poisoning: a shared cache serves one origin's answer to others, "
       "which then fail or are wrongly allowed", SPEC + "#cors-protocol-and-http-caches"),
    _r("WildcardOnCredentialedData", "warning",
       "Access-Control-Allow-Origin '*' on responses that set cookies or need Authorization",
       "CWE-942: the endpoint handles credentials yet lets every site read its responses",
       SPEC + "#cors-protocol-and-credentials"),
    _r("WildcardIgnoredWithCredentials", "warning",
       "'*' in Allow-Headers, Allow-Methods or Expose-Headers with credentials",
       "with Access-Control-Allow-Credentials: true browsers take '*' literally: it allows "
       "or exposes nothing", SPEC + "#cors-protocol-and-credentials"),
    _r("SensitiveHeaderExposed", "warning",
       "Access-Control-Expose-Headers exposes a credential header",
       "CWE-942: cross-origin pages may read tokens or cookies from the response", CWE942),
    _r("PrivateNetworkAccessAllowed", "warning",
       "A private-network server lets a more public site reach it",
       "CWE-942: Access-Control-Allow-Private-Network: true opens the device to the allowed "
       "site's script", "https://wicg.github.io/private-network-access/"),
    _r("ModelDisagreement", "warning", "The capture contradicts corsflow's browser model",
       "the browser let through a request the model says it would block: please report it",
       "https://fetch.spec.whatwg.org/"),
)}


def make_finding(code: str, message: str, ids: tuple[str, ...], hint: str | None, *,
             origin: str | None = None, url: str | None = None, count: int | None = None,
             saved: int | None = None, severity: Severity | None = None) -> Finding:
    r = CATALOGUE[code]
    if severity is not None and severity != r.severity and not (
            (severity == "info" and r.info_when) or (severity == "error" and r.error_when)):
        # README's table says when a code is downgraded; nothing else may change it.
        raise ValueError(f"{code} is {r.severity_cell}, not {severity}")
    return Finding(code, severity or r.severity, message, ids, hint, origin, url, r.reference,
                   count, saved)



SEVERITY_ORDER = {"error": 0, "warning": 1, "info": 2}


def sort_findings(findings: list[Finding]) -> list[Finding]:
    """Most severe first; then by code and the first exchange, for stable output."""
    return sorted(findings, key=lambda f: (SEVERITY_ORDER[f.severity], f.code,
                                           f.exchange_ids[:1]))
