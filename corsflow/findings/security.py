"""Passive CORS security review (CWE-942): misconfigurations that captured traffic proves.

corsflow never sends anything here: it reads what servers answered to the origins the
browser really sent. A finding is raised only on evidence the capture holds, never on a
guess: origin reflection needs several distinct, unrelated origins each echoed back; a
missing ``Vary: Origin`` needs the same endpoint to have answered different origins
differently. :class:`SecurityReview` sees every exchange with all its headers (before the
engine keeps only the CORS ones) and keeps one small record per server origin, bounded
by the number of origins and endpoints seen.

References: CWE-942 (https://cwe.mitre.org/data/definitions/942.html); the Fetch standard's
CORS protocol (https://fetch.spec.whatwg.org/#http-cors-protocol); James Kettle, "Exploiting
CORS misconfigurations for Bitcoins and bounties" (PortSwigger research, 2016); Private
Network Access (https://wicg.github.io/private-network-access/).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass, field
from operator import itemgetter

from ..engine.events import Finding, Severity
from ..memo import capture_memo
from ..model import Exchange
from ..urls import _split, path_template, url_origin
from .catalogue import make_finding

REFLECTION_MIN_SITES = 3
"""Sites, other than the server's own, whose origins must each have been echoed in
Access-Control-Allow-Origin before reflection is reported: a few echoed origins may be an
allow-list of partners, and any number of the server's own subdomains may be a pattern
(reported as such when it is too wide)."""

KEEP_IDS = 20
KEEP_VALUES = 50
MAX_KEYS = 100_000
"""Endpoints (and servers) reviewed at most: the state stays bounded in endless sessions."""

SENSITIVE_EXPOSED = frozenset({
    "authorization", "proxy-authorization", "set-cookie", "set-cookie2", "cookie", "x-api-key", "x-auth-token", "x-csrf-token",
    "x-xsrf-token", "x-amz-security-token",
})
"""Response header names that carry credentials: a page should never be able to read them.
(``WWW-Authenticate`` is a challenge, not a credential: exposing it is common and harmless.)"""

SECURITY_CODES = frozenset({
    "OriginReflected", "NullOriginAllowed", "LookalikeOriginAllowed", "InsecureOriginAllowed",
    "VaryOriginMissing", "WildcardOnCredentialedData", "WildcardIgnoredWithCredentials",
    "SensitiveHeaderExposed", "PrivateNetworkAccessAllowed",
})


@capture_memo(4096)
def site_of(host: str) -> str:
    """An approximation of the registrable domain: the last two labels (``a.b.example.com``
    -> ``example.com``), or three under a two-letter country code's second level
    (``shop.example.co.uk`` -> ``example.co.uk``); an IP address or a one-label host is
    its own site. Used only to tell related origins apart, so an approximation errs towards
    calling origins related, which never raises a finding."""
    host = host.lower().rstrip(".")
    if _ip(host) is not None or "." not in host:
        return host
    labels = host.split(".")
    if len(labels) >= 3 and len(labels[-1]) == 2 and labels[-2] in (
            "co", "com", "net", "org", "ac", "gov", "edu", "ne", "or"):
        return ".".join(labels[-3:])
    return ".".join(labels[-2:])


def _ip(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


@capture_memo(4096)
def is_local_host(host: str) -> bool:
    """A loopback, private or link-local address, or a name that only resolves locally."""
    host = host.lower().rstrip(".")
    ip = _ip(host)
    if ip is not None:
        return ip.is_private or ip.is_loopback or ip.is_link_local
    return host == "localhost" or host.endswith((".localhost", ".local", ".internal",
                                                 ".lan", ".home.arpa"))


@capture_memo(4096)
def _host(origin_or_url: str) -> str:
    return (_split(origin_or_url).hostname or "").lower()


@capture_memo(4096)
def _scheme(origin_or_url: str) -> str:
    return _split(origin_or_url).scheme.lower()


@capture_memo(4096)
def lookalike(allowed: str, server_site: str) -> str | None:
    """How ``allowed`` (an origin's host) only looks like the server's site: ``"suffix"``
    (``evil-example.com`` for ``example.com``), ``"prefix"`` (``example.com.evil.net``),
    or None when it is the site itself, one of its subdomains, or unrelated."""
    if not server_site or "." not in server_site or _ip(server_site) is not None \
            or allowed == server_site \
            or allowed.endswith("." + server_site):
        return None
    if allowed.endswith(server_site):
        return "suffix"  # a check like `origin.endsWith("example.com")`
    if allowed.startswith((server_site + ".", server_site + "-")):
        return "prefix"  # a check like `origin.startsWith("https://example.com")`
    return None


REVIEWED_RESPONSE_FIELDS = frozenset({
    "access-control-allow-origin", "access-control-allow-credentials",
    "access-control-allow-methods", "access-control-allow-headers",
    "access-control-expose-headers", "access-control-allow-private-network",
    "vary", "set-cookie",
})


def _reviewed_headers(names: tuple[str, ...], items: tuple[tuple[str, str], ...]
                      ) -> dict[str, tuple[str, ...]]:
    """The response fields the review reads, by lower-case name (``names``: those of
    ``items``, lower-cased). The look-ups run in C; a large response has only a few."""
    out: dict[str, tuple[str, ...]] = {}
    for k in REVIEWED_RESPONSE_FIELDS.intersection(names):
        if names.count(k) == 1:
            out[k] = (items[names.index(k)][1],)
        else:
            out[k] = tuple(v for n, (_, v) in zip(names, items, strict=True) if n == k)
    return out


@dataclass(slots=True)
class _Evidence:
    ids: list[str] = field(default_factory=list)
    values: dict[str, str] = field(default_factory=dict)
    """Value -> the first exchange showing it (origins, header names...)."""
    credentialed: bool = False
    count: int = 0

    def add(self, exchange_id: str, value: str = "", credentialed: bool = False) -> None:
        self.count += 1
        self.credentialed = self.credentialed or credentialed
        if len(self.ids) < KEEP_IDS and exchange_id not in self.ids:
            self.ids.append(exchange_id)
        if value and len(self.values) < KEEP_VALUES:
            self.values.setdefault(value, exchange_id)


@dataclass(slots=True)
class _Endpoint:
    """What one endpoint (server + path template) answered, for the Vary rule."""

    answers: dict[str, str] = field(default_factory=dict)
    """Allow-Origin value -> the first exchange answering it."""
    without_vary: _Evidence = field(default_factory=_Evidence)


@dataclass(slots=True)
class SecurityReview:
    """Feed it every exchange (with all headers); :meth:`findings` at any time."""

    _by_code: dict[tuple[str, str], _Evidence] = field(default_factory=dict)
    _endpoints: dict[tuple[str, str], _Endpoint] = field(default_factory=dict)

    def _ev(self, code: str, where: str) -> _Evidence:
        ev = self._by_code.get((code, where))
        if ev is None:
            # Bounded by the endpoints seen; past the bound, new ones collect into a spare
            # record that no finding reads.
            if len(self._by_code) >= MAX_KEYS:
                return _Evidence()
            ev = self._by_code[(code, where)] = _Evidence()
        return ev

    def observe(self, ex: Exchange) -> None:
        response = ex.response
        if response is None:
            return
        # The request's index is built once and kept on its Headers: the engine looks the
        # same names up right after.
        req = ex.request_headers.by_name()
        origins = req.get("origin")
        if origins is None or len(origins) != 1:
            return  # not a CORS request (or a damaged one): nothing to review
        items = response.headers.items
        names = tuple(map(str.lower, map(itemgetter(0), items)))  # in C: most answers stop here
        if "access-control-allow-origin" not in names:
            return  # no CORS grant
        h = _reviewed_headers(names, items)
        acao_values = h["access-control-allow-origin"]
        if len(acao_values) != 1:
            return  # several values fail the CORS check anyway
        origin = origins[0].strip()
        acao = acao_values[0].strip()
        server = url_origin(ex.url)
        if not server or origin == server:
            return  # same-origin requests carry Origin too; their CORS headers are moot
        credentials = any(v.strip() == "true" for v in h.get("access-control-allow-credentials",
                                                             ()))
        preflight = ex.method == "OPTIONS" and "access-control-request-method" in req
        if acao == "*":
            self._wildcard(ex, server, h, preflight)
        elif acao == "null":
            self._ev("NullOriginAllowed", server).add(ex.id, origin, credentials)
        elif acao == origin:
            self._specific(ex, server, origin, credentials)
        if not preflight and acao != "*":
            self._vary(ex, server, acao, h)
        if preflight and credentials:
            for name in ("access-control-allow-headers", "access-control-allow-methods"):
                if any(t.strip() == "*" for v in h.get(name, ()) for t in v.split(",")):
                    self._ev("WildcardIgnoredWithCredentials", server).add(
                        ex.id, name, credentials)
        if not preflight:
            self._exposed(ex, server, h, credentials)
        if preflight and any(v.strip().lower() == "true" for v in req.get(
                "access-control-request-private-network", ())) and any(
                v.strip().lower() == "true" for v in h.get(
                    "access-control-allow-private-network", ())):
            self._ev("PrivateNetworkAccessAllowed", server).add(ex.id, origin, credentials)

    def _specific(self, ex: Exchange, server: str, origin: str, credentials: bool) -> None:
        # Per endpoint: one endpoint reflecting every origin must not make another one's
        # allow-list look like reflection.
        where = server + path_template(ex.url)
        self._ev("OriginReflected", where).add(ex.id, origin, credentials)
        host = _host(origin)
        kind = lookalike(host, site_of(_host(server)))
        if kind is not None:
            self._ev("LookalikeOriginAllowed", where).add(ex.id, origin, credentials)
        if _scheme(origin) == "http" and _scheme(server) == "https" \
                and not is_local_host(host):
            self._ev("InsecureOriginAllowed", where).add(ex.id, origin, credentials)

    def _wildcard(self, ex: Exchange, server: str, h: dict[str, tuple[str, ...]],
                  preflight: bool) -> None:
        if preflight:
            return
        if "set-cookie" in h:
            self._ev("WildcardOnCredentialedData", server).add(ex.id, "Set-Cookie")
        if "authorization" in ex.request_headers.by_name():
            self._ev("WildcardOnCredentialedData", server).add(ex.id, "Authorization")

    def _vary(self, ex: Exchange, server: str, acao: str, h: dict[str, tuple[str, ...]]) -> None:
        key = (server, path_template(ex.url))
        ep = self._endpoints.get(key)
        if ep is None:
            if len(self._endpoints) >= MAX_KEYS:
                return  # bounded: later endpoints go unreviewed
            ep = self._endpoints[key] = _Endpoint()
        if len(ep.answers) < KEEP_VALUES:
            ep.answers.setdefault(acao, ex.id)
        vary = {t.strip().lower() for v in h.get("vary", ()) for t in v.split(",")}
        if "origin" not in vary and "*" not in vary:
            ep.without_vary.add(ex.id, acao)

    def _exposed(self, ex: Exchange, server: str, h: dict[str, tuple[str, ...]],
                 credentials: bool) -> None:
        names = {t.strip().lower() for v in h.get("access-control-expose-headers", ())
                 for t in v.split(",") if t.strip()}
        for name in sorted(names & SENSITIVE_EXPOSED):
            self._ev("SensitiveHeaderExposed", server).add(ex.id, name, credentials)
        if "*" in names and credentials:
            self._ev("WildcardIgnoredWithCredentials", server).add(
                ex.id, "access-control-expose-headers", credentials)

    def findings(self) -> list[Finding]:
        out: list[Finding] = []
        reflecting = {where for (code, where), ev in self._by_code.items()
                      if code == "OriginReflected" and _reflected(where, ev) is not None}
        for (code, where), ev in sorted(self._by_code.items()):
            if code in _IMPLIED_BY_REFLECTION and where in reflecting:
                continue  # an endpoint that echoes every origin allows these too: said once
            f = _RULES[code](where, ev)
            if f is not None:
                out.append(f)
        for (server, template), ep in sorted(self._endpoints.items()):
            f = _vary_finding(server, template, ep)
            if f is not None:
                out.append(f)
        return out


# --- one function per code: message, severity and fix from the evidence ---------------------


def _sev(ev: _Evidence, with_credentials: Severity, without: Severity) -> Severity:
    return with_credentials if ev.credentialed else without


def _listed(values: dict[str, str], limit: int = 4) -> str:
    shown = list(values)[:limit]
    return ", ".join(shown) + (f" and {len(values) - limit} more" if len(values) > limit else "")


def _with_credentials(ev: _Evidence) -> str:
    return (" with Access-Control-Allow-Credentials: true, so any site can read responses "
            "made with the user's cookies" if ev.credentialed else
            " (without credentials: any site can read these responses)")


def _credentialed(ev: _Evidence) -> str:
    return (" with Access-Control-Allow-Credentials: true (responses made with the user's "
            "cookies)" if ev.credentialed else "")


def _reflected(where: str, ev: _Evidence) -> Finding | None:
    server = url_origin(where)
    own = site_of(_host(server))
    sites = {site_of(_host(o)) for o in ev.values} - {own}
    if len(sites) < REFLECTION_MIN_SITES:
        return None
    ids = tuple(dict.fromkeys(ev.values.values()))
    return make_finding(
        "OriginReflected",
        f"{where} echoed {len(ev.values)} different request origins from {len(sites)} other "
        "sites "
        f"in Access-Control-Allow-Origin ({_listed(ev.values)}){_with_credentials(ev)}",
        ids,
        f"on {server}, compare the Origin header with an exact list of the origins you trust "
        "(scheme, host and port) and send Access-Control-Allow-Origin only for those, with "
        "`Vary: Origin`; never copy the request's Origin back unchecked",
        url=where, count=ev.count, severity=_sev(ev, "error", "warning"))


def _null(server: str, ev: _Evidence) -> Finding | None:
    return make_finding(
        "NullOriginAllowed",
        f"{server} answered Access-Control-Allow-Origin: null{_with_credentials(ev)}; sandboxed "
        "iframes, data: and file: pages of any site send Origin: null",
        tuple(ev.ids),
        f"on {server}, never allow the origin `null`: list the real origins that need access",
        url=server, count=ev.count, severity=_sev(ev, "error", "warning"))


def _lookalike(where: str, ev: _Evidence) -> Finding | None:
    server = url_origin(where)
    site = site_of(_host(server))
    return make_finding(
        "LookalikeOriginAllowed",
        f"{where} allowed {_listed(ev.values)}, which only shares a prefix or suffix with "
        f"{site}{_credentialed(ev)}: anyone can register such a name",
        tuple(ev.ids),
        f"on {server}, match the whole origin exactly (or the host against `{site}` and "
        f"`.{site}` with the scheme), not with startsWith/endsWith or an unanchored regex",
        url=where, count=ev.count, severity=_sev(ev, "error", "warning"))


def _insecure(where: str, ev: _Evidence) -> Finding | None:
    server = url_origin(where)
    return make_finding(
        "InsecureOriginAllowed",
        f"{where} (https) allowed the http origin(s) {_listed(ev.values)}"
        f"{_credentialed(ev)}: a network attacker who injects script into the http "
        "page can read this API through it",
        tuple(ev.ids),
        f"on {server}, allow only https:// origins (serve the page over https)",
        url=where, count=ev.count, severity=_sev(ev, "error", "warning"))


def _wildcard_credentialed(server: str, ev: _Evidence) -> Finding | None:
    what = " and ".join(sorted(ev.values))
    return make_finding(
        "WildcardOnCredentialedData",
        f"{server} answered Access-Control-Allow-Origin: * on {ev.count} response(s) that "
        f"involve credentials ({what}): its policy lets every site read endpoints that handle "
        "credentials",
        tuple(ev.ids),
        f"on {server}, send a specific trusted origin (with `Vary: Origin`) on endpoints that "
        "set cookies or need Authorization; keep `*` for public, unauthenticated data",
        url=server, count=ev.count)


def _wildcard_ignored(server: str, ev: _Evidence) -> Finding | None:
    names = ", ".join("-".join(p.capitalize() for p in n.split("-")) for n in sorted(ev.values))
    return make_finding(
        "WildcardIgnoredWithCredentials",
        f"{server} sends '*' in {names} together with Access-Control-Allow-Credentials: true: "
        "browsers then read '*' as a literal name, not a wildcard, so it allows nothing",
        tuple(ev.ids),
        f"on {server}, list the methods and headers (and exposed headers) by name",
        url=server, count=ev.count)


def _exposed(server: str, ev: _Evidence) -> Finding | None:
    return make_finding(
        "SensitiveHeaderExposed",
        f"{server} exposes {_listed(ev.values)} to cross-origin pages "
        "(Access-Control-Expose-Headers)",
        tuple(ev.ids),
        f"on {server}, remove {_listed(ev.values)} from Access-Control-Expose-Headers: "
        "pages should never read credentials from responses",
        url=server, count=ev.count)


def _private(server: str, ev: _Evidence) -> Finding | None:
    return make_finding(
        "PrivateNetworkAccessAllowed",
        f"{server} answered private network access preflights from {_listed(ev.values)} with "
        "Access-Control-Allow-Private-Network: true: the browser had judged it more private "
        "than the page, and it let that site's script in",
        tuple(ev.ids),
        f"on {server}, grant private network access only to the exact origins that must "
        "reach this device, and require authentication for what they can do",
        url=server, count=ev.count)


def _vary_finding(server: str, template: str, ep: _Endpoint) -> Finding | None:
    # Proof that Allow-Origin depends on the request: the endpoint answered different
    # origins with different values.
    if len(ep.answers) < 2 or not ep.without_vary.count:
        return None
    ev = ep.without_vary
    return make_finding(
        "VaryOriginMissing",
        f"{server}{template} answered Access-Control-Allow-Origin "
        f"{_listed(ep.answers, 3)} depending on the request's Origin, without `Vary: Origin` "
        f"on {ev.count} response(s): a shared cache can serve one origin's answer to another",
        tuple(ev.ids),
        f"add `Vary: Origin` to every response of {server}{template} whose "
        "Access-Control-Allow-Origin depends on the request (the ones without it too)",
        url=server + template, count=ev.count)


_IMPLIED_BY_REFLECTION = frozenset({"LookalikeOriginAllowed", "InsecureOriginAllowed"})

_RULES = {
    "OriginReflected": _reflected,
    "NullOriginAllowed": _null,
    "LookalikeOriginAllowed": _lookalike,
    "InsecureOriginAllowed": _insecure,
    "WildcardOnCredentialedData": _wildcard_credentialed,
    "WildcardIgnoredWithCredentials": _wildcard_ignored,
    "SensitiveHeaderExposed": _exposed,
    "PrivateNetworkAccessAllowed": _private,
}


def is_security(f: Finding) -> bool:
    return f.code in SECURITY_CODES


def security_by_server(findings: Iterable[Finding]) -> dict[str, list[Finding]]:
    """Security findings grouped by the server origin they concern, most severe first."""
    out: dict[str, list[Finding]] = {}
    for f in findings:
        if f.code in SECURITY_CODES:
            out.setdefault(url_origin(f.url or "") or "(unknown server)", []).append(f)
    rank = {"error": 0, "warning": 1, "info": 2}
    for group in out.values():
        group.sort(key=lambda f: (rank[f.severity], f.code))
    return dict(sorted(out.items(), key=lambda kv: (rank[kv[1][0].severity], kv[0])))
