"""Seeds and Hypothesis-driven mutations for every input format corsflow reads.

Seeds are small real sessions: HAR entries, NetLog events and mitmproxy flows taken from the
Chromium session in ``samples/``, and pcap/pcapng captures built from an HTTP/1.1 CORS
conversation. Each mutation is drawn from Hypothesis (so failures shrink to few, small
mutations):

* bytes, for every format: a byte changed, a hostile token inserted, a range deleted or
  repeated, a run of digits replaced by an extreme number, the file cut short;
* HAR and NetLog: a JSON number or string replaced by an extreme value (NaN, 1e400, 4,301
  digits, a lone surrogate...), a value nested a thousand deep;
* mitmproxy flows: a leaf of the tnetstring tree replaced (lengths fixed all the way up, so the
  damage reaches the flow reader, not only its framing), a value nested deep;
* pcap/pcapng: the HTTP text damaged before it is packetised, then the TCP layer damaged
  (tiny segments, reordering, duplicates, losses, cut captures, absurd timestamps).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st

from tests.conftest import SAMPLES
from tests.fuzz import tnet
from tests.ingest.pcap_builder import ACK, Conversation, Interface, Packet, pcap_bytes, pcapng_bytes

Draw = Callable[[st.SearchStrategy[Any]], Any]

NUMBERS = [
    b"0", b"-1", b"-5", b"-0", b"1e400", b"-1e400", b"1e-400", b"NaN", b"Infinity", b"-Infinity",
    b"nan", b"inf", b"-inf", b"9" * 4301, b"0" * 4300 + b"1", b"18446744073709551616",
    b"9223372036854775808", b"-9223372036854775809", b"--5", "\u00b2".encode(), b"0x10",
    b"1_0", b"253402300800", b"-62135596800", b"4611686018427387904", b"1" + b"0" * 30,
    b"2147483648", b"4294967296", b"99999999999999999999.5",
]
STRINGS = [
    b"", b"\x00", b"\xff\xfe", b"\xed\xa0\x80", b"\\ud800", b"\\udfff\\ud800", b"\x1b[31m",
    b"http://[::1", b"http://user:pw@[x/", b"a" * 70000, b"\r\n", b"\n\n", b":", b"\xc3\xa9",
    b"%", b"%zz", b"*", b"null", b",,,,", b"\t \t", b"\xe2\x80\xae", b"///", b"?#",
]
HTTP_TOKENS = [
    b"\r\n", b"\r\n\r\n", b"\n", b"X" * 20000 + b"\r\n", b"Content-Length: " + b"9" * 4301 + b"\r\n",
    b"Content-Length: -1\r\n", b"Transfer-Encoding: chunked\r\n", b"-5\r\n", b"fffffffffffffffff\r\n",
    b"0x10\r\n", b" folded\r\n", b"HTTP/1.1 200 OK\r\n", b"GET / HTTP/1.1\r\n", b"Upgrade: h2c\r\n",
    b"Access-Control-Max-Age: " + b"9" * 4301 + b"\r\n", b"Location: http://[::1\r\n",
    b"Origin: null\r\n", b"HTTP/1.1 101 Switching Protocols\r\n", b"CONNECT a:1 HTTP/1.1\r\n",
]


# ------------------------------------------------------------------------ seeds


def har_seed() -> bytes:
    """The first requests of the Chromium sample, preflights included."""
    har = json.loads((SAMPLES / "chromium-session.har").read_text(encoding="utf-8"))
    har["log"]["entries"] = har["log"]["entries"][1:9]
    har["log"]["pages"] = har["log"].get("pages", [])[:1]
    return json.dumps(har, indent=1).encode()


def netlog_seed(requests: int = 12) -> bytes:
    """Chromium's NetLog of the sample session: its constants and the events of its first
    URL requests (the HTTPS reader's input), one event per line as Chromium writes them."""
    log = json.loads((SAMPLES / "chromium-session.netlog.json").read_text(encoding="utf-8"))
    url_request = log["constants"]["logSourceType"]["URL_REQUEST"]
    kept: list[int] = []
    events = []
    for e in log["events"]:
        source = e.get("source", {})
        if source.get("type") != url_request:
            continue
        if source["id"] not in kept:
            if len(kept) == requests:
                continue
            kept.append(source["id"])
        events.append(e)
    head = json.dumps({"constants": log["constants"]}, separators=(",", ":"))[:-1]
    lines = ",\n".join(json.dumps(e, separators=(",", ":")) for e in events)
    return (head + ',\n"events": [\n' + lines + "\n]\n}\n").encode()


def mitm_seed() -> bytes:
    flows = tnet.load_all((SAMPLES / "chromium-session.flows").read_bytes())
    return b"".join(tnet.dump(f) for f in flows[1:7])


def http_session() -> list[tuple[bool, bytes]]:
    """A keep-alive CORS conversation: preflight, the request it allows, a chunked response,
    a redirect (from the client: True)."""
    origin = b"Origin: http://app.example\r\n"
    return [
        (True, b"OPTIONS /api/items HTTP/1.1\r\nHost: api.example\r\n" + origin
         + b"Access-Control-Request-Method: PUT\r\n"
         + b"Access-Control-Request-Headers: content-type,x-token\r\n\r\n"),
        (False, (b"HTTP/1.1 204 No Content\r\nAccess-Control-Allow-Origin: http://app.example\r\n"
         b"Access-Control-Allow-Methods: PUT, GET\r\nAccess-Control-Allow-Headers: content-type\r\n"
         b"Access-Control-Max-Age: 600\r\nDate: Sun, 22 Nov 2026 01:48:05 GMT\r\n\r\n")),
        (True, b"PUT /api/items HTTP/1.1\r\nHost: api.example\r\n" + origin
         + b"Content-Type: application/json\r\nX-Token: 1\r\nContent-Length: 7\r\n\r\n{\"a\":1}"),
        (False, (b"HTTP/1.1 200 OK\r\nAccess-Control-Allow-Origin: *\r\n"
         b"Transfer-Encoding: chunked\r\n\r\n5;x=1\r\nhello\r\n3\r\nabc\r\n0\r\nT: 1\r\n\r\n")),
        (True, b"GET /old HTTP/1.1\r\nHost: api.example\r\n" + origin + b"\r\n"),
        (False, (b"HTTP/1.1 301 Moved\r\nLocation: http://u:p@api.example/new\r\n"
         b"Access-Control-Allow-Origin: http://app.example\r\nContent-Length: 0\r\n\r\n")),
    ]


@dataclass(frozen=True)
class Capture:
    """How to packetise the session: the TCP and file-level damage to apply."""

    mss: int = 1460
    shuffle_window: int = 0
    duplicate_every: int = 0
    drop_every: int = 0
    ng: bool = False
    snaplen_cut: int = 0
    ts: float = 1_795_312_085.0
    handshake: bool = True
    closed: bool = True


def build_capture(messages: list[tuple[bool, bytes]], how: Capture) -> bytes:
    conv = Conversation(ts=how.ts)
    if how.handshake:
        conv.handshake()
    for from_client, data in messages:
        conv.send(from_client, data, how.mss)
        conv.packet(not from_client, ACK)
    if how.closed:
        conv.close()
    packets = conv.packets
    if how.drop_every:
        packets = [p for i, p in enumerate(packets) if i % how.drop_every != how.drop_every - 1]
    if how.duplicate_every:
        packets = [q for i, p in enumerate(packets)
                   for q in ([p, p] if i % how.duplicate_every == 0 else [p])]
    if how.shuffle_window > 1:
        w = how.shuffle_window
        packets = [p for i in range(0, len(packets), w) for p in reversed(packets[i:i + w])]
    if how.snaplen_cut:
        packets = [Packet(p.ts, p.frame[: max(54, len(p.frame) - how.snaplen_cut)], len(p.frame))
                   for p in packets]
    if how.ng:
        # Whole seconds as the unit lets a timestamp reach 2**62 s (year ~10**11).
        return pcapng_bytes(packets, [Interface(1, 9 if how.ts < 1e10 else 0)])
    return pcap_bytes(packets)


def pcap_seed() -> bytes:
    return build_capture(http_session(), Capture())


def pcapng_seed() -> bytes:
    return build_capture(http_session(), Capture(ng=True))


# -------------------------------------------------------------------- mutations


def mutate_bytes(data: bytes, draw: Draw, tokens: list[bytes]) -> bytes:
    """One byte-level mutation anywhere in ``data``."""
    n = len(data)
    if n == 0:
        return draw(st.sampled_from(tokens))
    kind = draw(st.sampled_from(["set", "insert", "delete", "repeat", "digits", "truncate"]))
    at = draw(st.integers(0, n - 1))
    if kind == "set":
        return data[:at] + bytes([draw(st.integers(0, 255))]) + data[at + 1:]
    if kind == "insert":
        return data[:at] + draw(st.sampled_from(tokens)) + data[at:]
    if kind == "delete":
        size = draw(st.integers(1, 64))
        return data[:at] + data[at + size:]
    if kind == "repeat":
        size = draw(st.integers(1, 256))
        times = draw(st.sampled_from([2, 10, 1000]))
        return data[:at] + data[at:at + size] * times + data[at + size:]
    if kind == "digits":
        runs = [m.span() for m in re.finditer(rb"[0-9]+", data)]
        if not runs:
            return data
        a, b = draw(st.sampled_from(runs))
        return data[:a] + draw(st.sampled_from(NUMBERS)) + data[b:]
    return data[:at]


_JSON_NUMBER = re.compile(rb"(?<=[:\[,\s])-?[0-9]+(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?(?=[,\]}\s])")
_JSON_STRING = re.compile(rb'"((?:[^"\\]|\\.)*)"')


def mutate_json(data: bytes, draw: Draw) -> bytes:
    """HAR and NetLog: one JSON-level mutation (or a byte-level one)."""
    kind = draw(st.sampled_from(["number", "string", "nest", "bytes"]))
    if kind == "number":
        spans = [m.span() for m in _JSON_NUMBER.finditer(data)]
        if spans:
            a, b = draw(st.sampled_from(spans))
            return data[:a] + draw(st.sampled_from(NUMBERS)) + data[b:]
    if kind == "string":
        spans = [m.span(1) for m in _JSON_STRING.finditer(data)]
        if spans:
            a, b = draw(st.sampled_from(spans))
            value = draw(st.sampled_from(STRINGS)).replace(b'"', b'\\"')
            if draw(st.booleans()):
                value = data[a:b] + value  # keep the value, append the damage
            return data[:a] + value + data[b:]
    if kind == "nest":
        spans = [m.span() for m in _JSON_STRING.finditer(data)]
        if spans:
            a, b = draw(st.sampled_from(spans))
            depth = draw(st.sampled_from([2, 100, 1100]))
            return data[:a] + b"[" * depth + data[a:b] + b"]" * depth + data[b:]
    return mutate_bytes(data, draw, STRINGS + NUMBERS)


def mutate_mitm(data: bytes, draw: Draw) -> bytes:
    flows = tnet.load_all(data)
    if not flows:  # earlier mutations left no whole flow: damage the bytes
        return mutate_bytes(data, draw, STRINGS + NUMBERS)
    which = draw(st.integers(0, len(flows) - 1))
    flow = flows[which]
    kind = draw(st.sampled_from(["leaf", "leaf", "nest", "type", "bytes"]))
    if kind == "bytes":
        return mutate_bytes(data, draw, STRINGS + NUMBERS)
    path = draw(st.sampled_from(tnet.leaves(flow)))
    old_kind, old = tnet.get(flow, path)
    if kind == "leaf":
        value = draw(st.sampled_from(NUMBERS if old_kind in b"#^" else STRINGS + NUMBERS))
        new: tnet.Node = (old_kind, value)
    elif kind == "type":
        new = (draw(st.sampled_from(list(b"#^,;!~]}"))), old if old_kind not in b"]}" else b"")
        if new[0] in b"]}":
            new = (new[0], [])
    else:
        nested = tnet.dump((old_kind, old))
        for _ in range(draw(st.sampled_from([2, 100, 1100]))):
            nested = str(len(nested)).encode() + b":" + nested + b"]"
        new = (tnet.RAW, nested)
    flows[which] = tnet.replace(flow, path, new)
    return b"".join(tnet.dump(f) for f in flows)


def mutate_capture(draw: Draw, ng: bool) -> bytes:
    messages = http_session()
    for _ in range(draw(st.integers(0, 3))):
        i = draw(st.integers(0, len(messages) - 1))
        side, text = messages[i]
        messages[i] = (side, mutate_bytes(text, draw, HTTP_TOKENS + NUMBERS + STRINGS))
    how = Capture(
        mss=draw(st.sampled_from([1460, 1460, 100, 7, 1])),
        shuffle_window=draw(st.sampled_from([0, 0, 2, 5, 50])),
        duplicate_every=draw(st.sampled_from([0, 0, 3])),
        drop_every=draw(st.sampled_from([0, 0, 4, 9])),
        ng=ng,
        snaplen_cut=draw(st.sampled_from([0, 0, 0, 10, 500])),
        ts=draw(st.sampled_from([1_795_312_085.0] * 4
                                + ([0.0, 2.0**62, 1.2e12] if ng else [0.0, 4_294_967_000.0]))),
        handshake=draw(st.booleans()),
        closed=draw(st.booleans()),
    )
    data = build_capture(messages, how)
    if draw(st.booleans()):
        data = mutate_bytes(data, draw, STRINGS + NUMBERS + HTTP_TOKENS)
    return data


FORMATS = ("har", "mitm", "pcap", "pcapng", "netlog")
SUFFIX = {"har": ".har", "mitm": ".mitm", "pcap": ".pcap", "pcapng": ".pcapng", "netlog": ".json"}


def mutated(fmt: str, draw: Draw, seeds: dict[str, bytes]) -> bytes:
    """A damaged input of format ``fmt``: one to three mutations of its seed."""
    if fmt in ("pcap", "pcapng"):
        return mutate_capture(draw, fmt == "pcapng")
    data = seeds[fmt]
    for _ in range(draw(st.integers(1, 3))):
        data = mutate_json(data, draw) if fmt in ("har", "netlog") else _mitm_or_bytes(data, draw)
    return data


def _mitm_or_bytes(data: bytes, draw: Draw) -> bytes:
    try:
        return mutate_mitm(data, draw)
    except (ValueError, IndexError, RecursionError):
        # An earlier byte mutation broke the framing: keep damaging bytes.
        return mutate_bytes(data, draw, STRINGS + NUMBERS)
