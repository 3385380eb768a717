"""JSON text with random but valid whitespace, for the streaming tests."""

from __future__ import annotations

import json
import random
from typing import Any

_SPACES = ["", " ", "\t", "\r\n  ", "\n"]


def dump(value: Any, rnd: random.Random, depth: int = 0) -> str:
    """JSON text with random (but valid) whitespace, sometimes pretty, sometimes not.

    Each container mostly repeats one separator, as pretty-printers do, so nested containers
    can look exactly like the level above; now and then an item breaks the habit.
    """
    usual = rnd.choice([*_SPACES, "\n" + "  " * (depth + 1)])

    def ws() -> str:
        return usual if rnd.random() < 0.85 else rnd.choice(_SPACES)

    end = rnd.choice(["", "\n" + "  " * depth, " "])
    if isinstance(value, dict):
        items = [f"{ws()}{json.dumps(k)}{rnd.choice(['', ' '])}:{rnd.choice(['', ' '])}"
                 f"{dump(v, rnd, depth + 1)}" for k, v in value.items()]
        return "{" + ",".join(items) + end + "}"
    if isinstance(value, list):
        return "[" + ",".join(ws() + dump(v, rnd, depth + 1) for v in value) + end + "]"
    return json.dumps(value, ensure_ascii=rnd.random() < 0.5)
