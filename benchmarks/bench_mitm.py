"""How much corsflow costs on top of mitmproxy, offline and live. Run by hand:

    python benchmarks/bench_mitm.py offline [--flows 10000] [--repeat 3]
    python benchmarks/bench_mitm.py proxy [--flows 10000] [--repeat 3]
    python benchmarks/bench_mitm.py live [--requests 3000] [--clients 4]

offline: a flow file from ``shared/perf/gen_mitm.py`` (beside the repository; kept where
``benchmarks/bench.py`` keeps its workloads, or given with ``--file``), read by mitmproxy's
FlowReader alone, by :func:`corsflow.ingest.mitm.read_flows` alone, and by read_flows
feeding the analysis up to the report. The target: the whole analysis in at most 0.6x FlowReader's time
(``benchmarks/bench.py`` measures it as whole processes).

proxy: what the addon spends on the proxy's event loop per flow, the figure the live
throughput follows, without mitmproxy's own work or the load's noise. The flows of the same
file go through the addon's hooks (``requestheaders``, ``response``) inside mitmproxy's
test harness, as mitmproxy calls them, with the analysis in its own process (the default)
and in this one; this process's CPU time, results included, is divided by the flows.

live: a local HTTP server, mitmdump in front of it (127.0.0.1 only) alone, with a script
addon that does nothing (the floor), with the addon (its analysis in a process of its own,
the default) and with the addon analysing in the proxy's process, and a load generator of keep-alive clients sending browser-like CORS traffic
(preflight + actual request pairs and simple requests) through the proxy, a fixed number of
requests each run. The target: the addon keeps at least 95 % of mitmproxy's throughput.
Both print medians; nothing is asserted.
"""

from __future__ import annotations

import argparse
import http.client
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
GEN_MITM = REPO_ROOT.parent / "shared" / "perf" / "gen_mitm.py"
WORKDIR = Path(tempfile.gettempdir()) / "corsflow-bench"
"""Where ``benchmarks/bench.py`` keeps the workloads it generates (its ``--workdir``)."""
sys.path.insert(0, str(REPO_ROOT))


def _interleaved(variants: dict[str, Callable[[], object]], repeat: int) -> dict[str, float]:
    """Best CPU seconds of this process per variant, the variants run in turn each round so
    a busy neighbour slows them alike. Best-of, not the mean: on a shared machine noise
    only ever adds time. (Single-threaded work: CPU time equals wall time when idle.)"""
    times: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(repeat):
        for name, fn in variants.items():
            t0 = time.process_time()
            fn()
            times[name].append(time.process_time() - t0)
    return {name: min(ts) for name, ts in times.items()}


# --- offline -------------------------------------------------------------------------------


def offline(args: argparse.Namespace) -> None:
    from mitmproxy.io import FlowReader

    from corsflow.analysis import Analysis
    from corsflow.errors import Diagnostics
    from corsflow.ingest.mitm import read_flows

    path = _flow_file(args)
    size = os.path.getsize(path) / 1e6

    def flowreader() -> int:
        with open(path, "rb") as f:
            return sum(1 for _ in FlowReader(f).stream())

    def ingest() -> int:
        return sum(1 for _ in read_flows(path, Diagnostics()))

    def analysis(keep: bool = True) -> int:
        a = Analysis(engine="chromium", keep_exchanges=keep)
        for exchange in read_flows(path, Diagnostics()):
            a.feed(exchange)
        a.flush()
        return len(a.report().exchanges) if keep else a.settled

    def findings_only() -> int:
        return analysis(keep=False)

    flows = flowreader()
    verdicts = analysis()
    variants = {
        "flowreader": flowreader, "ingest": ingest,
        "analysis": analysis, "findings_only": findings_only,
    }  # fmt: skip
    best = _interleaved(variants, args.repeat)
    base, conv, full = best["flowreader"], best["ingest"], best["analysis"]
    lean = best["findings_only"]
    print(f"flow file: {flows} flows, {size:.1f} MB; best CPU seconds of {args.repeat} rounds")
    print(f"  mitmproxy FlowReader alone      {base:7.3f} s")
    print(f"  read_flows (exchanges)          {conv:7.3f} s  {100 * (conv / base - 1):+6.1f} %")
    print(
        f"  read_flows + analysis + report  {full:7.3f} s  {100 * (full / base - 1):+6.1f} %"
        f"  ({verdicts} verdicts; target <= -40 %)"
    )
    print(
        f"  ... keeping findings only       {lean:7.3f} s  {100 * (lean / base - 1):+6.1f} %"
        "  (Analysis(keep_exchanges=False), as the live addon runs it)"
    )


