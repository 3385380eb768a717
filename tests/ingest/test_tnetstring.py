"""Our tnetstring reader: the values mitmproxy writes, and bounds on what a file can make it do."""

from __future__ import annotations

import io
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from corsflow.ingest.tnetstring import (
    PAIRS,
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
