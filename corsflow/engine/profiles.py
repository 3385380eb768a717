"""What differs between browsers, as data.

Each field says where the fact comes from. Chromium's are checked against the real browser
by the browser-truth tests (tests/browser); when the browser disagrees, the value changes
here, with a note of what the browser did.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

WildcardInCache = Literal["all", "except-authorization", "never"]


@dataclass(frozen=True, slots=True)
class EngineProfile:
    name: str

    max_age_default: int
    """Seconds a result is cached when Access-Control-Max-Age is absent (all engines: 5)."""
    max_age_cap: int
    """The imposed limit on max-age."""
    invalid_max_age_uses_default: bool
    """True: an unparsable Max-Age means the default; False: the result is not cached."""
    max_age_accepts_sign: bool
    """Whether ``-1`` / ``+5`` parse as numbers (then <= 0 means not cached)."""

    merges_entries: bool
    """True: a new preflight adds its methods and headers to the cached entry, each with its
    own expiry (Firefox, the standard). False: it replaces the entry (Chromium, WebKit)."""
    erases_on_insufficient_hit: bool
    """A lookup that finds an entry not covering the request erases it before preflighting."""
    credentials_in_key: bool
    """True: credentialed and uncredentialed results are separate entries (Firefox). False:
    one entry remembers whether it was credentialed; a credentialed result also serves
    uncredentialed requests, not the reverse (Chromium, WebKit, the standard)."""
    wildcard_in_cache: WildcardInCache
    """Whether a cached ``*`` in Allow-Methods/-Headers serves later requests."""
    wildcard_covers_authorization_in_check: bool
    """Whether the preflight check itself lets ``Allow-Headers: *`` cover Authorization."""
    max_entries: int | None
    max_url_length: int | None
    """URLs of this many characters or more are never cached."""
    method_uppercased_before_compare: bool
    """Older Chromium's legacy behaviour: the request method is upper-cased before it is
    compared with Allow-Methods (so ``patch`` passes against ``PATCH``)."""
    preflight_status_before_cors_check: bool
    """Firefox checks the preflight's status first; Chromium checks Allow-Origin first."""
    extra_safelisted_headers: frozenset[str]
    sources: tuple[str, ...]
    """Where these facts come from."""


_CHROMIUM_CLIENT_HINTS = frozenset(
    {
        "device-memory", "dpr", "width", "viewport-width", "rtt", "downlink", "ect",
        "save-data", "intervention",
    }
)

CHROMIUM = EngineProfile(
    name="chromium",
    max_age_default=5,
    # services/network/cors/preflight_result.cc: kMaxTimeout = 2 hours (600 s before M76).
    max_age_cap=7200,
    # preflight_result.cc parses with base::StringToInt64; a failure means the default.
    invalid_max_age_uses_default=True,
    max_age_accepts_sign=True,
    # preflight_cache.cc AppendEntry: cache_[key] = result (replace).
    merges_entries=False,
    # preflight_cache.cc CheckIfRequestCanSkipPreflight erases stale and insufficient entries.
    erases_on_insufficient_hit=True,
    credentials_in_key=False,
    # Cache lookups use NonWildcardRequestHeadersSupport(true): '*' never covers
    # Authorization in the cache, while the preflight check itself lets it pass.
    wildcard_in_cache="except-authorization",
    wildcard_covers_authorization_in_check=True,
    max_entries=1024,
    max_url_length=1024,
    # Observed in Chromium 156 (tests/browser, scenarios lowercase-patch and
    # acam-lowercase-put): Allow-Methods is compared byte for byte, as the standard says; the
    # legacy upper-casing described for older builds is gone.
    method_uppercased_before_compare=False,
    preflight_status_before_cors_check=False,
    # services/network/public/cpp/cors/cors.cc IsCorsSafelistedHeader.
    extra_safelisted_headers=_CHROMIUM_CLIENT_HINTS,
    sources=(
        "chromium services/network/cors/preflight_cache.cc",
        "chromium services/network/cors/preflight_result.cc",
        "chromium services/network/cors/preflight_controller.cc",
        "chromium services/network/public/cpp/cors/cors.cc",
    ),
)

FIREFOX = EngineProfile(
    name="firefox",
    max_age_default=5,
    # netwerk/protocol/http/nsCORSListenerProxy.cpp: 24 hours.
    max_age_cap=86400,
    # Any non-digit character means nothing is cached.
    invalid_max_age_uses_default=False,
    max_age_accepts_sign=False,
    merges_entries=True,
    erases_on_insufficient_hit=False,
    credentials_in_key=True,
    # Wildcards are stored as the literal token '*' and never match at lookup.
    wildcard_in_cache="never",
    wildcard_covers_authorization_in_check=True,
    max_entries=100,
    max_url_length=None,
    method_uppercased_before_compare=False,
    preflight_status_before_cors_check=True,
    extra_safelisted_headers=frozenset(),
    sources=("gecko netwerk/protocol/http/nsCORSListenerProxy.cpp",),
)

WEBKIT = EngineProfile(
    name="webkit",
    max_age_default=5,
    # Source/WebCore/loader/CrossOriginPreflightResultCache.cpp: 600 s.
    max_age_cap=600,
    invalid_max_age_uses_default=True,
    max_age_accepts_sign=True,
    merges_entries=False,
    erases_on_insufficient_hit=True,
    credentials_in_key=False,
    wildcard_in_cache="all",
    wildcard_covers_authorization_in_check=True,
    max_entries=None,
    max_url_length=None,
    method_uppercased_before_compare=False,
    preflight_status_before_cors_check=False,
    extra_safelisted_headers=frozenset(),
    sources=("webkit Source/WebCore/loader/CrossOriginPreflightResultCache.cpp",),
)

PROFILES: dict[str, EngineProfile] = {p.name: p for p in (CHROMIUM, FIREFOX, WEBKIT)}


def get_profile(name: str) -> EngineProfile:
    """The profile called ``name``; ValueError naming the choices otherwise."""
    try:
        return PROFILES[name.lower()]
    except KeyError:
        raise ValueError(
            f"unknown engine {name!r}: choose one of {', '.join(sorted(PROFILES))}"
        ) from None
