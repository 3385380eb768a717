"""Does a real server's answer implement a policy? Requests to replay, and the comparison.

The requests come from a capture's analysis (each CORS preflight and request, with the
headers the browser sent or a stand-in value for them), plus probes the policy must refuse
(an origin it does not list, ``Origin: null``, a header and a method it does not allow).
An answer implements the policy when the browser reaches the same verdict on it as on
:func:`~corsflow.policy.model.answer`'s, and the CORS headers carry the same values; the
known ways a server kind departs from the exact answer are named as :data:`Kind` values.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

from ..analysis import Report
from ..engine.fetch import (
    cors_check,
    extract_header_list_values,
    preflight_check,
    serialize_origin,
)
from ..engine.profiles import get_profile
from ..model import Headers
from .model import ServerPolicyRules, answer

Kind = Literal["verdict", "allow-origin", "credentials", "methods-extra", "methods-missing",
               "headers-extra", "headers-missing", "max-age", "expose", "vary",
               "private-network"]


@dataclass(frozen=True, slots=True)
class Probe:
    """One request to send to a server: a preflight or an actual request."""

    method: str
    target: str
    """Path and query."""
    headers: tuple[tuple[str, str], ...]
    preflight: bool
    credentials: bool
    """Whether the browser would send it with credentials mode 'include'."""
    why: str
    """Where it comes from: an exchange id, or the probe's purpose."""

    @property
    def origin(self) -> str:
        return {n.lower(): v for n, v in self.headers}.get("origin", "")


@dataclass(frozen=True, slots=True)
class Mismatch:
    kind: Kind
    detail: str


# Stand-in values for request headers a capture names but whose value the report drops.
_STAND_IN = {"content-type": "application/json", "authorization": "Bearer t"}


def probes_from_report(report: Report, server: str) -> list[Probe]:
    """Every CORS preflight and request the capture sent to ``server``, once per distinct
    shape (method, path, origin, headers, credentials)."""
    seen: set[tuple[object, ...]] = set()
    out: list[Probe] = []
    for v in report.exchanges:
        ex = v.exchange
        if v.role not in ("preflight", "preflighted", "simple") or not v.origin:
            continue
        if serialize_origin(ex.url) != server:
            continue
        parts = urlsplit(ex.url)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        credentials = v.credentials == "include"
        headers: list[tuple[str, str]] = [("Origin", v.origin)]
        if v.role == "preflight":
            acrm = ex.request_headers.get("access-control-request-method") or ""
            headers.append(("Access-Control-Request-Method", acrm))
            acrh = ex.request_headers.get("access-control-request-headers")
            if acrh:
                headers.append(("Access-Control-Request-Headers", acrh))
            method = "OPTIONS"
        else:
            method = ex.method
            headers.extend((h, _STAND_IN.get(h, "1")) for h in v.unsafe_headers)
            if credentials:
                headers.append(("Cookie", "session=1"))
        key = (method, target, tuple(headers), credentials)
        if key in seen:
            continue
        seen.add(key)
        out.append(Probe(method, target, tuple(headers), v.role == "preflight", credentials,
                         ex.id))
    return out


def refusal_probes(target: str = "/") -> list[Probe]:
    """Requests no safe policy from corsflow allows."""
    evil = "https://not-allowed.invalid"
    return [
        Probe("GET", target, (("Origin", evil),), False, False, "unlisted origin"),
        Probe("OPTIONS", target, (("Origin", evil), ("Access-Control-Request-Method", "PUT")),
              True, False, "unlisted origin, preflight"),
        Probe("GET", target, (("Origin", "null"),), False, False, "Origin: null"),
        Probe("OPTIONS", target, (("Origin", "null"), ("Access-Control-Request-Method", "PUT")),
              True, False, "Origin: null, preflight"),
    ]


def policy_probes(rules: ServerPolicyRules, target: str = "/") -> list[Probe]:
    """From each allowed origin of the default policy: a preflight asking for a header and a
    method the policy does not allow, and a plain request."""
    out = refusal_probes(target)
    policy = rules.for_url(target)
    for origin in (policy.allow_origins or ())[:2]:
        if origin == "*":
            origin = "https://any.example"
        creds = bool(policy.allow_credentials)
        out += [
            Probe("GET", target, (("Origin", origin),), False, creds, "allowed origin"),
            Probe("OPTIONS", target, (("Origin", origin),
                                      ("Access-Control-Request-Method", "PUT"),
                                      ("Access-Control-Request-Headers", "x-never-allowed")),
                  True, creds, "a header the policy does not list"),
            Probe("OPTIONS", target, (("Origin", origin),
                                      ("Access-Control-Request-Method", "PURGE")),
                  True, creds, "a method the policy does not list"),
        ]
    return out


