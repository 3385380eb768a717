"""A server's CORS policy as data, its JSON form, and what a server implementing it answers.

The policy JSON (schema 1) is written by ``corsflow policy --format json`` and read by
``corsflow whatif --policy``. :func:`answer` is the one definition of "a server implementing
this policy": the what-if replay feeds its answers to the engine, and the tests of the
generated server configurations compare the real servers' answers with it.

Unknowns are ``None``: an observed policy holds only what the capture shows. In a policy,
``max_age`` ``None`` means "no Access-Control-Max-Age header" (or, observed, not shown).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any
from urllib.parse import urlsplit

from ..model import Headers

SCHEMA = 1

_FIELDS = ("allow_origins", "allow_methods", "allow_headers", "allow_credentials", "max_age",
           "expose_headers", "vary_origin", "allow_private_network")


class PolicyError(ValueError):
    """A policy document that cannot be used; the message names the place (one line)."""


@dataclass(frozen=True, slots=True)
class Policy:
    """What a server answers to cross-origin requests (one server, or one path of it)."""

    allow_origins: tuple[str, ...] | None = None
    """Serialised origins it allows; ``("*",)`` alone means any (only without credentials)."""
    allow_methods: tuple[str, ...] | None = None
    """Access-Control-Allow-Methods items, as sent (browsers compare them byte for byte)."""
    allow_headers: tuple[str, ...] | None = None
    """Access-Control-Allow-Headers items, lower-case."""
    allow_credentials: bool | None = None
    """Whether it sends ``Access-Control-Allow-Credentials: true``."""
    max_age: int | None = None
    """Access-Control-Max-Age in seconds; None: no header (observed: or not shown)."""
    expose_headers: tuple[str, ...] | None = None
    """Access-Control-Expose-Headers items, lower-case."""
    vary_origin: bool | None = None
    """Whether its CORS answers carry ``Vary: Origin``."""
    allow_private_network: bool | None = None
    """Whether it answers ``Access-Control-Request-Private-Network: true`` with
    ``Access-Control-Allow-Private-Network: true``."""


@dataclass(frozen=True, slots=True)
class PathRule:
    """A per-path override: requests whose path matches ``path`` get ``policy``.

    ``path`` is a template (``/v2/items/{id}``: a ``{...}`` segment matches any one
    segment). ``policy`` is complete (the server default with the overrides applied)."""

    path: str
    policy: Policy


@dataclass(frozen=True, slots=True)
class ServerPolicyRules:
    """A server default and its per-path overrides (the first matching path wins)."""

    default: Policy
    paths: tuple[PathRule, ...] = ()

    def for_url(self, url: str) -> Policy:
        """The policy that applies to ``url`` (or to a bare path)."""
        path = _url_path(url)
        for rule in self.paths:
            if path_matches(rule.path, path):
                return rule.policy
        return self.default


@dataclass(frozen=True, slots=True)
class Difference:
    """One field where the proposed policy differs from the observed one, and why."""

    field: str
    observed: Any
    proposed: Any
    why: str
    path: str | None = None
    """The path template of a per-path rule, or None for the server default."""


@dataclass(frozen=True, slots=True)
class ServerPolicy:
    """One server origin: what it applied as observed, and what corsflow proposes."""

    server: str
    """The serialised server origin (``https://api.example``)."""
    observed: ServerPolicyRules
    proposed: ServerPolicyRules
    differences: tuple[Difference, ...] = ()
    notes: tuple[str, ...] = ()
    """What the capture could not show, and advice beyond the fields (``Origin: null``...)."""


@dataclass(frozen=True, slots=True)
class PolicyDocument:
    """The whole policy JSON: one entry per server origin."""

    servers: tuple[ServerPolicy, ...] = ()

    def server(self, origin_or_url: str) -> ServerPolicy | None:
        """The entry for a server origin, or for the origin of a URL."""
        origin = _origin_of(origin_or_url)
        for s in self.servers:
            if s.server == origin:
                return s
        return None


# --- matching paths -------------------------------------------------------------------------

_PLACEHOLDER = re.compile(r"\{[^/{}]*\}")


def path_matches(template: str, path: str) -> bool:
    """Whether ``path`` (no query) matches a template: same number of segments, each
    ``{...}`` segment matching any non-empty segment and the others matching exactly."""
    t_segs = template.split("/")
    p_segs = path.split("/")
    if len(t_segs) != len(p_segs):
        return False
    return all(
        (bool(p) if _PLACEHOLDER.fullmatch(t) else t == p) for t, p in zip(t_segs, p_segs))


def template_regex(template: str) -> str:
    """A regular expression (anchored, PCRE/RE2/Python compatible) for a path template."""
    parts = []
    for seg in template.split("/"):
        parts.append("[^/]+" if _PLACEHOLDER.fullmatch(seg) else re.escape(seg).replace("/", ""))
    return "^" + "/".join(parts) + "$"


def _url_path(url: str) -> str:
    if url.startswith("/"):
        return url.split("?", 1)[0].split("#", 1)[0]
    try:
        return urlsplit(url).path or "/"
    except ValueError:
        return "/"


def _origin_of(origin_or_url: str) -> str:
    from ..engine.fetch import serialize_origin

    return serialize_origin(origin_or_url)


# --- what a server implementing a policy answers ---------------------------------------------


def answer(policy: ServerPolicy | ServerPolicyRules | Policy, method: str, url: str,
           request_headers: Headers, preflight: bool) -> Headers:
    """The CORS response headers a server implementing ``policy`` sends.

    A :class:`ServerPolicy` answers with its proposed rules. ``preflight`` says whether the
    request is a CORS preflight (``OPTIONS`` with ``Access-Control-Request-Method``).

    - No ``Origin``, or an origin the policy does not allow: no CORS headers at all (only
      ``Vary: Origin`` when the policy varies by origin, so caches keep answers apart).
      ``Origin: null`` is never allowed, whatever the policy lists.
    - An allowed origin: ``Access-Control-Allow-Origin`` is the request's origin, or ``*``
      when the policy allows any origin without credentials; then
      ``Access-Control-Allow-Credentials: true`` when the policy allows credentials.
    - A preflight also gets the whole allowed method and header lists (not only what was
      asked, so the browser's cached result covers later requests), ``Max-Age`` and, when
      asked for and allowed, ``Access-Control-Allow-Private-Network: true``.
    - Any other response also gets ``Access-Control-Expose-Headers``.

    ``None`` fields (unknown) send nothing. The answer does not depend on whether the
    requested method and headers are allowed: the browser judges that from the lists.
    """
    if isinstance(policy, ServerPolicy):
        policy = policy.proposed
    if isinstance(policy, ServerPolicyRules):
        policy = policy.for_url(url)
    out: list[tuple[str, str]] = []
    vary = [("Vary", "Origin")] if policy.vary_origin else []
    origin = request_headers.get("origin")
    if origin is None or not origin_allowed(policy, origin):
        return Headers(tuple(vary))
    # '*' is sent as written, even with credentials (the browser then refuses it): a policy
    # that allows any origin is never turned into reflecting the request's origin.
    star = policy.allow_origins == ("*",)
    out.append(("Access-Control-Allow-Origin", "*" if star else origin))
    if policy.allow_credentials:
        out.append(("Access-Control-Allow-Credentials", "true"))
    if preflight:
        if policy.allow_methods:
            out.append(("Access-Control-Allow-Methods", ", ".join(policy.allow_methods)))
        if policy.allow_headers:
            out.append(("Access-Control-Allow-Headers", ", ".join(policy.allow_headers)))
        if policy.max_age is not None:
            out.append(("Access-Control-Max-Age", str(policy.max_age)))
        asks_pna = (request_headers.get("access-control-request-private-network") or "")
        if policy.allow_private_network and asks_pna.strip().lower() == "true":
            out.append(("Access-Control-Allow-Private-Network", "true"))
    elif policy.expose_headers:
        out.append(("Access-Control-Expose-Headers", ", ".join(policy.expose_headers)))
    out.extend(vary)
    return Headers(tuple(out))


def origin_allowed(policy: Policy, origin: str) -> bool:
    """Whether the policy allows requests from ``origin`` (an Origin header value)."""
    origins = policy.allow_origins
    if not origins or origin == "null":
        return False
    if origins == ("*",):
        return True
    return origin in origins


def is_preflight(method: str, request_headers: Headers) -> bool:
    """#cors-preflight-request: ``OPTIONS`` with ``Access-Control-Request-Method``."""
    return method == "OPTIONS" and "access-control-request-method" in request_headers


# --- JSON ---------------------------------------------------------------------------------------


def policy_to_json(doc: PolicyDocument) -> dict[str, Any]:
    """The policy document as JSON-ready data (schema 1)."""
    return {"schema": SCHEMA, "servers": [_server_to_json(s) for s in doc.servers]}


def _server_to_json(s: ServerPolicy) -> dict[str, Any]:
    return {
        "server": s.server,
        "observed": rules_to_json(s.observed),
        "proposed": rules_to_json(s.proposed),
        "differences": [_difference_to_json(d) for d in s.differences],
        "notes": list(s.notes),
    }


def _difference_to_json(d: Difference) -> dict[str, Any]:
    out: dict[str, Any] = {"field": d.field, "observed": _value_to_json(d.observed),
                           "proposed": _value_to_json(d.proposed), "why": d.why}
    if d.path is not None:
        out["path"] = d.path
    return out


def _value_to_json(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def _policy_fields(p: Policy) -> dict[str, Any]:
    return {name: _value_to_json(getattr(p, name)) for name in _FIELDS}


def rules_to_json(rules: ServerPolicyRules) -> dict[str, Any]:
    """One POLICY object: the default's fields and ``paths`` with only what each overrides."""
    out = _policy_fields(rules.default)
    default = out.copy()
    paths = []
    for rule in rules.paths:
        fields_ = _policy_fields(rule.policy)
        entry: dict[str, Any] = {"path": rule.path}
        entry.update({k: v for k, v in fields_.items() if v != default[k]})
        paths.append(entry)
    out["paths"] = paths
    return out


def policy_from_json(obj: Any) -> PolicyDocument:
    """Read a policy document (as parsed JSON). Raises :class:`PolicyError` naming the place.

    Proposed policies are held to the safety rules: no ``null`` origin, no origin with a
    path, ``*`` only alone and only without credentials."""
    if not isinstance(obj, Mapping):
        raise PolicyError("policy: expected a JSON object")
    schema = obj.get("schema")
    if schema != SCHEMA:
        raise PolicyError(f"policy: unsupported schema {schema!r} (expected {SCHEMA})")
    servers = obj.get("servers")
    if not isinstance(servers, list):
        raise PolicyError("policy: 'servers' must be a list")
    out = []
    for i, s in enumerate(servers):
        where = f"servers[{i}]"
        if not isinstance(s, Mapping):
            raise PolicyError(f"policy: {where} must be an object")
        server = s.get("server")
        if not isinstance(server, str) or not server:
            raise PolicyError(f"policy: {where}.server must be an origin string")
        observed = rules_from_json(s.get("observed") or {}, f"{where}.observed")
        proposed = rules_from_json(s.get("proposed") or {}, f"{where}.proposed")
        for rule_where, p in [(f"{where}.proposed", proposed.default), *(
                (f"{where}.proposed.paths[{j}]", r.policy)
                for j, r in enumerate(proposed.paths))]:
            check_safe(p, rule_where)
        diffs = []
        for j, d in enumerate(s.get("differences") or ()):
            if not isinstance(d, Mapping) or not isinstance(d.get("field"), str):
                raise PolicyError(f"policy: {where}.differences[{j}] must have a 'field'")
            diffs.append(Difference(d["field"], _tuple_or(d.get("observed")),
                                    _tuple_or(d.get("proposed")), str(d.get("why") or ""),
                                    d.get("path") if isinstance(d.get("path"), str) else None))
        notes = tuple(str(n) for n in s.get("notes") or ())
        out.append(ServerPolicy(_origin_of(server) if "://" in server else server,
                                observed, proposed, tuple(diffs), notes))
    return PolicyDocument(tuple(out))


def _tuple_or(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


def rules_from_json(obj: Any, where: str = "policy") -> ServerPolicyRules:
    """One POLICY object (with its ``paths``)."""
    if not isinstance(obj, Mapping):
        raise PolicyError(f"policy: {where} must be an object")
    default = _policy_from_fields(obj, Policy(), where)
    rules = []
    paths = obj.get("paths") or []
    if not isinstance(paths, list):
        raise PolicyError(f"policy: {where}.paths must be a list")
    for j, entry in enumerate(paths):
        pw = f"{where}.paths[{j}]"
        if not isinstance(entry, Mapping) or not isinstance(entry.get("path"), str) \
                or not is_plain_path(entry["path"]):
            raise PolicyError(f"policy: {pw} needs a 'path': a template starting with '/', "
                              "of plain characters and {name} segments")
        rules.append(PathRule(entry["path"], _policy_from_fields(entry, default, pw)))
    return ServerPolicyRules(default, tuple(rules))


def _policy_from_fields(obj: Mapping[str, Any], base: Policy, where: str) -> Policy:
    changes: dict[str, Any] = {}
    for f in fields(Policy):
        name = f.name
        if name not in obj:
            continue
        value = obj[name]
        fw = f"{where}.{name}"
        if value is None:
            changes[name] = None
        elif name in ("allow_credentials", "vary_origin", "allow_private_network"):
            if not isinstance(value, bool):
                raise PolicyError(f"policy: {fw} must be true, false or null")
            changes[name] = value
        elif name == "max_age":
            if not isinstance(value, int) or isinstance(value, bool):
                raise PolicyError(f"policy: {fw} must be a whole number of seconds or null")
            changes[name] = value
        else:
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise PolicyError(f"policy: {fw} must be a list of strings or null")
            items = tuple(value)
            if name in ("allow_headers", "expose_headers"):
                items = tuple(v.lower() for v in items)
            changes[name] = items
    return replace(base, **changes)


_ORIGIN = re.compile(r"https?://(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*"
                     r"[a-z0-9])?)*|\[[0-9a-f:.]+\])(?::[0-9]{1,5})?")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]*")


def is_plain_origin(value: str) -> bool:
    """A serialised http(s) origin of plain characters: safe to write into any configuration
    language (no quote, no space, no ``$``, no path)."""
    return _ORIGIN.fullmatch(value) is not None and _origin_of(value) == value


def is_plain_name(value: str) -> bool:
    """A method or header name of plain characters (letters, digits, ``_ . + -``)."""
    return _NAME.fullmatch(value) is not None


_PATH = re.compile(r"/(?:[A-Za-z0-9._~%!&()*+,;=:@-]|/|\{[A-Za-z0-9_]+\})*")


def is_plain_path(template: str) -> bool:
    """A path template of plain characters (no quotes, spaces, ``$`` or backslashes): safe
    to write into any configuration language."""
    return _PATH.fullmatch(template) is not None


def safety_problems(p: Policy) -> list[str]:
    """Why a policy is unsafe to deploy, one phrase each (empty: none found)."""
    problems = []
    origins = p.allow_origins or ()
    if "null" in origins:
        problems.append("allows origin 'null' (sent by sandboxed iframes and after "
                        "cross-origin redirects, so any site can obtain it)")
    if "*" in origins and len(origins) > 1:
        problems.append("mixes '*' with origins (a response carries one value)")
    if "*" in origins and p.allow_credentials:
        problems.append("'*' with credentials (browsers reject it; reflecting any origin "
                        "instead would let every site read credentialed answers)")
    for o in origins:
        if o in ("*", "null"):
            continue
        if not is_plain_origin(o):
            problems.append(f"{o!r} is not a serialised origin (http(s)://host[:port], "
                            "lower case, no path, no trailing slash)")
    for name in (*(p.allow_methods or ()), *(p.allow_headers or ()), *(p.expose_headers or ())):
        if name != "*" and not is_plain_name(name):
            problems.append(f"{name!r} is not a plain method or header name")
    if p.allow_credentials and "*" in (p.allow_headers or ()):
        problems.append("'*' in allow_headers is literal with credentials")
    if p.allow_credentials and "*" in (p.allow_methods or ()):
        problems.append("'*' in allow_methods is literal with credentials")
    return problems


def check_safe(p: Policy, where: str) -> None:
    """Raise :class:`PolicyError` when a proposed policy breaks a safety rule."""
    problems = safety_problems(p)
    if problems:
        raise PolicyError(f"policy: {where} {problems[0]}")
