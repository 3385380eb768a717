"""Chromium's CorsError numbers, as NetLog's ``CORS_PREFLIGHT_ERROR`` logs them, to names.

NetLog writes ``network::mojom::CorsError`` as its number (``{"cors-error": 12}``). The
enum is append-only ("Entries should not be renumbered": it feeds UMA histograms,
``services/network/public/mojom/cors.mojom``), and the DevTools Protocol's
``Network.CorsError`` uses the same names without the ``k``. So a number below the table's
length always has the name listed here, whatever Chromium's version; a larger one is a value
added after this table was written: it is reported by number, never guessed.
"""

from __future__ import annotations

CORS_ERRORS: tuple[str, ...] = (
    "DisallowedByMode",                      # 0
    "InvalidResponse",                       # 1
    "WildcardOriginNotAllowed",              # 2
    "MissingAllowOriginHeader",              # 3
    "MultipleAllowOriginValues",             # 4
    "InvalidAllowOriginValue",               # 5
    "AllowOriginMismatch",                   # 6
    "InvalidAllowCredentials",               # 7
    "CorsDisabledScheme",                    # 8
    "PreflightInvalidStatus",                # 9
    "PreflightDisallowedRedirect",           # 10
    "PreflightWildcardOriginNotAllowed",     # 11
    "PreflightMissingAllowOriginHeader",     # 12
    "PreflightMultipleAllowOriginValues",    # 13
    "PreflightInvalidAllowOriginValue",      # 14
    "PreflightAllowOriginMismatch",          # 15
    "PreflightInvalidAllowCredentials",      # 16
    "PreflightMissingAllowPrivateNetwork",   # 17
    "PreflightInvalidAllowPrivateNetwork",   # 18
    "InvalidAllowMethodsPreflightResponse",  # 19
    "InvalidAllowHeadersPreflightResponse",  # 20
    "MethodDisallowedByPreflightResponse",   # 21
    "HeaderDisallowedByPreflightResponse",   # 22
    "RedirectContainsCredentials",           # 23
    "InsecurePrivateNetwork",                # 24
    "InvalidPrivateNetworkAccess",           # 25
    "UnexpectedPrivateNetworkAccess",        # 26
)
"""``network::mojom::CorsError`` in enum order (index = the number NetLog writes)."""


def cors_error_name(number: object) -> str | None:
    """The ``Network.CorsError`` name of a logged number; None when not a known one."""
    if number.__class__ is not int:
        return None
    assert isinstance(number, int)
    return CORS_ERRORS[number] if 0 <= number < len(CORS_ERRORS) else None
