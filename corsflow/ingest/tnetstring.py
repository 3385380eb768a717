"""tnetstrings, the record format of mitmproxy's flow files, read with bounds.

Each value is ``<length>:<payload><tag>``; the tag says the type: ``,`` bytes, ``;`` text,
``#`` integer, ``^`` float, ``!`` boolean, ``~`` null, ``]`` list, ``}`` dictionary.
mitmproxy's own parser trusts the file: a length prefix of 999999999999 makes it allocate a
terabyte, a list nested a thousand deep exhausts the stack. This one reads a record in
pieces (memory grows with what the file really holds), refuses nesting deeper than
:data:`MAX_DEPTH`, numbers longer than a float or a 64-bit integer can be written in,
and non-finite floats, raising :class:`TnetstringError` with the offset.
"""

from __future__ import annotations

import math
from typing import Any, BinaryIO

from ..memo import capture_memo

MAX_DEPTH = 64
"""mitmproxy's flows nest about six deep; deeper is damage or an attack."""
_MAX_PREFIX = 12
"""Digits of a length prefix: up to a terabyte, far beyond any real record."""
_PIECE = 16 << 20
_MAX_NUMBER = 40


class TnetstringError(ValueError):
    """A value that is not a well-formed tnetstring. ``truncated`` when the input ended."""

    def __init__(self, message: str, *, truncated: bool = False) -> None:
        super().__init__(message)
        self.truncated = truncated


def read_record(fp: BinaryIO) -> tuple[bytes, int] | None:
    """The next top-level record's payload and tag byte; None at a clean end of input.

    Whitespace between records (some writers add a newline) is skipped. Raises
    TnetstringError when the prefix is malformed or the input ends inside the record.
    """
    _skip_blanks(fp)
    prefix = b""
    while True:
        c = fp.read(1)
        if not c:
            if prefix:
                raise TnetstringError("the file ends inside a length prefix", truncated=True)
            return None
        if c == b":":
            break
        if not prefix and c in b" \t\r\n":
            continue
        if not c.isdigit() or len(prefix) >= _MAX_PREFIX:
            raise TnetstringError("not a tnetstring: missing or invalid length prefix")
        prefix += c
    if not prefix:
        raise TnetstringError("not a tnetstring: missing or invalid length prefix")
    length = int(prefix)
    pieces = []
    left = length + 1  # the payload and its tag
    while left:
        piece = fp.read(min(left, _PIECE))
        if not piece:
            raise TnetstringError(f"the file ends inside a record of {length} bytes",
                                  truncated=True)
        pieces.append(piece)
        left -= len(piece)
    data = pieces[0] if len(pieces) == 1 else b"".join(pieces)
    return data[:-1], data[-1]


SKIPPED = frozenset({"content", "certificate_list", "messages", "trailers", b"content"})
"""Keys whose values are never needed (bodies, certificates, WebSocket messages): they are
stepped over without being decoded, and read as None."""


def _skip_blanks(fp: BinaryIO) -> None:
    """Step over whitespace between records a buffer at a time (a file may hold megabytes)."""
    peek = getattr(fp, "peek", None)
    if peek is None:
        return
    while True:
        ahead = peek(1 << 16)
        if not ahead:
            return
        blank = len(ahead) - len(ahead.lstrip(b" \t\r\n"))
        if not blank:
            return
        fp.read(blank)


def loads(payload: bytes, tag: int, skip: frozenset[Any] = SKIPPED) -> Any:
    """The value of one record (payload and tag as :func:`read_record` returns them); the
    values of ``skip`` keys in any dictionary are read as None, without being decoded."""
    return _value(payload, 0, len(payload), tag, 0, skip)


Wanted = dict[str, "Wanted | str | None"]
"""Which keys of a dictionary to decode: None decodes the whole value, a dictionary only
those of its keys (recursively), :data:`PAIRS` a list of ``[bytes, bytes]`` pairs (header
fields) as a list of tuples of text; other keys are left out without being decoded."""
PAIRS = "pairs"


