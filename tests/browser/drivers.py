"""Firefox and WebKit, driven the way the Chromium harness drives Chromium.

Firefox (Debian's ``firefox-esr``) is driven through Marionette with the ``marionette_driver``
package: no geckodriver. WebKit is WebKitGTK's MiniBrowser behind ``WebKitWebDriver`` (a W3C
WebDriver), run under ``xvfb-run`` because MiniBrowser needs a display. Each driver opens
the test page, runs one ``fetch()`` at a time and, where the browser has them, hands back
its own words for what it blocked: Firefox's console errors (nsIScriptError, whose category
names the reason: ``CORSMissingAllowOrigin2``...).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from .captures import free_port

log = logging.getLogger(__name__)

FIREFOX = "/usr/bin/firefox-esr"
WEBKIT_DRIVER = "/usr/bin/WebKitWebDriver"
MINIBROWSER_DIRS = ("/usr/lib/x86_64-linux-gnu/webkit2gtk-4.1",
                    "/usr/lib/aarch64-linux-gnu/webkit2gtk-4.1",
                    "/usr/lib/x86_64-linux-gnu/webkitgtk-6.0")

# One fetch, its cache mode and the frame it runs in: "top", or "opaque-a" / "opaque-b", two
# sandboxed iframes (allow-scripts only) whose origins are opaque. The callback is the last
# argument (WebDriver's executeAsync and Marionette's execute_async_script both do this).
FETCH_JS = """
const s = arguments[0], done = arguments[arguments.length - 1];
const init = {method: s.method, headers: s.headers, credentials: s.credentials};
if (s.body !== null) init.body = s.body;
if (s.cache && s.cache !== "default") init.cache = s.cache;
if (!s.frame || s.frame === "top") {
  fetch(s.url, init).then(async r => { await r.arrayBuffer();
    done({outcome: "resolved", status: r.status, error: null}); },
    e => done({outcome: "rejected", status: null, error: String(e)}));
} else {
  window.__frames = window.__frames || {};
  const run = (f) => {
    const id = Math.random().toString(36).slice(2);
    const on = (ev) => { if (ev.data && ev.data.id === id) {
      window.removeEventListener("message", on); done(ev.data.result); } };
    window.addEventListener("message", on);
    f.contentWindow.postMessage({id, url: s.url, init}, "*");
  };
  let f = window.__frames[s.frame];
  if (f) { run(f); } else {
    f = document.createElement("iframe");
    f.setAttribute("sandbox", "allow-scripts");
    f.srcdoc = "<script>addEventListener('message', async (ev) => {" +
      "const {id, url, init} = ev.data; let result;" +
      "try { const r = await fetch(url, init); await r.arrayBuffer();" +
      "result = {outcome: 'resolved', status: r.status, error: null}; }" +
      "catch (e) { result = {outcome: 'rejected', status: null, error: String(e)}; }" +
      "parent.postMessage({id, result}, '*'); });<\\/script>";
    f.onload = () => { window.__frames[s.frame] = f; run(f); };
    document.body.appendChild(f);
  }
}
"""


# Several fetches started together (no await between them), for concurrent groups: each runs
# FETCH_JS with its own callback; the driver's callback gets the results in order.
FETCH_ALL_JS = (
    "const specs = arguments[0], finish = arguments[arguments.length - 1];\n"
    "Promise.all(specs.map(s => new Promise(d => (function () {" + FETCH_JS
    + "}).apply(null, [s, d])))).then(finish);")


class DriverUnavailable(RuntimeError):
    """The browser or its driver is not installed, or did not start."""


@dataclass(frozen=True, slots=True)
class EngineMessage:
    """One message the browser logged about a request: its category (Firefox's name for
    the reason) and text."""

    category: str
    text: str


class Driver(Protocol):
    name: str
    version: str

    def open(self, url: str) -> None: ...
    def fetch(self, spec: dict[str, Any]) -> dict[str, Any]: ...
    def fetch_all(self, specs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Start the fetches together; their results in order."""
        ...
    def set_cache_disabled(self, disabled: bool) -> None: ...
    def messages(self) -> list[EngineMessage]:
        """Messages logged since the last call."""
        ...
    def close(self) -> None: ...


# Prefs that keep a fresh Firefox from calling home while the scenarios run.
FIREFOX_PREFS: dict[str, Any] = {
    "network.captive-portal-service.enabled": False,
    "network.connectivity-service.enabled": False,
    "network.dns.disablePrefetch": True,
    "network.prefetch-next": False,
    "network.http.speculative-parallel-limit": 0,
    "browser.safebrowsing.malware.enabled": False,
    "browser.safebrowsing.phishing.enabled": False,
    "app.update.disabledForTesting": True,
    "datareporting.policy.dataSubmissionEnabled": False,
    "toolkit.telemetry.server": "",
    "browser.shell.checkDefaultBrowser": False,
    "browser.startup.homepage_override.mstone": "ignore",
}

