"""What Firefox and WebKit really do, and each engine profile's facts asserted against its
browser (FIREFOX-FACTS.md, WEBKIT-FACTS.md; Chromium's in CHROMIUM-FACTS.md).

One session per browser runs the main scenario table and the engine scenarios
(:mod:`.scenarios_engines`: fetch() cache modes, failures, opaque origins, Range); Chromium
runs the engine scenarios in a session of their own. The pcap tcpdump recorded of each is
analysed with ``--engine`` and compared with the browser's truth.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from corsflow.engine.profiles import PROFILES, EngineProfile
from tests.conftest import missing

from .captures import CaptureUnavailable
from .compare import analyze_json, compare_wire, format_disagreements
from .drivers import DriverUnavailable
from .engine_harness import FRESH_PLAN, WARM_UP_PATH, run_with_pcap
from .harness import CHROMIUM, Captures, Session, StepTruth, run_session
from .scenarios import all_scenarios
from .scenarios_engines import engine_scenarios
from .test_chromium_facts import judge_lifetime, step_window, stored_window

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ENGINES = ("firefox", "webkit")


def _session(engine: str, d: Path) -> Session:
    try:
        return run_with_pcap(engine, d, all_scenarios() + engine_scenarios())
    except DriverUnavailable as e:
        missing(str(e))
        raise


@pytest.fixture(scope="session")
def firefox_session(tmp_path_factory: pytest.TempPathFactory) -> Session:
    return _session("firefox", tmp_path_factory.mktemp("firefox"))


@pytest.fixture(scope="session")
def webkit_session(tmp_path_factory: pytest.TempPathFactory) -> Session:
    return _session("webkit", tmp_path_factory.mktemp("webkit"))


@pytest.fixture(scope="session")
def chromium_engine_session(tmp_path_factory: pytest.TempPathFactory) -> Session:
    import importlib.util
    import os

    if not os.access(CHROMIUM, os.X_OK) or importlib.util.find_spec("playwright") is None:
        missing(f"{CHROMIUM} or the playwright package is not installed")
    d = tmp_path_factory.mktemp("chromium-engines")
    try:
        return run_session("direct", Captures(pcap=d / "session.pcap", workdir=d),
                           engine_scenarios())
    except CaptureUnavailable:
        return run_session("direct", Captures(workdir=d), engine_scenarios())


@pytest.fixture(params=ENGINES)
def engine_session(request: pytest.FixtureRequest) -> tuple[str, Session]:
    name = request.param
    return name, request.getfixturevalue(f"{name}_session")


def _sent(s: Session, t: StepTruth) -> bool:
    return any(s.wire[i].kind == "preflight" for i in t.wire)


def _cache(s: Session, scenario: str) -> tuple[str, ...]:
    return tuple("miss" if _sent(s, t) else "hit" for t in s.steps_of(scenario))


# --- failures and the engines' own words ---------------------------------------------------

RESOLVED = frozenset({
    "simple-get", "json-post", "wildcards", "text-plain-post", "long-safelisted-header",
    "preflight-204", "credentials-ok", "redirect-ok", "acah-uppercase", "acam-omits-post",
    "chromium-safelist-values", "lowercase-patch-listed", "preflighted-redirect-307",
    "preflighted-redirect-302",
})

# scenario -> the category of Firefox's first console error (nsIScriptError.category).
FIREFOX_WORDS: dict[str, str] = {
    "no-acao": "CORSMissingAllowOrigin2",
    "acao-mismatch": "CORSAllowOriginNotMatchingOrigin",
    "acao-null": "CORSAllowOriginNotMatchingOrigin",
    "wildcard-credentials": "CORSNotSupportingCredentials",
    "missing-acac": "CORSMissingAllowCredentials",
    "acac-uppercase": "CORSMissingAllowCredentials",
    "multiple-acao": "CORSMultipleAllowOriginNotAllowed",
    "invalid-acao": "CORSAllowOriginNotMatchingOrigin",
    "acao-unparsable": "CORSAllowOriginNotMatchingOrigin",
    "actual-no-acao": "CORSMissingAllowOrigin2",
    # Firefox checks the status first only when Allow-Origin passes: a bare 404 is a
    # missing Allow-Origin, a 404 with CORS headers a failed preflight.
    "preflight-404-bare": "CORSMissingAllowOrigin2",
    "preflight-401-bare": "CORSMissingAllowOrigin2",
    "preflight-404-cors": "CORSPreflightDidNotSucceed3",
    "preflight-401-cors": "CORSPreflightDidNotSucceed3",
    "preflight-302": "CORSExternalRedirectNotAllowed",
    "preflight-302-bare": "CORSMissingAllowOrigin2",
    "preflight-302-no-location": "CORSPreflightDidNotSucceed3",
    "preflight-no-acao": "CORSMissingAllowOrigin2",
    "preflight-acao-mismatch": "CORSAllowOriginNotMatchingOrigin",
    "preflight-wildcard-credentials": "CORSNotSupportingCredentials",
    "preflight-missing-acac": "CORSMissingAllowCredentials",
    "preflight-multiple-acao": "CORSMultipleAllowOriginNotAllowed",
    "preflight-invalid-acao": "CORSAllowOriginNotMatchingOrigin",
    "method-not-allowed": "CORSMethodNotFound",
    "header-not-allowed": "CORSMissingAllowHeaderFromPreflight2",
    "invalid-acam": "CORSInvalidAllowMethod",
    "invalid-acah": "CORSInvalidAllowHeader",
    "wildcard-acah-credentials": "CORSMissingAllowHeaderFromPreflight2",
    "wildcard-acam-credentials": "CORSMethodNotFound",
    "acam-lowercase-put": "CORSMethodNotFound",
    "lowercase-patch": "CORSMethodNotFound",
    "upper-patch-vs-lower": "CORSMethodNotFound",
    # Save-Data, DPR and Device-Memory are not safelisted: preflighted, and the route has
    # no preflight answer (a bare 404).
    "chromium-safelist": "CORSMissingAllowOrigin2",
    "redirect-target-no-acao": "CORSMissingAllowOrigin2",
    "redirect-no-acao-on-302": "CORSMissingAllowOrigin2",
    "redirect-credentials-in-location": "CORSDidNotSucceed2",
}


def test_outcomes(engine_session: tuple[str, Session]) -> None:
    """Both browsers resolve and reject the same fetches of the main table."""
    _, s = engine_session
    main = {sc.name for sc in all_scenarios()} - {"nocache"}
    got = {t.scenario: t.outcome for t in s.steps if t.scenario in main and t.step == 0
           and len(s.steps_of(t.scenario)) == 1}
    want = {name: "resolved" if name in RESOLVED else "rejected" for name in got}
    assert got == want


@pytest.mark.parametrize("scenario", sorted(FIREFOX_WORDS))
def test_firefox_words(firefox_session: Session, scenario: str) -> None:
    t = firefox_session.step(scenario)
    assert t.outcome == "rejected"
    assert t.engine_errors[:1] == [FIREFOX_WORDS[scenario]], t.engine_errors


def test_firefox_words_are_known_to_corsflow() -> None:
    from corsflow.engine.words import FIREFOX_REASONS

    for category in set(FIREFOX_WORDS.values()):
        assert category in FIREFOX_REASONS


# --- the preflight cache ---------------------------------------------------------------------

CACHE: dict[str, dict[str, tuple[str, ...]]] = {
    "firefox": {
        "maxage-per-url": ("miss", "miss", "hit", "hit"),
        # X-A, X-B, X-A, X-A with ACAH echoing: the entry is merged, so X-A hits again.
        "cache-header-replace": ("miss", "miss", "hit", "hit"),
        # X-B's preflight fails: the URL's results are dropped, X-A preflights again.
        "cache-erase-on-insufficient": ("miss", "miss", "miss"),
        "cache-superset": ("miss", "hit", "hit"),
        "cache-method-replace": ("miss", "miss", "hit", "hit"),
        # omit, include, omit, include: one entry per credentials mode.
        "cache-credentials": ("miss", "miss", "hit", "hit"),
        # '*' is never used from the cache.
        "wildcard-authorization": ("miss", "miss"),
        "wildcard-cache": ("miss", "miss"),
        "authorization-listed": ("miss", "hit"),
        "url-1023": ("miss", "hit"),
        "url-1024": ("miss", "hit"),
        "nocache-control": ("miss", "hit", "hit", "hit"),
        # DevTools' "Disable cache" (LOAD_BYPASS_CACHE): no lookup, but results are stored.
        "nocache": ("miss", "miss", "miss", "hit"),
        "mode-no-store": ("miss", "hit", "miss"),
        "mode-reload": ("miss", "hit", "miss"),
        "mode-no-cache": ("miss", "hit", "hit"),
        "mode-force-cache": ("miss", "hit", "hit"),
        "opaque-origins": ("miss", "hit", "hit"),
        # the failure drops /2's results; /1 keeps its own.
        "refused-preflight-clears": ("miss", "miss", "miss", "hit", "miss"),
    },
    "webkit": {
        "maxage-per-url": ("miss", "miss", "hit", "hit"),
        "cache-header-replace": ("miss", "miss", "miss", "hit"),
        # The insufficient entry survives the refused X-B preflight.
        "cache-erase-on-insufficient": ("miss", "miss", "hit"),
        "cache-superset": ("miss", "hit", "hit"),
        "cache-method-replace": ("miss", "miss", "miss", "hit"),
        "cache-credentials": ("miss", "miss", "hit", "hit"),
        "wildcard-authorization": ("miss", "hit"),
        "wildcard-cache": ("miss", "hit"),
        "authorization-listed": ("miss", "hit"),
        "url-1023": ("miss", "hit"),
        "url-1024": ("miss", "hit"),
        "nocache-control": ("miss", "hit", "hit", "hit"),
        "mode-no-store": ("miss", "hit", "hit"),
        "mode-reload": ("miss", "hit", "hit"),
        "mode-no-cache": ("miss", "hit", "hit"),
        "mode-force-cache": ("miss", "hit", "hit"),
        "opaque-origins": ("miss", "hit", "miss"),
        # refused by Allow-Credentials: /2's result is dropped; /1 keeps its own.
        "refused-preflight-clears": ("miss", "miss", "miss", "hit", "miss"),
    },
    "chromium": {
        "mode-no-store": ("miss", "miss", "miss"),
        "mode-reload": ("miss", "hit", "miss"),
        "mode-no-cache": ("miss", "hit", "miss"),
        "mode-force-cache": ("miss", "hit", "hit"),
        "opaque-origins": ("miss", "miss", "miss"),
        # the credentialed lookup erased /2's result; /1 keeps its own.
        "refused-preflight-clears": ("miss", "miss", "miss", "hit", "miss"),
    },
}

LIFETIME: dict[str, dict[str, float]] = {
    "firefox": {"maxage-absent": 5, "maxage-0": 0, "maxage-2": 2, "maxage-600": 600,
                "maxage-86400": 86400, "maxage-invalid": 0, "maxage-negative": 0,
                "maxage-fraction": 0, "maxage-twice": 0, "maxage-plus": 0},
    "webkit": {"maxage-absent": 5, "maxage-0": 0, "maxage-2": 2, "maxage-600": 600,
               "maxage-86400": 600, "maxage-invalid": 5, "maxage-negative": 0,
               "maxage-fraction": 5, "maxage-twice": 5, "maxage-plus": 3},
}


def test_preflight_cache(engine_session: tuple[str, Session]) -> None:
    name, s = engine_session
    got = {sc: _cache(s, sc) for sc in CACHE[name] if s.steps_of(sc)}
    assert got == CACHE[name]


def test_chromium_cache_modes(chromium_engine_session: Session) -> None:
    s = chromium_engine_session
    assert {sc: _cache(s, sc) for sc in CACHE["chromium"]} == CACHE["chromium"]


def test_max_age_lifetime(engine_session: tuple[str, Session]) -> None:
    name, s = engine_session
    wrong, judged = [], set()
    for scenario, life in LIFETIME[name].items():
        steps = s.steps_of(scenario)
        stored = stored_window(s, steps[0])
        for t in steps[1:]:
            want = judge_lifetime(life, stored, step_window(s, t))
            seen = "miss" if _sent(s, t) else "hit"
            if want is not None:
                judged.add(scenario)
                if seen != want:
                    wrong.append((scenario, t.step, round(t.started - stored[0], 2), seen,
                                  want))
            if _sent(s, t):
                stored = stored_window(s, t)
    assert judged == set(LIFETIME[name])  # each lifetime was tested
    assert wrong == []


def fresh_session(n: int, plan: tuple[str, ...]) -> list[str]:
    """What the profile's ``fresh_session_preflights`` (``n``) says each fetch of ``plan``
    does in a fresh session, every result allowing the next fetch of its URL: ``miss``
    (preflighted) or ``hit``."""
    warm, counts, usable, out = n == 0, dict.fromkeys(plan, 0), set(), []
    for url in plan:
        if url in usable:
            out.append("hit")
            continue
        out.append("miss")
        counts[url] += 1
        warm = warm or counts[url] >= n
        if warm:
            usable.add(url)
    return out


def test_fresh_session_is_the_profiles(engine_session: tuple[str, Session]) -> None:
    """Firefox preflights a URL again although the result it stored a moment before allows
    the request, here until one URL's third preflight (the profile's bound), and never
    uses a result stored before its cache started working. WebKit uses its results at
    once."""
    name, s = engine_session
    seen = s.files["warm_up"].split()
    assert seen == fresh_session(PROFILES[name].fresh_session_preflights, FRESH_PLAN)
    if name == "firefox":
        assert seen.count("miss") == 5  # what the rule must explain, whatever the profile says


def test_fresh_session_in_the_pcap_report(engine_session: tuple[str, Session]) -> None:
    """corsflow's report of the session's first fetches: the requests the browser sent
    without a preflight are cache hits, and no preflight is called redundant (in Firefox
    the results that covered the repeats were ones a fresh session does not use; the
    capture cannot show that the session was fresh, so the model says unknown)."""
    name, s = engine_session
    if "pcap_unavailable" in s.files:
        missing(f"tcpdump could not capture on loopback: {s.files['pcap_unavailable']}")
    report = analyze_json(Path(s.files["pcap"]), name)
    first = [ex for ex in report["exchanges"] if f"{WARM_UP_PATH}-" in ex["url"]]
    requests = [ex for ex in first if ex["role"] != "preflight"]
    assert len(requests) == len(FRESH_PLAN)
    assert [ex["cache"] for ex in requests] == s.files["warm_up"].split()
    assert all(ex["verdict"] == "allowed" for ex in first)
    redundancy = [ex["redundant"] for ex in first if ex["role"] == "preflight"]
    assert True not in redundancy
    if name == "firefox":
        assert redundancy == [False, None, False, None, None]


# --- fetch() cache modes on the wire ---------------------------------------------------------

def _pf_and_request(s: Session, scenario: str) -> tuple[dict[str, str | None], ...]:
    wire = [s.wire[i] for i in s.step(scenario, 0).wire]
    return tuple({"pragma": w.header("Pragma"), "cache-control": w.header("Cache-Control")}
                 for w in wire)


MODE_HEADERS = {
    "mode-no-store": {"pragma": "no-cache", "cache-control": "no-cache"},
    "mode-reload": {"pragma": "no-cache", "cache-control": "no-cache"},
    "mode-no-cache": {"pragma": None, "cache-control": "max-age=0"},
    "mode-force-cache": {"pragma": None, "cache-control": None},
}
NONE = {"pragma": None, "cache-control": None}


@pytest.mark.parametrize("name", ["chromium", *ENGINES])
def test_cache_mode_headers(request: pytest.FixtureRequest, name: str) -> None:
    """The request carries its cache mode's headers; the preflight too, except in WebKit."""
    fixture = "chromium_engine_session" if name == "chromium" else f"{name}_session"
    s: Session = request.getfixturevalue(fixture)
    profile = PROFILES[name]
    for scenario, want in MODE_HEADERS.items():
        pf, req = _pf_and_request(s, scenario)
        assert req == want, scenario
        assert pf == (want if profile.cache_mode_headers_on_preflight else NONE), scenario