def _flow_file(args: argparse.Namespace) -> str:
    """The flow file to read: ``--file``, or one of ``--flows`` flows from gen_mitm.py, kept
    where ``benchmarks/bench.py`` keeps its workloads (written there when missing)."""
    if args.file is not None:
        return str(args.file)
    path = WORKDIR / f"mitm-{args.flows}.flows"
    if not path.is_file():
        if not GEN_MITM.is_file():
            sys.exit(f"{GEN_MITM} not found; pass --file FLOWS")
        WORKDIR.mkdir(parents=True, exist_ok=True)
        part = path.with_suffix(".part")
        subprocess.run([sys.executable, str(GEN_MITM), str(args.flows), str(part)],
                       check=True, cwd=GEN_MITM.parent)
        part.replace(path)
    return str(path)


# --- proxy ---------------------------------------------------------------------------------


def proxy(args: argparse.Namespace) -> None:
    import asyncio
    import gc

    from mitmproxy.io import FlowReader
    from mitmproxy.test import taddons

    from corsflow.addon import CorsflowAddon
    from corsflow.ingest.mitm import skip_reason

    with open(_flow_file(args), "rb") as f:
        flows = [fl for fl in FlowReader(f).stream() if fl.type == "http"]
    analysed = sum(skip_reason(fl) is None for fl in flows)

    async def one_run(beside: bool) -> float:
        addon = CorsflowAddon()
        with taddons.context(addon) as tctx:
            tctx.configure(addon, corsflow_analysis_process=beside)
            addon.running()
            if beside and addon._process is None:
                sys.exit("no analysis process here (one usable core?)")
            for fl in flows:  # as new flows: not numbered, marked or commented yet
                fl.metadata.clear()
                fl.marked = fl.comment = ""
            await asyncio.sleep(0.2)  # the analysis process has started
            t0 = time.process_time()
            for n, fl in enumerate(flows):
                addon.requestheaders(fl)
                addon.response(fl)
                if n % 64 == 63:
                    await asyncio.sleep(0)  # the loop reads the results that came
            # The rest is settled once the proxy is idle (the addon's own timer), and its
            # results handed back: waiting costs no CPU.
            deadline = time.monotonic() + 60
            while addon.settled < analysed and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            spent = time.process_time() - t0
            if addon.settled < analysed:
                sys.exit(f"only {addon.settled} of {analysed} flows settled")
            addon.done()
        gc.collect()
        return spent

    async def rounds() -> dict[str, list[float]]:
        spent: dict[str, list[float]] = {"beside": [], "here": []}
        for _ in range(args.repeat):
            for name, runs in spent.items():
                runs.append(await one_run(name == "beside"))
        return spent

    spent = asyncio.run(rounds())
    print(f"proxy: {len(flows)} flows through the addon's hooks; the proxy process's CPU per "
          f"flow, best of {args.repeat} rounds")
    per_flow = {name: min(runs) / len(flows) * 1e6 for name, runs in spent.items()}
    print(f"  analysis in its own process (default)  {per_flow['beside']:7.1f} us")
    print(f"  analysis in the proxy's process        {per_flow['here']:7.1f} us")


