"""HAR and mitmproxy flow readers on damaged, hostile and compressed inputs, end to end.

Every reproducer in ``../shared/repro`` for these formats goes through the command line
(``corsflow analyze F --format html -o /dev/null``): a report, or one line and exit 2,
never a traceback or a hang.
"""

from __future__ import annotations

import bz2
import gzip
import json
import lzma
import subprocess
import sys
import zlib
from dataclasses import replace
from pathlib import Path

import pytest

from corsflow.analysis import analyze_paths
from corsflow.cli import main
from corsflow.errors import Diagnostics, IngestError
from corsflow.ingest import detect_format
from corsflow.ingest.flowfile import read_flows
from corsflow.ingest.har import read_har

from ..conftest import REPO_ROOT, SAMPLES, SHARED

REPRO = SHARED / "repro"


def _repros() -> list[object]:
    if not REPRO.is_dir():
        return []
    return [pytest.param(p, id=p.name)
            for p in sorted(REPRO.iterdir()) if p.name.startswith(("har-", "mitm-"))]


@pytest.mark.timeout(60)
@pytest.mark.parametrize("path", _repros())
def test_reproducer_gives_a_report_or_one_line(path: Path, capsys: pytest.CaptureFixture[str]
                                               ) -> None:
    code = main(["analyze", str(path), "--format", "html", "-o", "/dev/null"])
    err = capsys.readouterr().err
    assert "Traceback" not in err
    if code == 2:
        lines = [line for line in err.splitlines() if line.startswith("corsflow: error")]
        assert len(lines) == 1 and str(path) in lines[0]
    else:
        assert code == 0


def test_the_reproducers_are_present() -> None:
    if not REPRO.is_dir():
        pytest.skip("../shared/repro is not beside the repository")
    assert len(_repros()) >= 20


# -- compressed inputs -----------------------------------------------------------------------

def _zstd(data: bytes) -> bytes:
    import zstandard

    return zstandard.ZstdCompressor().compress(data)


CODECS = {
    "gzip": gzip.compress,
    "bzip2": bz2.compress,
    "xz": lzma.compress,
    "zstd": _zstd,
    "zlib": lambda data: zlib.compress(data, 9),  # mitmproxy's .zhar
}
SAMPLE_FILES = ["chromium-session.har", "chromium-session.pcap", "chromium-session.flows",
                "chromium-session.netlog.json"]


def _report(path: Path) -> dict[str, object]:
    report = analyze_paths([str(path)])
    return {"exchanges": [(v.exchange.id, v.exchange.url, v.verdict, v.cache)
                          for v in report.exchanges],
            "findings": [(f.code, f.count) for f in report.findings]}


@pytest.mark.parametrize("sample", SAMPLE_FILES)
def test_compressed_captures_give_the_same_analysis(sample: str, tmp_path: Path) -> None:
    """Every format, every compression, told by the magic bytes (the names say nothing)."""
    data = (SAMPLES / sample).read_bytes()
    plain = tmp_path / "plain"
    plain.write_bytes(data)
    expected = _report(plain)
    assert expected["exchanges"]
    for codec, compress in CODECS.items():
        packed = tmp_path / f"capture-{codec}"
        packed.write_bytes(compress(data))
        assert detect_format(str(packed)) == detect_format(str(plain)), codec
        assert _report(packed) == expected, codec


def test_gzip_of_several_members_is_read_whole(tmp_path: Path) -> None:
    data = (SAMPLES / "chromium-session.flows").read_bytes()
    half = len(data) // 2
    cut = data.index(b"}", half)  # not a record boundary: the members split a record
    path = tmp_path / "two-members"
    path.write_bytes(gzip.compress(data[:cut]) + gzip.compress(data[cut:]))
    whole = list(read_flows(str(SAMPLES / "chromium-session.flows"), Diagnostics()))
    assert list(read_flows(str(path), Diagnostics())) == [
        replace(x, source=replace(x.source, path=str(path))) for x in whole]


