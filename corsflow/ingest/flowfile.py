"""Read mitmproxy flow files (``mitmdump -w``) straight from their tnetstring records.

mitmproxy's ``FlowReader`` migrates every record to the newest format and builds a whole
``Flow`` (connections, certificates, bodies) that the analysis throws away. This reader
decodes each record with :mod:`.tnetstring`, skips bodies, certificates and WebSocket
messages without building them, and takes the request, the response, the error and the
server connection's times directly, for the formats whose layout it knows:

- flow formats 7 to 21 (mitmproxy 5 to 11 and later), with text keys: read here;
- mitmproxy 0.10 and earlier: :mod:`.mitm_legacy` (current mitmproxy refuses them);
- the formats in between (mitmproxy 0.11 to 4): mitmproxy's own migrations, when the
  ``mitmproxy`` extra is installed (``pip install 'corsflow[mitmproxy]'``), on records
  that passed our checks first (a record with a version its keys contradict would make the
  migration loop forever).

So a flow file needs no mitmproxy at all unless it is older than mitmproxy 5. A damaged
record is skipped and counted; a truncated or corrupt tail ends the file, keeping what was
read before it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from collections import OrderedDict
from collections.abc import Iterator
from typing import Any, BinaryIO
from urllib.parse import quote_from_bytes

from ..errors import Diagnostics, IngestError
from ..model import Exchange, Headers, ProducerHints, Response, SourceRef, Timings
from .checks import plausible_time
from .compressed import open_input
from .mitm_legacy import is_legacy_version, legacy_exchange
from .tnetstring import PAIRS, TnetstringError, Wanted, loads, loads_only, read_record

log = logging.getLogger(__name__)

NEWEST_KNOWN = 21
"""The newest flow format this reader was written for (mitmproxy 11)."""
_OWN_FORMATS = range(7, NEWEST_KNOWN + 1)
_MIGRATED = {(0, m) for m in range(11, 20)} | {(1, 0), (2, 0), (3, 0), 4, 5, 6}
"""The versions handed to mitmproxy's migrations (mitmproxy 0.11 to 4)."""
_BYTE_KEYS = {(0, m) for m in range(11, 18)}
"""Those written with byte-string keys (mitmproxy 0.11 to 0.17)."""


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


_DEFAULT_PORTS = {"http": 80, "https": 443}
# Path bytes kept as they are: printable ASCII. Others are percent-encoded, as a browser does.
_PATH_SAFE = bytes(range(0x21, 0x7F))


def build_url(scheme: bytes, host: str, port: int, raw: bytes) -> str:
    """The absolute URL of a request, from its scheme, host, port and path.

    Like mitmproxy's ``Request.url``, except that an IPv6 host is bracketed (mitmproxy
    writes ``http://::1:8080/``), an international host name is in punycode, and bytes
    outside printable ASCII in the path are percent-encoded: always a valid ASCII URL.
    """
    text = scheme.decode("ascii", "replace").lower()
    if not host.isascii():
        # mitmproxy keeps international names decoded; browsers send them as punycode
        # (in Origin too), so compare like with like.
        with contextlib.suppress(UnicodeError):
            host = host.encode("idna").decode("ascii")
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    authority = host if _DEFAULT_PORTS.get(text) == port else f"{host}:{port}"
    if raw == b"*":  # asterisk-form (OPTIONS *): the server itself
        raw = b""
    path = raw.decode("latin-1")
    if not (path.isascii() and path.isprintable() and " " not in path):
        path = quote_from_bytes(raw, _PATH_SAFE)
    return f"{text}://{authority}{path}"


def decoded_headers(fields: Any, drop_pseudo: bool = False) -> tuple[tuple[str, str], ...]:
    """Header fields as text. Isomorphic decode: every byte maps to the code point of the
    same value. HTTP/2 and HTTP/3 pseudo-header fields (``:authority``...), kept by old
    files, are not headers."""
    if drop_pseudo:
        return tuple(
            [(n.decode("latin-1"), v.decode("latin-1")) for n, v in fields if n[:1] != b":"]
        )
    return tuple([(n.decode("latin-1"), v.decode("latin-1")) for n, v in fields])


