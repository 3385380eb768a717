"""Each engine's own words for a CORS failure, beside Chromium's ``Network.CorsError`` code.

Firefox names its failures in the console (the category of the nsIScriptError it logs:
``CORSMissingAllowOrigin2``...) and MDN documents each under that name, without the trailing
digit. WebKit logs a sentence. Both mappings were read off the real browsers by the
browser-truth tests (tests/browser/test_engine_facts.py, FIREFOX-FACTS.md and
WEBKIT-FACTS.md), scenario by scenario.
"""

from __future__ import annotations

from dataclasses import dataclass

MDN_CORS_ERRORS = "https://developer.mozilla.org/docs/Web/HTTP/Guides/CORS/Errors/"


@dataclass(frozen=True, slots=True)
class EngineReason:
    """What the engine says for one failure."""

    engine: str
    words: str
    """Firefox: the reason's name (``CORSMissingAllowOrigin``); WebKit: its console message,
    with ``{origin}``, ``{method}``, ``{header}``... left as placeholders."""
    link: str | None = None


# Firefox console category (as logged) -> what its message says, for the names seen.
FIREFOX_REASONS: dict[str, str] = {
    "CORSMissingAllowOrigin2": "CORS header 'Access-Control-Allow-Origin' missing",
    "CORSAllowOriginNotMatchingOrigin": "CORS header 'Access-Control-Allow-Origin' does not "
                                        "match",
    "CORSNotSupportingCredentials": "Credential is not supported if the CORS header "
                                    "'Access-Control-Allow-Origin' is '*'",
    "CORSMissingAllowCredentials": "expected 'true' in CORS header "
                                   "'Access-Control-Allow-Credentials'",
    "CORSMultipleAllowOriginNotAllowed": "Multiple CORS header 'Access-Control-Allow-Origin' "
                                         "not allowed",
    "CORSPreflightDidNotSucceed3": "CORS preflight response did not succeed",
    "CORSExternalRedirectNotAllowed": "CORS request external redirect not allowed",
    "CORSMethodNotFound": "Did not find method in CORS header "
                          "'Access-Control-Allow-Methods'",
    "CORSMissingAllowHeaderFromPreflight2": "header not allowed according to header "
                                            "'Access-Control-Allow-Headers' from CORS preflight "
                                            "response",
    "CORSInvalidAllowMethod": "invalid token in CORS header 'Access-Control-Allow-Methods'",
    "CORSInvalidAllowHeader": "invalid token in CORS header 'Access-Control-Allow-Headers'",
    "CORSDidNotSucceed2": "CORS request did not succeed",
}

# corsflow's code (Chromium's CorsError) -> the category Firefox logged for the same failure.
_FIREFOX: dict[str, str] = {
    "MissingAllowOriginHeader": "CORSMissingAllowOrigin2",
    "AllowOriginMismatch": "CORSAllowOriginNotMatchingOrigin",
    "InvalidAllowOriginValue": "CORSAllowOriginNotMatchingOrigin",
    "WildcardOriginNotAllowed": "CORSNotSupportingCredentials",
    "MultipleAllowOriginValues": "CORSMultipleAllowOriginNotAllowed",
    "InvalidAllowCredentials": "CORSMissingAllowCredentials",
    "RedirectContainsCredentials": "CORSDidNotSucceed2",
    "PreflightMissingAllowOriginHeader": "CORSMissingAllowOrigin2",
    "PreflightAllowOriginMismatch": "CORSAllowOriginNotMatchingOrigin",
    "PreflightInvalidAllowOriginValue": "CORSAllowOriginNotMatchingOrigin",
    "PreflightWildcardOriginNotAllowed": "CORSNotSupportingCredentials",
    "PreflightMultipleAllowOriginValues": "CORSMultipleAllowOriginNotAllowed",
    "PreflightInvalidAllowCredentials": "CORSMissingAllowCredentials",
    "PreflightInvalidStatus": "CORSPreflightDidNotSucceed3",
    "PreflightDisallowedRedirect": "CORSExternalRedirectNotAllowed",
    "InvalidAllowMethodsPreflightResponse": "CORSInvalidAllowMethod",
    "InvalidAllowHeadersPreflightResponse": "CORSInvalidAllowHeader",
    "MethodDisallowedByPreflightResponse": "CORSMethodNotFound",
    "HeaderDisallowedByPreflightResponse": "CORSMissingAllowHeaderFromPreflight2",
}

