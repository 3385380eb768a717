"""What the engine hands out: one settled verdict per exchange, and findings it raised.

Events are frozen; the machine emits each exchange's :class:`ExchangeVerdict` once, when
everything that decides it has been seen (a preflight's verdict waits for the request it
was sent for, within a bounded window of capture time).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ..frozen import quick_init
from ..model import Exchange

Role = Literal["preflight", "preflighted", "simple", "other"]
Verdict = Literal["allowed", "blocked", "unknown"]
CacheUse = Literal["hit", "miss"]
Outcome = Literal["pass", "fail", "info", "unknown"]
Credentials = Literal["include", "omit", "unknown"]
"""The request's credentials mode as far as the capture shows it. ``same-origin`` mode is
indistinguishable from ``omit`` on a cross-origin request, so both are ``omit`` here."""
Severity = Literal["error", "warning", "info"]


@quick_init
@dataclass(frozen=True, slots=True)
class TraceStep:
    """One step of a decision, with the values it looked at."""

    step: str
    """The check, in the standard's words: ``"CORS check: Access-Control-Allow-Origin"``."""
    outcome: Outcome
    detail: str
    """What was compared: ``"'https://a.example' == request origin 'https://a.example'"``."""
    spec: str | None = None
    """The Fetch standard anchor, e.g. ``"#cors-check"``."""


@quick_init
@dataclass(frozen=True, slots=True)
class MaxAge:
    """A preflight response's Access-Control-Max-Age, as sent and as the engine uses it."""

    raw: str | None
    """The header as captured (None: absent)."""
    parsed: int | None
    """The integer it parses to, or None when absent or unparsable."""
    effective: float
    """Seconds the engine caches the result for (default applied, clamped to the cap;
    0 means not cached)."""
    clamped: bool
    """True when the value sent was above the engine's cap."""
    problem: Literal["missing", "invalid", "disabled", "above-cap"] | None = None


@quick_init
@dataclass(frozen=True, slots=True)
class ExchangeVerdict:
    """The engine's settled account of one exchange (the EXCHANGE record of the JSON report)."""

    exchange: Exchange
    role: Role
    origin: str | None
    """The request's Origin header."""
    verdict: Verdict | None
    """allowed / blocked / unknown; None for role ``other``."""
    cors_error: str | None = None
    """When blocked: the Chrome DevTools Protocol ``Network.CorsError`` name."""
    failed_parameter: str | None = None
    """The method, header name or header value the failed check was about."""
    unknown_reason: str | None = None
    """When the verdict is ``unknown``: what the capture does not show."""
    preflight_id: str | None = None
    cache: CacheUse | None = None
    redundant: bool | None = None
    redundant_cause: str | None = None
    """Why a redundant preflight was sent, when it can be told (``"devtools-disable-cache"``...)."""
    credentials: Credentials = "unknown"
    unsafe_headers: tuple[str, ...] = ()
    """The request's CORS-unsafe request-header names (sorted, lower-case), as inferred."""
    preflight_reasons: tuple[str, ...] = ()
    """Why this request needed a preflight, one phrase each (``"method PUT"``,
    ``"header x-custom-header"``, ``"Content-Type application/json"``)."""
    max_age: MaxAge | None = None
    """On a preflight: its Access-Control-Max-Age."""
    trace: tuple[TraceStep, ...] = ()
    private_network: bool = False
    """On a preflight: it asked for Private Network Access
    (``Access-Control-Request-Private-Network: true``)."""
    private_network_warning: str | None = None
    """On a preflight whose private-network check failed although the browser sent the
    request (Chromium's warning mode): the CorsError it warned about."""


@quick_init
@dataclass(frozen=True, slots=True)
class Finding:
    """Something a person should act on or know (the FINDING record of the JSON report)."""

    code: str
    """PascalCase: the ``Network.CorsError`` name for CORS failures, else our own code."""
    severity: Severity
    message: str
    """One line, plain words."""
    exchange_ids: tuple[str, ...]
    hint: str | None = None
    """The fix, concretely: which header, which value, on which response."""
    origin: str | None = None
    url: str | None = None
    spec: str | None = None
    """A reference: a Fetch standard anchor URL or a browser source file."""
    count: int | None = None
    """How many exchanges this finding stands for (its ``exchange_ids`` may list fewer)."""
    saved: int | None = None
    """Preflights the fix would have saved in this capture, where that can be counted."""
