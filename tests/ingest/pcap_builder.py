"""Build small pcap/pcapng files from TCP conversations for the pcap ingest tests.

Packets are built with dpkt (an independent implementation of the headers our reader takes
apart with struct); the file formats are written here with struct so that every variant
(byte order, nanosecond magic, pcapng sections with several interfaces) can be produced.
"""

from __future__ import annotations

import socket
import struct
from dataclasses import dataclass, field

import dpkt  # type: ignore[import-untyped]

FIN, SYN, RST, PSH, ACK = 0x01, 0x02, 0x04, 0x08, 0x10


@dataclass
class Packet:
    ts: float
    frame: bytes
    wire_len: int | None = None
    interface: int = 0


def ip_packet(src: str, dst: str, sport: int, dport: int, seq: int, ack: int, flags: int,
              payload: bytes = b"") -> bytes:
    """An IPv4 or IPv6 packet (by the address syntax) carrying one TCP segment."""
    tcp = dpkt.tcp.TCP(sport=sport, dport=dport, seq=seq & 0xFFFFFFFF, ack=ack & 0xFFFFFFFF,
                       flags=flags, win=65535, data=payload)
    if ":" in src:
        ip6 = dpkt.ip6.IP6(src=socket.inet_pton(socket.AF_INET6, src),
                           dst=socket.inet_pton(socket.AF_INET6, dst), nxt=6, hlim=64, data=tcp)
        ip6.plen = len(bytes(tcp))
        return bytes(ip6)
    ip = dpkt.ip.IP(src=socket.inet_aton(src), dst=socket.inet_aton(dst), p=6, ttl=64, data=tcp)
    ip.len = 20 + len(bytes(tcp))
    return bytes(ip)


def ethernet(ip: bytes, vlan: int | None = None) -> bytes:
    etype = 0x86DD if ip[0] >> 4 == 6 else 0x0800
    tag = struct.pack("!HH", 0x8100, vlan) if vlan is not None else b""
    frame = b"\x02\x00\x00\x00\x00\x01" + b"\x02\x00\x00\x00\x00\x02" + tag + struct.pack("!H", etype) + ip
    return frame + b"\x00" * max(0, 60 - len(frame))  # Ethernet pads short frames


@dataclass
class Conversation:
    """One TCP connection between a client and a server, written packet by packet."""

    client: tuple[str, int] = ("10.0.0.1", 40000)
    server: tuple[str, int] = ("10.0.0.2", 80)
    cseq: int = 1000
    sseq: int = 5000
    ts: float = 1700000000.0
    step: float = 0.001
    packets: list[Packet] = field(default_factory=list)
    link: str = "ethernet"

    def _frame(self, ip: bytes) -> bytes:
        return ethernet(ip) if self.link == "ethernet" else ip

    def packet(self, from_client: bool, flags: int, payload: bytes = b"", seq: int | None = None,
               ack: int | None = None) -> Packet:
        self.ts += self.step
        if from_client:
            src, dst, s = self.client, self.server, self.cseq if seq is None else seq
            a = self.sseq if ack is None else ack
        else:
            src, dst, s = self.server, self.client, self.sseq if seq is None else seq
            a = self.cseq if ack is None else ack
        ip = ip_packet(src[0], dst[0], src[1], dst[1], s, a, flags, payload)
        p = Packet(self.ts, self._frame(ip))
        self.packets.append(p)
        return p

    def handshake(self) -> None:
        self.packet(True, SYN, seq=self.cseq, ack=0)
        self.cseq += 1
        self.packet(False, SYN | ACK, seq=self.sseq)
        self.sseq += 1
        self.packet(True, ACK)

    def send(self, from_client: bool, data: bytes, mss: int = 1460) -> list[Packet]:
        """Send ``data`` in segments of at most ``mss`` bytes (no ACKs from the peer)."""
        out = []
        for off in range(0, len(data), mss):
            piece = data[off:off + mss]
            out.append(self.packet(from_client, ACK | PSH, piece))
            if from_client:
                self.cseq += len(piece)
            else:
                self.sseq += len(piece)
        return out

    def client_sends(self, data: bytes, mss: int = 1460) -> list[Packet]:
        return self.send(True, data, mss)

    def server_sends(self, data: bytes, mss: int = 1460) -> list[Packet]:
        return self.send(False, data, mss)

    def close(self) -> None:
        self.packet(True, FIN | ACK)
        self.cseq += 1
        self.packet(False, FIN | ACK)
        self.sseq += 1
        self.packet(True, ACK)

    def reset(self, from_client: bool = True) -> None:
        self.packet(from_client, RST | ACK)


def pcap_bytes(packets: list[Packet], linktype: int = 1, *, nanos: bool = False,
               big_endian: bool = False, snaplen: int = 262144) -> bytes:
    order = ">" if big_endian else "<"
    magic = 0xA1B23C4D if nanos else 0xA1B2C3D4
    out = [struct.pack(order + "IHHiIII", magic, 2, 4, 0, 0, snaplen, linktype)]
    for p in packets:
        sec = int(p.ts)
        frac = round((p.ts - sec) * (1e9 if nanos else 1e6))
        wire = p.wire_len if p.wire_len is not None else len(p.frame)
        out.append(struct.pack(order + "IIII", sec, frac, len(p.frame), wire) + p.frame)
    return b"".join(out)


def _opt(order: str, code: int, value: bytes) -> bytes:
    return struct.pack(order + "HH", code, len(value)) + value + b"\x00" * (-len(value) % 4)


def _block(order: str, btype: int, body: bytes) -> bytes:
    n = len(body) + 12
    return struct.pack(order + "II", btype, n) + body + struct.pack(order + "I", n)


@dataclass
class Interface:
    linktype: int
    tsresol: int | None = None
    """The if_tsresol byte (6 = microseconds, 9 = nanoseconds, 0x80|k = 2**-k)."""
    tsoffset: int = 0


def pcapng_bytes(packets: list[Packet], interfaces: list[Interface], *, big_endian: bool = False,
                 extra_blocks: bool = True) -> bytes:
    o = ">" if big_endian else "<"
    shb = struct.pack(o + "IHHq", 0x1A2B3C4D, 1, 0, -1) + _opt(o, 4, b"test") + b"\x00" * 4
    out = [_block(o, 0x0A0D0D0A, shb)]
    for iface in interfaces:
        opts = b""
        if iface.tsresol is not None:
            opts += _opt(o, 9, bytes([iface.tsresol]))
        if iface.tsoffset:
            opts += _opt(o, 14, struct.pack(o + "q", iface.tsoffset))
        if opts:
            opts += b"\x00" * 4
        out.append(_block(o, 1, struct.pack(o + "HHI", iface.linktype, 0, 262144) + opts))
    if extra_blocks:  # a name resolution block and a custom block: readers must skip them
        out.append(_block(o, 4, b"\x00" * 4))
        out.append(_block(o, 0x00000BAD, struct.pack(o + "I", 32473) + b"abcd"))
    for p in packets:
        iface = interfaces[p.interface]
        v = iface.tsresol if iface.tsresol is not None else 6
        unit = 2.0 ** -(v & 0x7F) if v & 0x80 else 10.0 ** -v
        units = round((p.ts - iface.tsoffset) / unit)
        wire = p.wire_len if p.wire_len is not None else len(p.frame)
        body = struct.pack(o + "IIIII", p.interface, units >> 32, units & 0xFFFFFFFF,
                           len(p.frame), wire) + p.frame + b"\x00" * (-len(p.frame) % 4)
        out.append(_block(o, 6, body))
    return b"".join(out)
