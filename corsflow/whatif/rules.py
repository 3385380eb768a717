"""What a what-if changes: server answers rewritten by header edits (``--set``) or by a policy.

A :class:`Rule` is one URL pattern (as :func:`corsflow.urls.url_matches` reads it) with the
header edits a server would make on the responses it sends for those URLs. A
:class:`ChangeSet` is what one replay applies: rules, or a proposed policy per server
(the JSON of ``corsflow policy``), answered by ``corsflow.policy.model.answer``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from ..engine.fetch import extract_header_list_values, is_token
from ..errors import UsageError
from ..model import Headers, Response
from ..urls import PatternIndex, url_matches, url_origin

EditOp = Literal["set", "add", "remove", "delete", "origin-list"]

STATUS = ":status"
"""The pseudo-header name an edit uses to change a preflight's status."""


@dataclass(frozen=True, slots=True)
class HeaderEdit:
    """One change to a response header (or, as ``:status``, to a preflight's status)."""

    name: str
    """As it should be written (``Access-Control-Allow-Headers``), or ``:status``."""
    op: EditOp
    """``set`` replaces every value; ``add``/``remove`` a token of a comma-separated list;
    ``delete`` drops the header; ``origin-list`` answers the request's own origin when it is
    one of ``value`` (comma-separated), and nothing otherwise (an allow-list, never a
    reflection of any origin)."""
    value: str = ""

    def text(self) -> str:
        """As ``--set`` writes it."""
        prefix = {"add": "+", "remove": "-", "set": "", "delete": "", "origin-list": ""}[self.op]
        if self.op == "origin-list":
            return f"{self.name}: {self.value} (the request's origin, when listed)"
        return f"{self.name}: {prefix}{self.value}"


@dataclass(frozen=True, slots=True)
class Rule:
    """Header edits on the responses for the URLs a pattern covers."""

    pattern: str
    edits: tuple[HeaderEdit, ...]

    def matches(self, url: str) -> bool:
        return url_matches(self.pattern, url)

    def text(self) -> tuple[str, ...]:
        """One ``--set`` argument per edit (origin lists have no ``--set`` spelling)."""
        return tuple(f"{self.pattern}: {e.text()}" for e in self.edits)


Answer = Callable[[str, str, Headers, bool], Headers | None]
"""(method, url, request headers, preflight) -> the CORS headers a server sends, or None
when the answer is not this server's to give."""


@dataclass(frozen=True, slots=True)
class ChangeSet:
    """What one replay applies. Empty: the session as captured."""

    rules: tuple[Rule, ...] = ()
    answers: Mapping[str, Answer] | None = None
    """Per server origin, a policy's answer function (``--policy``)."""
    label: str = "as captured"
    _index: _RuleIndex | None = field(default=None, init=False, repr=False, compare=False,
                                      hash=False)
    """The rules by the URLs they cover, built on first use."""

    def rules_for(self, url: str) -> tuple[Rule, ...]:
        """The rules that cover ``url``, in their order."""
        index = self._index
        if index is None:
            index = _RuleIndex(self.rules)
            object.__setattr__(self, "_index", index)
        return index.rules_for(url)

    def servers(self, candidates: set[str]) -> set[str]:
        """The server origins among ``candidates`` whose answers this change set can touch."""
        touched = set()
        for server in candidates:
            if self.answers is not None and server in self.answers or any(_rule_may_touch(r, server) for r in self.rules):
                touched.add(server)
        return touched

    def touches(self, url: str) -> bool:
        """Whether the answers for ``url`` may change (the preflight cache is keyed by URL,
        so requests to URLs no change touches keep their outcomes)."""
        if self.answers is not None and url_origin(url) in self.answers:
            return True
        return bool(self.rules_for(url))

    def respond(self, response: Response, method: str, url: str, origin: str,
                request_headers: Headers, preflight: bool, *,
                memo: EditMemo | None = None) -> Response | None:
        """The response a server with this change would send, or None when unchanged.
        ``memo``: the edits' results so far (see :func:`apply_edits`)."""
        changed = response
        if self.answers is not None:
            answer = self.answers.get(url_origin(url))
            if answer is not None:
                cors = answer(method, url, request_headers, preflight)
                if cors is not None:
                    kept = tuple((n, v) for n, v in response.headers.items
                                 if not n.lower().startswith("access-control-")
                                 and n.lower() != "vary")
                    status = response.status
                    if preflight and not 200 <= status <= 299:
                        status = 204  # a policy's server answers OPTIONS itself
                    changed = Response(status, Headers(kept + cors.items), response.reason,
                                       response.http_version, response.finished)
        for rule in self.rules_for(url):
            changed = apply_edits(changed, rule.edits, origin, preflight, memo)
        return None if changed is response else changed


