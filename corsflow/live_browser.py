"""``corsflow live --browser``: a Chromium-family browser wired to the proxy, HTTPS included.

The browser gets a throwaway profile, the proxy for every address (loopback too), and trust
in mitmproxy's CA for that profile only: Chromium's ``--ignore-certificate-errors-spki-list``
names the CA's public key, and Chromium honours it only with a profile of its own
(``--user-data-dir``), so nothing on the machine trusts the CA afterwards. When the browser
closes, the proxy stops (and writes its report); when the proxy stops, the browser closes.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

from mitmproxy import ctx
from mitmproxy.addonmanager import Loader
from mitmproxy.log import ALERT

log = logging.getLogger(__name__)

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable",
              "microsoft-edge", "microsoft-edge-stable", "msedge", "chrome")
"""Chromium-family browsers looked up on PATH, in this order, for ``--browser`` alone."""

MAC_APPS = ("/Applications/Google Chrome.app/Contents/MacOS/Google Chrome",
            "/Applications/Chromium.app/Contents/MacOS/Chromium",
            "/Applications/Microsoft Edge.app/Contents/MacOS/Microsoft Edge")

QUIET_FLAGS = ("--no-first-run", "--no-default-browser-check", "--disable-background-networking",
               "--disable-component-update", "--disable-sync")
"""A throwaway profile needs none of the browser's own traffic (updates, sync, first-run
pages): it would only fill the report with requests the page never made."""


def find_browser(choice: str = "auto") -> str | None:
    """The browser binary: ``choice`` itself when it is a path or a command name, else the
    first Chromium-family browser installed."""
    if choice and choice != "auto":
        return shutil.which(choice) or (choice if os.path.isfile(choice) else None)
    for name in CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    return next((app for app in MAC_APPS if os.path.isfile(app)), None)


def spki_sha256(cert_pem: bytes) -> str:
    """The base64 SHA-256 of a certificate's SubjectPublicKeyInfo, as Chromium's
    ``--ignore-certificate-errors-spki-list`` takes it."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    cert = x509.load_pem_x509_certificate(cert_pem)
    spki = cert.public_key().public_bytes(serialization.Encoding.DER,
                                          serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(hashlib.sha256(spki).digest()).decode()


def browser_command(binary: str, proxy: str, spki: str, profile: str, url: str,
                    extra: Sequence[str] = ()) -> list[str]:
    """The command line that starts ``binary`` through ``proxy`` with the CA trusted."""
    return [
        binary, f"--user-data-dir={profile}", f"--proxy-server={proxy}",
        # Chromium sends loopback addresses around the proxy unless told not to.
        "--proxy-bypass-list=<-loopback>",
        f"--ignore-certificate-errors-spki-list={spki}",
        *QUIET_FLAGS, *extra, url,
    ]


def _signal_group(proc: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    try:
        os.killpg(proc.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


class BrowserLauncher:
    """Starts the browser once the proxy runs; each side's end ends the other."""

    def __init__(self) -> None:
        self.proc: subprocess.Popen[bytes] | None = None
        self.profile: str | None = None
        self._watch: asyncio.Task[None] | None = None

    def load(self, loader: Loader) -> None:
        loader.add_option(
            "corsflow_browser", str, "",
            "Start a Chromium-family browser through this proxy, with mitmproxy's CA trusted "
            "for its throwaway profile only: 'auto' finds one, or give its path. Empty: none.",
        )  # fmt: skip
        loader.add_option("corsflow_browser_url", str, "about:blank",
                          "The page the browser opens first.")
        loader.add_option("corsflow_browser_args", str, "",
                          "Further browser arguments, separated by spaces.")

    def running(self) -> None:
        choice = ctx.options.corsflow_browser
        if not choice:
            return
        binary = find_browser(choice)
        if binary is None:
            log.error("corsflow: no Chromium, Chrome or Edge found (%s); give its path with "
                      "--browser PATH", choice)
            ctx.master.shutdown()  # type: ignore[no-untyped-call]
            return
        cert = Path(ctx.options.confdir).expanduser() / "mitmproxy-ca-cert.pem"
        host = ctx.options.listen_host or "127.0.0.1"
        port = ctx.options.listen_port or 8080
        self.profile = tempfile.mkdtemp(prefix="corsflow-browser-")
        cmd = browser_command(binary, f"http://{host}:{port}", spki_sha256(cert.read_bytes()),
                              self.profile, ctx.options.corsflow_browser_url,
                              ctx.options.corsflow_browser_args.split())
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, start_new_session=True)
        log.log(ALERT, "corsflow: started %s (pid %d) with a throwaway profile; HTTPS is "
                "intercepted for it alone. Close it, or press Ctrl-C here, to stop.",
                os.path.basename(binary), self.proc.pid)
        self._watch = asyncio.get_running_loop().create_task(self._stop_with_browser())

    async def _stop_with_browser(self) -> None:
        while self.proc is not None and self.proc.poll() is None:
            await asyncio.sleep(0.3)
        log.log(ALERT, "corsflow: the browser closed; stopping the proxy")
        ctx.master.shutdown()  # type: ignore[no-untyped-call]

    def done(self) -> None:
        if self._watch is not None:
            self._watch.cancel()
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            # The browser's own helper processes share its session: end them all.
            _signal_group(proc, signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                _signal_group(proc, signal.SIGKILL)
                proc.wait()
        if self.profile is not None:
            shutil.rmtree(self.profile, ignore_errors=True)
            self.profile = None
