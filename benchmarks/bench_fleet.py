"""Benchmark fleet analysis: many small sessions, serial vs local processes vs a Dask cluster.

    python benchmarks/bench_fleet.py                    # 1,000 sessions of 60 entries
    python benchmarks/bench_fleet.py --sessions 200 --entries 200

The sessions come from the shared generator (``../shared/perf/gen_har.py`` beside the
repository), one seed per session. Each variant runs ``corsflow analyze DIR --batch
--format json`` as a whole process, so the times include everything a user waits for
(start-up, reading, the merge, the report):

* ``serial``: ``--jobs 1``, every session in one process;
* ``jobs N``: ``--jobs N`` local worker processes (N = the machine's cores);
* ``dask N``: ``--dask ADDRESS`` against a LocalCluster of N single-threaded worker
  processes. As on a real cluster, the cluster is up before the command runs: its start
  (once, however many analyses follow) is timed and printed apart. The same again with
  Dask's statistical profiler off (``distributed.worker.profile.enabled: false``): it
  samples every task's stack every 10 ms. And with the batch settings README recommends:
  the profiler off and glibc's trim and mmap thresholds at 32 MB
  (``distributed.nanny.pre-spawn-environ``) instead of Dask's 64 KB trim threshold, under
  which each session faults its memory in anew. And one worker with the batch settings:
  the scheduler and the client then have a core of their own, as on a real cluster, so
  its speed-up is what Dask's path costs a worker, apart from sharing the cores.

It prints wall seconds (median of ``--repeat`` runs), the speed-up over serial and the
speed-up per worker (the design's target: at least 0.85 per worker), and the peak RSS of the
largest single process: for ``jobs N`` the command or any of its workers, for ``dask N`` each
Dask worker (asked by the cluster before it stops; the target: no more than a single-session
analysis). Run it on an idle machine; nothing here is asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
GENERATOR = REPO_ROOT.parent / "shared" / "perf" / "gen_har.py"

CLUSTER = """
import json, resource, sys
import dask
from distributed import Client, LocalCluster
dask.config.set(json.loads(sys.argv[2]))
peak = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
with LocalCluster(n_workers=int(sys.argv[1]), threads_per_worker=1, processes=True,
                  host="127.0.0.1", scheduler_port=0, dashboard_address=None) as cluster, \\
        Client(cluster) as client:
    print(cluster.scheduler_address, max(client.run(peak).values()), flush=True)
    sys.stdin.read()  # until the benchmark closes it
    print(max(client.run(peak).values()), flush=True)
"""


PROFILER_OFF: dict[str, object] = {"distributed.worker.profile.enabled": False}
"""Dask's statistical profiler samples each task's stack every 10 ms (on by default)."""

BATCH: dict[str, object] = {
    **PROFILER_OFF,
    # Dask's default (65536) makes glibc hand freed memory back at once and fixes its
    # thresholds, so every session's buffers fault their pages in anew: a quarter more
    # CPU for corsflow. 32 MB keeps one session's memory for the next.
    "distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": 32 << 20,
    "distributed.nanny.pre-spawn-environ.MALLOC_MMAP_THRESHOLD_": 32 << 20,
}
"""A cluster set up for batch analysis: what README recommends for fleets."""


class LocalDask:
    """A LocalCluster of ``n`` worker processes in a process of its own, for ``--dask``."""

    def __init__(self, n: int, config: dict[str, object]) -> None:
        start = time.perf_counter()
        self.proc = subprocess.Popen([sys.executable, "-c", CLUSTER, str(n), json.dumps(config)],
                                     text=True, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().split()
        if len(line) != 2:
            sys.exit("the LocalCluster did not start")
        self.start_seconds = time.perf_counter() - start
        self.address = line[0]
        self.idle_mb = int(line[1])
        """A worker's peak RSS before any work: Dask's own share."""

    def close(self) -> int:
        """Stop the cluster; the largest worker's peak RSS in MB."""
        out, _ = self.proc.communicate("")
        return int(out.strip() or 0)


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
        if out.exists() and (truth / f"{out.name}.truth.json").exists():
            continue  # made by an earlier, interrupted run
        subprocess.run([sys.executable, str(GENERATOR), str(entries), str(out), "--seed",
                        str(i + 1)], check=True, stdout=subprocess.DEVNULL)
        # The generator's counts go beside the fleet, not in it.
        side = Path(str(out) + ".truth.json")
        if side.exists():
            side.rename(truth / side.name)
    done.touch()
    return d