class _RuleIndex:
    """A change set's rules by the URLs they cover (:class:`~corsflow.urls.PatternIndex`): a
    change names each endpoint it edits as a rule of its own, and trying every rule on every
    exchange made a replay grow with endpoints times exchanges."""

    def __init__(self, rules: tuple[Rule, ...]) -> None:
        self.rules = rules
        self.patterns = PatternIndex([rule.pattern for rule in rules])
        self.seen: dict[str, tuple[Rule, ...]] = {}
        """URL -> its rules (a session repeats URLs); emptied when full."""

    def rules_for(self, url: str) -> tuple[Rule, ...]:
        found = self.seen.get(url)
        if found is None:
            found = tuple(self.rules[i] for i in self.patterns.matching(url))
            if len(self.seen) >= _SEEN_MAX:
                self.seen.clear()
            self.seen[url] = found
        return found


_SEEN_MAX = 65536


def _rule_may_touch(rule: Rule, server: str) -> bool:
    pattern = rule.pattern.strip()
    if "://" not in pattern:
        return True
    return url_matches(pattern, server + "/") or pattern.lower().startswith(server.lower() + "/") \
        or pattern.lower() == server.lower()


EditMemo = dict[tuple[int, Headers, tuple[HeaderEdit, ...], tuple[bool, ...], bool],
                tuple[int, Headers]]
"""(status, headers, edits, which origin lists hold the origin, preflight) -> the edited
status and headers, the origin written as :data:`_ORIGIN`."""

_ORIGIN = "\x00origin\x00"
"""Stands for the request's origin in a memoised edit (no header value holds a NUL)."""


def apply_edits(response: Response, edits: tuple[HeaderEdit, ...], origin: str,
                preflight: bool, memo: EditMemo | None = None) -> Response:
    """The response with ``edits`` applied. A replay edits the same few header sets over
    and over: with ``memo`` each distinct one is edited once, whatever the origin."""
    if memo is None:
        status, headers = _edited(response.status, response.headers, edits, origin, preflight)
    else:
        # The origin matters only through the origin lists: whether each holds it, and the
        # value written back. Thousands of origins then share one edit.
        holds = tuple(origin in _origins(e.value) for e in edits if e.op == "origin-list")
        key = (response.status, response.headers, edits, holds, preflight)
        done = memo.get(key)
        if done is None:
            done = memo[key] = _edited(response.status, response.headers, edits, _ORIGIN,
                                       preflight, holds)
        status, headers = done
        if holds:
            headers = Headers(tuple((n, origin if v == _ORIGIN else v)
                                    for n, v in headers.items))
    return Response(status, headers, response.reason, response.http_version,
                    response.finished)


