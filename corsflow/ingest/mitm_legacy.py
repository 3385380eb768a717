"""Flows saved by mitmproxy 0.10 and earlier, which current mitmproxy refuses to load.

mitmproxy's format migrations start at 0.11, so its reader rejects a 0.10 file outright.
The records are simple (a tnetstring dictionary with byte-string keys: ``request`` and
``response`` each carrying method or code, headers as ``[name, value]`` pairs, and
timestamps), and they hold everything corsflow needs, so rather than refusing a user's old
capture we read the request and response straight from the record. Connection timings
are left unknown: this format does not tell which flows shared a connection.
"""

from __future__ import annotations

from typing import Any

from ..errors import Diagnostics
from ..model import Exchange, Headers, ProducerHints, Response, SourceRef, Timings
from .checks import plausible_time

_DEFAULT_PORTS = {"http": 80, "https": 443}


def is_legacy_version(version: object) -> bool:
    """True for the ``[0, minor, patch]`` versions of mitmproxy 0.10 and earlier."""
    return (
        isinstance(version, (list, tuple))
        and len(version) >= 2
        and version[0] == 0
        and isinstance(version[1], int)
        and version[1] <= 10
    )


def legacy_exchange(
    record: dict[Any, Any], n: int, path: str, diagnostics: Diagnostics
) -> Exchange | None:
    """The exchange in one 0.10-format record, or None (skipped and counted) if damaged."""
    where = f"flow {n}"
    try:
        return _exchange(record, n, path)
    except (KeyError, TypeError, ValueError, IndexError, AttributeError, OverflowError) as e:
        detail = f"missing field {e}" if isinstance(e, KeyError) else str(e)
        diagnostics.skip(path, where, f"damaged mitmproxy 0.10 flow record ({detail})")
        return None


def _text(value: object) -> str:
    if isinstance(value, bytes):
        return value.decode("latin-1")
    if isinstance(value, str):
        return value
    raise TypeError(f"expected text, found {type(value).__name__}")


def _headers(pairs: object) -> Headers:
    if not isinstance(pairs, list):
        raise TypeError("headers are not a list")
    return Headers(tuple((_text(name), _text(value)) for name, value in pairs))


def _version(value: object) -> str | None:
    # [1, 1] -> "HTTP/1.1"
    if isinstance(value, (list, tuple)) and len(value) == 2:
        return f"HTTP/{int(value[0])}.{int(value[1])}"
    return None


def _number(value: object) -> float | None:
    """A timestamp, None unless it is a plausible one (see :mod:`.checks`)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
        return float(value) if plausible_time(value) else None
    return None


def _url(req: dict[bytes, Any]) -> str:
    path = _text(req[b"path"])
    if path.startswith(("http://", "https://")):
        return path  # absolute-form request target
    scheme = _text(req[b"scheme"]).lower()
    host = _text(req[b"host"])
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"  # an IPv6 literal
    port = int(req[b"port"])
    authority = host if _DEFAULT_PORTS.get(scheme) == port else f"{host}:{port}"
    return f"{scheme}://{authority}{path}"


def _ms(start: float | None, end: float | None) -> float | None:
    if start is None or end is None or end < start:
        return None
    return (end - start) * 1000.0


def _exchange(record: dict[Any, Any], n: int, path: str) -> Exchange:
    req = record[b"request"]
    started = _number(req[b"timestamp_start"])
    if started is None:
        raise ValueError("the request has no start time")
    req_end = _number(req.get(b"timestamp_end"))
    response = None
    wait = receive = None
    raw_resp = record.get(b"response")
    if raw_resp:
        resp_start = _number(raw_resp.get(b"timestamp_start"))
        finished = _number(raw_resp.get(b"timestamp_end"))
        reason = raw_resp.get(b"msg")
        response = Response(
            status=int(raw_resp[b"code"]),
            headers=_headers(raw_resp[b"headers"]),
            reason=(_text(reason) or None) if reason is not None else None,
            http_version=_version(raw_resp.get(b"httpversion")),
            finished=finished,
        )
        wait = _ms(req_end, resp_start)
        receive = _ms(resp_start, finished)
    failure = None
    error = record.get(b"error")
    if isinstance(error, dict) and error.get(b"msg") is not None:
        failure = _text(error[b"msg"])
    send = _ms(started, req_end)
    phases = [p for p in (send, wait, receive) if p is not None]
    return Exchange(
        id=f"f{n}",
        method=_text(req[b"method"]),
        url=_url(req),
        request_headers=_headers(req[b"headers"]).without_pseudo(),
        started=started,
        source=SourceRef(path, "mitmproxy", n, f"flow {n}"),
        response=response,
        failure=failure,
        timings=Timings(
            send=send, wait=wait, receive=receive, total=sum(phases) if phases else None
        ),
        http_version=_version(req.get(b"httpversion")),
        hints=ProducerHints(creator="mitmproxy 0.10"),
    )
