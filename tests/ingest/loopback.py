"""Record real HTTP/1.1 traffic on the loopback interface with tcpdump.

A small CORS-aware server (stdlib ``ThreadingHTTPServer`` on 127.0.0.1) answers real
clients: ``http.client`` over keep-alive connections (preflights, PUT, lowercase ``patch``,
HEAD, a 304, a chunked response, ``Expect: 100-continue``), ``urllib`` (one request per
connection) and a raw socket that pipelines three requests in one write. The server logs
every request it answered; that log is the truth the capture is checked against.

Run as a script to re-record the sample kept in the repository::

    python -m tests.ingest.loopback samples/loopback-cors.pcap
"""

from __future__ import annotations

import http.client
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ORIGIN = "http://app.localhost:8080"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, and 100 Continue for Expect
    log: list[tuple[str, str, int]]

    def log_message(self, format: str, *args: object) -> None:
        pass  # quiet: the test reads the log below instead

    def _cors(self) -> None:
        origin = self.headers.get("Origin")
        if origin:
            self.send_header("Access-Control-Allow-Origin", origin)
            self.send_header("Vary", "Origin")

    def _reply(self, status: int, body: bytes = b"", extra: dict[str, str] | None = None,
               chunked: bool = False) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        self.server.log.append((self.command, self.path, status))  # type: ignore[attr-defined]
        self.send_response(status)
        self._cors()
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for piece in (body[:5], body[5:]):
                self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            self.wfile.write(b"0\r\nX-Trailer: done\r\n\r\n")
            return
        if status not in (204, 304):
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD" and status not in (204, 304):
            self.wfile.write(body)

    def do_OPTIONS(self) -> None:
        extra = {}
        if self.headers.get("Access-Control-Request-Method"):
            extra = {
                "Access-Control-Allow-Methods": "GET, PUT, PATCH, patch",
                "Access-Control-Allow-Headers": "content-type, x-token",
                "Access-Control-Max-Age": "600",
            }
        self._reply(204, extra=extra)

    def do_GET(self) -> None:
        if self.path.startswith("/cached"):
            self._reply(304, extra={"ETag": '"v1"'})
        elif self.path.startswith("/stream"):
            self._reply(200, b'{"chunked": true}', {"Content-Type": "application/json"}, True)
        else:
            self._reply(200, b'{"ok": true}' * 20, {"Content-Type": "application/json"})

    def do_HEAD(self) -> None:
        self._reply(200, b"x" * 100)

    def do_PUT(self) -> None:
        self._reply(200, b'{"put": 1}')

    def do_POST(self) -> None:
        self._reply(201, b'{"created": 1}')

    def do_patch(self) -> None:
        self._reply(200, b'{"patched": 1}')

    do_PATCH = do_patch


def run_clients(port: int) -> None:
    """The traffic: a few preflighted and simple cross-origin requests, and odd framings."""
    json_headers = {"Origin": ORIGIN, "Content-Type": "application/json"}
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    for method, path, body in (("PUT", "/api/items/1", b'{"a": 1}'),
                               ("PATCH", "/api/items/2", b'{"b": 2}')):
        conn.request("OPTIONS", path, headers={
            "Origin": ORIGIN, "Access-Control-Request-Method": method,
            "Access-Control-Request-Headers": "content-type"})
        conn.getresponse().read()
        conn.request(method, path, body=body, headers=json_headers)
        conn.getresponse().read()
    conn.request("GET", "/api/simple", headers={"Origin": ORIGIN})
    conn.getresponse().read()
    conn.request("HEAD", "/api/head", headers={"Origin": ORIGIN})
    conn.getresponse().read()
    conn.request("GET", "/cached", headers={"If-None-Match": '"v1"'})
    conn.getresponse().read()
    conn.request("GET", "/stream", headers={"Origin": ORIGIN})
    conn.getresponse().read()
    conn.request("POST", "/api/upload", body=b"x" * 3000,
                 headers={"Origin": ORIGIN, "Expect": "100-continue", "Content-Type": "text/plain"})
    conn.getresponse().read()
    conn.close()

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/page?q=1", timeout=10) as r:
        r.read()

    # Three requests in one write (HTTP/1.1 pipelining), one of them a lowercase method.
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(
            b"GET /p/1 HTTP/1.1\r\nHost: localhost\r\nOrigin: " + ORIGIN.encode() + b"\r\n\r\n"
            b"patch /p/2 HTTP/1.1\r\nHost: localhost\r\nContent-Length: 2\r\n\r\n{}"
            b"GET /p/3 HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        while s.recv(65536):
            pass


def capture_command(tool: str, out: Path, port: int) -> tuple[list[str], str]:
    """The command line capturing the test server's port, and the word its stderr prints
    once it captures."""
    path = shutil.which(tool)
    if path is None:
        raise RuntimeError(f"{tool} is not installed")
    if tool == "tcpdump":
        # --immediate-mode: with TPACKET_V3, packets otherwise wait in the ring buffer and a
        # short capture stopped by SIGINT ends up empty. -Z root: as root, tcpdump would
        # switch to its own user and could not write into a private directory.
        user = ["-Z", "root"] if os.geteuid() == 0 else []
        return [path, "-i", "lo", "--immediate-mode", "-U", "-s", "0", *user, "-w", str(out),
                f"tcp port {port}"], "listening"
    # dumpcap on two interfaces: a pcapng with two interface blocks of different link types
    # (Ethernet for lo, Linux cooked for any), where every packet is seen twice.
    # (A capture filter before the first -i applies to every interface.)
    return [path, "-q", "-f", f"tcp port {port}", "-i", "lo", "-i", "any", "-w", str(out)], "Capturing"


def _wait_until_capturing(out: Path, port: int, tool: str) -> None:
    """Capture tools announce themselves a little before packets really reach the file:
    open and close bare TCP connections (no HTTP in them) until the file grows."""
    if tool == "dumpcap":
        time.sleep(1.0)  # "Capturing on" comes before every interface is open
    deadline = time.monotonic() + 10
    start = out.stat().st_size if out.exists() else 0
    while time.monotonic() < deadline:
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
        time.sleep(0.1)
        if out.exists() and out.stat().st_size > start:
            return
    raise RuntimeError(f"{tool} writes no packets to {out}")


def record(out: Path, clients: Callable[[int], None] = run_clients,
           tool: str = "tcpdump") -> list[tuple[str, str, int]]:
    """Serve, capture with ``tool`` into ``out`` while ``clients(port)`` runs, stop.

    Returns the server's log of (method, path, status). Raises RuntimeError when the tool is
    missing or cannot capture.
    """
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.log = []  # type: ignore[attr-defined]
    port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        cmd, ready = capture_command(tool, out, port)
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        try:
            assert proc.stderr is not None
            line = proc.stderr.readline()  # printed once the capture runs
            if ready not in line:
                proc.wait(timeout=10)
                raise RuntimeError(f"{tool} did not start: {line.strip()}")
            _wait_until_capturing(out, port, tool)
            clients(port)
            time.sleep(0.3)  # let the last FIN/ACKs reach the capture
        finally:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    finally:
        server.shutdown()
        server.server_close()
    return list(server.log)  # type: ignore[attr-defined]


if __name__ == "__main__":
    target = Path(sys.argv[1] if len(sys.argv) > 1 else "samples/loopback-cors.pcap")
    log = record(target)
    print(f"{target}: {target.stat().st_size} bytes, {len(log)} requests answered")
