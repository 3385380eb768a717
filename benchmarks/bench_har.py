"""Benchmark HAR ingest against the alternatives on a generated workload.

    python benchmarks/bench_har.py                 # ~100 MB workload
    python benchmarks/bench_har.py --size 1000     # ~1 GB
    python benchmarks/bench_har.py --minified      # the same entries on one line

The workload comes from the shared generator (``../shared/perf/gen_har.py`` beside the
repository): a Chrome-style, pretty-printed HAR of a single-page app's API traffic. Each
reader runs in its own fresh Python process, so its peak RSS is its own:

* ``corsflow read_har``: the streaming reader, building every Exchange;
* ``msgspec typed``: the whole file read into memory and decoded by msgspec into Structs for
  only the fields corsflow uses (the floor the design compares against);
* ``json.load``: the standard library, every field.

Times are wall-clock seconds, best of ``--repeat`` runs, with the CPU seconds of that run
beside them (steadier than wall time on a busy machine); run it on an idle one.
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
GENERATOR = REPO_ROOT.parent / "shared" / "perf" / "gen_har.py"
ENTRIES_PER_MB = 40.5  # gen_har.py writes about 4050 entries per 100 MB

READERS = ("msgspec", "read_har", "json")
LABELS = {"read_har": "corsflow read_har", "msgspec": "msgspec typed (needed fields)",
          "json": "json.load (everything)"}


def workload(size_mb: int, workdir: Path, minified: bool) -> Path:
    """Generate (once) the workload of about ``size_mb`` MB and return its path."""
    n = max(1, round(size_mb * ENTRIES_PER_MB))
    path = workdir / f"har-{n}.har"
    if not path.exists():
        if not GENERATOR.is_file():
            sys.exit(f"generator not found: {GENERATOR} (the shared/ folder must sit beside "
                     "the repository)")
        workdir.mkdir(parents=True, exist_ok=True)
        print(f"generating {path} ({n} entries)...", file=sys.stderr)
        subprocess.run([sys.executable, str(GENERATOR), str(n), str(path)], check=True)
    if not minified:
        return path
    small = workdir / f"har-{n}-minified.har"
    if not small.exists():
        print(f"writing {small}...", file=sys.stderr)
        subprocess.run([sys.executable, "-c", (
            "import json, sys; d = json.load(open(sys.argv[1], encoding='utf-8')); "
            "json.dump(d, open(sys.argv[2], 'w', encoding='utf-8'), separators=(',', ':'), "
            "ensure_ascii=False)"), str(path), str(small)], check=True)
    return small


def child(reader: str, path: str) -> None:
    """Run one reader over ``path`` in this process and print its measurements as JSON."""
    sys.path.insert(0, str(REPO_ROOT))
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu0 = usage.ru_utime + usage.ru_stime
    start = time.perf_counter()
    if reader == "read_har":
        from corsflow.errors import Diagnostics
        from corsflow.ingest.har import read_har

        diagnostics = Diagnostics()
        count = sum(1 for _ in read_har(path, diagnostics))
        assert diagnostics.skipped_count == 0, diagnostics.skipped
    elif reader == "msgspec":
        import msgspec

        from corsflow.ingest.har import _Entry

        # Built with defstruct: string annotations of local classes cannot be resolved.
        log_type = msgspec.defstruct("Log", [("entries", list[_Entry])])
        har_type = msgspec.defstruct("Har", [("log", log_type)])
        with open(path, "rb") as f:
            har: Any = msgspec.json.decode(f.read(), type=har_type)
            count = len(har.log.entries)
    elif reader == "json":
        with open(path, encoding="utf-8") as f:
            count = len(json.load(f)["log"]["entries"])
    else:
        raise SystemExit(f"unknown reader {reader}")
    seconds = time.perf_counter() - start
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(json.dumps({"seconds": seconds, "cpu": usage.ru_utime + usage.ru_stime - cpu0,
                      "entries": count, "peak_mb": usage.ru_maxrss / 1024}))


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
    ap.add_argument("--minified", action="store_true", help="re-serialise without whitespace")
    ap.add_argument("--skip", action="append", default=[], choices=READERS,
                    help="leave a reader out (json.load on 1 GB takes minutes and GBs)")
    ap.add_argument("--child", nargs=2, metavar=("READER", "PATH"), help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        child(*a.child)
        return
    path = workload(a.size, a.workdir, a.minified)
    size_mb = os.path.getsize(path) / 1e6
    print(f"{path.name}: {size_mb:.1f} MB, best of {a.repeat}")
    print(f"{'reader':32} {'seconds':>8} {'CPU s':>7} {'MB/s':>7} {'entries/s':>10} "
          f"{'peak RSS':>9} {'vs msgspec':>10}")
    results = {}
    for reader in READERS:
        if reader in a.skip:
            continue
        r = results[reader] = measure(reader, path, a.repeat)
        floor = results.get("msgspec")
        ratio = f"{r['seconds'] / floor['seconds']:.2f}x" if floor else ""
        print(f"{LABELS[reader]:32} {r['seconds']:8.2f} {r['cpu']:7.2f} "
              f"{size_mb / r['seconds']:7.0f} {r['entries'] / r['seconds']:10.0f} "
              f"{r['peak_mb']:6.0f} MB {ratio:>10}")
    if "read_har" in results and "msgspec" in results:
        share = results["read_har"]["seconds"] / results["msgspec"]["seconds"]
        print(f"read_har / msgspec typed = {share:.2f} (design target: at most 1.5)")


if __name__ == "__main__":
    main()
