"""Randomly generated scenarios: where does corsflow's CORS model disagree with a browser?

``random_scenarios(seed, n)`` builds ``n`` sequential scenarios from the types of
:mod:`.scenarios` (one URL each, 1-3 fetches to it so that the preflight cache is used), with
requests a page can make with ``fetch()`` and server answers drawn from the edge cases of the
CORS protocol: odd statuses, Allow-Origin/-Credentials/-Methods/-Headers values that are
almost right, Max-Age values that are not integers, redirects. The same seed gives the same
scenarios.

Run them in a real browser and compare corsflow's report of the capture (tcpdump's pcap) with
what the browser did::

    PYTHONPATH=. .venv/bin/python -m tests.browser.scenarios_random --seed 1 --n 100 \\
        --engine chromium

Each disagreement is printed with what it takes to reproduce it: the scenario's fetches, the
server's answers, the browser's verdict (and CorsError, for Chromium) and corsflow's verdict
with the reason its trace gives. ``--only NAME[,NAME]`` runs some scenarios of the batch again,
``--minimise`` shrinks each disagreeing scenario to the smallest one that still shows it.

``--capture netlog`` (Chromium only) compares the same sessions through Chromium's own NetLog
instead of the pcap. ``--concurrent`` generates scenarios whose fetches run in groups of 2-3
started together (no await between them), so that several preflights are in flight at once;
each fetch's URL carries its slot in the group (``&f=<n>``, kept by redirects), which is how
the server log's requests are attributed to it and which keeps the comparison's (method, URL,
occurrence) matching unambiguous. The slot is part of the URL, hence of the preflight cache's
key: fetches of one group never share an entry, later groups reuse the slots' entries.

``--capture flows`` (Chromium only) runs the sessions through mitmdump (the harness's proxy
mode) and compares corsflow's report of the saved flow file. ``--race`` makes the groups' fetches
go to the SAME URL (no marker), so several identical preflights are in flight for one cache
entry: each fetch is tagged by a header value that changes neither the URL nor what its
preflight asks for (:func:`race_tag`); preflights cannot be attributed, so those scenarios are
judged on each request's role, verdict and CorsError, the multiset of cache hits and misses,
and the multiset of preflight verdicts and redundancy (:func:`compare_race`). ``--concurrent``
and ``--race`` also run in Firefox and WebKit (the drivers' ``fetch_all``).

The truth is built the way the harness builds it (:mod:`.harness`, :mod:`.engine_harness`),
with one correction that random scenarios need: whether a request needs a preflight is read
from what reached the server (a 302 turns POST into GET and drops Content-Type) against the
generator's own table of which header values are safelisted, not from corsflow.
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import re
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

from . import compare as compare_mod
from . import engine_harness, harness
from .compare import Disagreement, analyze_json, compare_wire
from .harness import MARKER, Captures, Session, StepTruth, Wire, sent_method, step_group
from .scenarios import ACAC, ACAH, ACAM, ACAO, EVIL, MAX_AGE, Scenario, Step
from .server import LoggedRequest, Reply, Route, TwoOrigins

log = logging.getLogger(__name__)

PREFIX = "rnd"
"""Every generated scenario's name starts with this (``rnd<seed>-<i>``)."""

SAFE_METHODS = frozenset({"GET", "HEAD", "POST"})

