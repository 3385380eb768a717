"""The browser's own decisions as evidence beside the model (sans-IO, pure).

Where a capture logged what the browser decided (Chromium's NetLog: whether a request needed
a preflight, the preflight cache's answer, which preflight belonged to which request, the
preflight's result or its CorsError), the verdict reports the browser's decision, since the
browser is the judge. The model's own verdict is computed all the same, by the machine,
from the headers; every place where the two differ is kept as a :class:`Difference` (the
findings layer reports each as ``ModelDisagreement``). Where the log has no decision (a
response's own CORS check is not logged), the model's verdict stands and the trace says so.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from ..model import BrowserDecision
from .events import ExchangeVerdict, TraceStep
from .fetch import cors_check
from .machine import MODEL_CONTRADICTED

_CREDENTIALED_ERRORS = frozenset({
    "WildcardOriginNotAllowed", "InvalidAllowCredentials",
    "PreflightWildcardOriginNotAllowed", "PreflightInvalidAllowCredentials",
})
"""CorsErrors raised only on a credentialed request: the browser's error tells the mode."""

_STEP = "Chromium's own decision (NetLog)"


@dataclass(frozen=True, slots=True)
class Difference:
    """One point where the browser's logged decision and the model's differ."""

    field: str
    """What differs, as the report names it: ``verdict``, ``cors_error``, ``cache``..."""
    browser: str
    model: str


def _s(value: object) -> str:
    return "none" if value is None else str(value).lower() if isinstance(value, bool) else str(
        value)


def reconcile(v: ExchangeVerdict) -> tuple[ExchangeVerdict, tuple[Difference, ...]]:
    """The verdict with the browser's decisions in place of the model's, and the differences.

    A verdict whose exchange carries no browser decision is returned unchanged.
    """
    b = v.exchange.hints.browser
    if b is None or v.role == "other":
        return v, ()
    if v.role == "preflight":
        return _preflight(v, b)
    return _request(v, b)


def _preflight(v: ExchangeVerdict, b: BrowserDecision) -> tuple[ExchangeVerdict,
                                                                 tuple[Difference, ...]]:
    diffs: list[Difference] = []
    changes: dict[str, object] = {}
    said: list[str] = []
    if b.preflight_passed is not None:
        verdict = "allowed" if b.preflight_passed else "blocked"
        error = None if b.preflight_passed else b.cors_error
        said.append(f"the preflight {'passed' if b.preflight_passed else 'failed'}"
                    + (f" with {_error_text(b)}" if not b.preflight_passed else ""))
        if _credentials_shown(v, error):
            said.append(_CREDENTIALS_SHOWN)
            if v.credentials == "omit":
                diffs.append(Difference("credentials", "include", "omit"))
        elif v.verdict != verdict:
            diffs.append(Difference("verdict", verdict, _s(v.verdict)))
        elif v.cors_error != error and not (error is None and b.cors_error_number is not None):
            diffs.append(Difference("cors_error", _s(error), _s(v.cors_error)))
        changes.update(verdict=verdict, cors_error=error, unknown_reason=None)
        if error != v.cors_error or b.failed_parameter is not None:
            changes["failed_parameter"] = b.failed_parameter
        if error in _CREDENTIALED_ERRORS:
            changes["credentials"] = "include"
    else:
        said.append("no outcome of this preflight was logged")
    if b.cache is not None:
        said.append(f"its request's cache lookup: {b.cache}")
        covered = b.cache == "hit-and-pass"
        if v.redundant and not covered and v.redundant_cause != "devtools-disable-cache" \
                and not _credentials_shown(v, b.cors_error):
            diffs.append(Difference("redundant", f"false (cache {b.cache})", "true"))
            changes.update(redundant=False, redundant_cause=None)
    return _finish(v, changes, said, diffs)


