"""Capture files and link layers: pcap/pcapng records down to TCP segments.

Two layers, both streaming:

* :func:`read_frames` reads pcap (both byte orders, micro- and nanosecond magic) and pcapng
  (every section and interface, each with its own link type, ``if_tsresol`` and
  ``if_tsoffset``) and yields one :class:`Frame` per captured packet, numbered from 1 as
  Wireshark counts them.
* :class:`SegmentDecoder` takes a frame's link layer, IPv4/IPv6 and TCP headers apart and
  returns a :class:`Segment`, or None for anything that is not TCP.

Why not dpkt here: dpkt's pcapng reader uses only the first interface block, its pcap reader
builds a header object per record and reads the file 16 bytes at a time, and building
``dpkt.ethernet.Ethernet`` objects decodes every layer eagerly. On a 1 GB capture that costs
about 20 s before any reassembly; reading the file in large blocks and unpacking the few
header fields we need with precompiled :class:`struct.Struct` is about five times faster.
dpkt remains the reference the tests build packets with.
"""

from __future__ import annotations

import logging
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import BinaryIO, Literal

from ..errors import IngestError
from .compressed import open_input  # compressed captures, by magic bytes

log = logging.getLogger(__name__)

_BLOCK = 1 << 22  # bytes read from the file at a time
_MAX_RECORD = 1 << 24  # a record longer than this is a corrupt header, not a packet
_RESYNC_WINDOW = 1 << 20
"""Bytes searched after a corrupt record header for the next plausible one: a damaged header
loses the bytes up to there, not the rest of the file."""

PCAP_MAGICS = {
    b"\xd4\xc3\xb2\xa1": ("<", 1e-6),
    b"\xa1\xb2\xc3\xd4": (">", 1e-6),
    b"\x4d\x3c\xb2\xa1": ("<", 1e-9),
    b"\xa1\xb2\x3c\x4d": (">", 1e-9),
}
PCAPNG_MAGIC = b"\x0a\x0d\x0d\x0a"

# Link types (https://www.tcpdump.org/linktypes.html) and their names for messages.
LINKTYPE_NAMES = {
    0: "NULL", 1: "ETHERNET", 12: "RAW", 14: "RAW", 101: "RAW", 108: "LOOP",
    113: "LINUX_SLL", 228: "IPV4", 229: "IPV6", 239: "NFLOG", 276: "LINUX_SLL2",
}


@dataclass(frozen=True, slots=True)
class Frame:
    """One captured packet."""

    number: int
    """1-based, counting every packet record of the file (as Wireshark numbers frames)."""
    ts: float
    """Seconds since the epoch."""
    linktype: int
    data: bytes
    """The captured bytes (possibly cut by the snapshot length)."""
    wire_len: int
    """The packet's length on the wire."""


class CaptureDamage(Exception):
    """The file is damaged at one place; reading stops there (the message says where)."""

    def __init__(self, packet: int, reason: str) -> None:
        super().__init__(reason)
        self.packet = packet
        self.reason = reason
        self.count = 1
        """How many times this damage was met (counted together past a bound)."""


Record = tuple[int, float, int, bytes, int]
"""A frame as a plain tuple, for the per-packet hot path: the fields of :class:`Frame`."""


def read_frames(path: str, on_damage: list[CaptureDamage] | None = None) -> Iterator[Frame]:
    """Yield every frame of a pcap or pcapng file; the format is taken from the magic.

    Damage that stops reading (a truncated record, an impossible block length) does not
    raise: it is appended to ``on_damage`` and the frames read so far stand. A file that is
    no capture at all raises :class:`IngestError`.
    """
    for record in read_records(path, on_damage):
        yield Frame(*record)


