"""Exit codes and output encoding of the command line, run as a user runs it.

CI must tell a crash from a finding: 1 is ``check``'s "findings found", 2 unreadable input or
bad usage, 3 a bug in corsflow; 2 and 3 are one line on stderr, never a traceback.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT, need
from tests.fuzz import mutate

# A real process in which the analysis itself fails as a bug would (the exception is raised
# from inside corsflow's package, where the CLI's last-resort handler must catch it).
BUG = """
import sys
import corsflow.analysis, corsflow.cli
def analyze_paths(*args, **kwargs):
    return {}[sys.argv[1]]  # KeyError from the library, as a real bug raises
corsflow.cli.analyze_paths = analyze_paths
sys.exit(corsflow.cli.main(["check", sys.argv[1], "--fail-on", "error"]))
"""


def run(args: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, *args], check=False, capture_output=True,
                          cwd=REPO_ROOT, timeout=120, env={**os.environ, **(env or {})})


def test_an_internal_error_exits_3_with_one_line(tmp_path: Path) -> None:
    har = tmp_path / "s.har"
    har.write_bytes(mutate.har_seed())
    done = run(["-c", BUG, str(har)])
    stderr = done.stderr.decode()
    assert done.returncode == 3, stderr
    assert "Traceback" not in stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("corsflow: internal error"), lines
    assert "KeyError" in lines[0] and "CORSFLOW_DEBUG=1" in lines[0]
    debug = run(["-c", BUG, str(har)], {"CORSFLOW_DEBUG": "1"})
    assert debug.returncode != 0 and "Traceback" in debug.stderr.decode()


def test_unreadable_input_exits_2_with_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "x.pcap"
    bad.write_bytes(b"\xd4\xc3\xb2\xa1" + b"\x00" * 3)  # a pcap magic and no header
    for path in (str(bad), str(tmp_path / "missing.har")):
        done = run(["-m", "corsflow", "check", path])
        lines = done.stderr.decode().strip().splitlines()
        assert done.returncode == 2 and len(lines) == 1, (path, lines)
        assert lines[0].startswith("corsflow: error: ") and path in lines[0]


def test_help_documents_the_exit_codes() -> None:
    out = run(["-m", "corsflow", "--help"]).stdout.decode()
    for code in ("0  the analysis ran", "1  check", "2  unreadable input", "3  internal error"):
        assert code in out


def test_output_is_utf8_whatever_the_locale(tmp_path: Path) -> None:
    har = json.loads(mutate.har_seed())
    for entry in har["log"]["entries"]:
        entry["request"]["url"] = entry["request"]["url"].replace("/s/", "/s/caf\u00e9\u2192/")
    path = tmp_path / "u.har"
    path.write_text(json.dumps(har), encoding="utf-8")
    env = {"LC_ALL": "C", "LANG": "C", "PYTHONUTF8": "0", "PYTHONCOERCECLOCALE": "0",
           "PYTHONIOENCODING": "ascii"}
    for fmt in ("text", "json"):
        done = run(["-m", "corsflow", "analyze", str(path), "--format", fmt], env)
        assert done.returncode == 0, done.stderr.decode()
        text = done.stdout.decode("utf-8")  # raises if the output is not UTF-8
        assert "caf\u00e9" in text or "caf\\u00e9" in text, fmt


def _mitmproxy() -> None:
    try:
        import mitmproxy  # noqa: F401
    except ImportError:
        need("mitmproxy", "install the test extras: pip install -e '.[test]'")


def test_live_on_a_busy_port_exits_2_with_one_line() -> None:
    _mitmproxy()
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = run(["-m", "corsflow", "live", "--listen-port", str(port)])
    lines = done.stderr.decode().strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1, lines
    assert f"cannot listen on 127.0.0.1:{port}" in lines[0]


def test_live_with_a_report_into_a_missing_directory_exits_2(tmp_path: Path) -> None:
    _mitmproxy()
    report = tmp_path / "no" / "such" / "cors.json"
    done = run(["-m", "corsflow", "live", "--listen-port", "0", "--report", str(report)])
    lines = done.stderr.decode().strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1, lines
    assert "does not exist" in lines[0] and str(report) in lines[0]


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_a_closed_stdout_is_not_an_error(fmt: str) -> None:
    """``corsflow analyze ... | head -1``: the reader leaving early is not a crash."""
    har = REPO_ROOT / "samples" / "chromium-session.har"
    proc = subprocess.Popen([sys.executable, "-m", "corsflow", "analyze", str(har), "--format",
                             fmt], stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=REPO_ROOT)
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.read(10)
    proc.stdout.close()
    stderr = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 0 and "Traceback" not in stderr, stderr
