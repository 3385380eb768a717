"""A computation run aside: in a forked child process while this one goes on.

The end of a report is serial: once the last exchange is analysed, the changes are
replayed (tens of milliseconds on a large session) and the exchanges are serialised, one
after the other, while the second core (which read the capture) sits idle. A child forked
at that point shares the whole report with this process without copying it, replays the
changes while this one writes the exchanges, and sends its result back pickled.

The result is the same either way: a child that fails, or cannot be started, leaves the
computation to this process (where an error, if it is one, is raised as it would have
been). Only where fork is safe and pays, as for reading ahead: Linux, two usable cores,
``CORSFLOW_READ_AHEAD`` not ``0`` (``1`` forks whatever the cores, for tests).
"""

from __future__ import annotations

import os
import pickle
import signal
import sys
from collections.abc import Callable
from typing import Generic, NoReturn, TypeVar

from .ingest.ahead import usable_cores

T = TypeVar("T")


def worth_forking() -> bool:
    """Whether a second process can run beside this one here and now."""
    setting = os.environ.get("CORSFLOW_READ_AHEAD", "")
    if setting == "0" or not sys.platform.startswith("linux") or not hasattr(os, "fork"):
        return False
    return setting == "1" or usable_cores() >= 2


class Aside(Generic[T]):
    """``compute()`` running in a child process; :meth:`result` waits for it."""

    def __init__(self, compute: Callable[[], T]) -> None:
        self._compute = compute
        self._pid = 0
        self._fd = -1
        try:
            r, w = os.pipe()
        except OSError:  # out of descriptors: computed here when asked
            return
        try:
            pid = os.fork()
        except OSError:  # out of processes or memory: the same
            os.close(r)
            os.close(w)
            return
        if pid == 0:
            os.close(r)
            _child(w, compute)
        os.close(w)
        self._pid, self._fd = pid, r

    @property
    def forked(self) -> bool:
        """Whether a child is computing it (not yet asked for its result)."""
        return bool(self._pid)

    def result(self) -> T:
        """What ``compute()`` returned: from the child when it finished well, else
        computed here."""
        if not self._pid:
            return self._compute()
        with open(self._fd, "rb") as fp:
            data = fp.read()
        _, status = os.waitpid(self._pid, 0)
        self._pid = 0
        if status == 0 and data:
            try:
                value: T = pickle.loads(data)
            except Exception:  # noqa: BLE001, S110 - not sent whole: computed here
                pass
            else:
                return value
        return self._compute()

    def cancel(self) -> None:
        """End the child without its result."""
        if self._pid:
            os.close(self._fd)
            os.kill(self._pid, signal.SIGKILL)
            os.waitpid(self._pid, 0)
            self._pid = 0


def _child(w: int, compute: Callable[[], T]) -> NoReturn:
    """Compute, send the pickled result, and end without running the exit handlers or
    flushing the output buffers this process shares with its parent."""
    code = 1
    try:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles ^C and ends this one
        data = pickle.dumps(compute(), protocol=pickle.HIGHEST_PROTOCOL)
        view = memoryview(data)
        while view:
            view = view[os.write(w, view):]
        code = 0
    except BaseException:  # noqa: BLE001, S110 - the parent computes it again and tells
        pass
    finally:
        os._exit(code)
