"""A mitmproxy script for the tests: keeps every finished flow and writes them all on exit.

``mitmdump -w`` writes a flow as soon as it finishes, before a later flow can settle its
verdict (a preflight's waits for its request). Loaded after corsflow's addon, this writes
the same flow objects at ``done``, after corsflow has marked them, so a test can read the
final marks and comments back. ``--set collect_to=PATH``.
"""

from __future__ import annotations

from mitmproxy import ctx, http
from mitmproxy.addonmanager import Loader
from mitmproxy.io import FlowWriter


class Collect:
    def __init__(self) -> None:
        self.flows: list[http.HTTPFlow] = []

    def load(self, loader: Loader) -> None:
        loader.add_option("collect_to", str, "", "Write every finished flow here on exit.")

    def response(self, flow: http.HTTPFlow) -> None:
        self.flows.append(flow)

    def error(self, flow: http.HTTPFlow) -> None:
        self.flows.append(flow)

    def done(self) -> None:
        if ctx.options.collect_to:
            with open(ctx.options.collect_to, "wb") as f:
                writer = FlowWriter(f)
                for flow in self.flows:
                    writer.add(flow)


addons = [Collect()]
