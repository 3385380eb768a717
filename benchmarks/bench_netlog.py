"""Benchmark NetLog ingest against a msgspec parse of the same file.

    python benchmarks/bench_netlog.py                 # ~100 MB workload
    python benchmarks/bench_netlog.py --size 1000     # ~1 GB

The workload comes from ``benchmarks/gen_netlog.py`` (the shared traffic model of
``../shared/perf/`` written as Chromium 156 logs it). Each reader runs in a fresh Python
process, so its peak RSS is its own:

* ``corsflow read_netlog``: the streaming reader, building every Exchange;
* ``corsflow analyze``: the whole analysis of the file, JSON report included (in-process,
  written to /dev/null);
* ``msgspec typed``: the whole file read into memory and decoded by msgspec into Structs of
  the fields every event has, ``params`` left undecoded: the strict floor (ratios are
  given against it);
* ``msgspec parse``: ``msgspec.json.decode`` of the whole file, every value.

Times are wall-clock seconds, best of ``--repeat`` runs, with CPU seconds beside them.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
GENERATOR = REPO_ROOT / "benchmarks" / "gen_netlog.py"
EXCHANGES_PER_MB = 43  # gen_netlog.py writes about 4300 exchanges per 100 MB

READERS = ("msgspec", "msgspec-any", "read_netlog", "analyze")
LABELS = {"read_netlog": "corsflow read_netlog", "analyze": "corsflow analyze (JSON report)",
          "msgspec": "msgspec typed (params skipped)", "msgspec-any": "msgspec parse (untyped)"}


def workload(size_mb: int, workdir: Path) -> Path:
    n = max(1, round(size_mb * EXCHANGES_PER_MB))
    path = workdir / f"netlog-{n}.json"
    if not path.exists():
        workdir.mkdir(parents=True, exist_ok=True)
        print(f"generating {path} ({n} exchanges)...", file=sys.stderr)
        subprocess.run([sys.executable, str(GENERATOR), str(n), str(path)], check=True)
    return path


def child(reader: str, path: str) -> None:
    sys.path.insert(0, str(REPO_ROOT))
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu0 = usage.ru_utime + usage.ru_stime
    start = time.perf_counter()
    if reader == "read_netlog":
        from corsflow.errors import Diagnostics
        from corsflow.ingest.netlog import read_netlog

        diagnostics = Diagnostics()
        count = sum(1 for _ in read_netlog(path, diagnostics))
        assert diagnostics.skipped_count == 0, diagnostics.skipped
    elif reader == "analyze":
        from corsflow.analysis import analyze_paths
        from corsflow.report.json import iter_json

        report = analyze_paths([path])
        with open(os.devnull, "wb") as out:
            for chunk in iter_json(report):
                out.write(chunk)
        count = len(report.exchanges)
    elif reader == "msgspec":
        import msgspec

        from corsflow.ingest.netlog import _Event

        log_type = msgspec.defstruct("NetLog", [("constants", msgspec.Raw),
                                                ("events", list[_Event])])
        with open(path, "rb") as f:
            log: Any = msgspec.json.decode(f.read(), type=log_type)
            count = len(log.events)
    elif reader == "msgspec-any":
        import msgspec

        with open(path, "rb") as f:
            count = len(msgspec.json.decode(f.read())["events"])
    else:
        raise SystemExit(f"unknown reader {reader}")
    seconds = time.perf_counter() - start
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(json.dumps({"seconds": seconds, "cpu": usage.ru_utime + usage.ru_stime - cpu0,
                      "items": count, "peak_mb": usage.ru_maxrss / 1024}))


def measure(reader: str, path: Path, repeat: int) -> dict[str, float]:
    best: dict[str, float] | None = None
    for _ in range(repeat):
        done = subprocess.run([sys.executable, __file__, "--child", reader, str(path)],
                              capture_output=True, text=True, check=False)
        if done.returncode:
            sys.exit(f"{reader} failed:\n{done.stderr}")
        run = json.loads(done.stdout)
        if best is None or run["seconds"] < best["seconds"]:
            best = run
    assert best is not None
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=100, help="workload size in MB (default 100)")
    ap.add_argument("--repeat", type=int, default=3, help="runs per reader; the best counts")
    ap.add_argument("--workdir", type=Path,
                    default=Path(tempfile.gettempdir()) / "corsflow-bench",
                    help="where the generated workload is kept between runs")
    ap.add_argument("--skip", action="append", default=[], choices=READERS,
                    help="leave a reader out")
    ap.add_argument("--child", nargs=2, metavar=("READER", "PATH"), help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        child(*a.child)
        return
    path = workload(a.size, a.workdir)
    size_mb = os.path.getsize(path) / 1e6
    print(f"{path.name}: {size_mb:.1f} MB, best of {a.repeat}")
    print(f"{'reader':32} {'seconds':>8} {'CPU s':>7} {'MB/s':>7} {'peak RSS':>9} "
          f"{'vs msgspec':>10}")
    results = {}
    for reader in READERS:
        if reader in a.skip:
            continue
        r = results[reader] = measure(reader, path, a.repeat)
        floor = results.get("msgspec")
        ratio = f"{r['seconds'] / floor['seconds']:.2f}x" if floor else ""
        print(f"{LABELS[reader]:32} {r['seconds']:8.2f} {r['cpu']:7.2f} "
              f"{size_mb / r['seconds']:7.0f} {r['peak_mb']:6.0f} MB {ratio:>10}")
    for name in ("read_netlog", "analyze"):
        for floor in ("msgspec", "msgspec-any"):
            if name in results and floor in results:
                share = results[name]["cpu"] / results[floor]["cpu"]
                print(f"{name} / {LABELS[floor]} = {share:.2f} in CPU time "
                      "(design target: at most 1.5)")


if __name__ == "__main__":
    main()
