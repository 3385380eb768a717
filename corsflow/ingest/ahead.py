"""Reading ahead: a capture's reader in a second process while this one analyses.

Reading a capture (decoding packets, putting TCP back together, parsing HTTP; or splitting
and decoding JSON) costs as much as the analysis of what it gives, and both are pure Python
bound by one core. On a machine with a core to spare, the command line forks a child that
runs the reader and streams its exchanges back through a pipe, in batches encoded with
msgspec (an order of magnitude cheaper than pickle for these dataclasses). Memory stays
bounded: the pipe blocks the child when the analysis falls behind.

What the child's reader records in its :class:`~corsflow.errors.Diagnostics` (skipped
records, notes) and what it logs travels in the same stream and is replayed here, at the
point of the stream where it arose, so the report and the messages are the same as when
reading in this process. An error the reader raises is raised here, where the stream stood.

Only where fork is safe and pays: Linux, two usable cores, a regular file large enough
(``CORSFLOW_READ_AHEAD=0`` turns it off, ``=1`` forces it whatever the size, for tests).
The library reads in its own process unless asked (notebooks and embedding programs own
their process); the command line asks.
"""

from __future__ import annotations

import atexit
import functools
import logging
import os
import pickle
import signal
import stat
import struct
import sys
import traceback
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import BinaryIO, NoReturn

import msgspec

from ..errors import CorsflowError, Diagnostics, IngestError, Skipped, where_raised
from ..model import Exchange
from ..timeorder import OutOfOrder

log = logging.getLogger(__name__)

MIN_BYTES = 8 << 20
"""Smaller files are read in a fraction of a second: not worth a process."""
BATCH = 128
"""Exchanges per message: large enough that framing costs nothing, small enough that the
analysis starts at once and the pipe bounds memory."""
_PIPE_BYTES = 1 << 20

_EXCHANGES, _DIAGNOSTICS, _ERROR, _END = 1, 2, 3, 4
_HEAD = struct.Struct("<BI")

_live = 0
"""Children reading now: at most one per spare core."""


def usable_cores() -> int:
    """The cores this process may keep busy: those it may run on, capped by a cgroup CPU
    quota (a container run with ``--cpus=1`` sees every core of its host, but a second
    process there would only share the one core's worth of time)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1
    quota = cgroup_cpu_limit()
    return cores if quota is None else max(1, min(cores, quota))


@functools.cache  # read once: a process's quota seldom changes while it runs
def cgroup_cpu_limit(root: str = "/sys/fs/cgroup", own: str = "/proc/self/cgroup") -> int | None:
    """The CPUs' worth of time this process's cgroups allow it (rounded up), None when no
    quota applies or none can be read. cgroup v2: ``cpu.max`` (``max`` or ``QUOTA
    PERIOD``); v1: ``cpu.cfs_quota_us`` (-1: none) and ``cpu.cfs_period_us``. The lowest
    quota of the cgroup and of those above it applies."""
    try:
        with open(own, encoding="ascii", errors="replace") as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    limits: list[int] = []
    for line in lines:
        _, controllers, path = (line.split(":", 2) + ["", ""])[:3]
        if not path.startswith("/"):
            continue
        if controllers == "":  # v2: one hierarchy, mounted at the root
            limits += _quotas(root, path, _v2_quota)
        elif "cpu" in controllers.split(","):
            # v1: mounted under the controllers' names (cpu,cpuacct), or under cpu alone.
            for mount in dict.fromkeys((controllers, "cpu")):
                limits += _quotas(os.path.join(root, mount), path, _v1_quota)
    return min(limits) if limits else None


def _quotas(mount: str, path: str, read: Callable[[str], int | None]) -> list[int]:
    """The quotas set on ``path`` and on the cgroups above it, up to the mount's root.
    (A container sees its own cgroup at the root, whatever path the host gives it.)"""
    found = []
    parts = [p for p in path.split("/") if p]
    for depth in range(len(parts), -1, -1):
        quota = read(os.path.join(mount, *parts[:depth]))
        if quota is not None:
            found.append(quota)
    return found


def _v2_quota(directory: str) -> int | None:
    try:
        with open(os.path.join(directory, "cpu.max"), encoding="ascii") as f:
            quota, period = f.read().split()[:2]
        return None if quota == "max" else _cpus(int(quota), int(period))
    except (OSError, ValueError):
        return None


def _v1_quota(directory: str) -> int | None:
    try:
        with open(os.path.join(directory, "cpu.cfs_quota_us"), encoding="ascii") as f:
            quota = int(f.read())
        with open(os.path.join(directory, "cpu.cfs_period_us"), encoding="ascii") as f:
            period = int(f.read())
    except (OSError, ValueError):
        return None
    return None if quota < 0 else _cpus(quota, period)


def _cpus(quota: int, period: int) -> int | None:
    if quota <= 0 or period <= 0:
        return None
    return -(-quota // period)  # 1.5 CPUs' worth: two processes can use it


def worth_reading_ahead(path: str) -> bool:
    """Whether reading ``path`` in a child process can pay here and now."""
    setting = os.environ.get("CORSFLOW_READ_AHEAD", "")
    if setting == "0" or not sys.platform.startswith("linux") or not hasattr(os, "fork"):
        return False
    if _live >= usable_cores() - 1 and setting != "1":
        return False
    try:
        st = os.stat(path)
    except OSError:
        return False  # the reader names the problem
    if not stat.S_ISREG(st.st_mode):
        return False  # a pipe or a device is read once, by whoever opens it
    return setting == "1" or st.st_size >= MIN_BYTES


class _Recorder(Diagnostics):
    """The child's diagnostics: recorded, not logged (the parent logs them as they arrive)."""

    def skip(self, path: str, where: str, reason: str) -> None:
        # The same bookkeeping without the log line.
        self.skipped_by_reason[reason] += 1
        if len(self.skipped) < self.keep:
            self.skipped.append(Skipped(path, where, reason))

    def note(self, message: str) -> None:
        if message not in self.notes:
            self.notes.append(message)


