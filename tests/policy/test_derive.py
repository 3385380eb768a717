"""Observed and proposed policies derived from captures: what is kept, fixed, cut, and the
advice that is never given."""

from __future__ import annotations

from pathlib import Path

import pytest

from corsflow.analysis import analyze_paths
from corsflow.policy.derive import derive
from corsflow.policy.model import PolicyDocument, answer, safety_problems

from ..conftest import SAMPLES
from .sessions import ADMIN, APP, EVIL, PARTNER, plain_session, shop_session


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> PolicyDocument:
    path = shop_session(tmp_path_factory.mktemp("shop") / "shop.har")
    return derive(analyze_paths([str(path)]))


def test_observed_holds_only_what_the_responses_show(shop: PolicyDocument) -> None:
    s = shop.servers[0]
    assert s.server == "http://api.test:8080"
    o = s.observed.default
    assert o.allow_origins == (APP, ADMIN)
    assert o.allow_methods == ("GET", "PUT")
    assert o.allow_headers == ("content-type", "x-trace-id")
    assert o.allow_credentials is True and o.max_age == 86400
    assert o.expose_headers == ("x-request-id",) and o.vary_origin is True
    assert o.allow_private_network is None   # never shown either way
    public = {r.path: r.policy for r in s.observed.paths}["/public/status"]
    # no preflight reached the public path: its lists are unknown, not empty
    assert public.allow_origins == ("*",) and public.allow_methods is None


def test_proposed_fixes_what_the_page_meant_and_refuses_the_rest(shop: PolicyDocument) -> None:
    s = shop.servers[0]
    p = s.proposed.default
    assert p.allow_origins == (APP, ADMIN)          # evil.example and null are not added
    assert "DELETE" in p.allow_methods              # blocked preflight the page sent # type: ignore[operator]
    assert "x-new-header" in (p.allow_headers or ())
    assert p.allow_credentials is True and p.vary_origin is True
    assert p.max_age == 7200                        # chromium's cap, not 86400
    assert p.expose_headers == ("x-request-id",)
    public = {r.path: r.policy for r in s.proposed.paths}["/public/status"]
    assert public.allow_origins == ("*",) and public.allow_credentials is False
    assert PARTNER not in p.allow_origins           # '*' on a public path says nothing else
    whys = {d.field: d.why for d in s.differences if d.path is None}
    assert "DELETE" in whys["allow_methods"] and "x-new-header" in whys["allow_headers"]
    assert "chromium" in whys["max_age"] and "7200" in whys["max_age"]
    notes = " ".join(s.notes)
    assert EVIL in notes and "only if it is one of your own sites" in notes
    assert "Never allow 'null'" in notes and "sandboxed iframe" in notes


def test_the_proposed_policy_allows_every_request_the_page_meant(shop: PolicyDocument) -> None:
    from corsflow.model import Headers

    rules = shop.servers[0].proposed
    put = answer(rules, "OPTIONS", "/items/42", Headers((("Origin", APP),)), preflight=True)
    assert put.get("access-control-allow-origin") == APP
    assert "DELETE" in (put.get("access-control-allow-methods") or "")
    assert answer(rules, "GET", "/items/1", Headers((("Origin", EVIL),)), False).get(
        "access-control-allow-origin") is None


@pytest.mark.parametrize("engine,cap", [("chromium", 7200), ("firefox", 86400), ("webkit", 600)])
def test_max_age_respects_the_engine_cap_and_says_which(tmp_path: Path, engine: str,
                                                          cap: int) -> None:
    doc = derive(analyze_paths([str(plain_session(tmp_path / "p.har"))], engine=engine))
    s = doc.servers[0]
    assert s.observed.default.max_age is None
    assert s.proposed.default.max_age == cap
    why = next(d.why for d in s.differences if d.field == "max_age")
    assert why.startswith(f"{engine}'s cap applies ({cap} s")


def test_plain_session_keeps_one_rule_and_names_per_url_preflights(tmp_path: Path) -> None:
    s = derive(analyze_paths([str(plain_session(tmp_path / "p.har"))])).servers[0]
    assert s.proposed.paths == ()
    p = s.proposed.default
    assert p.allow_methods == ("PATCH",) and p.allow_headers == ("authorization", "x-client")
    assert p.allow_credentials is False     # Authorization is no credentials mode
    assert any(n.startswith("PerUrlPreflights") for n in s.notes)


def test_sample_session_every_proposal_is_safe() -> None:
    for name in ("chromium-session.har", "chromium-session.pcap", "chromium-session.flows"):
        for s in derive(analyze_paths([str(SAMPLES / name)])).servers:
            for policy in (s.proposed.default, *(r.policy for r in s.proposed.paths)):
                assert safety_problems(policy) == [], (name, policy)
                assert "null" not in (policy.allow_origins or ())
                assert "*" not in (policy.allow_methods or ())   # explicit lists only


def test_a_hostile_capture_cannot_inject_into_configurations(tmp_path: Path) -> None:
    from .sessions import API, har

    bad = 'https://a.example"; add_header X 1; #'
    path = har([("GET", f"{API}/x", {"Origin": bad}, 200, {"Access-Control-Allow-Origin": bad}),
                ("OPTIONS", f"{API}/x", {"Origin": APP, "Access-Control-Request-Method": "PUT",
                                         "Access-Control-Request-Headers": "x-ok"},
                 204, {"Access-Control-Allow-Origin": APP,
                       "Access-Control-Allow-Methods": "PUT, GE$T",
                       "Access-Control-Allow-Headers": "x-ok"})], tmp_path / "h.har")
    s = derive(analyze_paths([str(path)])).servers[0]
    assert s.proposed.default.allow_origins == (APP,)
    assert any("not a plain serialised origin" in n for n in s.notes)
    assert safety_problems(s.proposed.default) == []


def test_no_cross_origin_requests_no_servers(tmp_path: Path) -> None:
    from .sessions import API, har

    path = har([("GET", f"{API}/x", {}, 200, {})], tmp_path / "n.har")
    assert derive(analyze_paths([str(path)])).servers == ()