def ms(start: float | None, end: float | None) -> float | None:
    """Milliseconds from ``start`` to ``end``; None when either is unknown or out of order."""
    if not start or not end or end < start:
        return None
    return (end - start) * 1000.0


_MESSAGE: Wanted = {"method": None, "scheme": None, "host": None, "port": None, "path": None,
                    "http_version": None, "headers": PAIRS, "timestamp_start": None,
                    "timestamp_end": None, "status_code": None, "reason": None}
_WANTED: Wanted = {
    "version": None, "type": None, "request": _MESSAGE, "response": _MESSAGE,
    "error": {"msg": None},
    "server_conn": {"peername": None, "ip_address": None, "address": None,
                    "timestamp_start": None, "timestamp_tcp_setup": None,
                    "timestamp_tls_setup": None},
}
"""What the analysis reads of a record; the rest (client connection, certificates, bodies,
WebSocket messages, metadata) is stepped over without being decoded."""


class _Damaged(Exception):
    """A record that cannot be an exchange; the message is the stable skip reason."""


# -- reading ---------------------------------------------------------------------------------


def read_flows(path: str, diagnostics: Diagnostics) -> Iterator[Exchange]:
    """Stream the HTTP exchanges of a mitmproxy flow file, in the file's order.

    Flows that are not HTTP exchanges (tcp, udp, dns, ...) are skipped and counted.
    Raises IngestError when the file cannot be opened or its first flow cannot be read.
    """
    with open_input(path, diagnostics) as fp:
        try:
            yield from _read(fp, path, diagnostics)
        except OSError as e:
            raise IngestError(path, f"cannot read: {e.strerror or e}") from None


def _read(fp: BinaryIO, path: str, diagnostics: Diagnostics) -> Iterator[Exchange]:
    connections = ConnectionsSeen()
    n = 0
    while True:
        offset = fp.tell()
        try:
            raw = read_record(fp)
        except TnetstringError as e:
            _stop(path, n, offset, str(e), diagnostics)
            return
        if raw is None:
            return
        if raw[1] != 0x7D:  # }
            if n == 0:
                _stop(path, n, offset, "a flow record is not a dictionary", diagnostics)
            diagnostics.skip(path, f"flow {n}", "damaged flow record (not a dictionary)")
            n += 1
            continue
        try:
            record = loads_only(*raw, _WANTED)
            version = record.get("version")
            if not (version.__class__ is int and version in _OWN_FORMATS):
                record = loads(*raw)  # an older format: mitmproxy's migrations want it all
        except (TnetstringError, RecursionError) as e:
            # The record's length prefix held: only its content is damaged.
            diagnostics.skip(path, f"flow {n}", f"damaged flow record ({e})")
            n += 1
            continue
        try:
            exchange = _record(record, n, path, connections, diagnostics)
        except _Damaged as e:
            diagnostics.skip(path, f"flow {n}", str(e))
        else:
            if exchange is not None:
                yield exchange
        n += 1


def _stop(path: str, n: int, offset: int, detail: str, diagnostics: Diagnostics) -> None:
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


def _record(record: dict[Any, Any], n: int, path: str, connections: ConnectionsSeen,
            diagnostics: Diagnostics) -> Exchange | None:
    """The exchange of one record, None when it is not an HTTP exchange (counted)."""
    has_text, has_bytes = "version" in record, b"version" in record
    version = record.get("version") if has_text else record.get(b"version")
    if isinstance(version, list):
        version = tuple(version)
    if is_legacy_version(version) and has_bytes and not has_text:
        exchange = legacy_exchange(record, n, path, diagnostics)
        if exchange is not None and n == 0:
            diagnostics.note(f"{path}: read as a mitmproxy 0.10 flow file, a format mitmproxy "
                             "no longer reads; connection timings are not available")
        return exchange
    if version.__class__ is int and has_text and not has_bytes:
        if version in _OWN_FORMATS:
            return _own(record, version, n, path, connections, diagnostics)
        if version > NEWEST_KNOWN:
            if version <= _mitmproxy_format():
                return _migrated(record, n, path, connections, diagnostics)
            message = (f"flow format {version} is newer than mitmproxy 11 wrote (this reader "
                       f"knows up to {NEWEST_KNOWN}); read it with a newer corsflow")
            if n == 0:
                raise IngestError(path, message, f"flow {n}")
            raise _Damaged(message)
    if isinstance(version, tuple) and len(version) >= 2:
        version = version[:2]
    try:
        migrated = version in _MIGRATED
    except TypeError:  # a damaged version holding a list or a dictionary
        migrated = False
    if migrated and has_text != has_bytes and has_bytes == (version in _BYTE_KEYS):
        return _migrated(record, n, path, connections, diagnostics)
    raise _Damaged("mitmproxy cannot load this flow: unknown or inconsistent flow format "
                   "version")


