"""Secrets never reach an output unless asked: every format, check's stderr, explain, the addon.

The capture below holds what real HAR exports hold: a bearer token, cookies, a password in
the URL, an OAuth token in the query and one in the fragment, a JWT, a signed-URL signature.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from corsflow.cli import main
from corsflow.redact import REDACTED, Redactor, redact_text, secret_param

SECRETS = ("hunter2", "TOKENQUERY", "TOKENFRAG", "COOKIEVAL", "SETCOOKIEVAL", "BEARERVAL",
           "AMZSIGVAL", "eyJhbGciOiJIUzI1NiJ9", "PROXYVAL")
JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.c2lnbmF0dXJl"


def _entry(n: int, method: str, url: str, req: list[tuple[str, str]],
           status: int, resp: list[tuple[str, str]]) -> dict[str, object]:
    return {
        "startedDateTime": f"2024-01-01T00:00:0{n}.000Z", "time": 10,
        "request": {"method": method, "url": url, "httpVersion": "HTTP/1.1",
                    "headers": [{"name": k, "value": v} for k, v in req]},
        "response": {"status": status, "statusText": "OK", "httpVersion": "HTTP/1.1",
                     "headers": [{"name": k, "value": v} for k, v in resp]},
        "timings": {"send": 1, "wait": 5, "receive": 4},
    }


@pytest.fixture(scope="module")
def secret_har(tmp_path_factory: pytest.TempPathFactory) -> Path:
    app = "https://app.example"
    url = ("https://bob:hunter2@api.example/v1/items?access_token=TOKENQUERY&page=2"
           f"&X-Amz-Signature=AMZSIGVAL&state={JWT}#id_token=TOKENFRAG")
    entries = [
        _entry(0, "OPTIONS", url, [("Origin", app), ("Access-Control-Request-Method", "PUT"),
                                   ("Access-Control-Request-Headers", "authorization")],
               204, [("Access-Control-Allow-Origin", "https://other.example"),
                     ("Access-Control-Allow-Methods", "PUT")]),
        _entry(1, "GET", url, [("Origin", app), ("Cookie", "sid=COOKIEVAL"),
                               ("Authorization", "Bearer BEARERVAL"),
                               ("Proxy-Authorization", "Basic PROXYVAL")],
               200, [("Access-Control-Allow-Origin", "*"),
                     ("Set-Cookie", "sid=SETCOOKIEVAL; Secure")]),
    ]
    path = tmp_path_factory.mktemp("redact") / "secrets.har"
    path.write_text(json.dumps({"log": {"version": "1.2", "creator": {"name": "t"},
                                        "entries": entries}}))
    return path


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.mark.parametrize("fmt", ["text", "json", "csv", "markdown", "html"])
def test_no_secret_in_any_format(secret_har: Path, fmt: str,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _run(capsys, "analyze", str(secret_har), "--format", fmt)
    assert code == 0, err
    leaked = [s for s in SECRETS if s in out]
    assert not leaked, leaked
    assert REDACTED in out
    # The report says it was redacted.
    assert "secrets redacted" in out or '"redaction":{"applied":true' in out or fmt == "csv"


def test_no_secret_on_check_stderr_or_in_explain(secret_har: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _run(capsys, "check", str(secret_har), "--fail-on", "warning")
    assert code == 1 and "WildcardOriginNotAllowed" in err
    assert not [s for s in SECRETS if s in out + err]
    code, out, err = _run(capsys, "explain", str(secret_har), "--url", "/v1/items")
    assert code == 0 and "e1" in out
    assert not [s for s in SECRETS if s in out + err]
    assert "https://REDACTED@api.example/v1/items?access_token=REDACTED&page=2" in out


def test_json_keeps_presence_and_says_so(secret_har: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = _run(capsys, "analyze", str(secret_har), "--format", "json")
    report = json.loads(out)
    assert report["redaction"]["applied"] is True and report["redaction"]["values"] > 0
    get = {e["id"]: e for e in report["exchanges"]}["e1"]
    # The engine still saw the Cookie and the Authorization header.
    assert get["credentials"] == "include" and "authorization" in get["unsafe_headers"]
    assert get["cors_error"] == "WildcardOriginNotAllowed"
    assert any("secrets redacted" in n for n in report["summary"]["notes"])


def test_no_redact_keeps_the_values(secret_har: Path,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = _run(capsys, "analyze", str(secret_har), "--format", "json", "--no-redact")
    report = json.loads(out)
    assert report["redaction"] == {"applied": False, "values": 0}
    assert "hunter2" in out and "TOKENQUERY" in out and "TOKENFRAG" in out


@pytest.mark.parametrize("before, after", [
    ("https://u:p@h.example/x", "https://REDACTED@h.example/x"),
    ("https://token@h.example/", "https://REDACTED@h.example/"),
    ("/cb#access_token=abc&expires_in=3600", "/cb#access_token=REDACTED&expires_in=3600"),
    ("/a?key=k1&sig=s1&q=cats&page=2", "/a?key=REDACTED&sig=REDACTED&q=cats&page=2"),
    ("/a;jsessionid=ABC?x=1", "/a;jsessionid=REDACTED?x=1"),
    ("/a?csrf_token=z&user_password=y", "/a?csrf_token=REDACTED&user_password=REDACTED"),
    ("/b?session_age=1446&session_id=1b55&app_session_key=k",
     "/b?session_age=1446&session_id=REDACTED&app_session_key=REDACTED"),
    ("/a?access%5Ftoken=z", "/a?access%5Ftoken=REDACTED"),
    (f"'{JWT}' is not an origin", "'REDACTED' is not an origin"),
    # The prose around a URL stays; punctuation inside a value goes with it.
    ("blocked (https://h.example/?access_token=s3cret).",
     "blocked (https://h.example/?access_token=REDACTED)."),
    ("/a?token=ab).cd&x=1", "/a?token=REDACTED&x=1"),
    # What is not a secret stays as it was.
    ("https://h.example/items/42?page=2&sort=name", "https://h.example/items/42?page=2&sort=name"),
    ("mailto-like text a@b and key words", "mailto-like text a@b and key words"),
    ("Access-Control-Allow-Origin 'https://a.example' != 'https://b.example'",
     "Access-Control-Allow-Origin 'https://a.example' != 'https://b.example'"),
])
def test_redact_text(before: str, after: str) -> None:
    assert redact_text(before) == after


def test_secret_param_names() -> None:
    for name in ("access_token", "KEY", "Sig", "password", "X-Amz-Signature", "client_secret",
                 "refresh_token", "apiKey"):
        assert secret_param(name), name
    for name in ("page", "q", "sort", "id", "origin", "callback"):
        assert not secret_param(name), name


def test_unchanged_records_are_shared_not_copied() -> None:
    from corsflow.engine.events import ExchangeVerdict
    from corsflow.model import Exchange, Headers, SourceRef

    ex = Exchange("e0", "GET", "https://a.example/x?page=1", Headers.of([("Origin", "o")]), 0.0,
                  SourceRef("f", "har", 0, "entry 0"))
    v = ExchangeVerdict(ex, "simple", "o", "allowed")
    r = Redactor()
    assert r.verdict(v) is v and r.count == 0


def test_notebook_api_redacts_unless_asked(secret_har: Path) -> None:
    import corsflow

    shown = corsflow.load(secret_har)
    assert not [s for s in SECRETS if s in " ".join(shown.exchanges["url"].astype(str))]
    assert shown.report.redacted
    raw = corsflow.load(secret_har, redact=False)
    assert raw.report.redacted is None and "TOKENQUERY" in raw.report.exchanges[0].exchange.url


def test_batch_reports_are_redacted_too(secret_har: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    for fmt in ("json", "text"):
        code, out, err = _run(capsys, "analyze", "--batch", "--jobs", "1", str(secret_har),
                              "--format", fmt)
        assert code == 0, err
        assert not [s for s in SECRETS if s in out], fmt
    code, out, err = _run(capsys, "check", "--batch", "--jobs", "1", str(secret_har))
    assert not [s for s in SECRETS if s in out + err]
    # --no-redact reaches the workers: the values the findings quote are kept. (Findings name
    # endpoint templates, which carry no query values; the user-info password shows.)
    _, out, _ = _run(capsys, "analyze", "--batch", "--jobs", "1", str(secret_har), "--format",
                     "json", "--no-redact")
    assert "hunter2" in out


def _rewritten(value: str) -> str:
    """What the three rewrites make of ``value``, none skipped."""
    from corsflow import redact

    r = Redactor()
    out = redact._USERINFO.sub(r._userinfo, value)
    out = redact._PARAM.sub(r._param, out)
    return redact._JWT.sub(r._jwt, out)


@pytest.mark.parametrize("value", [
    "https://user:pw@api.test/x", "https://api.test/x?token=1", "https://api.test/x;jsessionid=2",
    "https://app.test/#access_token=3", f"see {JWT} here", f"Bearer {JWT}", "EYJ.EYJ.x",
    "key=1", "https://api.test/x?key=", "https://api.test/a?b=1&sig=2", "https://api.test/a?b=1",
    "mailto:a@b", "a=b;c", "?", "", "plain text", "https://api.test/items/42",
    "https://api.test/x?%74oken=4", "(see https://api.test/?token=x).",
])
def test_the_quick_test_skips_only_what_no_rewrite_changes(value: str) -> None:
    assert Redactor().text(value) == _rewritten(value)


def test_the_quick_test_agrees_on_every_string_of_the_samples(secret_har: Path) -> None:
    from corsflow.errors import CorsflowError, Diagnostics
    from corsflow.ingest import detect_format, reader_for

    samples = Path(__file__).resolve().parent.parent / "samples"
    texts: set[str] = set()
    for p in [*sorted(samples.iterdir()), secret_har]:
        try:
            exchanges = list(reader_for(detect_format(str(p)))(str(p), Diagnostics()))
        except CorsflowError:
            continue  # not a capture (the browser tests' truth files)
        for ex in exchanges:
            headers = [*ex.request_headers.items, *(ex.response.headers.items if ex.response
                                                    else ())]
            texts.update([ex.url, ex.failure or "", *(value for _, value in headers)])
    assert len(texts) > 150
    assert any(Redactor().text(s) != s for s in texts)  # the capture above holds some
    assert [Redactor().text(s) for s in sorted(texts)] == [_rewritten(s) for s in sorted(texts)]


def test_a_record_has_every_string_in_it_redacted() -> None:
    from dataclasses import dataclass

    @dataclass(frozen=True, slots=True)
    class Inner:
        value: str
        n: int = 0

    @dataclass(frozen=True, slots=True)
    class Outer:
        where: str
        many: tuple[str, ...]
        inner: tuple[Inner, ...]
        note: str | None = None
        count: int = 3

    r = Redactor()
    secret = Outer("https://bob:hunter2@api.example", ("/a?access_token=TOKENQUERY", "/b"),
                   (Inner(JWT), Inner("plain", 2)), note=None)
    out = r.record(secret)
    assert not [s for s in SECRETS if s in repr(out)]
    assert out.where == "https://REDACTED@api.example" and out.many[1] == "/b"
    assert out.inner[1] is secret.inner[1] and out.count == 3 and r.count == 3
    plain = Outer("https://api.example", ("/b",), (Inner("x"),))
    assert Redactor().record(plain) is plain  # nothing to redact: the same object


def test_changes_are_replayed_on_the_capture_as_it_was_then_redacted(
        secret_har: Path) -> None:
    """A redacted report's changes are its original's (two URLs that differ only in a token
    stay two URLs to the replay), with every string in them redacted in turn."""
    from corsflow.analysis import analyze_paths
    from corsflow.changes import changes_of, redacted_from
    from corsflow.redact import redact_report
    from corsflow.report.changes import changes_json

    original = analyze_paths([str(secret_har)])
    redacted = redact_report(original)
    redacted_from(redacted, original)
    shown = changes_of(redacted)
    assert shown and shown == tuple(Redactor().record(c) for c in changes_of(original))
    assert any(c.server == "https://bob:hunter2@api.example" for c in changes_of(original))
    assert {c.server for c in shown} == {"https://REDACTED@api.example"}
    assert not [s for s in SECRETS if s in json.dumps(changes_json(redacted))]
