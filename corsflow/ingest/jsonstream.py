"""Stream the elements of one array deep inside a large JSON document, in bounded memory.

A HAR is one JSON object whose bulk is the ``log.entries`` array. Parsing the whole document
costs memory proportional to the file; a token-by-token streaming parser costs time. This
module does neither: it reads the file in chunks, walks the few objects above the array with
a small tokenizer, and hands each array element's bytes to a msgspec decoder.

Theory of operation. Finding where an element ends is the hard part, because strings may
contain any brace, quote or escaped backslash. Two mechanisms, both exact:

1. *Learned separator.* After the first two elements, the bytes between them (the closing
   ``}``, its indentation when pretty-printed, the comma, the next ``{`` and its first key,
   e.g. ``b'\\n    },\\n    {\\n      "_initiator"'``) are a pattern that almost always marks
   the next boundary too, and ``bytes.find`` locates it at memory speed. A candidate is only
   a guess: the decoder validates it. A JSON value is self-delimiting, so decoding the
   candidate slice succeeds only when the slice is exactly one value; a candidate that falls
   inside a string leaves that string unterminated, one at a nested level leaves an object
   unclosed, and one past the true end leaves trailing characters whose offset msgspec reports,
   which *is* the true end.
2. *Raw skip.* Otherwise msgspec decodes the rest of the buffer as :class:`msgspec.Raw`, which
   only skips over the first value and then reports the offset of the first trailing
   character. This is used for the first elements, after a failed guess, for minified files
   whose pattern never repeats, and to step over values of keys we do not want.

Element values a typed decoder rejects (wrong types, invalid UTF-8) are not syntax errors:
their exact bytes are handed back as :class:`Undecodable` so the caller can try harder or skip
just that element. Syntax errors and truncation raise :class:`JsonSyntaxError` with the
absolute byte offset.
"""

from __future__ import annotations

import io
import logging
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import BinaryIO, NoReturn, TypeVar

import msgspec

log = logging.getLogger(__name__)

T = TypeVar("T")

CHUNK = 1 << 20
"""Bytes read at a time."""
WHOLE = 16 << 20
"""A regular file up to this size is read in one go: one buffer instead of a chain of chunks
each copied onto the rest of the last, which matters where large allocations are costly (a
Dask worker returns freed memory to the system at once, so every chunk faults its pages in
again)."""
LOOKAHEAD = 8 << 20
"""How far past an element's start to look for the learned separator before falling back
to the Raw skip (which reads only as far as the element really goes)."""

_WS = b" \t\r\n"
_NOT_WS = re.compile(rb"[^ \t\r\n]")
_BOM = b"\xef\xbb\xbf"
_BYTE_RE = re.compile(r"\(byte (\d+)\)")
_STRING_RE = re.compile(rb'"(?:[^"\\\x00-\x1f]|\\.)*"')
_MAX_LEARN = 4
_NEAR_END = 64
_MAX_MISSES = 3
_RAW = msgspec.json.Decoder(msgspec.Raw)
_BRACE, _BRACKET_OPEN, _BRACKET_CLOSE, _COMMA, _COLON, _CLOSE_BRACE = b"{[],:}"


class JsonSyntaxError(Exception):
    """The document is not valid JSON (or ends too soon) at ``offset``."""

    def __init__(self, offset: int, message: str, *, truncated: bool = False,
                 detail: str = "") -> None:
        super().__init__(message)
        self.offset = offset
        self.message = message
        self.truncated = truncated
        self.detail = detail or message
        """What is wrong, without the place (for a skip reason, which must be stable)."""


class NotFound(Exception):
    """The document is JSON but does not have the wanted shape. The message says what."""


@dataclass(frozen=True, slots=True)
class Undecodable:
    """An element the decoder refused: valid JSON of the wrong types, invalid UTF-8, or
    (``invalid``) bytes that are not JSON at all but whose extent is clear, such as ``NaN``,
    a lone surrogate escape or nesting too deep to decode."""

    raw: bytes
    error: str
    bad_utf8: bool = False
    invalid: bool = False


@dataclass(frozen=True, slots=True)
class _Pattern:
    """A learned element separator: ``text`` with the closing brace at ``close`` and the next
    element's opening brace at ``open``; between them only the comma and whitespace."""

    text: bytes
    close: int
    open: int


def _offset_in(error: msgspec.DecodeError) -> int | None:
    m = _BYTE_RE.search(str(error))
    return int(m.group(1)) if m else None