def read_records(path: str, on_damage: list[CaptureDamage] | None = None) -> Iterator[Record]:
    """:func:`read_frames` as tuples (a dataclass per packet costs more than decoding it)."""
    try:
        with open_input(path) as f:
            head = f.read(24)
            if head[:4] in PCAP_MAGICS:
                yield from _read_pcap(path, f, head, on_damage)
            elif head[:4] == PCAPNG_MAGIC:
                f.seek(0)
                yield from _read_pcapng(path, f, on_damage)
            else:
                raise IngestError(path, "not a pcap or pcapng file (unrecognised magic number)")
    except OSError as e:
        raise IngestError(path, f"cannot read: {e.strerror or e}") from None


def capture_format(path: str) -> Literal["pcap", "pcapng"]:
    """``"pcap"`` or ``"pcapng"`` from the magic number (IngestError if neither)."""
    try:
        with open_input(path) as f:
            head = f.read(4)
    except OSError as e:
        raise IngestError(path, f"cannot open: {e.strerror or e}") from None
    if head in PCAP_MAGICS:
        return "pcap"
    if head == PCAPNG_MAGIC:
        return "pcapng"
    raise IngestError(path, "not a pcap or pcapng file (unrecognised magic number)")


_MAX_DAMAGE = 1000
"""Damage records kept in full; past that they are counted on the last one of their reason."""


def _damaged(sink: list[CaptureDamage] | None, packet: int, reason: str) -> None:
    if sink is None:
        return
    if len(sink) >= _MAX_DAMAGE:
        for d in reversed(sink):
            if d.reason == reason:
                d.count += 1
                return
    sink.append(CaptureDamage(packet, reason))


def _read_pcap(
    path: str, f: BinaryIO, head: bytes, on_damage: list[CaptureDamage] | None
) -> Iterator[Record]:
    if len(head) < 24:
        raise IngestError(path, "truncated pcap file header")
    order, unit = PCAP_MAGICS[head[:4]]
    snaplen, linktype_field = struct.unpack(order + "II", head[16:24])
    # The upper bits of the link-type field may carry an FCS length (pcap(5)); only the low 16
    # name the link type.
    linktype = linktype_field & 0xFFFF
    record = struct.Struct(order + "IIII").unpack_from
    limit = max(snaplen, 262144) if 0 < snaplen <= _MAX_RECORD else _MAX_RECORD
    buf = b""
    pos = 0
    number = 0
    last_sec: int | None = None
    while True:
        chunk = f.read(_BLOCK)
        eof = not chunk
        buf = buf[pos:] + chunk
        pos = 0
        end = len(buf)
        # Decode every complete record in the block without further reads.
        while end - pos >= 16:
            sec, frac, caplen, wire_len = record(buf, pos)
            if caplen > limit:
                if not eof and end - pos < _RESYNC_WINDOW:
                    break  # read on: the next good record may lie past this block
                found = _pcap_resync(buf, pos + 1, min(end, pos + _RESYNC_WINDOW), record, limit,
                                     eof and pos + _RESYNC_WINDOW >= end, last_sec)
                if found is None:
                    _damaged(on_damage, number + 1,
                             f"corrupt packet record (captured length {caplen}); the rest of the"
                             " file is not read")
                    return
                log.debug("%s: packet %d: captured length %d: %d bytes skipped", path,
                          number + 1, caplen, found - pos)
                _damaged(on_damage, number + 1,
                         "corrupt packet record header (skipped to the next good record)")
                pos = found
                continue
            stop = pos + 16 + caplen
            if stop > end:
                break
            number += 1
            last_sec = sec
            yield number, sec + frac * unit, linktype, buf[pos + 16 : stop], wire_len
            pos = stop
        if eof:
            if pos < end:
                what = "packet" if end - pos >= 16 else "packet record header"
                _damaged(on_damage, number + 1, f"{what} truncated at end of file")
            return


