"""Scenarios that settle where the engines differ: fetch() cache modes, failures that
clear the cache, opaque origins, Range values, a same-origin redirect to a URL with
credentials. Run in all three browsers, beside the main table (:mod:`.scenarios`).
"""

from __future__ import annotations

from dataclasses import replace

from .scenarios import XA, Scenario, Step, actual, preflight
from .server import Route

CACHE_MODES = ("no-store", "reload", "no-cache", "force-cache")


def _cache_mode(mode: str) -> Scenario:
    """mode, default, mode on one URL (Max-Age 600): step 0 shows what the mode's preflight
    and request carry, step 1 whether its result was stored, step 2 whether it looks the
    cache up."""
    put = Step("PUT", XA, "x", preflight=True)
    steps = (replace(put, cache=mode), put, replace(put, cache=mode))
    return Scenario(f"mode-{mode}", {"": Route(preflight(), actual())}, steps, same_url=True,
                    about=f"fetch(cache: '{mode}') then default then '{mode}'")


def engine_scenarios() -> list[Scenario]:
    put = Step("PUT", XA, "x", preflight=True)
    out = [_cache_mode(m) for m in CACHE_MODES]
    out += [
        Scenario("mode-only-if-cached", {"": Route(preflight(), actual())},
                 (replace(put, cache="only-if-cached"),), about="only-if-cached, cross-origin"),
        # A simple GET whose response fails the CORS check (an empty Allow-Origin, visible
        # in any capture) between two preflighted PUTs on the same URL.
        Scenario("failure-clears-cache",
                 {"": Route(preflight(), actual(acao="{origin_unless_get}"))},
                 (put, Step(), put), same_url=True,
                 about="PUT, a failing GET, PUT on one URL"),
        # GET /1 and /2 (X-A, no Allow-Credentials: results cached 600 s), a credentialed
        # GET /2 whose preflight Allow-Credentials refuses, then /1 and /2 again: which
        # engines drop /2's result, and whether /1's survives.
        Scenario("refused-preflight-clears",
                 {"/1": Route(preflight(), actual()), "/2": Route(preflight(), actual())},
                 (Step(headers=XA, sub="/1", preflight=True),
                  Step(headers=XA, sub="/2", preflight=True),
                  Step(headers=XA, sub="/2", credentials="include", preflight=True),
                  Step(headers=XA, sub="/1", preflight=True),
                  Step(headers=XA, sub="/2", preflight=True)), same_url=True,
                 about="/1, /2, /2 credentialed and refused, /1, /2"),
        Scenario("opaque-origins",
                 {"": Route(preflight(acao="{req_origin}"), actual(acao="{req_origin}"))},
                 (replace(put, frame="opaque-a"), replace(put, frame="opaque-a"),
                  replace(put, frame="opaque-b")), same_url=True,
                 about="two fetches from one sandboxed iframe, one from another"),
        Scenario("range-uppercase", {"": Route(preflight(), actual())},
                 (Step(headers=(("Range", "BYTES=0-1"),)),),
                 about="Range: BYTES=0-1"),
        Scenario("range-lowercase", {"": Route(preflight(), actual())},
                 (Step(headers=(("Range", "bytes=0-1"),)),), about="Range: bytes=0-1"),
        Scenario("same-origin-redirect-credentials",
                 {"": Route(actual=actual(
                     ("Location", ("http://user:secret@{api_host}/s/"
                      "same-origin-redirect-credentials/next")), status=302, acao=None)),
                  "/next": Route(actual=actual())},
                 (Step(origin="page"),),
                 about="a same-origin GET redirected cross-origin to a URL with credentials"),
    ]
    return out
