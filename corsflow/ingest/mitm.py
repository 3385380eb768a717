"""mitmproxy flows as exchanges: live flows (the addon) and flows mitmproxy loaded.

:func:`exchange_from_flow` is the one conversion from a mitmproxy ``HTTPFlow`` to an
:class:`~corsflow.model.Exchange`: :func:`record_of` takes what the analysis reads of the
flow, :func:`.flowrecord.exchange_of` makes the exchange of it. The live addon does the first
step on the proxy's event loop and leaves the second to its analysis process; the flow file
reader (:mod:`.flowfile`, which needs no mitmproxy) uses both for the old formats only
mitmproxy migrates.

:func:`read_flows` (the flow file reader) lives in :mod:`.flowfile` and is re-exported here.
"""

from __future__ import annotations

from mitmproxy import http
from mitmproxy.flow import Flow

from ..model import Exchange
from .flowfile import ConnectionsSeen, build_url, read_flows
from .flowrecord import FlowRecord, ResponseRecord, exchange_of

__all__ = ["ConnectionsSeen", "exchange_from_flow", "read_flows", "record_of", "skip_reason",
           "url_of"]


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
    return exchange_of(record_of(flow, n), path, connections)


def record_of(flow: http.HTTPFlow, n: int) -> FlowRecord:
    """What the analysis reads of ``flow`` (an HTTP exchange: see :func:`skip_reason`), as
    references to what the flow holds: nothing is decoded or copied here."""
    rd = flow.request.data
    resp = flow.response
    response = None
    if resp is not None:
        data = resp.data
        response = ResponseRecord(data.status_code, data.reason, data.http_version,
                                  data.headers.fields, data.timestamp_start, data.timestamp_end)
    server = flow.server_conn
    error = flow.error
    return FlowRecord(n, rd.method, rd.scheme, rd.host, rd.port, rd.path, rd.http_version,
                      rd.headers.fields, rd.timestamp_start, rd.timestamp_end, response,
                      None if error is None else error.msg, server.peername, server.address,
                      server.timestamp_start, server.timestamp_tcp_setup,
                      server.timestamp_tls_setup)


def url_of(request: http.RequestData) -> str:
    """The absolute URL of a request (see :func:`.flowfile.build_url`)."""
    return build_url(request.scheme, request.host, request.port, request.path)
