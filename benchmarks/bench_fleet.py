"""Benchmark fleet analysis: many small sessions, serial vs local processes vs a Dask cluster.

    python benchmarks/bench_fleet.py                    # 1,000 sessions of 60 entries
    python benchmarks/bench_fleet.py --sessions 200 --entries 200

The sessions come from the shared generator (``../shared/perf/gen_har.py`` beside the
repository), one seed per session. Each variant runs ``corsflow analyze DIR --batch
--format json`` as a whole process (the Dask variant starts a ``LocalCluster`` of separate
worker processes in that process first), so the times include everything a user waits for:

* ``serial``: ``--jobs 1``, every session in one process;
* ``jobs N``: ``--jobs N`` local worker processes (N = the machine's cores);
* ``dask N``: a LocalCluster of N single-threaded worker processes.

It prints wall seconds (median of ``--repeat`` runs), the speed-up over serial and the
speed-up per worker (the design's target: at least 0.85 per worker), and the peak RSS of the
largest single process (per worker for the parallel variants; the target: no more than a
single-session analysis). Run it on an idle machine; nothing here is asserted.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
GENERATOR = REPO_ROOT.parent / "shared" / "perf" / "gen_har.py"

DASK_DRIVER = """
import sys
from distributed import Client, LocalCluster
from corsflow.cli import main
n = int(sys.argv[1])
with LocalCluster(n_workers=n, threads_per_worker=1, processes=True, host="127.0.0.1",
                  dashboard_address=None) as cluster, Client(cluster) as client:
    import corsflow.cli as cli
    cli._dask_client = lambda address: client
    sys.exit(main(["-q", "analyze", sys.argv[2], "--batch", "--dask", "local", "--format",
                   "json", "-o", "/dev/null"]))
"""


def fleet(sessions: int, entries: int, workdir: Path) -> Path:
    """Generate (once) ``sessions`` HAR files of ``entries`` entries each."""
    d = workdir / f"fleet-{sessions}x{entries}"
    done = d / ".complete"
    if done.exists():
        return d
    if not GENERATOR.is_file():
        sys.exit(f"generator not found: {GENERATOR} (the shared/ folder must sit beside the "
                 "repository)")
    d.mkdir(parents=True, exist_ok=True)
    truth = workdir / "truth"
    truth.mkdir(exist_ok=True)
    print(f"generating {sessions} sessions of {entries} entries in {d}...", file=sys.stderr)
    for i in range(sessions):
        out = d / f"session-{i:04d}.har"
        subprocess.run([sys.executable, str(GENERATOR), str(entries), str(out), "--seed",
                        str(i + 1)], check=True, stdout=subprocess.DEVNULL)
        # The generator's counts go beside the fleet, not in it.
        side = Path(str(out) + ".truth.json")
        if side.exists():
            side.rename(truth / side.name)
    done.touch()
    return d


PEAK = ("import resource, subprocess, sys; "
        "subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL); "
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss // 1024)")


def wall_seconds(cmd: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def peak_mb(cmd: list[str]) -> int:
    """The peak RSS of the largest process ``cmd`` starts (itself or a worker), measured from
    a fresh interpreter so no other run's high-water mark counts."""
    probe = subprocess.run(
        [sys.executable, "-c", PEAK, *cmd],
        check=True, capture_output=True, text=True)
    return int(probe.stdout.strip())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--sessions", type=int, default=1000)
    ap.add_argument("--entries", type=int, default=60)
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "corsflow-bench")
    args = ap.parse_args()
    d = fleet(args.sessions, args.entries, args.workdir)
    cli = [sys.executable, "-m", "corsflow", "-q", "analyze", str(d), "--batch", "--format",
           "json", "-o", os.devnull]
    n = args.workers
    variants = {
        "serial": [*cli, "--jobs", "1"],
        f"jobs {n}": [*cli, "--jobs", str(n)],
        f"dask {n}": [sys.executable, "-c", DASK_DRIVER, str(n), str(d)],
    }
    single = [sys.executable, "-m", "corsflow", "-q", "analyze", str(next(d.glob("*.har"))),
              "--format", "json", "-o", os.devnull]
    results: dict[str, list[float]] = {k: [] for k in variants}
    peaks = {name: peak_mb(cmd) for name, cmd in [("single session", single), *variants.items()]}
    for _ in range(args.repeat):  # alternate the variants so drift hits them alike
        for name, cmd in variants.items():
            results[name].append(wall_seconds(cmd))
    serial = statistics.median(results["serial"])
    print(f"{args.sessions} sessions x {args.entries} entries, {n} workers, "
          f"median of {args.repeat} runs")
    print("| variant | wall s | speed-up | per worker | peak RSS MB (largest process) |")
    print("| --- | --- | --- | --- | --- |")
    print(f"| single session | | | | {peaks['single session']} |")
    for name, times in results.items():
        wall = statistics.median(times)
        workers = 1 if name == "serial" else n
        speed = serial / wall
        print(f"| {name} | {wall:.2f} | {speed:.2f}x | {speed / workers:.2f} | {peaks[name]} |")


if __name__ == "__main__":
    main()
