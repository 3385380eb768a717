"""mitmproxy flows as exchanges: saved flow files (``mitmdump -w``) and live flows.

:func:`exchange_from_flow` is the one conversion from a mitmproxy ``HTTPFlow`` to an
:class:`~corsflow.model.Exchange`; the file reader and the live addon both use it.

:func:`read_flows` streams a flow file through mitmproxy's own ``FlowReader``, which
migrates every flow format mitmproxy still knows. Where it gives up, this reader picks up
at the record that failed instead of losing the rest of the file:

- a record mitmproxy cannot load (an unknown field, a damaged value) is skipped and
  counted, and reading resumes at the next record;
- a record in the mitmproxy 0.10 format, which current mitmproxy refuses, is read by
  :mod:`corsflow.ingest.mitm_legacy` (its request and response are all corsflow needs);
- a truncated or corrupt tail ends the file: what was read before it stands, and the
  diagnostics name the flow where reading stopped.
"""

from __future__ import annotations

import contextlib
import logging
from collections import OrderedDict
from collections.abc import Iterator
from typing import BinaryIO
from urllib.parse import quote_from_bytes

from mitmproxy import exceptions, http
from mitmproxy.flow import Flow
from mitmproxy.io import FlowReader, tnetstring
from mitmproxy.version import FLOW_FORMAT_VERSION, VERSION

from ..errors import Diagnostics, IngestError
from ..model import Exchange, Headers, ProducerHints, Response, SourceRef, Timings
from .mitm_legacy import is_legacy_version, legacy_exchange

log = logging.getLogger(__name__)

# What mitmproxy's reader and its format migrations raise on data they cannot load. Its
# converters index into dicts and tuples of whatever the file holds, so a damaged record
# surfaces as any of these, not only as FlowReadException.
_LOAD_ERRORS = (
    exceptions.FlowReadException,
    ValueError,
    KeyError,
    TypeError,
    IndexError,
    AttributeError,
)


class ConnectionsSeen:
    """Remembers recent server connections, so connect and TLS time are charged once.

    A connection's setup time belongs to the first exchange sent on it; later exchanges
    reuse it (HAR writes -1 for them, we write None). Two flows share a connection when
    they share its peer and start time, which holds for live flows and for every saved
    format alike (old formats do not keep connection ids). Bounded: only the most recent
    ``size`` connections are remembered.
    """

    __slots__ = ("_seen", "_size")

    def __init__(self, size: int = 4096) -> None:
        self._seen: OrderedDict[tuple[object, float], None] = OrderedDict()
        self._size = size

    def first_use(self, peer: object, started: float) -> bool:
        key = (peer, started)
        if key in self._seen:
            self._seen.move_to_end(key)
            return False
        self._seen[key] = None
        if len(self._seen) > self._size:
            self._seen.popitem(last=False)
        return True


def skip_reason(flow: Flow) -> str | None:
    """Why ``flow`` is not an HTTP exchange corsflow can use, or None when it is one."""
    if not isinstance(flow, http.HTTPFlow):
        return f"{flow.type} flow (not HTTP)"
    if flow.websocket is not None and "duplicated" in flow.metadata:
        # Files written before flow format 12 kept a WebSocket's messages in a flow of
        # their own; mitmproxy's migration turns it into a copy of the handshake flow,
        # which is read on its own.
        return "WebSocket messages flow of an old flow format (its handshake is read separately)"
    if flow.request.data.method == b"CONNECT":
        return "CONNECT request (a proxy tunnel, not a request a page made)"
    return None


def exchange_from_flow(
    flow: Flow,
    n: int,
    path: str = "live",
    *,
    connections: ConnectionsSeen | None = None,
) -> Exchange | None:
    """The exchange ``flow`` records, or None when it is not an HTTP exchange.

    ``n`` is the flow's 0-based number (in its file, or since the addon started); the
    exchange id is ``f"f{n}"``. Pass the same ``connections`` for every flow of one
    capture to get connect and TLS timings; without it they stay None.
    """
    if skip_reason(flow) is not None:
        return None
    assert isinstance(flow, http.HTTPFlow)
    return _exchange(flow, n, path, connections)


