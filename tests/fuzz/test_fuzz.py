"""Mutation fuzzing of every reader through the command line.

Each example damages a small seed (HAR, mitmproxy flows, pcap, pcapng: see :mod:`.mutate`)
and runs ``corsflow analyze`` on it in a report format. Whatever the damage, the run must end
in a report (exit 0) or in one line on stderr and exit 2, within a time bound only a hang
exceeds (:mod:`.runner`).

``make test`` runs a short, derandomised budget (the same inputs every time, so CI is
stable); ``make fuzz`` runs a long random one (``CORSFLOW_FUZZ_EXAMPLES``,
``CORSFLOW_FUZZ_RANDOM=1``) and writes every failing input under ``out/fuzz/``: each one found
is kept as a regression case in ``tests/fuzz/cases/`` (see ``test_cases.py``).
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from tests.conftest import REPO_ROOT
from tests.fuzz import mutate
from tests.fuzz.runner import run_cli, verdict

EXAMPLES = int(os.environ.get("CORSFLOW_FUZZ_EXAMPLES", "40"))
RANDOM = bool(os.environ.get("CORSFLOW_FUZZ_RANDOM"))
FOUND = REPO_ROOT / "out" / "fuzz"
# Each command reads the capture its own way after the analysis (the policy derives each
# server's answers, the what-if replay re-runs them, check gates on findings). The HTML page
# draws charts (seconds each): only the long run renders it, one time in fifteen.
REPORTS = [("analyze", f) for f in ("json", "text", "csv", "markdown")] * 2 + [
    ("policy", "json"), ("policy", "nginx"), ("whatif", "json"), ("whatif", "text"),
    ("check", "sarif"), ("check", "junit"),
] + ([("analyze", "html")] if RANDOM else [])

SEEDS = {"har": mutate.har_seed(), "mitm": mutate.mitm_seed(), "netlog": mutate.netlog_seed()}

fuzz_settings = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=not RANDOM,
    database=None,
    # The short budget reports the failing input as found; only the long one shrinks it.
    phases=list(Phase) if RANDOM else [Phase.explicit, Phase.generate],
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                           HealthCheck.function_scoped_fixture],
)


@pytest.fixture
def failures() -> Iterator[dict[str, tuple[str, bytes, str]]]:
    """The last failing input per problem: Hypothesis replays the smallest one last, so
    that is the one written under out/fuzz/ (named by format and content)."""
    found: dict[str, tuple[str, bytes, str]] = {}
    yield found
    for fmt, data, problem in found.values():
        FOUND.mkdir(parents=True, exist_ok=True)
        path = FOUND / f"{fmt}-{hashlib.sha256(data).hexdigest()[:12]}{mutate.SUFFIX[fmt]}"
        path.write_bytes(data)
        path.with_suffix(".txt").write_text(problem + "\n")


@pytest.mark.parametrize("fmt", mutate.FORMATS)
@fuzz_settings
@given(data=st.data())
def test_damaged_input_ends_in_a_report_or_one_line(
    fmt: str, data: st.DataObject, tmp_path_factory: pytest.TempPathFactory,
    failures: dict[str, tuple[str, bytes, str]],
) -> None:
    raw = mutate.mutated(fmt, data.draw, SEEDS)
    command, report = data.draw(st.sampled_from(REPORTS))
    read_ahead = data.draw(st.booleans())  # the way large files are read, in a child process
    folder = tmp_path_factory.mktemp(fmt)
    path = folder / f"input{mutate.SUFFIX[fmt]}"
    path.write_bytes(raw)
    try:
        problem = verdict(run_cli(path, report, folder / "report", command, read_ahead))
    except BaseException as e:  # noqa: BLE001 (a Hang, or anything the CLI let through)
        problem = f"{type(e).__name__}: {e}"
    if problem is not None:
        # The kind of problem without its details, so shrinking keeps one input per kind.
        kind = re.sub(r"[0-9]+|'.*'", "", problem.split(" at corsflow/")[0])
        how = " (read ahead)" if read_ahead else ""
        failures[kind] = (fmt, raw, f"{command} --format {report}{how}: {problem}")
        pytest.fail(f"{fmt} ({len(raw)} bytes, {command} --format {report}): {problem}; the "
                    f"input is written under {FOUND.relative_to(REPO_ROOT)}/ at the end of the "
                    "test")


def test_seeds_are_read_whole(tmp_path: Path) -> None:
    """The seeds themselves give exchanges: mutations start from real, readable sessions."""
    import json

    for fmt in mutate.FORMATS:
        raw = SEEDS.get(fmt) or (mutate.pcap_seed() if fmt == "pcap" else mutate.pcapng_seed())
        path = tmp_path / f"seed{mutate.SUFFIX[fmt]}"
        path.write_bytes(raw)
        run = run_cli(path, "json", tmp_path / f"{fmt}.json")
        assert run.code == 0, run.stderr
        report = json.loads(run.output)
        roles = {e["role"] for e in report["exchanges"]}
        assert "preflight" in roles, (fmt, roles)
        assert report["sources"][0]["skipped"] == 0, fmt
