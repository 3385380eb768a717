"""The mitmproxy addon: corsflow's analysis, live, on the flows passing through the proxy.

Load it with ``mitmdump -s "$(corsflow addon-path)"`` (or ``mitmproxy -s`` / ``mitmweb -s``),
or run ``corsflow live``. Each finished flow (``response`` or ``error`` hook; every flow gets
exactly one) becomes an :class:`~corsflow.model.Exchange` through the same conversion the
flow-file reader uses, and is fed to one :class:`~corsflow.analysis.Analysis`: where a
second core is free, in a process of its own beside the proxy
(:mod:`corsflow.live_process`), which also makes the exchange, so the proxy's event loop
only copies what the analysis reads of each flow (:func:`~corsflow.ingest.mitm.record_of`)
and marks the flows. For each finding at or above ``corsflow_min_severity`` the addon logs
one line, marks the flows concerned and writes the verdict into their comment, so mitmweb
and the console show it.

A verdict can be settled by a later flow (a preflight's waits for the request it was sent
for), so flows whose verdict is still open are kept in a bounded map until it arrives; when
the proxy falls idle with nothing in flight, what is still open is settled at once. The
addon never breaks proxying: an exception inside the analysis is logged once per kind and
the flow goes on untouched.

Memory stays bounded over hours: the analysis keeps findings and counts only, and the addon
keeps the most recent ``corsflow_report_exchanges`` verdicts for the report and for
``corsflow.explain``.

Flow numbers (exchange ids ``f0``, ``f1``...) count every flow the proxy finished, HTTP or
not, in the order they finished, which is the order ``mitmdump -w`` writes them in (except
WebSocket flows, which ``-w`` writes when the socket closes).
"""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import logging
import os
import sys
import tempfile
import time
import weakref
from collections import Counter, OrderedDict
from collections.abc import Sequence
from operator import itemgetter
from pathlib import Path

import msgspec
from mitmproxy import command, ctx, exceptions, http
from mitmproxy import flow as mflow
from mitmproxy import types as mtypes
from mitmproxy.addonmanager import Loader
from mitmproxy.hooks import UpdateHook
from mitmproxy.log import ALERT
from mitmproxy.utils import emoji

from .analysis import Analysis, Fed, Report
from .changes import redacted_from
from .engine.events import ExchangeVerdict, Finding
from .engine.machine import PAIR_TIMEOUT
from .flowmarks import COMMENT_PREFIX, Mark, mark_of
from .ingest.ahead import usable_cores
from .ingest.flowrecord import exchange_of
from .ingest.mitm import ConnectionsSeen, record_of, skip_reason
from .live_process import AnalysisProcess, Failure, ProcessGone, Settled, decoded
from .live_save import FlowSaver
from .model import Exchange
from .redact import Redactor, redact_finding, redact_report, redact_text
from .report.explain import explain as explain_verdict
from .report.inert import visible

log = logging.getLogger(__name__)

ENGINES = ("chromium", "firefox", "webkit")
SEVERITIES = ("error", "warning", "info")
_RANK = {severity: rank for rank, severity in enumerate(SEVERITIES)}

PENDING_LIMIT = 2048
"""Flows whose verdict is still open (each waits for the analysis; a preflight, for its
request): the bound protects a session where requests never come."""
RECENT_FLOWS = 256
"""Settled flows kept to mark when a finding over many flows (a missing Max-Age, per-URL
preflights) is recognised later."""
SAVE_BYTES = 80 * 1024 * 1024
"""Body bytes the flows the saver holds back (for their verdicts) may have between them:
past this the oldest is written without its mark."""
AGGREGATE_EVERY = 3.0
"""Seconds between looks for findings that need many flows, while new verdicts arrive."""
CHANGED_LIMIT = 500
"""Flows marked after they finished, announced together (every IDLE_FLUSH / 3 seconds)."""
IN_FLIGHT_LIMIT = 10000
"""CORS requests in flight remembered (oldest forgotten first)."""
IDLE_FLUSH = 1.5
"""Seconds without a finished flow, and nothing in flight that could still pair, after which
the verdicts still open are settled (the engine otherwise waits for capture time to move)."""
SAVE_LINGER = 2 * AGGREGATE_EVERY
"""Seconds a settled flow waits before ``corsflow_save`` writes it: long enough for the look
for findings over many flows to mark it."""

_META_ID = "corsflow.id"
"""flow.metadata key: the exchange id given to the flow (also saved by ``-w``)."""
_META_FLOW = "corsflow.flow"
"""flow.metadata key: the mitmproxy id of the flow numbered, to tell a copy (replay) apart."""


