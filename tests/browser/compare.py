"""Compare corsflow's JSON report of a capture with what Chromium really did.

The truth (:mod:`.harness`) is per request the API server received: its role, Chromium's
verdict and CorsError, which preflight authorised it, cache hit or miss, and whether a
preflight was one a working cache would have saved. Report exchanges are matched to it by
(method, URL, occurrence). Each difference becomes a :class:`Disagreement`; the test prints
them all as one table and fails if there is any.

Two kinds of capture are compared differently:

* wire captures (pcap, mitmproxy flows, mitmproxy's HAR) hold every request that reached
  the server, preflights included;
* Playwright's HAR holds one entry per request the page made (no preflights; a request the
  browser blocked has status -1 and no response). There the report must not claim a cache
  hit/miss or a preflight it cannot see, and must say why its verdict is unknown.

Where a scenario's outcome depends on something no capture shows (the credentials mode of a
request that carried no cookie; listed in :data:`CREDENTIALS_INVISIBLE`), the report may
answer ``unknown`` with a reason instead of Chromium's value, or the verdict the request
would get without credentials (``allowed`` for all of these) provided it says the
credentials mode is ``unknown``: that is an assumption it states, not a claim.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .harness import Session, StepTruth, Wire

REPO_ROOT = Path(__file__).resolve().parents[2]

# Scenarios whose verdicts hang on the credentials mode, which a capture cannot show when
# no cookie was sent: the server's answer passes for "omit" and fails for "include", so a
# report may say "unknown" for them, or "allowed" (their verdict without credentials) while
# it reports the credentials mode as unknown.
CREDENTIALS_INVISIBLE = frozenset({
    "simple-get", "text-plain-post", "redirect-ok", "wildcard-credentials", "missing-acac",
    "acac-uppercase", "redirect-target-no-acao", "cache-credentials", "chromium-safelist",
    # A credentialed preflight that fails only because it is credentialed, and no request
    # after it on the wire (pcap, mitmproxy): a capture that ended there reads the same.
    "preflight-wildcard-credentials", "preflight-missing-acac", "wildcard-acah-credentials",
    "wildcard-acam-credentials",
})


@dataclass(frozen=True, slots=True)
class Disagreement:
    capture: str
    scenario: str
    step: int
    exchange: str
    """The report's exchange id, or ``-`` when it has none for this request."""
    request: str
    field: str
    chromium: str
    report: str


