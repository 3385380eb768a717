"""HAR ingest against the real corpus and against small HARs written for one edge case each."""

from __future__ import annotations

import json
import random
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from corsflow.errors import Diagnostics, IngestError
from corsflow.ingest import jsonstream, open_capture
from corsflow.ingest.har import normalise_http_version, parse_started, read_har
from corsflow.model import Exchange, Timings

from .layout import dump

REPO_ROOT = Path(__file__).resolve().parents[2]
HAR_DIR = REPO_ROOT.parent / "shared" / "corpus" / "har"
NO_CORPUS = "the shared corpus (../shared/corpus/har beside the repository) is not present"
INVALID = "invalid-not-json.har"
# Files with entries that cannot become exchanges, and why (measured with json.load: the one
# entry of this trimmed fixture has no request.method and no startedDateTime).
DAMAGED = {"minimal-no-version-no-creator.har": {"request.method missing or not a string": 1}}


def corpus_file(name: str) -> Path:
    path = HAR_DIR / name
    if not path.is_file():
        pytest.skip(NO_CORPUS)
    return path


def corpus_params() -> list[Any]:
    if not HAR_DIR.is_dir():
        return [pytest.param(None, marks=pytest.mark.skip(reason=NO_CORPUS))]
    return [pytest.param(p, id=p.name) for p in sorted(HAR_DIR.glob("*.har")) if p.name != INVALID]


def read(path: Path | str) -> tuple[list[Exchange], Diagnostics]:
    diagnostics = Diagnostics()
    return list(read_har(str(path), diagnostics)), diagnostics


def json_entries(path: Path) -> list[Any]:
    with open(path, encoding="utf-8-sig") as f:
        entries = json.load(f)["log"]["entries"]
    assert isinstance(entries, list)
    return entries


def write_har(tmp_path: Path, entries: list[Any], indent: int | None = 2, **log: Any) -> Path:
    doc = {"log": {"version": "1.2", "creator": {"name": "test", "version": "1"}, **log,
                   "entries": entries}}
    path = tmp_path / "t.har"
    path.write_text(json.dumps(doc, indent=indent), encoding="utf-8")
    return path


def entry(url: str = "https://api.example/x", method: str = "GET", status: int = 200,
          headers: list[Any] | None = None, **extra: Any) -> dict[str, Any]:
    e: dict[str, Any] = {
        "startedDateTime": "2024-05-14T09:21:33.123Z",
        "time": 12.5,
        "request": {"method": method, "url": url, "httpVersion": "HTTP/1.1",
                    "headers": headers if headers is not None else [
                        {"name": "Origin", "value": "https://app.example"}]},
        "response": {"status": status, "statusText": "OK", "httpVersion": "HTTP/1.1",
                     "headers": [{"name": "Access-Control-Allow-Origin", "value": "*"}],
                     "content": {"size": 2, "text": "{}"}},
        "timings": {"blocked": -1, "dns": -1, "connect": -1, "send": 1, "wait": 10,
                    "receive": 1.5},
    }
    e.update(extra)
    return e


# -- the corpus ---------------------------------------------------------------------------------


@pytest.mark.parametrize("path", corpus_params())
def test_corpus_file_reads_every_entry(path: Path) -> None:
    exchanges, diagnostics = read(path)
    entries = json_entries(path)
    assert dict(diagnostics.skipped_by_reason) == DAMAGED.get(path.name, {})
    assert len(exchanges) == len(entries) - diagnostics.skipped_count
    assert [x.source.index for x in exchanges] == sorted(x.source.index for x in exchanges)


@pytest.mark.parametrize("path", corpus_params())
def test_corpus_file_matches_json_load(path: Path) -> None:
    """The streamed exchanges carry exactly what json.load finds in the same entries."""
    exchanges, _ = read(path)
    entries = json_entries(path)
    for x in exchanges:
        e = entries[x.source.index]
        assert x.id == f"e{x.source.index}"
        assert (x.method, x.url) == (e["request"]["method"], e["request"]["url"])
        assert x.request_headers.items == tuple(
            (h["name"], h["value"]) for h in e["request"].get("headers", [])
            if not h["name"].startswith(":"))
        assert x.started == datetime.fromisoformat(e["startedDateTime"]).timestamp()
        status = e["response"]["status"]
        if status > 0:
            assert x.response is not None and x.response.status == status
            assert x.response.headers.items == tuple(
                (h["name"], h["value"]) for h in e["response"]["headers"]
                if not h["name"].startswith(":"))
        else:
            assert x.response is None
        error = e["response"].get("_error")
        if error:
            assert x.failure == error
        elif status <= 0:
            assert x.failure == f"status {status} (no response recorded)"
        else:
            assert x.failure is None