# --- live ----------------------------------------------------------------------------------


class _Api(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go in two writes

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _reply(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        origin = self.headers.get("Origin", "")
        body = b'{"ok":true}'
        self.send_response(204 if self.command == "OPTIONS" else 200)
        self.send_header("Access-Control-Allow-Origin", origin)
        if self.command == "OPTIONS":
            self.send_header("Access-Control-Allow-Methods", "PUT, DELETE")
            self.send_header("Access-Control-Allow-Headers", "X-Custom, Content-Type")
            self.send_header("Access-Control-Max-Age", "600")
            body = b""
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_PUT = do_OPTIONS = _reply


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start_mitmdump(port: int, extra: list[str], confdir: str) -> subprocess.Popen[bytes]:
    mitmdump = Path(sys.executable).parent / "mitmdump"
    proc = subprocess.Popen(
        [str(mitmdump), "--listen-host", "127.0.0.1", "--listen-port", str(port),
         "--set", f"confdir={confdir}", "--set", "flow_detail=0", "-q", *extra],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        env=dict(os.environ, PYTHONPATH=str(REPO_ROOT)),
    )  # fmt: skip
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return proc
        except OSError:
            time.sleep(0.05)
    proc.kill()
    sys.exit("mitmdump did not start")


def _load(
    proxy_port: int, api: str, origin: str, requests: int, clients: int, cors_every: int
) -> float:
    """Send about ``requests`` requests through the proxy from ``clients`` keep-alive
    clients; return requests per second. Every ``cors_every``-th step is cross-origin, as a
    browser sends it: alternately a PUT to a distinct URL after its own preflight (Chromium
    caches preflights per URL) and a simple GET with Origin. The other steps are plain GETs
    without Origin (documents, scripts, images of the page's own origin)."""
    per_client = requests // clients
    errors: list[BaseException] = []
    sent = [0] * clients

    def client(k: int) -> None:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", proxy_port, timeout=30)
            for i in range(per_client):
                url = f"{api}/items/{k}-{i}"
                if i % cors_every == 0 and (i // cors_every) % 2 == 0:
                    conn.request("OPTIONS", url, headers={
                        "Origin": origin, "Access-Control-Request-Method": "PUT",
                        "Access-Control-Request-Headers": "x-custom"})  # fmt: skip
                    conn.getresponse().read()
                    conn.request("PUT", url, body=b"{}", headers={
                        "Origin": origin, "X-Custom": "1", "Content-Type": "text/plain"})  # fmt: skip
                    sent[k] += 1
                elif i % cors_every == 0:
                    conn.request("GET", url, headers={"Origin": origin})
                else:
                    conn.request("GET", url)
                conn.getresponse().read()
                sent[k] += 1
            conn.close()
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - t0
    if errors:
        raise errors[0]
    return sum(sent) / elapsed


def _cpu_seconds(pid: int) -> tuple[float, float] | None:
    """CPU time (user + system) a process and its live children (the addon's analysis
    process) have used, from /proc; None elsewhere."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    own = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    children = 0.0
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        for child in task.read_text().split():
            children += sum(_cpu_seconds(int(child)) or (0.0, 0.0))
    return own, children


def live(args: argparse.Namespace) -> None:
    from corsflow.addon import addon_path

    server = ThreadingHTTPServer(("127.0.0.1", 0), _Api)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    api = f"http://127.0.0.1:{server.server_address[1]}"
    origin = "http://127.0.0.1:1"
    names = ("mitmdump", "with an addon doing nothing", "with corsflow",
             "with corsflow, in one process")
    rates: dict[str, list[float]] = {name: [] for name in names}
    cpu: dict[str, list[tuple[float, ...]]] = {name: [] for name in names}
    with tempfile.TemporaryDirectory(prefix="corsflow-bench-") as confdir:
        # The floor any script addon pays: mitmproxy calls into it for every event.
        nothing = Path(confdir) / "nothing.py"
        nothing.write_text("class Nothing:\n    def response(self, flow):\n        pass\n\n"
                           "addons = [Nothing()]\n")
        extras = ([], ["-s", str(nothing)], ["-s", addon_path(), *args.addon_args],
                  ["-s", addon_path(), "--set", "corsflow_analysis_process=false",
                   *args.addon_args])
        for _ in range(args.repeat):
            for name, extra in zip(names, extras):
                port = _free_port()
                proc = _start_mitmdump(port, extra, confdir)
                try:
                    load = (port, api, origin)
                    _load(*load, min(200, args.requests), args.clients, args.cors_every)  # warm
                    before = _cpu_seconds(proc.pid)
                    rates[name].append(_load(*load, args.requests, args.clients, args.cors_every))
                    after = _cpu_seconds(proc.pid)
                    if before is not None and after is not None:
                        cpu[name].append(tuple((a - b) / args.requests * 1e6
                                               for a, b in zip(after, before)))
                finally:
                    proc.send_signal(signal.SIGINT)
                    proc.wait(30)
    server.shutdown()
    print(
        f"live: {args.requests} requests per run, {args.clients} clients, "
        f"1 in {args.cors_every} cross-origin; median of {args.repeat} runs each, and of "
        "the per-round ratios to mitmdump alone"
    )
    c0 = statistics.median(sum(c) for c in cpu[names[0]]) if cpu[names[0]] else None
    for name in names:
        rate = statistics.median(rates[name])
        # Each round runs every variant in turn: the ratio within a round is not moved by
        # the machine's speed drifting between rounds (a do-nothing addon measured 85 % to
        # 100 % of mitmdump's throughput by the ratio of the medians).
        ratios = [r / b for r, b in zip(rates[name], rates[names[0]])]
        ratio = statistics.median(ratios)
        line = f"  {name:30} {rate:6.0f} req/s: {100 * ratio:5.1f} % of mitmdump's"
        if name != names[0]:
            line += f" (rounds {100 * min(ratios):.0f}-{100 * max(ratios):.0f} %)"
        if c0 is not None and cpu[name]:
            # CPU per request, the addon's analysis process included: the steadier measure
            # of what the addon costs on a machine shared with other work.
            c = statistics.median(sum(x) for x in cpu[name])
            own = statistics.median(x[0] for x in cpu[name])
            beside = statistics.median(x[1] for x in cpu[name])
            line += (f"; CPU {c:5.0f} us/req ({100 * c / c0:5.1f} %): proxy {own:5.0f}, "
                     f"analysis process {beside:4.0f}")
        print(line)
    print("  (target: with corsflow >= 95 % of mitmdump's throughput)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="what", required=True)
    off = sub.add_parser("offline")
    off.add_argument("--flows", type=int, default=10000)
    off.add_argument("--file", help="an existing flow file instead of a generated one")
    off.add_argument("--repeat", type=int, default=5)
    px = sub.add_parser("proxy")
    px.add_argument("--flows", type=int, default=10000)
    px.add_argument("--file", help="an existing flow file instead of a generated one")
    px.add_argument("--repeat", type=int, default=3)
    on = sub.add_parser("live")
    on.add_argument("--requests", type=int, default=3000)
    on.add_argument("--clients", type=int, default=4)
    on.add_argument("--repeat", type=int, default=5)
    on.add_argument(
        "--addon-args", nargs="*", default=[],
        help="more mitmdump arguments for the run with the addon, e.g. "
        "--set corsflow_keep_exchanges=false",
    )  # fmt: skip
    on.add_argument(
        "--cors-every", type=int, default=1,
        help="1: every request cross-origin (worst case); 5: one in five, like a page load",
    )  # fmt: skip
    args = parser.parse_args()
    {"offline": offline, "proxy": proxy, "live": live}[args.what](args)


if __name__ == "__main__":
    main()
