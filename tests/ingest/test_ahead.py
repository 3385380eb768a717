"""Reading ahead in a child process: the same report, diagnostics and errors as reading here,
and no child left behind."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from corsflow import analysis, timeorder
from corsflow.analysis import Report, analyze_paths
from corsflow.errors import CorsflowError, Diagnostics, IngestError
from corsflow.ingest import ahead
from corsflow.model import Exchange
from corsflow.report.json import render_json
from tests.conftest import CORPUS, REPO_ROOT, SAMPLES
from tests.factories import exchange

SAMPLE_FILES = sorted(p for p in SAMPLES.iterdir() if p.suffix in (".har", ".pcap", ".flows")
                      or p.name.endswith(".netlog.json"))


@pytest.fixture
def children(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Counts the files read in a child (and makes sure it is one)."""
    used: list[str] = []
    real = analysis.read_in_child

    def counted(path: str, *args: object) -> Iterator[Exchange]:
        used.append(path)
        return real(path, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(analysis, "read_in_child", counted)
    return used


def both(paths: list[str], monkeypatch: pytest.MonkeyPatch, keep: int = 200
         ) -> tuple[Report | str, Report | str]:
    """The analysis read here, then read ahead (or the error each raised)."""
    out: list[Report | str] = []
    for setting in ("0", "1"):
        monkeypatch.setenv("CORSFLOW_READ_AHEAD", setting)
        try:
            out.append(analyze_paths(paths, read_ahead=True, diagnostics=Diagnostics(keep=keep)))
        except CorsflowError as e:
            out.append(f"{type(e).__name__}: {e}")
    return out[0], out[1]


def same(here: Report | str, there: Report | str) -> None:
    if isinstance(here, str) or isinstance(there, str):
        assert here == there
        return
    assert render_json(there) == render_json(here)
    assert there.skipped == here.skipped
    assert there.skipped_by_reason == here.skipped_by_reason
    assert there.notes == here.notes
    assert there.sources == here.sources


@pytest.mark.parametrize("path", SAMPLE_FILES, ids=lambda p: p.name)
def test_each_format_gives_the_same_report_read_ahead(
        path: Path, monkeypatch: pytest.MonkeyPatch, children: list[str]) -> None:
    here, there = both([str(path)], monkeypatch)
    assert not isinstance(there, str) and there.exchanges
    same(here, there)
    assert children == [str(path)]


def test_every_corpus_capture_gives_the_same_report_or_error_read_ahead(
        corpus: Path, monkeypatch: pytest.MonkeyPatch, children: list[str]) -> None:
    files = sorted(p for d in ("har", "mitm", "pcap") for p in (CORPUS / d).iterdir())
    assert files
    for path in files:
        here, there = both([str(path)], monkeypatch)
        same(here, there)
    assert len(children) >= len(files) // 2  # those the format check let through


def test_damaged_files_skip_and_count_the_same_records_read_ahead(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, children: list[str]) -> None:
    har = (SAMPLES / "chromium-session.har").read_bytes()
    cut_har = tmp_path / "cut.har"
    cut_har.write_bytes(har[: len(har) * 2 // 3])
    pcap = (SAMPLES / "chromium-session.pcap").read_bytes()
    cut_pcap = tmp_path / "cut.pcap"
    cut_pcap.write_bytes(pcap[: len(pcap) // 2 + 7])
    for path in (cut_har, cut_pcap):
        here, there = both([str(path)], monkeypatch)
        assert not isinstance(here, str) and here.skipped_by_reason
        same(here, there)
    assert len(children) == 2


def test_skips_past_the_kept_ones_are_counted_by_reason_read_ahead(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    doc = json.loads((SAMPLES / "chromium-session.har").read_text())
    bad = [{"startedDateTime": "2024-01-01T00:00:00Z", "request": {"method": "GET"}}] * 30
    doc["log"]["entries"] = bad + doc["log"]["entries"] + bad
    path = tmp_path / "bad.har"
    path.write_text(json.dumps(doc))
    here, there = both([str(path)], monkeypatch, keep=5)
    assert not isinstance(here, str)
    assert len(here.skipped) == 5 and sum(n for _, n in here.skipped_by_reason) == 60
    same(here, there)


def test_a_file_sorted_on_a_second_pass_is_sorted_there_too(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, children: list[str]) -> None:
    doc = json.loads((SAMPLES / "chromium-session.har").read_text())
    doc["log"]["entries"].reverse()
    path = tmp_path / "reversed.har"
    path.write_text(json.dumps(doc))
    # The look-ahead cannot sort it: the first pass's child raises OutOfOrder, the second
    # sorts on disk (both in a child: fork copies these settings).
    monkeypatch.setattr(timeorder.nearly_sorted, "__defaults__",
                        (3, None, timeorder.HORIZON, None))
    here, there = both([str(path)], monkeypatch)
    assert not isinstance(here, str)
    assert any("out of time order" in n for n in here.notes)
    same(here, there)
    assert children == [str(path)] * 2


def test_an_error_inside_the_reader_is_raised_with_its_words(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, children: list[str]) -> None:
    path = tmp_path / "broken.har"
    path.write_text('{"log": {"entries": [')  # cut before its first entry
    here, there = both([str(path)], monkeypatch)
    assert isinstance(here, str) and here.startswith("IngestError: ") and "entry 0" in here
    assert there == here
    assert children == [str(path)]


def _endless(d: Diagnostics, told: ahead.Told) -> Iterator[Exchange]:
    i = 0
    while True:
        i += 1
        yield exchange(i, "GET", f"http://a.example/{i}", started=float(i))


def _children() -> set[int]:
    found: set[int] = set()
    for task in os.listdir("/proc/self/task"):
        with open(f"/proc/self/task/{task}/children") as f:
            found.update(int(pid) for pid in f.read().split())
    return found


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reading ahead needs Linux")
def test_a_stream_closed_early_ends_its_child() -> None:
    before = _children()
    stream = ahead.read_ahead("endless", _endless, Diagnostics(), lambda _: None)
    assert [x.id for x in (next(stream), next(stream), next(stream))] == ["e1", "e2", "e3"]
    assert _children() - before  # the child reads on
    stream.close()
    assert _children() == before  # killed and reaped


def _dies(d: Diagnostics, told: ahead.Told) -> Iterator[Exchange]:
    yield exchange(1, "GET", "http://a.example/1", started=1.0)
    os.kill(os.getpid(), signal.SIGKILL)
    yield exchange(2, "GET", "http://a.example/2", started=2.0)  # never


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reading ahead needs Linux")
def test_a_child_that_dies_is_an_error_not_a_short_capture() -> None:
    with pytest.raises(IngestError, match=r"dies\.har: the process reading it ended "
                                          r"unexpectedly \(signal 9\)"):
        list(ahead.read_ahead("dies.har", _dies, Diagnostics(), lambda _: None))


def _talks(d: Diagnostics, told: ahead.Told) -> Iterator[Exchange]:
    logging.getLogger("corsflow.ingest.test").warning("packet %d: odd", 7)
    d.note("a note")
    told("told once")
    d.skip("talks.har", "entry 3", "broken")
    yield exchange(1, "GET", "http://a.example/1", started=1.0)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reading ahead needs Linux")
def test_what_the_reader_logs_notes_and_tells_arrives_here(
        caplog: pytest.LogCaptureFixture) -> None:
    told: list[str] = []
    d = Diagnostics()
    with caplog.at_level(logging.INFO):
        out = list(ahead.read_ahead("talks.har", _talks, d, told.append))
    assert [x.id for x in out] == ["e1"]
    assert told == ["told once"] and d.notes == ["a note"]
    assert [(s.where, s.reason) for s in d.skipped] == [("entry 3", "broken")]
    assert "packet 7: odd" in caplog.text and "entry 3: skipped: broken" in caplog.text


def test_only_regular_files_large_enough_are_read_ahead(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ahead, "usable_cores", lambda: 2)
    small = tmp_path / "small.har"
    small.write_bytes(b"{}")
    large = tmp_path / "large.har"
    with open(large, "wb") as f:
        f.truncate(ahead.MIN_BYTES)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    monkeypatch.delenv("CORSFLOW_READ_AHEAD", raising=False)
    assert [ahead.worth_reading_ahead(str(p)) for p in (small, large, fifo)] == [
        False, sys.platform.startswith("linux"), False]
    monkeypatch.setattr(ahead, "usable_cores", lambda: 1)
    assert not ahead.worth_reading_ahead(str(large))  # no core to spare
    monkeypatch.setenv("CORSFLOW_READ_AHEAD", "0")
    monkeypatch.setattr(ahead, "usable_cores", lambda: 2)
    assert not ahead.worth_reading_ahead(str(large))


def _cgroups(tmp_path: Path, own: str, files: dict[str, str]) -> tuple[str, str]:
    """A cgroup file system under ``tmp_path`` and the process's ``/proc/self/cgroup``."""
    root = tmp_path / "cgroup"
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    (tmp_path / "own").write_text(own)
    return str(root), str(tmp_path / "own")


@pytest.mark.parametrize(("own", "files", "limit"), [
    # v2: the lowest quota of the cgroup and those above it.
    ("0::/app.slice/web\n", {"app.slice/web/cpu.max": "max 100000\n",
                             "app.slice/cpu.max": "150000 100000\n"}, 2),
    ("0::/app.slice/web\n", {"app.slice/web/cpu.max": "50000 100000\n",
                             "app.slice/cpu.max": "400000 100000\n"}, 1),
    ("0::/app.slice/web\n", {"app.slice/web/cpu.max": "max 100000\n"}, None),
    # v1: a container sees its own cgroup at the mount's root, not at the host's path.
    ("12:cpu,cpuacct:/docker/0123\n4:memory:/docker/0123\n",
     {"cpu,cpuacct/cpu.cfs_quota_us": "100000\n", "cpu,cpuacct/cpu.cfs_period_us": "100000\n"},
     1),
    ("3:cpu:/\n", {"cpu/cpu.cfs_quota_us": "-1\n", "cpu/cpu.cfs_period_us": "100000\n"}, None),
    # Hybrid: the unified hierarchy without the cpu controller, v1's without a quota.
    ("1:cpu:/\n0::/\n", {"cpu/cpu.cfs_quota_us": "-1\n"}, None),
    ("0::/app\n", {"app/cpu.max": "garbage\n"}, None),
])
def test_a_cgroup_cpu_quota_caps_the_cores_used(tmp_path: Path, own: str,
                                                files: dict[str, str], limit: int | None) -> None:
    root, own_file = _cgroups(tmp_path, own, files)
    assert ahead.cgroup_cpu_limit.__wrapped__(root, own_file) == limit


def test_usable_cores_are_the_affinity_capped_by_the_quota(
        monkeypatch: pytest.MonkeyPatch) -> None:
    if not hasattr(os, "sched_getaffinity"):
        pytest.skip("no CPU affinity on this platform")
    cores = len(os.sched_getaffinity(0))
    for quota, expected in ((None, cores), (1, 1), (cores + 4, cores)):
        monkeypatch.setattr(ahead, "cgroup_cpu_limit", lambda q=quota: q)
        assert ahead.usable_cores() == expected


def test_the_command_line_prints_the_same_report_read_ahead() -> None:
    outputs = []
    for setting in ("0", "1"):
        env = {**os.environ, "CORSFLOW_READ_AHEAD": setting}
        done = subprocess.run(
            [sys.executable, "-m", "corsflow", "analyze", str(SAMPLES / "chromium-session.pcap"),
             "--format", "json"], capture_output=True, env=env, cwd=REPO_ROOT, check=False)
        assert done.returncode == 0, done.stderr
        outputs.append(done.stdout)
    assert outputs[0] == outputs[1] and b'"exchanges"' in outputs[0]


def test_a_streamed_report_is_the_same_read_ahead(
        monkeypatch: pytest.MonkeyPatch, children: list[str]) -> None:
    from corsflow.streamed import streamed_report

    path = str(SAMPLES / "chromium-session.flows")
    written = []
    for setting in ("0", "1"):
        monkeypatch.setenv("CORSFLOW_READ_AHEAD", setting)
        _, chunks = streamed_report([path], "json", read_ahead=True)
        written.append(b"".join(chunks))
    assert written[0] == written[1] and b'"exchanges"' in written[0]
    assert children == [path]


def test_where_no_process_can_be_started_the_file_is_read_here(
        monkeypatch: pytest.MonkeyPatch, children: list[str]) -> None:
    def refuse() -> int:
        raise BlockingIOError(11, "Resource temporarily unavailable")

    path = str(SAMPLES / "chromium-session.har")
    monkeypatch.setenv("CORSFLOW_READ_AHEAD", "0")
    here = analyze_paths([path], read_ahead=True)
    monkeypatch.setenv("CORSFLOW_READ_AHEAD", "1")
    monkeypatch.setattr(os, "fork", refuse)
    same(here, analyze_paths([path], read_ahead=True))
    assert children == [path]


def _chatty(d: Diagnostics, told: ahead.Told) -> Iterator[Exchange]:
    for n in range(1500):
        logging.getLogger("corsflow.ingest.test").warning("packet %d: odd", n)
    yield exchange(1, "GET", "http://a.example/1", started=1.0)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reading ahead needs Linux")
def test_log_records_held_for_the_next_message_are_bounded(
        caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        out = list(ahead.read_ahead("chatty.pcap", _chatty, Diagnostics(), lambda _: None))
    assert [x.id for x in out] == ["e1"]
    odd = [r for r in caplog.records if "odd" in r.getMessage()]
    assert len(odd) == 1000 and odd[-1].getMessage() == "packet 999: odd"
    assert "500 more log records of the reading process were left out" in caplog.text


def test_a_bug_in_a_reader_is_told_as_where_it_happened(
        monkeypatch: pytest.MonkeyPatch, children: list[str]) -> None:
    from corsflow.cli import internal_error
    from corsflow.ingest import har

    def broken(self: object, index: int, entry: object) -> Exchange:
        raise ValueError(f"boom at entry {index}")

    monkeypatch.setattr(har._Mapper, "_convert", broken)
    path = str(SAMPLES / "chromium-session.har")
    lines = []
    for setting in ("0", "1"):
        monkeypatch.setenv("CORSFLOW_READ_AHEAD", setting)
        with pytest.raises(ValueError, match="boom at entry 0") as caught:
            analyze_paths([path], read_ahead=True)
        lines.append(internal_error(caught.value))
    assert lines[0] == lines[1] and " at corsflow/ingest/har.py:" in lines[0]
    assert children == [path]
    # The traceback of the reading process goes along, for CORSFLOW_DEBUG=1.
    assert any("in broken" in note for note in caught.value.__notes__)


def test_the_reading_process_sends_only_the_response_fields_read() -> None:
    from corsflow.reading import response_fields_read

    fields = [("Date", "x"), ("Access-Control-Allow-Origin", "*"), ("Server", "s"),
              ("Vary", "Origin"), ("Set-Cookie", "a=1"), ("Location", "/b"),
              ("access-control-max-age", "5"), ("Content-Type", "text/plain")]
    ex = exchange(1, "GET", "https://api.test/a", {"Origin": "https://app.test"},
                  started=1.0, response_headers=fields)
    lean = response_fields_read(ex)
    assert ex.response is not None and len(ex.response.headers) == len(fields)
    assert lean.response is not None and lean.response.headers.items == (
        fields[1], fields[3], fields[4], fields[5], fields[6])
    assert (lean.id, lean.url, lean.request_headers, lean.response.status) == (
        ex.id, ex.url, ex.request_headers, 200)
    assert response_fields_read(lean) is lean  # nothing more to drop


def test_the_fields_read_are_told_by_name_whatever_its_case_and_the_memo_stays_bounded() -> None:
    from corsflow.ingest import lean
    from corsflow.reading import response_fields_read

    names = ["ACCESS-CONTROL-ALLOW-ORIGIN", "Access-Control-Max-Age", "VARY", "vary",
             "Set-Cookie", "LOCATION", "Content-Location", "X-Access-Control", "Varying"]
    limit = lean.field_read.cache_info().maxsize
    assert limit is not None
    for n in range(3 * limit):  # a hostile capture: a new name every time
        fields = [(names[n % len(names)], "v"), (f"X-Unique-{n}", "v"), ("Vary", "Origin")]
        ex = exchange(n, "GET", "https://api.test/a", {}, started=1.0,
                      response_headers=fields)
        kept = response_fields_read(ex)
        assert kept.response is not None
        assert kept.response.headers.items == tuple(
            f for f in fields if f[0].lower().startswith("access-control-")
            or f[0].lower() in ("vary", "set-cookie", "location"))
        assert lean.field_read.cache_info().currsize <= limit


def test_the_reading_process_keeps_every_field_the_security_review_reads() -> None:
    from corsflow.findings.security import REVIEWED_RESPONSE_FIELDS
    from corsflow.reading import response_fields_read

    fields = [(name.title(), "x") for name in sorted(REVIEWED_RESPONSE_FIELDS)]
    ex = exchange(1, "GET", "https://api.test/a", {"Origin": "https://app.test"},
                  started=1.0, response_headers=[("Server", "s"), *fields])
    lean = response_fields_read(ex)
    assert lean.response is not None and lean.response.headers.items == tuple(fields)


@pytest.mark.parametrize("path", SAMPLE_FILES, ids=lambda p: p.name)
def test_the_response_fields_left_out_change_no_report(path: Path) -> None:
    """What the reading process leaves out, nothing in the analysis reads."""
    from corsflow.analysis import Analysis
    from corsflow.engine.normalize import normalize
    from corsflow.ingest import detect_format, reader_for
    from corsflow.reading import response_fields_read

    reports = []
    for lean in (False, True):
        a = Analysis("chromium")
        for ex in map(normalize, reader_for(detect_format(str(path)))(str(path), Diagnostics())):
            a.feed(response_fields_read(ex) if lean else ex, normalized=True)
        a.flush()
        reports.append(render_json(a.report()))
    assert reports[0] == reports[1]


# --- a reading started before the analysis (the command line's, corsflow.reading) ---------


@pytest.fixture
def forks(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The reading processes forked from this one (their ids)."""
    made: list[int] = []
    real = os.fork

    def counted() -> int:
        pid = real()
        if pid:
            made.append(pid)
        return pid

    monkeypatch.setattr(os, "fork", counted)
    return made


def test_a_reading_started_early_is_the_one_the_analysis_takes_up(
        monkeypatch: pytest.MonkeyPatch, forks: list[int]) -> None:
    from corsflow.reading import lean_reading, start_reading

    path = str(SAMPLES / "chromium-session.har")
    monkeypatch.setenv("CORSFLOW_READ_AHEAD", "0")
    here = analyze_paths([path], read_ahead=True)
    monkeypatch.setenv("CORSFLOW_READ_AHEAD", "1")
    start_reading([path])
    _, key = lean_reading(path, "har", False)
    assert ahead.started(path, key) and len(forks) == 1
    there = analyze_paths([path], read_ahead=True)
    assert not ahead.started(path, key)
    assert len(forks) == 1  # taken up: no second reading
    same(here, there)
    # Several files are scanned here first: nothing is started for them.
    start_reading([path, str(SAMPLES / "firefox-session.har")])
    assert len(forks) == 1 and not ahead._started


def test_a_reading_started_for_other_diagnostics_is_ended_and_read_again(
        monkeypatch: pytest.MonkeyPatch, forks: list[int]) -> None:
    from corsflow.reading import start_reading

    path = str(SAMPLES / "chromium-session.har")
    monkeypatch.setenv("CORSFLOW_READ_AHEAD", "0")
    here = analyze_paths([path], read_ahead=True, diagnostics=Diagnostics(keep=3))
    monkeypatch.setenv("CORSFLOW_READ_AHEAD", "1")
    start_reading([path])
    there = analyze_paths([path], read_ahead=True, diagnostics=Diagnostics(keep=3))
    assert len(forks) == 2 and not ahead._started
    same(here, there)
    with pytest.raises(ChildProcessError):  # the first was ended and reaped
        os.waitpid(forks[0], os.WNOHANG)


def test_a_reading_never_taken_up_is_ended(monkeypatch: pytest.MonkeyPatch,
                                           forks: list[int]) -> None:
    from corsflow.reading import start_reading

    monkeypatch.setenv("CORSFLOW_READ_AHEAD", "1")
    start_reading([str(SAMPLES / "chromium-session.har")])
    assert len(forks) == 1 and ahead._started
    ahead.discard_started()
    assert not ahead._started and ahead._live == 0
    with pytest.raises(ChildProcessError):
        os.waitpid(forks[0], os.WNOHANG)


PROBE = """
import sys
import corsflow.cli
from corsflow.ingest import ahead
real = ahead._fork
def fork(*args):
    print("analysis imported at the fork:", "corsflow.analysis" in sys.modules, file=sys.stderr)
    return real(*args)
ahead._fork = fork
corsflow.cli.command()
"""


def test_the_command_line_starts_reading_before_it_imports_the_analysis() -> None:
    """What lets the reading overlap the import of the engine and the findings."""
    path = str(SAMPLES / "chromium-session.har")
    outputs = []
    for setting in ("0", "1"):
        done = subprocess.run(
            [sys.executable, "-c", PROBE, "analyze", path, "--format", "json"],
            capture_output=True, cwd=REPO_ROOT, timeout=120, check=False,
            env={**os.environ, "CORSFLOW_READ_AHEAD": setting})
        assert done.returncode == 0, done.stderr.decode()
        outputs.append(done.stdout)
        forked = [line for line in done.stderr.decode().splitlines()
                  if line.startswith("analysis imported")]
        assert forked == ([] if setting == "0" else ["analysis imported at the fork: False"])
    assert outputs[0] == outputs[1] and json.loads(outputs[0])["exchanges"]