@pytest.mark.parametrize("codec", ["gzip", "xz", "zlib"])
def test_a_truncated_compressed_har_keeps_the_entries_before_the_cut(codec: str,
                                                                      tmp_path: Path) -> None:
    data = (SAMPLES / "chromium-session.har").read_bytes()
    packed = CODECS[codec](data)
    path = tmp_path / "cut"
    path.write_bytes(packed[: len(packed) * 2 // 3])
    d = Diagnostics()
    exchanges = list(read_har(str(path), d))
    whole = list(read_har(str(SAMPLES / "chromium-session.har"), Diagnostics()))
    assert 0 < len(exchanges) < len(whole)
    assert [x.url for x in exchanges] == [x.url for x in whole[: len(exchanges)]]
    assert any(codec in note and "damaged" in note for note in d.notes)
    assert d.skipped_count == 1 and "truncated" in d.skipped[0].reason


def test_corrupt_compressed_data_is_one_clear_error(tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "x.har.gz"
    packed = bytearray(gzip.compress(b'{"log": {"entries": []}}' * 50))
    packed[12:20] = b"\xff" * 8
    path.write_bytes(bytes(packed))
    assert main(["analyze", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(path) in err[0]


# -- HAR variants ------------------------------------------------------------------------------

def test_har_viewer_jsonp_is_read_as_the_har_inside(tmp_path: Path) -> None:
    data = (SAMPLES / "chromium-session.har").read_text(encoding="utf-8")
    path = tmp_path / "inputData.harp"
    path.write_text(f"onInputData({data});\n", encoding="utf-8")
    assert detect_format(str(path)) == "har"
    assert _report(path) == _report(SAMPLES / "chromium-session.har")


def test_latin1_header_value_does_not_lose_the_analysis(tmp_path: Path) -> None:
    """One Latin-1 byte in a header value (issue 9): read as that character."""
    har = json.loads((SAMPLES / "chromium-session.har").read_text(encoding="utf-8"))
    har["log"]["entries"][3]["request"]["headers"].append({"name": "X-City", "value": "MARK"})
    path = tmp_path / "latin1.har"
    path.write_bytes(json.dumps(har).encode().replace(b"MARK", b"Z\xfcrich"))
    exchanges = list(read_har(str(path), d := Diagnostics()))
    assert len(exchanges) == len(har["log"]["entries"]) and d.skipped_count == 0
    assert exchanges[3].request_headers.get("x-city") == "Z\u00fcrich"


# -- flow files without mitmproxy --------------------------------------------------------------

_WITHOUT_MITMPROXY = """
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name == "mitmproxy" or name.startswith("mitmproxy."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
sys.meta_path.insert(0, Block())
from corsflow.cli import main
sys.exit(main(sys.argv[1:]))
"""


def _without_mitmproxy(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", _WITHOUT_MITMPROXY, *args], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=120, check=False)


def test_flow_files_need_no_mitmproxy(tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    done = _without_mitmproxy("analyze", str(SAMPLES / "chromium-session.flows"),
                              "--format", "json", "-o", str(out))
    assert done.returncode == 0, done.stderr
    report = json.loads(out.read_text())
    assert len(report["exchanges"]) == 43


def test_an_old_flow_file_without_mitmproxy_says_how_to_install_it(corpus: Path) -> None:
    old = corpus / "mitm" / "mitmproxy-0.18.2-dumpfile.mitm"
    done = _without_mitmproxy("analyze", str(old))
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "pip install 'corsflow[mitmproxy]'" in lines[0]


def test_a_record_whose_version_contradicts_its_keys_is_skipped_not_migrated(
        tmp_path: Path) -> None:
    """mitmproxy's migration loops forever on a byte-keyed record claiming version 7."""
    from mitmproxy.io import tnetstring

    good = (SAMPLES / "chromium-session.flows").read_bytes()
    bad = tnetstring.dumps({b"version": 7, b"type": b"http", "version": (0, 11)})
    path = tmp_path / "mixed.flows"
    path.write_bytes(bad + good)
    d = Diagnostics()
    exchanges = list(read_flows(str(path), d))
    assert len(exchanges) == 43 and d.skipped_count == 1
    assert d.skipped[0].where == "flow 0"


def test_a_huge_length_prefix_costs_no_memory(tmp_path: Path) -> None:
    path = tmp_path / "huge.flows"
    path.write_bytes((SAMPLES / "chromium-session.flows").read_bytes() + b"999999999999:{")
    d = Diagnostics()
    assert len(list(read_flows(str(path), d))) == 43
    assert "truncated" in d.skipped[0].reason


def test_unknown_bytes_are_one_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "x"
    path.write_bytes(b"\x00\x01garbage")
    with pytest.raises(IngestError, match="not a HAR"):
        detect_format(str(path))
