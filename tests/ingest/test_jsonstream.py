"""The array streamer: same values as json.loads, whatever the layout and buffer boundaries."""

from __future__ import annotations

import io
import json
import random
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from corsflow.ingest import jsonstream
from corsflow.ingest.jsonstream import JsonArrayStream, JsonSyntaxError, NotFound, Undecodable

from .layout import dump

PATH = ("log", "entries")
decode_any = msgspec.json.Decoder().decode

# Text that looks like structure: braces, quotes, escapes, separators, raw-newline look-alikes.
TRICKY = st.sampled_from(['{', '}', '[', ']', '"', '\\', ',', ':', '\n', ' ', '},{"a"',
                          '}\n  },\n  {', 'a', 'b', '\u00e9', '\U0001f600', '\\"', '\\\\'])
TEXT = st.lists(TRICKY, max_size=6).map("".join)
KEYS = st.sampled_from(["a", "b", "c", "startedDateTime", "}", '"'])
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-10**12, 10**12),
                    st.floats(allow_nan=False, allow_infinity=False), TEXT)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(KEYS, inner, max_size=4)),
    max_leaves=25,
)
# Elements are mostly objects sharing first keys, so separators repeat and nested objects
# mimic them, which is what the learned-separator guesses have to survive.
ELEMENTS = st.lists(st.one_of(st.dictionaries(KEYS, VALUES, min_size=1, max_size=5),
                              VALUES), max_size=12)


def stream(data: bytes, chunk: int | None = None) -> tuple[dict[Any, bytes], list[Any]]:
    s = JsonArrayStream(io.BytesIO(data), chunk)
    captured = s.find_array(PATH, frozenset({("log", "creator")}))
    return captured, list(s.elements(decode_any))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(entries=ELEMENTS, seed=st.integers(0, 2**32), chunk=st.sampled_from([1, 3, 17, 64, 4096]),
       indent=st.sampled_from([None, 0, 1, 2, 4, "\t"]), random_layout=st.booleans())
def test_elements_decode_like_json_loads(entries: list[Any], seed: int, chunk: int,
                                         indent: Any, random_layout: bool) -> None:
    doc = {"log": {"version": "1.2", "creator": {"name": "x}\"{"}, "entries": entries}}
    if random_layout:
        text = dump(doc, random.Random(seed))
    else:
        text = json.dumps(doc, indent=indent, ensure_ascii=False)
    data = text.encode("utf-8")
    captured, elements = stream(data, chunk)
    assert [v for _, v in elements] == json.loads(text)["log"]["entries"]
    assert json.loads(captured[("log", "creator")]) == {"name": "x}\"{"}
    for offset, value in elements:  # each offset is where the element's text begins
        assert json.JSONDecoder().raw_decode(data[offset:].decode())[0] == value


def test_guesses_are_validated_not_trusted() -> None:
    """Nested objects that look exactly like the learned separator do not fool it."""
    nested = {"a": 0, "b": [{"a": 1}, {"a": 2}], "c": {"a": "},{\"a\""}}
    entries = [{"a": i, "b": [nested, {"a": {"a": [nested]}}]} for i in range(30)]
    for indent in (None, 2):
        data = json.dumps({"log": {"entries": entries}}, indent=indent).encode()
        s = JsonArrayStream(io.BytesIO(data))
        s.find_array(PATH)
        assert [v for _, v in s.elements(decode_any)] == entries


def test_learned_separator_is_used_on_a_pretty_file() -> None:
    entries = [{"k": i, "v": [{"k": "x"}] * 3} for i in range(50)]
    data = json.dumps({"log": {"entries": entries}}, indent=2).encode()
    s = JsonArrayStream(io.BytesIO(data))
    s.find_array(PATH)
    calls = 0
    real_span = s._span

    def counting_span() -> int:
        nonlocal calls
        calls += 1
        return real_span()

    s._span = counting_span  # type: ignore[method-assign]
    assert [v for _, v in s.elements(decode_any)] == entries
    assert calls <= 3  # the first element, perhaps the second, and the last


class Typed(msgspec.Struct):
    a: int | str


def test_values_the_decoder_refuses_come_back_whole() -> None:
    data = b'{"log": {"entries": [{"a": 1}, {"a": [], "z": "}"}, 7, {"a": "\xff"}, {"a": 2}]}}'
    s = JsonArrayStream(io.BytesIO(data))
    s.find_array(PATH)
    values = [v for _, v in s.elements(msgspec.json.Decoder(Typed).decode)]
    assert values[0] == Typed(1) and values[4] == Typed(2)
    assert values[1] == Undecodable(b'{"a": [], "z": "}"}', values[1].error)  # type: ignore[union-attr]
    assert isinstance(values[2], Undecodable) and values[2].raw == b"7"
    assert isinstance(values[3], Undecodable) and values[3].bad_utf8


