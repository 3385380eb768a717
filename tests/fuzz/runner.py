"""Run the ``corsflow`` command in this process on one input, with a time bound.

In-process (``corsflow.cli.main``) rather than a subprocess per input: a fresh interpreter
costs about a second here, which would leave a short budget a few dozen inputs.
"""

from __future__ import annotations

import io
import os
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from corsflow import cli

SECONDS_BASE = 20.0
SECONDS_PER_MB = 20.0
"""Per input: generous, so that only a hang exceeds it (a healthy run of these inputs takes
well under a second); this is not a speed assertion."""


class Hang(BaseException):
    """The run went past its time bound (BaseException: the CLI's last-resort handler must not
    turn it into an exit code)."""


def time_limit(size: int) -> float:
    return SECONDS_BASE + SECONDS_PER_MB * size / 1e6


@contextmanager
def _deadline(seconds: float) -> Iterator[None]:
    def expire(signum: int, frame: object) -> None:
        raise Hang(f"no result after {seconds:.0f} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@dataclass(frozen=True)
class Run:
    code: int
    stderr: str
    output: bytes
    command: str = "analyze"


def run_cli(path: Path, fmt: str, out: Path, command: str = "analyze",
            read_ahead: bool = False) -> Run:
    """``corsflow COMMAND PATH --format FMT -o OUT``; stdout and stderr are captured.
    ``read_ahead``: the file is read in a child process (as large files are)."""
    previous = os.environ.get("CORSFLOW_READ_AHEAD")
    os.environ["CORSFLOW_READ_AHEAD"] = "1" if read_ahead else "0"
    try:
        return _run_cli(path, fmt, out, command)
    finally:
        if previous is None:
            del os.environ["CORSFLOW_READ_AHEAD"]
        else:
            os.environ["CORSFLOW_READ_AHEAD"] = previous


def _run_cli(path: Path, fmt: str, out: Path, command: str) -> Run:
    stdout = io.TextIOWrapper(io.BytesIO(), encoding="utf-8")
    stderr = io.TextIOWrapper(io.BytesIO(), encoding="utf-8")
    saved = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = stdout, stderr
    try:
        with _deadline(time_limit(path.stat().st_size)):
            code = cli.main([command, str(path), "--format", fmt, "-o", str(out)])
    finally:
        sys.stdout, sys.stderr = saved
    stderr.flush()
    assert isinstance(stderr.buffer, io.BytesIO)
    text = stderr.buffer.getvalue().decode("utf-8")
    output = out.read_bytes() if out.exists() else b""
    return Run(code, text, output, command)


def verdict(run: Run) -> str | None:
    """What is wrong with a run of a damaged input, or None: it must end in a report (exit 0)
    or in one line on stderr and exit 2 -- never an internal error or a traceback."""
    if "Traceback" in run.stderr:
        return "a traceback on stderr"
    if run.code == 0 or (run.code == 1 and run.command == "check"):  # check: findings
        return None if run.output else f"exit {run.code} without a report"
    if run.code == 2:
        errors = [line for line in run.stderr.splitlines() if line.startswith("corsflow: error:")]
        return None if len(errors) == 1 else f"exit 2 with {len(errors)} error lines"
    return f"exit {run.code}: {run.stderr.strip().splitlines()[-1:]}"
