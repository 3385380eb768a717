"""`corsflow live` and `corsflow addon-path`, as a user runs them."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from corsflow.analysis import analyze_paths
from tests.mitm.conftest import REPO_ROOT, free_port, wait_for_port
from tests.mitm.cors_servers import start_origins
from tests.mitm.test_mitm_addon_live import browse

pytestmark = pytest.mark.mitmproxy


def test_addon_path_is_a_loadable_script() -> None:
    run = subprocess.run([sys.executable, "-m", "corsflow", "addon-path"], check=False,
                         capture_output=True,
                         text=True, cwd=REPO_ROOT, timeout=60)
    assert run.returncode == 0, run.stderr
    path = Path(run.stdout.strip())
    assert path.is_file() and "addons = " in path.read_text()


def test_live_proxies_and_writes_the_report_on_exit(tmp_path: Path, mitm_confdir: Path) -> None:
    origins = start_origins()
    port = free_port()
    report = tmp_path / "cors.json"
    saved = tmp_path / "marked.flows"
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    proc = subprocess.Popen(
        [sys.executable, "-m", "corsflow", "live", "--listen-port", str(port),
         "--report", str(report), "--save", str(saved),
         "--", "--set", f"confdir={mitm_confdir}"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
        cwd=REPO_ROOT)
    try:
        wait_for_port(port, proc)
        statuses = browse(port, origins)
        assert statuses and all(s < 500 for s in statuses)
    finally:
        proc.send_signal(signal.SIGINT)
        output, _ = proc.communicate(timeout=30)
        origins.close()
    assert proc.returncode == 0, output.decode(errors="replace")
    data = json.loads(report.read_text())
    assert data["schema"] == 1 and data["sources"][0]["format"] == "mitmproxy"
    roles = {e["role"] for e in data["exchanges"]}
    assert {"preflight", "preflighted"} <= roles
    paired = [e for e in data["exchanges"] if e["role"] == "preflighted" and e["preflight_id"]]
    assert paired, "a preflight and its request went through the proxy and were paired"
    # --save wrote the flows, marked: analysed again, they give the live verdicts.
    again = {v.exchange.id: v for v in analyze_paths([str(saved)]).exchanges}
    assert again.keys() == {e["id"] for e in data["exchanges"]}
    for e in data["exchanges"]:
        assert (again[e["id"]].role, again[e["id"]].verdict) == (e["role"], e["verdict"])
