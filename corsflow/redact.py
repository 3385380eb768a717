"""Secrets out of reports: HAR files and reports travel in tickets and CI logs.

The CORS analysis needs to know that a request carried a Cookie or an Authorization header
(the credentials mode, the preflight's reasons), never what they said; and it needs URLs to
pair and cache requests, never the tokens in their queries. So the engine runs on the
capture as it is, and every output is made from a redacted copy of the report:

- the values of ``Cookie``, ``Set-Cookie``, ``Authorization``, ``Proxy-Authorization`` (and
  the common API-key headers) become ``REDACTED``; the header stays, so its presence shows;
- user-info in URLs (``https://user:password@host``) becomes ``REDACTED@``;
- token-like query and fragment parameters (``access_token``, ``key``, ``sig``,
  ``password``, ``X-Amz-Signature``...) keep their name and lose their value;
- JSON Web Tokens are replaced wherever they appear.

Text is rewritten wherever it holds a URL (messages, hints, decision traces, failure
strings), so a token cannot leak through a finding's message either. ``--no-redact`` (and
``redact=False``) keeps the values.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypeVar
from urllib.parse import unquote

from .engine.events import ExchangeVerdict, Finding, TraceStep
from .errors import Skipped
from .model import Exchange, Headers, Response

if TYPE_CHECKING:
    from .analysis import Report

T = TypeVar("T")

REDACTED = "REDACTED"

SECRET_HEADERS = frozenset({
    "cookie", "set-cookie", "authorization", "proxy-authorization",
    "x-api-key", "api-key", "x-auth-token", "x-csrf-token", "x-xsrf-token",
    "x-amz-security-token",
})
"""Header fields whose values are credentials: kept by name, their values redacted."""

SECRET_PARAMS = frozenset({
    "access_token", "id_token", "refresh_token", "token", "auth", "authorization",
    "key", "api_key", "apikey", "api-key", "sig", "signature", "password", "passwd", "pwd",
    "pass", "secret", "client_secret", "code", "session", "sessionid", "session_id", "sid",
    "jsessionid", "phpsessid", "jwt", "assertion", "ticket", "otp", "credential",
    "x-amz-signature", "x-amz-credential", "x-amz-security-token", "x-goog-signature",
    "x-goog-credential", "private_token", "auth_token", "oauth_token",
})
"""Query and fragment parameter names (compared lower-cased) whose values are secrets."""

_SECRET_PART = re.compile(
    r"token|secret|passw|signature|apikey|api_key|credential|sessid|session_?(?:id|key)")
"""Name fragments that mark a parameter as secret whatever else it says
(``csrf_token``, ``X-Goog-Signature``, ``user_password``)."""


def secret_param(name: str) -> bool:
    """Whether a query or fragment parameter of this name carries a secret."""
    n = unquote(name).strip().lower()
    return n in SECRET_PARAMS or _SECRET_PART.search(n) is not None


# ``scheme://user:password@`` (user-info never holds / ? # or @ unencoded).
_USERINFO = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.-]*://)(?P<info>[^/?#@\s'\"<>`]+)@")
# ``?name=value``, ``&name=value``, ``#name=value`` and ``;name=value`` (path parameters
# such as ``;jsessionid=``); the value ends where the URL or the quoted value does, and
# closing punctuation at that end is the prose around the URL ("(see ...?token=x).").
_PARAM = re.compile(r"(?P<lead>[?&#;])(?P<name>[^=&#?;\s'\"<>`]+)="
                    r"(?P<value>[^&#;?\s'\"<>`]*?)(?=[)\]}.,:!]*(?:[&#;?\s'\"<>`]|$))")
# A JSON Web Token: three base64url parts, the first two starting with '{"' encoded.
_JWT = re.compile(r"\beyJ[A-Za-z0-9_-]{6,}\.eyJ[A-Za-z0-9_-]{6,}\.[A-Za-z0-9_-]*")
# One search, in C, that tells whether a string may hold anything to redact (most URLs with
# a query hold nothing secret): a secret-looking parameter name (or a percent-encoded one,
# checked the slow way), user-info, or the start of a JWT.
_NAMES = "|".join(re.escape(n) for n in sorted(SECRET_PARAMS, key=len, reverse=True))
_MAYBE = re.compile(
    rf"(?i)[?&#;](?:(?:{_NAMES})|[^=&#;?\s]*(?:{_SECRET_PART.pattern}|%)[^=&#;?\s]*)="
    r"|://[^/?#@\s'\"<>`]+@|eyJ[A-Za-z0-9_-]{6,}\.")


@dataclass(slots=True)
class Redactor:
    """Rewrites text and report records; counts what it redacted."""

    count: int = 0
    _traces: dict[int, tuple[TraceStep, ...]] = field(default_factory=dict)
    _keep: list[tuple[TraceStep, ...]] = field(default_factory=list)
    """The traces memoised by id: kept alive, so an id is never reused meanwhile."""

    def text(self, value: str) -> str:
        """``value`` with URL credentials, secret parameters and JWTs replaced."""
        # Each rewrite needs an '@', an 'eyJ', or an '=' after one of '?&#;': tested first
        # by plain substring search, which rules out nine strings in ten of a report.
        if not value or ("@" not in value and "eyJ" not in value and (
                "=" not in value or ("?" not in value and "&" not in value
                                     and "#" not in value and ";" not in value))):
            return value
        if _MAYBE.search(value) is None:
            return value
        out = _USERINFO.sub(self._userinfo, value)
        out = _PARAM.sub(self._param, out)
        out = _JWT.sub(self._jwt, out)
        # The same object when nothing changed: callers share unchanged records.
        return value if out == value else out

    def opt(self, value: str | None) -> str | None:
        return None if value is None else self.text(value)

    def _userinfo(self, m: re.Match[str]) -> str:
        self.count += 1
        return f"{m['scheme']}{REDACTED}@"

    def _param(self, m: re.Match[str]) -> str:
        if not m["value"] or m["value"] == REDACTED or not secret_param(m["name"]):
            return m[0]
        self.count += 1
        return f"{m['lead']}{m['name']}={REDACTED}"

    def _jwt(self, m: re.Match[str]) -> str:
        self.count += 1
        return REDACTED

    def headers(self, headers: Headers) -> Headers:
        changed = False
        items = []
        for name, value in headers.items:
            if name.lower() in SECRET_HEADERS:
                new = REDACTED if value else value
                if new != value:
                    self.count += 1
            else:
                new = self.text(value)
            changed = changed or new is not value
            items.append((name, new))
        return Headers(tuple(items)) if changed else headers

    def exchange(self, ex: Exchange) -> Exchange:
        url = self.text(ex.url)
        failure = self.opt(ex.failure)
        request = self.headers(ex.request_headers)
        response = ex.response
        if response is not None:
            headers = self.headers(response.headers)
            reason = self.opt(response.reason)
            if headers is not response.headers or reason is not response.reason:
                response = Response(response.status, headers, reason, response.http_version,
                                    response.finished)
        hints = ex.hints
        initiator = self.opt(hints.initiator_url)
        if initiator is not hints.initiator_url:
            hints = dataclasses.replace(hints, initiator_url=initiator)
        if (url is ex.url and failure is ex.failure and request is ex.request_headers
                and response is ex.response and hints is ex.hints):
            return ex
        return Exchange(ex.id, ex.method, url, request, ex.started, ex.source, response,
                        failure, ex.timings, ex.http_version, hints)

    def trace(self, trace: tuple[TraceStep, ...]) -> tuple[TraceStep, ...]:
        # Verdicts share their traces: each distinct one is rewritten once.
        done = self._traces.get(id(trace))
        if done is not None:
            return done
        steps = tuple(s if (d := self.text(s.detail)) is s.detail
                      else TraceStep(s.step, s.outcome, d, s.spec) for s in trace)
        out = trace if all(a is b for a, b in zip(steps, trace, strict=True)) else steps
        self._traces[id(trace)] = out
        self._keep.append(trace)
        return out

    def verdict(self, v: ExchangeVerdict) -> ExchangeVerdict:
        ex = self.exchange(v.exchange)
        failed = self.opt(v.failed_parameter)
        unknown = self.opt(v.unknown_reason)
        trace = self.trace(v.trace)
        if (ex is v.exchange and failed is v.failed_parameter and unknown is v.unknown_reason
                and trace is v.trace):
            return v
        return dataclasses.replace(v, exchange=ex, failed_parameter=failed,
                                   unknown_reason=unknown, trace=trace)

    def record(self, obj: T) -> T:
        """A frozen dataclass record with every string in it redacted: in its fields, in
        their tuples and in the records it holds, found by walking its fields (so a field
        added later is covered; records hold tuples, not lists). The same object when
        nothing changed."""
        changed = {}
        for f in dataclasses.fields(obj):  # type: ignore[arg-type]
            value = getattr(obj, f.name)
            new = self._value(value)
            if new is not value:
                changed[f.name] = new
        return dataclasses.replace(obj, **changed) if changed else obj  # type: ignore[type-var]

    def _value(self, value: object) -> object:
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, tuple):
            items = tuple(self._value(v) for v in value)
            return value if all(a is b for a, b in zip(items, value, strict=True)) else items
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            return self.record(value)
        return value

    def finding(self, f: Finding) -> Finding:
        message, hint, url = self.text(f.message), self.opt(f.hint), self.opt(f.url)
        if message is f.message and hint is f.hint and url is f.url:
            return f
        return dataclasses.replace(f, message=message, hint=hint, url=url)

    def skipped(self, s: Skipped) -> Skipped:
        reason, where = self.text(s.reason), self.text(s.where)
        if reason is s.reason and where is s.where:
            return s
        return dataclasses.replace(s, reason=reason, where=where)


REDACTION_NOTE = ("secrets redacted: {n} occurrence(s) (Cookie, Set-Cookie, Authorization and "
                  "API-key header values, URL passwords, token query and fragment parameters) "
                  "were replaced with REDACTED; --no-redact keeps them")


def redact_report(report: Report) -> Report:
    """The report with every secret value replaced (see the module's docstring). Records
    without secrets are shared with ``report``, not copied."""
    r = Redactor()
    exchanges = tuple(r.verdict(v) for v in report.exchanges)
    findings = tuple(r.finding(f) for f in report.findings)
    skipped = tuple(r.skipped(s) for s in report.skipped)
    by_reason = tuple((r.text(reason), n) for reason, n in report.skipped_by_reason)
    notes = tuple(r.text(n) for n in report.notes)
    if r.count:
        notes = (*notes, REDACTION_NOTE.format(n=r.count))
    return dataclasses.replace(
        report, exchanges=exchanges, findings=findings, skipped=skipped,
        skipped_by_reason=by_reason, notes=notes, redacted=r.count, _index={})


def redact_finding(f: Finding) -> Finding:
    """One finding with its secrets replaced (the live addon logs findings one by one)."""
    return Redactor().finding(f)


def redact_text(value: str) -> str:
    return Redactor().text(value)
