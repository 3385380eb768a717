"""The two-origin scenario server over HTTPS, HTTP/2 and HTTP/3 (hypercorn), for NetLog truth.

The same route table and request log as :mod:`.server`, served by a real HTTP/2 server:
the page from ``https://localhost:P1``, the API from ``https://127.0.0.1:P2``, both bound to
127.0.0.1, with a throwaway self-signed certificate made for the run (the browser is told to
accept it). ALPN offers ``h2`` first, so Chromium speaks HTTP/2, which no pcap could read;
with ``quic=True`` the API also answers HTTP/3 on the same port over UDP (aioquic).
"""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import socket
import threading
import time
from pathlib import Path
from typing import Any, Self
from urllib.parse import urlsplit

from .server import PAGE_HTML, LoggedRequest, Reply, RequestLog, Route, _fill


def make_certificate(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for localhost and 127.0.0.1 (cert, key), valid a day."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "corsflow test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([
            x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    return cert_path, key_path


def _tolerate_repeated_stop_sending() -> None:
    """A STOP_SENDING frame that reaches a stream already reset needs nothing more (RFC 9000,
    section 3.5: the RESET_STREAM was sent). aioquic 1.2 asserts instead ("cannot call
    reset() more than once"), and the assertion ends hypercorn's whole QUIC server task, so
    the rest of the session loses its server: seen once in a full run, where the fetches
    blocked at their preflight then disagreed with Chromium."""
    from aioquic.quic.stream import QuicStreamSender

    reset = QuicStreamSender.reset
    if getattr(reset, "tolerant", False):
        return

    def reset_once(self: QuicStreamSender, error_code: int) -> None:
        if self._reset_error_code is None:
            reset(self, error_code)

    reset_once.tolerant = True  # type: ignore[attr-defined]
    QuicStreamSender.reset = reset_once  # type: ignore[method-assign]


def _spki_hash(cert_path: Path) -> str:
    """base64(SHA-256(SubjectPublicKeyInfo)): how Chromium names a key to trust."""
    import base64
    import hashlib

    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    spki = cert.public_key().public_bytes(serialization.Encoding.DER,
                                          serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(hashlib.sha256(spki).digest()).decode()


class TwoOriginsH2:
    """The page and API servers over HTTPS/HTTP/2; a context manager like ``TwoOrigins``."""

    def __init__(self, routes: dict[str, Route], workdir: Path, quic: bool = False) -> None:
        self.log = RequestLog()
        self.routes = dict(routes)
        self._cert, self._key = make_certificate(workdir)
        self.spki = _spki_hash(self._cert)
        self._sockets = []
        for _ in range(2):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("127.0.0.1", 0))
            s.listen(64)
            s.set_inheritable(True)
            self._sockets.append(s)
        self.page_port = self._sockets[0].getsockname()[1]
        self.api_port = self._sockets[1].getsockname()[1]
        self.page_origin = f"https://localhost:{self.page_port}"
        self.api_origin = f"https://127.0.0.1:{self.api_port}"
        self.quic = quic
        self.chromium_args: tuple[str, ...] = (
            "--ignore-certificate-errors", f"--ignore-certificate-errors-spki-list={self.spki}")
        """What the browser needs for this server: accept the run's own certificate (QUIC
        honours only the list of public-key hashes)."""
        if quic:
            # HTTP/3 for the API origin: the same port number over UDP, which Chromium is
            # told to use from the first request (no Alt-Svc round trip).
            self.chromium_args += ("--enable-quic",
                                   f"--origin-to-force-quic-on=127.0.0.1:{self.api_port}")
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread: threading.Thread | None = None
        self._started = threading.Event()
        self._error: Exception | None = None

    async def _app(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        while True:
            message = await receive()
            if not message.get("more_body"):
                break
        headers = tuple((k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"])
        method = scope["method"]
        query = scope.get("query_string", b"").decode("latin-1")
        target = scope["raw_path"].decode("latin-1") if scope.get("raw_path") else scope["path"]
        if query and "?" not in target:
            target += "?" + query
        role = "page" if scope["server"][1] == self.page_port else "api"
        if role == "page":
            reply = Reply(200, (("Content-Type", "text/html; charset=utf-8"),), PAGE_HTML)
        else:
            route = self.routes.get(urlsplit(target).path, Route())
            reply = route.preflight if method == "OPTIONS" else route.actual

        def get(name: str) -> str:
            return next((v for n, v in headers if n.lower() == name), "")

        values = {"origin": self.page_origin, "api": self.api_origin,
                  "api_host": self.api_origin.split("//", 1)[1], "req_origin": get("origin"),
                  "acrm": get("access-control-request-method"),
                  "acrh": get("access-control-request-headers")}
        self.log.add(LoggedRequest(time.time(), role, method, target, headers, reply.status))
        out = [(n.lower().encode("latin-1"), _fill(v, values).encode("latin-1"))
               for n, v in reply.headers]
        names = {n for n, _ in out}
        if b"cache-control" not in names:
            out.append((b"cache-control", b"no-store"))
        body = b"" if method == "HEAD" else reply.body
        if body and b"content-type" not in names:
            out.append((b"content-type", b"text/plain; charset=utf-8"))
        out.append((b"content-length", str(len(body)).encode()))
        await send({"type": "http.response.start", "status": reply.status, "headers": out})
        await send({"type": "http.response.body", "body": body})

    def _run(self) -> None:
        from hypercorn.asyncio import serve
        from hypercorn.config import Config

        config = Config()
        config.bind = [f"fd://{s.fileno()}" for s in self._sockets]
        if self.quic:
            _tolerate_repeated_stop_sending()
            config.quic_bind = [f"127.0.0.1:{self.api_port}"]
        config.certfile, config.keyfile = str(self._cert), str(self._key)
        config.alpn_protocols = ["h2", "http/1.1"]
        config.accesslog = None
        config.errorlog = None
        config.graceful_timeout = 1.0
        loop = asyncio.new_event_loop()
        self._loop = loop
        self._stop = asyncio.Event()

        async def main() -> None:
            assert self._stop is not None
            self._started.set()
            await serve(self._app, config, shutdown_trigger=self._stop.wait)  # type: ignore[arg-type]

        try:
            loop.run_until_complete(main())
        except (OSError, RuntimeError, ValueError) as e:  # reported by start()
            self._error = e
            self._started.set()
        finally:
            loop.close()

    def start(self) -> Self:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        self._started.wait(10)
        if self._error is not None:
            raise RuntimeError(f"hypercorn did not start: {self._error}")
        # Serving starts once the sockets are handed over: wait until one accepts TLS.
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.api_port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.05)
        return self

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(timeout=10)
        for s in self._sockets:
            try:
                s.close()
            except OSError:
                pass  # hypercorn closed the descriptor it was handed

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
