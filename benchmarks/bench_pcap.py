"""Benchmark pcap ingest against a bare dpkt decode loop and tshark.

Generates a capture with the shared workload generator (``shared/perf/gen_pcap.py`` beside
the repository), then times, each in its own process so peak RSS is its own:

* ``read_pcap``: corsflow's pcap ingest alone (reassembly + HTTP/1.x parsing);
* ``analyze``: the whole analysis, ``corsflow.analysis.analyze_paths`` (when available);
* ``dpkt``: a bare dpkt decode loop (Ethernet -> IP -> TCP objects for every packet);
* ``tshark``: ``tshark -r F -Y http -T fields -e http.request.method -e http.request.uri
  -e http.response.code`` (when tshark is installed).

    python benchmarks/bench_pcap.py                  # ~100 MB
    python benchmarks/bench_pcap.py --size 1000      # ~1 GB
    python benchmarks/bench_pcap.py --packets 50000 --pcapng --keep
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))  # run from a checkout, without installing
GEN_PCAP = REPO_ROOT.parent / "shared" / "perf" / "gen_pcap.py"
EXCHANGES_PER_100MB = 6300  # the generator's density (about 18 packets per exchange)
PACKETS_PER_EXCHANGE = 18.2


def _measure(kind: str, path: str) -> dict[str, object]:
    """Run inside the child process: one measurement, returned as JSON-able facts."""
    start = time.perf_counter()
    count: object
    if kind == "read_pcap":
        from corsflow.errors import Diagnostics
        from corsflow.ingest.pcap import read_pcap

        count = sum(1 for _ in read_pcap(path, Diagnostics()))
    elif kind == "analyze":
        from corsflow.analysis import analyze_paths

        report = analyze_paths([path])
        count = len(report.exchanges)
    elif kind == "dpkt":
        import dpkt  # type: ignore[import-untyped]

        count = 0
        with open(path, "rb") as f:
            reader = dpkt.pcapng.Reader(f) if path.endswith(".pcapng") else dpkt.pcap.Reader(f)
            for _ts, buf in reader:
                ip = dpkt.ethernet.Ethernet(buf).data
                if isinstance(ip.data, dpkt.tcp.TCP):
                    count += 1  # TCP segments decoded
    else:
        raise SystemExit(f"unknown measurement {kind}")
    return {"seconds": time.perf_counter() - start, "count": count}


def _run(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, float, int, str]:
    """Run ``cmd``; return wall seconds, CPU seconds, its peak RSS in bytes and its stdout."""
    start = time.perf_counter()
    with tempfile.TemporaryFile() as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.DEVNULL, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - start
        out.seek(0)
        text = out.read().decode(errors="replace")
    if proc.returncode:
        raise SystemExit(f"{cmd[0]} failed with exit code {proc.returncode}")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss * 1024, text


def _have_analysis() -> bool:
    try:
        from corsflow.analysis import analyze_paths  # noqa: F401
    except ImportError:
        return False
    return True


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=float, default=100, help="approximate capture size in MB (default 100)")
    ap.add_argument("--packets", type=int, help="approximate number of packets instead of --size")
    ap.add_argument("--pcapng", action="store_true", help="also measure the pcapng twin")
    ap.add_argument("--workdir", help="where to write the capture (default: a temporary directory)")
    ap.add_argument("--keep", action="store_true", help="keep the generated files")
    ap.add_argument("--no-tshark", action="store_true")
    ap.add_argument("--repeat", type=int, default=1, help="runs per measurement; the best counts")
    ap.add_argument("--_measure", nargs=2, metavar=("KIND", "FILE"), help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a._measure:
        print(json.dumps(_measure(*a._measure)))
        return 0
    if not GEN_PCAP.exists():
        print(f"the workload generator is missing: {GEN_PCAP}", file=sys.stderr)
        return 2
    n = int(a.packets / PACKETS_PER_EXCHANGE) if a.packets else int(a.size / 100 * EXCHANGES_PER_100MB)
    workdir = Path(a.workdir or tempfile.mkdtemp(prefix="bench-pcap-"))
    workdir.mkdir(parents=True, exist_ok=True)
    pcap = workdir / f"http-{n}.pcap"
    files = [pcap]
    gen = [sys.executable, str(GEN_PCAP), str(n), str(pcap)]
    if a.pcapng:
        files.append(workdir / f"http-{n}.pcapng")
        gen += ["--pcapng", str(files[1])]
    if not all(f.exists() for f in files):
        print(f"generating {n} exchanges into {workdir} ...", flush=True)
        subprocess.run(gen, check=True, cwd=GEN_PCAP.parent, stdout=subprocess.DEVNULL)
    truth = json.loads(Path(f"{pcap}.truth.json").read_text())
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    kinds = ["read_pcap"] + (["analyze"] if _have_analysis() else []) + ["dpkt"]
    try:
        for f in files:
            size = f.stat().st_size
            packets = truth["packets"]
            print(f"\n{f.name}: {size / 1e6:.1f} MB, {packets} packets, {truth['http_exchanges']} exchanges")
            print(f"{'':10} {'wall s':>7} {'CPU s':>7} {'packets/s':>10} {'MB/s':>6} {'peak RSS':>9}"
                  "  result   (rates per CPU second; best of --repeat)")
            results: dict[str, float] = {}

            def show(kind: str, cmd: list[str], env: dict[str, str] | None,
                     packets: int = packets, size: int = size,
                     results: dict[str, float] = results) -> str:
                runs = [_run(cmd, env) for _ in range(a.repeat)]
                wall, cpu, rss, out = min(runs, key=lambda r: r[1])
                results[kind] = cpu
                print(f"{kind:10} {wall:7.2f} {cpu:7.2f} {packets / cpu:10,.0f} "
                      f"{size / 1e6 / cpu:6.1f} {rss / 1e6:7.0f}MB", end="  ")
                return out

            for kind in kinds:
                out = show(kind, [sys.executable, __file__, "--_measure", kind, str(f)], env)
                print(json.loads(out.strip().splitlines()[-1])["count"])
            if shutil.which("tshark") and not a.no_tshark:
                out = show("tshark", ["tshark", "-r", str(f), "-Y", "http", "-T", "fields",
                                      "-e", "http.request.method", "-e", "http.request.uri",
                                      "-e", "http.response.code"], None)
                print(sum(1 for line in out.splitlines() if line.split("\t")[0]), "requests")
            base = results["dpkt"]
            for kind in ("read_pcap", "analyze"):
                if kind in results:
                    print(f"{kind} / bare dpkt loop: {results[kind] / base:.2f}x CPU time"
                          + (f"; tshark / {kind}: {results['tshark'] / results[kind]:.1f}x"
                             if "tshark" in results else ""))
    finally:
        if not a.keep and not a.workdir:
            shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