# corsflow's code -> WebKit's console message (WebKitGTK 2.50) for the same failure.
_WEBKIT: dict[str, str] = {
    "MissingAllowOriginHeader": "Origin {origin} is not allowed by "
                                "Access-Control-Allow-Origin. Status code: {status}",
    "AllowOriginMismatch": "Origin {origin} is not allowed by Access-Control-Allow-Origin. "
                           "Status code: {status}",
    "InvalidAllowOriginValue": "Origin {origin} is not allowed by "
                               "Access-Control-Allow-Origin. Status code: {status}",
    "WildcardOriginNotAllowed": "Cannot use wildcard in Access-Control-Allow-Origin when "
                                "credentials flag is true.",
    "MultipleAllowOriginValues": "Access-Control-Allow-Origin cannot contain more than one "
                                 "origin.",
    "InvalidAllowCredentials": "Credentials flag is true, but Access-Control-Allow-Credentials "
                               "is not \"true\".",
    "RedirectContainsCredentials": "Cross-origin redirection to {url} denied by Cross-Origin "
                                   "Resource Sharing policy: redirection URL {url} has "
                                   "credentials",
    "PreflightMissingAllowOriginHeader": "Origin {origin} is not allowed by "
                                         "Access-Control-Allow-Origin. Status code: {status}",
    "PreflightAllowOriginMismatch": "Origin {origin} is not allowed by "
                                    "Access-Control-Allow-Origin. Status code: {status}",
    "PreflightInvalidAllowOriginValue": "Origin {origin} is not allowed by "
                                        "Access-Control-Allow-Origin. Status code: {status}",
    "PreflightWildcardOriginNotAllowed": "Cannot use wildcard in Access-Control-Allow-Origin "
                                         "when credentials flag is true.",
    "PreflightMultipleAllowOriginValues": "Access-Control-Allow-Origin cannot contain more "
                                          "than one origin.",
    "PreflightInvalidAllowCredentials": "Credentials flag is true, but "
                                        "Access-Control-Allow-Credentials is not \"true\".",
    "PreflightInvalidStatus": "Preflight response is not successful. Status code: {status}",
    "PreflightDisallowedRedirect": "Preflight response is not successful. Status code: "
                                   "{status}",
    "InvalidAllowMethodsPreflightResponse": "Header Access-Control-Allow-Methods has an "
                                            "invalid value: {value}",
    "InvalidAllowHeadersPreflightResponse": "Header Access-Control-Allow-Headers has an "
                                            "invalid value: {value}",
    "MethodDisallowedByPreflightResponse": "Method {method} is not allowed by "
                                           "Access-Control-Allow-Methods.",
    "HeaderDisallowedByPreflightResponse": "Request header field {header} is not allowed by "
                                           "Access-Control-Allow-Headers.",
}


def mdn_link(category: str) -> str:
    """MDN's page for a Firefox reason: its name without the version digit."""
    return MDN_CORS_ERRORS + category.rstrip("0123456789")


def engine_reason(engine: str, cors_error: str | None) -> EngineReason | None:
    """The engine's own words for corsflow's code, or None (Chromium: the code is its own
    word; an unknown code; no error)."""
    if cors_error is None:
        return None
    if engine == "firefox":
        category = _FIREFOX.get(cors_error)
        if category is None:
            return None
        return EngineReason("firefox", category.rstrip("0123456789"), mdn_link(category))
    if engine == "webkit":
        words = _WEBKIT.get(cors_error)
        return EngineReason("webkit", words) if words else None
    return None
