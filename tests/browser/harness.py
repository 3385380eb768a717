"""Drive a real Chromium through the scenario table and record what it decided.

One browser launch per capture mode: ``direct`` (Chromium talks to the servers itself; the
loopback traffic can be recorded with tcpdump and the context with Playwright's HAR) or
``proxy`` (Chromium goes through mitmdump, which saves flows and a HAR). The scenarios run
one after the other in a single page; the timed cache block runs the steps of all cache
scenarios on one clock, so the waits of different URLs overlap.

The truth about each fetch comes from three places: the page (did ``fetch()`` resolve?),
the DevTools Protocol (``Network.loadingFailed.corsErrorStatus``; ``requestWillBeSent`` of
type Preflight) and the API server's log (which preflights really arrived). Cache hits are
preflighted requests that arrived without a preflight before them.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from .captures import Mitmdump, Tcpdump
from .drivers import FETCH_JS
from .scenarios import Scenario, Step, all_scenarios, route_table
from .server import LoggedRequest, Route, TwoOrigins

log = logging.getLogger(__name__)

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--no-first-run", "--disable-quic",
]

# The drivers' fetch script, called the way Marionette and WebDriver call it: the spec
# first, the callback last.
_FETCH_JS = ("(s) => new Promise(done => (function () {" + FETCH_JS + "}).apply(null, [s, done]))")
# Several fetches started together (no await between them), for concurrent groups.
_FETCH_ALL_JS = ("(specs) => Promise.all(specs.map(s => new Promise(done => (function () {"
                 + FETCH_JS + "}).apply(null, [s, done]))))")

MARKER = "f"
"""Query parameter naming a fetch's slot in a concurrent group (``&f=<n>``): the server log
keeps the target, so requests in flight together are attributed by it, not by order."""

_CDP_EVENTS = (
    "Network.requestWillBeSent", "Network.requestWillBeSentExtraInfo",
    "Network.responseReceived", "Network.loadingFailed", "Network.loadingFinished",
)


@dataclass
class Wire:
    """One request the API server received, with what the browser made of it."""

    index: int
    time: float
    method: str
    url: str
    headers: list[tuple[str, str]]
    status: int
    scenario: str
    step: int
    kind: str
    """``preflight``, ``actual`` (the fetch's first non-OPTIONS request) or ``redirect``."""
    role: str
    """As the report contract names it: ``preflight``, ``preflighted`` or ``simple``."""
    verdict: str = "allowed"
    cors_error: str | None = None
    cache: str | None = None
    preflight: int | None = None
    """On a preflighted request: the index of the preflight whose result authorised it."""
    redundant: bool | None = None

    def header(self, name: str) -> str | None:
        values = [v for n, v in self.headers if n.lower() == name.lower()]
        return ", ".join(values) if values else None


@dataclass
class StepTruth:
    """One fetch() and what Chromium did with it."""

    scenario: str
    step: int
    method: str
    url: str
    credentials: str
    declared_preflight: bool
    cache_disabled: bool
    started: float
    outcome: str
    """``resolved`` or ``rejected`` (as the page saw the promise)."""
    status: int | None
    js_error: str | None
    cors_error: str | None = None
    failed_parameter: str | None = None
    engine_errors: list[str] = field(default_factory=list)
    """Firefox and WebKit: the browser's own names (or words) for why it blocked the fetch,
    from its console, first the one that decided."""
    cdp_preflights: int = 0
    """Preflights the DevTools Protocol reported for this fetch."""
    wire: list[int] = field(default_factory=list)
    """Indices into :attr:`Session.wire` of what the API server received for it."""

    @property
    def sent_preflight(self) -> bool:
        return self.cdp_preflights > 0

    @property
    def cache(self) -> str | None:
        """``miss``/``hit`` for a preflighted request whose fate the preflight decided."""
        if not self.declared_preflight:
            return None
        return "miss" if self.cdp_preflights else "hit"


@dataclass
class Session:
    mode: str
    page_origin: str
    api_origin: str
    chromium_version: str
    steps: list[StepTruth]
    wire: list[Wire]
    server_log: list[LoggedRequest]
    files: dict[str, str] = field(default_factory=dict)
    preflight_event_types: dict[str, list[str]] = field(default_factory=dict)
    """How the protocol labels preflights: the ``type`` of their ``requestWillBeSent`` and
    ``responseReceived`` events and their ``initiator.type``, each value seen."""

    def step(self, scenario: str, k: int = 0) -> StepTruth:
        for s in self.steps:
            if s.scenario == scenario and s.step == k:
                return s
        raise KeyError((scenario, k))

    def steps_of(self, scenario: str) -> list[StepTruth]:
        return [s for s in self.steps if s.scenario == scenario]

    def wire_of(self, scenario: str) -> list[Wire]:
        return [w for w in self.wire if w.scenario == scenario]

    def to_json(self, headers: bool = True) -> dict[str, Any]:
        """The truth as JSON; ``headers=False`` leaves out the request headers (samples)."""
        wire = [asdict(w) for w in self.wire]
        if not headers:
            for w in wire:
                w["headers"] = []
        return {
            "mode": self.mode, "page_origin": self.page_origin, "api_origin": self.api_origin,
            "chromium_version": self.chromium_version,
            "steps": [_step_json(s) for s in self.steps], "wire": wire,
            "preflight_event_types": self.preflight_event_types,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Session:
        wire = [Wire(**{**w, "headers": [tuple(h) for h in w["headers"]]})
                for w in data["wire"]]
        return cls(data["mode"], data["page_origin"], data["api_origin"],
                   data["chromium_version"], [StepTruth(**s) for s in data["steps"]], wire, [],
                   preflight_event_types=data.get("preflight_event_types", {}))


def _step_json(step: StepTruth) -> dict[str, Any]:
    out = asdict(step)
    if not out["engine_errors"]:
        del out["engine_errors"]  # Chromium's: the truth files recorded before it stay valid
    return out


@dataclass
class Captures:
    """Which files to write; None for the ones not wanted."""

    pcap: Path | None = None
    playwright_har: Path | None = None
    flows: Path | None = None
    mitm_har: Path | None = None
    workdir: Path | None = None
    netlog: Path | None = None
    """Chromium's own NetLog of the session (``--log-net-log``, capture mode Everything)."""


def _blocks(scenarios: list[Scenario]) -> list[list[Scenario]]:
    """The scenarios grouped in running order: sequential, timed, nocache."""
    return [[s for s in scenarios if s.block == b] for b in ("sequential", "timed", "nocache")]


def _due_steps(block: list[Scenario], wait: Callable[[float], None]
               ) -> Iterator[tuple[Scenario, int]]:
    """The steps of a block, each when it is due.

    A sequential scenario's steps run back to back. In a timed block a step's offset counts
    from the moment its scenario's first step ran, so a busy machine that delays one
    scenario does not shift the timers of another; the step due first runs next.
    """
    if all(s.block == "sequential" for s in block):
        for s in block:
            for k in range(len(s.steps)):
                yield s, k
        return
    nxt = {s.name: 0 for s in block}
    base: dict[str, float] = {}
    order = {s.name: i for i, s in enumerate(block)}
    start = time.monotonic()

    def due(s: Scenario) -> float:
        k = nxt[s.name]
        at = s.steps[k].at or 0.0
        if k == 0:
            return start + at
        return base[s.name] + at - (s.steps[0].at or 0.0)

    while True:
        ready = [s for s in block if nxt[s.name] < len(s.steps)]
        if not ready:
            return
        s = min(ready, key=lambda s: (due(s), order[s.name]))
        delay = due(s) - time.monotonic()
        if delay > 0:
            wait(delay)
        k = nxt[s.name]
        if k == 0:
            base[s.name] = time.monotonic()
        nxt[s.name] = k + 1
        yield s, k


def run_session(
    mode: str,
    captures: Captures,
    scenarios: list[Scenario] | None = None,
    servers: Callable[[dict[str, Route]], Any] = TwoOrigins,
) -> Session:
    """Start the servers and the capture tools, run every scenario in Chromium, stop.

    ``servers`` makes the page and API servers from the route table (``TwoOrigins``, or
    an HTTPS one whose certificate the browser is told to accept)."""
    from playwright.sync_api import sync_playwright

    scenarios = scenarios if scenarios is not None else all_scenarios()
    if mode == "proxy" and captures.flows is None:
        raise ValueError("proxy mode needs captures.flows")
    with servers(route_table(scenarios)) as srv:
        tcpdump = Tcpdump(captures.pcap, (srv.page_port, srv.api_port)) if captures.pcap else None
        if tcpdump:
            tcpdump.__enter__()
        try:
            mitm = None
            if mode == "proxy":
                assert captures.flows is not None
                workdir = captures.workdir or captures.flows.parent
                mitm = Mitmdump(captures.flows, captures.mitm_har, workdir / "mitm-conf")
                mitm.__enter__()
            try:
                with sync_playwright() as pw:
                    args = list(CHROMIUM_ARGS)
                    if captures.netlog is not None:
                        args += [f"--log-net-log={captures.netlog}",
                                 "--net-log-capture-mode=Everything"]
                    extra = getattr(srv, "chromium_args", ())  # e.g. its own certificate
                    if "--enable-quic" in extra:
                        args.remove("--disable-quic")
                    args += extra
                    if mitm is not None:
                        # <-loopback> removes the implicit bypass of localhost and 127.0.0.1.
                        args += [f"--proxy-server=http://127.0.0.1:{mitm.port}",
                                 "--proxy-bypass-list=<-loopback>"]
                    browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True,
                                                 args=args)
                    try:
                        ctx_kw: dict[str, Any] = {}
                        if captures.playwright_har is not None:
                            ctx_kw.update(record_har_path=str(captures.playwright_har),
                                          record_har_content="omit")
                        context = browser.new_context(**ctx_kw)
                        session = _drive(context, srv, scenarios, mode, browser.version)
                        context.close()  # writes Playwright's HAR
                    finally:
                        browser.close()
            finally:
                if mitm is not None:
                    mitm.__exit__(None, None, None)
        finally:
            if tcpdump:
                tcpdump.__exit__(None, None, None)
    for name in ("pcap", "playwright_har", "flows", "mitm_har", "netlog"):
        path = getattr(captures, name)
        if path is not None:
            session.files[name] = str(path)
    return session


# fetch() normalises these (case-insensitively) to upper case; every other method is sent
# as written (https://fetch.spec.whatwg.org/#concept-method-normalize).
_NORMALISED = frozenset({"DELETE", "GET", "HEAD", "OPTIONS", "POST", "PUT"})


def sent_method(method: str) -> str:
    """The method fetch() puts on the wire for ``method`` (``put`` goes out as PUT)."""
    return method.upper() if method.upper() in _NORMALISED else method


def step_group(scenario: Scenario, k: int) -> list[int]:
    """The steps started together with step ``k``: those with the same group number in the
    scenario's ``groups`` (a field only concurrent scenarios have); just ``k`` otherwise."""
    groups: tuple[int, ...] = getattr(scenario, "groups", ())
    if not groups:
        return [k]
    return [j for j, g in enumerate(groups) if g == groups[k]]


def marker(url: str) -> str | None:
    """The ``f`` marker of a URL's query, or None."""
    values = parse_qs(urlsplit(url).query).get(MARKER)
    return values[0] if values else None


def _drive(context: Any, srv: Any, scenarios: list[Scenario], mode: str,
           version: str) -> Session:
    page = context.new_page()
    cdp = context.new_cdp_session(page)
    events: list[tuple[str, dict[str, Any]]] = []
    for name in _CDP_EVENTS:
        cdp.on(name, lambda params, name=name: events.append((name, params)))
    cdp.send("Network.enable")
    page.goto(srv.page_origin + "/")
    steps: list[StepTruth] = []
    windows: list[tuple[int, int]] = []
    cache_disabled = False
    for block in _blocks(scenarios):
        # page.wait_for_timeout, not time.sleep: protocol events are delivered while waiting.
        for scenario, k in _due_steps(block, lambda d: page.wait_for_timeout(d * 1000)):
            group = step_group(scenario, k)
            if k != group[0]:
                continue  # started with the first of its group
            step = scenario.steps[k]
            if step.cache_disabled != cache_disabled:
                cache_disabled = step.cache_disabled
                cdp.send("Network.setCacheDisabled", {"cacheDisabled": cache_disabled})
            before = len(srv.log)
            urls = [scenario.url(srv.api_origin, j, srv.page_origin) for j in group]
            started = time.time()
            if len(group) == 1:
                results = [page.evaluate(_FETCH_JS, _fetch_spec(step, urls[0]))]
            else:
                results = page.evaluate(_FETCH_ALL_JS, [
                    _fetch_spec(scenario.steps[j], u) for j, u in zip(group, urls)])
            for j, url, result in zip(group, urls, results):
                st = scenario.steps[j]
                windows.append((before, len(srv.log)))
                steps.append(StepTruth(
                    scenario.name, j, sent_method(st.method), url, st.credentials,
                    st.preflight,
                    st.cache_disabled, started, result["outcome"], result["status"],
                    result["error"],
                ))
    page.wait_for_timeout(300)  # let the last protocol events arrive
    server_log = srv.log.snapshot()
    wire = _attach(steps, windows, server_log, srv.api_origin, events, scenarios)
    return Session(mode, srv.page_origin, srv.api_origin, version, steps, wire, server_log,
                   preflight_event_types=_preflight_event_types(events))


def _fetch_spec(step: Step, url: str) -> dict[str, Any]:
    return {"url": url, "method": step.method, "headers": [list(h) for h in step.headers],
            "body": step.body, "credentials": step.credentials, "cache": step.cache,
            "frame": step.frame}


def _attach(
    steps: list[StepTruth],
    windows: list[tuple[int, int]],
    server_log: list[LoggedRequest],
    api_origin: str,
    events: list[tuple[str, dict[str, Any]]],
    scenarios: list[Scenario],
) -> list[Wire]:
    """Join the page's results, the protocol's events and the server log into the truth."""
    _attach_cdp(steps, events)
    owned = _attributed(steps, windows, server_log, scenarios)
    wire: list[Wire] = []
    for n, (truth, (lo, hi)) in enumerate(zip(steps, windows)):
        arrived = [e for e in server_log[lo:hi] if e.server == "api"]
        mark = marker(truth.url)
        if n in owned:
            arrived = owned[n]
        elif mark is not None:
            # A concurrent group shares its window: each fetch owns what carries its marker
            # (redirect targets keep the query: Location "...?{query}").
            arrived = [e for e in arrived if marker(e.target) == mark]
        seen_actual = False
        for e in arrived:
            if e.method == "OPTIONS" and e.header("Access-Control-Request-Method"):
                kind, role = "preflight", "preflight"
            elif not seen_actual:
                kind, role = "actual", ("preflighted" if truth.declared_preflight else "simple")
                seen_actual = True
            else:
                # A redirected non-simple request keeps its headers, so it stays preflighted
                # (Chromium preflights the new URL: preflighted-redirect-*).
                kind = "redirect"
                role = "preflighted" if truth.declared_preflight else "simple"
            truth.wire.append(len(wire))
            wire.append(Wire(len(wire), e.time, e.method, api_origin + e.target,
                             list(e.headers), e.status, truth.scenario, truth.step, kind, role))
        if truth.outcome == "rejected" and truth.wire:
            last = wire[truth.wire[-1]]
            last.verdict = "blocked"
            last.cors_error = truth.cors_error
    for w in wire:
        if w.kind == "preflight":
            w.redundant = False
    pair_truth(steps, wire)
    # Redundant preflights: those the control scenario (cache on) did without.
    for s in scenarios:
        if s.control is None:
            continue
        control = {t.step: t for t in steps if t.scenario == s.control}
        for truth in steps:
            if truth.scenario != s.name:
                continue
            ctl = control.get(truth.step)
            for i in truth.wire:
                if wire[i].kind == "preflight" and ctl is not None:
                    wire[i].redundant = ctl.cache == "hit"
    return wire


def pair_truth(steps: list[StepTruth], wire: list[Wire]) -> None:
    """Preflight pairing and cache of the truth: a preflighted request a preflight of its own
    fetch went to its URL before is a miss paired with it; otherwise a hit, on the result of
    the latest preflight for the same URL that passed (Chromium replaces the entry with each
    new result)."""
    last_passing: dict[str, int] = {}
    for truth in steps:
        sent_for: dict[str, Wire] = {}  # this fetch's preflight per URL (redirects: several)
        for w in (wire[i] for i in truth.wire):
            if w.kind == "preflight":
                sent_for[w.url] = w
                if w.verdict == "allowed":
                    last_passing[w.url] = w.index
            elif w.role == "preflighted":
                p = sent_for.get(w.url)
                if p is not None:
                    w.cache, w.preflight = "miss", p.index
                else:
                    w.cache, w.preflight = "hit", last_passing.get(w.url)


def _attributed(steps: list[StepTruth], windows: list[tuple[int, int]],
                server_log: list[LoggedRequest], scenarios: list[Scenario]
                ) -> dict[int, list[LoggedRequest]]:
    """What each fetch of a concurrent group owns, for scenarios that attribute requests
    themselves: fetches racing to the same URL carry no marker, so the scenario's
    ``attribute(truths, arrived)`` splits the group's shared window (one list per fetch).
    Keyed by index into ``steps``; other fetches are not in it."""
    by_name = {s.name: s for s in scenarios}
    out: dict[int, list[LoggedRequest]] = {}
    n = 0
    while n < len(steps):
        scenario = by_name.get(steps[n].scenario)
        attribute = getattr(scenario, "attribute", None)
        if scenario is None or attribute is None:
            n += 1
            continue
        # The group's fetches were appended together, in step order, with one window.
        together = set(step_group(scenario, steps[n].step))
        end = n
        while (end < len(steps) and steps[end].scenario == scenario.name
               and steps[end].step in together and windows[end] == windows[n]):
            end += 1
        lo, hi = windows[n]
        arrived = [e for e in server_log[lo:hi] if e.server == "api"]
        for k, part in enumerate(attribute(steps[n:end], arrived)):
            out[n + k] = part
        n = end
    return out


def _preflight_event_types(events: list[tuple[str, dict[str, Any]]]) -> dict[str, list[str]]:
    ids: set[str] = set()
    seen: dict[str, set[str]] = {"requestWillBeSent": set(), "initiator": set(),
                                 "responseReceived": set()}
    for name, p in events:
        initiator = p.get("initiator") or {}
        if name == "Network.requestWillBeSent" and initiator.get("type") == "preflight":
            ids.add(p["requestId"])
            seen["requestWillBeSent"].add(str(p.get("type")))
            seen["initiator"].add(str(initiator.get("type")))
        elif name == "Network.responseReceived" and p.get("requestId") in ids:
            seen["responseReceived"].add(str(p.get("type")))
    return {k: sorted(v) for k, v in seen.items()}


def _attach_cdp(steps: list[StepTruth], events: list[tuple[str, dict[str, Any]]]) -> None:
    """Find each fetch's request in the protocol's events (by method, URL and order)."""
    if not events:  # Firefox and WebKit: the server log alone says what was sent
        return
    first_seen: dict[str, dict[str, Any]] = {}
    order: list[str] = []
    preflights_for: dict[str, int] = {}
    failed: dict[str, dict[str, Any]] = {}
    for name, p in events:
        rid = p.get("requestId", "")
        if name == "Network.requestWillBeSent":
            initiator = p.get("initiator") or {}
            if p.get("type") == "Preflight" or initiator.get("type") == "preflight":
                parent = initiator.get("requestId")
                if parent:
                    preflights_for[parent] = preflights_for.get(parent, 0) + 1
                continue
            if p.get("type") == "Fetch" and rid not in first_seen:
                first_seen[rid] = p
                order.append(rid)
        elif name == "Network.loadingFailed":
            failed[rid] = p
    queue: dict[tuple[str, str], list[str]] = {}
    for rid in order:
        req = first_seen[rid]["request"]
        queue.setdefault((req["method"], req["url"]), []).append(rid)
    for truth in steps:
        ids = queue.get((truth.method, truth.url)) or []
        if not ids:
            log.warning("no protocol request for %s %s", truth.method, truth.url)
            continue
        rid = ids.pop(0)
        truth.cdp_preflights = preflights_for.get(rid, 0)
        f = failed.get(rid)
        if f is not None:
            status = f.get("corsErrorStatus") or {}
            truth.cors_error = status.get("corsError") or None
            truth.failed_parameter = status.get("failedParameter") or None


def format_truth(session: Session) -> str:
    """A plain-text table of every fetch and what reached the server."""
    rows = [f"Chromium {session.chromium_version}, mode {session.mode}"]
    rows.append(f"{'scenario':34} {'k':>2} {'method':7} {'outcome':8} {'status':>6} "
                f"{'cors error':38} {'param':14} {'pf':>2} {'cache':5} wire")
    for s in session.steps:
        wire = " ".join(
            f"{session.wire[i].method}:{session.wire[i].status}" for i in s.wire)
        rows.append(
            f"{s.scenario:34} {s.step:>2} {s.method:7} {s.outcome:8} {s.status!s:>6} "
            f"{s.cors_error or ''!s:38} {str(s.failed_parameter or '')[:14]:14} "
            f"{s.cdp_preflights:>2} {s.cache or ''!s:5} {wire}")
    return "\n".join(rows)


def save_truth(session: Session, path: Path) -> None:
    path.write_text(json.dumps(session.to_json(), indent=1))


if __name__ == "__main__":
    import sys
    import tempfile

    logging.basicConfig(level=logging.INFO)
    mode = sys.argv[1] if len(sys.argv) > 1 else "direct"
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        caps = (Captures(flows=tmp / "s.flows", mitm_har=tmp / "s.har", workdir=tmp)
                if mode == "proxy" else Captures())
        t = time.monotonic()
        s = run_session(mode, caps)
        print(format_truth(s))
        print(f"{len(s.steps)} fetches, {len(s.wire)} requests on the wire, "
              f"{time.monotonic() - t:.1f} s")
