"""Root causes and the changes that remove them, each proven by replaying the session.

A root cause is what one server change fixes: (server origin, what to change), over the
endpoint templates where it was seen. Candidates come from the verdicts: blocked requests
grouped by the check that failed and the value it failed on; preflight responses whose
Access-Control-Max-Age keeps the cache shorter than the browser allows; ``*`` covering
Authorization. Each candidate becomes :class:`Change` rules, the session is replayed with
them (:mod:`corsflow.whatif`), and the change reports what the replay shows: the blocked
requests it fixes, the preflights and milliseconds it saves. A candidate the replay shows
to do nothing is dropped; one that breaks a request says so.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from ..engine.events import ExchangeVerdict
from ..engine.fetch import is_cors_safelisted_method
from ..engine.profiles import EngineProfile, get_profile
from ..urls import path_template, url_origin
from ..whatif.replay import PageRequest, page_requests, replay
from ..whatif.rules import STATUS, ChangeSet, HeaderEdit, Rule
from .safe import NULL_ORIGIN_ADVICE, browser_origin, pretty_header

ALLOW_ORIGIN = "Access-Control-Allow-Origin"
ALLOW_CREDENTIALS = "Access-Control-Allow-Credentials"
ALLOW_METHODS = "Access-Control-Allow-Methods"
ALLOW_HEADERS = "Access-Control-Allow-Headers"
MAX_AGE = "Access-Control-Max-Age"
SHOWN_ORIGINS = 5
"""Origins an allow-origin change names in its text."""
SHOWN_HEADERS = 8
"""Headers an allow-header change names in its text (its edits hold them all)."""


@dataclass(frozen=True, slots=True)
class Change:
    """One server change, with its effect on this session as the replay shows it."""

    server: str
    """The server origin whose responses change."""
    endpoints: tuple[str, ...]
    """Path templates (``/v2/items/{id}``) the change applies to."""
    what: str
    """What to change, without where: ``add `X-Trace-Id` to Access-Control-Allow-Headers``."""
    edits: tuple[HeaderEdit, ...]
    """The header edits, as a server would make them (empty: advice with no header)."""
    finding_codes: tuple[str, ...]
    fixes: tuple[str, ...] = ()
    """Page requests (exchange ids) blocked as captured and allowed after the change."""
    breaks: tuple[str, ...] = ()
    """Page requests allowed as captured and blocked after it (a good change has none)."""
    saves_preflights: int = 0
    saves_ms: float = 0.0
    predicted: int = 0
    """How many of the outcomes after the change rest on answers the capture does not show."""
    note: str | None = None
    """Why the advice is what it is (for unsafe-looking cases), or what it cannot prove."""

    @property
    def action(self) -> str:
        """One line, plain words: what to change and where."""
        return f"{self.what} on {_where(self.server, self.endpoints)}"

    @property
    def short(self) -> str:
        """The action under a heading naming the server."""
        shown = ", ".join(self.endpoints[:4])
        more = len(self.endpoints) - 4
        return f"{self.what} on {shown}" + (f" and {more} more" if more > 0 else "")

    @property
    def rules(self) -> tuple[Rule, ...]:
        return tuple(Rule(self.server + e, self.edits) for e in self.endpoints) if self.edits \
            else ()

    @property
    def effect(self) -> str:
        """``fixes 41 blocked requests; saves 212 preflights (9.8 s)``."""
        parts = []
        if self.fixes:
            parts.append(f"fixes {len(self.fixes)} blocked request{'s' * (len(self.fixes) != 1)}")
        if self.saves_preflights > 0:
            parts.append(f"saves {self.saves_preflights} preflight"
                         f"{'s' * (self.saves_preflights != 1)} ({_seconds(self.saves_ms)})")
        if self.breaks:
            parts.append(f"but blocks {len(self.breaks)} request(s) allowed today")
        if not self.edits:
            return "advice: no header change to replay"
        return "; ".join(parts) or "no effect on this session"

    def rank(self) -> tuple[int, int, float]:
        return (-len(self.fixes), -self.saves_preflights, -self.saves_ms)


def _seconds(ms: float) -> str:
    return f"{ms / 1000:.1f} s" if ms >= 1000 else f"{ms:.0f} ms"


@dataclass(slots=True)
class _Cause:
    server: str
    action_key: tuple[str, ...]
    codes: set[str] = field(default_factory=set)
    endpoints: dict[str, None] = field(default_factory=dict)
    origins: dict[str, None] = field(default_factory=dict)
    methods: dict[str, None] = field(default_factory=dict)
    headers: dict[str, None] = field(default_factory=dict)
    allow_headers: dict[str, None] = field(default_factory=dict)
    """The headers to add to Access-Control-Allow-Headers (an allow-header cause)."""
    credentialed: bool = False
    bad_status: bool = False


def _origin_error(code: str) -> bool:
    return code.removeprefix("Preflight") in (
        "MissingAllowOriginHeader", "AllowOriginMismatch", "InvalidAllowOriginValue",
        "MultipleAllowOriginValues", "WildcardOriginNotAllowed")


def _causes(verdicts: Iterable[ExchangeVerdict], profile: EngineProfile) -> list[_Cause]:
    found: dict[tuple[str, tuple[str, ...]], _Cause] = {}

    def cause(server: str, key: tuple[str, ...]) -> _Cause:
        c = found.get((server, key))
        if c is None:
            c = found[(server, key)] = _Cause(server, key)
        return c

    cap = profile.max_age_cap
    for v in verdicts:
        ex = v.exchange
        code = v.cors_error
        if v.verdict == "blocked" and code:
            if v.role == "preflighted" and v.cache == "miss" and (
                    code.startswith("Preflight") or code.endswith("PreflightResponse")):
                continue  # the preflight's own verdict carries this cause
            param = (v.failed_parameter or "").strip()
            if code == "HeaderDisallowedByPreflightResponse":
                # Every header a server's preflights leave out goes in one change: one list
                # a person edits, one replay to prove it (not one per header).
                key: tuple[str, ...] = ("allow-header",)
            elif code == "MethodDisallowedByPreflightResponse":
                key = ("allow-method", param)
            elif _origin_error(code):
                key = ("allow-origin", "preflight" if v.role == "preflight" else "response",
                       "wildcard" if "Wildcard" in code else "origin")
            elif code.removeprefix("Preflight") == "InvalidAllowCredentials":
                key = ("allow-credentials",)
            elif code in ("PreflightInvalidStatus", "PreflightDisallowedRedirect"):
                key = ("preflight-status",)
            elif code in ("InvalidAllowMethodsPreflightResponse",
                          "InvalidAllowHeadersPreflightResponse"):
                key = ("list-syntax", code)
            else:
                key = ("advice", code)
            server, template = url_origin(ex.url), path_template(ex.url)
            c = cause(server, key)
            c.codes.add(code)
            c.endpoints.setdefault(template)
            if key == ("allow-header",) and param:
                c.allow_headers.setdefault(param.lower())
            c.origins.setdefault(v.origin or "null")
            c.credentialed |= v.credentials == "include"
            if v.role == "preflight":
                method = (ex.request_headers.get("access-control-request-method") or "").strip()
                if method and not is_cors_safelisted_method(method):
                    c.methods.setdefault(method)
                for h in v.unsafe_headers:
                    c.headers.setdefault(h)
                status = ex.status
                c.bad_status |= status is not None and not 200 <= status <= 299
        elif v.role == "preflight" and v.verdict == "allowed" and v.max_age is not None:
            # Only here: most verdicts raise no cause, and their URLs need no parsing.
            server, template = url_origin(ex.url), path_template(ex.url)
            m = v.max_age
            if m.effective < cap and m.problem != "above-cap":
                c = cause(server, ("max-age",))
                c.codes.add({"missing": "MaxAgeMissing", "invalid": "MaxAgeInvalid",
                             "disabled": "MaxAgeDisabled"}.get(m.problem or "", "MaxAgeTooShort"))
                c.endpoints.setdefault(template)
            if "authorization" in v.unsafe_headers and profile.wildcard_in_cache != "all":
                response = ex.response
                allowed = {h.strip().lower() for h in (response.headers.get(
                    "access-control-allow-headers") or "").split(",")} if response else set()
                if "*" in allowed and "authorization" not in allowed:
                    c = cause(server, ("allow-header",))
                    c.codes.add("AuthorizationWildcardRepreflight")
                    c.allow_headers.setdefault("authorization")
                    c.endpoints.setdefault(template)
    return list(found.values())


def _edits(c: _Cause, profile: EngineProfile, *,
           minimal: bool = False) -> tuple[str, tuple[HeaderEdit, ...], str | None]:
    """(what, edits, note) for one cause. ``minimal``: for a preflight without
    Allow-Origin, only the origin (and status), not the methods and headers asked for."""
    kind = c.action_key[0]
    if kind == "allow-header":
        names = [pretty_header(h) for h in c.allow_headers]
        adds = tuple(HeaderEdit(ALLOW_HEADERS, "add", n) for n in names)
        if names == ["Authorization"] and "AuthorizationWildcardRepreflight" in c.codes:
            what = f"list `Authorization` in {ALLOW_HEADERS} ('*' never covers it in the cache)"
            return what, adds, None
        shown = ", ".join(f"`{n}`" for n in names[:SHOWN_HEADERS])
        if len(names) > SHOWN_HEADERS:
            shown += f" and {len(names) - SHOWN_HEADERS} more"
        why = (" ('*' never covers `Authorization` in the cache)"
               if "AuthorizationWildcardRepreflight" in c.codes else "")
        return f"add {shown} to {ALLOW_HEADERS}{why}", adds, None
    if kind == "allow-method":
        method = c.action_key[1]
        return (f"add `{method}` to {ALLOW_METHODS}",
                (HeaderEdit(ALLOW_METHODS, "add", method),), None)
    if kind == "max-age":
        cap = profile.max_age_cap
        return (f"send `{MAX_AGE}: {cap}` ({profile.name}'s cap) in the OPTIONS responses",
                (HeaderEdit(MAX_AGE, "set", str(cap)),), None)
    if kind == "allow-credentials":
        return (f"send `{ALLOW_CREDENTIALS}: true`",
                (HeaderEdit(ALLOW_CREDENTIALS, "set", "true"),), None)
    if kind == "preflight-status":
        redirect = "PreflightDisallowedRedirect" in c.codes
        return (("answer OPTIONS with 204 at the URL itself" +
                 (" (a preflight never follows a redirect)" if redirect else
                  ", before any authentication (a preflight never carries credentials)")),
                (HeaderEdit(STATUS, "set", "204"),), None)
    if kind == "list-syntax":
        if c.action_key[1] == "InvalidAllowMethodsPreflightResponse":
            value = ", ".join(c.methods) or "GET, POST"
            return (f"send `{ALLOW_METHODS}: {value}` (a comma-separated list)",
                    (HeaderEdit(ALLOW_METHODS, "set", value),), None)
        value = ", ".join(pretty_header(h) for h in c.headers) or "Content-Type"
        return (f"send `{ALLOW_HEADERS}: {value}` (a comma-separated list)",
                (HeaderEdit(ALLOW_HEADERS, "set", value),), None)
    if kind == "allow-origin":
        origins = [o for o in dict.fromkeys(browser_origin(o) for o in c.origins) if o]
        if not origins:
            return ("serve the page from a real origin rather than allow `Origin: null`", (),
                    NULL_ORIGIN_ADVICE)
        note = NULL_ORIGIN_ADVICE if "null" in c.origins else None
        preflight = c.action_key[1] == "preflight"
        if len(origins) == 1:
            value = origins[0]
            allow = HeaderEdit(ALLOW_ORIGIN, "origin-list", value)
            text = f"send `{ALLOW_ORIGIN}: {value}`"
        else:
            # Never two values in one header: answer each listed origin with itself.
            allow = HeaderEdit(ALLOW_ORIGIN, "origin-list", ", ".join(origins))
            named = ", ".join(origins[:SHOWN_ORIGINS])
            if len(origins) > SHOWN_ORIGINS:
                # A line a person reads; the edit itself (in the JSON report) lists them all.
                named = (f"the {len(origins)} origins the capture shows ({named} and "
                         f"{len(origins) - SHOWN_ORIGINS} more: check each against the "
                         "origins you trust)")
            text = (f"send `{ALLOW_ORIGIN}` with the request's origin when it is one of "
                    f"{named} (one value per response)")
        edits = [allow, HeaderEdit("Vary", "add", "Origin")]
        extra = []
        if c.credentialed or "WildcardOriginNotAllowed" in {x.removeprefix("Preflight")
                                                           for x in c.codes}:
            edits.append(HeaderEdit(ALLOW_CREDENTIALS, "set", "true"))
            extra.append(f"`{ALLOW_CREDENTIALS}: true`")
        if preflight and c.bad_status:
            edits.insert(0, HeaderEdit(STATUS, "set", "204"))
        if preflight and not minimal and c.action_key[2] != "wildcard":
            for m in c.methods:
                edits.append(HeaderEdit(ALLOW_METHODS, "add", m))
            for h in c.headers:
                edits.append(HeaderEdit(ALLOW_HEADERS, "add", pretty_header(h)))
            if c.methods:
                extra.append(f"`{ALLOW_METHODS}: {', '.join(c.methods)}`")
            if c.headers:
                extra.append(f"`{ALLOW_HEADERS}: {', '.join(pretty_header(h) for h in c.headers)}`")
        lead = ("answer OPTIONS with 204 before any authentication and " if preflight
                and c.bad_status else "")
        action = (f"{lead}{text}" + (f" with {', '.join(extra)}" if extra else "")
                  + " and `Vary: Origin`")
        return action, tuple(edits), note
    code = c.action_key[1]
    if code == "RedirectContainsCredentials":
        return ("redirect without `user:password@` in the Location", (),
                "send credentials in a header instead; the browser refuses such redirects")
    return ("record the session with its responses and preflights to see which check fails", (),
            "the capture shows that the browser blocked these requests, not which check failed")


def _where(server: str, endpoints: tuple[str, ...]) -> str:
    if len(endpoints) == 1:
        return server + endpoints[0]
    shown = endpoints[:3]
    more = len(endpoints) - len(shown)
    return f"{server} ({', '.join(shown)}{f' and {more} more' if more > 0 else ''})"


def _proven(change: Change, verdicts: list[ExchangeVerdict], profile: EngineProfile,
            requests: list[PageRequest]) -> tuple[Change, frozenset[str]]:
    """The change with the effect a replay of its server's requests shows, and the
    endpoints on which that replay changed a verdict or a preflight."""
    result = replay(verdicts, ChangeSet(change.rules, label=change.action), profile,
                    requests=requests)
    totals = result.totals()
    saves, saves_ms = 0, 0.0
    if "" in totals:
        before, after = totals[""]
        saves, saves_ms = before.preflights - after.preflights, \
            before.preflight_ms - after.preflight_ms
    changed = frozenset(path_template(r.url) for r, b, a in zip(
        result.requests, result.before, result.after, strict=True)
        if (b.verdict, b.preflight) != (a.verdict, a.preflight))
    return Change(change.server, change.endpoints, change.what, change.edits,
                  change.finding_codes, result.fixes, result.breaks, saves, round(saves_ms, 1),
                  result.predicted, change.note), changed


def _pruned(change: Change, changed: frozenset[str], verdicts: list[ExchangeVerdict],
            profile: EngineProfile, requests: list[PageRequest]) -> Change:
    """The change on only the endpoints where its replay (``changed``) shows it does
    something, proven again.

    The preflight cache is keyed by URL and a URL belongs to one endpoint, so what the
    change does on each endpoint is what its replay shows on that endpoint's requests."""
    useful = [e for e in change.endpoints if e in changed]
    if not useful or len(useful) == len(change.endpoints):
        return change
    return _proven(Change(change.server, tuple(useful), change.what, change.edits,
                          change.finding_codes, note=change.note), verdicts, profile,
                   requests)[0]


