"""Flows saved after corsflow has marked them: the addon's ``corsflow_save`` option.

``mitmdump -w`` writes a flow the moment it finishes, before corsflow can mark it: a
preflight's verdict waits for the request it was sent for, and findings over many flows (a
Max-Age missing on every preflight of a server) are recognised seconds later. This writer
keeps finished flows a little longer, in the order they finished, and writes each once
nothing is left to change it: its verdict settled and the look for findings over many flows
done, or the bound on held flows reached (the oldest is then written as it stands). The file
is what ``-w`` writes, in the same order (WebSocket flows, as with ``-w``, when the socket
closes), so flow numbers read back from it are the live ones.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import BinaryIO

from mitmproxy import flow as mflow
from mitmproxy import http
from mitmproxy.io import FlowWriter


def _size(flow: mflow.Flow) -> int:
    if not isinstance(flow, http.HTTPFlow):
        return 0
    size = len(flow.request.raw_content or b"")
    if flow.response is not None:
        size += len(flow.response.raw_content or b"")
    return size


class FlowSaver:
    """Finished flows written in finish order once ``busy`` no longer holds them back."""

    def __init__(self, out: BinaryIO, *, linger: float, limit: int, max_bytes: int) -> None:
        self._out = out
        self._writer = FlowWriter(out)  # type: ignore[no-untyped-call]
        self.linger = linger
        self.limit = limit
        self.max_bytes = max_bytes
        self._held: OrderedDict[str, tuple[mflow.Flow, float, int]] = OrderedDict()
        self._bytes = 0
        self.written = 0

    def finished(self, flow: mflow.Flow, now: float) -> None:
        """``flow`` finished (it is written later); a WebSocket waits for :meth:`closed`."""
        if isinstance(flow, http.HTTPFlow) and flow.websocket is not None:
            return
        size = _size(flow)
        self._held[flow.id] = (flow, now, size)
        self._bytes += size

    def closed(self, flow: http.HTTPFlow) -> None:
        """A WebSocket flow's socket closed: written now, as ``-w`` does."""
        self._write(flow)

    def release(self, busy: Callable[[mflow.Flow], bool], now: float) -> None:
        """Write, oldest first, the flows nothing holds back any more; stop at the first
        still held, so the file keeps the finish order, unless the bound is passed."""
        while self._held:
            flow, at, size = next(iter(self._held.values()))
            over = len(self._held) > self.limit or self._bytes > self.max_bytes
            if not over and (now - at < self.linger or busy(flow)):
                return
            del self._held[flow.id]
            self._bytes -= size
            self._write(flow)

    def close(self) -> None:
        """Write every flow still held, in order, and close the file."""
        for flow, _, _ in self._held.values():
            self._write(flow)
        self._held.clear()
        self._bytes = 0
        self._out.close()

    def _write(self, flow: mflow.Flow) -> None:
        self._writer.add(flow)
        self.written += 1