def loads_only(payload: bytes, tag: int, wanted: Wanted) -> Any:
    """Like :func:`loads`, decoding only the ``wanted`` keys of the dictionaries on their
    path; a value of another shape than ``wanted`` expects is decoded whole."""
    return _wanted(payload, 0, len(payload), tag, _plan(wanted), 0)


_Plan = dict[bytes, tuple[str, "_Plan | str | None"]]
_PLANS: dict[int, tuple[Wanted, _Plan]] = {}


def _plan(wanted: Wanted) -> _Plan:
    """``wanted`` keyed by the bytes a record spells each key with, so that the keys a
    record holds and nobody wants are stepped over without being decoded. Kept per
    ``wanted`` (a reader passes the same one for every record)."""
    kept = _PLANS.get(id(wanted))
    if kept is not None and kept[0] is wanted:
        return kept[1]
    plan: _Plan = {key.encode(): (key, _plan(sub) if isinstance(sub, dict) else sub)
                   for key, sub in wanted.items()}
    _PLANS[id(wanted)] = (wanted, plan)
    return plan


def _wanted(data: bytes, start: int, stop: int, tag: int, plan: _Plan, depth: int) -> Any:
    """One pass over a dictionary's keys and values: each length prefix is read to step
    over the value, and only the values ``plan`` names are decoded."""
    if tag != 0x7D:
        return _value(data, start, stop, tag, depth, SKIPPED)
    if depth >= MAX_DEPTH:
        raise TnetstringError("nested too deeply")
    result: dict[Any, Any] = {}
    find = data.find
    pos = start
    key_at = -1  # where the key starts once a key is read and its value is next
    kb = 0
    # Keys and values alternate; one prefix is read per turn (inline: a call per value
    # would cost more than the rest of the loop).
    while pos < stop:
        colon = find(b":", pos, stop)
        digits = data[pos:colon]
        if colon <= pos or colon - pos > _MAX_PREFIX or not digits.isdigit():
            raise TnetstringError("not a tnetstring: missing or invalid length prefix")
        a = colon + 1
        b = a + int(digits)
        if b >= stop:
            raise TnetstringError("a value longer than what holds it")
        pos = b + 1
        if key_at < 0:
            key_at, kb = a, b
            continue
        ka, key_at = key_at, -1
        key_tag = data[kb]
        if key_tag != 0x3B:
            if key_tag != 0x2C:
                raise TnetstringError("a dictionary key that is not a string")
            result[data[ka:kb]] = None  # byte keys (old formats) are decoded in full later
            continue
        entry = plan.get(data[ka:kb])
        if entry is None:
            continue
        key, sub = entry
        t = data[b]
        if sub is None:
            if t == 0x2C:  # most wanted values are byte strings: no call for them
                result[key] = data[a:b]
            else:
                result[key] = _value(data, a, b, t, depth + 1, SKIPPED)
        elif sub == PAIRS and t == 0x5D:
            result[key] = _pairs(data, a, b)
        elif isinstance(sub, dict):
            result[key] = _wanted(data, a, b, t, sub, depth + 1)
        else:
            result[key] = _value(data, a, b, t, depth + 1, SKIPPED)
    if key_at >= 0:
        raise TnetstringError("a dictionary key without a value")
    return result


_FIELD_MEMO = 256
"""Header fields up to this many bytes are memoised: a session repeats most of its fields
(user agent, accept, vary, cache control...) on every request or response."""


def _pairs(data: bytes, pos: int, end: int) -> list[tuple[str, str]]:
    """A list of two-byte-string lists, as text pairs (isomorphic decode: each byte the
    code point of the same value)."""
    out = []
    find = data.find
    while pos < end:
        colon = find(b":", pos, end)
        digits = data[pos:colon]
        if colon <= pos or colon - pos > _MAX_PREFIX or not digits.isdigit():
            raise TnetstringError("not a tnetstring: missing or invalid length prefix")
        inner = colon + 1
        stop = inner + int(digits)
        if stop >= end or data[stop] != 0x5D:
            raise TnetstringError("a header field that is not a list")
        field = data[inner:stop]
        out.append(_field(field) if stop - inner <= _FIELD_MEMO else _field.__wrapped__(field))
        pos = stop + 1
    return out