class _Forward(logging.Handler):
    """The child's log records, kept to be sent with the next message (a bounded number:
    a reader that logs every damaged packet may go long without giving an exchange)."""

    def __init__(self, limit: int = 1000) -> None:
        super().__init__()
        self.records: list[tuple[str, int, str]] = []
        self.limit = limit
        self.dropped = 0

    def emit(self, record: logging.LogRecord) -> None:
        if len(self.records) < self.limit:
            self.records.append((record.name, record.levelno, record.getMessage()))
        else:
            self.dropped += 1

    def take(self) -> list[tuple[str, int, str]]:
        records = self.records[:]
        if self.dropped:
            left_out = f"{self.dropped} more log records of the reading process were left out"
            records.append((__name__, logging.WARNING, left_out))
        self.records.clear()
        self.dropped = 0
        return records


Told = Callable[[str], None]
"""A callback the stream makes with a message (the time-order check's ``noticed``)."""
Stream = Callable[[Diagnostics, Told], Iterator[Exchange]]


@dataclass(frozen=True, slots=True)
class _Child:
    """A reading process: its id, the pipe it writes to (this end), what it was told."""

    pid: int
    fd: int
    keep: int


_started: dict[tuple[str, object], _Child] = {}
"""Reading processes started ahead of their analysis (:func:`start`), by path and key."""


def _fork(path: str, read: Stream, keep: int) -> _Child | None:
    """A child process running ``read``; None where none can be started."""
    global _live
    try:
        r, w = os.pipe()
    except OSError:  # out of descriptors: read here
        return None
    _grow_pipe(w)
    try:
        pid = os.fork()
    except OSError as e:  # out of processes or memory: read here
        os.close(r)
        os.close(w)
        log.debug("%s: read in this process: cannot fork: %s", path, e)
        return None
    if pid == 0:  # the child
        os.close(r)
        _child(w, read, keep)
    os.close(w)
    _live += 1
    return _Child(pid, r, keep)


def start(path: str, read: Stream, key: object, keep: int) -> None:
    """Start reading ``path`` with ``read`` now, in a child process, before the analysis
    that :func:`read_ahead` it with the same ``key`` (its reading recipe) and ``keep``
    (the skipped records its diagnostics keep) is ready: the reading and whatever comes
    first here (importing the analysis) overlap. One never taken up ends with this
    process (or :func:`discard_started`)."""
    if (path, key) in _started:
        return
    child = _fork(path, read, keep)
    if child is not None:
        if not _started:
            atexit.register(discard_started)
        _started[(path, key)] = child