METHODS = ("GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "patch", "put", "delete", "FOO")
NON_SIMPLE_METHODS = ("PUT", "DELETE", "PATCH", "patch", "put", "FOO")


# Request headers a page can set, each with the generator's own verdict "safelisted?" per the
# standard's #cors-safelisted-request-header (the same in every engine for these values).
# Kept apart from corsflow on purpose: this table is the independent side of the comparison.
HEADER_OPTIONS: tuple[tuple[str, str, bool], ...] = (
    ("X-A", "1", False),
    ("X-B", "1", False),
    ("Content-Type", "text/plain", True),
    ("Content-Type", "application/json", False),
    ("Content-Type", "text/plain;charset=utf-8", True),
    ("Content-Type", "multipart/form-data", True),  # no boundary: still the safelisted essence
    ("Content-Type", 'text/plain; a="b"', False),  # '"' is a CORS-unsafe byte
    ("Content-Type", "text/plain;{", False),
    ("Accept", "application/json", True),
    ("Accept", 'text/html"', False),
    ("Accept-Language", "en-US,en;q=0.9", True),
    ("Accept-Language", "en{", False),
    ("Accept-Language", "en-" + "a" * 130, False),  # longer than 128 bytes
    ("Content-Language", "de", True),
    ("Content-Language", "de(x)", False),
    ("Accept", "text/" + "a" * 130, False),
    ("Range", "bytes=0-", True),
    ("Range", "bytes=0-5,6-9", False),  # not a single range
)
_SAFE = {(n.lower(), v): s for n, v, s in HEADER_OPTIONS}
# A header the generator never sets but fetch() may: a string body makes
# Content-Type text/plain;charset=UTF-8.
_SAFE[("content-type", "text/plain;charset=UTF-8")] = True
# The race mode's per-fetch Accept-Language tags (race_tag): safelisted like any language.
_SAFE.update({("accept-language", f"en-{n}"): True for n in range(1, 4)})


def header_is_safe(name: str, value: str) -> bool:
    return _SAFE.get((name.lower(), value), False)


def needs_preflight(method: str, headers: tuple[tuple[str, str], ...]) -> bool:
    """The generator's own answer: a non-safelisted method or any non-safelisted header."""
    return sent_method(method) not in SAFE_METHODS or not all(
        header_is_safe(n, v) for n, v in headers)


# --- the generator ----------------------------------------------------------------------------

# Placeholders filled by RandomTwoOrigins when the ports are known (the server fills the
# others per request: {origin}, {acrm}, {acrh}, {api}...).
ORIGIN_UPPER_SCHEME = "{origin_upper_scheme}"
ORIGIN_UPPER_HOST = "{origin_upper_host}"


T = TypeVar("T")


def _pick(rng: random.Random, weighted: list[tuple[T, float]]) -> T:
    values = [v for v, _ in weighted]
    return rng.choices(values, weights=[w for _, w in weighted], k=1)[0]


def _acao(rng: random.Random) -> list[str]:
    """Allow-Origin header lines (empty: absent)."""
    return _pick(rng, [
        (["{origin}"], 8), (["*"], 3), (["null"], 1), ([EVIL], 1), (["{origin}/"], 1),
        ([ORIGIN_UPPER_SCHEME], 1), ([ORIGIN_UPPER_HOST], 1), (["{origin}, " + EVIL], 1),
        (["{origin}, {origin}"], 0.5), (["{origin}", "{origin}"], 1), (["{origin}", EVIL], 0.5),
        ([], 2), ([" {origin} "], 0.5),
    ])


def _acac(rng: random.Random, credentials: str) -> list[str]:
    weight = 4 if credentials == "include" else 1
    return _pick(rng, [(["true"], weight), (["True"], 1), (["false"], 0.5), ([], 3),
                       (["true", "true"], 0.3)])


def _acam(rng: random.Random, method: str) -> list[str]:
    m = sent_method(method)
    return _pick(rng, [
        (["{acrm}"], 5), ([m], 3), (["*"], 2), ([m.lower()], 1), ([m.upper()], 1),
        ([f"GET, ,{m}"], 1), ([f", {m} ,"], 0.5), ([f"{m}, (bad)"], 1), ([f"{m} x"], 0.5),
        (["GET, POST"], 1), ([], 2), (["GET", m], 0.5), ([f"{m};"], 0.5),
    ])


def _acah(rng: random.Random, headers: tuple[tuple[str, str], ...]) -> list[str]:
    names = [n for n, v in headers if not header_is_safe(n, v)]
    lower = ", ".join(n.lower() for n in names) or "x-a"
    return _pick(rng, [
        (["{acrh}"], 5), ([lower], 3), (["*"], 2), ([lower.upper()], 1),
        ([f", ,{lower}"], 0.5), ([f"{lower}, x/b"], 1), ([f"{lower}:"], 0.3),
        (["x-a, x-b"], 1), ([], 2), (["x-c"], 0.5),
    ])


def _max_age(rng: random.Random) -> list[str]:
    return _pick(rng, [
        (["600"], 5), (["0"], 1), (["-1"], 1), ([], 2), (["1.5"], 1), (["abc"], 1),
        ([str(2**63)], 1), ([str(2**63 - 1)], 0.5), (["600", "600"], 0.3), (["+600"], 0.5),
        ([" 600"], 0.3),
    ])


def _lines(name: str, values: list[str]) -> tuple[tuple[str, str], ...]:
    return tuple((name, v) for v in values)


def _request(rng: random.Random) -> tuple[str, tuple[tuple[str, str], ...], str | None]:
    method = _pick(rng, [(m, 3 if m in ("GET", "POST", "PUT") else 1) for m in METHODS])
    k = _pick(rng, [(0, 3), (1, 4), (2, 2)])
    chosen: dict[str, tuple[str, str]] = {}
    for name, value, _ in rng.sample(HEADER_OPTIONS, k=k):
        chosen.setdefault(name.lower(), (name, value))
    headers = tuple(chosen.values())
    body = None
    if sent_method(method) not in ("GET", "HEAD") and rng.random() < 0.7:
        body = "x"
    return method, headers, body


def _variant(rng: random.Random, first: Step) -> Step:
    """A later fetch to the same URL: the same request, or one asking for something else."""
    kind = _pick(rng, [("same", 3), ("method", 2), ("header", 2), ("credentials", 1),
                       ("simple", 1)])
    if kind == "same":
        return first
    if kind == "method":
        method = rng.choice([m for m in NON_SIMPLE_METHODS + ("POST",) if m != first.method])
        body = first.body if method not in ("GET", "HEAD") else None
        return _step(method, first.headers, body, first.credentials)
    if kind == "header":
        extra = rng.choice([("X-B", "1"), ("X-A", "1"), ("Content-Type", "application/json"),
                            ("Accept-Language", "en{")])
        headers = tuple(h for h in first.headers if h[0].lower() != extra[0].lower())
        if rng.random() < 0.5:
            headers += (extra,)
        else:
            headers = (extra,)
        return _step(first.method, headers, first.body, first.credentials)
    if kind == "credentials":
        creds = "omit" if first.credentials == "include" else "include"
        return _step(first.method, first.headers, first.body, creds)
    return _step("GET", (), None, first.credentials)


def _step(method: str, headers: tuple[tuple[str, str], ...], body: str | None,
          credentials: str) -> Step:
    return Step(method, headers, body, credentials,
                preflight=needs_preflight(method, headers))


DIMENSIONS = ("pf_status", "pf_acao", "pf_acac", "pf_acam", "pf_acah", "pf_max_age",
              "acao", "acac", "status", "redirect")
"""What a reply can get wrong. Each scenario starts from replies that allow exactly what its
first fetch asks for and draws a few of these (0-3, sometimes all) from the odd values."""


def _preflight_reply(rng: random.Random, first: Step, next_path: str, wild: set[str]) -> Reply:
    status = 200
    if "pf_status" in wild:
        status = _pick(rng, [(200, 2), (204, 2), (299, 1), (301, 1), (302, 2), (403, 1),
                             (500, 1)])
    include = first.credentials == "include"
    out = _lines(ACAO, _acao(rng) if "pf_acao" in wild else ["{origin}"])
    out += _lines(ACAC, _acac(rng, first.credentials) if "pf_acac" in wild
                  else ["true"] if include else [])
    out += _lines(ACAM, _acam(rng, first.method) if "pf_acam" in wild else ["{acrm}"])
    out += _lines(ACAH, _acah(rng, first.headers) if "pf_acah" in wild else ["{acrh}"])
    out += _lines(MAX_AGE, _max_age(rng) if "pf_max_age" in wild else ["600"])
    if status in (301, 302) and rng.random() < 0.85:
        out += (("Location", "{api}" + next_path),)
    return Reply(status, out, b"")


def _actual_reply(rng: random.Random, first: Step, next_path: str | None,
                  wild: set[str]) -> Reply:
    include = first.credentials == "include"
    out = _lines(ACAO, _acao(rng) if "acao" in wild else ["{origin}"])
    out += _lines(ACAC, _acac(rng, first.credentials) if "acac" in wild
                  else ["true"] if include else [])
    if next_path is not None:
        status = _pick(rng, [(302, 1), (307, 1)])
        return Reply(status, out + (("Location", "{api}" + next_path),))
    status = _pick(rng, [(200, 2), (404, 1), (500, 1)]) if "status" in wild else 200
    return Reply(status, out)


def _good_preflight(first: Step) -> Reply:
    out: tuple[tuple[str, str], ...] = ((ACAO, "{origin}"), (ACAM, "{acrm}"), (ACAH, "{acrh}"),
                                        (MAX_AGE, "600"))
    if first.credentials == "include":
        out += ((ACAC, "true"),)
    return Reply(200, out, b"")


def random_scenario(rng: random.Random, name: str) -> Scenario:
    method, headers, body = _request(rng)
    credentials = "include" if rng.random() < 0.3 else "omit"
    first = _step(method, headers, body, credentials)
    steps = [first]
    for _ in range(_pick(rng, [(0, 4), (1, 4), (2, 2)])):
        steps.append(_variant(rng, first))
    k = _pick(rng, [(0, 1), (1, 4), (2, 3), (3, 2), (len(DIMENSIONS), 1)])
    wild = set(rng.sample(DIMENSIONS, k=k))
    path = f"/s/{name}"
    next_path = f"{path}/next"
    routes = {"": Route(_preflight_reply(rng, first, next_path, wild),
                        _actual_reply(rng, first, next_path if "redirect" in wild else None,
                                      wild))}
    # The target of any redirect: usually a well-behaved one, so the first hop decides.
    if rng.random() < 0.7:
        target = Route(_good_preflight(first), Reply(200, ((ACAO, "{origin}"),) + (
            ((ACAC, "true"),) if credentials == "include" else ())))
    else:
        target = Route(_preflight_reply(rng, first, next_path + "x", set(DIMENSIONS)),
                       _actual_reply(rng, first, None, set(DIMENSIONS)))
    routes["/next"] = target
    return Scenario(name, routes, tuple(steps), same_url=True,
                    about="random: " + " ".join(sorted(wild)))


def random_scenarios(seed: int, n: int) -> list[Scenario]:
    """``n`` random sequential scenarios; the same seed gives the same ones."""
    rng = random.Random(seed)
    return [random_scenario(rng, f"{PREFIX}{seed}-{i}") for i in range(n)]


@dataclass(frozen=True, slots=True)
class ConcurrentScenario(Scenario):
    """A random scenario whose steps run in groups started together."""

    groups: tuple[int, ...] = ()
    """Per step, its group: steps with the same number start together (harness.step_group);
    groups run one after another, in step order."""
    slots: tuple[int, ...] = ()
    """Per step, the ``f`` marker its URL carries: distinct within a group."""

    def url(self, api_origin: str, k: int, page_origin: str = "") -> str:
        # Scenario.url, not super(): zero-argument super() breaks in slotted dataclasses.
        return Scenario.url(self, api_origin, k, page_origin) + f"&{MARKER}={self.slots[k]}"

    def without_step(self, k: int) -> ConcurrentScenario:
        return replace(self, steps=self.steps[:k] + self.steps[k + 1:],
                       groups=self.groups[:k] + self.groups[k + 1:],
                       slots=self.slots[:k] + self.slots[k + 1:])


GROUP_LAYOUTS: tuple[tuple[tuple[int, ...], float], ...] = (
    ((2,), 3), ((3,), 3), ((2, 1), 2), ((1, 2), 2), ((3, 1), 1), ((2, 2), 1), ((1, 3), 1),
)
"""The sizes of a concurrent scenario's groups, in running order, and their weights."""


def random_concurrent_scenario(rng: random.Random, name: str) -> ConcurrentScenario:
    """A scenario whose fetches run in groups of 2-3 started together (sometimes a single
    fetch before or after one); in a third of them some fetches go to a second URL
    (``/b``, its own replies)."""
    method, headers, body = _request(rng)
    credentials = "include" if rng.random() < 0.3 else "omit"
    first = _step(method, headers, body, credentials)
    sizes = _pick(rng, list(GROUP_LAYOUTS))
    two_urls = rng.random() < 0.33
    steps: list[Step] = []
    groups: list[int] = []
    slots: list[int] = []
    for g, size in enumerate(sizes):
        for slot in range(size):
            st = first if not steps else _variant(rng, first)
            if two_urls and slot % 2 == 1:
                st = replace(st, sub="/b")
            steps.append(st)
            groups.append(g)
            slots.append(slot)
    path = f"/s/{name}"
    # Redirects keep the query, hence the fetch's marker: their hop is attributed to it.
    nxt = f"{path}/next?{{query}}"

    def route(wild: set[str]) -> Route:
        return Route(_preflight_reply(rng, first, nxt, wild),
                     _actual_reply(rng, first, nxt if "redirect" in wild else None, wild))

    k = _pick(rng, [(0, 1), (1, 4), (2, 3), (3, 2), (len(DIMENSIONS), 1)])
    wild = set(rng.sample(DIMENSIONS, k=k))
    routes = {"": route(wild)}
    if two_urls:
        routes["/b"] = route(set(rng.sample(DIMENSIONS, k=_pick(rng, [(0, 2), (1, 2), (2, 1)]))))
    if rng.random() < 0.7:
        routes["/next"] = Route(_good_preflight(first), Reply(200, ((ACAO, "{origin}"),) + (
            ((ACAC, "true"),) if credentials == "include" else ())))
    else:
        routes["/next"] = Route(
            _preflight_reply(rng, first, f"{path}/nextx?{{query}}", set(DIMENSIONS)),
            _actual_reply(rng, first, None, set(DIMENSIONS)))
    return ConcurrentScenario(name, routes, tuple(steps), same_url=True,
                              about="random concurrent " + "+".join(map(str, sizes)) + ": "
                              + " ".join(sorted(wild)), groups=tuple(groups),
                              slots=tuple(slots))


def random_concurrent_scenarios(seed: int, n: int) -> list[Scenario]:
    """``n`` random concurrent scenarios (``rnc<seed>-<i>``); the same seed gives the same
    ones."""
    rng = random.Random(seed)
    return [random_concurrent_scenario(rng, f"rnc{seed}-{i}") for i in range(n)]


# --- same-URL races ------------------------------------------------------------------------

def race_tag(headers: Iterable[tuple[str, str]]) -> str | None:
    """What tells a racing fetch's requests apart without touching the URL or what its
    preflight asks for: the value of X-A/X-B (unsafe already, so the preflight names it but
    not its value) or else of Accept-Language (safelisted tags, or unsafe values kept unsafe).
    Redirects keep both (a 302 drops only the body's headers)."""
    first: dict[str, str] = {}
    for n, v in headers:
        first.setdefault(n.lower(), v)
    for name in ("x-a", "x-b", "accept-language"):
        if name in first:
            return f"{name}={first[name]}"
    return None


def _tagged(st: Step, n: int) -> Step:
    """``st`` carrying tag ``n`` (1-3) without changing whether or what it preflights."""
    names = {h.lower() for h, _ in st.headers}
    if names & {"x-a", "x-b"}:
        headers = tuple((h, str(n)) if h.lower() in ("x-a", "x-b") else (h, v)
                        for h, v in st.headers)
    else:
        lang = next((v for h, v in st.headers if h.lower() == "accept-language"), None)
        # A safelisted language stays safelisted (en-<n>); an unsafe one stays unsafe.
        value = f"en-{n}" if lang is None or header_is_safe("Accept-Language", lang) \
            else lang + str(n)
        headers = tuple(h for h in st.headers if h[0].lower() != "accept-language") + (
            ("Accept-Language", value),)
    return replace(_step(st.method, headers, st.body, st.credentials), sub=st.sub)


def _preflight_signature(method: str, headers: Iterable[tuple[str, str]]) -> tuple[str, str]:
    """(Access-Control-Request-Method, -Headers) a request asks for, as Chromium writes them."""
    unsafe = sorted({n.lower() for n, v in headers if not header_is_safe(n, v)})
    return sent_method(method), ",".join(unsafe)


@dataclass(frozen=True, slots=True)
class RaceScenario(ConcurrentScenario):
    """A concurrent scenario whose groups race to the SAME URL (no ``f`` marker), so several
    identical preflights are in flight for one cache entry. Each fetch carries a tag
    (:func:`race_tag`) that attributes its own non-OPTIONS requests; preflights cannot be
    told apart and are compared as a multiset (:func:`compare_race`)."""

    def url(self, api_origin: str, k: int, page_origin: str = "") -> str:
        return Scenario.url(self, api_origin, k, page_origin)

    def without_step(self, k: int) -> RaceScenario:
        return replace(self, steps=self.steps[:k] + self.steps[k + 1:],
                       groups=self.groups[:k] + self.groups[k + 1:],
                       slots=self.slots[:k] + self.slots[k + 1:])

    def attribute(self, truths: list[StepTruth], arrived: list[LoggedRequest]
                  ) -> list[list[LoggedRequest]]:
        """harness._attributed's hook: requests by tag; each preflight (in arrival order) to
        a fetch the protocol says sent one, asking the same, whose next own request comes
        soonest after it (so a fetch's preflight precedes its request, as on the wire)."""
        tags = [race_tag(self.steps[t.step].headers) for t in truths]
        out: list[list[LoggedRequest]] = [[] for _ in truths]
        preflights = []
        for e in arrived:
            if e.method == "OPTIONS" and e.header("Access-Control-Request-Method"):
                preflights.append(e)
                continue
            tag = race_tag(e.headers)
            i = tags.index(tag) if tag in tags else 0
            if tag not in tags:
                log.warning("race %s: no fetch carries %s", self.name, tag)
            out[i].append(e)
        quota = [t.cdp_preflights for t in truths]
        asks = [_preflight_signature(self.steps[t.step].method, self.steps[t.step].headers)
                for t in truths]
        base = self.path("")
        for e in preflights:
            sig = ((e.header("Access-Control-Request-Method") or "").strip(),
                   (e.header("Access-Control-Request-Headers") or "").replace(" ", ""))
            first_url = urlsplit(e.target).path == base

            def key(i: int, e: LoggedRequest = e, sig: tuple[str, str] = sig,
                    first_url: bool = first_url) -> tuple[bool, bool, bool, bool, float, int]:
                before = [x for x in out[i] if x.method != "OPTIONS" and x.time <= e.time]
                # One preflight per URL per hop: not a second while the first awaits its request.
                path = urlsplit(e.target).path
                waiting = any(x.method == "OPTIONS" and urlsplit(x.target).path == path
                              and not any(y.method != "OPTIONS" and y.time >= x.time
                                          and y.time <= e.time for y in out[i])
                              for x in out[i])
                # A fetch's first preflight comes before any request of its own; one for a
                # redirect's target right after its own request was redirected.
                fits = not before if first_url else bool(before) and 300 <= before[-1].status < 400
                later = min((x.time for x in out[i] if x.time >= e.time
                             and x.method != "OPTIONS"), default=float("inf"))
                return (not fits, waiting, quota[i] <= 0, asks[i] != sig, later, i)

            best = min(range(len(truths)), key=key)
            quota[best] -= 1
            out[best].append(e)
        order = {id(e): n for n, e in enumerate(arrived)}
        return [sorted(part, key=lambda e: order[id(e)]) for part in out]


def random_race_scenario(rng: random.Random, name: str) -> RaceScenario:
    """Groups of 2-3 fetches (sometimes a single fetch before or after) to one URL; the
    later fetches of a group are variants of the first (often identical), each tagged."""
    c = random_concurrent_scenario(rng, name)
    steps = tuple(_tagged(replace(st, sub=""), slot + 1)
                  for st, slot in zip(c.steps, c.slots))
    routes = {k: v for k, v in c.routes.items() if k != "/b"}  # one URL: that is the race
    return RaceScenario(name, routes, steps, same_url=True,
                        about=c.about.replace("concurrent", "race"), groups=c.groups,
                        slots=c.slots)


def random_race_scenarios(seed: int, n: int) -> list[Scenario]:
    """``n`` random same-URL race scenarios (``rrc<seed>-<i>``)."""
    rng = random.Random(seed)
    return [random_race_scenario(rng, f"rrc{seed}-{i}") for i in range(n)]


# --- the minimal reproductions of what the random runs found --------------------------------

def repro_scenarios() -> list[Scenario]:
    """Hand-minimised scenarios, one per disagreement the random runs found (Chromium 156):
    ``--repros`` runs them instead of a random batch."""
    def sc(name: str, pre: Reply, act: Reply, *steps: Step, about: str,
           nxt: Route | None = None) -> Scenario:
        routes = {"": Route(pre, act)}
        if nxt is not None:
            routes["/next"] = nxt
        return Scenario(f"repro-{name}", routes, steps, same_url=True, about=about)

    ok = Reply(200, ((ACAO, "{origin}"),))
    # The same GET with X-A, uncredentialed, credentialed, uncredentialed again.
    omit_include_omit = tuple(_step("GET", (("X-A", "1"),), None, c)
                              for c in ("omit", "include", "omit"))
    later_next = "{api}/s/repro-simple-takes-later-preflight/next"
    return [
        sc("simple-takes-failed-preflight",
           Reply(200, ((ACAM, "{acrm}"), (ACAH, "{acrh}")), b""), ok,
           _step("GET", (("Accept-Language", "en{"),), None, "omit"),
           _step("GET", (), None, "omit"),
           about="A: a blocked preflight (no ACAO) waits; the next, simple, GET takes it"),
        sc("simple-takes-later-preflight",
           Reply(200, ((ACAM, "{acrm}"),), b""),
           Reply(302, ((ACAO, "{origin}"), ("Location", later_next))),
           _step("GET", (), None, "omit"), _step("GET", (("X-A", "1"),), None, "omit"),
           nxt=Route(actual=ok),
           about="A': a simple GET answered 302 takes the preflight of the next fetch (look-"
                 "ahead; the 302's body is held back by Nagle/delayed ACK)"),
        sc("fifo-pairing",
           Reply(200, ((ACAO, "{origin}"), (ACAM, "{acrm}"), (ACAH, "{acrh}")), b""), ok,
           _step("PUT", (), "x", "include"), _step("PUT", (), "x", "omit"),
           about="B: a credentialed preflight fails (no ACAC), the next fetch's passes: "
                 "its request is paired with the first"),
        sc("settle-alone-ignores-cache",
           Reply(200, ((ACAO, "{origin}"), (ACAM, "{acrm}"), (MAX_AGE, "600")), b""), ok,
           _step("PUT", (), "x", "omit"), _step("PUT", (), "x", "include"),
           about="C: an uncredentialed result is cached; a second preflight is sent anyway "
                 "(so it was credentialed) and fails without ACAC"),
        sc("hit-infers-omit",
           Reply(200, ((ACAO, "{origin}"), (ACAC, "true"), (ACAM, "{acrm}"), (MAX_AGE, "600")),
                 b""), ok,
           _step("PUT", (), "x", "include"), _step("PUT", (), "x", "include"),
           about="D: preflight passes in both modes; the hit is called 'omit' and allowed "
                 "although the actual response lacks ACAC"),
        sc("both-modes-fail",
           Reply(403, ((ACAO, "*"), (ACAM, "{acrm}")), b""), ok,
           _step("PUT", (), "x", "include"),
           about="E: fails with and without credentials, for different reasons"),
        sc("credentialed-lookup-erases",
           Reply(200, ((ACAO, "{origin}"), (ACAM, "{acrm}"), (ACAH, "{acrh}"), (MAX_AGE, "600")),
                 b""), ok,
           *omit_include_omit,
           about="C': the credentialed lookup erased the uncredentialed result it found "
                 "insufficient, so the third fetch's preflight is not redundant"),
        sc("refused-by-headers-keeps",
           Reply(200, ((ACAO, "{origin}"), (ACAC, "true"), (ACAM, "{acrm}"), (ACAH, "*"),
                       (MAX_AGE, "600")), b""), ok,
           *omit_include_omit,
           about="the credentialed preflight is refused by Allow-Headers '*'; WebKit keeps the "
                 "uncredentialed result and the third GET goes on it, not on that preflight"),
        sc("redirect-restarted",
           Reply(200, ((ACAO, "{origin}"), (ACAM, "{acrm}")), b""),
           Reply(302, ((ACAO, "{origin}"), ("Location", "{api}/s/repro-redirect-restarted/next"))),
           _step("POST", (), "x", "omit"),
           nxt=Route(actual=Reply(200, ())),
           about="NetLog: Chromium begins the redirected GET before the POST's request ends; "
                 "its hop kept no headers and read as a non-CORS exchange"),
        sc("refused-after-redirect",
           Reply(200, ((ACAO, "{origin}"), (ACAM, "{acrm}")), b""),
           Reply(302, ((ACAO, "{origin}"),
                       ("Location", "/s/repro-refused-after-redirect/next"))),
           _step("PUT", (), "x", "omit"),
           nxt=Route(Reply(200, (), b""), ok),
           about="NetLog: the PUT's preflight for the redirect's target fails; the refused "
                 "request was named by the first URL"),
        sc("failed-parameter",
           Reply(200, ((ACAO, "{origin}"), (ACAM, "PUT, (bad)")), b""), ok,
           _step("PUT", (), "x", "omit"),
           about="F: Chromium reports no failedParameter for Invalid...PreflightResponse / "
                 "PreflightInvalidStatus"),
    ]


# --- servers that know the page's origin in odd spellings -------------------------------------

class RandomTwoOrigins(TwoOrigins):
    """TwoOrigins whose replies may also name the page's origin with an upper-case scheme
    or host (filled once the ports are known)."""

    def __init__(self, routes: dict[str, Route] | None = None) -> None:
        super().__init__(routes)
        host = self.page_origin.split("//", 1)[1]
        values = {ORIGIN_UPPER_SCHEME: "HTTP://" + host,
                  ORIGIN_UPPER_HOST: "http://" + host.upper()}

        def fill(r: Reply) -> Reply:
            headers = []
            for n, v in r.headers:
                for k, x in values.items():
                    v = v.replace(k, x)
                headers.append((n, v))
            return Reply(r.status, tuple(headers), r.body)

        for path, route in list(self.routes.items()):  # the dict the servers hold
            self.routes[path] = Route(fill(route.preflight), fill(route.actual))


# --- running them -----------------------------------------------------------------------------

def _scenario_headers(scenarios: list[Scenario]) -> dict[str, Scenario]:
    return {s.name: s for s in scenarios}


def fix_truth(session: Session, scenarios: list[Scenario]) -> None:
    """Roles from what reached the server; the cache pairing again, as harness._attach does.

    A hop is ``preflighted`` when its method is not safelisted or it carries a header the
    generator set that is not safelisted (after a 302 a POST is a GET without its
    Content-Type: it is simple again), or when the browser sent a preflight for its URL
    before it within the same fetch (Firefox does so for that GET)."""
    by_name = _scenario_headers(scenarios)
    for t in session.steps:
        for i in t.wire:
            w = session.wire[i]
            if w.kind == "preflight":
                continue
            # The step's own headers that are still on the wire (a 302 drops Content-Type);
            # the browser's own (Accept: */*, Accept-Language) are no business of the page.
            st = by_name[t.scenario].steps[t.step] if t.scenario in by_name else None
            wire_headers = {(n.lower(), v) for n, v in w.headers}
            authored = tuple((n, v) for n, v in (st.headers if st else ())
                             if (n.lower(), v) in wire_headers)
            pre = w.method not in SAFE_METHODS or not all(header_is_safe(n, v)
                                                          for n, v in authored)
            # Firefox preflights the GET a 302 made of a preflighted POST (Content-Type
            # dropped, nothing unsafe left): the browser treated it as preflighted.
            own = [session.wire[j] for j in t.wire if j < i]
            pre = pre or (session.mode == "firefox" and any(
                x.kind == "preflight" and x.url == w.url for x in own))
            w.role = "preflighted" if pre else "simple"
            w.cache = w.preflight = None
    harness.pair_truth(session.steps, session.wire)
    if session.mode == "firefox":
        def step_headers(t: StepTruth) -> tuple[tuple[str, str], ...]:
            s = by_name.get(t.scenario)
            return s.steps[t.step].headers if s is not None else ()

        engine_harness._pair_merged_hits(session.steps, session.wire, step_headers)


CAPTURE_FILES = {"pcap": "session.pcap", "netlog": "session.netlog.json",
                 "flows": "session.flows"}
"""The file each kind of capture is written to, in the batch's directory."""


def capture_path(workdir: Path, capture: str = "pcap") -> Path:
    return workdir / CAPTURE_FILES[capture]


def run_browser(engine: str, scenarios: list[Scenario], workdir: Path,
                capture: str = "pcap") -> Session:
    """Run the scenarios in one browser session captured by tcpdump (or, ``netlog``,
    Chromium's own NetLog); the truth, fixed."""
    if capture in ("netlog", "flows") and engine != "chromium":
        raise ValueError(f"--capture {capture} needs --engine chromium")
    if capture == "netlog":
        captures = Captures(netlog=capture_path(workdir, "netlog"), workdir=workdir)
    elif capture == "flows":
        # The harness's proxy mode: Chromium goes through mitmdump, which saves the flows.
        captures = Captures(flows=capture_path(workdir, "flows"), workdir=workdir)
    else:
        captures = Captures(pcap=capture_path(workdir, "pcap"), workdir=workdir)
    if engine == "chromium":
        mode = "proxy" if capture == "flows" else "direct"
        session = harness.run_session(mode, captures, scenarios, servers=RandomTwoOrigins)
    else:
        session = engine_harness.run_engine_session(engine, captures, scenarios,
                                                    servers=RandomTwoOrigins)
    fix_truth(session, scenarios)
    return session


# --- comparing ---------------------------------------------------------------------------------

@dataclass
class Finding:
    """A disagreement with what it takes to reproduce it."""

    d: Disagreement
    scenario: Scenario | None
    truth: list[StepTruth]
    exchange: dict[str, Any] | None

    def signature(self, session: Session) -> tuple[str, str, str]:
        def norm(s: str) -> str:
            s = s.replace(session.page_origin, "{origin}").replace(session.api_origin, "{api}")
            # ModelDisagreement messages name the URL: a minimised scenario has another name.
            s = re.sub(r"(/s/|[?&]s=)[A-Za-z0-9-]+", r"\1<name>", s)
            return re.sub(r"\b[pen]\d+(?:\.\d+)?\b", "<id>", s)  # n: NetLog ids
        return (self.d.field, norm(self.d.chromium), norm(self.d.report))


def credentials_invisible(session: Session, scenarios: list[Scenario]) -> set[str]:
    """Scenarios with a credentialed fetch whose requests carried no Cookie: the capture
    cannot show their credentials mode (compare.CREDENTIALS_INVISIBLE, for random ones)."""
    out = set()
    for s in scenarios:
        for t in session.steps_of(s.name):
            if t.credentials == "include" and not any(
                    session.wire[i].header("Cookie") for i in t.wire):
                out.add(s.name)
    return out


def _unsent(report: dict[str, Any]) -> list[dict[str, Any]]:
    """A NetLog's requests Chromium blocked before sending them (at their preflight): no
    status, net::ERR_FAILED. No wire capture has them."""
    return [e for e in report["exchanges"] if e["status"] is None
            and e.get("failure") == "net::ERR_FAILED" and e["role"] != "preflight"]


def compare_unsent(engine: str, truth: Session, unsent: list[dict[str, Any]]
                   ) -> list[Disagreement]:
    """The NetLog's unsent requests against the fetches blocked at their preflight, matched
    by (method, URL, occurrence) as test_netlog.compare_netlog does for the fixed table. A
    fetch blocked at the preflight of a redirect's target names that target: the unsent
    request is the one its last preflight asked for (method and URL)."""
    blocked: list[tuple[str, str, StepTruth]] = []
    for t in truth.steps:
        last = truth.wire[t.wire[-1]] if t.wire else None
        if t.outcome == "rejected" and last is not None and last.kind == "preflight":
            method = last.header("Access-Control-Request-Method") or t.method
            blocked.append((method, last.url, t))
    want = dict(zip(_occurrences((m, u) for m, u, _ in blocked), (t for _, _, t in blocked)))
    got = dict(zip(_occurrences((e["method"], e["url"]) for e in unsent), unsent))
    out = []
    for key, e in got.items():
        t = want.get(key)
        req = f"{key[0]} {compare_mod._short(key[1])}"
        if t is None:
            out.append(Disagreement(engine, _scenario_of(key[1]), 0, e["id"], req, "present",
                                    "not blocked at a preflight", "unsent, blocked"))
            continue
        for name, w, g in (("verdict", "blocked", e["verdict"]),
                           ("cors_error", t.cors_error, e["cors_error"]),
                           ("failed_parameter", t.failed_parameter, e["failed_parameter"])):
            if w != g and not (name == "failed_parameter" and w is None):
                out.append(Disagreement(engine, t.scenario, t.step, e["id"], req, name,
                                        compare_mod._s(w), compare_mod._s(g)))
    for key, t in want.items():
        if key not in got:
            out.append(Disagreement(engine, t.scenario, t.step, "-",
                                    f"{key[0]} {compare_mod._short(key[1])}", "present",
                                    "blocked at its preflight", "missing from the report"))
    return out


def _race_item(verdict: str, cors_error: str | None, redundant: bool | None,
               engine: str) -> tuple[str, str, str]:
    return (verdict, compare_mod._s(cors_error) if engine == "chromium" else "-",
            compare_mod._s(redundant))


def compare_race(engine: str, session: Session, report: dict[str, Any],
                 unsent: list[dict[str, Any]], by_name: dict[str, Scenario], loose: set[str]
                 ) -> list[Disagreement]:
    """Race scenarios, judged on what can be told: each request (not preflight) matched by
    (method, URL, tag, occurrence) for its role, verdict and CorsError; per method and URL,
    the multiset of cache hit/miss; per URL, the multiset of preflight (verdict, CorsError,
    redundant) (no preflight_id: preflights of one race cannot be attributed); with a NetLog,
    the requests blocked at a preflight, by tag."""
    headers: dict[str, list[tuple[str, str]]] = report.get("_request_headers", {})
    cors = engine == "chromium"
    out: list[Disagreement] = []
    for name in sorted(by_name):
        wires = session.wire_of(name)
        exs = [e for e in report["exchanges"] if _scenario_of(e["url"]) == name
               and e["url"].startswith(session.api_origin + "/")]
        lax = name in loose
        t_keys = _occurrences((w.method, w.url + " " + str(race_tag(w.headers)))
                              for w in wires if w.kind != "preflight")
        t_req = dict(zip(t_keys, [w for w in wires if w.kind != "preflight"]))
        r_list = [e for e in exs if e["role"] != "preflight"]
        r_keys = _occurrences((e["method"], e["url"] + " " + str(race_tag(headers.get(e["id"],
                                                                                     []))))
                              for e in r_list)
        r_req = dict(zip(r_keys, r_list))
        for key, w in t_req.items():
            ex = r_req.get(key)
            req = f"{key[0]} {compare_mod._short(key[1])}"

            def differ(field: str, want: object, got: object, w: Wire = w, req: str = req,
                       ex: dict[str, Any] | None = ex) -> None:
                out.append(Disagreement(engine, w.scenario, w.step, ex["id"] if ex else "-", req,
                                        field, compare_mod._s(want), compare_mod._s(got)))

            if ex is None:
                differ("present", "sent", "missing from the report")
                continue
            if ex["role"] != w.role:
                differ("role", w.role, ex["role"])
            unknown_ok = lax and ((ex["verdict"] == "unknown" and ex.get("unknown_reason"))
                                  or (ex["verdict"] == "allowed"
                                      and ex.get("credentials") == "unknown"))
            if ex["verdict"] != w.verdict and not unknown_ok:
                differ("verdict", w.verdict, ex["verdict"])
            if cors and ex["verdict"] == w.verdict and ex["cors_error"] != w.cors_error:
                differ("cors_error", w.cors_error, ex["cors_error"])
        # Cache hit or miss per URL and method as a multiset: of identical racing requests,
        # which one went on a cached result no capture can tell (nor does it matter).
        want_c = Counter((w.method, w.url, compare_mod._s(w.cache)) for w in t_req.values()
                         if w.role == "preflighted")
        got_c = Counter((e["method"], e["url"], compare_mod._s(e["cache"]))
                        for e in r_req.values() if e["role"] == "preflighted")
        if lax:  # an unknown mode may leave the cache unknown
            for m, u, c in list((got_c - want_c).elements()):
                left = want_c - got_c
                fit = next((k for k in left if k[:2] == (m, u)), None)
                if c in ("null", "unknown") and fit is not None:
                    want_c[fit] -= 1
                    got_c[(m, u, c)] -= 1
        if +want_c != +got_c:
            out.append(Disagreement(engine, name, 0, "-", "requests", "cache",
                                    " ".join(f"{m}:{c}" for m, _, c in sorted(
                                        (want_c - got_c).elements())) or "-",
                                    " ".join(f"{m}:{c}" for m, _, c in sorted(
                                        (got_c - want_c).elements())) or "-"))
        for key, ex in r_req.items():
            if key not in t_req:
                out.append(Disagreement(engine, name, 0, ex["id"],
                                        f"{key[0]} {compare_mod._short(key[1])}", "present",
                                        "not sent by the browser", "in the report"))
        # Preflights: per URL, the multiset of what was decided about them.
        for url in sorted({w.url for w in wires if w.kind == "preflight"}
                          | {e["url"] for e in exs if e["role"] == "preflight"}):
            want = Counter(_race_item(w.verdict, w.cors_error, w.redundant, engine)
                           for w in wires if w.kind == "preflight" and w.url == url)
            got_ex = [e for e in exs if e["role"] == "preflight" and e["url"] == url]
            got = Counter(_race_item(e["verdict"], e["cors_error"], e["redundant"], engine)
                          for e in got_ex)
            common = want & got
            want, got = want - common, got - common
            if lax:  # the answers a report may give where the mode is invisible
                for item in list(got.elements()):
                    fit = next((t for t in want.elements() if (
                        item[0] == "unknown" or t[0] == item[0])
                        and item[2] in (t[2], "null")), None)
                    if fit is not None:
                        want[fit] -= 1
                        got[item] -= 1
                want, got = +want, +got
            if want or got:
                out.append(Disagreement(
                    engine, name, 0, ",".join(e["id"] for e in got_ex),
                    f"OPTIONS {compare_mod._short(url)}", "preflights",
                    " ".join("/".join(t) for t in sorted(want.elements())) or "-",
                    " ".join("/".join(t) for t in sorted(got.elements())) or "-"))
        # NetLog: each fetch blocked at a preflight is an unsent request carrying its tag.
        blocked = []
        for t in session.steps_of(name):
            last = session.wire[t.wire[-1]] if t.wire else None
            if t.outcome == "rejected" and last is not None and last.kind == "preflight":
                method = last.header("Access-Control-Request-Method") or t.method
                blocked.append(((method, last.url, race_tag(
                    by_name[name].steps[t.step].headers)), t))
        if not unsent and capture_of(report) != "netlog":
            continue
        mine = [e for e in unsent if _scenario_of(e["url"]) == name]
        got_u = Counter((e["method"], e["url"], race_tag(headers.get(e["id"], [])),
                         e["verdict"], compare_mod._s(e["cors_error"])) for e in mine)
        want_u = Counter((*k, "blocked", compare_mod._s(t.cors_error)) for k, t in blocked)
        if want_u != got_u:
            out.append(Disagreement(engine, name, 0, ",".join(e["id"] for e in mine),
                                    "unsent", "blocked fetches",
                                    " ".join(sorted(f"{m}/{tag}/{c}" for m, _, tag, _, c
                                                    in (want_u - got_u).elements())) or "-",
                                    " ".join(sorted(f"{m}/{tag}/{v}/{c}" for m, _, tag, v, c
                                                    in (got_u - want_u).elements())) or "-"))
    return out


def capture_of(report: dict[str, Any]) -> str:
    return str(report.get("_capture", ""))


def compare(engine: str, session: Session, report: dict[str, Any],
            scenarios: list[Scenario], capture: str = "pcap") -> list[Finding]:
    races = {s.name for s in scenarios if isinstance(s, RaceScenario)}
    names = {s.name for s in scenarios} - races
    report = dict(report)
    everything = report["exchanges"]
    report["exchanges"] = [ex for ex in everything if _scenario_of(ex["url"]) in names]
    truth = Session(session.mode, session.page_origin, session.api_origin,
                    session.chromium_version,
                    [t for t in session.steps if t.scenario in names],
                    [w for w in session.wire if w.scenario in names], [])
    loose = credentials_invisible(session, scenarios)
    unsent: list[dict[str, Any]] = []
    race_unsent: list[dict[str, Any]] = []
    if capture == "netlog":
        # The NetLog also holds what was never sent: compared on their own, as
        # test_netlog.compare_netlog does.
        unsent = _unsent(report)
        ids = {e["id"] for e in unsent}
        report["exchanges"] = [e for e in report["exchanges"] if e["id"] not in ids]
        race_unsent = [e for e in _unsent({"exchanges": everything})
                       if _scenario_of(e["url"]) in races]
    items = compare_wire(engine, truth, report, cors_errors=engine == "chromium",
                         credentials_keyed=engine == "firefox",
                         credentials_invisible=frozenset(loose))
    if races:
        race_ids = {e["id"] for e in race_unsent}
        items += compare_race(engine, session, {
            **report, "_capture": capture,
            "exchanges": [e for e in everything if _scenario_of(e["url"]) in races
                          and e["id"] not in race_ids]}, race_unsent,
                              {s.name: s for s in scenarios if s.name in races}, loose)
    if capture == "netlog":
        items += compare_unsent(engine, truth, unsent)
        for f in report.get("findings", []):
            if f["code"] != "ModelDisagreement":
                continue
            ids = set(f["exchange_ids"])
            scen = {_scenario_of(e["url"]) for e in everything
                    if e["id"] in ids} & (names | races)
            if scen or not ids:
                items.append(Disagreement(engine, min(scen, default="-"), 0, ",".join(
                    sorted(ids)), "-", "ModelDisagreement", "none", f["message"]))
    # Chromium names the failed parameter too: compare it where both name the same error.
    by_url = _exchanges_by_key(report["exchanges"], session.api_origin)
    if engine == "chromium":
        keys = _occurrences((w.method, w.url) for w in truth.wire)
        for w, key in zip(truth.wire, keys):
            ex = by_url.get(key)
            if ex is None or w.verdict != "blocked" or ex["cors_error"] != w.cors_error:
                continue
            t = session.step(w.scenario, w.step)
            want = t.failed_parameter or None
            got = ex.get("failed_parameter") or None
            if want != got and t.cors_error:
                items.append(Disagreement(engine, w.scenario, w.step, ex["id"],
                                          f"{w.method} {compare_mod._short(w.url)}",
                                          "failed_parameter", compare_mod._s(want),
                                          compare_mod._s(got)))
    by_name = {s.name: s for s in scenarios}
    by_id = {ex["id"]: ex for ex in everything}
    return [Finding(d, by_name.get(d.scenario), session.steps_of(d.scenario),
                    by_id.get(d.exchange)) for d in items]


def _scenario_of(url: str) -> str:
    return url.split("/s/", 1)[-1].split("/")[0].split("?")[0]


def _occurrences(items: Iterator[tuple[str, str]] | Any) -> list[tuple[str, str, int]]:
    seen: dict[tuple[str, str], int] = {}
    out = []
    for key in items:
        n = seen.get(key, 0)
        seen[key] = n + 1
        out.append((*key, n))
    return out


def _exchanges_by_key(exchanges: list[dict[str, Any]], api: str
                      ) -> dict[tuple[str, str, int], dict[str, Any]]:
    api_ex = [ex for ex in exchanges if ex["url"].startswith(api + "/")]
    return dict(zip(_occurrences((ex["method"], ex["url"]) for ex in api_ex), api_ex))


# --- printing ------------------------------------------------------------------------------------

def describe_scenario(s: Scenario, session: Session | None = None) -> str:
    def sub(v: str) -> str:
        if session is None:
            return v
        host = session.page_origin.split("//", 1)[1]
        return (v.replace(ORIGIN_UPPER_SCHEME, "HTTP://" + host)
                .replace(ORIGIN_UPPER_HOST, "http://" + host.upper()))

    lines = [f"scenario {s.name}"]
    for k, st in enumerate(s.steps):
        group = step_group(s, k)
        together = f" [together with {[j for j in group if j != k]}]" if len(group) > 1 else ""
        where = f" url={s.url('', k)}" if isinstance(s, ConcurrentScenario) else ""
        lines.append(f"  fetch {k}{together}{where}: {st.method} headers={list(st.headers)} body={st.body!r} "
                     f"credentials={st.credentials} (generator: "
                     f"{'needs a preflight' if st.preflight else 'simple'})")
    for sub_path, route in s.routes.items():
        for what, r in (("OPTIONS", route.preflight), ("other", route.actual)):
            lines.append(f"  {s.path(sub_path)} {what} -> {r.status} "
                         + "; ".join(f"{n}: {sub(v)}" for n, v in r.headers))
    return "\n".join(lines)


def describe_truth(session: Session, name: str) -> str:
    lines = []
    for t in session.steps_of(name):
        wire = " ".join(f"{session.wire[i].method}:{session.wire[i].status}"
                        f"[{session.wire[i].role[:5]},{session.wire[i].verdict}"
                        f"{',' + str(session.wire[i].cache) if session.wire[i].cache else ''}]"
                        for i in t.wire)
        words = f" words={t.engine_errors}" if t.engine_errors else ""
        lines.append(f"  browser step {t.step}: {t.method} {t.outcome} status={t.status} "
                     f"cors_error={t.cors_error} param={t.failed_parameter!r} "
                     f"js={t.js_error!r}{words} wire: {wire}")
    return "\n".join(lines)


def describe_report(report: dict[str, Any], name: str) -> str:
    lines = []
    for ex in report["exchanges"]:
        if _scenario_of(ex["url"]) != name:
            continue
        fails = [f"{st['step']}: {st['detail']}" for st in ex.get("trace", [])
                 if st["outcome"] in ("fail", "unknown")]
        heads = report.get("_request_headers", {}).get(ex["id"])
        tag = f" [{race_tag(heads)}]" if heads and ex["role"] != "preflight" else ""
        lines.append(f"  corsflow {ex['id']}: {ex['method']} {compare_mod._short(ex['url'])}{tag} "
                     f"role={ex['role']} verdict={ex['verdict']} cors_error={ex['cors_error']} "
                     f"param={ex.get('failed_parameter')!r} cache={ex['cache']} "
                     f"preflight={ex['preflight_id']} redundant={ex['redundant']} "
                     f"creds={ex['credentials']}"
                     + (f" unknown_reason={ex['unknown_reason']!r}" if ex["unknown_reason"]
                        else "")
                     + (f"\n      why: {' | '.join(fails)}" if fails else ""))
    return "\n".join(lines)


def sanity(session: Session, scenarios: list[Scenario]) -> list[str]:
    """Where the generator's own "needs a preflight" was wrong for this browser: a fetch it
    called simple that was preflighted, or a first fetch it called non-simple that was not."""
    out = []
    for s in scenarios:
        for t in session.steps_of(s.name):
            sent = any(session.wire[i].kind == "preflight" for i in t.wire)
            st = s.steps[t.step]
            if sent and not st.preflight:
                out.append(f"{s.name} step {t.step}: preflighted although the generator says "
                           f"simple ({st.method} {list(st.headers)})")
            if t.step == 0 and st.preflight and not sent and t.wire:
                out.append(f"{s.name} step 0: no preflight although the generator says one is "
                           f"needed ({st.method} {list(st.headers)})")
    return out


# --- minimising --------------------------------------------------------------------------------

def _simplifications(s: Scenario) -> Iterator[Scenario]:
    """Scenarios one change simpler than ``s`` (fewer fetches, headers, reply headers)."""
    n = 0

    def named(**kw: Any) -> Scenario:
        nonlocal n
        n += 1
        return replace(s, name=f"{s.name}m{n}", **kw)

    def renamed_routes(routes: dict[str, Route], new: str) -> dict[str, Route]:
        def fix(r: Reply) -> Reply:
            return Reply(r.status, tuple((h, v.replace(f"/s/{s.name}/", f"/s/{new}/"))
                                         for h, v in r.headers), r.body)
        return {k: Route(fix(r.preflight), fix(r.actual)) for k, r in routes.items()}

    out: list[Scenario] = []
    steps = s.steps
    for k in range(len(steps)):
        if len(steps) > 1:
            if isinstance(s, ConcurrentScenario):
                out.append(replace(s.without_step(k), name=named().name))
            else:
                out.append(named(steps=steps[:k] + steps[k + 1:]))
    if isinstance(s, ConcurrentScenario) and len(set(s.groups)) < len(s.groups):
        # The same fetches and URLs one after another: does it need the concurrency?
        out.append(named(groups=tuple(range(len(s.groups)))))
    for k, st in enumerate(steps):
        for j in range(len(st.headers)):
            if isinstance(s, RaceScenario) and f"{st.headers[j][0].lower()}=" \
                    f"{st.headers[j][1]}" == race_tag(st.headers):
                continue  # the fetch's tag: without it its requests cannot be attributed
            h = st.headers[:j] + st.headers[j + 1:]
            out.append(named(steps=steps[:k] + (replace(st, headers=h, preflight=needs_preflight(
                st.method, h)),) + steps[k + 1:]))
        if st.body is not None:
            out.append(named(steps=steps[:k] + (replace(st, body=None),) + steps[k + 1:]))
        if st.credentials == "include":
            out.append(named(steps=steps[:k] + (replace(st, credentials="omit"),)
                             + steps[k + 1:]))
    for sub_path, route in s.routes.items():
        for which in ("preflight", "actual"):
            r: Reply = getattr(route, which)
            for j in range(len(r.headers)):
                nr = Reply(r.status, r.headers[:j] + r.headers[j + 1:], r.body)
                routes = dict(s.routes)
                routes[sub_path] = replace(route, **{which: nr})
                out.append(named(routes=routes))
            if r.status not in (200, 404) and not any(h == "Location" for h, _ in r.headers):
                routes = dict(s.routes)
                routes[sub_path] = replace(route, **{which: Reply(200, r.headers, r.body)})
                out.append(named(routes=routes))
    if "/next" in s.routes and not any(
            h == "Location" for r in s.routes.values() if r is not s.routes["/next"]
            for h, _ in r.actual.headers + r.preflight.headers):
        routes = dict(s.routes)
        del routes["/next"]
        out.append(named(routes=routes))
    for c in out:
        yield replace(c, routes=renamed_routes(c.routes, c.name))


def minimise(engine: str, scenario: Scenario, signature: tuple[str, str, str], workdir: Path,
             rounds: int = 12, capture: str = "pcap") -> Scenario:
    """Greedy: run every one-change simplification in one session; keep the first that shows
    the same disagreement (field, browser value, corsflow value); repeat."""
    current = scenario
    for r in range(rounds):
        candidates = list(_simplifications(current))
        if not candidates:
            break
        d = workdir / f"min-{scenario.name}-{r}"
        d.mkdir(parents=True, exist_ok=True)
        session = run_browser(engine, candidates, d, capture)
        report = analyze(d, engine, candidates, capture)
        found = compare(engine, session, report, candidates, capture)
        same = [f.d.scenario for f in found if f.signature(session) == signature]
        nxt = next((c for c in candidates if c.name in same), None)
        if nxt is None:
            break
        current = nxt
        print(f"  minimise round {r}: {len(candidates)} candidates -> {current.name} "
              f"({len(current.steps)} fetches, "
              f"{sum(len(x.preflight.headers) + len(x.actual.headers) for x in current.routes.values())}"
              " reply headers)", flush=True)
    return current


# --- the script ------------------------------------------------------------------------------

def analyze(workdir: Path, engine: str, scenarios: list[Scenario], capture: str = "pcap"
            ) -> dict[str, Any]:
    """corsflow's JSON report of the batch's capture; with race scenarios, also each
    exchange's request headers (``_request_headers``, by id: the JSON report has none), read
    by corsflow's own reader (whose ids the report uses; the analysis keeps only the headers
    CORS needs)."""
    path = capture_path(workdir, capture)
    report = analyze_json(path, engine)
    if any(isinstance(s, RaceScenario) for s in scenarios):
        from corsflow.errors import Diagnostics
        from corsflow.ingest import open_capture
        _, exchanges = open_capture(str(path), Diagnostics())
        report["_request_headers"] = {ex.id: list(ex.request_headers.items)
                                      for ex in exchanges}
    return report


def run_batch(engine: str, scenarios: list[Scenario], workdir: Path, capture: str = "pcap"
              ) -> tuple[Session, dict[str, Any], list[Finding]]:
    session = run_browser(engine, scenarios, workdir, capture)
    report = analyze(workdir, engine, scenarios, capture)
    return session, report, compare(engine, session, report, scenarios, capture)


def print_findings(session: Session, report: dict[str, Any], findings: list[Finding],
                   scenarios: list[Scenario]) -> None:
    by_scenario: dict[str, list[Finding]] = {}
    for f in findings:
        by_scenario.setdefault(f.d.scenario, []).append(f)
    sc = {s.name: s for s in scenarios}
    for name, fs in by_scenario.items():
        print("=" * 100)
        if name in sc:
            print(describe_scenario(sc[name], session))
        for f in fs:
            print(f"  DISAGREE step {f.d.step} {f.d.request}: {f.d.field}: browser="
                  f"{f.d.chromium} corsflow={f.d.report}  signature={f.signature(session)}")
        print(describe_truth(session, name))
        print(describe_report(report, name))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tests.browser.scenarios_random",
                                description=__doc__.split("\n\n")[0])
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--n", type=int, default=50)
    p.add_argument("--engine", choices=("chromium", "firefox", "webkit"), default="chromium")
    p.add_argument("--capture", choices=tuple(CAPTURE_FILES), default="pcap",
                   help="what corsflow reads: tcpdump's pcap, (Chromium) its NetLog or "
                        "(Chromium) mitmdump's flows")
    p.add_argument("--concurrent", action="store_true",
                   help="scenarios whose fetches run in groups started together")
    p.add_argument("--race", action="store_true",
                   help="concurrent groups whose fetches go to the same URL (no marker), "
                        "each tagged by a header value; preflights compared as a multiset")
    p.add_argument("--only", help="comma-separated scenario names of the batch to run")
    p.add_argument("--repros", action="store_true",
                   help="run the hand-minimised reproductions (repro_scenarios) instead")
    p.add_argument("--minimise", action="store_true",
                   help="shrink each disagreeing scenario (one per distinct signature)")
    p.add_argument("--workdir", type=Path, help="keep the captures here")
    p.add_argument("--json", type=Path, help="write the findings as JSON here")
    a = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    if a.capture in ("netlog", "flows") and a.engine != "chromium":
        p.error(f"--capture {a.capture} needs --engine chromium")
    scenarios = (repro_scenarios() if a.repros
                 else random_race_scenarios(a.seed, a.n) if a.race
                 else random_concurrent_scenarios(a.seed, a.n) if a.concurrent
                 else random_scenarios(a.seed, a.n))
    if a.only:
        keep = set(a.only.split(","))
        scenarios = [s for s in scenarios if s.name in keep]
    workdir = a.workdir or Path(tempfile.mkdtemp(prefix=f"random-{a.engine}-"))
    workdir.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    session, report, findings = run_batch(a.engine, scenarios, workdir, a.capture)
    print(f"{a.engine} {session.chromium_version} ({a.capture}): {len(scenarios)} scenarios, "
          f"{len(session.steps)} fetches, {len(session.wire)} requests, "
          f"{time.monotonic() - t0:.0f} s; captures in {workdir}")
    for line in sanity(session, scenarios):
        print("GENERATOR:", line)
    for note in report.get("summary", {}).get("notes", []):
        if "never showed up" in note:
            # tcpdump dropped packets: a "missing from the report" or "unknown" near them is
            # the capture's fault, not the model's (test_capture_reports.py says the same).
            print("CAPTURE LOST BYTES:", note)
        elif a.capture == "netlog":
            print("NETLOG NOTE:", note)
    print_findings(session, report, findings, scenarios)
    sigs: dict[tuple[str, str, str], list[str]] = {}
    for f in findings:
        sigs.setdefault(f.signature(session), []).append(f.d.scenario)
    print("=" * 100)
    print(f"{len(findings)} disagreement(s) in {len({f.d.scenario for f in findings})} "
          f"scenario(s), {len(sigs)} distinct signature(s):")
    for sig, names in sorted(sigs.items(), key=lambda kv: -len(kv[1])):
        print(f"  {len(names):3}  {sig}  e.g. {', '.join(sorted(set(names))[:4])}")
    if a.json:
        a.json.write_text(json.dumps({
            "engine": a.engine, "capture": a.capture, "concurrent": a.concurrent,
            "race": a.race,
            "seed": a.seed, "n": a.n,
            "signatures": [{"signature": list(k), "scenarios": sorted(set(v))}
                           for k, v in sigs.items()]}, indent=1))
    if a.minimise:
        sc = {s.name: s for s in scenarios}
        for sig, names in sigs.items():
            start = min((sc[n] for n in set(names) if n in sc),
                        key=lambda s: (len(s.steps), sum(len(r.preflight.headers)
                                       + len(r.actual.headers) for r in s.routes.values())),
                        default=None)
            if start is None:
                continue
            print("=" * 100)
            print(f"minimising {start.name} for {sig}")
            small = minimise(a.engine, start, sig, workdir, capture=a.capture)
            d = workdir / f"confirm-{small.name}"
            d.mkdir(parents=True, exist_ok=True)
            s2, r2, f2 = run_batch(a.engine, [small], d, a.capture)
            again = [f for f in f2 if f.signature(s2) == sig]
            print(f"minimal ({'reproduced again' if again else 'NOT reproduced on a fresh run'}):")
            print_findings(s2, r2, again or f2, [small])
    return 0


if __name__ == "__main__":
    sys.exit(main())