@pytest.mark.parametrize("name", ["chrome-devtools-requestgenerator-all-methods-options.har",
                                  "webpagetest-2.17-aftonbladet-cors-preflights.har",
                                  "chrome-devtools-post-utf8-bom.har"])
def test_tiny_chunks_give_the_same_exchanges(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Buffer boundaries anywhere (inside strings, escapes, the BOM) change nothing."""
    path = corpus_file(name)
    expected, _ = read(path)
    monkeypatch.setattr(jsonstream, "CHUNK", 997)
    monkeypatch.setattr(jsonstream, "LOOKAHEAD", 3000)
    assert read(path)[0] == expected


def test_invalid_json_is_one_line_error_naming_the_file() -> None:
    path = corpus_file(INVALID)
    with pytest.raises(IngestError) as caught:
        read(path)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(str(path))
    # json.load says "Expecting ',' delimiter: line 8 column 5 (char 110)".
    assert "not valid JSON near byte 110" in message


def test_aftonbladet_has_three_preflights() -> None:
    exchanges, _ = read(corpus_file("webpagetest-2.17-aftonbladet-cors-preflights.har"))
    preflights = [x for x in exchanges
                  if x.method == "OPTIONS" and "access-control-request-method" in x.request_headers]
    assert [x.id for x in preflights] == ["e103", "e128", "e210"]
    assert {x.request_headers.get("Access-Control-Request-Method") for x in preflights} == {"POST"}
    assert all(x.request_headers.get("origin") == "http://www.aftonbladet.se" for x in preflights)
    assert exchanges[0].hints.creator == "WebPagetest"


def test_verizon_preflights_found_whatever_the_header_case() -> None:
    exchanges, _ = read(corpus_file("chrome-har-0.2.3-verizon-preflights-lowercase.har"))
    preflights = [x for x in exchanges
                  if x.method == "OPTIONS" and x.request_headers.get("ACCESS-CONTROL-REQUEST-METHOD")]
    assert [x.id for x in preflights] == ["e126", "e140"]
    title, lower = preflights
    # Names keep the capture's case: Title-Case on HTTP/1.1, lower case on HTTP/2.
    assert "Access-Control-Request-Method" in dict(title.request_headers.items)
    assert "access-control-request-method" in dict(lower.request_headers.items)
    assert lower.http_version == "HTTP/2"
    assert lower.request_headers.names() >= {"origin", "access-control-request-headers"}


@pytest.mark.parametrize("path", corpus_params())
def test_pseudo_headers_never_reach_request_headers(path: Path) -> None:
    exchanges, _ = read(path)
    assert not [n for x in exchanges for n, _ in x.request_headers if n.startswith(":")]


def test_pseudo_headers_were_there_to_drop() -> None:
    path = corpus_file("chrome-har-capturer-0.10-cnn-preflight.har")
    with_pseudo = {i for i, e in enumerate(json_entries(path))
                   if any(h["name"].startswith(":") for h in e["request"]["headers"])}
    assert len(with_pseudo) == 19
    exchanges, _ = read(path)
    assert all(x.request_headers.get("user-agent") for x in exchanges
               if x.source.index in with_pseudo)


@pytest.mark.parametrize("name, failures", [
    ("chrome-devtools-http2-h3.har", {"net::ERR_INTERNET_DISCONNECTED": 1}),
    ("firefox-47-failed-requests-status0.har", {"status 0 (no response recorded)": 2}),
    ("mitmproxy-export-incomplete-status0.har", {"status 0 (no response recorded)": 4}),
    ("charles-3.6-connect-tunnels.har", {"status -1 (no response recorded)": 2}),
    ("chrome-devtools-status0-aborted.har", {"status 0 (no response recorded)": 1}),
])
def test_status_zero_means_no_response(name: str, failures: dict[str, int]) -> None:
    exchanges, _ = read(corpus_file(name))
    failed = [x for x in exchanges if x.response is None]
    assert {f: sum(1 for x in failed if x.failure == f) for f in failures} == failures
    assert len(failed) == sum(failures.values())
    assert all(x.status is None for x in failed)


def test_real_status_with_chrome_error_keeps_both() -> None:
    exchanges, _ = read(corpus_file("chrome-devtools-requestgenerator-all-methods-options.har"))
    aborted = [x for x in exchanges if x.failure == "net::ERR_ABORTED"]
    assert len(aborted) == 82
    assert all(x.response is not None and x.response.status > 0 for x in aborted)
    proxy = [x for x in exchanges if x.failure == "net::ERR_UNEXPECTED_PROXY_AUTH"]
    assert len(proxy) == 11 and all(x.response is None for x in proxy)


@pytest.mark.parametrize("name, count", [("fiddler-4.6-ie11-bom.har", 11),
                                         ("chrome-devtools-post-utf8-bom.har", 1)])
def test_files_with_a_bom_are_read(name: str, count: int) -> None:
    path = corpus_file(name)
    assert path.read_bytes().startswith(b"\xef\xbb\xbf")
    exchanges, diagnostics = read(path)
    assert len(exchanges) == count and diagnostics.skipped_count == 0
    assert open_capture(str(path), Diagnostics())[0] == "har"


def test_chrome_fields_land_in_hints() -> None:
    exchanges, _ = read(corpus_file("chrome-devtools-requestgenerator-all-methods-options.har"))
    assert {x.hints.resource_type for x in exchanges} == {"fetch"}
    assert sum(x.hints.from_cache == "disk" for x in exchanges) == 4
    assert {x.hints.creator for x in exchanges} == {"WebInspector"}
    cnn, _ = read(corpus_file("chrome-har-capturer-0.10-cnn-preflight.har"))
    assert cnn[0].hints.initiator_type == "other"
    assert cnn[0].hints.creator == "Chrome HAR Capturer"
    # chrome-har writes _initiator as the bare URL of the initiating document or script.
    verizon, _ = read(corpus_file("chrome-har-0.2.3-verizon-preflights-lowercase.har"))
    urls = [x.hints.initiator_url for x in verizon if x.hints.initiator_url]
    assert len(urls) == 63 and "https://www.verizonwireless.com/devices/" in urls
    assert all(x.hints.initiator_type is None for x in verizon)
    ws, _ = read(corpus_file("mitmproxy-export-websocket.har"))
    assert [x.hints.resource_type for x in ws] == ["websocket"] * 3


def test_started_with_offsets_converts_to_utc() -> None:
    # 2014-08-11T11:16:54.324+02:00 is 09:16:54.324 UTC: 16293 days after 1970-01-01
    # (16293 * 86400 = 1407715200) plus 9 h 16 min 54.324 s (33414.324 s).
    (x,) = read(corpus_file("charles-3.9-cross-origin-xhr-base64.har"))[0]
    assert x.started == pytest.approx(1407715200 + 33414.324, abs=1e-6)
    # 2014-04-16T17:13:04.099+05:30 is 11:43:04.099 UTC.
    first, second = read(corpus_file("charles-3.6-connect-tunnels.har"))[0]
    assert first.started == pytest.approx(1397648584.099, abs=1e-6)
    assert second.started - first.started == pytest.approx(0.001, abs=1e-6)
    assert first.timings is not None and first.timings.dns is None and first.timings.wait is None


def test_http_versions_of_the_corpus() -> None:
    expressen, _ = read(corpus_file("webpagetest-17.12-expressen-odd-httpversion.har"))
    # "1.1" on 287 entries, "" on 3 and the garbage "ori" on 317.
    versions = [x.http_version for x in expressen]
    assert (versions.count("HTTP/1.1"), versions.count(None)) == (287, 320)
    firefox, _ = read(corpus_file("firefox-111-http3.har"))
    assert [x.http_version for x in firefox].count("HTTP/3") == 8


# -- small HARs for one case each ----------------------------------------------------------------


def test_mapping_of_one_entry(tmp_path: Path) -> None:
    e = entry(
        headers=[{"name": ":authority", "value": "api.example"},
                 {"name": "Origin", "value": "https://app.example"},
                 {"name": "X-Count", "value": 3}, {"name": "X-Flag", "value": True},
                 {"name": 5, "value": "numeric name"}, {"name": "X-Null", "value": None},
                 {"name": "X-Obj", "value": {"a": 1}}, {"name": "", "value": "empty name"},
                 {"name": {"n": 1}, "value": "object name"}, {"value": "no name"}],
        pageref="page_1", serverIPAddress="", _resourceType="preflight",
        _initiator={"type": "preflight", "url": "https://api.example/x", "stack": {}},
        _fromCache="memory")
    e["request"]["httpVersion"] = "h2"
    e["response"]["_error"] = "net::ERR_FAILED"
    path = write_har(tmp_path, [e])
    (x,), diagnostics = read(path)
    assert x.id == "e0" and x.source.where == "entry 0" and x.source.format == "har"
    assert x.request_headers.items == (("Origin", "https://app.example"), ("X-Count", "3"),
                                       ("X-Flag", "true"), ("X-Null", ""))
    assert diagnostics.notes and diagnostics.skipped_count == 0
    assert x.http_version == "HTTP/2"
    assert x.started == pytest.approx(1715678493.123, abs=1e-6)
    assert x.response is not None and x.response.status == 200 and x.response.reason == "OK"
    assert x.response.finished == pytest.approx(x.started + 0.0125)
    assert x.failure == "net::ERR_FAILED"  # a CORS-blocked response Chrome did receive
    assert x.timings is not None
    assert (x.timings.blocked, x.timings.wait, x.timings.receive, x.timings.total) == (
        None, 10.0, 1.5, 12.5)
    h = x.hints
    assert (h.resource_type, h.initiator_type, h.initiator_url, h.from_cache, h.page_ref,
            h.server_ip, h.creator) == ("preflight", "preflight", "https://api.example/x",
                                        "memory", "page_1", None, "test")


def test_damaged_entries_are_skipped_and_counted(tmp_path: Path) -> None:
    no_url = entry()
    del no_url["request"]["url"]
    bad_time = entry(startedDateTime="yesterday")
    bad_headers = entry(headers="Origin: x")  # type: ignore[arg-type]
    bad_response_headers = entry()
    bad_response_headers["response"]["headers"] = [1, 2]
    bad_timings = entry(timings="fast", _initiator=7)
    entries = [entry(url="https://a.example/0"), "not an entry", {"response": {}}, no_url,
               bad_time, bad_headers, bad_response_headers, [], bad_timings,
               entry(url="https://a.example/9")]
    exchanges, diagnostics = read(write_har(tmp_path, entries))
    assert [x.id for x in exchanges] == ["e0", "e8", "e9"]
    assert exchanges[1].timings == Timings(total=12.5)
    assert exchanges[1].hints.initiator_url is None
    assert [(s.where, s.reason) for s in diagnostics.skipped] == [
        ("entry 1", "entry is not an object"),
        ("entry 2", "no request object"),
        ("entry 3", "request.url missing or not a string"),
        ("entry 4", "startedDateTime missing or unparsable"),
        ("entry 5", "request.headers is not a list of objects"),
        ("entry 6", "response.headers is not a list of objects"),
        ("entry 7", "entry is not an object"),
    ]
    assert diagnostics.skipped_by_reason["entry is not an object"] == 2


def test_response_variants(tmp_path: Path) -> None:
    no_response = entry()
    del no_response["response"]
    text_status = entry()
    text_status["response"]["status"] = "404"
    junk_status = entry()
    junk_status["response"]["status"] = "n/a"
    empty_reason = entry()
    empty_reason["response"]["statusText"] = ""
    exchanges, _ = read(write_har(tmp_path, [no_response, text_status, junk_status,
                                             empty_reason]))
    assert (exchanges[0].response, exchanges[0].failure) == (None, "no response recorded")
    assert exchanges[1].status == 404
    assert (exchanges[2].response, exchanges[2].failure) == (
        None, "response status missing or unreadable")
    assert exchanges[3].response is not None and exchanges[3].response.reason is None


def test_invalid_utf8_in_a_used_field_is_read_as_latin1(tmp_path: Path) -> None:
    """Bytes that are not UTF-8 (a producer writing a header's bytes as they came) are read
    as the characters of the same value, as the Fetch standard decodes header bytes; the
    entry is kept, and a body's bytes are never decoded at all."""
    odd = entry(_initiator=7)  # goes the lenient way, which must not decode the body either
    odd["response"]["content"]["text"] = "BODY"
    path = write_har(tmp_path, [
        entry(url="https://a.example/BAD", headers=[{"name": "X-Name", "value": "caf-BAD"}]),
        entry(),
        entry(response={"status": 200, "headers": [], "content": {"text": "BODY"}}),
        odd,
    ])
    data = path.read_bytes().replace(b"BAD", b"\xe9\xff").replace(b"BODY", b"\xff")
    path.write_bytes(data)
    exchanges, diagnostics = read(path)
    assert [x.id for x in exchanges] == ["e0", "e1", "e2", "e3"]
    assert diagnostics.skipped_count == 0
    assert exchanges[0].url == "https://a.example/\u00e9\u00ff"
    assert exchanges[0].request_headers.get("x-name") == "caf-\u00e9\u00ff"
    assert any("Latin-1" in note for note in diagnostics.notes)


def test_invalid_json_inside_one_entry_skips_only_that_entry(tmp_path: Path) -> None:
    """NaN, a lone surrogate escape, an integer of thousands of digits and nesting too deep
    for any decoder: the damaged entry is skipped and counted, the others are read."""
    entries = [entry(url=f"https://a.example/{i}") for i in range(8)]
    entries[1]["time"] = "NAN"
    entries[3]["request"]["url"] = "LONE"
    entries[5]["_deep"] = "DEEP"
    entries[6]["time"] = "HUGE"
    path = write_har(tmp_path, entries)
    data = (path.read_bytes().replace(b'"NAN"', b"NaN").replace(b'"LONE"', b'"\\ud800x"')
            .replace(b'"DEEP"', b"[" * 5000 + b"]" * 5000)
            .replace(b'"HUGE"', b"9" * 5000))
    path.write_bytes(data)
    exchanges, diagnostics = read(path)
    assert [x.url for x in exchanges] == [f"https://a.example/{i}" for i in (0, 2, 4, 6, 7)]
    huge = exchanges[3]  # an integer of 5000 digits is no duration: the time is unknown
    assert huge.timings is not None and huge.timings.total is None
    assert dict(diagnostics.skipped_by_reason) == {"entry is not valid JSON": 3}


def test_tricky_strings_and_formatting_give_identical_exchanges(tmp_path: Path) -> None:
    """Braces, quotes, backslashes and separator look-alikes inside strings, any layout."""
    tricky = ['}', '{', '"', '\\', '\\"', '"}', '},{"startedDateTime"', '}\n    },\n    {',
              '\\\\"}]}', '\u2028\u00e9\U0001f600', "]}}", '\\u0022']
    entries = []
    for i, text in enumerate(tricky * 3):
        e = entry(url=f"https://api.example/{i}?q={text}",
                  headers=[{"name": "X-Text", "value": text}],
                  _initiator={"type": "script", "url": text, "stack": {"callFrames": [
                      {"functionName": text, "url": "{"}]}})
        e["response"]["content"]["text"] = text * 5
        entries.append(e)
    results = []
    for indent in (None, 0, 1, 2, 4):
        exchanges, diagnostics = read(write_har(tmp_path, entries, indent=indent))
        assert diagnostics.skipped_count == 0
        results.append(exchanges)
    assert all(r == results[0] for r in results[1:])
    assert [x.request_headers.get("x-text") for x in results[0]] == tricky * 3
    assert [x.url for x in results[0]] == [e["request"]["url"] for e in entries]
    compact = tmp_path / "compact.har"
    compact.write_text(json.dumps({"log": {"creator": {"name": "test"}, "entries": entries}},
                                  separators=(",", ":")))
    assert [x.url for x in read(compact)[0]] == [x.url for x in results[0]]


STRUCTURE = st.lists(st.sampled_from(['{', '}', '"', '\\', ',', ':', '[', ']', '\n', 'a', ' ',
                                       '},{"request"', '\u00e9']), min_size=1, max_size=5
                     ).map("".join)
JUNK = st.recursive(st.one_of(st.none(), st.integers(), STRUCTURE),
                    lambda inner: st.one_of(st.lists(inner, max_size=3),
                                            st.dictionaries(st.sampled_from(["name", "value",
                                                                             "request", "a"]),
                                                            inner, max_size=3)),
                    max_leaves=10)
HEADERS = st.lists(st.fixed_dictionaries({"name": st.one_of(STRUCTURE, st.just(":path")),
                                          "value": STRUCTURE}), max_size=4)
HAR_ENTRIES = st.lists(st.fixed_dictionaries({
    "startedDateTime": st.sampled_from(["2024-05-14T09:21:33.123Z", "2024-05-14T11:21:33+02:00"]),
    "request": st.fixed_dictionaries({"method": STRUCTURE, "url": STRUCTURE, "headers": HEADERS,
                                      "postData": JUNK}),
    "response": st.fixed_dictionaries({"status": st.sampled_from([0, -1, 200, 404]),
                                       "headers": HEADERS, "content": JUNK}),
    "_initiator": st.one_of(st.none(), STRUCTURE, st.fixed_dictionaries({"stack": JUNK})),
    "_junk": JUNK,
}), max_size=8)


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(entries=HAR_ENTRIES, seed=st.integers(0, 2**32))
def test_any_layout_and_key_order_reads_like_json_loads(tmp_path: Path, entries: list[Any],
                                                        seed: int) -> None:
    rnd = random.Random(seed)
    for e in entries:  # producers differ in key order; the learned separator must cope
        items = list(e.items())
        rnd.shuffle(items)
        e.clear()
        e.update(items)
    text = dump({"log": {"creator": {"name": "h"}, "entries": entries}}, rnd)
    path = tmp_path / "h.har"
    path.write_text(text, encoding="utf-8")
    exchanges, diagnostics = read(path)
    assert diagnostics.skipped_count == 0
    expected = json.loads(text)["log"]["entries"]
    assert [(x.method, x.url, x.request_headers.items, x.status) for x in exchanges] == [
        (e["request"]["method"], e["request"]["url"],
         tuple((h["name"], h["value"]) for h in e["request"]["headers"]
               if not h["name"].startswith(":")),
         e["response"]["status"] if e["response"]["status"] > 0 else None)
        for e in expected]


def test_entry_bigger_than_the_read_chunk(tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(jsonstream, "CHUNK", 256)
    monkeypatch.setattr(jsonstream, "LOOKAHEAD", 1024)
    big = entry(url="https://a.example/big")
    big["response"]["content"]["text"] = "x}\"{" * 50_000
    entries = [entry(), entry(), big, entry(), entry(url="https://a.example/last")]
    exchanges, diagnostics = read(write_har(tmp_path, entries))
    assert [x.url for x in exchanges] == [e["request"]["url"] for e in entries]
    assert diagnostics.skipped_count == 0


def test_key_order_and_other_top_level_keys(tmp_path: Path) -> None:
    path = tmp_path / "order.har"
    doc = {"comment": {"entries": ["not these"]}, "log": {
        "entries": [entry()], "pages": [{"id": "p"}], "creator": {"name": "late"}}}
    path.write_text(json.dumps(doc))
    (x,), _ = read(path)
    assert x.hints.creator is None  # written after the entries: documented as not seen


def test_no_offset_is_read_as_utc_and_noted(tmp_path: Path) -> None:
    (x,), diagnostics = read(write_har(tmp_path, [entry(startedDateTime="2024-05-14T09:21:33")]))
    assert x.started == 1715678493.0
    assert any("without a UTC offset" in n for n in diagnostics.notes)


@pytest.mark.parametrize("text, message", [
    ("[]", "not a HAR file: the top level is not a JSON object"),
    ('{"foo": 1}', "not a HAR file: no log object"),
    ('{"log": {"version": "1.2"}}', "not a HAR file: no log.entries array"),
    ('{"log": {"entries": {}}}', "not a HAR file: log.entries is not an array"),
    ('{"log": [1]}', "not a HAR file: log is not an object"),
    ('{"log": {"version": "1.2", "entr', "file ends at byte 32 in the middle of a value"),
    ('{"log": {"version": 1.2.3}}', "not valid JSON near byte"),
    ("", "file ends at byte 0"),
])
def test_unreadable_files_raise_one_line(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.har"
    path.write_text(text)
    with pytest.raises(IngestError) as caught:
        read(path)
    assert str(caught.value).startswith(f"{path}: {message}")
    assert "\n" not in str(caught.value)


def test_utf16_file_is_named_as_such(tmp_path: Path) -> None:
    path = tmp_path / "utf16.har"
    path.write_text(json.dumps({"log": {"entries": [entry()]}}), encoding="utf-16")
    with pytest.raises(IngestError, match="UTF-16"):
        read(path)


def test_missing_file_raises(tmp_path: Path) -> None:
    with pytest.raises(IngestError, match="cannot open"):
        read(tmp_path / "absent.har")
    with pytest.raises(IngestError, match="cannot open"):
        read(tmp_path)


def test_truncated_after_some_entries_keeps_them(tmp_path: Path) -> None:
    path = write_har(tmp_path, [entry(url=f"https://a.example/{i}") for i in range(4)])
    data = path.read_bytes()
    cut = data.index(b"https://a.example/2")
    path.write_bytes(data[:cut])
    exchanges, diagnostics = read(path)
    assert [x.url for x in exchanges] == ["https://a.example/0", "https://a.example/1"]
    assert [(s.where, s.reason) for s in diagnostics.skipped] == [
        ("entry 2", "file truncated: the entries from here on are missing")]
    assert any(f"byte {cut}" in n for n in diagnostics.notes)


def test_syntax_error_inside_an_entry_skips_that_entry(tmp_path: Path) -> None:
    """The entry's brackets still show where it ends: only it is lost."""
    path = write_har(tmp_path, [entry(url=f"https://a.example/{i}") for i in range(5)])
    path.write_bytes(path.read_bytes().replace(b'"https://a.example/3"', b'"x" "y"'))
    exchanges, diagnostics = read(path)
    assert [x.id for x in exchanges] == ["e0", "e1", "e2", "e4"]
    assert diagnostics.skipped[0].where == "entry 3"
    assert diagnostics.skipped[0].reason == "entry is not valid JSON"


def test_syntax_error_between_entries_keeps_those_before(tmp_path: Path) -> None:
    path = write_har(tmp_path, [entry(url=f"https://a.example/{i}") for i in range(4)])
    data = path.read_bytes()
    third = data.index(b'"startedDateTime"', data.index(b'"https://a.example/2"'))
    cut = data.rindex(b",", 0, third)
    path.write_bytes(data[:cut] + b" x " + data[cut:])
    exchanges, diagnostics = read(path)
    assert len(exchanges) == 3
    assert diagnostics.skipped[0].where == "entry 3"
    assert diagnostics.skipped[0].reason == "JSON syntax error: the rest of the file was not read"


def test_absurd_nesting_stops_reading_without_a_traceback(tmp_path: Path) -> None:
    path = write_har(tmp_path, [entry(), entry(), entry()])
    data = path.read_bytes()
    second = data.index(b'"request"', data.index(b'"request"') + 1)
    deep = b'"deep": ' + b"[" * 100_000 + b"]" * 100_000 + b", "
    path.write_bytes(data[:second] + deep + data[second:])
    exchanges, diagnostics = read(path)
    assert [x.id for x in exchanges] == ["e0", "e2"]
    assert diagnostics.skipped[0].where == "entry 1"
    assert diagnostics.skipped[0].reason == "entry is not valid JSON"


def test_broken_first_entry_raises(tmp_path: Path) -> None:
    path = write_har(tmp_path, [entry(), entry()])
    data = path.read_bytes()
    path.write_bytes(data[: data.index(b'"request"')])
    with pytest.raises(IngestError) as caught:
        read(path)
    assert str(caught.value).startswith(f"{path}, entry 0: file ends at byte")


def test_empty_entries(tmp_path: Path) -> None:
    assert read(write_har(tmp_path, [])) == ([], Diagnostics())


# -- conversions ---------------------------------------------------------------------------------


@pytest.mark.parametrize("raw, expected", [
    ("HTTP/1.1", "HTTP/1.1"), ("http/1.1", "HTTP/1.1"), ("1.1", "HTTP/1.1"),
    ("HTTP/1.0", "HTTP/1.0"), (" HTTP/1.1 ", "HTTP/1.1"),
    ("h2", "HTTP/2"), ("http/2.0", "HTTP/2"), ("HTTP/2", "HTTP/2"), ("HTTP/2.0", "HTTP/2"),
    ("h3", "HTTP/3"), ("HTTP/3", "HTTP/3"), ("h3-29", "HTTP/3"),
    ("", None), ("unknown", None), ("ori", None), ("me:", None), ("HTTP/1.7", None),
    ("HTTP/2.1", None), (None, None), (2, None),
])
def test_normalise_http_version(raw: object, expected: str | None) -> None:
    assert normalise_http_version(raw) == expected


@pytest.mark.parametrize("raw, expected", [
    ("1970-01-01T00:00:00Z", (0.0, True)),
    ("1970-01-01T01:00:00.5+01:00", (0.5, True)),
    ("1970-01-01T00:00:00.123456789Z", (0.123456, True)),
    ("1969-12-31T19:30:00.25-04:30", (0.25, True)),
    ("1970-01-01T00:00:01", (1.0, False)),
    ("", None), ("tomorrow", None), (None, None), (1715678493, None),
])
def test_parse_started(raw: object, expected: tuple[float, bool] | None) -> None:
    assert parse_started(raw) == expected


# -- the project's own recorded Chromium sessions (samples/) -------------------------------------


def sample(name: str) -> Path:
    path = REPO_ROOT / "samples" / name
    if not path.is_file():
        pytest.skip(f"samples/{name} is not in this checkout")
    return path


def test_playwright_failures_use_failure_text() -> None:
    """Playwright writes status -1 and ``_failureText`` where DevTools writes 0 and ``_error``,
    even for a response that arrived but lacked Access-Control-Allow-Origin."""
    exchanges, diagnostics = read(sample("chromium-playwright.har"))
    assert diagnostics.skipped_count == 0
    failed = [x for x in exchanges if x.response is None]
    assert {x.failure for x in failed} == {"net::ERR_FAILED"}
    assert sorted(x.url.split("?s=")[1].split("&")[0] for x in failed) == sorted([
        "no-acao", "acao-mismatch", "actual-no-acao", "preflight-404-bare",
        "method-not-allowed", "header-not-allowed"])
    assert {x.hints.creator for x in exchanges} == {"Playwright"}
    assert not [x for x in exchanges if x.method == "OPTIONS"]  # Playwright omits preflights


def test_mitmproxy_har_of_a_chromium_session() -> None:
    exchanges, diagnostics = read(sample("chromium-session.har"))
    entries = json.loads(sample("chromium-session.har").read_text(encoding="utf-8-sig"))
    entries = entries["log"]["entries"]
    assert diagnostics.skipped_count == 0 and len(exchanges) == len(entries)
    preflights = [x for x in exchanges if x.method == "OPTIONS"
                  and x.request_headers.get("access-control-request-method")]
    assert len(preflights) == sum(
        1 for e in entries if e["request"]["method"] == "OPTIONS" and any(
            h["name"].lower() == "access-control-request-method" for h in e["request"]["headers"]))
    assert preflights
    nocache = [x for x in preflights if x.request_headers.get("pragma") == "no-cache"]
    assert len(nocache) == 3  # the first three steps of the nocache scenario
    assert {x.hints.creator for x in exchanges} == {"mitmproxy"}


# -- lean reading (a reading process's: only the response fields the analysis reads) -------


def _lean_equals_full(path: Path) -> None:
    from corsflow.ingest.lean import response_fields_read

    full, lean = Diagnostics(), Diagnostics()
    expected = [response_fields_read(x) for x in read_har(str(path), full)]
    assert list(read_har(str(path), lean, lean=True)) == expected
    assert (lean.skipped, lean.skipped_by_reason, lean.notes) == (
        full.skipped, full.skipped_by_reason, full.notes)


@pytest.mark.parametrize("path", [*corpus_params(), *(
    pytest.param(p, id=p.name) for p in sorted((REPO_ROOT / "samples").glob("*.har")))])
def test_lean_reading_leaves_out_what_response_fields_read_does(path: Path) -> None:
    _lean_equals_full(path)


def test_lean_reading_of_odd_response_fields(tmp_path: Path) -> None:
    """Fields that are not plain strings are kept or noted exactly as in a full reading."""
    odd = [{"name": "Access-Control-Max-Age", "value": 600},
           {"name": "access-control-allow-credentials", "value": True},
           {"name": "Content-Length", "value": 2}, {"name": None, "value": "x"},
           {"name": "", "value": "empty name"}, {"name": "VARY", "value": None},
           {"name": ":status", "value": "200"}, {"name": "Server", "value": "s"},
           {"name": "Set-Cookie", "value": "a=1"}, {"name": "X-Access-Control", "value": "x"}]
    e = entry()
    e["response"]["headers"] = odd
    path = write_har(tmp_path, [e, entry(url="https://api.example/y")])
    _lean_equals_full(path)
    x = next(read_har(str(path), Diagnostics(), lean=True))
    assert x.response is not None
    assert list(x.response.headers) == [
        ("Access-Control-Max-Age", "600"), ("access-control-allow-credentials", "true"),
        ("VARY", ""), ("Set-Cookie", "a=1")]
