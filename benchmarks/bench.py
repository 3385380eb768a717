"""corsflow's whole analysis against its references, side by side in one run (``make bench``).

    python benchmarks/bench.py                    # ~100 MB HAR and pcap, 10,000 flows
    python benchmarks/bench.py --size 1000        # ~1 GB HAR and pcap (minutes; GBs of disk)
    python benchmarks/bench.py --runs 5 --only har

Each row times two whole processes, ``corsflow analyze FILE --format json -o /dev/null``
(start-up, reading, the analysis and the JSON report) and the row's reference on the same
file (``benchmarks/reference.py``), in turn A B A B ... so that a machine whose speed drifts
slows both alike. It prints the medians (wall and CPU seconds, peak RSS of the process) and
the median of the per-pair ratios. Workloads come from the generators in ``shared/perf``
beside the repository and are kept in ``--workdir`` between runs. Nothing is asserted: the
numbers are for README's table, which is this script's output.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from benchkit import PERF, REPO_ROOT, generate

REFERENCE = Path(__file__).resolve().parent / "reference.py"
HAR_ENTRIES_PER_MB = 40.5  # gen_har.py: about 4050 entries per 100 MB
PCAP_EXCHANGES_PER_MB = 63  # gen_pcap.py: about 6300 exchanges per 100 MB


@dataclass(frozen=True, slots=True)
class Run:
    wall: float
    cpu: float
    rss_mb: float


@dataclass(frozen=True, slots=True)
class Row:
    name: str
    file: Path
    reference: str
    reference_label: str
    target: str
    target_ratio: float


def _time(cmd: list[str]) -> Run:
    """One whole process: wall seconds, CPU seconds (user + system) and peak RSS."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    assert proc.stderr is not None
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        sys.exit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{err.decode(errors='replace')}")
    return Run(wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024)


def _generate(script: str, args: list[str], out: Path) -> Path:
    return generate(PERF / script, args, out, cwd=PERF)


def _rows(a: argparse.Namespace) -> list[Row]:
    rows = []
    mb = a.size
    if "har" in a.only:
        n = round(mb * HAR_ENTRIES_PER_MB)
        f = _generate("gen_har.py", [str(n)], a.workdir / f"har-{n}.har")
        rows.append(Row(f"HAR, {f.stat().st_size / 1e6:,.0f} MB ({n:,} entries)", f, "msgspec",
                        "msgspec typed parse of the needed fields", "≤ 1.5×", 1.5))
    if "pcap" in a.only:
        n = round(mb * PCAP_EXCHANGES_PER_MB)
        f = _generate("gen_pcap.py", [str(n)], a.workdir / f"http-{n}.pcap")
        rows.append(Row(f"pcap, {f.stat().st_size / 1e6:,.0f} MB ({n:,} exchanges)", f, "dpkt",
                        "bare dpkt decode loop", "≤ 1.0×", 1.0))
    if "mitm" in a.only:
        try:
            import mitmproxy  # noqa: F401 - the generator and the reference need it
        except ModuleNotFoundError:
            print("mitmproxy is not installed: the flow row is left out", file=sys.stderr)
        else:
            f = _generate("gen_mitm.py", [str(a.flows)], a.workdir / f"mitm-{a.flows}.flows")
            rows.append(Row(f"mitmproxy flows, {a.flows:,} ({f.stat().st_size / 1e6:,.0f} MB)",
                            f, "flowreader", "mitmproxy FlowReader loop", "≤ 0.6×", 0.6))
    return rows


def _corsflow() -> list[str]:
    exe = shutil.which("corsflow", path=str(Path(sys.executable).parent))
    return [exe] if exe else [sys.executable, "-m", "corsflow"]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=100,
                    help="HAR and pcap workload size in MB (default 100; 1000 for 1 GB)")
    ap.add_argument("--flows", type=int, default=10_000, help="flows in the mitmproxy file")
    ap.add_argument("--runs", type=int, default=3, help="counted runs of each command (A B A B)")
    ap.add_argument("--warmup", type=int, default=1, help="uncounted runs of each, first")
    ap.add_argument("--only", nargs="+", default=["har", "pcap", "mitm"],
                    choices=["har", "pcap", "mitm"])
    ap.add_argument("--workdir", type=Path,
                    default=Path(tempfile.gettempdir()) / "corsflow-bench",
                    help="where the generated workloads are kept between runs")
    a = ap.parse_args(argv)
    rows = _rows(a)
    # Timed as installed: an editable install has no bytecode, and with
    # PYTHONDONTWRITEBYTECODE set every run would compile the package again; pip compiles
    # it once for a regular install, and so does this.
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(REPO_ROOT / "corsflow")],
                   check=True, stdout=subprocess.DEVNULL)
    print(f"corsflow analyze FILE --format json -o /dev/null, against each row's reference on "
          f"the same file, in turn; median of {a.runs} runs after {a.warmup} warm-up, "
          f"{os.cpu_count()} CPUs")
    print()
    print("| workload | corsflow: wall / CPU / peak RSS | reference, same run | "
          "ratio wall (CPU) | target |")
    print("| --- | --- | --- | --- | --- |")
    for row in rows:
        ours = _corsflow() + ["analyze", str(row.file), "--format", "json", "-o", os.devnull]
        ref = [sys.executable, str(REFERENCE), row.reference, str(row.file)]
        for _ in range(a.warmup):
            _time(ours)
            _time(ref)
        pairs = [(_time(ours), _time(ref)) for _ in range(a.runs)]
        a_runs = [p[0] for p in pairs]
        b_runs = [p[1] for p in pairs]
        wall_ratio = statistics.median(x.wall / y.wall for x, y in pairs)
        cpu_ratio = statistics.median(x.cpu / y.cpu for x, y in pairs)
        verdict = "met" if wall_ratio <= row.target_ratio else "not met"

        def show(runs: list[Run]) -> str:
            return (f"{statistics.median(r.wall for r in runs):.2f} s / "
                    f"{statistics.median(r.cpu for r in runs):.2f} s / "
                    f"{statistics.median(r.rss_mb for r in runs):.0f} MB")

        print(f"| {row.name} | {show(a_runs)} | {row.reference_label}: {show(b_runs)} | "
              f"{wall_ratio:.2f}× ({cpu_ratio:.2f}×) | {row.target}: {verdict} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
