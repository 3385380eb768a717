"""Ingest: turn capture files into a stream of :class:`~corsflow.model.Exchange`.

Each reader is a generator ``read(path, diagnostics) -> Iterator[Exchange]`` that streams
its input; :func:`open_capture` picks the reader from the file's content, never its name.
Compressed files (gzip, bzip2, xz, zstd, zlib as in mitmproxy's ``.zhar``) are read through
:func:`.compressed.open_input` by every reader, and detected here after decompression.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

from ..errors import Diagnostics, IngestError
from ..model import Exchange, SourceFormat
from .compressed import open_input

Reader = Callable[[str, Diagnostics], Iterator[Exchange]]

_PCAP_MAGICS = {
    b"\xa1\xb2\xc3\xd4", b"\xd4\xc3\xb2\xa1",  # microseconds, both byte orders
    b"\xa1\xb2\x3c\x4d", b"\x4d\x3c\xb2\xa1",  # nanoseconds, both byte orders
}
_PCAPNG_MAGIC = b"\x0a\x0d\x0d\x0a"
_BOM = b"\xef\xbb\xbf"
_JSONP = re.compile(rb"\s*[A-Za-z_$][\w$.]*\s*\(\s*\{")
"""HAR Viewer's JSONP form of a HAR: ``onInputData({...});``."""
_NETLOG = re.compile(rb'\{\s*"(?:constants|events)"\s*:')
"""Chromium's NetLog writer always puts ``constants`` first (net-export and --log-net-log);
a tool writing the object again may put ``events`` first. A HAR's one key is ``log``."""


def detect_format(path: str) -> SourceFormat:
    """Name the format of ``path`` from its first bytes.

    Raises IngestError when the file cannot be opened or is none of the formats we read.
    """
    with open_input(path) as f:
        try:
            head = f.read(256)
        except OSError as e:
            raise IngestError(path, f"cannot read: {e.strerror or e}") from None
    if not head:
        raise IngestError(path, "the file is empty")
    if head[:4] in _PCAP_MAGICS:
        return "pcap"
    if head[:4] == _PCAPNG_MAGIC:
        return "pcapng"
    text = head[3:] if head.startswith(_BOM) else head
    stripped = text.lstrip()
    if _NETLOG.match(stripped):
        return "netlog"
    if stripped.startswith((b"{", b"[")) or _JSONP.match(text):
        return "har"
    # mitmproxy's flow files are tnetstrings: "<length>:<payload><type>".
    colon = head.find(b":")
    if 0 < colon <= 10 and head[:colon].isdigit():
        return "mitmproxy"
    raise IngestError(path, "not a HAR, NetLog, pcap, pcapng or mitmproxy flow file "
                      "(unrecognised content)")


def reader_for(fmt: SourceFormat) -> Reader:
    """The reader for a format; imported lazily so a HAR user never loads dpkt or mitmproxy."""
    if fmt == "har":
        from .har import read_har

        return read_har
    if fmt == "netlog":
        from .netlog import read_netlog

        return read_netlog
    if fmt in ("pcap", "pcapng"):
        from .pcap import read_pcap

        return read_pcap
    from .flowfile import read_flows

    return read_flows


def open_capture(path: str, diagnostics: Diagnostics) -> tuple[SourceFormat, Iterator[Exchange]]:
    """Detect ``path``'s format and return it with the stream of its exchanges."""
    fmt = detect_format(path)
    return fmt, reader_for(fmt)(path, diagnostics)