def _pcap_resync(buf: bytes, start: int, end: int, record: Callable[[bytes, int], tuple[int, ...]],
                 limit: int, at_eof: bool, last_sec: int | None) -> int | None:
    """The first offset in ``buf[start:end]`` where a plausible record header (lengths that
    fit, a time within a day of the last good record) is followed by another one or by the
    end of the file: two in a row are not chance."""
    def plausible(q: int) -> int | None:
        sec, frac, caplen, wire_len = record(buf, q)
        if caplen > limit or wire_len < caplen or frac >= 1_000_000_000:
            return None
        if last_sec is not None and abs(sec - last_sec) > 86400:
            return None
        return q + 16 + caplen

    for q in range(start, end - 15):
        after = plausible(q)
        if after is None:
            continue
        if after + 16 <= len(buf):
            if plausible(after) is not None:
                return q
        elif after == len(buf) and at_eof:
            return q
    return None


_SHB = 0x0A0D0D0A
_IDB, _OPB, _SPB, _EPB = 1, 2, 3, 6


@dataclass(slots=True)
class _Interface:
    linktype: int
    unit: float
    offset: int


def _read_pcapng(path: str, f: BinaryIO, on_damage: list[CaptureDamage] | None) -> Iterator[Record]:
    order = "<"
    interfaces: list[_Interface] = []
    number = 0
    last_ts = 0.0
    buf = b""
    pos = 0
    eof = False
    first = True
    epb = struct.Struct(order + "IIIIIII").unpack_from
    while True:
        # Enhanced packet blocks are nearly every block: read one in a single unpack.
        end = len(buf)
        if end - pos >= 28:
            btype, blen, if_id, hi, lo, caplen, wire_len = epb(buf, pos)
            if (btype == _EPB and pos + blen <= end and caplen + 32 <= blen and not blen & 3
                    and if_id < len(interfaces)):
                number += 1
                iface = interfaces[if_id]
                last_ts = ((hi << 32) | lo) * iface.unit + iface.offset
                yield number, last_ts, iface.linktype, buf[pos + 28 : pos + 28 + caplen], wire_len
                pos += blen
                continue
        if len(buf) - pos < 12 and not eof:
            chunk = f.read(_BLOCK)
            eof = not chunk
            buf = buf[pos:] + chunk
            pos = 0
        if len(buf) - pos < 12:
            if len(buf) > pos:
                _damaged(on_damage, number + 1, "truncated block at end of file")
            return
        btype = struct.unpack_from(order + "I", buf, pos)[0]
        if btype == _SHB:
            # The byte-order magic decides how this section (this block included) is read.
            if len(buf) - pos < 12:
                return
            bom = buf[pos + 8 : pos + 12]
            if bom == b"\x4d\x3c\x2b\x1a":
                order = "<"
            elif bom == b"\x1a\x2b\x3c\x4d":
                order = ">"
            else:
                if first:
                    raise IngestError(path, "not a pcapng file (bad byte-order magic)")
                _damaged(on_damage, number + 1, "corrupt section header block")
                return
            interfaces = []
            epb = struct.Struct(order + "IIIIIII").unpack_from
        first = False
        blen = struct.unpack_from(order + "I", buf, pos + 4)[0]
        bad = blen < 12 or blen % 4 or blen > _MAX_RECORD
        if not bad:
            while len(buf) - pos < blen and not eof:
                chunk = f.read(max(_BLOCK, blen))
                eof = not chunk
                buf = buf[pos:] + chunk
                pos = 0
            # The length is written again at the block's end: a mismatch is a damaged length.
            bad = (len(buf) - pos >= blen
                   and struct.unpack_from(order + "I", buf, pos + blen - 4)[0] != blen)
        if bad or len(buf) - pos < blen:
            while len(buf) - pos < _RESYNC_WINDOW and not eof:
                chunk = f.read(_BLOCK)
                eof = not chunk
                buf = buf[pos:] + chunk
                pos = 0
            found = _pcapng_resync(buf, pos + 4, min(len(buf), pos + _RESYNC_WINDOW), order)
            if found is None:
                what = (f"corrupt pcapng block (length {blen})" if bad
                        else "truncated block at end of file")
                _damaged(on_damage, number + 1, what)
                return
            log.debug("%s: packet %d: block length %d: %d bytes skipped", path, number + 1,
                      blen, found - pos)
            _damaged(on_damage, number + 1,
                     "corrupt pcapng block length (skipped to the next good block)")
            pos = found
            continue
        body = pos + 8
        bend = pos + blen - 4
        if btype == _IDB:
            try:
                interfaces.append(_parse_idb(buf, body, bend, order))
            except struct.error:
                # Packets naming this interface will be reported as corrupt blocks.
                interfaces.append(_Interface(-1, 1e-6, 0))
                _damaged(on_damage, number + 1, "corrupt interface description block")
        elif btype in (_EPB, _OPB, _SPB):
            number += 1
            try:
                frame = _packet_block(btype, buf, body, bend, order, interfaces, number, last_ts)
            except struct.error:
                frame = None
            if frame is None:
                _damaged(on_damage, number, "corrupt packet block (skipped)")
            else:
                last_ts = frame[1]
                yield frame
        pos += blen


