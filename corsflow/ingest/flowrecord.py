"""A mitmproxy flow as plain data: the few fields the analysis reads of it, and the one
conversion from them to an :class:`~corsflow.model.Exchange`.

The live addon runs on the proxy's event loop, where every microsecond it spends on a flow
is one the proxy does not spend proxying. So the proxy only copies references to what the
flow already holds (its byte strings, its header tuples, its times) into a
:class:`FlowRecord` (:func:`.mitm.record_of`), and the analysis process, on the other core,
makes the exchange (:func:`exchange_of`). The records are msgspec structs kept out of the
collector's view (``gc=False``: they hold no cycle), so the proxy's garbage collections
never walk them, and they cross the pipe as msgpack arrays.

This module does not import mitmproxy, which the analysis process never loads.
"""

from __future__ import annotations

import msgspec

from ..model import Exchange, Headers, ProducerHints, Response, SourceRef, Timings
from .flowfile import ConnectionsSeen, build_url, decoded_headers, ms

Fields = tuple[tuple[bytes, bytes], ...]
"""Header fields as mitmproxy holds them: (name, value) byte strings, in order."""


class ResponseRecord(msgspec.Struct, array_like=True, frozen=True, gc=False):
    status: int
    reason: bytes
    http_version: bytes
    headers: Fields
    started: float | None
    finished: float | None


class FlowRecord(msgspec.Struct, array_like=True, frozen=True, gc=False):
    """One finished HTTP flow, as mitmproxy held it when the addon saw it finish."""

    n: int
    """The flow's number: its exchange is ``f{n}``."""
    method: bytes
    scheme: bytes
    host: str
    port: int
    path: bytes
    http_version: bytes
    headers: Fields
    started: float
    sent: float | None
    """When the request's last byte was sent."""
    response: ResponseRecord | None
    error: str | None
    peer: tuple[str | int, ...] | None
    """The server connection's peer address (host, port...), None when it never connected."""
    address: tuple[str | int, ...] | None
    """The server address asked for (the peer's stand-in for connection reuse)."""
    connecting: float | None
    """When the server connection was opened, ..."""
    connected: float | None
    """... when its TCP handshake completed, ..."""
    secured: float | None
    """... and when its TLS handshake completed."""


def exchange_of(record: FlowRecord, path: str = "live",
                connections: ConnectionsSeen | None = None) -> Exchange:
    """The exchange ``record`` shows. Pass the same ``connections`` for every flow of one
    session to get connect and TLS timings (charged to a connection's first flow only);
    without it they stay None."""
    n = record.n
    resp = record.response
    response = None
    wait = receive = None
    if resp is not None:
        response = Response(
            status=resp.status,
            headers=Headers(decoded_headers(resp.headers)),
            reason=resp.reason.decode("latin-1") or None,  # HTTP/2 and 3 have no reason phrase
            http_version=resp.http_version.decode("latin-1") or None,
            finished=resp.finished,
        )
        wait = ms(record.sent, resp.started)
        receive = ms(resp.started, resp.finished)
    connect = ssl = None
    if (
        connections is not None
        and record.connecting
        and record.connected
        and connections.first_use(record.peer or record.address, record.connecting)
    ):
        connect = ms(record.connecting, record.connected)
        ssl = ms(record.connected, record.secured)
    send = ms(record.started, record.sent)
    # HAR's "time": the sum of the phases that apply.
    total = None
    for phase in (connect, ssl, send, wait, receive):
        if phase is not None:
            total = phase if total is None else total + phase
    peer = record.peer
    return Exchange(
        id=f"f{n}",
        method=record.method.decode("latin-1"),
        url=build_url(record.scheme, record.host, record.port, record.path),
        request_headers=Headers(decoded_headers(record.headers, drop_pseudo=True)),
        started=record.started,
        source=SourceRef(path, "mitmproxy", n, f"flow {n}"),
        response=response,
        failure=record.error,
        timings=Timings(connect=connect, ssl=ssl, send=send, wait=wait, receive=receive,
                        total=total),
        http_version=record.http_version.decode("latin-1") or None,
        hints=ProducerHints(server_ip=str(peer[0]) if peer else None, creator="mitmproxy"),
    )
