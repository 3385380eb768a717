from __future__ import annotations

import pytest

from corsflow.report.endpoints import endpoint, host_of, is_identifier, path_of, path_template


@pytest.mark.parametrize(
    ("url", "template"),
    [
        ("https://api.example/v1/items/42?page=2#top", "/v1/items/{id}"),
        ("https://api.example/v1/items/42/comments/7", "/v1/items/{id}/comments/{id}"),
        ("https://api.example/u/7f3c2a10-5b1e-4c2d-9a8f-0e1d2c3b4a59", "/u/{id}"),
        ("https://api.example/blob/3f786850e387550fdab836ed7e6dc881de23001b", "/blob/{id}"),
        ("https://api.example/t/aB3dEfGhIjKlMnOpQ9", "/t/{id}"),
        ("https://api.example/export/123.csv", "/export/{id}.csv"),
        ("https://api.example/api/v1/identify", "/api/v1/identify"),
        ("https://api.example/graphql", "/graphql"),
        ("https://api.example", "/"),
        ("https://api.example/", "/"),
    ],
)
def test_path_template(url: str, template: str) -> None:
    assert path_template(url) == template


def test_words_are_not_identifiers() -> None:
    assert not is_identifier("v2")
    assert not is_identifier("authentication")
    assert not is_identifier("")
    assert is_identifier("2024-01-31")


def test_endpoint_keeps_scheme_and_port_and_lowercases_host() -> None:
    assert endpoint("HTTPS://API.Example:8443/v1/items/9?x=1") == "https://api.example:8443/v1/items/{id}"
    assert host_of("https://user:pw@Api.Example:8443/x") == "api.example:8443"
    assert path_of("https://a.example/x/y?q=1") == "/x/y"


def test_malformed_url_still_gets_a_template_without_raising() -> None:
    # An unclosed IPv6 bracket makes urlsplit raise; the raw text before the query is used.
    assert path_template("http://[::1/items/5?x") == "http://[::1/items/{id}"
    assert host_of("http://[::1/items/5") == ""