_RESYNC_TYPES = (_EPB, _SPB, _IDB, _OPB)


def _pcapng_resync(buf: bytes, start: int, end: int, order: str) -> int | None:
    """The first 4-aligned offset after ``start`` where a packet or interface block starts
    whose length is repeated at its end, as pcapng writes every block."""
    u32 = struct.Struct(order + "I").unpack_from
    n = len(buf)
    for q in range(start, end - 11, 4):
        if u32(buf, q)[0] not in _RESYNC_TYPES:
            continue
        blen = u32(buf, q + 4)[0]
        if 12 <= blen <= _MAX_RECORD and not blen % 4 and q + blen <= n \
                and u32(buf, q + blen - 4)[0] == blen:
            return q
    return None


def _parse_idb(buf: bytes, body: int, bend: int, order: str) -> _Interface:
    linktype = struct.unpack_from(order + "H", buf, body)[0]
    unit = 1e-6
    offset = 0
    p = body + 8
    while p + 4 <= bend:
        code, length = struct.unpack_from(order + "HH", buf, p)
        if code == 0:
            break
        val = buf[p + 4 : p + 4 + length]
        if code == 9 and length >= 1:  # if_tsresol: 10^-v, or 2^-v with the high bit set
            v = val[0]
            unit = 2.0 ** -(v & 0x7F) if v & 0x80 else 10.0 ** -v
        elif code == 14 and length == 8:  # if_tsoffset: seconds added to every timestamp
            offset = struct.unpack(order + "q", val)[0]
        p += 4 + length + (-length % 4)
    return _Interface(linktype, unit, offset)


def _packet_block(
    btype: int, buf: bytes, body: int, bend: int, order: str,
    interfaces: list[_Interface], number: int, last_ts: float,
) -> Record | None:
    if btype == _SPB:
        # A simple packet block belongs to interface 0 and has no timestamp.
        if not interfaces or bend - body < 4:
            return None
        wire_len = struct.unpack_from(order + "I", buf, body)[0]
        caplen = min(wire_len, bend - body - 4)
        iface = interfaces[0]
        return number, last_ts, iface.linktype, buf[body + 4 : body + 4 + caplen], wire_len
    if bend - body < 20:
        return None
    if btype == _EPB:
        if_id, hi, lo, caplen, wire_len = struct.unpack_from(order + "IIIII", buf, body)
    else:  # obsolete packet block: 16-bit interface id and drop count
        if_id, _drops, hi, lo, caplen, wire_len = struct.unpack_from(order + "HHIIII", buf, body)
    if if_id >= len(interfaces) or body + 20 + caplen > bend:
        return None
    iface = interfaces[if_id]
    ts = ((hi << 32) | lo) * iface.unit + iface.offset
    return number, ts, iface.linktype, buf[body + 20 : body + 20 + caplen], wire_len


# --------------------------------------------------------------------------- segments


@dataclass(frozen=True, slots=True)
class Segment:
    """The parts of one TCP segment that reassembly needs."""

    src: bytes
    """Source address and port, packed (an opaque, hashable endpoint key)."""
    dst: bytes
    seq: int
    ack: int
    flags: int
    payload: bytes
    """The captured payload."""
    missing: int
    """Payload bytes the IP header announces but the capture cut off (snapshot length)."""


