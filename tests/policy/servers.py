"""Start a real server on 127.0.0.1 with a generated configuration, replay requests with a
plain HTTP client, and stop it (only the process the test started, by its id)."""

from __future__ import annotations

import contextlib
import http.client
import os
import socket
import subprocess
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from corsflow.model import Headers
from corsflow.policy.model import ServerPolicyRules
from corsflow.policy.verify import Mismatch, Probe, compare


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def running(cmd: Sequence[str], port: int, log: Path, *, cwd: Path | None = None,
            env: dict[str, str] | None = None, timeout: float = 60) -> Iterator[None]:
    """Run ``cmd`` until it accepts connections on ``port``; stop it afterwards."""
    with open(log, "wb") as out:
        proc = subprocess.Popen(list(cmd), stdout=out, stderr=subprocess.STDOUT, cwd=cwd,
                                env={**os.environ, **(env or {})}, stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise AssertionError(f"{cmd[0]} exited with {proc.returncode}:\n"
                                     f"{log.read_text(errors='replace')[-3000:]}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
                break
            if time.monotonic() > deadline:
                raise AssertionError(f"{cmd[0]} did not listen on {port} within {timeout} s:\n"
                                     f"{log.read_text(errors='replace')[-3000:]}")
            time.sleep(0.05)
        yield
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)


def send(port: int, probe: Probe) -> tuple[int, Headers]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
    try:
        conn.putrequest(probe.method, probe.target, skip_accept_encoding=True)
        for name, value in probe.headers:
            conn.putheader(name, value)
        conn.endheaders()
        response = conn.getresponse()
        response.read()
        return response.status, Headers(tuple(response.getheaders()))
    finally:
        conn.close()


def mismatches(port: int, rules: ServerPolicyRules,
               probes: Sequence[Probe]) -> list[tuple[Probe, int, Headers, Mismatch]]:
    """Every way the server's answers depart from the policy, with the probe and answer."""
    out = []
    for probe in probes:
        status, headers = send(port, probe)
        out.extend((probe, status, headers, m) for m in compare(rules, probe, status, headers))
    return out


def explain(found: list[tuple[Probe, int, Headers, Mismatch]]) -> str:
    return "\n".join(f"{m.kind}: {m.detail}\n    {p.method} {p.target} {dict(p.headers)} ({p.why})"
                     f"\n    -> {status} {dict(h)}" for p, status, h, m in found[:12])
