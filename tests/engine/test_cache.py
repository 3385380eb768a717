"""The simulated preflight cache, per engine profile, against a naive model."""

from __future__ import annotations

from dataclasses import dataclass, replace

from hypothesis import given, settings
from hypothesis import strategies as st

from corsflow.engine.cache import PreflightCache
from corsflow.engine.profiles import CHROMIUM, FIREFOX, PROFILES, WEBKIT

O = "https://app.example"
U = "https://api.example/items"


def test_hit_until_max_age_then_stale() -> None:
    cache = PreflightCache(CHROMIUM)
    cache.store(O, U, False, ("PUT",), ("x-a",), 10.0, 100.0, "p1")
    assert cache.lookup(O, U, "PUT", ("x-a",), False, 109.9).outcome == "hit"
    assert cache.lookup(O, U, "PUT", ("x-a",), False, 110.0).outcome == "stale"
    assert cache.lookup(O, U, "PUT", ("x-a",), False, 110.0).outcome == "miss"  # erased


def test_zero_max_age_is_not_cached() -> None:
    cache = PreflightCache(CHROMIUM)
    assert cache.store(O, U, False, ("PUT",), (), 0.0, 1.0, "p1") is False
    assert cache.lookup(O, U, "PUT", (), False, 1.0).outcome == "miss"


def test_full_url_is_the_key() -> None:
    cache = PreflightCache(CHROMIUM)
    cache.store(O, U + "/1", False, ("PUT",), (), 600.0, 0.0, "p1")
    assert cache.lookup(O, U + "/2", "PUT", (), False, 1.0).outcome == "miss"
    assert cache.lookup(O, U + "/1?x=1", "PUT", (), False, 1.0).outcome == "miss"
    assert cache.lookup("https://other.example", U + "/1", "PUT", (), False, 1.0).outcome == "miss"


def test_chromium_never_caches_long_urls() -> None:
    long_url = U + "/" + "a" * 1100
    cache = PreflightCache(CHROMIUM)
    assert cache.store(O, long_url, False, ("PUT",), (), 600.0, 0.0, "p1") is False
    assert cache.lookup(O, long_url, "PUT", (), False, 1.0).outcome == "uncacheable"
    firefox = PreflightCache(FIREFOX)
    assert firefox.store(O, long_url, False, ("PUT",), (), 600.0, 0.0, "p1") is True


def test_credentialed_result_serves_uncredentialed_not_the_reverse() -> None:
    cache = PreflightCache(CHROMIUM)
    cache.store(O, U, True, ("PUT",), (), 600.0, 0.0, "p1")
    assert cache.lookup(O, U, "PUT", (), False, 1.0, mutate=False).outcome == "hit"
    cache = PreflightCache(CHROMIUM)
    cache.store(O, U, False, ("PUT",), (), 600.0, 0.0, "p1")
    assert cache.lookup(O, U, "PUT", (), True, 1.0).outcome == "insufficient"


def test_firefox_keys_by_credentials() -> None:
    cache = PreflightCache(FIREFOX)
    cache.store(O, U, True, ("PUT",), (), 600.0, 0.0, "p1")
    assert cache.lookup(O, U, "PUT", (), False, 1.0).outcome == "miss"


def test_wildcards_in_the_cache() -> None:
    for profile, custom, auth in ((CHROMIUM, "hit", "insufficient"),
                                  (WEBKIT, "hit", "hit"),
                                  (FIREFOX, "insufficient", "insufficient")):
        cache = PreflightCache(profile)
        cache.store(O, U, False, ("*",), ("*",), 600.0, 0.0, "p1")
        assert cache.lookup(O, U, "PUT", ("x-a",), False, 1.0, mutate=False).outcome == custom, \
            profile.name
        assert cache.lookup(O, U, "PUT", ("authorization",), False, 1.0,
                            mutate=False).outcome == auth, profile.name


def test_insufficient_hit_erases_on_replacing_engines_only() -> None:
    # WebKitGTK 2.50 keeps the entry (tests/browser: cache-erase-on-insufficient).
    for profile, after in ((CHROMIUM, "miss"), (WEBKIT, "hit"), (FIREFOX, "hit")):
        cache = PreflightCache(profile)
        cache.store(O, U, False, ("PUT",), ("x-a",), 600.0, 0.0, "p1")
        assert cache.lookup(O, U, "PUT", ("x-b",), False, 1.0).outcome == "insufficient"
        assert cache.lookup(O, U, "PUT", ("x-a",), False, 2.0).outcome == after, profile.name