@pytest.mark.parametrize("bad", [
    b'{"a": 1 "b": 2}', b'{"a": NaN}', b'{"a": "\\ud800"}', b"[" * 3000 + b"]" * 3000, b"-Infinity",
    b'{"a": "}\\"]", "b" "c"}',
])
@pytest.mark.parametrize("chunk", [3, 64, None])
def test_an_element_that_is_not_json_is_stepped_over(bad: bytes, chunk: int | None) -> None:
    """Its brackets and strings still show where it ends: it comes back as Undecodable and
    the elements after it are read."""
    data = b'{"log": {"entries": [{"a": 1}, ' + bad + b', {"a": 2}]}}'
    s = JsonArrayStream(io.BytesIO(data), chunk)
    s.find_array(PATH)
    values = [v for _, v in s.elements(decode_any)]
    assert values[0] == {"a": 1} and values[2] == {"a": 2} and len(values) == 3
    assert isinstance(values[1], Undecodable) and values[1].invalid and values[1].raw == bad


@pytest.mark.parametrize("text, error", [
    (b'{"log": {"entries": [1, 2 3]}}', "not valid JSON near byte 26: expected ',' or ']', found '3'"),
    (b'{"log": {"entries": [{"a": 1}, {"a": 1 "b": 2} 3]}}', "not valid JSON near byte 39: expected ',' or '}'"),
    (b'{"log": {"entries": [{"a": 1}, {"a": -', "file ends at byte 38 in the middle of a value"),
    (b'{"log": {"entries": [{"a": 1},', "file ends at byte 30 (truncated?), expected an array"),
])
def test_syntax_errors_come_after_the_good_elements(text: bytes, error: str) -> None:
    s = JsonArrayStream(io.BytesIO(text), 4)
    s.find_array(PATH)
    got = []
    with pytest.raises(JsonSyntaxError) as caught:
        for _, v in s.elements(decode_any):
            got.append(v)
    assert got[0] in (1, {"a": 1})
    assert caught.value.message.startswith(error)


def test_key_with_invalid_utf8_is_a_syntax_error() -> None:
    with pytest.raises(JsonSyntaxError, match="near byte 1: a key that is not valid UTF-8"):
        JsonArrayStream(io.BytesIO(b'{"\xff": 1, "log": {"entries": []}}')).find_array(PATH)


@pytest.mark.parametrize("text", [b"[]", b'{"log": 3}', b'{"log": {}}', b'{"log": {"entries": 1}}'])
def test_wrong_shapes_are_not_found(text: bytes) -> None:
    with pytest.raises(NotFound):
        JsonArrayStream(io.BytesIO(text)).find_array(PATH)


def test_msgspec_reports_where_a_value_ends() -> None:
    """The Raw skip relies on msgspec's "trailing characters (byte N)" message, N 1-based."""
    with pytest.raises(msgspec.DecodeError) as caught:
        msgspec.json.decode(b'{"a": 1}  ,', type=msgspec.Raw)
    assert jsonstream._value_end(caught.value) == 10


def test_bom_is_skipped() -> None:
    assert stream(b'\xef\xbb\xbf{"log": {"entries": [1]}}')[1] == [(24, 1)]


@pytest.mark.parametrize("chunk", [4, None])
def test_a_damaged_value_before_the_array_is_stepped_over(chunk: int | None) -> None:
    """``log.pages`` holding NaN does not cost the entries."""
    data = (b'{"log": {"pages": [{"x": NaN, "y": "\\ud800"}], "creator": {"name": "c"}, '
            b'"entries": [{"a": 1}]}}')
    s = JsonArrayStream(io.BytesIO(data), chunk)
    captured = s.find_array(PATH, frozenset({("log", "creator")}))
    assert captured == {("log", "creator"): b'{"name": "c"}'}
    assert [v for _, v in s.elements(decode_any)] == [{"a": 1}]


def test_a_file_on_disk_up_to_whole_is_read_in_one_buffer(tmp_path: Any) -> None:
    entries = [{"a": i, "pad": "x" * 1000, "s": "}\n  },\n  {"} for i in range(3000)]
    path = tmp_path / "big.json"
    path.write_text(json.dumps({"log": {"entries": entries}}, indent=2))
    assert jsonstream.CHUNK < path.stat().st_size <= jsonstream.WHOLE
    with open(path, "rb") as fp:
        s = JsonArrayStream(fp)
        s.find_array(PATH)
        reads = []
        more = s._more
        s._more = lambda at_least=0: reads.append(at_least) or more(at_least)  # type: ignore[method-assign]
        assert [v for _, v in s.elements(decode_any)] == entries
    assert reads == [0]  # only the one read that finds the end of the file
    with open(path, "rb") as fp:
        s = JsonArrayStream(fp, jsonstream.CHUNK)  # a bigger file: chunk by chunk, same values
        s.find_array(PATH)
        assert [v for _, v in s.elements(decode_any)] == entries