def _value_end(error: msgspec.DecodeError) -> int | None:
    """Where the first value ends, from msgspec's "trailing characters" error, else None.

    msgspec counts the offending byte 1-based here (``b'1 x'`` reports byte 3), so the value
    and the whitespace after it are the first ``n - 1`` bytes.
    """
    text = str(error)
    if not text.startswith("JSON is malformed: trailing characters"):
        return None
    n = _offset_in(error)
    return None if n is None or n < 2 else n - 1


def _refused(raw: memoryview, error: Exception) -> Undecodable:
    if isinstance(error, UnicodeDecodeError):
        return Undecodable(bytes(raw), f"invalid UTF-8 ({error.reason})", bad_utf8=True)
    if _is_bad_utf8(error):
        return Undecodable(bytes(raw), "invalid UTF-8", bad_utf8=True)
    return Undecodable(bytes(raw), str(error))


def _is_bad_utf8(error: Exception) -> bool:
    """msgspec (0.19 and later) reports invalid UTF-8 in a string it decodes as a
    DecodeError, not as UnicodeDecodeError; a skipped string is never checked."""
    return isinstance(error, msgspec.DecodeError) and "UTF-8" in str(error)


# The structure of a JSON text without its validation: strings (escapes skipped whole),
# brackets, and an unterminated string (the lone quote) at the end of what is buffered.
_STRUCTURE = re.compile(rb'"(?:[^"\\]++|\\.)*+"|[\[\]{}]|"')
_SCALAR_END = re.compile(rb"[,\]}\s]")
MAX_DAMAGED = 64 << 20
"""The largest damaged element whose end is looked for; past it, reading stops."""


def structural_end(buf: bytes, pos: int) -> int | None:
    """The end (exclusive) of the value starting at ``buf[pos]``, from its brackets and
    strings alone, so that a value msgspec rejects (``NaN``, a lone surrogate, nesting too
    deep) can be stepped over. None when ``buf`` ends before the value does."""
    first = buf[pos]
    if first not in b"[{":
        if first == 0x22:  # a string
            m = _STRUCTURE.match(buf, pos)
            return m.end() if m is not None and m.end() - pos > 1 else None
        m = _SCALAR_END.search(buf, pos)
        return m.start() if m is not None else None
    depth = 0
    for m in _STRUCTURE.finditer(buf, pos):
        token = m.group()
        c = token[0]
        if c == 0x22:
            if len(token) == 1:
                return None  # a string that goes on past the buffer
            continue
        if c in b"[{":
            depth += 1
        else:
            depth -= 1
            if depth == 0:
                return m.end()
    return None


def _detail(error: msgspec.DecodeError) -> str:
    text = _BYTE_RE.sub("", str(error)).strip()
    return text.removeprefix("JSON is malformed:").strip() or text


def _chunk_for(fp: BinaryIO) -> int:
    try:
        size = os.fstat(fp.fileno()).st_size
    except (OSError, ValueError, AttributeError, io.UnsupportedOperation):
        return CHUNK  # a pipe, a decompressing stream, bytes in memory
    return size + 1 if CHUNK < size <= WHOLE else CHUNK