@capture_memo(4096)
def _field(field: bytes) -> tuple[str, str]:
    """The name and value of one header field (the inside of ``[name, value]``)."""
    find = field.find
    values = []
    pos, end = 0, len(field)
    while pos < end:
        colon = find(b":", pos)
        digits = field[pos:colon]
        if colon <= pos or colon - pos > _MAX_PREFIX or not digits.isdigit():
            raise TnetstringError("not a tnetstring: missing or invalid length prefix")
        a = colon + 1
        b = a + int(digits)
        if b >= end or field[b] != 0x2C:
            raise TnetstringError("a header name or value that is not a byte string")
        values.append(field[a:b].decode("latin-1"))
        pos = b + 1
    if len(values) != 2:
        raise TnetstringError("a header field that is not a name and a value")
    return values[0], values[1]


def _value(data: bytes, start: int, stop: int, tag: int, depth: int,
           skip: frozenset[Any]) -> Any:
    if tag == 0x2C:  # ,
        return data[start:stop]
    if tag == 0x3B:  # ;
        return data[start:stop].decode("utf-8", "surrogateescape")
    if tag == 0x23:  # #
        if stop - start > _MAX_NUMBER:
            raise TnetstringError("an integer too long to be one")
        try:
            return int(data[start:stop])
        except ValueError:
            raise TnetstringError("an integer that is not one") from None
    if tag == 0x5E:  # ^
        if stop - start > _MAX_NUMBER:
            raise TnetstringError("a float too long to be one")
        try:
            number = float(data[start:stop])
        except ValueError:
            raise TnetstringError("a float that is not one") from None
        if not math.isfinite(number):
            raise TnetstringError("a float that is not finite")
        return number
    if tag == 0x21:  # !
        text = data[start:stop]
        if text == b"true":
            return True
        if text == b"false":
            return False
        raise TnetstringError("a boolean that is not one")
    if tag == 0x7E:  # ~
        if stop != start:
            raise TnetstringError("a null with a payload")
        return None
    if tag != 0x5D and tag != 0x7D:
        raise TnetstringError(f"an unknown type tag {chr(tag)!r}")
    if depth >= MAX_DEPTH:
        raise TnetstringError("nested too deeply")
    depth += 1
    items = _items(data, start, stop)
    if tag == 0x5D:  # ]
        return [_value(data, a, b, t, depth, skip) for a, b, t in items]
    result: dict[Any, Any] = {}  # }
    if len(items) % 2:
        raise TnetstringError("a dictionary key without a value")
    for i in range(0, len(items), 2):
        a, b, t = items[i]
        if t == 0x3B:
            key: Any = data[a:b].decode("utf-8", "surrogateescape")
        elif t == 0x2C:
            key = data[a:b]
        else:
            raise TnetstringError("a dictionary key that is not a string")
        a, b, t = items[i + 1]
        result[key] = None if key in skip else _value(data, a, b, t, depth, skip)
    return result


def _items(data: bytes, pos: int, end: int) -> list[tuple[int, int, int]]:
    """(start, stop, tag) of each value one after another in ``data[pos:end]``."""
    out = []
    find = data.find
    while pos < end:
        colon = find(b":", pos, end)
        if colon <= pos or colon - pos > _MAX_PREFIX:
            raise TnetstringError("not a tnetstring: missing or invalid length prefix")
        digits = data[pos:colon]
        if not digits.isdigit():
            raise TnetstringError("not a tnetstring: missing or invalid length prefix")
        start = colon + 1
        stop = start + int(digits)
        if stop >= end:
            raise TnetstringError("a value longer than what holds it")
        out.append((start, stop, data[stop]))
        pos = stop + 1
    return out