def _list(headers: Headers, name: str) -> list[str]:
    try:
        return list(extract_header_list_values(headers.get(name)) or ())
    except ValueError:
        return [headers.get(name) or ""]


def _verdict(probe: Probe, status: int, headers: Headers) -> str | None:
    """The browser's verdict on an answer: None when it passes, else the CorsError."""
    index = headers.by_name()
    origin = probe.origin
    if not probe.preflight:
        return cors_check(index, origin, probe.credentials).error
    request = Headers(probe.headers)
    method = request.get("access-control-request-method") or ""
    # the browser names only CORS-unsafe headers in Access-Control-Request-Headers
    unsafe = tuple(sorted({h.lower() for h in _list(request, "access-control-request-headers")}))
    outcome = preflight_check(status, index, origin, method, unsafe, probe.credentials,
                              get_profile("chromium"))
    return outcome.check.error


def compare(rules: ServerPolicyRules, probe: Probe, status: int,
            headers: Headers) -> list[Mismatch]:
    """How a real answer (status, headers) departs from what the policy says."""
    request = Headers(probe.headers)
    expected = answer(rules, probe.method, probe.target, request, probe.preflight)
    out: list[Mismatch] = []
    want = _verdict(probe, 204 if probe.preflight else 200, expected)
    got = _verdict(probe, status, headers)
    if (want is None) != (got is None):
        out.append(Mismatch("verdict", f"browser verdict {got or 'allowed'} (status {status}), "
                                       f"the policy's answer gives {want or 'allowed'}"))

    def values(h: Headers, name: str) -> tuple[str, ...]:
        return h.get_all(name)

    if values(expected, "access-control-allow-origin") != values(
            headers, "access-control-allow-origin"):
        out.append(Mismatch("allow-origin", f"{values(headers, 'access-control-allow-origin')}"
                                            f" != {values(expected, 'access-control-allow-origin')}"))
    if not values(expected, "access-control-allow-origin"):
        return out   # the browser stops there: nothing else of the answer matters
    if values(expected, "access-control-allow-credentials") != values(
            headers, "access-control-allow-credentials"):
        out.append(Mismatch("credentials", "Access-Control-Allow-Credentials differs"))
    if probe.preflight:
        lists: tuple[tuple[str, Kind, Kind, bool], ...] = (
            ("access-control-allow-methods", "methods-extra", "methods-missing", False),
            ("access-control-allow-headers", "headers-extra", "headers-missing", True))
        for name, extra, missing, lower in lists:
            exp = {x.lower() if lower else x for x in _list(expected, name)}
            act = {x.lower() if lower else x for x in _list(headers, name)}
            if act - exp:
                out.append(Mismatch(extra, f"{name}: also {sorted(act - exp)}"))
            if exp - act:
                out.append(Mismatch(missing, f"{name}: lacks {sorted(exp - act)}"))
        if values(expected, "access-control-max-age") != values(headers,
                                                              "access-control-max-age"):
            out.append(Mismatch("max-age", f"{values(headers, 'access-control-max-age')} != "
                                           f"{values(expected, 'access-control-max-age')}"))
        if values(expected, "access-control-allow-private-network") != values(
                headers, "access-control-allow-private-network"):
            out.append(Mismatch("private-network", "Access-Control-Allow-Private-Network"))
    else:
        exp = {x.lower() for x in _list(expected, "access-control-expose-headers")}
        act = {x.lower() for x in _list(headers, "access-control-expose-headers")}
        if exp != act:
            out.append(Mismatch("expose", f"{sorted(act)} != {sorted(exp)}"))
    if "origin" in {x.strip().lower() for x in ",".join(values(expected, "vary")).split(",")}:
        got_vary = {x.strip().lower() for x in ",".join(values(headers, "vary")).split(",")}
        if not got_vary & {"origin", "*"}:
            out.append(Mismatch("vary", "no Vary: Origin"))
    return out
