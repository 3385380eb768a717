"""Which browser engine made a capture: from its requests' User-Agent and the HAR creator.

A pure function over what the readers already hand over (each exchange's request headers
and ``hints.creator``), so the CLI can say which engine it chose and why, and warn when
``--engine`` contradicts the capture.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

from ..model import Exchange

# Order matters: Chromium's User-Agent also names Safari and AppleWebKit; Edge and Opera
# name Chrome. Firefox on iOS (FxiOS) and Chrome on iOS (CriOS) are WebKit underneath.
_UA_RULES: tuple[tuple[re.Pattern[str], str, str], ...] = (
    (re.compile(r"\b(FxiOS|CriOS|EdgiOS)/"), "webkit", "an iOS browser (WebKit underneath)"),
    (re.compile(r"\b(HeadlessChrome|Chrome|Chromium|Edg|OPR)/\d"), "chromium", "Chrome"),
    (re.compile(r"\bFirefox/\d"), "firefox", "Firefox"),
    (re.compile(r"\bAppleWebKit/\d.*\bVersion/\d.*\bSafari/"), "webkit", "Safari"),
    (re.compile(r"\bAppleWebKit/\d"), "webkit", "WebKit"),
)

# HAR creators that only one engine writes.
_CREATORS: dict[str, str] = {
    "WebInspector": "chromium",  # Chrome / Edge DevTools
    "Firefox": "firefox",  # Firefox DevTools
    "Firebug": "firefox",
    "WebKit Web Inspector": "webkit",  # Safari
}


@dataclass(frozen=True, slots=True)
class Detection:
    """The engine a capture shows, or None, and the evidence in words."""

    engine: str | None
    reason: str
    counts: tuple[tuple[str, int], ...] = ()
    """Requests per engine by User-Agent, most first."""


@lru_cache(maxsize=256)  # a capture's requests share a handful of User-Agents
def engine_of_user_agent(ua: str) -> str | None:
    for pattern, engine, _ in _UA_RULES:
        if pattern.search(ua):
            return engine
    return None


def engine_of_creator(creator: str | None) -> str | None:
    if not creator:
        return None
    for name, engine in _CREATORS.items():
        if creator.startswith(name):
            return engine
    return None


def detect_engine(exchanges: Iterable[Exchange]) -> Detection:
    """The engine most requests' User-Agent names; the HAR creator when none has one.

    Playwright's creator names no engine (it drives all three): its User-Agents decide.
    """
    by_ua: Counter[str] = Counter()
    creators: Counter[str] = Counter()
    sample: dict[str, str] = {}
    for ex in exchanges:
        ua = ex.request_headers.get("user-agent")
        if ua:
            engine = engine_of_user_agent(ua)
            if engine is not None:
                by_ua[engine] += 1
                sample.setdefault(engine, ua)
        creator = engine_of_creator(ex.hints.creator)
        if creator is not None:
            creators[f"{creator}\0{ex.hints.creator}"] += 1
    counts = tuple(by_ua.most_common())
    if by_ua:
        engine, n = counts[0]
        total = sum(by_ua.values())
        share = "all" if n == total else f"{n} of {total}"
        ua = sample[engine]
        short = ua if len(ua) <= 90 else ua[:87] + "..."
        return Detection(engine, f"User-Agent of {share} requests: {short}", counts)
    if creators:
        key, _ = creators.most_common(1)[0]
        engine, name = key.split("\0", 1)
        return Detection(engine, f"HAR creator {name!r}")
    return Detection(None, "no User-Agent or HAR creator names a browser")
