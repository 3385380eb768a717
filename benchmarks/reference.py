"""The references corsflow's speed is measured against, each a whole process on one file.

    python benchmarks/reference.py msgspec FILE.har     # typed parse of the fields corsflow uses
    python benchmarks/reference.py netlog FILE.json     # typed parse of every NetLog event
    python benchmarks/reference.py untyped FILE.json    # msgspec.json.decode of everything
    python benchmarks/reference.py dpkt FILE.pcap       # bare dpkt decode loop
    python benchmarks/reference.py flowreader FILE      # mitmproxy's FlowReader loop

Each prints the number of records it saw. They are what a user would write to get at the
same data with the usual libraries, and the floors the design targets compare against.
"""

from __future__ import annotations

import sys
from typing import Any

import msgspec


class Header(msgspec.Struct):
    name: Any = None
    value: Any = None


class Message(msgspec.Struct):
    method: Any = None
    url: Any = None
    status: Any = None
    statusText: Any = None
    httpVersion: Any = None
    headers: list[Header] | None = None


class Timings(msgspec.Struct):
    blocked: Any = None
    dns: Any = None
    connect: Any = None
    ssl: Any = None
    send: Any = None
    wait: Any = None
    receive: Any = None


class Entry(msgspec.Struct):
    startedDateTime: Any = None
    time: Any = None
    request: Message | None = None
    response: Message | None = None
    timings: Timings | None = None
    pageref: Any = None
    serverIPAddress: Any = None
    resourceType: Any = msgspec.field(default=None, name="_resourceType")
    initiator: Any = msgspec.field(default=None, name="_initiator")


class Log(msgspec.Struct):
    entries: list[Entry]


class Har(msgspec.Struct):
    log: Log


class NetLogSource(msgspec.Struct):
    id: int = -1
    type: int = -1


class NetLogEvent(msgspec.Struct):
    """The fields every NetLog event has."""

    time: Any = None
    type: int = -1
    phase: int = 0
    source: NetLogSource | None = None
    params: msgspec.Raw = msgspec.field(default_factory=msgspec.Raw)


class NetLog(msgspec.Struct):
    constants: msgspec.Raw
    events: list[NetLogEvent]


def msgspec_typed(path: str) -> int:
    """The whole file read, then decoded by msgspec into Structs of the needed fields only."""
    with open(path, "rb") as f:
        return len(msgspec.json.decode(f.read(), type=Har).log.entries)


def netlog_typed(path: str) -> int:
    """The whole NetLog read, then every event decoded by msgspec, ``params`` left raw."""
    with open(path, "rb") as f:
        return len(msgspec.json.decode(f.read(), type=NetLog).events)


def untyped(path: str) -> int:
    """The whole file read, then every value decoded by msgspec (HAR entries or NetLog events
    counted)."""
    with open(path, "rb") as f:
        data = msgspec.json.decode(f.read())
    return len(data["log"]["entries"] if "log" in data else data["events"])


def dpkt_loop(path: str) -> int:
    """Every packet decoded by dpkt down to its TCP segment (no reassembly, no HTTP)."""
    import dpkt  # type: ignore[import-untyped]

    count = 0
    with open(path, "rb") as f:
        head = f.read(4)
        f.seek(0)
        reader = dpkt.pcapng.Reader(f) if head == b"\x0a\x0d\x0d\x0a" else dpkt.pcap.Reader(f)
        for _ts, buf in reader:
            ip = dpkt.ethernet.Ethernet(buf).data
            if isinstance(ip.data, dpkt.tcp.TCP):
                count += 1
    return count


def flowreader_loop(path: str) -> int:
    """mitmproxy's own reader: every flow loaded as a Flow object."""
    from mitmproxy.io import FlowReader

    with open(path, "rb") as f:
        return sum(1 for _ in FlowReader(f).stream())


REFERENCES = {"msgspec": msgspec_typed, "netlog": netlog_typed, "untyped": untyped,
              "dpkt": dpkt_loop, "flowreader": flowreader_loop}

if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] not in REFERENCES:
        sys.exit(f"usage: reference.py {{{','.join(REFERENCES)}}} FILE")
    print(REFERENCES[sys.argv[1]](sys.argv[2]))
