"""Shared fixtures: where the shared corpus is, and the external tools some tests drive.

A test that needs Chromium, tcpdump, tshark or mitmdump skips with the reason when the tool
is missing on a developer's machine, but FAILS under CI (``CI`` set): there, a missing tool is
a broken install step, and a skipped test is not a passed one.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED = REPO_ROOT.parent / "shared"
CORPUS = SHARED / "corpus"
SAMPLES = REPO_ROOT / "samples"


def missing(message: str) -> None:
    """Skip because something the test needs is missing; under CI, fail instead: there a
    missing tool is a broken install step, and a skipped test is not a passed one."""
    if os.environ.get("CI"):
        pytest.fail(f"{message} (CI must install it)")
    pytest.skip(message)


def need(what: str, reason: str) -> None:
    """Skip (or, under CI, fail) because ``what`` is missing."""
    missing(f"{what} is not available: {reason}")


def tool(name: str, hint: str) -> str:
    path = shutil.which(name)
    if path is None:
        need(name, hint)
    assert path is not None
    return path


@pytest.fixture(scope="session")
def corpus() -> Path:
    if not CORPUS.is_dir():
        pytest.skip(f"the shared corpus is not beside the repository ({CORPUS.name}/ under "
                    "../shared): these captures belong to their authors and are not committed")
    return CORPUS


@pytest.fixture(scope="session")
def chromium() -> str:
    return tool("chromium", "install Debian's chromium package (apt-get install chromium)")


@pytest.fixture(scope="session")
def tcpdump() -> str:
    return tool("tcpdump", "apt-get install tcpdump")


@pytest.fixture(scope="session")
def tshark() -> str:
    return tool("tshark", "apt-get install tshark")


@pytest.fixture(scope="session")
def mitmdump() -> str:
    path = Path(sys.executable).parent / "mitmdump"
    if not path.exists():
        found = shutil.which("mitmdump")
        if found is None:
            need("mitmdump", "install the test extras: pip install -e '.[test]'")
        return str(found)
    return str(path)
