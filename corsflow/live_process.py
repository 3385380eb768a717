"""The live analysis in a process of its own, beside the proxy.

mitmproxy proxies on one event loop: every microsecond the addon spends on a flow is one the
proxy does not spend proxying. So, where a second core is free, the addon only takes what the
analysis reads of each finished flow (a :class:`~corsflow.ingest.flowrecord.FlowRecord`:
references to the flow's own bytes and times) and hands it to a child process, in batches
encoded with msgspec. The child makes the exchange of it and runs the
:class:`~corsflow.analysis.Analysis` (the engine, the security review, the findings: most of
what the addon costs); the verdicts and findings come back the same way, and the addon logs
them and marks and comments the flows concerned as it does when it analyses in its own
process. Each verdict comes with its :class:`~corsflow.flowmarks.Mark`, the few strings a
flow shows, which is all the proxy decodes of it: the verdict itself stays encoded until a
report or an explanation needs it (decoding every verdict was the largest part of what the
addon cost the proxy).

One ordered stream each way: a request (settle now, the findings over many flows, the
report) is answered after everything sent before it, so the results of earlier flows always
arrive before the answer. Only a report, an explanation and the proxy's exit wait for one:
what the proxy settles when it falls idle it asks for and goes on. The proxy never waits on
a child that waits on it: whenever its write would block it reads what the child has sent.
The child ignores Ctrl-C (the proxy still asks it for the report on exit) and ends when its
input closes.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import pickle
import select
import signal
import struct
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import msgspec

from .analysis import Analysis, Fed, Report
from .engine.events import ExchangeVerdict, Finding
from .errors import where_raised
from .flowmarks import Mark, mark_of
from .ingest.flowfile import ConnectionsSeen
from .ingest.flowrecord import FlowRecord, exchange_of

log = logging.getLogger(__name__)

BATCH = 256
"""Flows sent together at most. Each batch wakes the child, whose interpreter then runs
cold: larger batches cost less CPU per exchange (measured: 64 at 20 ms took about 10 % more
than 256 at 100 ms)."""
LINGER = 0.1
"""Seconds a batch waits for more flows before it goes: how late a mark may come, well
under what a person at mitmweb notices."""
REPLY_TIMEOUT = 120.0
"""Seconds to wait for an answer (a long session's report is computed in between)."""
_PIPE_BYTES = 1 << 20

# Frames: a tag byte and the payload's length, then the payload.
_HEAD = struct.Struct("<BI")
FEED, FLUSH, AGGREGATE, REPORT, RESTART, STATE = 1, 2, 3, 4, 5, 6  # to the child
RESULTS, REPLY, LOGGED, FAILED, AGGREGATED = 11, 12, 13, 14, 15  # from the child

_encode = msgspec.msgpack.Encoder().encode
_decode_flows = msgspec.msgpack.Decoder(list[FlowRecord]).decode
_decode_flow = msgspec.msgpack.Decoder(FlowRecord).decode
_decode_results = msgspec.msgpack.Decoder(
    tuple[list[Mark], list[msgspec.Raw], list[Finding]]).decode
_decode_verdict = msgspec.msgpack.Decoder(ExchangeVerdict).decode
_decode_findings = msgspec.msgpack.Decoder(list[Finding]).decode


class ProcessGone(Exception):
    """The analysis process ended or stopped answering."""


@dataclass(frozen=True, slots=True)
class Settled:
    """What a batch settled, as the proxy takes it: each verdict's mark, the verdicts
    themselves still encoded (in the same order), and the findings they raised at once."""

    marks: tuple[Mark, ...]
    verdicts: tuple[msgspec.Raw, ...]
    findings: tuple[Finding, ...]


def decoded(verdict: ExchangeVerdict | msgspec.Raw) -> ExchangeVerdict:
    """A verdict kept encoded, decoded (one already decoded as it is)."""
    return verdict if isinstance(verdict, ExchangeVerdict) else _decode_verdict(verdict)


@dataclass(frozen=True, slots=True)
class Failure:
    """An exception the child's analysis raised on one exchange, as the addon logs it."""

    kind: str
    """The exception's class name."""
    where: str
    """Where it was raised (``corsflow/engine/machine.py:123``)."""
    message: str
    text: str
    """The child's traceback."""


class AnalysisProcess:
    """The proxy's side: flows out, :class:`Settled` results in (``on_results``)."""

    def __init__(self, engine: str, on_results: Callable[[Settled], None],
                 on_aggregate: Callable[[list[Finding]], None],
                 on_failure: Callable[[Failure], None],
                 on_gone: Callable[[ProcessGone], None]) -> None:
        env = dict(os.environ)
        # The child imports this package from where the proxy found it (a checkout loaded
        # with ``mitmdump -s`` need not be installed).
        root = str(Path(__file__).resolve().parent.parent)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "corsflow.live_process", engine],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env, close_fds=True)
        assert self._proc.stdin is not None and self._proc.stdout is not None
        self._in = self._proc.stdin.fileno()
        self._out = self._proc.stdout.fileno()
        for fd in (self._in, self._out):
            _grow_pipe(fd)
            os.set_blocking(fd, False)
        self._on_results = on_results
        self._on_aggregate = on_aggregate
        self._on_failure = on_failure
        self._on_gone = on_gone
        """Told when the child is found gone between requests (requests raise instead)."""
        self._batch: list[FlowRecord] = []
        self._read = bytearray()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._closed = False
        self._unanswered = 0
        """Requests sent without waiting for their answer (:meth:`settle_soon`): each
        answer comes before a later request's, and is dropped as it comes."""
        self.settled = 0
        """Flows settled so far: verdicts received, and flows no verdict will come for."""

    # -- the event loop ------------------------------------------------------------------

    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        """Read results as they come, on the proxy's event loop; batches go after LINGER."""
        self._loop = loop
        loop.add_reader(self._out, self._readable)

    def _readable(self) -> None:
        self._or_gone(self._pump)

    def _or_gone(self, step: Callable[[], object]) -> None:
        """Run ``step`` for the event loop, where no caller waits to hear that the child is
        gone: ``on_gone`` hears it."""
        try:
            step()
        except ProcessGone as e:
            self._detach()
            self._on_gone(e)

    def _detach(self) -> None:
        if self._loop is not None and not self._loop.is_closed():
            self._loop.remove_reader(self._out)
            if self._timer is not None:
                self._timer.cancel()
        self._loop = self._timer = None

    # -- flows ---------------------------------------------------------------------------

    def feed(self, flow: FlowRecord) -> None:
        self._batch.append(flow)
        if len(self._batch) >= BATCH:
            self.send_batch()
        elif self._timer is None and self._loop is not None:
            self._timer = self._loop.call_later(LINGER, self._linger_over)

    def _linger_over(self) -> None:
        self._timer = None
        self._or_gone(self.send_batch)

    def send_batch(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._batch:
            batch, self._batch = self._batch, []
            try:
                payload = _encode(batch)
            except (UnicodeEncodeError, TypeError, ValueError, OverflowError):
                payload = _encode(self._encodable(batch))
            self._write(FEED, payload)

    def _encodable(self, batch: list[FlowRecord]) -> list[FlowRecord]:
        """The flows of ``batch`` msgpack can carry. A flow it cannot (text mitmproxy decoded
        with surrogates standing for bytes that are not UTF-8) is told to ``on_failure``
        and counted as settled, as no verdict will come for it; the others still go."""
        kept = []
        for flow in batch:
            try:
                _encode(flow)
            except (UnicodeEncodeError, TypeError, ValueError, OverflowError) as e:
                self.settled += 1
                self._on_failure(Failure(type(e).__name__, where_raised(e) or "?",
                                         f"flow {flow.n}: {e}",
                                         "".join(traceback.format_exception(e))))
            else:
                kept.append(flow)
        return kept

    # -- requests ------------------------------------------------------------------------

    def flush(self) -> None:
        """Settle everything open; its results are handed on before this returns."""
        self._request(FLUSH)

    def settle_soon(self) -> None:
        """Settle everything open without waiting (the proxy's loop goes on): the results
        come to ``on_results`` as they arrive. Asked once until it is answered."""
        if self._unanswered:
            return
        self.send_batch()
        self._write(FLUSH, b"")
        self._unanswered += 1

    def ask_aggregate(self) -> None:
        """Ask for the findings only many flows show, and the security review's: they come
        to ``on_aggregate`` after the results of everything sent before."""
        self.send_batch()
        self._write(AGGREGATE, b"")

    def report(self, fed: int) -> Report:
        """The analysis's report (``fed`` exchanges were given to it)."""
        report: Report = pickle.loads(self._request(REPORT, str(fed).encode()))
        return report

    def restart(self, engine: str) -> None:
        """A new analysis for ``engine``; what was still on its way is dropped."""
        self._batch.clear()
        results, aggregate = self._on_results, self._on_aggregate
        self._on_results, self._on_aggregate = _drop, _drop
        try:
            self._request(RESTART, engine.encode())
        finally:
            self._on_results, self._on_aggregate = results, aggregate
        self.settled = 0

    def state(self) -> dict[str, int]:
        """How much the child's analysis holds (for tests of its bounds)."""
        return msgspec.msgpack.decode(self._request(STATE), type=dict[str, int])

    def close(self, timeout: float = 5.0) -> None:
        """End the child: its input closes, it exits; killed if it does not."""
        if self._closed:
            return
        self._closed = True
        self._detach()
        for stream in (self._proc.stdin, self._proc.stdout):
            try:
                assert stream is not None
                stream.close()
            except OSError:
                pass
        try:
            self._proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()

    def _request(self, tag: int, payload: bytes = b"") -> bytes:
        self.send_batch()
        self._write(tag, payload)
        deadline = time.monotonic() + REPLY_TIMEOUT
        while True:
            reply = self._pump()
            if reply is not None:
                return reply
            left = deadline - time.monotonic()
            if left <= 0:
                raise ProcessGone(f"no answer in {REPLY_TIMEOUT:.0f} s")
            select.select([self._out], [], [], left)

    # -- the pipes -----------------------------------------------------------------------

    def _write(self, tag: int, payload: bytes) -> None:
        if self._closed:
            raise ProcessGone("closed")
        data = memoryview(_HEAD.pack(tag, len(payload)) + payload)
        deadline = time.monotonic() + REPLY_TIMEOUT
        while data:
            try:
                data = data[os.write(self._in, data):]
                continue
            except BlockingIOError:
                pass
            except (BrokenPipeError, OSError) as e:
                raise ProcessGone(str(e)) from None
            # The child is busy, maybe writing to us: read while waiting to write.
            left = deadline - time.monotonic()
            if left <= 0:
                raise ProcessGone(f"not reading for {REPLY_TIMEOUT:.0f} s")
            readable, _, _ = select.select([self._out], [self._in], [], left)
            if readable:
                reply = self._pump()
                if reply is not None:  # an answer nobody waits for: a protocol bug
                    raise ProcessGone("an unexpected answer")

    def _pump(self) -> bytes | None:
        """Read what the child has sent and handle every complete frame; the payload of
        an answer, if one came."""
        try:
            data = os.read(self._out, 1 << 20)
        except BlockingIOError:
            data = None
        except OSError as e:
            raise ProcessGone(str(e)) from None
        if data == b"":
            raise ProcessGone("the analysis process ended")
        if data:
            self._read += data
        buf = self._read
        pos, reply = 0, None
        try:
            while len(buf) - pos >= _HEAD.size:
                tag, size = _HEAD.unpack_from(buf, pos)
                end = pos + _HEAD.size + size
                if len(buf) < end:
                    break
                payload = bytes(buf[pos + _HEAD.size:end])
                pos = end  # handled, even if a callback below raises: never handled twice
                if tag == RESULTS:
                    marks, verdicts, findings = _decode_results(payload)
                    self.settled += len(marks)
                    self._on_results(Settled(tuple(marks), tuple(verdicts), tuple(findings)))
                elif tag == AGGREGATED:
                    self._on_aggregate(_decode_findings(payload))
                elif tag == LOGGED:
                    name, level, message = msgspec.msgpack.decode(
                        payload, type=tuple[str, int, str])
                    logging.getLogger(name).log(level, "%s", message)
                elif tag == FAILED:
                    self._on_failure(Failure(*msgspec.msgpack.decode(
                        payload, type=tuple[str, ...])))
                elif tag == REPLY:
                    if self._unanswered:  # the answer to a request nobody waits for
                        self._unanswered -= 1
                        continue
                    reply = payload
                    break  # later frames belong after the answer
        finally:
            del buf[:pos]
        return reply


def _grow_pipe(fd: int) -> None:
    try:
        import fcntl  # not on Windows, where the addon analyses in the proxy's process

        fcntl.fcntl(fd, 1031, _PIPE_BYTES)  # F_SETPIPE_SZ (Linux): fewer waits
    except (ImportError, OSError):
        pass


def _drop(_: object) -> None:
    pass


# -- the child -------------------------------------------------------------------------------


class _Forward(logging.Handler):
    """The child's log records, sent to the proxy, which logs them as its own."""

    def __init__(self, send: Callable[[int, bytes], None]) -> None:
        super().__init__(logging.INFO)
        self._send = send

    def emit(self, record: logging.LogRecord) -> None:
        self._send(LOGGED, _encode((record.name, record.levelno, record.getMessage())))


def serve(engine: str, inp: BinaryIO, out: BinaryIO, *, forward_logs: bool = True) -> None:
    """The child's loop: read requests until the input closes. ``forward_logs``: the
    process's log records go to the proxy too (the child's own, not a test's)."""

    def send(tag: int, payload: bytes) -> None:
        out.write(_HEAD.pack(tag, len(payload)))
        out.write(payload)

    def results(fed: list[Fed]) -> None:
        verdicts = [v for f in fed for v in f.verdicts]
        findings = [x for f in fed for x in f.findings]
        if verdicts or findings:
            send(RESULTS, _encode(([mark_of(v) for v in verdicts], verdicts, findings)))

    def failed(e: Exception) -> None:
        text = "".join(traceback.format_exception(e))
        send(FAILED, _encode((type(e).__name__, where_raised(e) or "?", str(e), text)))

    if forward_logs:
        root = logging.getLogger()
        root.handlers[:] = [_Forward(send)]
        root.setLevel(logging.INFO)
    analysis = Analysis(engine, keep_exchanges=False)
    connections = ConnectionsSeen()
    head = _HEAD.size
    while True:
        frame = inp.read(head)
        if len(frame) < head:
            return
        tag, size = _HEAD.unpack(frame)
        payload = inp.read(size) if size else b""
        if tag == FEED:
            fed = []
            for flow in _flows(payload, failed):
                try:
                    fed.append(analysis.feed(exchange_of(flow, "live", connections)))
                except Exception as e:  # noqa: BLE001 - one flow; the proxy logs it
                    failed(e)
            results(fed)
        elif tag == FLUSH:
            results([analysis.flush()])
            send(REPLY, b"")
        elif tag == AGGREGATE:
            send(AGGREGATED, _encode([*analysis.aggregator.findings(),
                                      *analysis.security.findings()]))
        elif tag == REPORT:
            d = analysis.diagnostics
            analysis.add_source("live", "mitmproxy", int(payload), d.skipped_count)
            send(REPLY, pickle.dumps(analysis.report(), pickle.HIGHEST_PROTOCOL))
        elif tag == RESTART:
            # The connections stay: one opened before is not opened again by the next flow.
            analysis = Analysis(payload.decode(), keep_exchanges=False)
            send(REPLY, b"")
        elif tag == STATE:
            send(REPLY, _encode({"settled": analysis.settled,
                                 "live_state": analysis.machine.live_state,
                                 "verdicts": analysis.held_verdicts}))
        out.flush()


def _flows(payload: bytes, failed: Callable[[Exception], None]) -> list[FlowRecord]:
    """A batch's flows. A flow whose fields are not of the types the proxy sends (a value
    some mitmproxy or addon left where another was expected) is told to ``failed`` alone;
    the others are analysed."""
    try:
        return _decode_flows(payload)
    except msgspec.ValidationError:
        pass
    flows = []
    for item in msgspec.msgpack.decode(payload, type=list[msgspec.Raw]):
        try:
            flows.append(_decode_flow(item))
        except msgspec.ValidationError as e:
            failed(e)
    return flows


def main() -> None:
    # Ctrl-C reaches the whole process group; the proxy still wants the report on exit.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # As the command line does: the imported heap out of the collector's view, and young
    # collections rarer (most of what the analysis allocates dies young, few cycles).
    gc.freeze()
    gc.set_threshold(100_000, *gc.get_threshold()[1:])
    inp, out = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr  # the frames alone go to the proxy
    try:
        serve(sys.argv[1], inp, out)
    except BrokenPipeError:
        pass  # the proxy is gone


if __name__ == "__main__":
    main()