class JsonArrayStream:
    """One pass over a JSON document in ``fp``, reaching the array at a key path.

    Use :meth:`find_array` once, then iterate :meth:`elements` once.
    """

    def __init__(self, fp: BinaryIO, chunk: int | None = None) -> None:
        self._fp = fp
        self._chunk = chunk or _chunk_for(fp)
        self._buf = b""
        self._pos = 0
        self._base = 0
        """Absolute file offset of ``_buf[0]``."""
        self._eof = False
        self._pattern: _Pattern | None = None
        self._learned = 0
        """How many separators were learned: a file whose elements keep changing shape gets
        only a few chances before every element goes through the Raw skip."""
        self._misses = 0
        self._searched = -1
        """Absolute offset up to which the current pattern is known not to occur."""
        self._next = -1
        """Where the next element starts (in ``_buf``) when a guess matched, else -1."""

    # -- buffer -----------------------------------------------------------------------------

    @property
    def offset(self) -> int:
        """Absolute byte offset of the read position."""
        return self._base + self._pos

    def _more(self, at_least: int = 0) -> bool:
        """Drop what lies before the read position and append the next chunk.

        Returns False at end of file. Reads grow with the buffer, so a value far bigger
        than a chunk is re-scanned only a logarithmic number of times.
        """
        if self._eof:
            return False
        want = max(self._chunk, at_least, len(self._buf) - self._pos)
        data = self._fp.read(want)
        if not data:
            self._eof = True
            return False
        self._base += self._pos
        self._buf = self._buf[self._pos :] + data
        self._pos = 0
        return True

    def _peek(self) -> int | None:
        """Skip whitespace and return the next byte without consuming it; None at EOF."""
        while True:
            buf = self._buf
            m = _NOT_WS.search(buf, self._pos)  # in C: a file may hold megabytes of blanks
            if m is not None:
                self._pos = pos = m.start()
                return buf[pos]
            self._pos = len(buf)
            if not self._more():
                return None

    def _expect(self, byte: int, what: str) -> None:
        c = self._peek()
        if c != byte:
            self._unexpected(c, what)
        self._pos += 1

    def _unexpected(self, c: int | None, what: str) -> NoReturn:
        if c is None:
            raise JsonSyntaxError(self.offset, f"file ends at byte {self.offset} (truncated?), "
                                  f"expected {what}", truncated=True)
        raise JsonSyntaxError(self.offset, f"not valid JSON near byte {self.offset}: expected "
                              f"{what}, found {chr(c)!r}")

    def _span(self) -> int:
        """The end (exclusive, in ``_buf``) of the JSON value at the read position.

        Reads more as needed; raises JsonSyntaxError on malformed or truncated input.
        """
        while True:
            try:
                _RAW.decode(memoryview(self._buf)[self._pos :])
            except RecursionError:
                raise JsonSyntaxError(self.offset, f"JSON nested too deeply to read, in the "
                                      f"value at byte {self.offset}",
                                      detail="nested too deeply") from None
            except msgspec.DecodeError as e:
                end = _value_end(e)
                if end is not None:
                    return self._pos + end
                n = _offset_in(e)
                left = len(self._buf) - self._pos
                if n is None:
                    self._check_complete()
                if self._eof:
                    if n is None or n >= left:
                        at = len(self._buf) + self._base
                        raise JsonSyntaxError(at, f"file ends at byte {at} in the middle of "
                                              "a value (truncated?)", truncated=True) from None
                    at = self.offset + n
                    raise JsonSyntaxError(at, f"not valid JSON near byte {at}: {_detail(e)}",
                                          detail=_detail(e)) from None
                # A number cut by the end of the buffer ("-", "1.", "1e+") is reported as
                # malformed, not truncated: only an error well before the end is sure.
                if n is not None and left - n > _NEAR_END:
                    at = self.offset + n
                    raise JsonSyntaxError(at, f"not valid JSON near byte {at}: {_detail(e)}",
                                          detail=_detail(e)) from None
                self._more()  # at EOF this sets _eof, and the next round decides
                continue
            # The whole rest of the buffer is one value; a number could still go on, and a
            # complete value must be followed by something, so look further unless at EOF.
            if not self._more():
                return len(self._buf)

    def _check_complete(self) -> None:
        """msgspec says "truncated", without a place, also for a complete value holding a
        lone surrogate escape: when the brackets show the value complete, it is damaged,
        not cut short, and reading more would not help."""
        buf = self._buf
        if buf.find(b"\\ud", self._pos) < 0 and buf.find(b"\\uD", self._pos) < 0:
            return  # no surrogate escape at all: the value really goes on
        end = structural_end(buf, self._pos)
        if end is None:
            return
        try:
            _RAW.decode(memoryview(self._buf)[self._pos : end])
        except (msgspec.DecodeError, RecursionError):
            detail = "an invalid string escape (a lone surrogate?)"
            raise JsonSyntaxError(self.offset, f"not valid JSON in the value at byte "
                                  f"{self.offset}: {detail}", detail=detail) from None

    def _key(self) -> str:
        if self._buf[self._pos] != ord('"'):
            self._unexpected(self._buf[self._pos], "a string key")
        end = self._span()  # may move the buffer: read positions only after it
        try:
            key = msgspec.json.decode(self._buf[self._pos : end], type=str)
        except (msgspec.DecodeError, UnicodeDecodeError):
            raise JsonSyntaxError(self.offset, f"not valid JSON near byte {self.offset}: "
                                  "a key that is not valid UTF-8") from None
        self._pos = end
        return key

    # -- navigation ---------------------------------------------------------------------------

    def find_array(
        self, path: tuple[str, ...], capture: frozenset[tuple[str, ...]] = frozenset()
    ) -> dict[tuple[str, ...], bytes]:
        """Walk the objects along ``path`` (keys) to the array at its end.

        Values of other keys are stepped over; those whose key path is in ``capture`` and
        which come before the array are returned as raw JSON bytes. Raises NotFound when a
        level is not an object, a key is missing or the target is not an array.
        """
        captured: dict[tuple[str, ...], bytes] = {}
        c = self._peek()
        if self._pos == 0 and self._base == 0:
            if self._buf.startswith(_BOM):
                self._pos = 3
                c = self._peek()
            elif self._buf[:2] in (b"\xff\xfe", b"\xfe\xff"):
                raise JsonSyntaxError(0, "the file is UTF-16 text; JSON must be UTF-8 "
                                      "(save it again as UTF-8)")
        for depth, want in enumerate(path):
            here = ".".join(path[:depth]) or "the top level"
            if c != _BRACE:
                if c is None:
                    self._unexpected(c, "a JSON object")
                if c in b'["-0123456789tfn' and depth == 0:
                    raise NotFound("the top level is not a JSON object")
                if depth > 0:
                    raise NotFound(f"{here} is not an object")
                self._unexpected(c, "a JSON object")
            self._pos += 1
            if not self._to_key(want, path[:depth], capture, captured):
                raise NotFound(f"no {'.'.join(path[: depth + 1])} "
                               + ("array" if depth == len(path) - 1 else "object"))
            c = self._peek()
        if c != _BRACKET_OPEN:
            if c is None:
                self._unexpected(c, "an array")
            raise NotFound(f"{'.'.join(path)} is not an array")
        self._pos += 1
        return captured

    def _to_key(self, want: str, at: tuple[str, ...], capture: frozenset[tuple[str, ...]],
                captured: dict[tuple[str, ...], bytes]) -> bool:
        """Inside the object at key path ``at``, read keys up to ``want`` and stop before its
        value; False when the object closes first. Values stepped over whose key path is in
        ``capture`` go into ``captured`` as raw JSON."""
        c = self._peek()
        while True:
            if c == _CLOSE_BRACE:
                return False
            if c is None:
                self._unexpected(c, "a key")
            key = self._key()
            self._expect(_COLON, "':'")
            c = self._peek()
            if key == want:
                return True
            try:
                end = self._span()
            except JsonSyntaxError as e:
                # A value we step over (``log.pages``...) that is not valid JSON: its
                # brackets still show where it ends, and it is not what we read.
                if e.truncated:
                    raise
                self._damaged(e)
            else:
                if at + (key,) in capture:
                    captured[at + (key,)] = self._buf[self._pos : end]
                self._pos = end
            c = self._peek()
            if c == _COMMA:
                self._pos += 1
                c = self._peek()
            elif c != _CLOSE_BRACE:
                self._unexpected(c, "',' or '}'")

    def value_after(self, key: str) -> bytes | None:
        """Once :meth:`elements` has run to the array's end: the raw JSON of ``key`` among
        the keys that follow the array in its object (None when the object ends first)."""
        c = self._peek()
        if c == _CLOSE_BRACE:
            return None
        if c != _COMMA:
            self._unexpected(c, "',' or '}'")
        self._pos += 1
        if not self._to_key(key, (), frozenset(), {}):
            return None
        end = self._span()
        return bytes(self._buf[self._pos : end])

    # -- elements ---------------------------------------------------------------------------

    def elements(self, decode: Callable[[memoryview], T]) -> Iterator[tuple[int, T | Undecodable]]:
        """Yield ``(offset, value)`` for each element of the array :meth:`find_array` reached.

        ``decode`` is a msgspec decoder's ``decode`` (or anything raising the same errors).
        A value it rejects with ``msgspec.ValidationError`` or ``UnicodeDecodeError`` comes
        as :class:`Undecodable`. Syntax errors raise JsonSyntaxError after the elements
        before them were yielded.
        """
        c = self._peek()
        if c == _BRACKET_CLOSE:
            self._pos += 1
            return
        while True:
            if c is None:
                self._unexpected(c, "an array element")
            start = self.offset
            value = self._element(decode)
            yield start, value
            if self._next >= 0:  # the matched separator already showed where the next one is
                self._pos, self._next = self._next, -1
                c = _BRACE
                continue
            last = self.offset - 1  # absolute offset of the element's last byte
            c = self._peek()
            if c == _COMMA:
                self._pos += 1
                c = self._peek()
                if self._pattern is None and c == _BRACE and self._learned < _MAX_LEARN:
                    self._pattern = self._learn(last - self._base)
            elif c == _BRACKET_CLOSE:
                self._pos += 1
                return
            else:
                self._unexpected(c, "',' or ']'")

    def _learn(self, close: int) -> _Pattern | None:
        """Learn the separator from the previous element's last byte at ``close``.

        Only when the previous element was an object ending inside the current buffer and the
        next one starts with a string key.
        """
        buf = self._buf
        if close < 0 or close >= len(buf) or buf[close] != _CLOSE_BRACE:
            return None
        m = _STRING_RE.match(buf, self._skip_ws_in_buffer(self._pos + 1))
        if m is None:
            return None
        # Include the closing brace's own line indentation: it is what sets the entry level
        # apart from nested objects in pretty-printed files.
        line = buf.rfind(b"\n", 0, close)
        begin = line if line >= 0 and not buf[line + 1 : close].strip(_WS) else close
        self._learned += 1
        self._misses = 0
        self._searched = -1
        return _Pattern(buf[begin : m.end()], close - begin, self._pos - begin)

    def _skip_ws_in_buffer(self, pos: int) -> int:
        m = _NOT_WS.search(self._buf, pos)
        return m.start() if m is not None else len(self._buf)

    def _element(self, decode: Callable[[memoryview], T]) -> T | Undecodable:
        pattern = self._pattern
        if pattern is not None and self._buf[self._pos] == _BRACE:
            guessed = self._guess(decode, pattern)
            if guessed is not None:
                return guessed[0]
            self._miss()
        try:
            end = self._span()
        except JsonSyntaxError as e:
            if e.truncated:
                raise
            return self._damaged(e)
        return self._decode_exact(decode, end)

    def _damaged(self, error: JsonSyntaxError) -> Undecodable:
        """Step over an element that is not valid JSON when its brackets show where it ends
        and a ``,`` or ``]`` follows; otherwise re-raise ``error`` (reading stops there)."""
        while True:
            end = structural_end(self._buf, self._pos)
            if end is not None:
                break
            if len(self._buf) - self._pos > MAX_DAMAGED or not self._more():
                raise error
        size = end - self._pos  # ``_more`` moves the buffer: keep positions relative
        while self._skip_ws_in_buffer(self._pos + size) >= len(self._buf) and self._more():
            pass
        after = self._skip_ws_in_buffer(self._pos + size)
        if after >= len(self._buf) or self._buf[after] not in (_COMMA, _BRACKET_CLOSE,
                                                               _CLOSE_BRACE):
            raise error
        raw = self._buf[self._pos : self._pos + size]
        self._pos += size
        return Undecodable(raw, f"not valid JSON ({error.detail})", invalid=True)

    def _miss(self) -> None:
        self._misses += 1
        if self._misses >= _MAX_MISSES and self._pattern is not None:
            log.debug("element separator %r stopped matching", self._pattern.text)
            self._pattern = None

    def _guess(
        self, decode: Callable[[memoryview], T], pattern: _Pattern
    ) -> tuple[T | Undecodable] | None:
        """Try the learned separator; None when it does not lead to the element's end."""
        text = pattern.text
        while True:
            begin = max(self._pos + 1, self._searched - self._base - len(text) + 1)
            at = self._buf.find(text, begin)
            if at >= 0:
                break
            self._searched = self._base + len(self._buf)
            if len(self._buf) - self._pos >= max(LOOKAHEAD, self._chunk) or not self._more():
                return None
        end = at + pattern.close + 1
        mv = memoryview(self._buf)[self._pos : end]
        try:
            value: T | Undecodable = decode(mv)
        except (msgspec.ValidationError, UnicodeDecodeError) as e:
            # Refused before the decoder reached the end: the slice is this element only if
            # it is exactly one JSON value.
            try:
                _RAW.decode(mv)
            except (msgspec.DecodeError, RecursionError):
                return None
            value = _refused(mv, e)
        except RecursionError:
            return None
        except msgspec.DecodeError as e:
            if _is_bad_utf8(e):
                try:
                    _RAW.decode(mv)
                except (msgspec.DecodeError, RecursionError):
                    return None
                self._pos = end
                self._next = at + pattern.open
                self._misses = 0
                return (_refused(mv, e),)
            n = _value_end(e)
            if n is None:
                return None  # guessed too early (inside a string or a nested object)
            # Guessed too far (this element ended otherwise): the first value is complete
            # and ends before byte n.
            self._miss()
            return (self._decode_exact(decode, self._pos + n),)
        self._pos = end
        self._next = at + pattern.open
        self._misses = 0
        return (value,)

    def _decode_exact(self, decode: Callable[[memoryview], T], end: int) -> T | Undecodable:
        """Decode ``_buf[_pos:end]``, known to be exactly one JSON value, and move past it."""
        mv = memoryview(self._buf)[self._pos : end]
        try:
            value: T | Undecodable = decode(mv)
        except (msgspec.ValidationError, UnicodeDecodeError) as e:
            value = _refused(mv, e)
        except (msgspec.DecodeError, RecursionError) as e:
            # Raw accepted these bytes but the typed decoder did not: invalid UTF-8 in a
            # field it reads, or a depth it cannot reach.
            value = _refused(mv, e)
        self._pos = end
        return value
