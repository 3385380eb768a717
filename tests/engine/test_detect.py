"""Which engine made a capture, from User-Agent and HAR creator."""

from __future__ import annotations

import dataclasses

import pytest

from corsflow.engine.detect import detect_engine, engine_of_user_agent
from corsflow.model import ProducerHints
from tests.factories import API, exchange

CHROME = ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
          "HeadlessChrome/156.0.0.0 Safari/537.36")
FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:153.0) Gecko/20100101 Firefox/153.0"
SAFARI = ("Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like "
          "Gecko) Version/17.5 Safari/605.1.15")
MINIBROWSER = ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/605.1.15 (KHTML, like Gecko) "
               "Version/60.5 Safari/605.1.15")
EDGE = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/126.0.0.0 Safari/537.36 Edg/126.0.0.0")
CHROME_IOS = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
              "(KHTML, like Gecko) CriOS/126.0 Mobile/15E148 Safari/604.1")


@pytest.mark.parametrize(("ua", "engine"), [
    (CHROME, "chromium"), (EDGE, "chromium"), (FIREFOX, "firefox"), (SAFARI, "webkit"),
    (MINIBROWSER, "webkit"), (CHROME_IOS, "webkit"), ("curl/8.5.0", None),
])
def test_user_agents(ua: str, engine: str | None) -> None:
    assert engine_of_user_agent(ua) == engine


def _ex(n: int, ua: str | None = None, creator: str | None = None) -> object:
    ex = exchange(n, "GET", API + "/x", {"User-Agent": ua} if ua else {}, started=float(n))
    return dataclasses.replace(ex, hints=ProducerHints(creator=creator))


def test_majority_of_user_agents_decides_and_says_why() -> None:
    found = detect_engine([_ex(0, FIREFOX), _ex(1, FIREFOX), _ex(2, CHROME)])  # type: ignore[list-item]
    assert found.engine == "firefox"
    assert "2 of 3" in found.reason and "Firefox/153.0" in found.reason


def test_creator_when_no_user_agent() -> None:
    found = detect_engine([_ex(0, creator="WebInspector")])  # type: ignore[list-item]
    assert (found.engine, found.reason) == ("chromium", "HAR creator 'WebInspector'")
    # Playwright drives every engine: its name says nothing.
    assert detect_engine([_ex(0, creator="Playwright")]).engine is None  # type: ignore[list-item]


def test_nothing_to_go_on() -> None:
    assert detect_engine([]).engine is None
