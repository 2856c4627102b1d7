"""What the page tests share: a site (deployment, FakeClock, principals) and a browser-like
client that signs in and sends forms with their CSRF token."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from service import create_app
from storage.config import with_overrides
from tests.service.test_orders_api import Site

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(page: TestResponse) -> str:
    found = CSRF.search(page.get_data(as_text=True))
    assert found, "the page has no CSRF token"
    return found.group(1)


def token_of(site: Site, name: str) -> str:
    return site.headers[name]["Authorization"].split(" ", 1)[1]


@dataclass
class Browser:
    """A test client used as a person's browser: it keeps cookies, never sends a bearer."""

    client: FlaskClient

    def get(self, path: str, **kwargs: Any) -> TestResponse:
        return self.client.get(path, **kwargs)

    def form(
        self, page_path: str, action: str, data: dict[str, Any], **kwargs: Any
    ) -> TestResponse:
        """POST ``data`` to ``action`` with the CSRF token of the page at ``page_path``."""
        token = csrf_of(self.get(page_path))
        return self.client.post(action, data={"csrf_token": token, **data}, **kwargs)

    def sign_in(self, token: str) -> TestResponse:
        return self.form("/sign-in", "/sign-in", {"token": token})


def pages_app(site: Site, **settings: Any) -> Flask:
    """The app over the site's deployment, with ``settings`` in its configuration."""
    deployment = site.deployment
    if settings:
        deployment = replace(deployment, config=with_overrides(deployment.config, **settings))
    return create_app({"TESTING": True}, deployment=deployment)


def browser(app: Flask) -> Browser:
    return Browser(app.test_client())


def signed_in(app: Flask, site: Site, name: str) -> Browser:
    person = browser(app)
    response = person.sign_in(token_of(site, name))
    assert response.status_code == 303, response.get_data(as_text=True)
    return person
