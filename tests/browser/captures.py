"""The capture tools around a browser session: tcpdump on loopback and mitmdump as a proxy.

Both are real processes, started before the browser and stopped with SIGINT afterwards, so
that they write their files the way a user's capture would be written.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import Self

log = logging.getLogger(__name__)


class CaptureUnavailable(RuntimeError):
    """The capture tool is missing or may not capture here (e.g. no permission for lo)."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_for_port(port: int, proc: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise CaptureUnavailable(f"process exited with {proc.returncode} before listening")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise CaptureUnavailable(f"nothing listens on port {port} after {timeout} s")


def _stop(proc: subprocess.Popen[bytes], timeout: float = 20) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class Tcpdump:
    """``tcpdump -i lo`` writing every packet of the given TCP ports to ``path`` as pcap."""

    def __init__(self, path: Path, ports: tuple[int, ...]) -> None:
        self.path = path
        self.ports = ports
        self._proc: subprocess.Popen[bytes] | None = None
        self._stderr: list[str] = []
        self._reader: threading.Thread | None = None
        self.dropped = 0
        """Packets the kernel dropped because tcpdump did not keep up (known once stopped)."""

    def __enter__(self) -> Self:
        exe = shutil.which("tcpdump") or ("/usr/sbin/tcpdump" if os.path.exists(
            "/usr/sbin/tcpdump") else None)
        if exe is None:
            raise CaptureUnavailable("tcpdump is not installed")
        expr = " or ".join(f"tcp port {p}" for p in self.ports)
        # --immediate-mode: take packets from the kernel as they come (not in blocks that a
        # SIGINT would drop); -U: write each one to the file at once; -B: a 16 MB kernel
        # buffer, so a busy machine does not make it drop packets.
        cmd = [exe, "-i", "lo", "-n", "--immediate-mode", "-U", "-s", "0", "-B", "16384",
               "-w", str(self.path), expr]
        self._proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        listening = threading.Event()

        def read_stderr() -> None:
            assert self._proc is not None and self._proc.stderr is not None
            for raw in self._proc.stderr:
                line = raw.decode(errors="replace").rstrip()
                self._stderr.append(line)
                if "listening on" in line:
                    listening.set()

        self._reader = threading.Thread(target=read_stderr, daemon=True)
        self._reader.start()
        deadline = time.monotonic() + 10
        while not listening.wait(0.05):
            if self._proc.poll() is not None or time.monotonic() > deadline:
                _stop(self._proc)
                raise CaptureUnavailable("tcpdump did not start: " + " | ".join(self._stderr))
        return self

    def __exit__(self, t: type[BaseException] | None, e: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._proc is not None:
            time.sleep(1.0)  # let the last packets (FINs, ACKs) reach the file
            _stop(self._proc)
            if self._reader is not None:
                self._reader.join(5)  # its last lines: the counts
            for line in self._stderr:
                words = line.split()
                if line.endswith("dropped by kernel") and words and words[0].isdigit():
                    self.dropped = int(words[0])
            log.debug("tcpdump: %s", " | ".join(self._stderr))


def mitmdump_path() -> Path:
    """The mitmdump of the running Python's environment."""
    return Path(sys.executable).parent / "mitmdump"


class Mitmdump:
    """mitmdump as an HTTP proxy, saving flows (``-w``) and, on exit, a HAR (``hardump``)."""

    def __init__(self, flows: Path, har: Path | None, confdir: Path) -> None:
        self.flows = flows
        self.har = har
        self.confdir = confdir
        self.port = 0
        self._proc: subprocess.Popen[bytes] | None = None
        self._log = flows.with_suffix(".mitmdump.log")

    def __enter__(self) -> Self:
        exe = mitmdump_path()
        if not exe.exists():
            raise CaptureUnavailable(f"mitmdump not found beside {sys.executable}")
        self.port = free_port()
        self.confdir.mkdir(parents=True, exist_ok=True)
        cmd = [str(exe), "--listen-host", "127.0.0.1", "--listen-port", str(self.port),
               "--set", f"confdir={self.confdir}", "-w", str(self.flows), "-q",
               # Only the test's own origins: Chromium may still call home (update checks).
               "--set", "save_stream_filter=~d 127.0.0.1 | ~d localhost"]
        if self.har is not None:
            cmd += ["--set", f"hardump={self.har}"]
        with open(self._log, "wb") as out:
            self._proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
        try:
            _wait_for_port(self.port, self._proc, timeout=30)
        except CaptureUnavailable as e:
            _stop(self._proc)
            raise CaptureUnavailable(f"mitmdump: {e}: {self._log.read_text()[-500:]}") from None
        return self

    def __exit__(self, t: type[BaseException] | None, e: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._proc is not None:
            _stop(self._proc)
            if self._proc.returncode not in (0, -signal.SIGINT):
                log.warning("mitmdump exited with %s: %s", self._proc.returncode,
                            self._log.read_text()[-500:])
