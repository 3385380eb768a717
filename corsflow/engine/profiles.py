"""What differs between browsers, as data.

Each field says where the fact comes from. Chromium's are checked against the real browser
by the browser-truth tests (tests/browser); when the browser disagrees, the value changes
here, with a note of what the browser did.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

WildcardInCache = Literal["all", "except-authorization", "never"]
OpaqueOriginCache = Literal["never", "per-origin", "shared"]
CacheMode = Literal["default", "no-store", "reload", "no-cache", "force-cache"]


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

    preflight_redirect_before_cors_check: bool = True
    """A redirected preflight is refused before its Allow-Origin is looked at (Chromium,
    WebKit); False: Allow-Origin first (Firefox)."""
    range_unit_case_insensitive: bool = False
    """Whether ``Range: BYTES=0-1`` is safelisted like ``bytes=0-1`` (no preflight)."""
    failure_clears_url_entries: bool = False
    """A CORS request or preflight that fails drops every cached result for its URL."""
    refused_preflight_clears_url: bool = False
    """A preflight refused by its CORS check (Allow-Origin, Allow-Credentials) drops the
    cached result for its URL, which the lookup before it left alone; one refused later, by
    the method or header checks, does not."""
    opaque_origin_cache: OpaqueOriginCache = "per-origin"
    """Results for ``Origin: null`` requests: never cached, one entry per opaque origin
    (sandboxed frame), or one entry shared by every opaque origin."""
    cache_modes_looked_up: frozenset[str] = frozenset(
        {"default", "no-store", "reload", "no-cache", "force-cache"})
    """fetch() cache modes whose requests look the preflight cache up."""
    cache_modes_stored: frozenset[str] = frozenset(
        {"default", "no-store", "reload", "no-cache", "force-cache"})
    """fetch() cache modes whose preflight results are stored."""
    cache_mode_headers_on_preflight: bool = True
    """The preflight carries the cache mode's headers (``Pragma``/``Cache-Control:
    no-cache`` for no-store and reload, ``Cache-Control: max-age=0`` for no-cache), as the
    request does."""
    bypass_skips_lookup: bool = True
    """A preflight carrying ``Pragma``/``Cache-Control: no-cache`` (DevTools' "Disable
    cache", a hard reload, fetch() cache ``no-store``/``reload``) was sent without a cache
    lookup: a cached result could not have saved it."""
    fresh_session_preflights: int = 0
    """In a fresh session the engine's preflight cache starts working only after a few
    preflights, at the latest with the result of one URL's preflight number this (0: at
    once); a result stored before it started is never used. A capture does not show whether
    its session was fresh, so the model calls no preflight redundant, and infers no
    credentials mode, on the strength of a result stored before that bound."""
    unverified: tuple[str, ...] = ()
    """Facts of this profile the browser-truth tests could not observe, with their source."""


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
    # Observed in Chromium 156 (tests/browser, scenarios_engines): range-uppercase is
    # preflighted; opaque-origins preflights every time, even from one sandboxed frame;
    # mode-* show which cache modes look up and store.
    range_unit_case_insensitive=False,
    failure_clears_url_entries=False,  # failure-clears-cache: the PUT after it hits
    opaque_origin_cache="never",
    cache_modes_looked_up=frozenset({"default", "force-cache"}),
    cache_modes_stored=frozenset({"default", "reload", "no-cache", "force-cache"}),
    cache_mode_headers_on_preflight=True,
    bypass_skips_lookup=True,  # nocache, mode-no-store, mode-reload
    unverified=(
        "max_age_cap 7200: longer than a test can wait (preflight_result.cc kMaxTimeout)",
        "max_entries 1024: not exercised (preflight_cache.cc kMaxCacheEntries)",
    ),
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
    # preflight-404-bare: CORSMissingAllowOrigin; preflight-404-cors:
    # CORSPreflightDidNotSucceed. Allow-Origin is checked first, as in Chromium.
    preflight_status_before_cors_check=False,
    # preflight-302-bare: CORSMissingAllowOrigin; preflight-302 (with CORS headers):
    # CORSExternalRedirectNotAllowed.
    preflight_redirect_before_cors_check=False,
    extra_safelisted_headers=frozenset(),
    # Observed in Firefox ESR 153 (tests/browser, FIREFOX-FACTS.md): cache-header-replace
    # and cache-method-replace hit after a merge; cache-credentials keeps omit and include
    # apart; maxage-invalid/-plus/-twice are not cached; wildcard-cache and
    # wildcard-authorization never hit; url-1024 hits.
    range_unit_case_insensitive=False,  # range-uppercase is preflighted
    # cache-erase-on-insufficient and failure-clears-cache: after a failed preflight or a
    # failed CORS request the URL's results are gone (nsCORSListenerProxy RemoveEntries).
    failure_clears_url_entries=True,
    opaque_origin_cache="shared",  # opaque-origins: a second sandboxed frame hits
    cache_modes_looked_up=frozenset({"default", "no-cache", "force-cache"}),
    cache_modes_stored=frozenset({"default", "no-store", "reload", "no-cache", "force-cache"}),
    cache_mode_headers_on_preflight=True,
    bypass_skips_lookup=True,  # nocache (LOAD_BYPASS_CACHE), mode-no-store, mode-reload
    # fresh-session: the same URL is preflighted 3 times (miss, miss, miss, hit), whatever
    # the time between tries; a result stored before the cache started never hits.
    fresh_session_preflights=3,
    unverified=(
        "max_age_cap 86400: longer than a test can wait (nsCORSListenerProxy.cpp)",
        "max_entries 100 (LRU): not exercised (PREFLIGHT_CACHE_SIZE)",
        ("credentials_in_key: cache-credentials (omit, include, omit, include) misses and "
         "hits alike whether the key holds the credentials mode or a credentialed entry "
         "serves both (nsCORSListenerProxy.cpp GetCacheKey)"),
    ),
    sources=("gecko netwerk/protocol/http/nsCORSListenerProxy.cpp",
             "Firefox ESR 153, tests/browser (FIREFOX-FACTS.md)"),
)

WEBKIT = EngineProfile(
    name="webkit",
    max_age_default=5,
    # Source/WebCore/loader/CrossOriginPreflightResultCache.cpp: 600 s.
    max_age_cap=600,
    invalid_max_age_uses_default=True,
    max_age_accepts_sign=True,
    merges_entries=False,  # cache-header-replace: X-A, X-B, X-A misses (replaced)
    # cache-erase-on-insufficient: X-A, X-B (refused), X-A hits: the entry survives.
    erases_on_insufficient_hit=False,
    credentials_in_key=False,
    wildcard_in_cache="all",  # wildcard-authorization hits
    wildcard_covers_authorization_in_check=True,
    max_entries=None,
    max_url_length=None,
    method_uppercased_before_compare=False,
    # preflight-404-bare, preflight-302-bare: "Preflight response is not successful. Status
    # code: 404" although Allow-Origin is missing too.
    preflight_status_before_cors_check=True,
    extra_safelisted_headers=frozenset(),
    # Observed in WebKitGTK 2.50 (tests/browser, WEBKIT-FACTS.md).
    range_unit_case_insensitive=True,  # range-uppercase: no preflight
    failure_clears_url_entries=False,  # failure-clears-cache: the PUT after it hits
    # refused-preflight-clears: a credentialed preflight refused for its Allow-Credentials
    # drops the URL's uncredentialed result (the next uncredentialed fetch preflights), not
    # another URL's; cache-erase-on-insufficient: one refused by Allow-Headers leaves it.
    refused_preflight_clears_url=True,
    opaque_origin_cache="per-origin",  # opaque-origins: hit in one frame, miss in another
    # mode-*: every cache mode looks up and stores; the preflight carries none of the
    # mode's headers (only the request does).
    cache_mode_headers_on_preflight=False,
    bypass_skips_lookup=False,
    unverified=(
        ("max_age_cap 600: longer than a test can wait "
        "(CrossOriginPreflightResultCache.cpp)"),
        "DevTools' 'Disable cache': WebKitWebDriver cannot set it (scenario nocache skipped)",
        ("credentials_in_key: cache-credentials misses and hits alike either way "
         "(CrossOriginPreflightResultCache.cpp keys by origin and URL)"),
        "max_entries: unbounded, not exercised",
    ),
    sources=("webkit Source/WebCore/loader/CrossOriginPreflightResultCache.cpp",
             "WebKitGTK 2.50, tests/browser (WEBKIT-FACTS.md)"),
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
