"""The router's redirects are relative: never built from the client's Host header."""

from __future__ import annotations

from flask.testing import FlaskClient

from service.redirects import relative_location


def test_a_double_slash_redirect_does_not_reflect_the_host_header(client: FlaskClient) -> None:
    response = client.get(
        "/v1/log//checkpoint?x=1", headers={"Host": "evil.example"}, follow_redirects=False
    )

    assert response.status_code == 308
    assert response.headers["Location"] == "/v1/log/checkpoint?x=1"


def test_a_relative_location_never_names_another_host() -> None:
    assert relative_location("http://evil.example//evil.example/x") == "/evil.example/x"
    assert relative_location("https://h/a/b?c=d") == "/a/b?c=d"
