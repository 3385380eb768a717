"""The policy data, its JSON round trip, the safety rules, and :func:`answer`."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from corsflow.model import Headers
from corsflow.policy.model import (
    PathRule,
    Policy,
    PolicyDocument,
    PolicyError,
    ServerPolicy,
    ServerPolicyRules,
    answer,
    path_matches,
    policy_from_json,
    policy_to_json,
    safety_problems,
    template_regex,
)

APP = "https://app.example"
OTHER = "https://evil.example"

STRICT = Policy(allow_origins=(APP, "https://admin.example"), allow_methods=("GET", "PUT"),
                allow_headers=("content-type", "x-trace-id"), allow_credentials=True,
                max_age=7200, expose_headers=("x-request-id",), vary_origin=True,
                allow_private_network=False)
PUBLIC = Policy(allow_origins=("*",), allow_methods=("GET",), allow_headers=(),
                allow_credentials=False, max_age=600, expose_headers=(), vary_origin=False,
                allow_private_network=False)


def req(origin: str | None, *extra: tuple[str, str]) -> Headers:
    return Headers(((("Origin", origin),) if origin is not None else ()) + extra)


def as_dict(h: Headers) -> dict[str, str]:
    return {n.lower(): v for n, v in h}


def test_preflight_from_an_allowed_origin_gets_the_whole_lists() -> None:
    h = as_dict(answer(STRICT, "OPTIONS", "https://api.example/items/1",
                       req(APP, ("Access-Control-Request-Method", "PUT")), preflight=True))
    assert h == {
        "access-control-allow-origin": APP,
        "access-control-allow-credentials": "true",
        "access-control-allow-methods": "GET, PUT",
        "access-control-allow-headers": "content-type, x-trace-id",
        "access-control-max-age": "7200",
        "vary": "Origin",
    }


def test_actual_response_gets_expose_headers_not_the_preflight_fields() -> None:
    h = as_dict(answer(STRICT, "PUT", "https://api.example/items/1", req(APP), preflight=False))
    assert h == {"access-control-allow-origin": APP, "access-control-allow-credentials": "true",
                 "access-control-expose-headers": "x-request-id", "vary": "Origin"}


@pytest.mark.parametrize("origin", [OTHER, "null", None, APP + "/", "http://app.example"])
def test_other_origins_get_no_cors_headers_only_vary(origin: str | None) -> None:
    h = answer(STRICT, "GET", "https://api.example/", req(origin), preflight=False)
    assert list(h) == [("Vary", "Origin")]


def test_wildcard_without_credentials_sends_star_and_never_null() -> None:
    h = as_dict(answer(PUBLIC, "GET", "https://api.example/", req(OTHER), preflight=False))
    assert h == {"access-control-allow-origin": "*"}
    assert len(answer(PUBLIC, "GET", "https://api.example/", req("null"), False)) == 0


def test_private_network_only_when_asked_and_allowed() -> None:
    pna = Policy(**{**_fields(STRICT), "allow_private_network": True})
    asked = req(APP, ("Access-Control-Request-Method", "PUT"),
                ("Access-Control-Request-Private-Network", "true"))
    assert answer(pna, "OPTIONS", "http://10.0.0.1/", asked, True).get(
        "access-control-allow-private-network") == "true"
    assert "access-control-allow-private-network" not in answer(
        STRICT, "OPTIONS", "http://10.0.0.1/", asked, True)
    not_asked = req(APP, ("Access-Control-Request-Method", "PUT"))
    assert "access-control-allow-private-network" not in answer(
        pna, "OPTIONS", "http://10.0.0.1/", not_asked, True)


def test_unknown_fields_send_nothing() -> None:
    unknown = Policy(allow_origins=(APP,))
    h = as_dict(answer(unknown, "OPTIONS", "https://api.example/", req(APP), True))
    assert h == {"access-control-allow-origin": APP}


def test_first_matching_path_rule_wins_and_server_policy_answers_with_proposed() -> None:
    rules = ServerPolicyRules(STRICT, (PathRule("/public/{id}", PUBLIC),
                                       PathRule("/public/{x}", STRICT)))
    server = ServerPolicy("https://api.example", observed=ServerPolicyRules(Policy()),
                          proposed=rules)
    got = answer(server, "GET", "https://api.example/public/42?q=1", req(OTHER), False)
    assert got.get("access-control-allow-origin") == "*"
    got = answer(server, "GET", "https://api.example/public/42/more", req(OTHER), False)
    assert "access-control-allow-origin" not in got


@pytest.mark.parametrize(("template", "path", "matches"), [
    ("/items/{id}", "/items/42", True),
    ("/items/{id}", "/items/", False),
    ("/items/{id}", "/items/42/x", False),
    ("/items", "/items", True),
    ("/items", "/Items", False),
    ("/", "/", True),
])
def test_path_templates(template: str, path: str, matches: bool) -> None:
    import re

    assert path_matches(template, path) is matches
    assert (re.fullmatch(template_regex(template)[1:-1], path) is not None) is matches


def _fields(p: Policy) -> dict[str, object]:
    return {name: getattr(p, name) for name in Policy.__dataclass_fields__}


def _doc() -> PolicyDocument:
    observed = ServerPolicyRules(Policy(allow_origins=(APP,), allow_methods=("GET",),
                                        max_age=None))
    proposed = ServerPolicyRules(STRICT, (PathRule("/public/{id}", PUBLIC),))
    return PolicyDocument((ServerPolicy("https://api.example", observed, proposed),))


def test_json_round_trip_through_text() -> None:
    doc = _doc()
    data = json.loads(json.dumps(policy_to_json(doc)))
    assert data["schema"] == 1
    entry = data["servers"][0]["proposed"]["paths"][0]
    # a path entry lists only what it overrides
    assert "allow_private_network" not in entry and entry["allow_origins"] == ["*"]
    assert data["servers"][0]["observed"]["allow_headers"] is None   # unknown stays null
    assert policy_from_json(data) == doc


@pytest.mark.parametrize(("mutate", "message"), [
    (lambda p: p.update(allow_origins=["null"]), "null"),
    (lambda p: p.update(allow_origins=["https://app.example/path"]), "not a serialised origin"),
    (lambda p: p.update(allow_origins=["*", APP]), "mixes"),
    (lambda p: p.update(allow_origins=["*"], allow_credentials=True), "credentials"),
    (lambda p: p.update(max_age="7200"), "whole number"),
    (lambda p: p.update(allow_methods="GET"), "list of strings"),
])
def test_unsafe_or_malformed_proposals_are_refused_naming_the_place(mutate, message) -> None:  # type: ignore[no-untyped-def]
    data = policy_to_json(_doc())
    mutate(data["servers"][0]["proposed"])
    with pytest.raises(PolicyError, match=message) as err:
        policy_from_json(data)
    assert "servers[0].proposed" in str(err.value) and "\n" not in str(err.value)


def test_wrong_schema_is_refused() -> None:
    with pytest.raises(PolicyError, match="schema"):
        policy_from_json({"schema": 2, "servers": []})


def test_safe_policies_have_no_problems() -> None:
    assert safety_problems(STRICT) == [] and safety_problems(PUBLIC) == []


origins = st.sampled_from([APP, OTHER, "null", "https://x.example:8443", "http://app.example"])


@given(origin=origins, credentials=st.booleans(), star=st.booleans(), preflight=st.booleans())
def test_answer_never_sends_null_two_values_or_star_with_credentials(
        origin: str, credentials: bool, star: bool, preflight: bool) -> None:
    p = Policy(allow_origins=("*",) if star else (APP, "https://x.example:8443"),
               allow_credentials=credentials, allow_methods=("PUT",), vary_origin=True)
    h = answer(p, "OPTIONS" if preflight else "GET", "https://api.example/x", req(origin),
               preflight)
    acao = h.get_all("access-control-allow-origin")
    assert len(acao) <= 1
    if acao:
        assert acao[0] != "null"
        assert acao[0] in ("*", origin)
        assert (acao[0] == "*") is star   # '*' is never turned into a reflected origin
        assert acao[0] == "*" or origin in (p.allow_origins or ())
