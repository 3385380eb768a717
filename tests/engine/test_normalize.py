"""Header values as HTTP delivers them, whatever the capture format wrote."""

from __future__ import annotations

import json
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from corsflow.analysis import analyze_exchanges, analyze_paths
from corsflow.engine.normalize import normalize
from tests.conftest import SAMPLES
from tests.factories import API, PAGE, exchange

ows = st.text(alphabet=" \t", max_size=3)


def verdict_of(response: dict[str, str], request: list[tuple[str, str]]) -> tuple[object, ...]:
    v = analyze_exchanges([exchange(0, "GET", API + "/a", request, started=1.0,
                                    response_headers=response)]).exchanges[0]
    return (v.role, v.verdict, v.cors_error)


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(["*", PAGE, "null", "http://evil.example", PAGE + ", " + PAGE]),
       st.sampled_from(["true", "TRUE", None]), ows, ows, ows, ows)
def test_whitespace_around_values_never_changes_a_verdict(
        acao: str, acac: str | None, a: str, b: str, c: str, d: str) -> None:
    plain = {"Access-Control-Allow-Origin": acao}
    padded = {"Access-Control-Allow-Origin": a + acao + b}
    if acac is not None:
        plain["Access-Control-Allow-Credentials"] = acac
        padded["Access-Control-Allow-Credentials"] = c + acac + d
    request = [("Origin", PAGE), ("Cookie", "s=1")]
    padded_request = [("Origin", c + PAGE + a), ("Cookie", "s=1")]
    assert verdict_of(padded, padded_request) == verdict_of(plain, request)


def test_padded_wildcard_is_a_wildcard() -> None:
    assert verdict_of({"Access-Control-Allow-Origin": " *  "}, [("Origin", PAGE)]) == (
        "simple", "allowed", None)


def test_origin_listed_twice_with_one_value_is_one_origin() -> None:
    same = exchange(0, "GET", API + "/font.woff2", [("Origin", API), ("origin", API)],
                    started=1.0)
    assert normalize(same).request_headers.get_all("origin") == (API,)
    v = analyze_exchanges([same]).exchanges[0]
    assert (v.role, v.verdict) == ("other", None)  # same-origin, as the browser saw it
    # Two different values are not a writer's repetition: left as they are.
    two = exchange(1, "GET", API + "/x", [("Origin", API), ("Origin", PAGE)], started=1.0)
    assert normalize(two) is two


def test_unchanged_exchange_is_returned_as_is() -> None:
    x = exchange(0, "GET", API + "/a", {"Origin": PAGE}, started=1.0,
                 response_headers={"Access-Control-Allow-Origin": PAGE})
    assert normalize(x) is x


def har_with_quirks(source: Path, target: Path) -> Path:
    """The file as chrome-har writes it (Origin twice) with untrimmed CORS values."""
    doc = json.loads(source.read_text(encoding="utf-8-sig"))
    for e in doc["log"]["entries"]:
        headers = e["request"]["headers"]
        headers += [dict(h) for h in headers if h["name"].lower() == "origin"]
        for h in e["response"]["headers"]:
            if h["name"].lower().startswith("access-control-"):
                h["value"] = " " + h["value"] + " \t"
    target.write_text(json.dumps(doc), encoding="utf-8")
    return target


def _errors(path: Path) -> list[tuple[str, str, str]]:
    """Every verdict and every finding, as comparable text."""
    report = analyze_paths([str(path)])
    return sorted((v.exchange.id, v.role, f"{v.verdict} {v.cors_error}")
                  for v in report.exchanges) + sorted(
        (f.code, f.severity, str(f.count or len(f.exchange_ids))) for f in report.findings)


def test_writer_quirks_change_nothing_in_the_sample(tmp_path: Path) -> None:
    source = SAMPLES / "chromium-session.har"
    assert _errors(har_with_quirks(source, tmp_path / "q.har")) == _errors(source)


def test_writer_quirks_change_nothing_in_real_captures(corpus: Path, tmp_path: Path) -> None:
    for name in ("chrome-har-0.2.3-verizon-preflights-lowercase.har",
                 "webpagetest-2.17-aftonbladet-cors-preflights.har"):
        source = corpus / "har" / name
        assert _errors(har_with_quirks(source, tmp_path / name)) == _errors(source), name