PEAK = """
import resource, sys
from corsflow.cli import main
main(sys.argv[1:])
mb = lambda who: resource.getrusage(who).ru_maxrss // 1024
print(mb(resource.RUSAGE_SELF), mb(resource.RUSAGE_CHILDREN))
"""


def wall_seconds(cmd: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def peak_mb(args: list[str]) -> tuple[int, int]:
    """Peak RSS in MB of ``corsflow ARGS`` run in a fresh interpreter (so no other run's
    high-water mark counts) and of the largest of its worker processes (0 if none)."""
    probe = subprocess.run([sys.executable, "-c", PEAK, *args], check=True,
                           capture_output=True, text=True)
    main, workers = probe.stdout.split()[-2:]
    return int(main), int(workers)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--sessions", type=int, default=1000)
    ap.add_argument("--entries", type=int, default=60)
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "corsflow-bench")
    args = ap.parse_args()
    d = fleet(args.sessions, args.entries, args.workdir)
    analyze = ["-q", "analyze", str(d), "--batch", "--format", "json", "-o", os.devnull]
    n = args.workers
    # A variant: its arguments, its workers, and the Dask configuration of its cluster
    # (None: no cluster).
    variants: dict[str, tuple[list[str], int, dict[str, object] | None]] = {
        "serial": ([*analyze, "--jobs", "1"], 1, None),
        f"jobs {n}": ([*analyze, "--jobs", str(n)], n, None),
        f"dask {n}": (analyze, n, {}),
        f"dask {n}, profiler off": (analyze, n, PROFILER_OFF),
        f"dask {n}, batch settings": (analyze, n, BATCH),
        # One worker, so the scheduler and the client have a core of their own (as on a
        # real cluster): what Dask's path costs a worker, apart from the shared cores.
        "dask 1, batch settings": (analyze, 1, BATCH),
    }
    largest = max(d.glob("*.har"), key=lambda p: p.stat().st_size)
    single = ["-q", "analyze", str(largest), "--format", "json", "-o", os.devnull]
    peaks = {"single session": peak_mb(single)}
    results: dict[str, list[float]] = {k: [] for k in variants}
    starts: list[float] = []
    idle = 0
    for i in range(args.repeat):  # alternate the variants so drift hits them alike
        for name, (a, workers, config) in variants.items():
            if config is None:
                if i == 0:
                    peaks[name] = peak_mb(a)
                results[name].append(wall_seconds([sys.executable, "-m", "corsflow", *a]))
                continue
            # A cluster for this run alone, up before the command starts (as a real one
            # is), and down after, so that no idle cluster slows the other variants.
            cluster = LocalDask(workers, config)
            starts.append(cluster.start_seconds)
            idle = max(idle, cluster.idle_mb)
            try:
                with_cluster = [*a, "--dask", cluster.address]
                if i == 0:
                    peaks[name] = peak_mb(with_cluster)
                results[name].append(wall_seconds([sys.executable, "-m", "corsflow",
                                                   *with_cluster]))
            finally:
                worker = cluster.close()
            peaks[name] = (peaks[name][0], max(peaks[name][1], worker))
    serial = statistics.median(results["serial"])
    print(f"{args.sessions} sessions x {args.entries} entries, {n} workers, "
          f"median of {args.repeat} runs; a LocalCluster took {statistics.median(starts):.1f} s "
          f"to start (not in the times), its workers {idle} MB each before any work")
    print("| variant | wall s | speed-up | per worker | peak RSS MB: main process | "
          "peak RSS MB: largest worker |")
    print("| --- | --- | --- | --- | --- | --- |")
    print(f"| single session (the largest) | | | | {peaks['single session'][0]} | |")
    for name, times in results.items():
        wall = statistics.median(times)
        workers = variants[name][1]
        speed = serial / wall
        main_mb, worker_mb = peaks[name]
        shown = str(worker_mb) if variants[name][2] is not None or workers > 1 else ""
        print(f"| {name} | {wall:.2f} | {speed:.2f}x | {speed / workers:.2f} | {main_mb} | "
              f"{shown} |")


if __name__ == "__main__":
    main()
