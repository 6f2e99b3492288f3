"""The JSON API through the Flask test client, each answer checked against the OpenAPI
document the app serves: its status must be documented for the route, and its body must
match the schema documented for that status (problem+json for a refusal)."""

from __future__ import annotations

import json

from jsonschema import Draft202012Validator
from werkzeug.test import TestResponse

from repo.api.openapi import path_of

from .builders import basic, send


class Api:
    """`api("GET", "/api/account", 200, token=secret)`: the answer, checked."""

    def __init__(self, app, client):
        self.app = app
        self.client = client
        self.document = client.get("/api/openapi.json").get_json()

    def __call__(self, method: str, url: str, status: int, *, token: str | None = None,
                 password: tuple[str, str] | None = None, headers: dict | None = None,
                 **options) -> TestResponse:  # fmt: skip
        sent = dict(headers or {})
        if token is not None:
            sent["Authorization"] = f"Bearer {token}"
        if password is not None:
            sent.update(basic(*password))
        response = send(self.client, method, url, headers=sent, **options)
        assert response.status_code == status, (response.status, response.get_data(as_text=True))
        self.check(method, url, response)
        return response

    def check(self, method: str, url: str, response: TestResponse) -> None:
        """The answer is one the document describes for this route."""
        adapter = self.app.url_map.bind("localhost")
        rule, _ = adapter.match(url.split("?")[0], method, return_rule=True)
        template = path_of(rule.rule.removeprefix("/api").removesuffix("/"))
        operation = self.document["paths"][template][method.lower()]
        documented = operation["responses"].get(str(response.status_code))
        assert documented is not None, f"{method} {template} documents no {response.status}"
        content = documented.get("content")
        if content is None:
            assert response.get_data() == b"", response.get_data()
            return
        [(media_type, described)] = content.items()
        assert response.mimetype == media_type, response.mimetype
        root = {**described["schema"], "components": self.document["components"]}
        Draft202012Validator(root).validate(json.loads(response.get_data()))
        if response.status_code >= 400:
            detail = response.get_json()["detail"]
            assert response.status == f"{response.status_code} {detail}"


def problem(response: TestResponse) -> tuple[str, str]:
    """(code, detail) of a problem answer."""
    body = response.get_json()
    return body["code"], body["detail"]
