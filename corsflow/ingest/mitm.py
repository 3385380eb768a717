"""mitmproxy flows as exchanges: live flows (the addon) and flows mitmproxy loaded.

:func:`exchange_from_flow` is the one conversion from a mitmproxy ``HTTPFlow`` to an
:class:`~corsflow.model.Exchange`; the live addon uses it, and the flow file reader
(:mod:`.flowfile`, which needs no mitmproxy) for the old formats only mitmproxy migrates.

:func:`read_flows` (the flow file reader) lives in :mod:`.flowfile` and is re-exported here.
"""

from __future__ import annotations

from mitmproxy import http
from mitmproxy.flow import Flow

from ..model import Exchange, Headers, ProducerHints, Response, SourceRef, Timings
from .flowfile import ConnectionsSeen, build_url, decoded_headers, ms, read_flows

__all__ = ["ConnectionsSeen", "exchange_from_flow", "read_flows", "skip_reason", "url_of"]


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


def url_of(request: http.RequestData) -> str:
    """The absolute URL of a request (see :func:`.flowfile.build_url`)."""
    return build_url(request.scheme, request.host, request.port, request.path)


def _decoded(
    fields: tuple[tuple[bytes, bytes], ...], drop_pseudo: bool = False
) -> tuple[tuple[str, str], ...]:
    return decoded_headers(fields, drop_pseudo)


_ms = ms


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