@pytest.mark.parametrize("name", ["chromium", *ENGINES])
def test_only_if_cached_and_credentials_redirect(request: pytest.FixtureRequest, name: str
                                                 ) -> None:
    """only-if-cached across origins is a TypeError before anything is sent; a same-origin
    request redirected cross-origin to a URL with credentials is a network error."""
    fixture = "chromium_engine_session" if name == "chromium" else f"{name}_session"
    s: Session = request.getfixturevalue(fixture)
    for scenario in ("mode-only-if-cached", "same-origin-redirect-credentials"):
        t = s.step(scenario)
        assert (t.outcome, t.wire) == ("rejected", []), t


# --- each profile against its browser --------------------------------------------------------

def observed_profile(name: str, s: Session, extra: Session | None = None) -> dict[str, object]:
    """The profile facts the session shows, named as EngineProfile's fields."""
    x = extra or s
    lookups = {"default"} | {m for m in ("no-store", "reload", "no-cache", "force-cache")
                             if _cache(x, f"mode-{m}")[2] == "hit"}
    stored = {"default"} | {m for m in ("no-store", "reload", "no-cache", "force-cache")
                            if _cache(x, f"mode-{m}")[1] == "hit"}
    opaque = _cache(x, "opaque-origins")
    out: dict[str, object] = {
        "range_unit_case_insensitive": not _sent(x, x.step("range-uppercase")),
        "opaque_origin_cache": ("never" if opaque[1] == "miss" else
                                "shared" if opaque[2] == "hit" else "per-origin"),
        "cache_modes_looked_up": frozenset(lookups),
        "cache_modes_stored": frozenset(stored),
        "bypass_skips_lookup": _cache(x, "mode-reload")[2] == "miss",
    }
    if extra is None:  # the main table ran in this session
        fails = _cache(s, "failure-clears-cache")[2] == "miss"
        out.update({
            "failure_clears_url_entries": fails,
            "merges_entries": _cache(s, "cache-header-replace")[2] == "hit",
            "wildcard_in_cache": ("never" if _cache(s, "wildcard-cache")[1] == "miss" else
                                  "all" if _cache(s, "wildcard-authorization")[1] == "hit"
                                  else "except-authorization"),
            "max_url_length": None if _cache(s, "url-1024")[1] == "hit" else 1024,
            "invalid_max_age_uses_default": LIFETIME[name]["maxage-invalid"] == 5,
            "max_age_accepts_sign": LIFETIME[name]["maxage-plus"] == 3,
            "max_age_default": int(LIFETIME[name]["maxage-absent"]),
        })
        if not fails:
            erases = _cache(s, "cache-erase-on-insufficient")[2] == "miss"
            out["erases_on_insufficient_hit"] = erases
            if not erases:  # else the credentialed lookup alone dropped /2's result
                out["refused_preflight_clears_url"] = (
                    _cache(x, "refused-preflight-clears")[4] == "miss")
    return out


