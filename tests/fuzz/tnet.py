"""A minimal tnetstring codec (mitmproxy's flow file format), for structure-aware mutation.

``load`` returns a tree of ``(type_byte, value)`` pairs that ``dump`` writes back byte for
byte, so a mutated leaf gets correct length prefixes all the way up: the mutation reaches
the flow reader's field handling instead of stopping at its framing.
"""

from __future__ import annotations

from typing import Any

Node = tuple[int, Any]
"""(type byte, value): bytes for leaves, a list of Nodes for ``]`` and ``}``."""


def load_all(data: bytes) -> list[Node]:
    """Every top-level element of ``data`` (a flow file is a sequence of them)."""
    out = []
    pos = 0
    while pos < len(data):
        node, pos = _load(data, pos)
        out.append(node)
    return out


def _load(data: bytes, pos: int) -> tuple[Node, int]:
    colon = data.index(b":", pos)
    length = int(data[pos:colon])
    start = colon + 1
    end = start + length
    kind = data[end]
    body = data[start:end]
    if kind in (ord("]"), ord("}")):
        items = []
        p = 0
        while p < len(body):
            item, p = _load(body, p)
            items.append(item)
        return (kind, items), end + 1
    return (kind, body), end + 1


RAW = -1
"""A node whose value is already dumped bytes (deep nesting, built without recursion)."""


def dump(node: Node) -> bytes:
    kind, value = node
    if kind == RAW:
        return bytes(value)
    body = b"".join(dump(n) for n in value) if isinstance(value, list) else value
    return str(len(body)).encode() + b":" + body + bytes([kind])


def leaves(node: Node, path: tuple[int, ...] = ()) -> list[tuple[int, ...]]:
    """Paths (child indexes) of every leaf, depth first."""
    _kind, value = node
    if isinstance(value, list):
        found: list[tuple[int, ...]] = []
        for i, child in enumerate(value):
            found += leaves(child, (*path, i))
        return found
    return [path]


def replace(node: Node, path: tuple[int, ...], new: Node) -> Node:
    if not path:
        return new
    kind, value = node
    items = list(value)
    items[path[0]] = replace(items[path[0]], path[1:], new)
    return kind, items


def get(node: Node, path: tuple[int, ...]) -> Node:
    for i in path:
        node = node[1][i]
    return node
