"""From an analysis to server policies: what each server applied, and what to propose.

Pure functions over a :class:`~corsflow.analysis.Report`. The observed policy holds only what
the responses show (``None`` where the capture shows nothing). The proposed policy keeps what
worked, fixes what was blocked where the capture shows the page meant it (the origin is one
the server allows elsewhere), and cuts avoidable preflights (Max-Age up to the engine's cap,
explicit lists instead of ``*`` where ``*`` is literal or never cached for Authorization).
Every difference says why; advice that is no policy field goes into the notes.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from ..analysis import Report
from ..engine.events import ExchangeVerdict, Finding
from ..engine.fetch import extract_header_list_values, parse_int64, serialize_origin
from ..engine.profiles import get_profile
from ..urls import path_template
from .model import (
    Difference,
    PathRule,
    Policy,
    PolicyDocument,
    ServerPolicy,
    ServerPolicyRules,
    is_plain_name,
    is_plain_origin,
    is_plain_path,
)

CAPS = {"chromium": 7200, "firefox": 86400, "webkit": 600}
"""Access-Control-Max-Age caps, seconds (corsflow/engine/profiles.py has the sources)."""

_ORIGIN_ERRORS = frozenset({
    "MissingAllowOriginHeader", "AllowOriginMismatch", "InvalidAllowOriginValue",
    "MultipleAllowOriginValues", "PreflightMissingAllowOriginHeader",
    "PreflightAllowOriginMismatch", "PreflightInvalidAllowOriginValue",
    "PreflightMultipleAllowOriginValues"})
_CACHE_CODES = frozenset({"MaxAgeMissing", "MaxAgeAboveCap", "MaxAgeInvalid", "MaxAgeDisabled",
                          "MaxAgeTooShort", "PerUrlPreflights", "AvoidablePreflight",
                          "AuthorizationWildcardRepreflight", "RedundantPreflight"})


def _items(values: Iterable[str] | None, lower: bool = False) -> list[str]:
    """List-valued header items (Access-Control-Allow-Methods...), as the browser splits them;
    an unparsable list contributes nothing."""
    out: list[str] = []
    for value in values or ():
        try:
            parsed = extract_header_list_values(value) or ()
        except ValueError:
            continue
        out.extend(v.lower() if lower else v for v in parsed)
    return out


def _add(ordered: dict[str, None], items: Iterable[str]) -> None:
    for item in items:
        ordered.setdefault(item, None)


@dataclass(slots=True)
class _Seen:
    """What one server path (template) showed: the responses and what the page asked for."""

    echoed: dict[str, None] = field(default_factory=dict)
    """Origins answered with themselves in Access-Control-Allow-Origin."""
    star: int = 0
    star_origins: dict[str, None] = field(default_factory=dict)
    """Origins answered with '*'."""
    other_acao: int = 0
    cors_responses: int = 0
    preflight_responses: int = 0
    actual_responses: int = 0
    methods: dict[str, None] | None = None
    headers: dict[str, None] | None = None
    expose: dict[str, None] | None = None
    credentials_true: int = 0
    vary_origin: int = 0
    max_ages: Counter[int | None] = field(default_factory=Counter)
    private_network: int = 0
    requested_by: dict[str, None] = field(default_factory=dict)
    needed_methods: dict[str, dict[str, None]] = field(default_factory=dict)
    needed_headers: dict[str, dict[str, None]] = field(default_factory=dict)
    credentialed: set[str] = field(default_factory=set)
    blocked: Counter[tuple[str, str]] = field(default_factory=Counter)
    """(origin, Network.CorsError) -> count."""
    bad_status: Counter[int] = field(default_factory=Counter)

    def add(self, v: ExchangeVerdict) -> None:
        ex = v.exchange
        origin = v.origin or ""
        preflight = v.role == "preflight"
        self.requested_by.setdefault(origin, None)
        if v.verdict == "blocked" and v.cors_error:
            self.blocked[(origin, v.cors_error)] += 1
        if v.credentials == "include":
            self.credentialed.add(origin)
        methods = self.needed_methods.setdefault(origin, {})
        headers = self.needed_headers.setdefault(origin, {})
        if preflight:
            asked = ex.request_headers.get("access-control-request-method")
            if asked:
                _add(methods, [asked.strip()])
            _add(headers, _items(ex.request_headers.get_all("access-control-request-headers"),
                                 lower=True))
        elif v.role == "preflighted":
            _add(methods, [ex.method])
        _add(headers, v.unsafe_headers)
        response = ex.response
        if response is None:
            return
        h = response.headers
        acao = h.get_all("access-control-allow-origin")
        if preflight:
            self.preflight_responses += 1
            if not 200 <= response.status <= 299:
                self.bad_status[response.status] += 1
        if not acao:
            return
        self.cors_responses += 1
        value = ", ".join(acao)
        if value == "*":
            self.star += 1
            self.star_origins.setdefault(origin, None)
        elif value == origin:
            self.echoed.setdefault(origin, None)
        else:
            self.other_acao += 1
        if ", ".join(h.get_all("access-control-allow-credentials")) == "true":
            self.credentials_true += 1
        if any(t.strip().lower() in ("origin", "*") for t in ",".join(h.get_all("vary"))
               .split(",")):
            self.vary_origin += 1
        if preflight:
            if self.methods is None:
                self.methods = {}
            _add(self.methods, _items(h.get_all("access-control-allow-methods")))
            if self.headers is None:
                self.headers = {}
            _add(self.headers, _items(h.get_all("access-control-allow-headers"), lower=True))
            raw = ", ".join(h.get_all("access-control-max-age")).strip()
            self.max_ages[parse_int64(raw)] += 1  # None: absent or not a number
            if ", ".join(h.get_all("access-control-allow-private-network")) == "true":
                self.private_network += 1
        else:
            self.actual_responses += 1
            if self.expose is None:
                self.expose = {}
            _add(self.expose, _items(h.get_all("access-control-expose-headers"), lower=True))

    def merge(self, other: _Seen) -> None:
        _add(self.echoed, other.echoed)
        self.star += other.star
        _add(self.star_origins, other.star_origins)
        self.other_acao += other.other_acao
        self.cors_responses += other.cors_responses
        self.preflight_responses += other.preflight_responses
        self.actual_responses += other.actual_responses
        for name in ("methods", "headers", "expose"):
            theirs = getattr(other, name)
            if theirs is not None:
                mine = getattr(self, name)
                if mine is None:
                    mine = {}
                    setattr(self, name, mine)
                _add(mine, theirs)
        self.credentials_true += other.credentials_true
        self.vary_origin += other.vary_origin
        self.max_ages.update(other.max_ages)
        self.private_network += other.private_network
        _add(self.requested_by, other.requested_by)
        for o, m in other.needed_methods.items():
            _add(self.needed_methods.setdefault(o, {}), m)
        for o, m in other.needed_headers.items():
            _add(self.needed_headers.setdefault(o, {}), m)
        self.credentialed |= other.credentialed
        self.blocked.update(other.blocked)
        self.bad_status.update(other.bad_status)

    def observed(self) -> Policy:
        """Only what the responses show; None where they show nothing."""
        if not self.cors_responses and not self.preflight_responses:
            return Policy()
        origins: tuple[str, ...] = (("*",) if self.star else ()) + tuple(self.echoed)
        answered = self.cors_responses > 0
        max_age = None
        if self.max_ages:
            max_age = self.max_ages.most_common(1)[0][0]
        return Policy(
            allow_origins=origins,
            allow_methods=tuple(self.methods) if self.methods is not None else None,
            allow_headers=tuple(self.headers) if self.headers is not None else None,
            allow_credentials=(self.credentials_true > 0) if answered else None,
            max_age=max_age,
            expose_headers=tuple(self.expose) if self.expose is not None else None,
            vary_origin=(self.vary_origin > 0) if answered else None,
            # Whether a preflight asked for private network access is not kept in the
            # report: a server that never said 'true' may still allow it when asked.
            allow_private_network=True if self.private_network else None,
        )


def _server_of(v: ExchangeVerdict) -> str:
    return serialize_origin(v.exchange.url)


def derive(report: Report, server: str | None = None) -> PolicyDocument:
    """The observed and proposed policy of every server origin the capture's CORS requests
    went to (or of ``server`` alone)."""
    by_server: dict[str, dict[str, _Seen]] = {}
    for v in report.exchanges:
        if v.role not in ("preflight", "preflighted", "simple") or not v.origin:
            continue
        s = _server_of(v)
        if server is not None and s != server:
            continue
        by_server.setdefault(s, {}).setdefault(path_template(v.exchange.url), _Seen()).add(v)
    ids_by_server: dict[str, set[str]] = {}
    for v in report.exchanges:
        ids_by_server.setdefault(_server_of(v), set()).add(v.exchange.id)
    cap = CAPS.get(report.engine, get_profile(report.engine).max_age_cap)
    servers = []
    for s, templates in by_server.items():
        findings = [f for f in report.findings if f.code in _CACHE_CODES
                    and any(i in ids_by_server.get(s, ()) for i in f.exchange_ids)]
        servers.append(_server_policy(s, templates, report.engine, cap, findings))
    return PolicyDocument(tuple(servers))


def _server_policy(server: str, templates: dict[str, _Seen], engine: str, cap: int,
                   findings: list[Finding]) -> ServerPolicy:
    whole = _Seen()
    for seen in templates.values():
        whole.merge(seen)
    notes: list[str] = []

    # Group the paths by what decides the shape of the answer: any origin ('*', only
    # without credentials) or an explicit list, and credentials. Lists are merged within a
    # group; the biggest group is the server default, the others become per-path rules.
    groups: dict[tuple[bool, bool], list[str]] = {}
    shapes = {template: _shape(seen) for template, seen in templates.items()}
    main_shape = max(shapes.values(), key=list(shapes.values()).count)
    for template in shapes:
        if not is_plain_path(template):
            shapes[template] = main_shape   # no per-path rule can name it safely
    for template, shape in shapes.items():
        groups.setdefault(shape, []).append(template)
    # The origins the server allows: those it answered with their own name, and those it
    # answered '*' where '*' cannot stay (credentials). '*' on a public path says nothing
    # about the origins the rest of the API allows.
    allowed_d = dict(whole.echoed)
    for template, shape in shapes.items():
        if not shape[0]:
            _add(allowed_d, templates[template].star_origins)
    allowed = tuple(o for o in allowed_d if is_plain_origin(o))
    ordered = sorted(groups.items(), key=lambda kv: (-len(kv[1]), kv[0]))
    default_key, default_templates = ordered[0]

    def merged(names: Iterable[str]) -> _Seen:
        acc = _Seen()
        for name in names:
            acc.merge(templates[name])
        return acc

    default_seen = merged(default_templates)
    observed_default = default_seen.observed()
    proposed_default, diffs = _propose(default_seen, default_key, allowed, engine, cap, None)
    observed_rules: list[PathRule] = []
    proposed_rules: list[PathRule] = []
    for key, names in ordered[1:]:
        for name in sorted(names, key=lambda t: (t.count("{"), t)):
            seen = templates[name]
            proposed, more = _propose(seen, key, allowed, engine, cap, name)
            observed_rules.append(PathRule(name, seen.observed()))
            proposed_rules.append(PathRule(name, proposed))
            diffs.extend(d for d in more if not any(
                (d.field, d.observed, d.proposed) == (e.field, e.observed, e.proposed)
                for e in diffs if e.path is None))

    refused = sorted({o for (o, err) in whole.blocked if err in _ORIGIN_ERRORS
                      and o not in allowed and o != "null"})
    for origin in refused:
        count = sum(n for (o, err), n in whole.blocked.items() if o == origin)
        notes.append(
            f"{origin}: {count} request(s) refused; the server never allowed this origin in "
            "the capture, so it is not proposed. Add it to allow_origins only if it is one of "
            "your own sites.")
    odd = [o for o in {**whole.echoed, **whole.star_origins}
           if o != "null" and not is_plain_origin(o)]
    for origin in odd:
        notes.append(f"{origin!r} was allowed but is not a plain serialised origin "
                     "(http(s)://host[:port]): not proposed.")
    odd_names = sorted({n for seen in templates.values()
                        for names in (*seen.needed_methods.values(),
                                      *seen.needed_headers.values(),
                                      seen.methods or {}, seen.headers or {}, seen.expose or {})
                        for n in names if n != "*" and not is_plain_name(n)})
    if odd_names:
        notes.append(f"Not proposed (not plain method or header names): {odd_names!r}.")
    if "null" in whole.requested_by:
        notes.append(
            "Origin 'null' was sent (a sandboxed iframe, a file: page, or a request after a "
            "cross-origin redirect). Never allow 'null': any site can send it from a "
            "sandboxed iframe, so allowing it is allowing everyone, with their cookies when "
            "credentials are allowed. Instead serve the page from its own origin (or drop "
            "'sandbox' without 'allow-same-origin'), and redirect to the final URL up front.")
    if whole.other_acao and not allowed:
        notes.append("The server answered with an Access-Control-Allow-Origin naming another "
                     "origin; the capture shows no origin it allows.")
    for status, count in sorted(whole.bad_status.items()):
        notes.append(
            f"{count} preflight(s) answered {status}: answer OPTIONS requests that carry "
            "Access-Control-Request-Method with 204 and the CORS headers, before "
            "authentication or routing (the generated configurations do).")
    unknown_creds = sum(1 for o in whole.requested_by if o not in whole.credentialed)
    if unknown_creds and not whole.credentialed and not whole.credentials_true:
        notes.append("No request showed credentials (a Cookie header): "
                     "allow_credentials is proposed false; a pcap or HAR without cookies "
                     "cannot show the credentials mode.")
    for f in findings:
        notes.append(f"{f.code}: {f.message}" + (f" Fix: {f.hint}" if f.hint else ""))
    return ServerPolicy(
        server,
        ServerPolicyRules(observed_default, tuple(observed_rules)),
        ServerPolicyRules(proposed_default, tuple(proposed_rules)),
        tuple(diffs), tuple(dict.fromkeys(notes)))


def _shape(seen: _Seen) -> tuple[bool, bool]:
    """(any origin, credentials) for a path: '*' is kept only where the server sent it and
    no request to the path carried credentials."""
    credentials = bool(seen.credentials_true) or any(
        o in seen.echoed or o in seen.star_origins for o in seen.credentialed)
    star = seen.star > 0 and not seen.echoed and not credentials
    return star, credentials


def _propose(seen: _Seen, key: tuple[bool, bool], allowed: tuple[str, ...], engine: str,
             cap: int, path: str | None) -> tuple[Policy, list[Difference]]:
    star, credentials = key
    observed = seen.observed()
    diffs: list[Difference] = []

    def differ(name: str, proposed: object, why: str) -> None:
        before = getattr(observed, name)
        if before != proposed:
            diffs.append(Difference(name, before, proposed, why, path))

    # --- origins
    origins: tuple[str, ...] = ("*",) if star else allowed
    if star:
        why = "kept: '*' worked, and no request carried credentials"
    elif observed.allow_origins == ("*",):
        why = ("'*' is refused on credentialed requests; the origins that sent them are "
               "listed instead (never reflect any origin with credentials)")
    else:
        fixed = sorted({o for (o, err) in seen.blocked if err in _ORIGIN_ERRORS
                        and o in allowed})
        why = ("an explicit allow-list of the origins the server allows"
               + (f"; {', '.join(fixed)} also blocked here although allowed elsewhere on "
                  "this server" if fixed else ""))
    differ("allow_origins", origins, why)

    needed_m: dict[str, None] = {}
    needed_h: dict[str, None] = {}
    for origin in seen.requested_by:
        if star or origin in allowed:
            _add(needed_m, seen.needed_methods.get(origin, {}))
            _add(needed_h, seen.needed_headers.get(origin, {}))

    # --- methods and headers: explicit lists of what was allowed and what the page sent.
    # '*' is dropped: it is a literal name on credentialed requests, never covers
    # Authorization in Chromium's cache, and an explicit list says what the API accepts.
    observed_m = list(observed.allow_methods or ())
    methods = dict.fromkeys(m for m in observed_m if m != "*" and is_plain_name(m))
    # Methods the page preflighted are listed even when safelisted (GET, HEAD, POST): the
    # browser does not need them, but several servers (Starlette, Flask-CORS) refuse a
    # preflight for a method they do not list.
    missing_m = [m for m in needed_m if m not in methods and is_plain_name(m)]
    _add(methods, missing_m)
    differ("allow_methods", tuple(methods), "; ".join(filter(None, [
        f"the page sent {', '.join(missing_m)}" if missing_m else "",
        "'*' replaced by the methods named or used: '*' is a literal name on credentialed "
        "requests" if "*" in observed_m else "",
    ])) or "no preflight answer was seen")

    observed_h = list(observed.allow_headers or ())
    headers = dict.fromkeys(h for h in observed_h if h != "*" and is_plain_name(h))
    missing_h = [h for h in needed_h if h not in headers and is_plain_name(h)]
    _add(headers, missing_h)
    differ("allow_headers", tuple(headers), "; ".join(filter(None, [
        f"the page sent {', '.join(missing_h)}" if missing_h else "",
        "'*' replaced by the headers named or used: '*' is a literal name on credentialed "
        "requests and never covers Authorization in Chromium's preflight cache"
        if "*" in observed_h else "",
    ])) or "no preflight answer was seen")

    # --- credentials
    differ("allow_credentials", credentials,
           "requests from allowed origins carried credentials (cookies or Authorization)"
           if credentials else "no request carried credentials")

    # --- Max-Age: long enough to cut repeated preflights, within the engine's cap
    preflights = seen.preflight_responses > 0 or bool(methods) or bool(headers)
    max_age: int | None = None
    if preflights:
        current = observed.max_age
        if current is not None and 0 < current <= cap:
            max_age = current
            if seen.preflight_responses > 1 and current < cap:
                max_age = cap
        else:
            max_age = cap
    caps = ", ".join(f"{k} {v} s" for k, v in CAPS.items())
    differ("max_age", max_age,
           f"{engine}'s cap applies ({cap} s; caps: {caps}): a preflight result is cached "
           "that long at most, so repeated preflights to the same URL are cut"
           if max_age == cap else "no preflight needs caching")

    # --- the rest: keep what the page may read; vary when the answer depends on the origin
    expose = tuple(h for h in observed.expose_headers or () if is_plain_name(h))
    differ("expose_headers", expose,
           "the capture cannot show which response headers the page reads: kept as observed"
           if observed.expose_headers is not None
           else "no allowed response was seen; none proposed")
    vary = not star
    differ("vary_origin", vary,
           "the answer depends on the request's Origin: Vary: Origin keeps shared caches "
           "from serving one origin's answer to another" if vary
           else "the answer is the same for every origin")
    pna = bool(observed.allow_private_network)
    differ("allow_private_network", pna,
           "kept as observed" if pna else "not shown to be needed")
    return Policy(origins, tuple(methods), tuple(headers), credentials, max_age, expose, vary,
                  pna), diffs
