"""Session fixtures: one Chromium launch per capture mode, shared by every browser test.

``direct_session``: Chromium talks to the servers itself, tcpdump records loopback and
Playwright records its HAR. ``proxy_session``: Chromium goes through mitmdump, which saves
its flows and a HAR. Both run the whole scenario table.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

from tests.conftest import missing

from .captures import CaptureUnavailable, mitmdump_path
from .harness import CHROMIUM, Captures, Session, run_session, save_truth


def _need_browser() -> None:
    if not os.access(CHROMIUM, os.X_OK):
        missing(f"{CHROMIUM} is not installed (Debian package 'chromium')")
    if importlib.util.find_spec("playwright") is None:
        missing("the playwright Python package is not installed")


@pytest.fixture(scope="session")
def direct_session(tmp_path_factory: pytest.TempPathFactory) -> Session:
    _need_browser()
    d = tmp_path_factory.mktemp("direct")
    caps = Captures(pcap=d / "session.pcap", playwright_har=d / "playwright.har", workdir=d,
                    netlog=d / "session.netlog.json")
    try:
        session = run_session("direct", caps)
    except CaptureUnavailable as e:
        # No capture permission on loopback: the browser truth is still worth having.
        caps = Captures(playwright_har=d / "playwright.har", workdir=d,
                        netlog=d / "session.netlog.json")
        session = run_session("direct", caps)
        session.files["pcap_unavailable"] = str(e)
    save_truth(session, d / "truth.json")
    return session


@pytest.fixture(scope="session")
def proxy_session(tmp_path_factory: pytest.TempPathFactory) -> Session:
    _need_browser()
    if not mitmdump_path().exists():
        missing("mitmdump is not installed beside this Python (pip install mitmproxy)")
    d = tmp_path_factory.mktemp("proxy")
    caps = Captures(flows=d / "session.flows", mitm_har=d / "mitm.har", workdir=d)
    session = run_session("proxy", caps)
    save_truth(session, d / "truth.json")
    return session


def capture_file(session: Session, name: str) -> Path:
    """The capture file ``name`` of a session, or skip saying why it is missing."""
    if name == "pcap" and "pcap_unavailable" in session.files:
        missing(f"tcpdump could not capture on loopback: {session.files['pcap_unavailable']}")
    path = Path(session.files.get(name, ""))
    if not path.is_file() or path.stat().st_size == 0:
        raise AssertionError(f"the {name} capture was not written ({path})")
    return path
