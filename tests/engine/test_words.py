"""The engines' own words beside corsflow's CorsError codes."""

from __future__ import annotations

from corsflow.engine.words import _FIREFOX, _WEBKIT, FIREFOX_REASONS, engine_reason
from corsflow.findings.catalogue import CATALOGUE

CORS_ERRORS = (
    "MissingAllowOriginHeader", "AllowOriginMismatch", "WildcardOriginNotAllowed",
    "MultipleAllowOriginValues", "InvalidAllowOriginValue", "InvalidAllowCredentials",
    "RedirectContainsCredentials", "PreflightMissingAllowOriginHeader",
    "PreflightAllowOriginMismatch", "PreflightWildcardOriginNotAllowed",
    "PreflightMultipleAllowOriginValues", "PreflightInvalidAllowOriginValue",
    "PreflightInvalidAllowCredentials", "PreflightInvalidStatus", "PreflightDisallowedRedirect",
    "InvalidAllowMethodsPreflightResponse", "InvalidAllowHeadersPreflightResponse",
    "MethodDisallowedByPreflightResponse", "HeaderDisallowedByPreflightResponse",
)


def test_every_cors_error_has_words_in_both_engines() -> None:
    assert set(CORS_ERRORS) <= set(CATALOGUE)
    assert set(CORS_ERRORS) == set(_FIREFOX) == set(_WEBKIT)
    assert set(_FIREFOX.values()) <= set(FIREFOX_REASONS)


def test_firefox_reason_with_mdn_link() -> None:
    r = engine_reason("firefox", "PreflightInvalidStatus")
    assert r is not None
    assert r.words == "CORSPreflightDidNotSucceed"
    assert r.link == ("https://developer.mozilla.org/docs/Web/HTTP/Guides/CORS/Errors/"
                      "CORSPreflightDidNotSucceed")


def test_webkit_words_and_none_for_chromium() -> None:
    r = engine_reason("webkit", "MethodDisallowedByPreflightResponse")
    assert r is not None and r.link is None
    assert r.words == "Method {method} is not allowed by Access-Control-Allow-Methods."
    assert engine_reason("chromium", "MethodDisallowedByPreflightResponse") is None
    assert engine_reason("firefox", None) is None
