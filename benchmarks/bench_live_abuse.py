"""The live addon under hostile variety: does its memory stay flat? Run by hand:

    python benchmarks/bench_live_abuse.py [--requests 100000] [--clients 4] [--only corsflow]

A local API behind mitmdump (127.0.0.1 only), with and without the addon; keep-alive clients
send what bounds nothing by accident: every request from a new Origin to a new URL, a third
of them preflights that no request ever follows, some with a body of ``--body-kb``. The
proxy's resident memory is read from /proc while the load runs; the table gives
requests per second and the RSS at the start, the middle and the end of the load (the
growth over the second half is what a leak would show). Nothing is asserted.
"""

from __future__ import annotations

import argparse
import http.client
import signal
import subprocess
import tempfile
import threading
import time
from http.server import ThreadingHTTPServer
from pathlib import Path

from bench_mitm import _Api, _free_port, _start_mitmdump


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def hostile_load(port: int, api: str, requests: int, clients: int, body: bytes,
                 samples: list[float], pid: int) -> float:
    per_client = requests // clients
    done = [0] * clients

    def client(k: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        for i in range(per_client):
            n = k * per_client + i
            origin = f"http://o{n}.example"
            url = f"{api}/v{n % 7}/items/{n}?q={n}"
            if n % 3 == 0:  # a preflight whose request never comes
                conn.request("OPTIONS", url, headers={
                    "Origin": origin, "Access-Control-Request-Method": "PUT",
                    "Access-Control-Request-Headers": f"x-h{n % 50}"})  # fmt: skip
            elif n % 3 == 1:
                conn.request("PUT", url, body=body, headers={
                    "Origin": origin, "X-Custom": "1", "Content-Type": "application/json"})  # fmt: skip
            else:
                conn.request("GET", url, headers={"Origin": origin})
            conn.getresponse().read()
            done[k] += 1
        conn.close()

    threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    marks = {requests // 10: False, requests // 2: False}
    while any(t.is_alive() for t in threads):
        total = sum(done)
        for mark, taken in marks.items():
            if not taken and total >= mark:
                samples.append(rss_mb(pid))
                marks[mark] = True
        time.sleep(0.05)
    elapsed = time.perf_counter() - t0
    samples.append(rss_mb(pid))
    return sum(done) / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=100_000)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--body-kb", type=int, default=16)
    parser.add_argument("--only", choices=("mitmdump", "corsflow"),
                        help="run one proxy only (default: both, in turn)")
    args = parser.parse_args()
    from corsflow.addon import addon_path

    server = ThreadingHTTPServer(("127.0.0.1", 0), _Api)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    api = f"http://127.0.0.1:{server.server_address[1]}"
    body = b"x" * (args.body_kb * 1024)
    print(f"{args.requests} requests, {args.clients} clients, every one from a new origin to "
          f"a new URL, a third of them lone preflights, PUT bodies of {args.body_kb} kB")
    print("| proxy | req/s | RSS MB at 10 % | at 50 % | at 100 % | growth, second half "
          "| exit after Ctrl-C |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    with tempfile.TemporaryDirectory(prefix="corsflow-bench-") as confdir:
        for name, extra in (("mitmdump", []), ("mitmdump + corsflow", ["-s", addon_path()])):
            if args.only and args.only not in name.split(" + ")[-1]:
                continue
            port = _free_port()
            proc = _start_mitmdump(port, extra, confdir)
            samples: list[float] = []
            try:
                rate = hostile_load(port, api, args.requests, args.clients, body, samples,
                                    proc.pid)
            finally:
                stopping = time.perf_counter()
                proc.send_signal(signal.SIGINT)
                try:
                    proc.wait(600)
                    exited = f"{time.perf_counter() - stopping:.1f} s"
                except subprocess.TimeoutExpired:
                    proc.kill()
                    exited = "over 600 s (killed)"
            first, middle, last = (samples + [float("nan")] * 3)[:3]
            print(f"| {name} | {rate:.0f} | {first:.0f} | {middle:.0f} | {last:.0f} | "
                  f"{last - middle:+.0f} | {exited} |", flush=True)
    server.shutdown()


if __name__ == "__main__":
    main()