SegmentTuple = tuple[bytes, bytes, int, int, int, bytes, int]
"""The fields of :class:`Segment` as a plain tuple."""

FIN, SYN, RST, ACK = 0x01, 0x02, 0x04, 0x10

_ETH_TYPE = struct.Struct("!H").unpack_from
_U32_BE = struct.Struct("!I").unpack_from
_U32_LE = struct.Struct("<I").unpack_from
_U16_LE = struct.Struct("<H").unpack_from
_IP4 = struct.Struct("!BxHHHBB").unpack_from  # ver/ihl, total length, id, flags/frag, ttl, proto
_IP6 = struct.Struct("!HB").unpack_from  # payload length, next header (at offset 4)
_TCP = struct.Struct("!IIBB").unpack_from  # seq, ack, data offset, flags (from offset 4)
# Ethernet type; IPv4 version/IHL, total length, flags/fragment offset, protocol, addresses;
# TCP ports, seq, ack, data offset, flags (valid when the IPv4 header has no options).
_ETH_IP4_TCP = struct.Struct("!12xHBxH2xHxB2x4s4s4sIIBB").unpack_from

_IPV4, _IPV6 = 0x0800, 0x86DD
# BSD NULL/LOOP address families meaning IPv6: 24 (NetBSD/OpenBSD), 28 (FreeBSD), 30 (macOS),
# 10 (Linux). AF_INET is 2 everywhere.
_AF_INET6 = {24, 28, 30, 10}
_IP6_EXT = {0, 43, 60, 51}  # hop-by-hop, routing, destination options, AH


