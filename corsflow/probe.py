"""``corsflow probe``: an opt-in active check of a server the user owns.

It sends exactly what the user asks, to the one URL named, once per ``--origin`` given:
a request (or, with ``--preflight``, an OPTIONS preflight) carrying that Origin, no cookies,
no credentials, no redirects followed. The answers are read back as exchanges, so the same
passive review that reads captures (:mod:`corsflow.findings.security`) judges them.
Nothing here runs unless the command is typed; the library never calls it.
"""

from __future__ import annotations

import http.client
import time
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from .analysis import Report, analyze_exchanges
from .errors import UsageError
from .model import Exchange, Headers, Response, SourceRef

TIMEOUT = 10.0

SHOWN = ("access-control-allow-origin", "access-control-allow-credentials", "vary",
         "access-control-allow-methods", "access-control-allow-headers",
         "access-control-expose-headers", "access-control-allow-private-network")


@dataclass(frozen=True, slots=True)
class ProbeRequest:
    """What to send, besides the Origin."""

    url: str
    method: str = "GET"
    preflight: str | None = None
    """With a method name: send an OPTIONS preflight asking for it instead of the request."""
    request_headers: tuple[str, ...] = ()
    """Header names the preflight asks for (Access-Control-Request-Headers)."""


@dataclass(frozen=True, slots=True)
class ProbeAnswer:
    origin: str
    exchange: Exchange | None
    error: str | None = None


def _target(url: str) -> tuple[str, str, int | None, str]:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError(f"{url}: probe needs an http:// or https:// URL")
    if parts.username or parts.password:
        raise UsageError(f"{url}: no credentials in the URL (probe sends none)")
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return parts.scheme, parts.hostname, parts.port, path


def send(req: ProbeRequest, origin: str, n: int = 0) -> ProbeAnswer:
    """One request to ``req.url`` with ``Origin: origin``; the answer as an exchange."""
    scheme, host, port, path = _target(req.url)
    conn_cls = http.client.HTTPSConnection if scheme == "https" else http.client.HTTPConnection
    conn = conn_cls(host, port, timeout=TIMEOUT)
    headers = {"Origin": origin, "Accept": "*/*", "User-Agent": "corsflow-probe"}
    method = req.method
    if req.preflight is not None:
        method = "OPTIONS"
        headers["Access-Control-Request-Method"] = req.preflight
        if req.request_headers:
            headers["Access-Control-Request-Headers"] = ",".join(
                sorted(h.lower() for h in req.request_headers))
    started = time.time()
    try:
        conn.request(method, path, headers=headers)
        resp = conn.getresponse()
        resp.read(1 << 20)
        response = Response(resp.status, Headers.of(resp.getheaders()), resp.reason)
    except (OSError, http.client.HTTPException) as e:
        return ProbeAnswer(origin, None, f"{type(e).__name__}: {e}")
    finally:
        conn.close()
    ex = Exchange(f"probe{n}", method, req.url, Headers.of(headers.items()), started,
                  SourceRef("probe", "har", n, f"probe {n} (Origin {origin})"), response)
    return ProbeAnswer(origin, ex)


def from_capture(url: str, path: str, exchange_id: str) -> ProbeRequest:
    """The request to replay: the method (or, for a preflight, what it asked for) of one
    captured exchange, sent to ``url``, which must be on the captured exchange's origin: a
    replay never goes to a host the user did not name."""
    from .analysis import analyze_paths
    from .urls import url_origin

    report = analyze_paths([path])
    v = report.get(exchange_id)
    if v is None:
        raise UsageError(f"{path}: no exchange with id {exchange_id!r}")
    ex = v.exchange
    if url_origin(ex.url) != url_origin(url):
        raise UsageError(f"{exchange_id} went to {url_origin(ex.url)}, not to {url_origin(url)}"
                         ": name the URL on that server")
    if v.role == "preflight":
        asked = ex.request_headers.get("access-control-request-method") or "GET"
        names = ex.request_headers.get("access-control-request-headers") or ""
        return ProbeRequest(url, preflight=asked.strip(), request_headers=tuple(
            n.strip() for n in names.split(",") if n.strip()))
    return ProbeRequest(url, method=ex.method)


def probe(req: ProbeRequest, origins: Sequence[str]) -> tuple[list[ProbeAnswer], Report]:
    """Send once per origin, in order; the answers and the review of them."""
    if not origins:
        raise UsageError("name at least one --origin to send")
    answers = [send(req, o, n) for n, o in enumerate(origins)]
    report = analyze_exchanges([a.exchange for a in answers if a.exchange is not None])
    return answers, report


def render(answers: Sequence[ProbeAnswer], report: Report) -> str:
    from .findings.security import is_security
    from .report.inert import visible

    lines = []
    for a in answers:
        if a.exchange is None or a.exchange.response is None:
            lines.append(f"Origin {visible(a.origin)}: no answer ({visible(a.error or '')})")
            continue
        r = a.exchange.response
        echoed = r.headers.get("access-control-allow-origin")
        verdict = ("echoed" if echoed == a.origin else "not allowed" if echoed is None
                   else f"answered {echoed!r}")
        lines.append(f"Origin {visible(a.origin)}: {a.exchange.method} -> {r.status}, "
                     f"{visible(verdict)}")
        for name in SHOWN:
            value = r.headers.get(name)
            if value is not None:
                lines.append(f"    {name}: {visible(value)}")
    findings = [f for f in report.findings if is_security(f)]
    lines.append("")
    lines.append("security review of these answers:" if findings
                 else "security review of these answers: nothing found")
    for f in findings:
        lines.append(f"  {f.severity} {f.code}: {visible(f.message)}")
        if f.hint:
            lines.append(f"    fix: {visible(f.hint)}")
    return "\n".join(lines) + "\n"
