"""Our tnetstring reader: the values mitmproxy writes, and bounds on what a file can make it do."""

from __future__ import annotations

import io
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from corsflow.ingest.tnetstring import (
    PAIRS,
    SKIPPED,
    TnetstringError,
    loads,
    loads_only,
    read_record,
)

tnetstring = pytest.importorskip("mitmproxy.io.tnetstring")

SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-(2**63), 2**63),
                    st.floats(allow_nan=False, allow_infinity=False), st.binary(max_size=20),
                    st.text(max_size=20))
VALUES = st.recursive(SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=4),
    st.dictionaries(st.one_of(st.text(max_size=8), st.binary(max_size=8)), inner, max_size=4)),
    max_leaves=20)


def _one(data: bytes) -> Any:
    raw = read_record(io.BytesIO(data))
    assert raw is not None
    return loads(*raw, skip=frozenset())


@settings(max_examples=100, deadline=None)
@given(VALUES)
def test_reads_what_mitmproxy_writes(value: Any) -> None:
    assert _one(tnetstring.dumps(value)) == value


def test_skipped_keys_are_not_decoded() -> None:
    data = tnetstring.dumps({"content": b"x" * 1000, "a": 1})
    raw = read_record(io.BytesIO(data))
    assert raw is not None
    assert loads(*raw) == {"content": None, "a": 1}


def test_only_the_wanted_keys_are_decoded() -> None:
    record = {"version": 21, "request": {"headers": [[b"A", b"\xe9"]], "method": b"GET",
                                         "other": [1]}, "client_conn": {"x": 1}}
    raw = read_record(io.BytesIO(tnetstring.dumps(record)))
    assert raw is not None
    assert loads_only(*raw, {"version": None, "request": {"headers": PAIRS, "method": None}}) == {
        "version": 21, "request": {"headers": [("A", "\xe9")], "method": b"GET"}}


@pytest.mark.parametrize("data, why", [
    (b"5:1e999^", "not finite"),
    (b"3:nan^", "not finite"),
    (b"50:" + b"9" * 50 + b"#", "too long"),
    (b"3:abc?", "unknown type"),
    (b"8:1:1#1:b,}", "key that is not a string"),
    (b"4:1:a,}", "without a value"),
    (b"6:99:a,}}", "longer than what holds it"),
])
def test_values_no_flow_holds_are_refused(data: bytes, why: str) -> None:
    with pytest.raises(TnetstringError, match=why):
        _one(data)


def test_nesting_is_bounded() -> None:
    value: Any = []
    for _ in range(200):
        value = [value]
    with pytest.raises(TnetstringError, match="nested too deeply"):
        _one(tnetstring.dumps(value))


def test_a_huge_length_prefix_reads_only_what_is_there() -> None:
    with pytest.raises(TnetstringError) as e:
        read_record(io.BytesIO(b"999999999999:{abc"))
    assert e.value.truncated
    with pytest.raises(TnetstringError, match="length prefix"):
        read_record(io.BytesIO(b"9999999999999:"))


HEADER_LISTS = st.lists(st.lists(st.binary(max_size=300), min_size=2, max_size=2), max_size=5)
MESSAGES = st.fixed_dictionaries(
    {}, optional={"headers": HEADER_LISTS, "method": VALUES, "content": VALUES, "other": VALUES})
RECORDS = st.fixed_dictionaries(
    {}, optional={"version": VALUES, "request": st.one_of(MESSAGES, VALUES),
                  "client_conn": VALUES, "metadata": VALUES})
WANTED = {"version": None, "request": {"headers": PAIRS, "method": None}}


def _skipped(value: Any) -> Any:
    """``value`` as loads reads it: what a key of SKIPPED holds, at any depth, is None."""
    if isinstance(value, dict):
        return {k: None if k in SKIPPED else _skipped(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_skipped(v) for v in value]
    return value


def _projected(value: Any, wanted: Any) -> Any:
    """What loads_only promises: the wanted keys of dictionaries, header lists as text
    pairs, what SKIPPED keys hold as None."""
    if not isinstance(value, dict):
        return _skipped(value)  # another shape than wanted: read whole
    # Byte-string keys (the oldest formats) are kept, unread: such a record is read whole later.
    out: dict[Any, Any] = {k: None for k in value if isinstance(k, bytes)}
    for key, sub in wanted.items():
        if key not in value:
            continue
        v = value[key]
        if sub == PAIRS and isinstance(v, list):
            out[key] = [(n.decode("latin-1"), x.decode("latin-1")) for n, x in v]
        elif isinstance(sub, dict):
            out[key] = _projected(v, sub)
        else:
            out[key] = _skipped(v)
    return out


@settings(max_examples=150, deadline=None)
@given(RECORDS)
@example({"version": {"messages": False, "a": [{"content": b"x"}]}})
@example({"request": [{"messages": False}]})
def test_loads_only_is_loads_projected(record: dict[str, Any]) -> None:
    # Header fields are memoised when short: a long one and the same one again read alike.
    raw = read_record(io.BytesIO(tnetstring.dumps(record)))
    assert raw is not None
    for _ in range(2):
        assert loads_only(*raw, WANTED) == _projected(record, WANTED)


@pytest.mark.parametrize("inside, why", [
    (b"1:a,", "not a name and a value"),
    (b"1:a,1:b,1:c,", "not a name and a value"),
    (b"1:a,1:b#", "not a byte string"),
    (b"x:a,1:b,", "length prefix"),
])
def test_damaged_header_fields_are_refused(inside: bytes, why: str) -> None:
    def tnet(payload: bytes, tag: bytes) -> bytes:
        return str(len(payload)).encode() + b":" + payload + tag

    data = tnet(tnet(b"headers", b";") + tnet(tnet(inside, b"]"), b"]"), b"}")
    raw = read_record(io.BytesIO(data))
    assert raw is not None
    with pytest.raises(TnetstringError, match=why):
        loads_only(*raw, {"headers": PAIRS})