def _own(record: dict[str, Any], version: int, n: int, path: str,
         connections: ConnectionsSeen, diagnostics: Diagnostics) -> Exchange | None:
    kind = record.get("type")
    if kind != "http":
        if kind == "websocket" and version < 12:
            reason = ("WebSocket messages flow of an old flow format (its handshake is read "
                      "separately)")
        else:
            reason = f"{_show(kind)} flow (not HTTP)"
        diagnostics.skip(path, f"flow {n}", reason)
        return None
    try:
        return _exchange(record, n, path, connections, version, diagnostics)
    except _NotAnExchange:
        return None
    except (KeyError, TypeError, ValueError, AttributeError, IndexError, OverflowError) as e:
        detail = f"missing field {e}" if isinstance(e, KeyError) else (str(e) or type(e).__name__)
        raise _Damaged(f"mitmproxy cannot load this flow: {' '.join(detail.split())[:160]}") from None


def _show(kind: object) -> str:
    if isinstance(kind, str) and kind.isprintable() and len(kind) <= 20:
        return kind
    return "unknown"


def _bytes(value: object, what: str) -> bytes:
    if value.__class__ is bytes:
        return value
    if isinstance(value, str):
        return value.encode("utf-8", "surrogateescape")
    raise TypeError(f"{what} is not text")


def _headers(value: object, what: str, drop_pseudo: bool = False) -> tuple[tuple[str, str], ...]:
    """Header fields as text pairs (decoded by :func:`.tnetstring.loads_only`)."""
    if value.__class__ is not list:
        raise TypeError(f"{what} are not a list of pairs of byte strings")
    if drop_pseudo:
        return tuple([f for f in value if f[0][:1] != ":"])
    return tuple(value)


def _time(value: object) -> float | None:
    return float(value) if plausible_time(value) else None  # type: ignore[arg-type]


