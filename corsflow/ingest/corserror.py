"""Chromium's CorsError numbers, as NetLog's ``CORS_PREFLIGHT_ERROR`` logs them, to names.

NetLog writes ``network::mojom::CorsError`` as its number (``{"cors-error": 12}``); the
DevTools Protocol's ``Network.CorsError`` uses the same names without the ``k``. The enum's
comment says entries are never renumbered, and values are appended at its end, but the
numbering did move once: older Chromium had two Private Network Access entries (17 and 18,
first named ``...AllowExternal``) that Chromium 156 no longer has, so every later value
moved down by two (156 logs ``MethodDisallowedByPreflightResponse`` as 19, observed by the
browser tests).

So: 0-16 mean the same in every version; from 17 on, a number is named only for the
versions whose numbering was checked against the real browser (156 on). A number outside
what is known (an older or unlabelled log, or a value added after this table) is reported
by its number, never guessed, and the model's own check stands beside it.
"""

from __future__ import annotations

STABLE: tuple[str, ...] = (
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
)
"""Numbers 0-16: the same in every Chromium that logs them."""

SINCE_156: tuple[str, ...] = STABLE + (
    "InvalidAllowMethodsPreflightResponse",  # 17
    "InvalidAllowHeadersPreflightResponse",  # 18
    "MethodDisallowedByPreflightResponse",   # 19
    "HeaderDisallowedByPreflightResponse",   # 20
    "RedirectContainsCredentials",           # 21
)
"""The numbering of Chromium 156 (each value from 17 on observed in tests/browser)."""


def _major(version: str | None) -> int | None:
    head = (version or "").split(".", 1)[0]
    # ASCII digits only (str.isdigit() also takes "²", which int() refuses), and few.
    return int(head) if head.isascii() and head.isdigit() and len(head) <= 6 else None


def cors_error_name(number: object, version: str | None = None) -> str | None:
    """The ``Network.CorsError`` name of a logged number in the Chromium ``version`` that
    wrote the log; None when the number is not one this table can vouch for."""
    if number.__class__ is not int:
        return None
    assert isinstance(number, int)
    major = _major(version)
    table = SINCE_156 if major is not None and major >= 156 else STABLE
    return table[number] if 0 <= number < len(table) else None