def started(path: str, key: object) -> bool:
    """Whether a reading of ``path`` by ``key`` was started (:func:`start`) and not taken."""
    return (path, key) in _started


def discard_started() -> None:
    """End the reading processes started and not taken up."""
    while _started:
        _end(_started.popitem()[1])


def _end(child: _Child) -> None:
    global _live
    os.close(child.fd)
    os.kill(child.pid, signal.SIGKILL)
    os.waitpid(child.pid, 0)
    _live -= 1


def read_ahead(path: str, read: Stream, diagnostics: Diagnostics,
               told: Told, key: object = None) -> Iterator[Exchange]:
    """The exchanges ``read(diagnostics, told)`` gives, read in a child process; what it
    records in its diagnostics, and its calls of ``told``, are replayed here.

    ``read`` should do all the work that does not need this process's state (reading, and
    putting the exchanges in time order): what it holds back holds the analysis back.
    The child starts at the first ``next()``, unless one was started for ``path`` with
    this ``key`` already (:func:`start`); closing the iterator early (or an error here)
    ends it.
    """
    global _live
    child = _started.pop((path, key), None) if key is not None else None
    if child is not None and child.keep != diagnostics.keep:
        _end(child)  # told to keep another number of skipped records: not this reading
        child = None
    if child is None:
        child = _fork(path, read, diagnostics.keep)
    if child is None:
        yield from read(diagnostics, told)
        return
    pid = child.pid
    finished = False
    decode = msgspec.msgpack.Decoder(list[Exchange]).decode
    fp = open(child.fd, "rb", buffering=_PIPE_BYTES)  # noqa: SIM115 - closed in finally
    try:
        while True:
            kind, body = _receive(fp)
            if kind == _EXCHANGES:
                yield from decode(body)
            elif kind == _DIAGNOSTICS:
                _replay(pickle.loads(body), diagnostics, told)
            elif kind == _ERROR:
                finished = True
                raise pickle.loads(body)
            elif kind == _END:
                finished = True
                return
            else:  # end of the pipe before the end of the stream: the child was killed
                _, status = os.waitpid(pid, 0)
                finished = True
                pid = 0
                raise IngestError(path, "the process reading it ended unexpectedly "
                                  f"({_describe(status)})")
    finally:
        fp.close()
        _live -= 1
        if pid:
            if not finished:  # abandoned (out of order, an error, ^C): stop it
                os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)


def _receive(fp: BinaryIO) -> tuple[int, bytes]:
    head = fp.read(_HEAD.size)
    if len(head) < _HEAD.size:
        return 0, b""
    kind, size = _HEAD.unpack(head)
    body = fp.read(size)
    if len(body) < size:
        return 0, b""
    return kind, body


_Delta = tuple[list[Skipped], dict[str, int], list[str], list[tuple[str, int, str]],
               list[str]]
"""Since the last message: skipped records kept in full, the count of the others by
reason, notes, log records (logger, level, message), calls of ``told``."""


def _replay(delta: _Delta, diagnostics: Diagnostics, told: Told) -> None:
    """What the child's reader recorded since its last message, as if recorded here."""
    skipped, counts, notes, records, calls = delta
    for message in calls:
        told(message)
    for name, level, message in records:
        logging.getLogger(name).log(level, "%s", message)
    for s in skipped:  # kept (and logged) here too while there is room
        diagnostics.skip(s.path, s.where, s.reason)
    for reason, n in counts.items():
        diagnostics.skipped_by_reason[reason] += n
    for message in notes:
        diagnostics.note(message)