@dataclasses.dataclass(frozen=True, slots=True)
class _Settings:
    """The options every flow reads, copied whenever they change: mitmproxy deep-copies an
    option's value on each read, a cost paid several times a flow otherwise."""

    floor: int
    """The rank of ``corsflow_min_severity``: findings ranked above it are not told."""
    redact: bool
    mark: str
    mark_warning: str
    report_exchanges: int

    @classmethod
    def defaults(cls) -> _Settings:
        """As the options are declared (``load``), until mitmproxy configures the addon."""
        return cls(_RANK["warning"], True, ":no_entry:", ":hourglass:", 10000)

    @classmethod
    def read(cls) -> _Settings:
        opts = ctx.options
        return cls(_RANK[opts.corsflow_min_severity], opts.corsflow_redact, opts.corsflow_mark,
                   opts.corsflow_mark_warning, opts.corsflow_report_exchanges)


def addon_path() -> str:
    """The file to give ``mitmdump -s`` / ``mitmproxy -s`` / ``mitmweb -s``."""
    return str(Path(__file__).with_name("addon_script.py"))


def run_live(
    listen_host: str = "127.0.0.1",
    listen_port: int = 8080,
    report_path: str | None = None,
    engine: str = "chromium",
    extra_args: Sequence[str] = (),
    *,
    settings: Sequence[tuple[str, str]] = (),
) -> int:
    """Run mitmdump in this process with the addon loaded; return its exit status.

    mitmdump's own lines per flow and per connection are turned off (``flow_detail=0``,
    ``termlog_verbosity=alert``) so corsflow's stand out; ``extra_args`` (any mitmdump
    arguments) come last and win.
    """
    from mitmproxy.tools.main import mitmdump

    args = [
        "--listen-host", listen_host,
        "--listen-port", str(listen_port),
        "-s", addon_path(),
        "--set", "flow_detail=0",
        "--set", "termlog_verbosity=alert",
        "--set", f"corsflow_engine={engine}",
    ]  # fmt: skip
    if report_path:
        args += ["--set", f"corsflow_report={report_path}"]
    for name, value in settings:
        args += ["--set", f"{name}={value}"]
    args += list(extra_args)
    # mitmdump prints the log itself: handlers the caller set up (a CLI's basicConfig)
    # would print every line a second time while it runs.
    root = logging.getLogger()
    handlers = root.handlers[:]
    for handler in handlers:
        root.removeHandler(handler)
    cancelled = _CancelledCallbacks()
    logging.getLogger("asyncio").addFilter(cancelled)
    try:
        mitmdump(args)
    except SystemExit as e:
        if e.code is None or isinstance(e.code, int):
            return e.code or 0
        return 1
    finally:
        logging.getLogger("asyncio").removeFilter(cancelled)
        for handler in handlers:
            root.addHandler(handler)
    return 0


class _CancelledCallbacks(logging.Filter):
    """Drops asyncio's "Exception in callback" records whose exception is a CancelledError.

    When the proxy stops with client connections open (the browser just closed), mitmproxy
    cancels their tasks, and asyncio's stream callback then logs each cancellation with a
    traceback (mitmproxy issue 6600). A task cancelled on purpose is not an error; any other
    exception still shows."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not isinstance(exc, asyncio.CancelledError)


class FlowHold:
    """Flows by exchange id, to mark when their verdict, or a finding about them, comes.

    Held weakly: a flow the proxy itself has let go (mitmdump keeps none) is not kept alive
    for a mark no one would see, and a busy proxy's collector does not walk thousands of
    finished flows again and again. mitmweb's and the console's views, and the addon's own
    saver, hold the flows they show or write. Past ``limit`` ids the oldest are forgotten."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.flows: OrderedDict[str, weakref.ref[http.HTTPFlow]] = OrderedDict()

    def __contains__(self, eid: str) -> bool:
        return eid in self.flows

    def __len__(self) -> int:
        return len(self.flows)

    def put(self, eid: str, flow: http.HTTPFlow) -> None:
        flows = self.flows
        flows.pop(eid, None)
        flows[eid] = weakref.ref(flow)
        while len(flows) > self.limit:
            flows.popitem(last=False)

    def get(self, eid: str) -> http.HTTPFlow | None:
        held = self.flows.get(eid)
        return None if held is None else held()

    def pop(self, eid: str) -> http.HTTPFlow | None:
        held = self.flows.pop(eid, None)
        return None if held is None else held()

    def clear(self) -> None:
        self.flows.clear()


def _valid_marker(value: str) -> bool:
    return value in emoji.emoji or len(value) == 1


