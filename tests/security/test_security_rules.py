"""The security rules on hand-made exchanges: what proves a finding and what does not."""

from __future__ import annotations

import pytest

from corsflow.analysis import analyze_exchanges
from corsflow.engine.events import Finding
from corsflow.findings.security import is_local_host, is_security, lookalike, site_of
from corsflow.model import Exchange, Headers, Response, SourceRef


def _ex(n: int, url: str, origin: str, resp: list[tuple[str, str]], method: str = "GET",
        req: list[tuple[str, str]] | None = None) -> Exchange:
    return Exchange(f"e{n}", method, url, Headers.of([("Origin", origin), *(req or [])]),
                    1_700_000_000.0 + n, SourceRef("t.har", "har", n, f"entry {n}"),
                    Response(200 if method != "OPTIONS" else 204, Headers.of(resp)))


def _codes(exchanges: list[Exchange]) -> dict[str, Finding]:
    return {f.code: f for f in analyze_exchanges(exchanges).findings if is_security(f)}


def _echo(n: int, origin: str, url: str = "https://api.example.com/me",
          credentials: bool = True) -> Exchange:
    resp = [("Access-Control-Allow-Origin", origin), ("Vary", "Origin")]
    if credentials:
        resp.append(("Access-Control-Allow-Credentials", "true"))
    return _ex(n, url, origin, resp)


def test_reflection_needs_three_other_sites() -> None:
    own = [_echo(0, "https://app.example.com"), _echo(1, "https://admin.example.com")]
    two = [_echo(2, "https://a.partner.net"), _echo(3, "https://b.other.org")]
    assert "OriginReflected" not in _codes(own + two)  # an allow-list of two partners
    found = _codes([*own, *two, _echo(4, "https://evil.attacker.io")])
    f = found["OriginReflected"]
    assert f.severity == "error" and f.url == "https://api.example.com/me"
    without = _codes([_echo(i, o, credentials=False) for i, o in enumerate(
        ("https://x.one", "https://y.two", "https://z.three"))])
    assert without["OriginReflected"].severity == "warning"


def test_null_and_insecure_and_lookalike() -> None:
    found = _codes([
        _ex(0, "https://api.example.com/a", "null", [("Access-Control-Allow-Origin", "null")]),
        _echo(1, "http://www.example.com"),
        _echo(2, "https://example.com.evil.net"),
        _echo(3, "http://localhost:3000"),  # a developer's own machine: not a finding
    ])
    assert found["NullOriginAllowed"].severity == "warning"  # no credentials
    assert "http://www.example.com" in found["InsecureOriginAllowed"].message
    assert "localhost" not in found["InsecureOriginAllowed"].message
    assert "example.com.evil.net" in found["LookalikeOriginAllowed"].message


def test_vary_needs_two_answers() -> None:
    one = [_ex(i, "https://api.example.com/x", "https://app.example.com",
               [("Access-Control-Allow-Origin", "https://app.example.com")]) for i in range(3)]
    assert "VaryOriginMissing" not in _codes(one)  # a fixed value needs no Vary
    two = [*one, _ex(9, "https://api.example.com/x", "https://admin.example.com",
                     [("Access-Control-Allow-Origin", "https://admin.example.com")])]
    assert _codes(two)["VaryOriginMissing"].count == 4
    varied = [_ex(i, "https://api.example.com/x", o, [("Access-Control-Allow-Origin", o),
                                                       ("Vary", "Accept-Encoding, Origin")])
              for i, o in enumerate(("https://app.example.com", "https://admin.example.com"))]
    assert "VaryOriginMissing" not in _codes(varied)


def test_private_network_access_and_expose() -> None:
    pf = _ex(0, "http://192.168.1.1/api", "https://public.example", [
        ("Access-Control-Allow-Origin", "https://public.example"),
        ("Access-Control-Allow-Methods", "POST"),
        ("Access-Control-Allow-Private-Network", "true")], method="OPTIONS",
        req=[("Access-Control-Request-Method", "POST"),
             ("Access-Control-Request-Private-Network", "true")])
    exposed = _ex(1, "https://api.example.com/t", "https://app.example.com", [
        ("Access-Control-Allow-Origin", "https://app.example.com"),
        ("Access-Control-Allow-Credentials", "true"),
        ("Access-Control-Expose-Headers", "X-Api-Key, *, WWW-Authenticate")])
    found = _codes([pf, exposed])
    assert "https://public.example" in found["PrivateNetworkAccessAllowed"].message
    assert "x-api-key" in found["SensitiveHeaderExposed"].message
    assert "www-authenticate" not in found["SensitiveHeaderExposed"].message
    assert "Access-Control-Expose-Headers" in found["WildcardIgnoredWithCredentials"].message


def test_same_origin_and_plain_traffic_raise_nothing() -> None:
    same = _ex(0, "https://example.com/a", "https://example.com",
               [("Access-Control-Allow-Origin", "*"), ("Set-Cookie", "a=b")])
    none = _ex(1, "https://api.example.com/a", "https://app.example.com", [("Set-Cookie", "a")])
    assert not _codes([same, none])


@pytest.mark.parametrize("host, site", [
    ("a.b.example.com", "example.com"), ("shop.example.co.uk", "example.co.uk"),
    ("127.0.0.1", "127.0.0.1"), ("localhost", "localhost")])
def test_site_of(host: str, site: str) -> None:
    assert site_of(host) == site


def test_lookalike_and_local() -> None:
    assert lookalike("evil-example.com", "example.com") == "suffix"
    assert lookalike("example.com.evil.net", "example.com") == "prefix"
    assert lookalike("api.example.com", "example.com") is None
    assert lookalike("other.org", "example.com") is None
    assert lookalike("127.0.0.1.evil.net", "127.0.0.1") is None
    assert is_local_host("10.1.2.3") and is_local_host("printer.local")
    assert not is_local_host("8.8.8.8") and not is_local_host("example.com")