def _child(w: int, read: Stream, keep: int) -> NoReturn:
    """Run the reader, sending what it gives; never returns into the parent's code."""
    code = 0
    try:
        # ^C reaches the whole process group: the parent handles it and ends this process.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        forward = _Forward()
        root = logging.getLogger()
        for handler in root.handlers[:]:
            root.removeHandler(handler)  # the parent's handlers write to its terminal
        root.addHandler(forward)
        out = open(w, "wb", buffering=_PIPE_BYTES)  # noqa: SIM115 - os._exit ends it
        diagnostics = _Recorder(keep=keep)
        sent = _Sent()
        encode = msgspec.msgpack.Encoder().encode
        batch: list[Exchange] = []
        try:
            for exchange in read(diagnostics, sent.calls.append):
                batch.append(exchange)
                if len(batch) >= BATCH:
                    _send_delta(out, diagnostics, forward, sent)
                    _send(out, _EXCHANGES, encode(batch))
                    out.flush()  # at once: the analysis waits for its first batches
                    batch.clear()
        except BaseException as e:  # the reader's error, raised in the parent
            if isinstance(e, BrokenPipeError):  # the parent is gone
                raise
            _send_delta(out, diagnostics, forward, sent)
            if batch:
                _send(out, _EXCHANGES, encode(batch))
            _send(out, _ERROR, _pickled(e))
        else:
            _send_delta(out, diagnostics, forward, sent)
            if batch:
                _send(out, _EXCHANGES, encode(batch))
            _send(out, _END, b"")
        out.flush()
    except BrokenPipeError:
        code = 0  # the parent stopped reading: nothing more to do
    except BaseException:  # noqa: BLE001 - whatever it is, this process must not go on
        code = 1
    finally:
        os._exit(code)


class _Sent:
    """How much of the child's diagnostics has been sent."""

    def __init__(self) -> None:
        self.skipped = 0
        self.notes = 0
        self.counts: Counter[str] = Counter()
        self.calls: list[str] = []
        """Calls of ``told`` not sent yet."""


def _send_delta(out: BinaryIO, diagnostics: Diagnostics, forward: _Forward,
                sent: _Sent) -> None:
    counts = diagnostics.skipped_by_reason
    if (len(diagnostics.skipped) == sent.skipped and len(diagnostics.notes) == sent.notes
            and not forward.records and not sent.calls and counts == sent.counts):
        return
    skipped = diagnostics.skipped[sent.skipped:]
    # Counts past the kept records, by reason (what the parent cannot learn from them).
    kept_now = Counter(s.reason for s in skipped)
    extra = {reason: n - sent.counts[reason] - kept_now[reason]
             for reason, n in counts.items() if n - sent.counts[reason] - kept_now[reason]}
    delta: _Delta = (skipped, extra, diagnostics.notes[sent.notes:], forward.take(),
                     sent.calls[:])
    _send(out, _DIAGNOSTICS, pickle.dumps(delta))
    sent.skipped = len(diagnostics.skipped)
    sent.notes = len(diagnostics.notes)
    sent.counts = Counter(counts)
    sent.calls.clear()


def _send(out: BinaryIO, kind: int, body: bytes) -> None:
    out.write(_HEAD.pack(kind, len(body)))
    out.write(body)


def _pickled(e: BaseException) -> bytes:
    """The reader's exception as the parent will raise it (its message, when it cannot be
    sent whole); a bug keeps where it was raised."""
    if not isinstance(e, (CorsflowError, OutOfOrder)):
        _mark_bug(e)
    try:
        data = pickle.dumps(e)
        pickle.loads(data)
        return data
    except Exception:  # noqa: BLE001 - an exception that does not survive pickling
        cls = CorsflowError if isinstance(e, CorsflowError) else RuntimeError
        return pickle.dumps(cls(f"{type(e).__name__}: {e}"))


def _mark_bug(e: BaseException) -> None:
    """Where a bug was raised, and its traceback for ``CORSFLOW_DEBUG=1``: the parent's own
    traceback ends where it raises it again."""
    where = where_raised(e)
    if where is not None:
        e.raised_in_reader = where  # type: ignore[attr-defined]
    e.add_note("raised in the process reading the file:\n"
               + "".join(traceback.format_exception(e)).rstrip())


def _grow_pipe(fd: int) -> None:
    """A larger pipe buffer (Linux): fewer switches between the two processes."""
    try:
        import fcntl

        fcntl.fcntl(fd, 1031, _PIPE_BYTES)  # F_SETPIPE_SZ
    except (ImportError, OSError):
        pass  # the default buffer works, a little slower


def _describe(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"signal {os.WTERMSIG(status)}"
    return f"exit status {os.waitstatus_to_exitcode(status)}"