# nsIRequest.LOAD_BYPASS_CACHE: what DevTools' "Disable cache" sets as the browsing
# context's default load flags (devtools/server/actors/target-configuration.js).
_LOAD_BYPASS_CACHE = 1 << 9


class FirefoxDriver:
    name = "firefox"

    def __init__(self, workdir: Path | None = None) -> None:
        if not os.access(FIREFOX, os.X_OK):
            raise DriverUnavailable(f"{FIREFOX} is not installed (Debian package 'firefox-esr')")
        try:
            from marionette_driver.marionette import Marionette
        except ImportError:
            raise DriverUnavailable("the marionette_driver Python package is not installed"
                                    ) from None
        self._dir = Path(tempfile.mkdtemp(prefix="firefox-", dir=workdir))
        self._m = Marionette(host="127.0.0.1", port=free_port(), bin=FIREFOX, headless=True,
                             prefs=FIREFOX_PREFS, startup_timeout=120,
                             gecko_log=str(self._dir / "gecko.log"))
        self._m.start_session()
        self.version = str(self._m.session_capabilities.get("browserVersion", "?"))
        self._seen = 0

    def open(self, url: str) -> None:
        self._m.navigate(url)
        self.messages()  # drop what start-up logged

    def fetch(self, spec: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = self._m.execute_async_script(
            FETCH_JS, script_args=[spec], sandbox=None, script_timeout=30000)
        return result

    def fetch_all(self, specs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        results: list[dict[str, Any]] = self._m.execute_async_script(
            FETCH_ALL_JS, script_args=[specs], sandbox=None, script_timeout=30000)
        return results

    def set_cache_disabled(self, disabled: bool) -> None:
        with self._m.using_context("chrome"):
            self._m.execute_script(
                "gBrowser.selectedBrowser.browsingContext.defaultLoadFlags = arguments[0];",
                script_args=[_LOAD_BYPASS_CACHE if disabled else 0])

    def messages(self) -> list[EngineMessage]:
        with self._m.using_context("chrome"):
            raw = self._m.execute_script(
                "return Services.console.getMessageArray()"
                ".filter(m => m instanceof Ci.nsIScriptError)"
                ".map(m => [m.category, m.errorMessage]);")
        new = raw[self._seen:]
        self._seen = len(raw)
        return [EngineMessage(c, t) for c, t in new]

    def close(self) -> None:
        try:
            self._m.delete_session()
        finally:
            self._m.cleanup()
            shutil.rmtree(self._dir, ignore_errors=True)


def minibrowser() -> str | None:
    for d in MINIBROWSER_DIRS:
        path = os.path.join(d, "MiniBrowser")
        if os.access(path, os.X_OK):
            return path
    return None


class WebKitDriver:
    """MiniBrowser through WebKitWebDriver, a W3C WebDriver spoken to with urllib."""

    name = "webkit"

    def __init__(self, workdir: Path | None = None) -> None:
        binary = minibrowser()
        if not os.access(WEBKIT_DRIVER, os.X_OK) or binary is None:
            raise DriverUnavailable("WebKitWebDriver or MiniBrowser is not installed (Debian "
                                    "package 'webkit2gtk-driver')")
        xvfb = shutil.which("xvfb-run")
        if xvfb is None:
            raise DriverUnavailable("xvfb-run is not installed (Debian package 'xvfb')")
        self._dir = Path(tempfile.mkdtemp(prefix="webkit-", dir=workdir))
        port = free_port()
        self._base = f"http://127.0.0.1:{port}"
        self._log = open(self._dir / "webdriver.log", "wb")  # noqa: SIM115 (closed in close)
        # start_new_session: xvfb-run, Xvfb, the driver and MiniBrowser are one process
        # group, ended together through the id of the process started here.
        self._proc = subprocess.Popen(
            [xvfb, "-a", WEBKIT_DRIVER, f"--port={port}"], stdout=self._log,
            stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 30
        while True:
            try:
                self._call("GET", "/status")
                break
            except (OSError, DriverUnavailable):
                if self._proc.poll() is not None or time.monotonic() > deadline:
                    self._stop()
                    raise DriverUnavailable("WebKitWebDriver did not start") from None
                time.sleep(0.1)
        caps = {"capabilities": {"alwaysMatch": {"webkitgtk:browserOptions": {
            "binary": binary, "args": ["--automation"]}}}}
        value = self._call("POST", "/session", caps)
        self._sid = value["sessionId"]
        self.version = str(value["capabilities"].get("browserVersion", "?"))
        self._call("POST", f"/session/{self._sid}/timeouts", {"script": 30000})

    def _call(self, method: str, path: str, body: object = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self._base + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=60) as r:
                return json.loads(r.read())["value"]
        except urllib.error.HTTPError as e:
            raise DriverUnavailable(f"WebKitWebDriver {method} {path}: {e.read()[:300]!r}"
                                    ) from None

    def open(self, url: str) -> None:
        self._call("POST", f"/session/{self._sid}/url", {"url": url})

    def fetch(self, spec: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = self._call(
            "POST", f"/session/{self._sid}/execute/async", {"script": FETCH_JS, "args": [spec]})
        return result

    def fetch_all(self, specs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        results: list[dict[str, Any]] = self._call(
            "POST", f"/session/{self._sid}/execute/async",
            {"script": FETCH_ALL_JS, "args": [specs]})
        return results

    def set_cache_disabled(self, disabled: bool) -> None:
        raise DriverUnavailable("WebKitWebDriver cannot disable the cache (Web Inspector only)")

    def messages(self) -> list[EngineMessage]:
        # Under automation MiniBrowser does not write console messages anywhere a test can
        # read them; its words are recorded by webkit_words() without the driver.
        return []

    def _stop(self) -> None:
        if self._proc.poll() is None:
            os.killpg(self._proc.pid, signal.SIGTERM)
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self._proc.pid, signal.SIGKILL)
                self._proc.wait()
        self._log.close()

    def close(self) -> None:
        try:
            self._call("DELETE", f"/session/{self._sid}")
        except (OSError, DriverUnavailable):
            pass
        finally:
            self._stop()
            shutil.rmtree(self._dir, ignore_errors=True)


def start(engine: str, workdir: Path | None = None) -> Driver:
    if engine == "firefox":
        return FirefoxDriver(workdir)
    if engine == "webkit":
        return WebKitDriver(workdir)
    raise ValueError(engine)


def webkit_console_words(scenarios: list[Any], workdir: Path | None = None,
                         timeout: float = 60) -> dict[str, list[str]]:
    """WebKit's console errors for the first fetch of each sequential scenario.

    Under WebDriver MiniBrowser writes no console messages anywhere, so this runs it
    without the driver: a page that makes the fetches itself, one after the other, with
    ``--enable-write-console-messages-to-stdout``; a console.log before each fetch marks
    whose messages follow. Origins in the messages become ``{origin}`` and ``{api}``.
    """
    from .scenarios import route_table
    from .server import TwoOrigins

    binary, xvfb = minibrowser(), shutil.which("xvfb-run")
    if binary is None or xvfb is None:
        raise DriverUnavailable("MiniBrowser or xvfb-run is not installed")
    seq = [s for s in scenarios if s.block == "sequential"]
    d = Path(tempfile.mkdtemp(prefix="webkit-words-", dir=workdir))
    out_path = d / "console.log"
    with TwoOrigins(route_table(seq)) as srv:
        specs = [{"name": s.name, "url": s.url(srv.api_origin, 0, srv.page_origin),
                  "method": s.steps[0].method, "headers": [list(h) for h in s.steps[0].headers],
                  "body": s.steps[0].body, "credentials": s.steps[0].credentials}
                 for s in seq]
        script = ("const S = " + json.dumps(specs) + ";\n(async () => { for (const s of S) {"
                  " console.log('corsflow-step ' + s.name);"
                  " const init = {method: s.method, headers: s.headers,"
                  " credentials: s.credentials};"
                  " if (s.body !== null) init.body = s.body;"
                  " try { const r = await fetch(s.url, init); await r.arrayBuffer(); }"
                  " catch (e) {} } console.log('corsflow-done'); })();")
        srv.set_page_html(b"<!doctype html><meta charset=utf-8><link rel=icon href='data:,'>"
                          b"<script>" + script.encode() + b"</script>")
        with open(out_path, "wb") as out:
            proc = subprocess.Popen(
                [xvfb, "-a", binary, "--enable-write-console-messages-to-stdout=true",
                 srv.page_origin + "/"], stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True)
            try:
                deadline = time.monotonic() + timeout
                while b"corsflow-done" not in out_path.read_bytes():
                    if proc.poll() is not None or time.monotonic() > deadline:
                        raise DriverUnavailable("MiniBrowser did not run the page: "
                                                + out_path.read_text(errors="replace")[-300:])
                    time.sleep(0.2)
            finally:
                if proc.poll() is None:
                    os.killpg(proc.pid, signal.SIGTERM)
                    proc.wait(timeout=10)
        text = out_path.read_text(errors="replace")
        page, api = srv.page_origin, srv.api_origin
    shutil.rmtree(d, ignore_errors=True)
    words: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in text.splitlines():
        if "CONSOLE LOG corsflow-step " in line:
            current = words.setdefault(line.rsplit(" ", 1)[1], [])
        elif "CONSOLE SECURITY ERROR " in line and current is not None:
            msg = line.split("CONSOLE SECURITY ERROR ", 1)[1]
            current.append(msg.replace(page, "{origin}").replace(api, "{api}"))
    return words