class CorsflowAddon:
    """Feeds finished flows to the analysis; logs, marks and comments what it finds."""

    def __init__(self) -> None:
        self._analysis: Analysis | None = None
        """The analysis, in the proxy's process; None when it runs beside (``_process``)."""
        self._process: AnalysisProcess | None = None
        """The analysis in a process of its own (``corsflow_analysis_process``)."""
        self._engine: str | None = None
        self._n = 0
        self._fed = 0
        self._connections = ConnectionsSeen()
        self._pending = FlowHold(PENDING_LIMIT)
        self._recent_flows = FlowHold(RECENT_FLOWS)
        self._announced: set[tuple[str, str | None, str | None]] = set()
        self._aggregated_at = (0.0, 0)
        self._recent: OrderedDict[str, ExchangeVerdict | msgspec.Raw] = OrderedDict()
        """The last verdicts, for the report and explanations (from the analysis process:
        still encoded)."""
        self._in_flight: dict[str, float] = {}
        self._last_feed = 0.0
        self._idle_asked = -1.0
        """``_last_feed`` when the idle proxy last had what was open settled: asked again
        only once new flows came (a flow the analysis failed on is never settled)."""
        self._failures: Counter[tuple[str, str]] = Counter()
        self._task: asyncio.Task[None] | None = None
        self._changed: dict[str, http.HTTPFlow] = {}
        self._forgotten = 0
        self._running = False
        self._saver: FlowSaver | None = None
        self._save_path = ""
        self._settings = _Settings.defaults()

    # --- options -------------------------------------------------------------------

    def load(self, loader: Loader) -> None:
        loader.add_option(
            "corsflow_engine", str, "chromium",
            "The browser whose CORS rules and preflight cache corsflow models.",
            choices=ENGINES,
        )  # fmt: skip
        loader.add_option(
            "corsflow_min_severity", str, SEVERITIES[_Settings.defaults().floor],
            "Log, mark and comment corsflow findings of this severity and above.",
            choices=SEVERITIES,
        )  # fmt: skip
        loader.add_option(
            "corsflow_report", str, "",
            "Write corsflow's report to this file when mitmproxy exits: JSON, or HTML when "
            "the name ends in .html. Empty: no report file.",
        )  # fmt: skip
        loader.add_option(
            "corsflow_report_exchanges", int, _Settings.defaults().report_exchanges,
            "How many of the most recent exchanges corsflow keeps to list in its report and "
            "to explain (findings and their counts cover every exchange). Bounds memory in "
            "long sessions.",
        )  # fmt: skip
        loader.add_option(
            "corsflow_redact", bool, True,
            "Replace cookie, credential and URL token values with REDACTED in corsflow's log "
            "lines, flow comments and report files.",
        )  # fmt: skip
        loader.add_option(
            "corsflow_mark", str, _Settings.defaults().mark,
            "Mark for flows the browser blocked (an emoji name such as :no_entry: or one "
            "character).",
        )  # fmt: skip
        loader.add_option(
            "corsflow_mark_warning", str, _Settings.defaults().mark_warning,
            "Mark for flows with a warning or note (redundant preflight, "
            "a missing Access-Control-Max-Age...).",
        )  # fmt: skip
        loader.add_option(
            "corsflow_analysis_process", bool, True,
            "Analyse in a process of its own beside the proxy, where a second core is free, so "
            "the proxy keeps its pace (marks then come a moment after each flow); false: in "
            "the proxy's process. Read when the proxy starts.",
        )  # fmt: skip
        loader.add_option(
            "corsflow_save", str, "",
            "Save every flow to this file as -w does, but once corsflow has marked and "
            "commented it (seconds after it finishes; the same order). Empty: not saved.",
        )  # fmt: skip

    def configure(self, updated: set[str]) -> None:
        problem = _option_problem(updated)
        if problem is not None:
            if self._running:
                raise exceptions.OptionsError(problem)  # type: ignore[no-untyped-call]
            # While the script loads, mitmproxy would print an OptionsError with a traceback;
            # an error logged now stops mitmdump at startup with just this line.
            log.error("corsflow: %s", problem)
            return
        self._settings = _Settings.read()
        if "corsflow_save" in updated:
            self._open_saver(ctx.options.corsflow_save)
        if self._engine is None or (
            "corsflow_engine" in updated and ctx.options.corsflow_engine != self._engine
        ):
            if self._engine is not None:
                log.info(
                    "corsflow: engine changed to %s; analysis restarted",
                    ctx.options.corsflow_engine,
                )
            self._start()

    def _start(self) -> None:
        self._engine = ctx.options.corsflow_engine
        # The analysis keeps findings and counts; the addon keeps the recent verdicts,
        # so a session of hours stays bounded.
        if self._process is not None:
            try:
                self._process.restart(self._engine)
            except ProcessGone as e:
                self._process_gone(e)
        else:
            self._analysis = Analysis(engine=self._engine, keep_exchanges=False)
        self._forgotten = 0
        self._fed = 0
        self._pending.clear()
        self._recent_flows.clear()
        self._recent.clear()
        self._announced.clear()

    def _open_saver(self, path: str) -> None:
        self._close_saver()
        if not path:
            return
        try:
            out = open(Path(path).expanduser(), "wb")  # noqa: SIM115 - open while the proxy runs
        except OSError as e:
            problem = f"corsflow_save: cannot write {path}: {e.strerror or e}"
            if self._running:
                raise exceptions.OptionsError(problem) from None  # type: ignore[no-untyped-call]
            log.error("corsflow: %s", problem)
            return
        self._save_path = path
        self._saver = FlowSaver(out, linger=SAVE_LINGER, limit=RECENT_FLOWS + PENDING_LIMIT,
                                max_bytes=SAVE_BYTES)

    def _close_saver(self) -> None:
        saver, self._saver = self._saver, None
        if saver is None:
            return
        try:
            saver.close()
        except OSError as e:
            log.error("corsflow: cannot save flows to %s: %s", self._save_path, e.strerror or e)
            return
        log.log(ALERT, "corsflow: %d flows saved to %s", saver.written,
                os.path.abspath(self._save_path))

    def _save(self, *, closed: http.HTTPFlow | None = None) -> None:
        """Write the flows the saver may write now; a write that fails stops the saving."""
        saver = self._saver
        if saver is None:
            return
        try:
            if closed is not None:
                saver.closed(closed)
            saver.release(lambda f: f.metadata.get(_META_ID, "") in self._pending,
                          time.monotonic())
        except OSError as e:
            self._saver = None
            log.error("corsflow: cannot save flows to %s: %s; saving stopped", self._save_path,
                      e.strerror or e)

    def running(self) -> None:
        self._running = True
        # Everything alive now (mitmproxy, its addons, this package: a large heap that lives
        # as long as the proxy) leaves the collector's view, so the full collections that
        # the flows' garbage triggers do not walk it again and again. The price: whatever
        # of it later becomes cyclic garbage is never freed, a one-off amount of startup
        # state, against a collector cost paid on every request.
        gc.freeze()
        opts = ctx.options
        where = ""
        if opts.server:
            where = f"; proxy at {opts.listen_host or '*'}:{opts.listen_port or 8080}"
        report = f"; report on exit: {opts.corsflow_report}" if opts.corsflow_report else ""
        log.log(
            ALERT,
            "corsflow: %s model, findings from %s up%s%s",
            self._engine,
            opts.corsflow_min_severity,
            where,
            report,
        )
        if opts.server and not getattr(opts, "corsflow_browser", ""):
            log.log(ALERT, "corsflow: for HTTPS, the browser must trust mitmproxy's CA (open "
                    "http://mitm.it through the proxy), or run `corsflow live --browser`, "
                    "which trusts it for a throwaway profile only")
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._settle_when_idle())
        if self._process is None and ctx.options.corsflow_analysis_process:
            self._start_process()

    def _start_process(self) -> None:
        """Move the analysis into a process of its own where a core is free for it."""
        if not sys.platform.startswith("linux") or usable_cores() < 2:
            return  # one core: a second process would only add the cost of the pipe
        if getattr(sys, "frozen", False):
            return  # mitmproxy's own binaries: no Python to start the process with
        if self._engine is None or self._fed:
            return  # flows were analysed here before the proxy ran: go on here
        try:
            process = AnalysisProcess(self._engine, self._results, self._aggregated,
                                      self._failed_beside, self._process_gone)
        except OSError as e:
            log.warning("corsflow: no analysis process (%s); analysing in the proxy's", e)
            return
        process.attach(asyncio.get_running_loop())
        self._process, self._analysis = process, None

    def done(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None
        try:
            self._done()
        finally:
            if self._process is not None:
                self._process.close()
                self._process = None

    def _done(self) -> None:
        if self._engine is None:
            self._close_saver()
            return
        try:
            # Settle what is still open: its findings are logged (mitmdump still prints
            # them; some frontends may have closed their log by now) and go in the report.
            self._flush()
            self._aggregate(now=True)
        except Exception as e:  # noqa: BLE001 - as in _observe
            self._failed(e)
        self._close_saver()
        report = self._for_output(self._report())
        if len(report.exchanges) >= 1000:
            # Replaying a long session to prove each change takes a while: say so.
            log.log(ALERT, "corsflow: proving the server changes by replaying %d exchanges...",
                    len(report.exchanges))
        try:
            for line in exit_summary(report):
                log.log(ALERT, "%s", visible(line))
        except Exception as e:  # noqa: BLE001 - as in _observe
            self._failed(e)
        path = ctx.options.corsflow_report
        if not path:
            if self._fed:
                log.log(ALERT, "corsflow: no report file was asked for (corsflow_report, or "
                        "`corsflow live --report FILE`)")
            return
        try:
            _write_report(report, path)
        except Exception as e:  # noqa: BLE001 - mitmproxy is exiting; say why the report is missing
            # The log may already be closed when ``done`` runs: stderr always reaches the user.
            sys.stderr.write(f"corsflow: could not write the report to {path}: {e}\n")
            return
        log.log(ALERT, "corsflow: report written to %s", os.path.abspath(path))

    # --- flows ---------------------------------------------------------------------

    def requestheaders(self, flow: http.HTTPFlow) -> None:
        # CORS requests in flight may still pair with a preflight: no idle settling meanwhile.
        # The names scanned in C: mitmproxy's own look-up decodes each field in Python.
        if b"origin" in map(bytes.lower, map(itemgetter(0), flow.request.data.headers.fields)):
            self._in_flight[flow.id] = flow.request.timestamp_start
            if len(self._in_flight) > IN_FLIGHT_LIMIT:  # flows that never finished
                del self._in_flight[next(iter(self._in_flight))]

    def response(self, flow: http.HTTPFlow) -> None:
        self._observe(flow)

    def error(self, flow: http.HTTPFlow) -> None:
        self._observe(flow)

    # Other flows are not analysed but take a number, as they do in a saved file.
    def tcp_end(self, flow: mflow.Flow) -> None:
        self._number(flow)

    def tcp_error(self, flow: mflow.Flow) -> None:
        self._number(flow)

    def udp_end(self, flow: mflow.Flow) -> None:
        self._number(flow)

    def udp_error(self, flow: mflow.Flow) -> None:
        self._number(flow)

    def dns_response(self, flow: mflow.Flow) -> None:
        self._number(flow)

    def dns_error(self, flow: mflow.Flow) -> None:
        self._number(flow)

    def websocket_end(self, flow: http.HTTPFlow) -> None:
        self._save(closed=flow)

    def _number(self, flow: mflow.Flow) -> int | None:
        """Give ``flow`` its number, once; None when it already has one."""
        if flow.metadata.get(_META_FLOW) == flow.id:
            return None
        n = self._n
        self._n += 1
        flow.metadata[_META_FLOW] = flow.id
        flow.metadata[_META_ID] = f"f{n}"
        if self._saver is not None:
            self._saver.finished(flow, time.monotonic())
            self._save()  # only past the bound: the flows it holds are older than this one
        return n

    def _observe(self, flow: http.HTTPFlow) -> None:
        self._in_flight.pop(flow.id, None)
        n = self._number(flow)
        if n is None or self._engine is None:
            return
        try:
            if skip_reason(flow) is not None:
                return
            record = record_of(flow, n)
            if self._process is not None:
                # The analysis process makes the exchange; the flow is held until its
                # verdict comes back, then marked as a late one is.
                self._pending.put(flow.metadata[_META_ID], flow)
                self._process.feed(record)
                self._fed += 1
                self._last_feed = time.monotonic()
            else:
                assert self._analysis is not None
                exchange = exchange_of(record, "live", self._connections)
                self._fed += 1
                self._last_feed = time.monotonic()
                self._apply_fed(self._analysis.feed(exchange), flow, exchange)
        except ProcessGone as e:
            self._process_gone(e)
        except Exception as e:  # noqa: BLE001 - the proxy must keep working whatever happens here
            self._failed(e)

    def _results(self, settled: Settled) -> None:
        """Verdicts and findings from the analysis process."""
        try:
            self._apply(settled.marks, settled.verdicts, settled.findings, None, None)
        except Exception as e:  # noqa: BLE001 - as in _observe
            self._failed(e)

    def _process_gone(self, e: ProcessGone) -> None:
        """The analysis process ended: go on analysing here, from the next flow."""
        process, self._process = self._process, None
        if process is None:
            return
        process.close(timeout=0.5)
        log.error("corsflow: the analysis process stopped (%s); analysing in the proxy from "
                  "now on, without what it had analysed", e)
        self._analysis = Analysis(engine=self._engine or "chromium", keep_exchanges=False)
        self._fed = 0

    @property
    def settled(self) -> int:
        """Exchanges whose verdict is settled (the live page's version)."""
        if self._process is not None:
            return self._process.settled
        return 0 if self._analysis is None else self._analysis.settled

    async def _settle_when_idle(self) -> None:
        while True:
            await asyncio.sleep(IDLE_FLUSH / 3)
            self._tick()

    def _tick(self) -> None:
        """Every ``IDLE_FLUSH / 3`` seconds: settle what is open once the proxy is idle, look
        for findings over many flows, announce the flows marked late, save."""
        try:
            if self._idle():
                self._idle_asked = self._last_feed
                self._flush(wait=False)
            self._aggregate()
            self._announce()
            self._save()
        except Exception as e:  # noqa: BLE001 - as in _observe
            self._failed(e)

    def _idle(self) -> bool:
        """True when verdicts are open but nothing can arrive to settle them any more.

        The engine settles a verdict when capture time has moved past it, which a live
        session only does with new traffic. Once no flow has finished for ``IDLE_FLUSH``
        seconds and no CORS request is in flight (the browser sends a request right after
        its preflight), what is open is settled now rather than at the next burst."""
        if self._engine is None or self._fed == self.settled:
            return False
        if self._last_feed == self._idle_asked:  # asked already; nothing new since
            return False
        if time.monotonic() - self._last_feed < IDLE_FLUSH:
            return False
        stale = time.time() - PAIR_TIMEOUT
        for flow_id, started in list(self._in_flight.items()):
            if started > stale:
                return False
            del self._in_flight[flow_id]  # a flow that never finished: stop waiting for it
        return True

    def _flush(self, *, wait: bool = True) -> None:
        """Settle what is open. ``wait=False``: the analysis process's results come later,
        through _results, and the proxy's loop goes on meanwhile (a busy or stuck process
        does not hold the proxy up while it is idle)."""
        if self._fed == self.settled:
            return
        if self._process is not None:
            try:
                if wait:
                    self._process.flush()  # its results come through _results
                else:
                    self._process.settle_soon()
            except ProcessGone as e:
                self._process_gone(e)
        elif self._analysis is not None:
            self._apply_fed(self._analysis.flush(), None, None)

    def _aggregate(self, *, now: bool = False) -> None:
        """Log and mark, once each, the findings only many flows show (a missing Max-Age
        repeated, per-URL preflights): looked for every few seconds while verdicts arrive."""
        if self._engine is None:
            return
        at, settled = self._aggregated_at
        if self.settled == settled or (not now and time.monotonic() - at < AGGREGATE_EVERY):
            return
        self._aggregated_at = (time.monotonic(), self.settled)
        if self._process is not None:
            # Asked, not waited for (the process may be busy with a batch): they come
            # through _aggregated; on exit, before the report, waited for.
            try:
                self._process.ask_aggregate()
                if now:
                    self._process.flush()
                return
            except ProcessGone as e:
                self._process_gone(e)
        a = self._analysis
        if a is not None:
            self._aggregated([*a.aggregator.findings(), *a.security.findings()])

    def _aggregated(self, findings: Sequence[Finding]) -> None:
        try:
            self._announce_findings(findings)
        except Exception as e:  # noqa: BLE001 - as in _observe
            self._failed(e)

    def _announce_findings(self, findings: Sequence[Finding]) -> None:
        floor, redact = self._settings.floor, self._settings.redact
        for finding in findings:
            key = (finding.code, finding.origin, finding.url)
            if _RANK.get(finding.severity, len(_RANK)) > floor or key in self._announced:
                continue
            self._announced.add(key)  # bounded: the aggregator keeps one record per key
            if redact:
                finding = redact_finding(finding)
            _log_finding(finding, {}, redact)
            for eid in finding.exchange_ids:
                flow = self._recent_flows.get(eid) or self._pending.get(eid)
                if flow is not None and self._annotate(flow, None, (finding,)):
                    self._changed[flow.id] = flow

    def _failed(self, e: Exception) -> None:
        tb = e.__traceback__
        while tb is not None and tb.tb_next is not None:
            tb = tb.tb_next
        where = f"{tb.tb_frame.f_code.co_filename}:{tb.tb_lineno}" if tb else "?"
        self._count_failure(type(e).__name__, where, str(e), e, None)

    def _failed_beside(self, failure: Failure) -> None:
        """An exception the analysis process met on one exchange."""
        self._count_failure(failure.kind, failure.where, failure.message, None, failure.text)

    def _count_failure(self, kind_name: str, where: str, message: str,
                       e: Exception | None, text: str | None) -> None:
        kind = (kind_name, where)
        self._failures[kind] += 1
        count = self._failures[kind]
        if count == 1:
            if e is not None:
                log.error("corsflow: analysis failed; flows pass on unanalysed", exc_info=e)
            else:
                log.error("corsflow: analysis failed; flows pass on unanalysed\n%s",
                          (text or "").rstrip())
        elif count in (10, 100, 1000, 10000, 100000):
            log.error("corsflow: the same analysis failure %d times: %s: %s", count, kind_name,
                      message)

    def _apply_fed(self, fed: Fed, flow: http.HTTPFlow | None,
                   exchange: Exchange | None) -> None:
        self._apply(tuple(mark_of(v) for v in fed.verdicts), fed.verdicts, fed.findings, flow,
                    exchange)

    def _apply(self, marks: Sequence[Mark], verdicts: Sequence[ExchangeVerdict | msgspec.Raw],
               findings: Sequence[Finding], flow: http.HTTPFlow | None,
               exchange: Exchange | None) -> None:
        """Keep the settled ``verdicts`` (``marks``, each verdict's, in the same order), log
        the ``findings`` they raised, and mark and comment the flows concerned.

        ``flow`` is the flow just fed (None when settling without one)."""
        settled = {m.id: m for m in marks}
        flows: dict[str, http.HTTPFlow] = {}
        if flow is not None and exchange is not None:
            if exchange.id in settled:
                flows[exchange.id] = flow
            else:
                self._pending.put(exchange.id, flow)
        recent = self._recent
        for mark, verdict in zip(marks, verdicts, strict=True):
            eid = mark.id
            held = self._pending.pop(eid)
            if held is not None:
                flows[eid] = held
            recent[eid] = verdict
            recent.move_to_end(eid)
        keep = self._settings.report_exchanges
        while len(self._recent) > keep:
            self._recent.popitem(last=False)
            self._forgotten += 1

        floor, redact = self._settings.floor, self._settings.redact
        about: dict[str, list[Finding]] = {}
        for finding in findings:
            if _RANK.get(finding.severity, len(_RANK)) > floor:
                continue
            if redact:
                finding = redact_finding(finding)
            _log_finding(finding, {eid: m.target for eid, m in settled.items()}, redact)
            for eid in finding.exchange_ids:
                about.setdefault(eid, []).append(finding)
                held = self._pending.get(eid)
                if eid not in flows and held is not None:
                    flows[eid] = held

        for eid, f in flows.items():
            self._recent_flows.put(eid, f)
            if self._annotate(f, settled.get(eid), about.get(eid, ())) and f is not flow:
                self._changed[f.id] = f
        if len(self._changed) >= CHANGED_LIMIT:
            self._announce()

    def _announce(self) -> None:
        """Tell mitmweb and the console to redraw flows marked after they finished.

        Batched: an update goes to every addon, too costly to send for each flow."""
        if self._changed:
            changed = list(self._changed.values())
            self._changed.clear()
            ctx.master.addons.trigger(UpdateHook(changed))

    def _annotate(
        self, flow: http.HTTPFlow, mark: Mark | None, findings: Sequence[Finding]
    ) -> bool:
        lines = [mark.line] if mark is not None and mark.line is not None else []
        lines += [_finding_line(f) for f in findings]
        if not lines:
            return False
        settings = self._settings
        if settings.redact:
            lines = [redact_text(line) for line in lines]
        kept = [ln for ln in flow.comment.splitlines() if not ln.startswith(COMMENT_PREFIX)]
        flow.comment = "\n".join(kept + lines)
        blocked_mark, warning_mark = settings.mark, settings.mark_warning
        if flow.marked and flow.marked not in (blocked_mark, warning_mark):
            return True  # never replace a mark someone else set
        if (mark is not None and mark.blocked) or any(
            f.severity == "error" for f in findings
        ):
            flow.marked = blocked_mark
        elif findings and flow.marked != blocked_mark:
            flow.marked = warning_mark
        return True

    # --- reports and commands ----------------------------------------------------------

    def _report(self) -> Report:
        """The analysis's report, listing the exchanges the addon still keeps."""
        report = None
        if self._process is not None:
            try:
                report = self._process.report(self._fed)
            except ProcessGone as e:
                self._process_gone(e)
        if report is None:
            assert self._analysis is not None
            d = self._analysis.diagnostics
            self._analysis.add_source("live", "mitmproxy", self._fed, d.skipped_count)
            report = self._analysis.report()
        kept = sorted(map(decoded, self._recent.values()),
                      key=lambda v: (v.exchange.started, v.exchange.id))
        notes = report.notes
        if self._forgotten:
            note = (
                f"live session: the report lists the last {len(kept)} of "
                f"{len(kept) + self._forgotten} exchanges (corsflow_report_exchanges); "
                "findings and their counts cover all of them"
            )
            notes = (*notes, note)
        return dataclasses.replace(report, exchanges=tuple(kept), notes=notes, _index={})

    @staticmethod
    def _for_output(report: Report) -> Report:
        if not ctx.options.corsflow_redact:
            return report
        redacted = redact_report(report)
        redacted_from(redacted, report)
        return redacted

    def snapshot(self) -> Report | None:
        """What is settled so far, without settling anything early (the live page's view)."""
        return None if self._engine is None else self._for_output(self._report())

    def report(self) -> Report | None:
        """The analysis so far, settled up to now (None before the addon is configured)."""
        if self._engine is None:
            return None
        self._flush()
        return self._report()

    @command.command("corsflow.report")  # type: ignore[untyped-decorator]
    def write_report(self, path: mtypes.Path) -> None:
        """Write corsflow's report now: JSON, or HTML when the path ends in .html."""
        report = self.report()
        if report is None:
            raise exceptions.CommandError("corsflow is not configured yet")
        try:
            _write_report(self._for_output(report), str(path))
        except OSError as e:
            raise exceptions.CommandError(
                f"corsflow: cannot write {path}: {e.strerror or e}"
            ) from None
        log.log(ALERT, "corsflow: report written to %s", path)

    @command.command("corsflow.explain")  # type: ignore[untyped-decorator]
    def explain(self, flows: Sequence[mflow.Flow]) -> None:
        """Log corsflow's decision, step by step, for each of these flows."""
        report: Report | None = None
        for f in flows:
            eid = f.metadata.get(_META_ID)
            if eid is None or self._engine is None:
                log.log(ALERT, "corsflow: flow %s was not analysed", f.id)
                continue
            if eid in self._pending:
                self._flush()  # the user asks now: settle what is open
            kept = self._recent.get(eid)
            if kept is None:
                log.log(
                    ALERT,
                    "corsflow: %s is no longer kept (corsflow_report_exchanges) or was cleared",
                    eid,
                )
                continue
            report = report or self._for_output(self._report())
            verdict = decoded(kept)
            if ctx.options.corsflow_redact:
                verdict = Redactor().verdict(verdict)
            for line in explain_verdict(verdict, report).splitlines():
                log.log(ALERT, "%s", line)

    @command.command("corsflow.clear")  # type: ignore[untyped-decorator]
    def clear(self) -> None:
        """Forget everything analysed so far and start again."""
        if self._engine is not None:
            self._start()
        log.log(ALERT, "corsflow: cleared")


SUMMARY_FINDINGS = 5


def exit_summary(report: Report) -> list[str]:
    """One screen when the proxy stops: what passed, what was blocked, what to change."""
    from .report.tally import tally

    c = tally(report).total
    blocked = c.blocked + c.failed_preflights
    lines = [(f"corsflow: {c.requests} cross-origin request(s), {c.preflights} preflight(s) "
              f"({c.preflight_ms:.0f} ms), {c.cache_hits} cache hit(s), {blocked} blocked, "
              f"{c.redundant} redundant preflight(s)")]
    from .changes import changes_of
    from .report.changes import change_line
    from .report.text import safe

    changes = changes_of(report)
    if changes:
        # The server changes first, each with the effect a replay of the session showed.
        lines.append("corsflow: to change:")
        lines += [f"corsflow:   {safe(change_line(c))}" for c in changes[:SUMMARY_FINDINGS]]
        return lines
    worth = [f for f in report.findings if f.severity in ("error", "warning")]
    if worth:
        lines.append("corsflow: to change:")
    for f in worth[:SUMMARY_FINDINGS]:
        count = f.count or len(f.exchange_ids)
        lines.append(f"corsflow:   {f.severity} {f.code} ({count}x): {f.hint or f.message}")
    if len(worth) > SUMMARY_FINDINGS:
        lines.append(f"corsflow:   ... and {len(worth) - SUMMARY_FINDINGS} more in the report")
    return lines


def _finding_line(f: Finding) -> str:
    fix = f"; fix: {f.hint}" if f.hint else ""
    return visible(f"{COMMENT_PREFIX} {f.severity} {f.code}: {f.message}{fix}")


def _log_finding(f: Finding, targets: dict[str, str], redact: bool = True) -> None:
    """One log line; ``targets``: the exchanges settled with it, by id (``METHOD URL [id]``)."""
    target = next((targets[e] for e in f.exchange_ids if e in targets), None) or f.url or ""
    if redact:
        target = redact_text(target)
    tail = f"fix: {f.hint}" if f.hint else f.message
    # A blocked request is the page's problem, not the proxy's: WARNING, never ERROR
    # (mitmdump exits when an ERROR is logged while it starts, e.g. replaying a file).
    # ALERT (mitmproxy's "draw the user's attention") for the rest, so it shows with
    # termlog_verbosity=alert, which hides mitmproxy's per-connection lines.
    level = logging.WARNING if f.severity == "error" else ALERT
    # Captured text is data: one log line, no escape sequence reaches the terminal.
    log.log(level, "corsflow: %s %s %s — %s", f.severity, f.code, visible(target), visible(tail))


def _option_problem(updated: set[str]) -> str | None:
    """What is wrong with the corsflow options just set, or None."""
    opts = ctx.options
    # mitmproxy checks ``choices`` when an option is set later, not for values given with
    # --set before the script that declares the option is loaded.
    for name, choices in (("corsflow_engine", ENGINES), ("corsflow_min_severity", SEVERITIES)):
        if name in updated and getattr(opts, name) not in choices:
            return f"{name}: {getattr(opts, name)!r} is not one of {', '.join(choices)}"
    if "corsflow_report_exchanges" in updated and opts.corsflow_report_exchanges < 0:
        return "corsflow_report_exchanges: must be 0 or more"
    for name in ("corsflow_mark", "corsflow_mark_warning"):
        if name in updated and not _valid_marker(getattr(opts, name)):
            return (
                f"{name}: {getattr(opts, name)!r} is neither an emoji name "
                f"(such as :no_entry:) nor a single character"
            )
    if "corsflow_report" in updated and opts.corsflow_report:
        parent = Path(opts.corsflow_report).expanduser().resolve().parent
        if not parent.is_dir():
            return f"corsflow_report: directory {parent} does not exist"
    return None


def _write_report(report: Report, path: str) -> None:
    """Render, then replace ``path`` in one step so a reader never sees half a report."""
    target = Path(path).expanduser()
    if target.name.lower().endswith(".html"):
        from .report.html import render_html

        text = render_html(report, title="CORS report (mitmproxy live)")
    else:
        from .report.json import render_json

        text = render_json(report)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
        os.chmod(tmp, 0o644)  # mkstemp's 0600 would hide the report from other readers
        os.replace(tmp, target)
    except BaseException:
        os.unlink(tmp)
        raise
