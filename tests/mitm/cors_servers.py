"""Two local HTTP origins for the live tests: a page origin (A) and an API origin (B).

Both run the same handler; the request path chooses the CORS answer, so a test says what
it wants in the URL:

- ``/good``: preflight allows the origin, PUT and ``X-Custom``, Max-Age 600; the actual
  response allows the origin.
- ``/acao-mismatch``: preflight answers with another origin in Access-Control-Allow-Origin.
- ``/no-acao-actual``: good preflight; the actual response has no Access-Control-Allow-Origin.
- ``/max-age-86400``: good preflight with Access-Control-Max-Age 86400 (above Chromium's cap).
- ``/no-max-age``: good preflight without Access-Control-Max-Age.
- ``/simple-no-acao``: a plain response without CORS headers.
- ``/slow``: like ``/good``, but the actual response takes ``SLOW_SECONDS``.
- ``/page.html``: the page the browser test loads (its script comes from the query).

Every request is recorded (method, path, headers) so a test can check what reached the
server.
"""

from __future__ import annotations

import ipaddress
import ssl
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

GOOD_PREFLIGHT_PATHS = ("/good", "/no-acao-actual", "/max-age-86400", "/no-max-age", "/slow")
SLOW_SECONDS = 2.5


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]


@dataclass
class Origins:
    a: ThreadingHTTPServer
    b: ThreadingHTTPServer
    seen: list[Seen] = field(default_factory=list)
    scheme: str = "http"

    @property
    def origin_a(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.a.server_address[1]}"

    @property
    def origin_b(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.b.server_address[1]}"

    def close(self) -> None:
        for server in (self.a, self.b):
            server.shutdown()
            server.server_close()


def _handler(record: list[Seen], lock: threading.Lock) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # headers and body go in two writes

        def log_message(self, format: str, *args: object) -> None:
            pass  # keep test output clean

        def _record(self) -> None:
            with lock:
                record.append(Seen(self.command, self.path, dict(self.headers.items())))

        def _send(self, status: int, headers: list[tuple[str, str]], body: bytes = b"") -> None:
            self.send_response(status)
            for name, value in headers:
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_OPTIONS(self) -> None:
            self._record()
            self._drain()
            path = urlsplit(self.path).path
            origin = self.headers.get("Origin", "")
            allow = [
                ("Access-Control-Allow-Methods", "GET, PUT, POST, DELETE"),
                ("Access-Control-Allow-Headers", "X-Custom, Content-Type"),
            ]
            if path == "/acao-mismatch":
                self._send(204, [("Access-Control-Allow-Origin", "http://other.example"), *allow])
            elif path == "/max-age-86400":
                self._send(
                    204,
                    [
                        ("Access-Control-Allow-Origin", origin),
                        *allow,
                        ("Access-Control-Max-Age", "86400"),
                    ],
                )
            elif path == "/no-max-age":
                self._send(204, [("Access-Control-Allow-Origin", origin), *allow])
            elif path in GOOD_PREFLIGHT_PATHS:
                self._send(
                    204,
                    [
                        ("Access-Control-Allow-Origin", origin),
                        *allow,
                        ("Access-Control-Max-Age", "600"),
                    ],
                )
            else:
                self._send(404, [])

        def _drain(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            if length:
                self.rfile.read(length)

        def _actual(self) -> None:
            self._record()
            self._drain()
            split = urlsplit(self.path)
            origin = self.headers.get("Origin", "")
            body = b'{"ok": true}'
            json_type = ("Content-Type", "application/json")
            if split.path == "/slow":
                time.sleep(SLOW_SECONDS)
            if split.path == "/page.html":
                script = parse_qs(split.query).get("script", [""])[0]
                page = f"<!doctype html><title>corsflow</title><script>{script}</script>"
                self._send(200, [("Content-Type", "text/html; charset=utf-8")], page.encode())
            elif split.path in ("/no-acao-actual", "/simple-no-acao"):
                self._send(200, [json_type], body)
            elif split.path in GOOD_PREFLIGHT_PATHS or split.path == "/acao-mismatch":
                self._send(200, [json_type, ("Access-Control-Allow-Origin", origin)], body)
            elif split.path == "/favicon.ico":
                self._send(404, [])
            else:
                self._send(200, [("Content-Type", "text/plain")], b"plain")

        do_GET = do_PUT = do_POST = do_DELETE = _actual

    return Handler


def start_origins(tls_dir: Path | None = None) -> Origins:
    """Two origins on 127.0.0.1; over HTTPS with a throwaway certificate written into
    ``tls_dir`` when one is given."""
    record: list[Seen] = []
    lock = threading.Lock()
    handler = _handler(record, lock)
    context = _tls_context(tls_dir) if tls_dir is not None else None
    servers = []
    for _ in range(2):
        server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        if context is not None:
            server.socket = context.wrap_socket(server.socket, server_side=True)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
    return Origins(servers[0], servers[1], record, "https" if context else "http")


def _tls_context(directory: Path) -> ssl.SSLContext:
    """A self-signed certificate for 127.0.0.1, made for this run only."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = directory / "server.pem", directory / "server.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_path, key_path)
    return context
