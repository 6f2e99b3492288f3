"""The JSON API client: one httpx.Client per command with the token as `Authorization:
Bearer`, and every error answer turned into a RepoError that keeps the HTTP status (which the
exit code follows) and the server's problem+json `detail` (which goes to stderr)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx

from ..errors import RepoError

# The exit status of a refused request, as gh has it: 3 not found or forbidden, 4 not
# authenticated, 5 conflict; every other failure is 1 (click's usage errors are 2).
EXIT_CODES = {401: 4, 403: 3, 404: 3, 409: 5}
PAGE_SIZE = 1000
TIMEOUT = 60.0


def exit_code(error: RepoError) -> int:
    """The exit status for a refused request (or a local RepoError of the same status)."""
    return EXIT_CODES.get(error.status, 1)


def problem(response: httpx.Response, hint: str = "") -> RepoError:
    """The RepoError an error answer means, its message the problem+json `detail` (else the
    text body's first line, else the reason phrase)."""
    detail = ""
    try:
        body = response.json()
        if isinstance(body, dict):
            detail = body.get("detail") or body.get("title") or ""
    except ValueError:
        detail = response.text.strip().splitlines()[0] if response.text.strip() else ""
    message = detail or response.reason_phrase or f"HTTP {response.status_code}"
    if response.status_code == 401 and hint:
        message = f"{message}; {hint}"
    return RepoError(message, status=response.status_code)


class Api:
    """Calls to one server's /api, as one token (or none, for login)."""

    def __init__(self, url: str, token: str | None = None, unauthorized_hint: str = ""):
        headers = {"Accept": "application/json", "User-Agent": "repo-cli"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self.url = url
        self.http = httpx.Client(base_url=url, headers=headers, timeout=TIMEOUT)
        self._hint = unauthorized_hint

    def call(self, method: str, path: str, *, json: Any = None,
             params: dict | None = None) -> Any:  # fmt: skip
        """The decoded JSON answer of one request (None for 204); raises RepoError."""
        response = self.send(self.http.build_request(method, path, json=json, params=params))
        return response.json() if response.content else None

    def send(self, request: httpx.Request) -> httpx.Response:
        """Send a prepared request; an error status or a failed connection raises RepoError."""
        try:
            response = self.http.send(request)
        except httpx.HTTPError as error:
            raise RepoError(f"Cannot reach {self.url}: {error}") from None
        if response.is_error:
            raise problem(response, self._hint)
        return response

    def items(self, path: str, params: dict | None = None) -> list[dict]:
        """Every item of a `{"total_count", "items"}` list, page by page."""
        return [item for page in self._pages(path, params) for item in page]

    def newest(self, path: str, count: int | None = None) -> list[dict]:
        """The newest `count` items (every one, without) of a list paged back from its newest,
        as a channel's history is, oldest first as each of its pages is."""
        return [item for page in reversed(list(self._pages(path, None, count))) for item in page]

    def _pages(self, path: str, params: dict | None, count: int | None = None) -> Iterator[list]:
        """The items of each page in turn, until the list or `count` items are had."""
        had = 0
        while count is None or had < count:
            limit = PAGE_SIZE if count is None else min(PAGE_SIZE, count - had)
            page = self.call("GET", path, params={**(params or {}), "offset": had,
                                                  "limit": limit})  # fmt: skip
            yield page["items"]
            had += len(page["items"])
            if not page["items"] or had >= page["total_count"]:
                return
