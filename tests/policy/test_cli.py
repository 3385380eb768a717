"""``corsflow policy``: every format, --server, and errors as one line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from corsflow.cli import main
from corsflow.policy.model import policy_from_json
from corsflow.policy.render import CONFIG_FORMATS

from .sessions import shop_session


@pytest.fixture(scope="module")
def capture(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(shop_session(tmp_path_factory.mktemp("cli") / "shop.har"))


def test_text_shows_observed_proposed_differences_and_notes(
        capture: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["policy", capture]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Server http://api.test:8080\n")
    assert "observed" in out and "proposed" in out and "Differences" in out
    assert "path /public/status" in out
    assert "max_age: 86400 -> 7200" in out
    assert "allow_private_network  unknown" in out


def test_json_is_the_policy_document(capture: str, capsys: pytest.CaptureFixture[str],
                                     tmp_path: Path) -> None:
    out = tmp_path / "policy.json"
    assert main(["policy", capture, "--format", "json", "-o", str(out)]) == 0
    data = json.loads(out.read_text())
    assert data["schema"] == 1
    doc = policy_from_json(data)
    assert doc.server("http://api.test:8080/items/1") is not None
    assert data["servers"][0]["proposed"]["paths"][0]["path"] == "/public/status"


@pytest.mark.parametrize("fmt", CONFIG_FORMATS)
def test_every_configuration_says_whether_it_was_tested(
        fmt: str, capture: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["policy", capture, "--format", fmt]) == 0
    out = capsys.readouterr().out
    assert "app" in out and "admin" in out and "evil" not in out   # the allow-list
    # (that Origin: null is refused is checked against the real servers, test_configs.py)
    if fmt == "spring":
        assert "UNTESTED" in out and "no Maven repository" in out
    else:
        assert "Tested:" in out and "UNTESTED" not in out
    if fmt == "django":
        assert "/public/status are NOT implemented" in out


def test_server_filter_and_errors(capture: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["policy", capture, "--server", "http://api.test:8080/anything"]) == 0
    capsys.readouterr()
    assert main(["policy", capture, "--server", "https://other.example"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no cross-origin request to it" in err
    assert main(["policy", capture, "--server", "file:///x"]) == 2
    assert "not an http(s) origin" in capsys.readouterr().err