def compute_changes(verdicts: Iterable[ExchangeVerdict],
                    engine: str | EngineProfile = "chromium",
                    requests: list[PageRequest] | None = None) -> tuple[Change, ...]:
    """The changes for a session, each with its effect from a replay, best first."""
    profile = engine if isinstance(engine, EngineProfile) else get_profile(engine)
    verdicts = list(verdicts)
    if requests is None:
        requests = page_requests(verdicts)
    by_server: dict[str, list[PageRequest]] = {}
    for r in requests:
        by_server.setdefault(r.server, []).append(r)
    out: list[Change] = []
    for c in _causes(verdicts, profile):
        tried: list[tuple[Change, frozenset[str]]] = []
        for minimal in ((True, False) if c.action_key[:2] == ("allow-origin", "preflight")
                        else (False,)):
            what, edits, note = _edits(c, profile, minimal=minimal)
            change = Change(c.server, tuple(c.endpoints), what, edits, tuple(sorted(c.codes)),
                            note=note)
            tried.append(_proven(change, verdicts, profile, by_server.get(c.server, []))
                         if edits else (change, frozenset()))
        # The smallest change that fixes as much as the fullest one, on the endpoints where
        # it has an effect of its own.
        change, changed = next(t for t in tried if len(t[0].fixes) >= len(tried[-1][0].fixes))
        if change.edits and len(change.endpoints) > 1:
            change = _pruned(change, changed, verdicts, profile, by_server.get(c.server, []))
        if change.edits and not change.fixes and change.saves_preflights <= 0 \
                and not change.breaks:
            continue
        out.append(change)
    servers_rank: dict[str, tuple[int, int, float]] = {}
    for ch in out:
        rank = ch.rank()
        servers_rank[ch.server] = min(servers_rank.get(ch.server, rank), rank)
    out.sort(key=lambda ch: (servers_rank[ch.server], ch.server, ch.rank(), ch.what))
    return tuple(out)