class SegmentDecoder:
    """Decodes frames to TCP segments, counting what it had to leave out.

    ``skipped`` counts frames that could not be decoded by reason (unsupported link type,
    IPv4 fragments, damaged headers); ``cut`` counts segments shortened by the snapshot length.
    """

    def __init__(self) -> None:
        self.skipped: dict[str, int] = {}
        self.first_skip: dict[str, int] = {}
        self.cut = 0

    def _skip(self, number: int, reason: str) -> None:
        if reason not in self.skipped:
            self.skipped[reason] = 0
            self.first_skip[reason] = number
        self.skipped[reason] += 1

    def decode(self, frame: Frame) -> Segment | None:
        """The TCP segment in ``frame``, or None (not TCP/IP, or skipped and counted)."""
        t = self.decode_record((frame.number, frame.ts, frame.linktype, frame.data, frame.wire_len))
        return None if t is None else Segment(*t)

    def decode_record(self, record: Record) -> SegmentTuple | None:
        """:meth:`decode` on the hot path: a record in, the fields of a Segment out."""
        number, _ts, lt, data, wire_len = record
        n = len(data)
        if lt == 1 and n >= 48:
            # The common case in one unpack: Ethernet II, IPv4 without options, TCP.
            etype, vihl, total, frag, proto, sip, dip, ports, seq, ack, doff, flags = _ETH_IP4_TCP(data)
            if etype == _IPV4 and vihl == 0x45 and proto == 6 and not frag & 0x3FFF:
                start = 34 + (doff >> 4) * 4
                end = 14 + total if total else wire_len
                if start <= end:
                    captured_end = end if end <= n else n  # noqa: FURB136 (no call: hot path)
                    missing = end - captured_end
                    if missing:
                        self.cut += 1
                    payload = data[start:captured_end] if captured_end > start else b""
                    return sip + ports[:2], dip + ports[2:], seq, ack, flags, payload, missing
        try:
            if lt == 1:  # Ethernet II, possibly VLAN-tagged (802.1Q, 802.1ad, QinQ)
                off = 12
                etype = _ETH_TYPE(data, off)[0]
                while etype in (0x8100, 0x88A8, 0x9100):
                    off += 4
                    etype = _ETH_TYPE(data, off)[0]
                off += 2
            elif lt in (101, 12, 14):
                off, etype = 0, _version_type(data, 0)
            elif lt == 113:  # Linux cooked v1: protocol type at offset 14 of a 16-byte header
                off, etype = 16, _ETH_TYPE(data, 14)[0]
            elif lt == 276:  # Linux cooked v2: protocol type first, 20-byte header
                off, etype = 20, _ETH_TYPE(data, 0)[0]
            elif lt == 0 or lt == 108:
                # NULL: the family in the capturing host's byte order; LOOP: network order.
                fam = _U32_LE(data, 0)[0]
                if fam > 0xFFFF:
                    fam = _U32_BE(data, 0)[0]
                off = 4
                etype = _IPV4 if fam == 2 else _IPV6 if fam in _AF_INET6 else 0
            elif lt == 228:
                off, etype = 0, _IPV4
            elif lt == 229:
                off, etype = 0, _IPV6
            elif lt == 239:
                off, etype = _nflog_payload(data)
            else:
                self._skip(number, f"unsupported link type {lt} ({LINKTYPE_NAMES.get(lt, 'unknown')})")
                return None
            if etype == _IPV4:
                vihl, total, _id, frag, _ttl, proto = _IP4(data, off)
                if vihl >> 4 != 4:
                    self._skip(number, "damaged IPv4 header")
                    return None
                if proto != 6:
                    return None
                if frag & 0x3FFF:  # more-fragments set or a non-zero offset
                    self._skip(number, "IPv4 fragment (not reassembled)")
                    return None
                ihl = (vihl & 0x0F) * 4
                src_ip = data[off + 12 : off + 16]
                dst_ip = data[off + 16 : off + 20]
                # A zero total length is what TCP segmentation offload leaves on outgoing packets.
                end = off + total if total else n + (wire_len - n)
                tcp = off + ihl
            elif etype == _IPV6:
                if data[off] >> 4 != 6:
                    self._skip(number, "damaged IPv6 header")
                    return None
                plen, nxt = _IP6(data, off + 4)
                src_ip = data[off + 8 : off + 24]
                dst_ip = data[off + 24 : off + 40]
                end = off + 40 + plen if plen else n + (wire_len - n)
                tcp = off + 40
                while nxt in _IP6_EXT:
                    hdr_len = (data[tcp + 1] + 2) * 4 if nxt == 51 else (data[tcp + 1] + 1) * 8
                    nxt = data[tcp]
                    tcp += hdr_len
                if nxt == 44:
                    self._skip(number, "IPv6 fragment (not reassembled)")
                    return None
                if nxt != 6:
                    return None
            else:
                return None
            sport_dport = data[tcp : tcp + 4]
            seq, ack, doff, flags = _TCP(data, tcp + 4)
        except (struct.error, IndexError):
            self._skip(number, "packet too short for its headers")
            return None
        start = tcp + (doff >> 4) * 4
        captured_end = min(end, n)
        if start > captured_end:
            if start > end:
                self._skip(number, "damaged TCP header")
                return None
            captured_end = start
        missing = end - captured_end
        if missing:
            self.cut += 1
        payload = data[start:captured_end] if captured_end > start else b""
        return src_ip + sport_dport[:2], dst_ip + sport_dport[2:], seq, ack, flags, payload, missing


def _version_type(data: bytes, off: int) -> int:
    v = data[off] >> 4
    return _IPV4 if v == 4 else _IPV6 if v == 6 else 0


def _nflog_payload(data: bytes) -> tuple[int, int]:
    """Find the packet inside a Linux NFLOG record (family byte, version, resource id, then
    TLVs whose 16-bit length and type are in host byte order; type 9 is the payload)."""
    family = data[0]
    p = 4
    n = len(data)
    while p + 4 <= n:
        length, ttype = _U16_LE(data, p)[0], _U16_LE(data, p + 2)[0]
        if length < 4:
            break
        if ttype & 0x7FFF == 9:
            etype = _IPV4 if family == 2 else _IPV6 if family == 10 else _version_type(data, p + 4)
            return p + 4, etype
        p += (length + 3) & ~3
    return 0, 0