def _exchange(record: dict[str, Any], n: int, path: str, connections: ConnectionsSeen,
              version: int, diagnostics: Diagnostics) -> Exchange:
    req = record["request"]
    if req.__class__ is not dict:
        raise TypeError("request is not a dictionary")
    method = _bytes(req["method"], "method")
    if method == b"CONNECT":
        diagnostics.skip(path, f"flow {n}",
                         "CONNECT request (a proxy tunnel, not a request a page made)")
        raise _NotAnExchange
    port = req["port"]
    if port.__class__ is not int or not 0 <= port <= 65535:
        raise ValueError("port out of range")
    host = req["host"]
    if host.__class__ is bytes:
        host = host.decode("utf-8", "replace")
    if not isinstance(host, str):
        raise TypeError("host is not text")
    started = _time(req["timestamp_start"])
    if started is None:
        raise ValueError("request start time missing or out of range")
    req_end = _time(req.get("timestamp_end"))
    rheaders = _headers(req["headers"], "request headers", drop_pseudo=True)
    url = build_url(_bytes(req["scheme"], "scheme"), host.replace("\x00", ""), port,
                    _bytes(req["path"], "path"))
    resp = record.get("response")
    response = None
    wait = receive = None
    if resp is not None:
        if resp.__class__ is not dict:
            raise TypeError("response is not a dictionary")
        status = resp["status_code"]
        if status.__class__ is not int or not 0 <= status <= 999:
            raise ValueError("status code out of range")
        resp_start = _time(resp.get("timestamp_start"))
        finished = _time(resp.get("timestamp_end"))
        reason = _bytes(resp.get("reason") or b"", "reason")
        http_version = _bytes(resp.get("http_version") or b"", "http_version")
        response = Response(
            status=status,
            headers=Headers(_headers(resp["headers"], "response headers")),
            reason=reason.decode("latin-1") or None,  # HTTP/2 and 3 have no reason phrase
            http_version=http_version.decode("latin-1") or None,
            finished=finished,
        )
        wait = ms(req_end, resp_start)
        receive = ms(resp_start, finished)
    error = record.get("error")
    failure = None
    if error.__class__ is dict:
        msg = error.get("msg")
        if isinstance(msg, (str, bytes)):
            failure = msg if isinstance(msg, str) else msg.decode("utf-8", "replace")
    server = record.get("server_conn")
    if server.__class__ is not dict:
        server = {}
    peer = server.get("peername" if version >= 19 else "ip_address")
    peer_host = peer[0] if isinstance(peer, list) and peer else None
    if isinstance(peer_host, bytes):
        peer_host = peer_host.decode("utf-8", "backslashreplace")
    connect = ssl = None
    s_start = _time(server.get("timestamp_start"))
    s_tcp = _time(server.get("timestamp_tcp_setup"))
    if s_start and s_tcp:
        key = tuple(peer) if isinstance(peer, list) else server.get("address")
        if isinstance(key, list):
            key = tuple(key)
        with contextlib.suppress(TypeError):  # an unhashable peer: no connection timings
            if connections.first_use(key, s_start):
                connect = ms(s_start, s_tcp)
                ssl = ms(s_tcp, _time(server.get("timestamp_tls_setup")))
    send = ms(started, req_end)
    total = None
    for phase in (connect, ssl, send, wait, receive):
        if phase is not None:
            total = phase if total is None else total + phase
    req_version = _bytes(req.get("http_version") or b"", "http_version")
    return Exchange(
        id=f"f{n}",
        method=method.decode("latin-1"),
        url=url,
        request_headers=Headers(rheaders),
        started=started,
        source=SourceRef(path, "mitmproxy", n, f"flow {n}"),
        response=response,
        failure=failure,
        timings=Timings(connect=connect, ssl=ssl, send=send, wait=wait, receive=receive,
                        total=total),
        http_version=req_version.decode("latin-1") or None,
        hints=ProducerHints(server_ip=peer_host if isinstance(peer_host, str) else None,
                            creator="mitmproxy"),
    )


class _NotAnExchange(Exception):
    """A flow already counted as skipped (a CONNECT tunnel)."""


# -- older formats, through mitmproxy's own migrations ---------------------------------------


def _mitmproxy_format() -> int:
    """The newest flow format the installed mitmproxy reads (0 without mitmproxy)."""
    try:
        from mitmproxy.version import FLOW_FORMAT_VERSION
    except ModuleNotFoundError:
        return 0
    return FLOW_FORMAT_VERSION


def _migrated(record: dict[Any, Any], n: int, path: str, connections: ConnectionsSeen,
              diagnostics: Diagnostics) -> Exchange | None:
    try:
        from mitmproxy import exceptions
        from mitmproxy.flow import Flow
        from mitmproxy.io import compat

        from .mitm import exchange_from_flow, skip_reason
    except ModuleNotFoundError:
        raise IngestError(
            path, "this flow file is from mitmproxy 4 or older; reading it needs mitmproxy: "
            "pip install 'corsflow[mitmproxy]'", f"flow {n}") from None
    try:
        flow = Flow.from_state(compat.migrate_flow(record))
    except (exceptions.FlowReadException, ValueError, KeyError, TypeError, IndexError,
            AttributeError, OverflowError, RecursionError) as e:
        detail = f"missing field {e}" if isinstance(e, KeyError) else (str(e) or type(e).__name__)
        raise _Damaged(f"mitmproxy cannot load this flow: {' '.join(detail.split())[:160]}") from None
    reason = skip_reason(flow)
    if reason is not None:
        diagnostics.skip(path, f"flow {n}", reason)
        return None
    exchange = exchange_from_flow(flow, n, path, connections=connections)
    if exchange is None:
        return None
    if not plausible_time(exchange.started):
        raise _Damaged("mitmproxy cannot load this flow: request start time out of range")
    response = exchange.response
    if response is not None and response.finished is not None and not plausible_time(
            response.finished):
        exchange = dataclasses.replace(exchange, response=dataclasses.replace(
            response, finished=None))
    return exchange
