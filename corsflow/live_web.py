"""``corsflow live --web PORT``: the HTML report, served on 127.0.0.1, updating as flows arrive.

The page is the same self-contained report ``--format html`` writes (every captured value
escaped, no external assets), plus one small script, allowed by its hash in the page's
Content-Security-Policy, that asks ``/report?v=N`` every second and swaps the new report's
body in when the analysis has moved on. The report holds settled verdicts only: serving it
never settles a verdict early (a preflight still waiting for its request stays out until it
is decided). It is rendered without charts, only when something new was settled, and no
more often than keeps its rendering under a tenth of the proxy's time.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
import time
from typing import TYPE_CHECKING

from mitmproxy import ctx
from mitmproxy.addonmanager import Loader
from mitmproxy.log import ALERT

if TYPE_CHECKING:
    from .addon import CorsflowAddon

log = logging.getLogger(__name__)

POLL_MS = 1000
RENDER_SHARE = 0.1
"""The most of the event loop's time rendering the page may take."""
SCRIPT = f"""
let version = document.documentElement.dataset.version;
async function refresh() {{
  try {{
    const r = await fetch('/report?v=' + version, {{cache: 'no-store'}});
    if (r.status === 200) {{
      const doc = new DOMParser().parseFromString(await r.text(), 'text/html');
      version = r.headers.get('X-Corsflow-Version');
      document.body.replaceWith(document.adoptNode(doc.body));
    }}
  }} catch (e) {{}}
  setTimeout(refresh, {POLL_MS});
}}
setTimeout(refresh, {POLL_MS});
"""
_HASH = base64.b64encode(hashlib.sha256(SCRIPT.encode()).digest()).decode()
LIVE_CSP = (
    "default-src 'none'; img-src data:; style-src 'unsafe-inline'; "
    f"script-src 'sha256-{_HASH}'; connect-src 'self'; base-uri 'none'; form-action 'none'"
)
"""The report's own policy, plus this one script (by hash) and requests back to this server."""


class LivePage:
    """Serves the live report page while the proxy runs."""

    def __init__(self, analysis: CorsflowAddon) -> None:
        self.analysis = analysis
        self.server: asyncio.Server | None = None
        self._page: tuple[int, bytes] | None = None
        self._next_render = 0.0
        """Monotonic time before which a new version is not rendered (the last one's cost)."""

    def load(self, loader: Loader) -> None:
        loader.add_option(
            "corsflow_web_port", int, 0,
            "Serve corsflow's live report page on 127.0.0.1 at this port. 0: no page.",
        )  # fmt: skip

    async def running(self) -> None:
        port = ctx.options.corsflow_web_port
        if not port:
            return
        try:
            self.server = await asyncio.start_server(self._serve, "127.0.0.1", port)
        except OSError as e:
            log.error("corsflow: the live page cannot listen on 127.0.0.1:%d: %s", port,
                      e.strerror or e)
            return
        log.log(ALERT, "corsflow: live report at http://127.0.0.1:%d/", port)

    def done(self) -> None:
        if self.server is not None:
            self.server.close()
            self.server = None

    def _version(self) -> int:
        return self.analysis.settled

    def _current(self) -> tuple[int, bytes]:
        """The rendered report and its version: rendered again when the analysis has moved
        on and the last rendering's cost has been paid back. Rendering runs on the proxy's
        event loop (a long session's report proves its changes by replay), so at most
        ``RENDER_SHARE`` of the loop's time goes to the page, however busy the traffic."""
        version = self._version()
        now = time.monotonic()
        if self._page is None or (self._page[0] != version and now >= self._next_render):
            from .report.html import render_html

            report = self.analysis.snapshot()
            page = "" if report is None else render_html(
                report, charts=False, title="CORS report (mitmproxy live)")
            self._page = (version, page.encode())
            took = time.monotonic() - now
            self._next_render = time.monotonic() + took * (1 / RENDER_SHARE - 1)
        return self._page

    def _render(self, live: bool) -> tuple[int, bytes]:
        """The report page (``live``: with the refresh script) and its version."""
        from .report.html import CSP

        version, body = self._current()
        page = body.decode()
        page = page.replace("<html ", f'<html data-version="{version}" ', 1)
        if live:
            page = page.replace(CSP, LIVE_CSP, 1).replace(
                "</body>", f"<script>{SCRIPT}</script></body>", 1)
        return version, page.encode()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
            method, target, *_ = head.split(b"\r\n", 1)[0].decode("latin-1").split(" ")
            path, _, query = target.partition("?")
            if method != "GET" or path not in ("/", "/report"):
                await _respond(writer, 404, b"not found", "text/plain")
                return
            if path == "/report" and query == f"v={self._current()[0]}":
                await _respond(writer, 204, b"", "text/plain")
                return
            version, body = self._render(live=path == "/")
            await _respond(writer, 200, body, "text/html; charset=utf-8",
                           [("X-Corsflow-Version", str(version))])
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError,
                ConnectionError, ValueError):
            pass
        finally:
            writer.close()


async def _respond(writer: asyncio.StreamWriter, status: int, body: bytes, kind: str,
                   extra: list[tuple[str, str]] | None = None) -> None:
    reason = {200: "OK", 204: "No Content", 404: "Not Found"}[status]
    lines = [f"HTTP/1.1 {status} {reason}", f"Content-Type: {kind}",
             f"Content-Length: {len(body)}", "Cache-Control: no-store",
             "X-Content-Type-Options: nosniff", "Connection: close",
             *(f"{n}: {v}" for n, v in extra or ())]
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
    await writer.drain()
