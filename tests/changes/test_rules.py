"""--set parsing, header edits, URL patterns and templates: pure rules."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from corsflow.errors import UsageError
from corsflow.model import Headers, Response
from corsflow.urls import path_template, url_matches
from corsflow.whatif.rules import ChangeSet, HeaderEdit, apply_edits, parse_set


def test_parse_set_forms() -> None:
    r = parse_set("https://api.example/v2/items/{id}: Access-Control-Allow-Headers: +X-Trace-Id")
    assert r.pattern == "https://api.example/v2/items/{id}"
    assert r.edits == (HeaderEdit("Access-Control-Allow-Headers", "add", "X-Trace-Id"),)
    assert parse_set("*: Access-Control-Max-Age: 7200").edits[0].op == "set"
    # A Max-Age of -1 is a value, not "remove 1".
    assert parse_set("*: Access-Control-Max-Age: -1").edits[0] == HeaderEdit(
        "Access-Control-Max-Age", "set", "-1")
    assert parse_set("/x: Access-Control-Allow-Methods: -PUT").edits[0].op == "remove"
    assert parse_set("/x: Access-Control-Max-Age:").edits[0].op == "delete"
    assert parse_set("https://api.example:8443/x: :status: 204").edits[0].value == "204"
    assert parse_set("https://api.example:8443/x: :status: 204").pattern == \
        "https://api.example:8443/x"


@pytest.mark.parametrize("bad", ["no separators", "https://a.example/x", "/x: NoValue",
                                 "/x: :status: teapot", ": X: 1", "/x: Bad Name: 1",
                                 "/x: :status: 2\u00b2\u00b2", "/x: :status: 0204"])
def test_parse_set_refuses_with_one_line(bad: str) -> None:
    with pytest.raises(UsageError) as e:
        parse_set(bad)
    assert "\n" not in str(e.value) and "--set" in str(e.value)


def _response(*headers: tuple[str, str], status: int = 200) -> Response:
    return Response(status, Headers(headers))


def test_edits_on_lists_and_values() -> None:
    r = _response(("Access-Control-Allow-Headers", "Content-Type, x-a"), ("Vary", "Accept"))
    out = apply_edits(r, (HeaderEdit("Access-Control-Allow-Headers", "add", "X-Trace-Id"),
                          HeaderEdit("Access-Control-Allow-Headers", "add", "X-A"),
                          HeaderEdit("Vary", "add", "Origin")), "https://app.example", True)
    assert out.headers.get("access-control-allow-headers") == "Content-Type, x-a, X-Trace-Id"
    assert out.headers.get("vary") == "Accept, Origin"
    out = apply_edits(out, (HeaderEdit("Access-Control-Allow-Headers", "remove", "x-a"),),
                      "https://app.example", True)
    assert out.headers.get("access-control-allow-headers") == "Content-Type, X-Trace-Id"


def test_a_run_of_list_edits_meets_other_edits_of_the_same_header() -> None:
    """List edits are applied as a run; a set or delete of the same header in between
    sees the run so far, and the edits after it start from what it left."""
    acah = "Access-Control-Allow-Headers"
    r = _response((acah, "x-a"), (acah, "X-B"), ("Vary", "Accept"))
    out = apply_edits(r, (HeaderEdit(acah, "add", "x-c"), HeaderEdit(acah, "remove", "X-A"),
                          HeaderEdit(acah, "add", "X-C"), HeaderEdit("Vary", "delete", ""),
                          HeaderEdit(acah, "add", "x-d")), "https://app.example", True)
    assert out.headers.get_all("access-control-allow-headers") == ("X-B, x-c, x-d",)
    assert "vary" not in out.headers
    out = apply_edits(r, (HeaderEdit(acah, "add", "x-c"), HeaderEdit(acah, "set", "x-z"),
                          HeaderEdit(acah, "add", "X-Y"), HeaderEdit(acah, "remove", "x-z")),
                      "https://app.example", True)
    assert out.headers.get_all("access-control-allow-headers") == ("X-Y",)
    out = apply_edits(r, (HeaderEdit(acah, "remove", "x-a"), HeaderEdit(acah, "remove", "x-b")),
                      "https://app.example", True)
    assert "access-control-allow-headers" not in out.headers


def test_edits_on_an_unparsable_list_leave_a_valid_one() -> None:
    r = _response(("Access-Control-Allow-Headers", "x-a, (bad)"))
    out = apply_edits(r, (HeaderEdit("Access-Control-Allow-Headers", "add", "X-B"),),
                      "https://app.example", True)
    assert out.headers.get("access-control-allow-headers") == "x-a, X-B"


def test_origin_list_answers_only_listed_origins_one_value() -> None:
    edit = (HeaderEdit("Access-Control-Allow-Origin", "origin-list",
                       "https://a.example, https://b.example"),)
    r = _response(("Access-Control-Allow-Origin", "*"))
    assert apply_edits(r, edit, "https://b.example", False).headers.get_all(
        "access-control-allow-origin") == ("https://b.example",)
    assert "access-control-allow-origin" not in apply_edits(
        r, edit, "https://evil.example", False).headers


def test_status_edit_applies_to_preflights_only_and_drops_location() -> None:
    r = _response(("Location", "/login"), status=302)
    edit = (HeaderEdit(":status", "set", "204"),)
    assert apply_edits(r, edit, "https://a.example", True).status == 204
    assert "location" not in apply_edits(r, edit, "https://a.example", True).headers
    assert apply_edits(r, edit, "https://a.example", False).status == 302


def test_url_patterns() -> None:
    url = "https://api.example/v2/items/42?x=1"
    assert url_matches("https://api.example/v2/items/{id}", url)
    assert url_matches("/v2/items/{id}", url)
    assert url_matches("https://api.example", url)
    assert url_matches("https://api.example/v2/*", url)
    assert url_matches("*", url)
    assert not url_matches("https://other.example/v2/items/{id}", url)
    assert not url_matches("/v2/items/{id}", "https://api.example/v2/items/42/comments")
    assert not url_matches("/v2/items", url)


def test_change_set_touches_only_what_it_names() -> None:
    cs = ChangeSet((parse_set("https://api.example/v2/items/{id}: X-A: 1"),))
    assert cs.touches("https://api.example/v2/items/7")
    assert not cs.touches("https://api.example/v2/search")
    assert cs.servers({"https://api.example", "https://pay.example"}) == {"https://api.example"}
    plain = _response(("Access-Control-Allow-Origin", "https://app.example"))
    assert cs.respond(plain, "GET", "https://api.example/v2/search", "https://app.example",
                      Headers(), False) is None


@pytest.mark.parametrize(("url", "template"), [
    ("https://a/v2/items/6731767", "/v2/items/{id}"),
    ("https://a/v1/files/e0ba934c-8deb-4977-bebf-27084e362861/parts/2", "/v1/files/{id}/parts/{id}"),
    ("https://a/v1/customers/cus_kEFwJVryKbPgTV/payment_methods?type=card",
     "/v1/customers/{id}/payment_methods"),
    ("https://a/blob/5d41402abc4b2a76b9719d911017c592", "/blob/{id}"),
    ("https://a/blog/how-to-read-a-har-file", "/blog/{id}"),
    ("https://a/v2/me/settings", "/v2/me/settings"),
    ("https://a/api/user-settings", "/api/user-settings"),
    ("https://a/getPaymentMethods", "/getPaymentMethods"),
    ("https://a/s/wi-403", "/s/wi-403"),
])
def test_templates(url: str, template: str) -> None:
    assert path_template(url) == template


def test_memoised_edits_answer_each_origin_with_itself() -> None:
    """A replay's memo shares one edit between origins; each response still names its own
    origin, and one the list lacks gets no Allow-Origin (as without the memo)."""
    listed = ", ".join(f"https://o{n}.example" for n in range(3000))
    edits = (HeaderEdit("Access-Control-Allow-Origin", "origin-list", listed),
             *(HeaderEdit("Access-Control-Allow-Headers", "add", f"X-H{n}") for n in range(50)),
             HeaderEdit("Access-Control-Allow-Headers", "remove", "x-h7"))
    r = Response(204, Headers((("Date", "Sat, 05 Dec 2026 09:00:00 GMT"),
                               ("Access-Control-Allow-Headers", "x-a"))))
    memo: dict = {}
    for origin in ("https://o1.example", "https://o2999.example", "https://evil.example"):
        plain = apply_edits(r, edits, origin, True)
        shared = apply_edits(r, edits, origin, True, memo)
        assert shared.headers == plain.headers
        assert shared.headers.get("access-control-allow-origin") == (
            None if origin == "https://evil.example" else origin)
        allowed = shared.headers.get("access-control-allow-headers") or ""
        assert allowed.startswith("x-a, X-H0, X-H1,") and "X-H7," not in allowed
    assert len(memo) == 2  # listed origins share one entry; the unlisted one has its own


# Patterns and URLs from few pieces, so that they often match: origins differing in case and
# port, paths with and without a trailing slash, placeholders and wildcards.
_ORIGINS = ["https://api.example", "https://API.example", "https://api.example:8443",
            "http://api.example", "https://cdn.example"]
_SEGMENTS = ["items", "42", "{id}", "{id}.json", "v{n}", "a b", "*", ""]


def _path(segments: list[str]) -> str:
    return "/" + "/".join(segments)


_patterns = st.builds(
    lambda origin, segments, slash: (origin or "") + _path(segments) + ("/" if slash else ""),
    st.sampled_from([*_ORIGINS, None]), st.lists(st.sampled_from(_SEGMENTS), max_size=3),
    st.booleans()) | st.sampled_from(["*", "", *_ORIGINS])
_urls = st.builds(
    lambda origin, segments, slash, query: origin + _path(segments) + ("/" if slash else "")
    + query,
    st.sampled_from([o.lower() for o in _ORIGINS]),
    st.lists(st.sampled_from(["items", "42", "7", "7.json", "7.json.1", ".json", "v2", "a b",
                              "x*", ""]),
             max_size=4), st.booleans(),
    st.sampled_from(["", "?q=1", "#f"]))


def _matches_by_regex(pattern: str, url: str) -> bool:
    """url_matches with every path matched by its regular expression (the plain-path
    comparison turned off, the memo passed over)."""
    from unittest.mock import patch

    with patch("corsflow.urls._is_plain", return_value=False):
        return bool(url_matches.__wrapped__(pattern, url))


@settings(max_examples=400, deadline=None)
@given(_patterns, _urls)
def test_a_plain_pattern_matches_as_its_regular_expression_would(pattern: str, url: str) -> None:
    assert url_matches(pattern, url) == _matches_by_regex(pattern, url)


@settings(max_examples=150, deadline=None)
@given(st.lists(_patterns, min_size=1, max_size=40), st.lists(_urls, min_size=1, max_size=20))
def test_the_rules_for_a_url_are_those_whose_pattern_matches_in_order(
        patterns: list[str], urls: list[str]) -> None:
    # A change lists each endpoint it edits as a rule of its own; the change set looks the
    # exact ones up. The answer must be the rules a one-by-one test finds, in their order
    # (edits apply in that order), asked once or again.
    rules = tuple(parse_set(f"{p or '*'}: X-Edit: {i}") for i, p in enumerate(patterns))
    changes = ChangeSet(rules)
    for url in urls + urls:
        assert changes.rules_for(url) == tuple(r for r in rules if r.matches(url))
        assert changes.touches(url) == any(r.matches(url) for r in rules)


@pytest.mark.parametrize(("pattern", "url", "covered"), [
    ("https://api.example/x/{id}.json", "https://api.example/x/7.json", True),
    ("https://api.example/x/{id}.json", "https://api.example/x/7.json.1", False),
    ("https://api.example/x/{id}.json", "https://api.example/x/.json", False),
    ("https://api.example/x/{id}", "https://api.example/x/7/", True),
    ("https://api.example/x/{id}", "https://api.example/x/7//", False),
    ("https://api.example/x/", "https://api.example/x//", True),
    ("https://api.example/x", "https://API.example/x?q=1", True),
    ("https://api.example/x", "https://api.example/X", False),
    ("/x/{id}", "https://other.example/x/7", True),
    ("x/{id}", "https://api.example/x/7", False),
    ("https://api.example/x/*", "https://api.example/x/7/8", True),
    ("https://api.example", "https://api.example:8443/x", False),
])
def test_an_index_of_patterns_covers_what_each_pattern_does(
        pattern: str, url: str, covered: bool) -> None:
    from corsflow.urls import PatternIndex

    assert url_matches(pattern, url) is covered
    index = PatternIndex(["https://elsewhere.example/x", pattern, "*"])
    assert index.matching(url) == ([1, 2] if covered else [2])