def _exchange(
    flow: http.HTTPFlow, n: int, path: str, connections: ConnectionsSeen | None
) -> Exchange:
    rd = flow.request.data
    resp = flow.response
    response = None
    if resp is not None:
        data = resp.data
        response = Response(
            status=data.status_code,
            headers=Headers(_decoded(data.headers.fields)),
            reason=data.reason.decode("latin-1") or None,  # HTTP/2 and 3 have no reason phrase
            http_version=data.http_version.decode("latin-1") or None,
            finished=data.timestamp_end,
        )
    peer = flow.server_conn.peername
    return Exchange(
        id=f"f{n}",
        method=rd.method.decode("latin-1"),
        url=url_of(rd),
        request_headers=Headers(_decoded(rd.headers.fields, drop_pseudo=True)),
        started=rd.timestamp_start,
        source=SourceRef(path, "mitmproxy", n, f"flow {n}"),
        response=response,
        failure=flow.error.msg if flow.error is not None else None,
        timings=_timings(flow, connections),
        http_version=rd.http_version.decode("latin-1") or None,
        hints=ProducerHints(server_ip=str(peer[0]) if peer else None, creator="mitmproxy"),
    )


_DEFAULT_PORTS = {"http": 80, "https": 443}
# Path bytes kept as they are: printable ASCII. Others are percent-encoded, as a browser does.
_PATH_SAFE = bytes(range(0x21, 0x7F))


def url_of(request: http.RequestData) -> str:
    """The absolute URL of a request, from its scheme, host, port and path.

    Like mitmproxy's ``Request.url``, except that an IPv6 host is bracketed (mitmproxy
    writes ``http://::1:8080/``), an international host name is in punycode, and bytes
    outside printable ASCII in the path are percent-encoded: always a valid ASCII URL.
    """
    scheme = request.scheme.decode("ascii", "replace").lower()
    host = request.host
    if not host.isascii():
        # mitmproxy keeps international names decoded; browsers send them as punycode
        # (in Origin too), so compare like with like.
        with contextlib.suppress(UnicodeError):
            host = host.encode("idna").decode("ascii")
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    port = request.port
    authority = host if _DEFAULT_PORTS.get(scheme) == port else f"{host}:{port}"
    raw = request.path
    if raw == b"*":  # asterisk-form (OPTIONS *): the server itself
        raw = b""
    path = raw.decode("latin-1")
    if not (path.isascii() and path.isprintable() and " " not in path):
        path = quote_from_bytes(raw, _PATH_SAFE)
    return f"{scheme}://{authority}{path}"


def _decoded(
    fields: tuple[tuple[bytes, bytes], ...], drop_pseudo: bool = False
) -> tuple[tuple[str, str], ...]:
    # Isomorphic decode: every byte maps to the code point of the same value. HTTP/2 and
    # HTTP/3 pseudo-header fields (":authority"...), kept by old files, are not headers.
    if drop_pseudo:
        return tuple(
            [(n.decode("latin-1"), v.decode("latin-1")) for n, v in fields if n[:1] != b":"]
        )
    return tuple([(n.decode("latin-1"), v.decode("latin-1")) for n, v in fields])


def _ms(start: float | None, end: float | None) -> float | None:
    if not start or not end or end < start:
        return None
    return (end - start) * 1000.0


def _timings(flow: http.HTTPFlow, connections: ConnectionsSeen | None) -> Timings:
    req, resp, server = flow.request.data, flow.response, flow.server_conn
    connect = ssl = None
    if (
        connections is not None
        and server.timestamp_start
        and server.timestamp_tcp_setup
        and connections.first_use(server.peername or server.address, server.timestamp_start)
    ):
        connect = _ms(server.timestamp_start, server.timestamp_tcp_setup)
        ssl = _ms(server.timestamp_tcp_setup, server.timestamp_tls_setup)
    send = _ms(req.timestamp_start, req.timestamp_end)
    wait = receive = None
    if resp is not None:
        wait = _ms(req.timestamp_end, resp.data.timestamp_start)
        receive = _ms(resp.data.timestamp_start, resp.data.timestamp_end)
    # HAR's "time": the sum of the phases that apply.
    total = None
    for phase in (connect, ssl, send, wait, receive):
        if phase is not None:
            total = phase if total is None else total + phase
    return Timings(connect=connect, ssl=ssl, send=send, wait=wait, receive=receive, total=total)


