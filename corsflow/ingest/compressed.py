"""Open a capture whatever it is compressed with, told by its magic bytes, never its name.

``capture.har.gz``, ``dump.pcap.xz``, ``flows.zst``, mitmproxy's ``.zhar`` (a zlib stream):
every reader opens its input through :func:`open_input` and reads the decompressed bytes as
a stream, so memory stays bounded whatever the compression ratio (a decompression bomb costs
time in proportion to what it expands to, never memory).

Compressed data that turns out damaged half-way reads as the end of the file: the reader
then reports a truncated capture, keeping what came before, and :func:`open_input` leaves a
note in the diagnostics saying why it ended there.
"""

from __future__ import annotations

import bz2
import io
import lzma
import zlib
from collections.abc import Callable
from typing import Any, BinaryIO

from ..errors import Diagnostics, IngestError

_GZIP = b"\x1f\x8b"
_BZIP2 = b"BZh"
_XZ = b"\xfd7zXZ\x00"
_ZSTD = b"\x28\xb5\x2f\xfd"
_MAX_LAYERS = 3
"""``x.har.gz.xz`` is read; deeper nesting is refused (it only serves to hide a bomb)."""


def compression_of(head: bytes) -> str | None:
    """The compression format whose magic bytes ``head`` starts with, else None."""
    if head.startswith(_GZIP):
        return "gzip"
    if head.startswith(_BZIP2) and head[3:4].isdigit():
        return "bzip2"
    if head.startswith(_XZ):
        return "xz"
    if head.startswith(_ZSTD):
        return "zstd"
    # A zlib stream (mitmproxy's .zhar): deflate with a 32 KB window, and a header whose
    # check bits make it a multiple of 31. No JSON, pcap or tnetstring starts so.
    if len(head) >= 2 and head[0] == 0x78 and (head[0] << 8 | head[1]) % 31 == 0:
        return "zlib"
    return None


def _new_decompressor(kind: str) -> Callable[..., Any]:
    if kind == "gzip":
        return lambda: zlib.decompressobj(16 + zlib.MAX_WBITS)
    if kind == "zlib":
        return lambda: zlib.decompressobj(zlib.MAX_WBITS)
    if kind == "bzip2":
        return bz2.BZ2Decompressor
    if kind == "xz":
        return lzma.LZMADecompressor
    try:
        import zstandard
    except ImportError:  # pragma: no cover - a dependency; only a broken install lacks it
        raise ImportError("reading zstd-compressed captures needs the zstandard package "
                          "(pip install zstandard)") from None
    dctx = zstandard.ZstdDecompressor()
    return dctx.stream_reader


_ERRORS: tuple[type[Exception], ...] = (zlib.error, OSError, EOFError, lzma.LZMAError,
                                        ValueError)
"""What the decompressors raise on damaged data (zstandard's ZstdError is added for zstd:
imported only when a file needs it)."""


class _Stream(io.RawIOBase):
    """The decompressed bytes of ``source``: multi-member gzip, bzip2 and xz files and
    multi-frame zstd files are read whole; ``seek(0)`` starts again."""

    def __init__(self, path: str, source: BinaryIO, kind: str,
                 diagnostics: Diagnostics | None) -> None:
        super().__init__()
        self._path = path
        self._source = source
        self._kind = kind
        self._factory = _new_decompressor(kind)
        self._errors = _ERRORS
        if kind == "zstd":
            import zstandard

            self._errors = (*_ERRORS, zstandard.ZstdError)
        self._diagnostics = diagnostics
        self._reset()

    def _reset(self) -> None:
        self._source.seek(0)
        if self._kind == "zstd":
            self._decompressor = self._factory(self._source, read_size=1 << 16,
                                               read_across_frames=True, closefd=False)
        else:
            self._decompressor = self._factory()
        self._pending = b""
        self._produced = 0
        self._done = False

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._produced

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if whence == io.SEEK_CUR:
            offset += self._produced
        elif whence != io.SEEK_SET:
            raise io.UnsupportedOperation("seek from the end of a compressed stream")
        if offset < self._produced:
            self._reset()
        while self._produced < offset:  # forward: read and drop
            if not self.read(min(offset - self._produced, 1 << 20)):
                break
        return self._produced

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        want = len(view)
        while not self._pending and not self._done:
            self._pending = self._next(want)
        data = self._pending[:want]
        self._pending = self._pending[len(data):]
        view[: len(data)] = data
        self._produced += len(data)
        return len(data)

    def _next(self, want: int) -> bytes:
        """At most ``want`` more decompressed bytes (b"" at the end): the output of each
        step is bounded, so a small input that expands enormously is read a piece at a time."""
        d = self._decompressor
        try:
            if self._kind == "zstd":
                data = d.read(want)
                if not data:
                    self._done = True
                return bytes(data)
            if self._kind in ("gzip", "zlib"):
                if d.unconsumed_tail:
                    return bytes(d.decompress(d.unconsumed_tail, want))
            elif not d.eof and not d.needs_input:
                return bytes(d.decompress(b"", want))
            if d.eof:
                rest = d.unused_data or self._source.read(1 << 16)
                if not rest.strip(b"\0"):  # end of file, or the zero padding some add
                    self._done = True
                    return b""
                # Another member (gzip), stream (bzip2, xz) follows.
                self._decompressor = d = self._factory()
                return bytes(d.decompress(rest, want))
            data = self._source.read(1 << 16)
            if not data:
                self._done = True
                self._damaged("it ends before its end-of-stream marker")
                return b""
            return bytes(d.decompress(data, want))
        except self._errors as e:
            self._done = True
            self._damaged(str(e) or type(e).__name__)
            return b""

    def _damaged(self, why: str) -> None:
        message = (f"{self._path}: the {self._kind} data is damaged after "
                   f"{self._produced} decompressed bytes ({why}); reading stopped there")
        if self._diagnostics is None:
            raise IngestError(self._path, message.split(": ", 1)[1])
        self._diagnostics.note(message)

    def close(self) -> None:
        self._source.close()
        super().close()


def open_input(path: str, diagnostics: Diagnostics | None = None) -> BinaryIO:
    """``path`` opened for reading, decompressed when its content is compressed.

    Raises IngestError when the file cannot be opened. With ``diagnostics``, compressed data
    that is damaged ends the stream early with a note; without, it raises IngestError.
    """
    try:
        f: BinaryIO = open(path, "rb")  # noqa: SIM115 - returned to the caller
    except OSError as e:
        raise IngestError(path, f"cannot open: {e.strerror or e}") from None
    for _ in range(_MAX_LAYERS):
        try:
            head = f.read(8)
            f.seek(0)
        except OSError as e:
            f.close()
            raise IngestError(path, f"cannot read: {e.strerror or e}") from None
        kind = compression_of(head)
        if kind is None:
            return f
        try:
            raw = _Stream(path, f, kind, diagnostics)
        except ImportError as e:
            f.close()
            raise IngestError(path, str(e)) from None
        f = io.BufferedReader(raw, 1 << 20)
    f.close()
    raise IngestError(path, f"compressed more than {_MAX_LAYERS} times over")