def _profile_view(p: EngineProfile, keys: set[str]) -> dict[str, object]:
    return {k: getattr(p, k) for k in keys}


def test_profile_agrees_with_its_browser(engine_session: tuple[str, Session]) -> None:
    name, s = engine_session
    seen = observed_profile(name, s)
    assert _profile_view(PROFILES[name], set(seen)) == seen


def test_chromium_profile_agrees_on_engine_scenarios(chromium_engine_session: Session) -> None:
    s = chromium_engine_session
    seen = observed_profile("chromium", s, extra=s)
    assert _profile_view(PROFILES["chromium"], set(seen)) == seen
    fails = _cache(s, "failure-clears-cache")[2] == "miss"
    assert PROFILES["chromium"].failure_clears_url_entries == fails


def test_pcap_report_matches_browser(engine_session: tuple[str, Session]) -> None:
    """corsflow's report of the tcpdump capture, with --engine, against the browser's truth
    for the main table (Chromium's CorsError names are not compared)."""
    name, s = engine_session
    if "pcap_unavailable" in s.files:
        missing(f"tcpdump could not capture on loopback: {s.files['pcap_unavailable']}")
    report = analyze_json(Path(s.files["pcap"]), name)
    main = {sc.name for sc in all_scenarios()}
    report["exchanges"] = [ex for ex in report["exchanges"]
                           if ex["url"].split("/s/", 1)[-1].split("/")[0].split("?")[0] in main]
    truth = Session(s.mode, s.page_origin, s.api_origin, s.chromium_version,
                    [t for t in s.steps if t.scenario in main],
                    [w for w in s.wire if w.scenario in main], [])
    items = compare_wire(name, truth, report, cors_errors=False,
                         credentials_keyed=PROFILES[name].credentials_in_key)
    if items:
        pytest.fail(format_disagreements(items), pytrace=False)


