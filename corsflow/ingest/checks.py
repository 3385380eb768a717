"""Sanity bounds every reader applies to the numbers a capture gives.

A damaged or hostile file can hold any number where a time belongs: ``1e400``, NaN, the
year 1 or 36866. Nothing downstream (sorting, dates in reports, charts) should have to
guard against them, so readers keep a time only when it could be one.
"""

from __future__ import annotations

import math

EARLIEST = 0.0
"""1970-01-01: captures are of HTTP traffic, which is younger."""
LATEST = 253_402_300_799.0
"""9999-12-31T23:59:59Z, the last second Python's datetime can show."""


def plausible_time(t: object) -> bool:
    """True when ``t`` (epoch seconds) is a finite time between 1970 and the year 9999."""
    if t.__class__ is not float and t.__class__ is not int:
        return False
    return EARLIEST <= t <= LATEST and math.isfinite(t)