def test_methods_compare_byte_for_byte_unless_the_profile_uppercases() -> None:
    # Chromium 156 compares exactly (tests/browser: lowercase-patch); older builds upper-cased.
    cache = PreflightCache(CHROMIUM)
    cache.store(O, U, False, ("PATCH",), (), 600.0, 0.0, "p1")
    assert cache.lookup(O, U, "patch", (), False, 1.0).outcome == "insufficient"
    legacy = PreflightCache(replace(CHROMIUM, method_uppercased_before_compare=True))
    legacy.store(O, U, False, ("PATCH",), (), 600.0, 0.0, "p1")
    assert legacy.lookup(O, U, "patch", (), False, 1.0).outcome == "hit"


# --- against a naive model ---------------------------------------------------------------------

URLS = [U + "/a", U + "/b", U + "/c"]
METHODS = ["PUT", "DELETE"]
HEADERS = ["x-a", "x-b"]


@dataclass(frozen=True)
class Stored:
    t: float
    url: str
    methods: tuple[str, ...]
    headers: tuple[str, ...]
    age: float
    pid: str


def naive_hit(log: list[Stored], merges: bool, url: str, method: str,
              headers: tuple[str, ...], now: float) -> bool:
    """Replace: only the newest store of the URL counts, and only while it lives. Merge: each
    method and header is granted by the newest store that named it (a refresh sets its
    expiry, shorter or longer), while that store's max-age lasts."""
    stores = [s for s in log if s.url == url]
    if not merges:
        return bool(stores) and stores[-1].t + stores[-1].age > now and \
            method in stores[-1].methods and all(h in stores[-1].headers for h in headers)

    def granted(pick: object) -> bool:
        named = [s for s in stores if pick(s)]  # type: ignore[operator]
        return bool(named) and named[-1].t + named[-1].age > now

    return granted(lambda s: method in s.methods) and all(
        granted(lambda s, h=h: h in s.headers) for h in headers)


ops = st.lists(
    st.tuples(
        st.booleans(),  # store or lookup
        st.sampled_from(URLS),
        st.lists(st.sampled_from(METHODS), min_size=1, max_size=2, unique=True),
        st.lists(st.sampled_from(HEADERS), max_size=2, unique=True),
        st.sampled_from([0.0, 1.0, 5.0, 30.0]),
        st.floats(0.0, 10.0),
    ),
    max_size=40,
)


@settings(max_examples=300, deadline=None)
@given(ops)
def test_cache_agrees_with_the_naive_model_for_merging_engines(seq: list) -> None:  # type: ignore[type-arg]
    # Firefox never erases on lookups, so a pure log of stores models it exactly.
    cache, log, now = PreflightCache(FIREFOX), [], 0.0
    for i, (is_store, url, methods, headers, age, dt) in enumerate(seq):
        now += dt
        if is_store:
            if cache.store(O, url, False, tuple(methods), tuple(headers), age, now, f"p{i}"):
                log.append(Stored(now, url, tuple(methods), tuple(headers), age, f"p{i}"))
        else:
            answer = cache.lookup(O, url, methods[0], tuple(headers), False, now)
            assert (answer.outcome == "hit") == naive_hit(log, True, url, methods[0],
                                                          tuple(headers), now)


@settings(max_examples=300, deadline=None)
@given(ops)
def test_replacing_engines_only_hit_the_newest_live_result(seq: list) -> None:  # type: ignore[type-arg]
    for profile in (CHROMIUM, WEBKIT):
        cache, log, now = PreflightCache(profile), [], 0.0
        for i, (is_store, url, methods, headers, age, dt) in enumerate(seq):
            now += dt
            if is_store:
                if cache.store(O, url, False, tuple(methods), tuple(headers), age, now, f"p{i}"):
                    log.append(Stored(now, url, tuple(methods), tuple(headers), age, f"p{i}"))
                continue
            answer = cache.lookup(O, url, methods[0], tuple(headers), False, now, mutate=False)
            if answer.outcome == "hit":
                # A hit is always the newest stored result for that URL, still alive.
                newest = [s for s in log if s.url == url][-1]
                assert answer.preflight_id == newest.pid and newest.t + newest.age > now
            else:
                assert not naive_hit(log, False, url, methods[0], tuple(headers), now)


@settings(max_examples=50, deadline=None)
@given(st.integers(1, 3000))
def test_size_never_exceeds_the_engine_cap(n: int) -> None:
    for profile in PROFILES.values():
        cache = PreflightCache(profile)
        for i in range(n):
            cache.store(O, f"{U}/{i}", False, ("PUT",), (), 7200.0, float(i) * 0.001, f"p{i}")
        if profile.max_entries is not None:
            assert len(cache) <= profile.max_entries