def test_engine_words_in_report(engine_session: tuple[str, Session]) -> None:
    """With --engine firefox or webkit, each blocked request's reason in the report is the
    one the browser logged for it (Firefox's name, WebKit's sentence)."""
    import re

    name, s = engine_session
    if "pcap_unavailable" in s.files:
        missing(f"tcpdump could not capture on loopback: {s.files['pcap_unavailable']}")
    report = analyze_json(Path(s.files["pcap"]), name)
    said = {t.url: t.engine_errors for t in s.steps if t.step == 0 and t.engine_errors}
    checked, wrong = 0, []
    for ex in report["exchanges"]:
        words = said.get(ex["url"])
        if not words or ex["verdict"] != "blocked" or not ex["cors_error"]:
            continue
        reason = ex.get("engine_reason")
        if reason is None:
            wrong.append((ex["url"], ex["cors_error"], "no engine_reason", words[0]))
            continue
        checked += 1
        if name == "firefox":
            ok = reason["words"] == words[0].rstrip("0123456789")
            ok = ok and reason["link"].endswith("/" + reason["words"])
        else:
            pattern = re.escape(reason["words"])
            pattern = re.sub(r"\\\{\w+\\\}", ".+", pattern)
            ok = re.search(pattern, words[0]) is not None
        if not ok:
            wrong.append((ex["url"].split("?")[0].rsplit("/", 1)[-1], ex["cors_error"],
                          reason["words"], words[0]))
    assert checked > 20
    assert wrong == []
