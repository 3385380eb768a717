"""What-if against the real browser: replay a recorded session with changed server answers,
then run the same page in Chromium against a server that really answers that way, and
require the preflights and blocked requests Chromium produced to be the ones predicted.

One server pair serves both runs (same origins, so the policy's origins still apply). The
"before" run goes through mitmdump, whose flows are the capture corsflow analyses; each
"after" run is a fresh browser context (an empty preflight cache) talking to the servers
directly, with the routes rewritten: by the changes list's own rules, and by the proposed
policy of ``corsflow policy`` answered with ``corsflow.policy.model.answer``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from corsflow.analysis import Report, analyze_paths
from corsflow.changes import compute_changes
from corsflow.model import Headers, Response
from corsflow.whatif import ChangeSet, Replay, what_if
from tests.conftest import missing

from .captures import Mitmdump, mitmdump_path
from .conftest import _need_browser
from .harness import CHROMIUM, CHROMIUM_ARGS, Session, StepTruth, _drive
from .scenarios import Scenario, Step, actual, preflight, route_table
from .server import Reply, Route, TwoOrigins

pytestmark = [pytest.mark.browser, pytest.mark.slow]

TRACE = (("X-Trace-Id", "t1"), ("X-A", "1"))
XA = (("X-A", "1"),)


def _scenarios() -> list[Scenario]:
    """Small cases, each broken in a way one server change fixes (or leaves alone)."""
    only_xa = preflight(headers="X-A", methods="PUT")
    return [
        # A header the server forgot: every preflight fails and none is cached.
        Scenario("wi-trace", {"": Route(only_xa, actual())},
                 tuple(Step("PUT", TRACE, "x", preflight=True) for _ in range(3)),
                 same_url=True),
        # The same header on per-id URLs: each URL its own cache entry.
        Scenario("wi-items", {f"/{i}": Route(only_xa, actual()) for i in (1, 2)},
                 (Step("PUT", TRACE, "x", sub="/1", preflight=True),
                  Step("PUT", TRACE, "x", sub="/2", preflight=True),
                  Step("PUT", TRACE, "x", sub="/1", preflight=True))),
        # No Allow-Origin on a simple GET.
        Scenario("wi-simple", {"": Route(actual=actual(acao=None))}, (Step(), Step())),
        # A preflight answered 403 without CORS headers (authentication before CORS).
        Scenario("wi-403", {"": Route(Reply(403, (), b"denied"), actual())},
                 (Step("PUT", XA, "x", preflight=True), Step("PUT", XA, "x", preflight=True)),
                 same_url=True),
        # '*' on a credentialed request.
        Scenario("wi-cred", {"": Route(preflight(acao="*", methods="PUT", headers="X-A"),
                                        actual(acao="*"))},
                 (Step("PUT", XA, "x", credentials="include", preflight=True),),),
        # No Max-Age: the result lives 5 s, so the request 6 s later preflights again.
        Scenario("wi-maxage", {"": Route(preflight(max_age=None), actual())},
                 (Step("PUT", XA, "x", preflight=True, at=0.0),
                  Step("PUT", XA, "x", preflight=True, at=6.0)),
                 same_url=True, block="timed"),
        # Fine as it is: a change elsewhere must not touch it.
        Scenario("wi-fine", {"": Route(preflight(), actual())},
                 (Step("PUT", XA, "x", preflight=True), Step("PUT", XA, "x", preflight=True)),
                 same_url=True),
    ]


def _reply_as_response(reply: Reply) -> Response:
    return Response(reply.status, Headers(reply.headers))


def _rewrite_routes(routes: dict[str, Route], srv: TwoOrigins,
                    changes: ChangeSet) -> dict[str, Route]:
    """The routes of a server that applies ``changes``: each reply as the change set says
    a server with that change answers (placeholders are filled per request, as before)."""
    out = {}
    for path, route in routes.items():
        url = srv.api_origin + path
        replies = []
        for reply, is_preflight in ((route.preflight, True), (route.actual, False)):
            response = _reply_as_response(reply)
            method = "OPTIONS" if is_preflight else "GET"
            request = Headers((("Origin", srv.page_origin),
                               ("Access-Control-Request-Method", "PUT")) if is_preflight
                              else (("Origin", srv.page_origin),))
            changed = changes.respond(response, method, url, srv.page_origin, request,
                                      is_preflight)
            if changed is None:
                replies.append(reply)
            else:
                # A 204 has no body (one would be read as the next response on the connection).
                body = b"" if changed.status in (204, 304) else reply.body
                replies.append(Reply(changed.status, changed.headers.items, body))
        out[path] = Route(replies[0], replies[1])
    return out


def _run(srv: TwoOrigins, scenarios: list[Scenario], proxy: int | None) -> Session:
    from playwright.sync_api import sync_playwright

    args = list(CHROMIUM_ARGS)
    if proxy is not None:
        args += [f"--proxy-server=http://127.0.0.1:{proxy}", "--proxy-bypass-list=<-loopback>"]
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=args)
        try:
            context = browser.new_context()
            session = _drive(context, srv, scenarios, "proxy" if proxy else "direct",
                             browser.version)
            context.close()
        finally:
            browser.close()
    return session


@dataclasses.dataclass
class Recorded:
    srv: TwoOrigins
    scenarios: list[Scenario]
    before: Session
    report: Report
    after: Callable[[ChangeSet], Session]


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Any:
    _need_browser()
    if not mitmdump_path().exists():
        missing("mitmdump is not installed beside this Python (pip install mitmproxy)")
    d: Path = tmp_path_factory.mktemp("whatif")
    scenarios = _scenarios()
    table = route_table(scenarios)
    with TwoOrigins(table) as srv:
        flows = d / "before.flows"
        with Mitmdump(flows, None, d / "mitm-conf") as mitm:
            before = _run(srv, scenarios, mitm.port)
        report = analyze_paths([str(flows)])

        def after(changes: ChangeSet) -> Session:
            srv.routes.clear()
            srv.routes.update(_rewrite_routes(table, srv, changes))
            srv.log.entries.clear()
            return _run(srv, scenarios, None)

        yield Recorded(srv, scenarios, before, report, after)


def _truth_by_request(session: Session) -> dict[tuple[str, str, int], StepTruth]:
    """Each fetch by (method, URL, occurrence)."""
    seen: dict[tuple[str, str], int] = {}
    out = {}
    for s in session.steps:
        n = seen.get((s.method, s.url), 0)
        seen[(s.method, s.url)] = n + 1
        out[(s.method, s.url, n)] = s
    return out


# A credentialed preflight that fails only because it is credentialed, with no request after
# it on the wire: a capture that ended there reads the same, so corsflow says `unknown` (with
# the reason) and proposes no change for it (see compare.py's CREDENTIALS_INVISIBLE).
CREDENTIALS_INVISIBLE = frozenset({"wi-cred"})


def _disagreements(replay: Replay, truth: Session) -> list[str]:
    steps = _truth_by_request(truth)
    seen: dict[tuple[str, str], int] = {}
    problems = []
    matched = 0
    for r, after in zip(replay.requests, replay.after, strict=True):
        n = seen.get((r.method, r.url), 0)
        seen[(r.method, r.url)] = n + 1
        step = steps.get((r.method, r.url, n))
        if step is None:
            problems.append(f"{r.id} {r.method} {r.url}: no such fetch in the browser run")
            continue
        matched += 1
        blocked = step.outcome == "rejected"
        if step.scenario in CREDENTIALS_INVISIBLE and after.verdict == "unknown":
            pass  # the capture cannot show the credentials mode this verdict hangs on
        elif (after.verdict == "blocked") != blocked:
            problems.append(f"{step.scenario}#{step.step}: predicted {after.verdict}, Chromium "
                            f"{'blocked it' if blocked else 'allowed it'} ({step.cors_error or step.js_error}; "
                            f"wire: {[(truth.wire[i].method, truth.wire[i].status, truth.wire[i].headers) for i in step.wire]})")
        if after.preflight != step.sent_preflight:
            problems.append(f"{step.scenario}#{step.step}: predicted "
                            f"{'a' if after.preflight else 'no'} preflight, Chromium sent "
                            f"{step.cdp_preflights}")
    if matched != len(truth.steps):
        problems.append(f"the replay has {matched} of the browser's {len(truth.steps)} fetches")
    return problems


def test_the_capture_is_what_chromium_did(recorded: Recorded) -> None:
    """The replay's starting point: with no change it is the browser's own session."""
    result = what_if(recorded.report, [])
    assert _disagreements(result.combined, recorded.before) == []
    assert result.combined.before == result.combined.after


def test_changes_list_predicts_chromium(recorded: Recorded) -> None:
    changes = compute_changes(recorded.report.exchanges, recorded.report.engine)
    rules = tuple(r for c in changes for r in c.rules)
    assert rules, "the broken scenarios must produce changes"
    # Every broken scenario is named by a change; the fine one by none.
    endpoints = {c.server + e for c in changes for e in c.endpoints}
    api = recorded.srv.api_origin
    for name in ("wi-trace", "wi-simple", "wi-403", "wi-maxage"):
        assert f"{api}/s/{name}" in endpoints, (name, [(c.action, c.effect) for c in changes])
    assert f"{api}/s/wi-items/{{id}}" in endpoints
    assert not any("wi-fine" in e for e in endpoints)
    together = ChangeSet(rules, label="the changes list")
    result = what_if(recorded.report, [together]).combined
    truth = recorded.after(together)
    assert _disagreements(result, truth) == []
    # Everything provably blocked before is fixed, and Chromium agrees it was.
    assert all(s.outcome != "rejected" for s in truth.steps
               if s.scenario not in CREDENTIALS_INVISIBLE)
    total = result.totals()[""]
    assert total[1].blocked == 0 and total[0].blocked > 0
    assert total[1].preflights == sum(s.cdp_preflights for s in truth.steps)


def test_proposed_policy_predicts_chromium(recorded: Recorded, tmp_path: Path) -> None:
    import json

    from corsflow.policy.derive import derive
    from corsflow.policy.model import policy_to_json
    from corsflow.whatif.load import load_policy

    path = tmp_path / "proposed.json"
    path.write_text(json.dumps(policy_to_json(derive(recorded.report))))
    policy = load_policy(str(path))
    result = what_if(recorded.report, [policy]).combined
    truth = recorded.after(policy)
    assert _disagreements(result, truth) == []
    total = result.totals()[""]
    assert total[1].preflights == sum(s.cdp_preflights for s in truth.steps)
    assert total[1].blocked == sum(s.outcome == "rejected" for s in truth.steps
                                   if s.scenario not in CREDENTIALS_INVISIBLE)


def test_a_single_set_predicts_chromium(recorded: Recorded) -> None:
    """One hand-written --set: only the header, nothing else; the 403 and the rest stay."""
    from corsflow.whatif import parse_set

    change = ChangeSet((parse_set(f"{recorded.srv.api_origin}/s/wi-trace: "
                                  "Access-Control-Allow-Headers: +X-Trace-Id"),))
    result = what_if(recorded.report, [change]).combined
    truth = recorded.after(change)
    assert _disagreements(result, truth) == []
    trace = [s for s in truth.steps if s.scenario == "wi-trace"]
    assert [s.outcome for s in trace] == ["resolved"] * 3
    assert [s.cdp_preflights for s in trace] == [1, 0, 0]
    assert any(s.outcome == "rejected" for s in truth.steps if s.scenario == "wi-403")