def _edited(status: int, headers: Headers, edits: tuple[HeaderEdit, ...], origin: str,
            preflight: bool, holds: tuple[bool, ...] | None = None) -> tuple[int, Headers]:
    """``holds``: whether each origin list holds ``origin`` (when it stands for one)."""
    items = list(headers.items)
    lists = iter(holds) if holds is not None else None
    # Tokens of the list headers written so far: a run of edits to one list (fifty headers
    # added to Access-Control-Allow-Headers) parses it once, not once per edit.
    # Tokens of the list headers being edited (and their lowercase forms): a run of edits
    # to one list (fifty headers added to Access-Control-Allow-Headers) parses it once and
    # writes it once, at the end of the run, not once per edit.
    written: dict[str, tuple[str, list[str], set[str]]] = {}
    for e in edits:
        if e.name == STATUS:
            if preflight:
                status = int(e.value)
                # A preflight answered by the server itself is no redirect any more.
                items = [(n, v) for n, v in items if n.lower() != "location"]
            continue
        low = e.name.lower()
        if e.op in ("add", "remove"):
            run = written.get(low)
            if run is None:
                current = ", ".join(v for n, v in items if n.lower() == low)
                tokens = _list_tokens(current)
                run = written[low] = (e.name, tokens, {t.lower() for t in tokens})
            _, tokens, lowered = run
            value = e.value.lower()
            if e.op == "add" and value not in lowered:
                tokens.append(e.value)
                lowered.add(value)
            elif e.op == "remove" and value in lowered:
                tokens[:] = [t for t in tokens if t.lower() != value]
                lowered.discard(value)
            continue
        items = _flush(items, written.pop(low, None), low)
        others = [(n, v) for n, v in items if n.lower() != low]
        if e.op == "delete":
            items = others
        elif e.op == "set":
            items = [*others, (e.name, e.value)]
        elif e.op == "origin-list":
            held = next(lists) if lists is not None else origin in _origins(e.value)
            items = [*others, (e.name, origin)] if held else others
    for low, run in written.items():
        items = _flush(items, run, low)
    return status, Headers(tuple(items))


def _flush(items: list[tuple[str, str]], run: tuple[str, list[str], set[str]] | None,
           low: str) -> list[tuple[str, str]]:
    """``items`` with the list header ``low`` written from the tokens of a run of edits."""
    if run is None:
        return items
    name, tokens, _ = run
    others = [(n, v) for n, v in items if n.lower() != low]
    return [*others, (name, ", ".join(tokens))] if tokens else others


@functools.lru_cache(maxsize=256)
def _origins(value: str) -> frozenset[str]:
    """The origins of an origin-list edit (a fleet's may list thousands), parsed once."""
    return frozenset(o.strip() for o in value.split(",") if o.strip())


def _list_tokens(value: str) -> list[str]:
    """The items of a list header; of an unparsable one, the items that are tokens (a
    change that edits a broken list leaves a valid one)."""
    try:
        return list(extract_header_list_values(value) or ())
    except ValueError:
        return [t.strip() for t in value.split(",") if is_token(t.strip())]


def parse_set(text: str) -> Rule:
    """``'URL-PATTERN: Header-Name: value'`` -> a :class:`Rule` (``+v`` adds to a list,
    ``-v`` removes from it, an empty value drops the header; ``:status: 204`` answers
    preflights with that status)."""
    pattern, sep, rest = text.partition(": ")
    rest = rest.strip()
    if not sep or not pattern.strip() or not rest:
        raise UsageError(f"--set {text!r}: expected 'URL-PATTERN: Header-Name: value'")
    if rest.startswith(STATUS):
        name, value = STATUS, rest[len(STATUS):].lstrip(":").strip()
        three_digits = value.isascii() and value.isdigit() and len(value) == 3
        if not three_digits or not 100 <= int(value) <= 599:
            raise UsageError(f"--set {text!r}: ':status' takes a status code (e.g. 204)")
        return Rule(pattern.strip(), (HeaderEdit(STATUS, "set", value),))
    name, colon, value = rest.partition(":")
    name, value = name.strip(), value.strip()
    if not colon or not name or any(c in name for c in " \t,;\"") :
        raise UsageError(f"--set {text!r}: expected 'URL-PATTERN: Header-Name: value'")
    if not value:
        return Rule(pattern.strip(), (HeaderEdit(name, "delete"),))
    if value[0] in "+-" and len(value) > 1 and name.lower() != "access-control-max-age":
        return Rule(pattern.strip(), (HeaderEdit(name, "add" if value[0] == "+" else "remove",
                                                 value[1:].strip()),))
    return Rule(pattern.strip(), (HeaderEdit(name, "set", value),))
