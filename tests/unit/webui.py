"""A visitor of the web UI through the Flask test client: signs in through the real form and
sends the session's CSRF token with each form, as a browser does."""

from __future__ import annotations

import re

from flask.testing import FlaskClient
from werkzeug.test import TestResponse

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


class Visitor:
    def __init__(self, client: FlaskClient):
        self.client = client

    def get(self, url: str, **options) -> TestResponse:
        return self.client.get(url, **options)

    def csrf(self) -> str:
        """The session's CSRF token, read from a form as a browser would see it."""
        match = CSRF.search(self.client.get("/login").get_data(as_text=True))
        assert match, "no CSRF field on the sign-in page"
        return match[1]

    def post(self, url: str, **data) -> TestResponse:
        return self.client.post(url, data={**data, "csrf_token": self.csrf()})

    def login(self, name: str, password: str | None = None) -> TestResponse:
        return self.post("/login", name=name, password=password or f"{name}-password")

    def copy(self) -> Visitor:
        """Another browser holding a copy of this one's session cookie, as a thief would."""
        app = self.client.application
        name = app.config["SESSION_COOKIE_NAME"]
        thief = Visitor(app.test_client())
        thief.client.set_cookie(name, self.client.get_cookie(name).value)
        return thief


def text(response: TestResponse) -> str:
    return response.get_data(as_text=True)
