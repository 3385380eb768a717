"""A computation run aside in a forked child (corsflow.aside), and the changes replayed so
while the JSON report's exchanges are written (corsflow.changes.start_changes)."""

from __future__ import annotations

import os

import pytest

from corsflow import aside, changes
from corsflow.aside import Aside
from corsflow.changes import changes_of, compute_changes, start_changes
from corsflow.report.json import render_json
from tests.changes.session import report as session


def test_the_result_comes_from_the_child() -> None:
    parent = os.getpid()
    a = Aside(lambda: (os.getpid(), [1, "two", None]))
    assert a.forked
    pid, value = a.result()
    assert pid != parent and value == [1, "two", None]
    assert not a.forked


def test_a_child_that_fails_leaves_the_computation_here() -> None:
    calls: list[int] = []

    def compute() -> int:
        calls.append(os.getpid())
        if os.getpid() != here:
            raise RuntimeError("only in the child")
        return 7

    here = os.getpid()
    assert Aside(compute).result() == 7
    assert calls == [here]  # the child's own call did not reach this list


def test_an_error_is_raised_here_as_it_would_have_been() -> None:
    def broken() -> int:
        raise ValueError("no such thing")

    with pytest.raises(ValueError, match="no such thing"):
        Aside(broken).result()


def test_a_result_that_cannot_be_pickled_is_computed_here() -> None:
    here = os.getpid()
    value = Aside(lambda: (lambda: os.getpid())).result()
    assert value() == here


def test_cancel_ends_the_child() -> None:
    a = Aside(lambda: sum(range(10**9)))
    pid = a._pid
    a.cancel()
    assert not a.forked
    with pytest.raises(ChildProcessError):
        os.waitpid(pid, 0)  # reaped


@pytest.mark.parametrize("setting", ["0", "1"])
def test_changes_replayed_aside_are_the_changes(setting: str,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CORSFLOW_READ_AHEAD", setting)
    monkeypatch.setattr(changes, "ASIDE_FROM", 1)
    report = session()
    expected = compute_changes(report.exchanges, report.engine)
    assert expected
    start_changes(report)
    assert len(changes._ASIDE) == (setting == "1")
    if setting == "1":  # taken from the child: not computed here again
        def here(*args: object) -> None:
            raise AssertionError("computed in this process")

        monkeypatch.setattr(changes, "compute_changes", here)
    assert changes_of(report) == expected
    assert not changes._ASIDE
    assert changes_of(report) == expected  # remembered


def test_the_json_report_is_the_same_with_the_changes_replayed_aside(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from corsflow.cli import _render

    monkeypatch.setattr(changes, "ASIDE_FROM", 1)
    out = {}
    for setting in ("0", "1"):
        monkeypatch.setenv("CORSFLOW_READ_AHEAD", setting)
        assert aside.worth_forking() == (setting == "1")
        out[setting] = _render(session(), "json", None)
    assert out["0"] == out["1"] == render_json(session()).encode()


def test_changes_known_already_are_not_replayed_again(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CORSFLOW_READ_AHEAD", "1")
    monkeypatch.setattr(changes, "ASIDE_FROM", 1)
    report = session()
    changes_of(report)
    start_changes(report)
    assert not changes._ASIDE


def test_the_command_line_replays_the_capture_as_it_was_while_it_redacts(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """For a JSON report the child is forked before the redaction, on the report as the
    capture gave it; the report is the same as computed in one process."""
    import argparse

    from corsflow.cli import _for_output, _render

    monkeypatch.setattr(changes, "ASIDE_FROM", 1)
    out = {}
    for setting in ("0", "1"):
        monkeypatch.setenv("CORSFLOW_READ_AHEAD", setting)
        original = session()
        shown = _for_output(argparse.Namespace(format="json", no_redact=False), original)
        assert shown is not original
        assert [seen is original for seen, _ in changes._ASIDE] == (
            [True] if setting == "1" else [])
        out[setting] = _render(shown, "json", None)
        assert not changes._ASIDE
    assert out["0"] == out["1"]


def test_the_security_view_takes_the_changes_replayed_for_the_whole_report(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """``analyze --security`` shows the review's findings alone, and the same changes: those
    of the capture as it was, from the one child already replaying them."""
    import argparse

    from corsflow.cli import _for_output, _render, _security_view

    monkeypatch.setenv("CORSFLOW_READ_AHEAD", "1")
    monkeypatch.setattr(changes, "ASIDE_FROM", 1)
    original = session()
    expected = changes_of(session())
    shown = _for_output(argparse.Namespace(format="json", no_redact=False), original)
    view = _security_view(shown)
    start_changes(view)
    assert [seen is original for seen, _ in changes._ASIDE] == [True]  # no second child
    _render(view, "json", None)
    assert changes_of(view) == changes_of(shown) == expected
    assert not changes._ASIDE
