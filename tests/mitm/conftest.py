"""Shared pieces of the mitmproxy tests: where the corpus is, and a real mitmdump."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

pytest.importorskip("mitmproxy", reason="the mitmproxy extra is not installed")

REPO_ROOT = Path(__file__).resolve().parents[2]
CORPUS_MITM = REPO_ROOT.parent / "shared" / "corpus" / "mitm"


def corpus_file(name: str) -> Path:
    path = CORPUS_MITM / name
    if not path.is_file():
        pytest.skip(f"the shared corpus is not beside the repository ({path} missing)")
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"mitmdump exited early with status {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"mitmdump did not listen on port {port} within {timeout} s")


@dataclass
class Mitmdump:
    """One mitmdump process on 127.0.0.1; ``stop`` ends it as Ctrl-C does."""

    proc: subprocess.Popen[bytes]
    port: int
    log_path: Path

    def stop(self, timeout: float = 30.0) -> str:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError("mitmdump did not exit after SIGINT") from None
        return self.log()

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def wait_for_log(self, text: str, timeout: float = 15.0) -> None:
        """Wait until mitmdump, still running, has logged ``text``."""
        deadline = time.monotonic() + timeout
        while text not in self.log():
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise AssertionError(f"mitmdump did not log {text!r}:\n{self.log()}")
            time.sleep(0.1)


@pytest.fixture(scope="session")
def mitm_confdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One mitmproxy configuration directory (its CA) for the whole session."""
    return tmp_path_factory.mktemp("mitmconf")


@pytest.fixture
def start_mitmdump(tmp_path: Path, mitm_confdir: Path, mitmdump: str) -> Iterator[object]:
    """Start mitmdump with extra arguments; it is killed at the end if still running.

    ``mitmdump`` (the tool's path) comes from the suite's conftest, which skips without it,
    or fails under CI."""
    started: list[Mitmdump] = []

    def start(args: Sequence[str], name: str = "mitmdump") -> Mitmdump:
        port = free_port()
        log_path = tmp_path / f"{name}.log"
        out = open(log_path, "wb")  # noqa: SIM115 - the process owns it until it exits
        env = dict(os.environ, PYTHONPATH=str(REPO_ROOT), PYTHONUNBUFFERED="1")
        command = [mitmdump, "--listen-host", "127.0.0.1", "--listen-port", str(port)]
        command += ["--set", f"confdir={mitm_confdir}", *args]
        proc = subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env
        )
        out.close()
        m = Mitmdump(proc, port, log_path)
        started.append(m)
        try:
            wait_for_port(port, proc)
        except RuntimeError as e:
            raise AssertionError(f"{e}\n{m.log()}") from None
        return m

    yield start
    for m in started:
        if m.proc.poll() is None:
            m.proc.kill()
            m.proc.wait()
