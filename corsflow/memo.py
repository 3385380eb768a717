"""Bounded memos of pure functions over what one capture holds: its URLs, hosts, origins.

A capture names the same few URLs and hosts thousands of times, so the functions that parse
them are memoised. A process that analyses one session after another (a fleet's worker)
empties the memos between sessions with :func:`forget`: the next capture shares few of the
last one's URLs, and memos filled by hundreds of sessions would make each worker hold far
more than a single analysis does.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import _lru_cache_wrapper, lru_cache
from typing import TypeVar

T = TypeVar("T")

_CLEARS: list[Callable[[], None]] = []


def capture_memo(maxsize: int) -> Callable[[Callable[..., T]], _lru_cache_wrapper[T]]:
    """``functools.lru_cache(maxsize)``, emptied by :func:`forget`."""

    def wrap(function: Callable[..., T]) -> _lru_cache_wrapper[T]:
        cached = lru_cache(maxsize=maxsize)(function)
        _CLEARS.append(cached.cache_clear)
        return cached

    return wrap


def forget() -> None:
    """Empty every capture memo: what the last session's capture held is not kept."""
    for clear in _CLEARS:
        clear()


__all__ = ["capture_memo", "forget"]
