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
  given against it; ``benchmarks/reference.py netlog``);
* ``msgspec parse``: ``msgspec.json.decode`` of the whole file, every value
  (``benchmarks/reference.py untyped``).

Each reader's run with the least CPU time of ``--repeat`` counts (the ratios are in CPU
time, steadier than wall time on a shared machine), its wall-clock seconds beside it.
"""

from __future__ import annotations

import os
from pathlib import Path

from benchkit import REPO_ROOT, generate, parser, report, run_all

GENERATOR = REPO_ROOT / "benchmarks" / "gen_netlog.py"
EXCHANGES_PER_MB = 43  # gen_netlog.py writes about 4300 exchanges per 100 MB

READERS = ("msgspec", "msgspec-any", "read_netlog", "analyze")
LABELS = {"read_netlog": "corsflow read_netlog", "analyze": "corsflow analyze (JSON report)",
          "msgspec": "msgspec typed (params skipped)", "msgspec-any": "msgspec parse (untyped)"}


def workload(size_mb: int, workdir: Path) -> Path:
    n = max(1, round(size_mb * EXCHANGES_PER_MB))
    return generate(GENERATOR, [str(n)], workdir / f"netlog-{n}.json")


def read_netlog(path: str) -> int:
    from corsflow.errors import Diagnostics
    from corsflow.ingest.netlog import read_netlog

    diagnostics = Diagnostics()
    count = sum(1 for _ in read_netlog(path, diagnostics))
    assert diagnostics.skipped_count == 0, diagnostics.skipped
    return count


def analyze(path: str) -> int:
    from corsflow.analysis import analyze_paths
    from corsflow.report.json import iter_json

    report = analyze_paths([path])
    with open(os.devnull, "wb") as out:
        out.writelines(iter_json(report))
    return len(report.exchanges)


def typed(path: str) -> int:
    import reference  # imported inside the timing, as corsflow is

    return reference.netlog_typed(path)


def untyped(path: str) -> int:
    import reference

    return reference.untyped(path)


def child(reader: str, path: str) -> None:
    run = {"read_netlog": read_netlog, "analyze": analyze, "msgspec": typed,
           "msgspec-any": untyped}.get(reader)
    if run is None:
        raise SystemExit(f"unknown reader {reader}")
    report(lambda: run(path))


def main() -> None:
    a = parser(__doc__, READERS).parse_args()
    if a.child:
        child(*a.child)
        return
    path = workload(a.size, a.workdir)
    size_mb = os.path.getsize(path) / 1e6
    header = (f"{'reader':32} {'seconds':>8} {'CPU s':>7} {'MB/s':>7} {'peak RSS':>9} "
              f"{'vs msgspec':>10}")

    def row(reader: str, r: dict[str, float], ratio: str) -> str:
        return (f"{LABELS[reader]:32} {r['seconds']:8.2f} {r['cpu']:7.2f} "
                f"{size_mb / r['seconds']:7.0f} {r['peak_mb']:6.0f} MB {ratio:>10}")

    results = run_all(__file__, READERS, path, a, header, row, key="cpu")
    for name in ("read_netlog", "analyze"):
        for base in ("msgspec", "msgspec-any"):
            if name in results and base in results:
                share = results[name]["cpu"] / results[base]["cpu"]
                print(f"{name} / {LABELS[base]} = {share:.2f} in CPU time "
                      "(design target: at most 1.5)")


if __name__ == "__main__":
    main()