def _request(v: ExchangeVerdict, b: BrowserDecision) -> tuple[ExchangeVerdict,
                                                               tuple[Difference, ...]]:
    diffs: list[Difference] = []
    changes: dict[str, object] = {}
    said: list[str] = []
    role = v.role
    if b.preflight_required is not None:
        role = "preflighted" if b.preflight_required else "simple"
        said.append("a preflight was required" + (f" ({b.preflight_reason})"
                                                   if b.preflight_reason else "")
                    if b.preflight_required else "no preflight was required")
        if role != v.role:
            diffs.append(Difference("role", role, v.role))
            changes["role"] = role
    cache = v.cache
    if role == "preflighted" and b.cache is not None:
        cache = "hit" if b.cache == "hit-and-pass" else "miss"
        said.append(f"preflight cache: {b.cache}")
        if cache != v.cache:
            diffs.append(Difference("cache", cache, _s(v.cache)))
        changes["cache"] = cache
        if cache == "miss" and b.preflight_id is not None:
            if b.preflight_id != v.preflight_id:
                diffs.append(Difference("preflight_id", b.preflight_id, _s(v.preflight_id)))
            changes["preflight_id"] = b.preflight_id
    if b.preflight_passed is False:
        said.append(f"its preflight failed with {_error_text(b)}; the request was not sent")
        if _credentials_shown(v, b.cors_error):
            said.append(_CREDENTIALS_SHOWN)
            if v.credentials == "omit":
                diffs.append(Difference("credentials", "include", "omit"))
        elif v.verdict != "blocked":
            diffs.append(Difference("verdict", "blocked", _s(v.verdict)))
        elif b.cors_error is not None and v.cors_error != b.cors_error:
            diffs.append(Difference("cors_error", b.cors_error, _s(v.cors_error)))
        changes.update(verdict="blocked", cors_error=b.cors_error, unknown_reason=None)
        if b.cors_error != v.cors_error or b.failed_parameter is not None:
            changes["failed_parameter"] = b.failed_parameter
        if b.cors_error in _CREDENTIALED_ERRORS:
            changes["credentials"] = "include"
    elif b.preflight_passed is True:
        said.append("its preflight passed" if cache != "hit" else "the cached result passed")
        if v.unknown_reason == MODEL_CONTRADICTED or (
                v.verdict == "blocked" and v.cors_error is not None
                and _preflight_stage(v.cors_error)):
            diffs.append(Difference("preflight", "passed",
                                    f"fails ({v.cors_error or 'model: preflight fails'})"))
            changes.update(_response_check(v))
        said.append("the response's own CORS check is not logged: the model's check stands")
    elif role in ("preflighted", "simple"):
        said.append("the response's own CORS check is not logged: the model's check stands")
    return _finish(v, changes, said, diffs)


def _response_check(v: ExchangeVerdict) -> dict[str, object]:
    """The model's CORS check of the response, once the browser says the preflight passed."""
    ex = v.exchange
    if ex.response is None or v.origin is None:
        reason = f"no response in the capture ({ex.failure})" if ex.failure else \
            "no response in the capture"
        return {"verdict": "unknown", "cors_error": None, "failed_parameter": None,
                "unknown_reason": reason}
    result = cors_check(ex.response.headers.index(), v.origin, v.credentials == "include")
    if result.ok:
        return {"verdict": "allowed", "cors_error": None, "failed_parameter": None,
                "unknown_reason": None}
    return {"verdict": "blocked", "cors_error": result.error,
            "failed_parameter": result.failed_parameter, "unknown_reason": None}


def _finish(v: ExchangeVerdict, changes: dict[str, object], said: list[str],
            diffs: list[Difference]) -> tuple[ExchangeVerdict, tuple[Difference, ...]]:
    if not said:
        return v, ()
    detail = "; ".join(said)
    if diffs:
        detail += " — the model said: " + ", ".join(f"{d.field} {d.model}" for d in diffs)
    step = TraceStep(_STEP, "fail" if diffs else "info", detail, None)
    changes["trace"] = (*v.trace, step)
    return replace(v, **changes), tuple(diffs)  # type: ignore[arg-type]


_CREDENTIALS_SHOWN = ("the error shows the request was credentialed, which the headers "
                      "alone do not show")


def _credentials_shown(v: ExchangeVerdict, error: str | None) -> bool:
    """The browser's error concerns credentials and the model had to infer the mode (only a
    Cookie header shows it): the log settles what the model assumed. An inferred 'omit' is
    one difference, not one per consequence."""
    return error in _CREDENTIALED_ERRORS and v.credentials != "include"


def _error_text(b: BrowserDecision) -> str:
    if b.cors_error is not None:
        return b.cors_error
    if b.cors_error_number is not None:
        return f"CorsError number {b.cors_error_number} (newer than this corsflow knows)"
    return "an unnamed error"


def _preflight_stage(cors_error: str) -> bool:
    return cors_error.startswith("Preflight") or cors_error.endswith("PreflightResponse")