def analyze_json(path: Path, engine: str = "chromium") -> dict[str, Any]:
    """Run ``python -m corsflow analyze PATH --format json`` and parse its one JSON object."""
    proc = subprocess.run(  # noqa: PLW1510 (the exit code is checked below)
        [sys.executable, "-m", "corsflow", "analyze", str(path), "--engine", engine,
         "--format", "json"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=300,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
    )
    if proc.returncode != 0 or not proc.stdout.strip():
        raise AssertionError(
            f"corsflow analyze {path.name} exited {proc.returncode}: {proc.stderr.strip()[-2000:]}")
    data: dict[str, Any] = json.loads(proc.stdout)
    return data


def _index(exchanges: Iterable[dict[str, Any]], api_origin: str, fold: bool = False
           ) -> dict[tuple[str, str, int], dict[str, Any]]:
    seen: dict[tuple[str, str], int] = {}
    out: dict[tuple[str, str, int], dict[str, Any]] = {}
    for ex in exchanges:
        if not ex["url"].startswith(api_origin + "/"):
            continue
        key = (ex["method"].upper() if fold else ex["method"], ex["url"])
        n = seen.get(key, 0)
        seen[key] = n + 1
        out[(ex["method"], ex["url"], n)] = ex
    return out


def _keys(items: Iterable[tuple[str, str]]) -> list[tuple[str, str, int]]:
    seen: dict[tuple[str, str], int] = {}
    out = []
    for method, url in items:
        n = seen.get((method, url), 0)
        seen[(method, url)] = n + 1
        out.append((method, url, n))
    return out


def _s(value: object) -> str:
    return "null" if value is None else str(value).lower() if isinstance(value, bool) else str(
        value)


def compare_wire(capture: str, session: Session, report: dict[str, Any], *,
                 method_case_lost: bool = False, cors_errors: bool = True,
                 credentials_keyed: bool = False,
                 credentials_invisible: frozenset[str] = CREDENTIALS_INVISIBLE,
                 ) -> list[Disagreement]:
    """Every request the server received against the report of a capture that holds them.

    ``method_case_lost``: the format itself upper-cases methods (mitmproxy's HAR export
    writes ``PATCH`` for a ``patch`` request), so requests are matched ignoring case.
    ``credentials_invisible``: the scenarios whose credentials mode no capture shows.
    """
    found = _index(report["exchanges"], session.api_origin, fold=method_case_lost)
    keys = _keys((w.method.upper() if method_case_lost else w.method, w.url)
                 for w in session.wire)
    key_of = {w.index: k for w, k in zip(session.wire, keys)}
    out: list[Disagreement] = []
    matched: set[tuple[str, str, int]] = set()
    for w, key in zip(session.wire, keys):
        ex = found.get(key)

        def differ(field: str, chromium: object, got: object, w: Wire = w,
                   ex: dict[str, Any] | None = ex) -> None:
            out.append(Disagreement(capture, w.scenario, w.step, ex["id"] if ex else "-",
                                    f"{w.method} {_short(w.url)}", field, _s(chromium), _s(got)))

        if ex is None:
            differ("present", "sent", "missing from the report")
            continue
        matched.add(key)
        loose = w.scenario in credentials_invisible
        if ex["role"] != w.role:
            differ("role", w.role, ex["role"])
        verdict_unknown_ok = loose and (
            (ex["verdict"] == "unknown" and ex.get("unknown_reason"))
            or (ex["verdict"] == "allowed" and ex.get("credentials") == "unknown"))
        if ex["verdict"] != w.verdict and not verdict_unknown_ok:
            differ("verdict", w.verdict, ex["verdict"])
        # cors_errors=False: a browser that does not name Chromium's CorsError (Firefox,
        # WebKit); its own words are compared elsewhere.
        if cors_errors and ex["verdict"] == w.verdict and ex["cors_error"] != w.cors_error:
            differ("cors_error", w.cors_error, ex["cors_error"])
        if w.role == "preflighted":
            want_pf = found.get(key_of[w.preflight]) if w.preflight is not None else None
            want_id = want_pf["id"] if want_pf else None
            # An engine that keys its cache by credentials mode (Firefox) picks the entry by
            # a mode the capture cannot show: which preflight served a hit is then open.
            open_pairing = loose and credentials_keyed and w.cache == "hit"
            if ex["preflight_id"] != want_id and not open_pairing:
                differ("preflight_id", want_id, ex["preflight_id"])
            if ex["cache"] != w.cache and not (loose and ex["cache"] in (None, "unknown")):
                differ("cache", w.cache, ex["cache"])
        if w.role == "preflight" and ex["redundant"] != w.redundant and not (
                loose and ex["redundant"] is None):
            differ("redundant", w.redundant, ex["redundant"])
    for key, ex in found.items():
        if key not in matched:
            out.append(Disagreement(capture, "-", 0, ex["id"], f"{key[0]} {_short(key[1])}",
                                    "present", "not sent by Chromium", "in the report"))
    return out


def compare_playwright(capture: str, session: Session, report: dict[str, Any]
                       ) -> list[Disagreement]:
    """Each fetch (and redirect hop) against the report of a Playwright HAR."""
    found = _index(report["exchanges"], session.api_origin)
    # A report-wide note may say once that the file has no preflights.
    notes = " ".join(report.get("summary", {}).get("notes", [])).lower()
    out: list[Disagreement] = []
    requests: list[tuple[StepTruth, str, str, Wire | None]] = []
    for t in session.steps:
        hops = [session.wire[i] for i in t.wire if session.wire[i].kind != "preflight"]
        if not hops:  # blocked at the preflight: Playwright records the request, failed
            requests.append((t, t.method, t.url, None))
        for w in hops:
            requests.append((t, w.method, w.url, w))
    keys = _keys((m, u) for _, m, u, _ in requests)
    for (t, method, url, hop), key in zip(requests, keys):
        ex = found.get(key)

        def differ(field: str, chromium: object, got: object, t: StepTruth = t,
                   ex: dict[str, Any] | None = ex, method: str = method, url: str = url) -> None:
            out.append(Disagreement(capture, t.scenario, t.step, ex["id"] if ex else "-",
                                    f"{method} {_short(url)}", field, _s(chromium), _s(got)))

        if ex is None:
            differ("present", "requested", "missing from the report")
            continue
        role = hop.role if hop is not None else ("preflighted" if t.declared_preflight
                                                 else "simple")
        verdict = hop.verdict if hop is not None else "blocked"
        if ex["role"] != role:
            differ("role", role, ex["role"])
        reason = ex.get("unknown_reason") or ""
        if ex["verdict"] == "unknown":
            if not reason:
                differ("unknown_reason", "a reason", "none")
        elif ex["verdict"] != verdict:
            differ("verdict", verdict, ex["verdict"])
        elif ex["cors_error"] not in (None, t.cors_error if verdict == "blocked" else None):
            differ("cors_error", t.cors_error, ex["cors_error"])
        if role == "preflighted":
            # Playwright's HAR has no preflights: neither the pairing nor the cache is known.
            if ex["preflight_id"] is not None:
                differ("preflight_id", "unknown (no preflights in the file)", ex["preflight_id"])
            if ex["cache"] in ("hit", "miss"):
                differ("cache", "unknown (no preflights in the file)", ex["cache"])
            if ex["role"] == "preflighted" and "preflight" not in reason.lower() \
                    and "preflight" not in notes:
                differ("why unknown", "says its preflight is not in the capture",
                       reason or "no reason")
    return out


def _short(url: str) -> str:
    return url.split("/", 3)[-1] if "://" in url else url


def format_disagreements(items: list[Disagreement]) -> str:
    if not items:
        return "no disagreements"
    head = ("capture", "scenario", "k", "id", "request", "field", "chromium", "report")
    rows = [head] + [(d.capture, d.scenario, str(d.step), d.exchange, d.request[:60], d.field,
                      d.chromium, d.report[:70]) for d in items]
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return f"{len(items)} disagreement(s) between Chromium and the report:\n" + "\n".join(lines)
