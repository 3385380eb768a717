"""What the benchmark scripts share: generating a workload once, and timing a reader in a
fresh process of its own (so its peak RSS is its own) with the best of several runs.

A reader script runs itself again as ``SCRIPT --child READER PATH``; the child calls
:func:`report` around the reader and prints one JSON line that :func:`measure` reads.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
PERF = REPO_ROOT.parent / "shared" / "perf"
"""The shared workload generators, beside the repository."""


def generate(generator: Path, args: Sequence[str], out: Path, *, cwd: Path | None = None) -> Path:
    """Write ``out`` with ``generator ARGS... OUT`` unless it exists (workloads are kept
    between runs); never keep half a workload."""
    if out.exists():
        return out
    if not generator.is_file():
        sys.exit(f"the workload generator is missing: {generator} (shared/perf must sit beside "
                 "the repository)")
    out.parent.mkdir(parents=True, exist_ok=True)
    print(f"generating {out} ...", file=sys.stderr, flush=True)
    try:
        subprocess.run([sys.executable, str(generator), *args, str(out)], check=True, cwd=cwd,
                       stdout=subprocess.DEVNULL)
    except BaseException:
        out.unlink(missing_ok=True)
        raise
    return out


def parser(doc: str | None, readers: Sequence[str]) -> argparse.ArgumentParser:
    """The options every reader benchmark takes."""
    ap = argparse.ArgumentParser(description=doc,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=100, help="workload size in MB (default 100)")
    ap.add_argument("--repeat", type=int, default=3, help="runs per reader; the best counts")
    ap.add_argument("--workdir", type=Path,
                    default=Path(tempfile.gettempdir()) / "corsflow-bench",
                    help="where the generated workload is kept between runs")
    ap.add_argument("--skip", action="append", default=[], choices=readers,
                    help="leave a reader out")
    ap.add_argument("--child", nargs=2, metavar=("READER", "PATH"), help=argparse.SUPPRESS)
    return ap


def report(run: Callable[[], int]) -> None:
    """In the child: run the reader, then print its seconds, CPU seconds, the number of
    records it gave and the process's peak RSS, as one JSON line."""
    sys.path.insert(0, str(REPO_ROOT))
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu0 = usage.ru_utime + usage.ru_stime
    start = time.perf_counter()
    count = run()
    seconds = time.perf_counter() - start
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(json.dumps({"seconds": seconds, "cpu": usage.ru_utime + usage.ru_stime - cpu0,
                      "items": count, "peak_mb": usage.ru_maxrss / 1024}))


def measure(script: str, reader: str, path: Path, repeat: int,
            key: str = "seconds") -> dict[str, float]:
    """The best of ``repeat`` runs of ``script --child READER PATH``, each a fresh process:
    the one with the fewest ``key`` (``"seconds"`` or ``"cpu"``; on a shared machine a busy
    neighbour only ever adds time)."""
    best: dict[str, float] | None = None
    for _ in range(repeat):
        done = subprocess.run([sys.executable, script, "--child", reader, str(path)],
                              capture_output=True, text=True, check=False)
        if done.returncode:
            sys.exit(f"{reader} failed:\n{done.stderr}")
        run = json.loads(done.stdout)
        if best is None or run[key] < best[key]:
            best = run
    assert best is not None
    return best


def run_all(script: str, readers: Sequence[str], path: Path, a: argparse.Namespace,
            header: str, row: Callable[[str, dict[str, float], str], str],
            key: str = "seconds") -> dict[str, dict[str, float]]:
    """Measure each reader not skipped (its best run by ``key``, as :func:`measure`),
    printing the table: ``header``, then ``row(reader, result, ratio)`` as each ends (the
    ratio is to the ``msgspec`` reader's ``key``, once that has run)."""
    print(f"{path.name}: {path.stat().st_size / 1e6:.1f} MB, best of {a.repeat}")
    print(header)
    results: dict[str, dict[str, float]] = {}
    for reader in readers:
        if reader in a.skip:
            continue
        r = results[reader] = measure(script, reader, path, a.repeat, key)
        base = results.get("msgspec")
        print(row(reader, r, f"{r[key] / base[key]:.2f}x" if base else ""),
              flush=True)
    return results