def read_flows(path: str, diagnostics: Diagnostics) -> Iterator[Exchange]:
    """Stream the HTTP exchanges of a mitmproxy flow file, in the file's order.

    Flows that are not HTTP exchanges (tcp, udp, dns, ...) are skipped and counted.
    Raises IngestError when the file cannot be opened or its first flow cannot be read.
    """
    with _open(path) as fo:
        yield from _read(fo, path, diagnostics)


def _open(path: str) -> BinaryIO:
    try:
        return open(path, "rb")
    except OSError as e:
        raise IngestError(path, f"cannot open: {e.strerror or e}") from None


def _read(fo: BinaryIO, path: str, diagnostics: Diagnostics) -> Iterator[Exchange]:
    connections = ConnectionsSeen()
    n = 0
    while True:
        start = fo.tell()
        flows = iter(FlowReader(fo).stream())
        while True:
            try:
                flow = next(flows)
            except StopIteration:
                return
            except _LOAD_ERRORS as e:
                error = _describe(e)
                break
            reason = skip_reason(flow)
            if reason is not None:
                diagnostics.skip(path, f"flow {n}", reason)
            else:
                assert isinstance(flow, http.HTTPFlow)
                yield _exchange(flow, n, path, connections)
            n += 1
            start = fo.tell()
        # mitmproxy stopped at the record that begins at ``start``. Read that record
        # ourselves to tell a damaged flow (skip it, go on) from a damaged file (stop).
        fo.seek(start)
        if not fo.read(64).strip() and not fo.read(1):
            return  # only whitespace after the last record
        fo.seek(start)
        try:
            record = tnetstring.load(fo)
        except (ValueError, TypeError, IndexError) as e:
            _truncated(
                path, n, start, f"{error}: {e}" if str(e) not in error else error, diagnostics
            )
            return
        if not isinstance(record, dict):
            _truncated(path, n, start, "a flow record is not a dictionary", diagnostics)
            return
        version = record.get(b"version", record.get("version"))
        if is_legacy_version(version):
            exchange = legacy_exchange(record, n, path, diagnostics)
            if exchange is not None:
                if n == 0:
                    diagnostics.note(
                        f"{path}: read as a mitmproxy 0.10 flow file, a format mitmproxy "
                        f"{VERSION} no longer reads; connection timings are not available"
                    )
                yield exchange
        elif _newer_than_supported(version):
            message = (
                f"flow format {version} is newer than mitmproxy {VERSION} reads "
                f"(up to {FLOW_FORMAT_VERSION}); read it with a newer mitmproxy"
            )
            if n == 0:
                raise IngestError(path, message, f"flow {n}")
            diagnostics.skip(path, f"flow {n}", message)
        else:
            diagnostics.skip(path, f"flow {n}", f"mitmproxy cannot load this flow: {error}")
        n += 1


def _describe(e: BaseException) -> str:
    # FlowReadException wraps the useful message in its cause ("Invalid data format.").
    cause = e.__cause__
    text = str(e)
    if cause is not None and str(cause) and str(cause) not in text:
        text = f"{text} ({cause})" if text else str(cause)
    if isinstance(e, KeyError):
        text = f"missing field {text}"
    text = " ".join(text.split()) or type(e).__name__
    # Some causes run long (a damaged certificate's PEM error with a link): keep the gist.
    return text if len(text) <= 160 else text[:159] + "…"


def _truncated(path: str, n: int, offset: int, detail: str, diagnostics: Diagnostics) -> None:
    if n == 0:
        raise IngestError(
            path, f"not a mitmproxy flow file, or damaged from its start ({detail})", "flow 0"
        )
    diagnostics.skip(
        path,
        f"flow {n} (byte {offset})",
        "truncated or corrupt flow data; the rest of the file is ignored",
    )
    log.debug("%s, flow %d: %s", path, n, detail)


def _newer_than_supported(version: object) -> bool:
    return isinstance(version, int) and version > FLOW_FORMAT_VERSION
