"""Run the scenario table in Firefox or WebKit and record what the browser decided.

The same servers, scenarios and timed blocks as the Chromium harness (:mod:`.harness`);
what differs is where the truth comes from. These browsers have no DevTools Protocol here,
so the server log alone says which preflights were sent (a preflighted request that arrived
without one was a cache hit), the page says whether ``fetch()`` resolved, and the browser's
own log, where it has one, names the reason for a failure (Firefox's console categories).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .captures import CaptureUnavailable, Tcpdump
from .drivers import Driver, EngineMessage, start, webkit_console_words
from .harness import (
    Captures,
    Session,
    StepTruth,
    Wire,
    _attach,
    _blocks,
    _due_steps,
    _fetch_spec,
    marker,
    sent_method,
    step_group,
)
from .scenarios import Scenario, actual, all_scenarios, preflight, route_table
from .server import Route, TwoOrigins

log = logging.getLogger(__name__)

WARM_UP_PATH = "/s/warm-up"
FRESH_PLAN = ("a", "a", "b", "a", "b", "b", "a")
"""The session's first fetches: a preflighted PUT (Max-Age 600) to ``WARM_UP_PATH-a`` or
``-b``, 0.3 s apart. A fresh Firefox uses no result here until a's third preflight, and
never one stored before its cache started (b's first); so the scenarios after it find a
cache that works (FIREFOX-FACTS.md)."""


def run_engine_session(engine: str, captures: Captures,
                       scenarios: list[Scenario] | None = None,
                       servers: Callable[[dict[str, Route]], Any] = TwoOrigins) -> Session:
    """Start the servers, tcpdump (when asked) and the browser; run the scenarios; stop.

    ``servers`` makes the page and API servers from the route table, as in
    :func:`.harness.run_session`.

    A scenario that needs DevTools' "Disable cache" is left out for a browser whose driver
    cannot set it (WebKit); ``session.files["skipped"]`` names them.
    """
    scenarios = scenarios if scenarios is not None else all_scenarios()
    routes = route_table(scenarios)
    for key in set(FRESH_PLAN):
        routes[f"{WARM_UP_PATH}-{key}"] = Route(preflight(), actual())
    with servers(routes) as srv:
        tcpdump = Tcpdump(captures.pcap, (srv.page_port, srv.api_port)) if captures.pcap else None
        if tcpdump:
            tcpdump.__enter__()
        try:
            driver = start(engine, captures.workdir)
            try:
                session = _drive(driver, srv, scenarios)
            finally:
                driver.close()
        finally:
            if tcpdump:
                tcpdump.__exit__(None, None, None)
    if engine == "webkit":
        words = webkit_console_words(scenarios, captures.workdir)
        for t in session.steps:
            if t.step == 0 and t.scenario in words:
                t.engine_errors = words[t.scenario]
    if captures.pcap is not None:
        session.files["pcap"] = str(captures.pcap)
    return session


def run_with_pcap(engine: str, workdir: Path, scenarios: list[Scenario] | None = None
                  ) -> Session:
    """A session captured with tcpdump, or without a capture when tcpdump may not run."""
    try:
        return run_engine_session(engine, Captures(pcap=workdir / "session.pcap",
                                                   workdir=workdir), scenarios)
    except CaptureUnavailable as e:
        session = run_engine_session(engine, Captures(workdir=workdir), scenarios)
        session.files["pcap_unavailable"] = str(e)
        return session


def _drive(driver: Driver, srv: TwoOrigins, scenarios: list[Scenario]) -> Session:
    skipped: list[str] = []
    if driver.name == "webkit":
        skipped = [s.name for s in scenarios if any(st.cache_disabled for st in s.steps)]
        scenarios = [s for s in scenarios if s.name not in skipped]
    by_name = {s.name: s for s in scenarios}
    driver.open(srv.page_origin + "/")
    warm_up = _warm_up(driver, srv)
    steps: list[StepTruth] = []
    windows: list[tuple[int, int]] = []
    cache_disabled = False
    for block in _blocks(scenarios):
        for scenario, k in _due_steps(block, time.sleep):
            group = step_group(scenario, k)
            if k != group[0]:
                continue  # started with the first of its group (concurrent scenarios)
            step = scenario.steps[k]
            if step.cache_disabled != cache_disabled:
                cache_disabled = step.cache_disabled
                driver.set_cache_disabled(cache_disabled)
            before = len(srv.log)
            urls = [scenario.url(srv.api_origin, j, srv.page_origin) for j in group]
            started = time.time()
            if len(group) == 1:
                results = [driver.fetch(_fetch_spec(step, urls[0]))]
            else:
                results = driver.fetch_all([_fetch_spec(scenario.steps[j], u)
                                            for j, u in zip(group, urls)])
            messages = driver.messages()
            for j, url, result in zip(group, urls, results):
                st = scenario.steps[j]
                windows.append((before, len(srv.log)))
                truth = StepTruth(scenario.name, j, sent_method(st.method), url, st.credentials,
                                  st.preflight, st.cache_disabled, started, result["outcome"],
                                  result["status"], result["error"])
                truth.engine_errors = _reasons(messages, url, srv.api_origin)
                steps.append(truth)
    time.sleep(0.3)
    server_log = srv.log.snapshot()
    for truth, (lo, hi) in zip(steps, windows):
        # No protocol here: the preflights in the fetch's window (a concurrent group's:
        # those carrying its marker; a race's cannot be told apart, so none are counted).
        mark = marker(truth.url)
        race = mark is None and len(step_group(by_name[truth.scenario], truth.step)) > 1
        truth.cdp_preflights = 0 if race else sum(
            1 for e in server_log[lo:hi]
            if e.server == "api" and e.method == "OPTIONS"
            and e.header("Access-Control-Request-Method")
            and (mark is None or marker(e.target) == mark))
    wire = _attach(steps, windows, server_log, srv.api_origin, [], scenarios)
    if driver.name == "firefox":
        _pair_merged_hits(steps, wire)
    session = Session(driver.name, srv.page_origin, srv.api_origin, driver.version, steps, wire,
                      server_log)
    session.files["warm_up"] = " ".join(warm_up)
    if skipped:
        session.files["skipped"] = " ".join(skipped)
    return session


def _warm_up(driver: Driver, srv: TwoOrigins) -> list[str]:
    """Run :data:`FRESH_PLAN`; returns each fetch's ``miss`` (a preflight was sent) or
    ``hit``."""
    seen: list[str] = []
    for key in FRESH_PLAN:
        before = len(srv.log)
        driver.fetch({"url": f"{srv.api_origin}{WARM_UP_PATH}-{key}?s=warm-up",
                      "method": "PUT", "headers": [["X-A", "1"]], "body": "x",
                      "credentials": "omit", "cache": "default", "frame": "top"})
        sent = [e for e in srv.log.snapshot()[before:] if e.method == "OPTIONS"]
        seen.append("miss" if sent else "hit")
        time.sleep(0.3)
    driver.messages()
    return seen


def _reasons(messages: list[EngineMessage], url: str, api_origin: str) -> list[str]:
    """The categories of the messages about this fetch: those naming its URL, or any URL
    of the API (a redirect's target)."""
    base = url.split("?", 1)[0]
    return [m.category for m in messages
            if m.category.startswith("CORS") and (base in m.text or api_origin in m.text)]


def _pair_merged_hits(
    steps: list[StepTruth], wire: list[Wire],
    step_headers: Callable[[StepTruth], tuple[tuple[str, str], ...]] | None = None,
) -> None:
    """Firefox merges results and keys them by credentials mode: each method and header
    has its own grant and expiry. A hit was authorised by the grants of the latest passing
    preflights (on its URL, in its credentials mode) for its method and each of its
    headers; the one of those that expires first (all Max-Age 600: the oldest) is the
    preflight that authorised it. Chromium's replacing cache has a single one.
    ``step_headers``: a step's request headers (by default, looked up among the fixed
    scenarios). A hit is matched by its own URL and method: after a redirect they are the
    hop's, not the step's."""
    step_headers = step_headers or _step_headers
    asked: dict[int, tuple[str, str, set[str]]] = {}
    for t in steps:
        for i in t.wire:
            w = wire[i]
            if w.kind == "preflight" and w.verdict == "allowed":
                names = (w.header("Access-Control-Request-Headers") or "").split(",")
                asked[i] = (w.url, t.credentials,
                            {w.header("Access-Control-Request-Method") or ""}
                            | {n.strip() for n in names if n.strip()})
    for t in steps:
        names = {n.lower() for n, _ in step_headers(t)}
        for i in t.wire:
            w = wire[i]
            if w.cache == "hit":
                wanted = {w.method} | names
                latest = [max((j for j, (url, creds, grants) in asked.items()
                               if j < i and url == w.url and creds == t.credentials
                               and token in grants), default=None) for token in wanted]
                found = [j for j in latest if j is not None]
                w.preflight = min(found) if found else w.preflight


def _step_headers(t: StepTruth) -> tuple[tuple[str, str], ...]:
    from .scenarios import all_scenarios as _all
    from .scenarios_engines import engine_scenarios

    for s in (*_all(), *engine_scenarios()):
        if s.name == t.scenario:
            return s.steps[t.step].headers
    return ()
