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

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from benchkit import PERF, generate, parser, report, run_all

GENERATOR = PERF / "gen_har.py"
ENTRIES_PER_MB = 40.5  # gen_har.py writes about 4050 entries per 100 MB

READERS = ("msgspec", "read_har", "json")
LABELS = {"read_har": "corsflow read_har", "msgspec": "msgspec typed (needed fields)",
          "json": "json.load (everything)"}


def workload(size_mb: int, workdir: Path, minified: bool) -> Path:
    """Generate (once) the workload of about ``size_mb`` MB and return its path."""
    n = max(1, round(size_mb * ENTRIES_PER_MB))
    path = generate(GENERATOR, [str(n)], workdir / f"har-{n}.har")
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


def read_har(path: str) -> int:
    from corsflow.errors import Diagnostics
    from corsflow.ingest.har import read_har

    diagnostics = Diagnostics()
    count = sum(1 for _ in read_har(path, diagnostics))
    assert diagnostics.skipped_count == 0, diagnostics.skipped
    return count


def typed(path: str) -> int:
    import msgspec

    from corsflow.ingest.har import _Entry

    # Built with defstruct: string annotations of local classes cannot be resolved.
    log_type = msgspec.defstruct("Log", [("entries", list[_Entry])])
    har_type = msgspec.defstruct("Har", [("log", log_type)])
    with open(path, "rb") as f:
        har: Any = msgspec.json.decode(f.read(), type=har_type)
        return len(har.log.entries)


def json_load(path: str) -> int:
    with open(path, encoding="utf-8") as f:
        return len(json.load(f)["log"]["entries"])


def child(reader: str, path: str) -> None:
    """Run one reader over ``path`` in this process and print its measurements as JSON."""
    run = {"read_har": read_har, "msgspec": typed, "json": json_load}.get(reader)
    if run is None:
        raise SystemExit(f"unknown reader {reader}")
    report(lambda: run(path))


def main() -> None:
    ap = parser(__doc__, READERS)  # --skip json: json.load on 1 GB takes minutes and GBs
    ap.add_argument("--minified", action="store_true", help="re-serialise without whitespace")
    a = ap.parse_args()
    if a.child:
        child(*a.child)
        return
    path = workload(a.size, a.workdir, a.minified)
    size_mb = os.path.getsize(path) / 1e6
    header = (f"{'reader':32} {'seconds':>8} {'CPU s':>7} {'MB/s':>7} {'entries/s':>10} "
              f"{'peak RSS':>9} {'vs msgspec':>10}")

    def row(reader: str, r: dict[str, float], ratio: str) -> str:
        return (f"{LABELS[reader]:32} {r['seconds']:8.2f} {r['cpu']:7.2f} "
                f"{size_mb / r['seconds']:7.0f} {r['items'] / r['seconds']:10.0f} "
                f"{r['peak_mb']:6.0f} MB {ratio:>10}")

    results = run_all(__file__, READERS, path, a, header, row)
    if "read_har" in results and "msgspec" in results:
        share = results["read_har"]["seconds"] / results["msgspec"]["seconds"]
        print(f"read_har / msgspec typed = {share:.2f} (design target: at most 1.5)")


if __name__ == "__main__":
    main()
