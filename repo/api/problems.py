"""RFC 9457 problem details, the JSON API's one error shape, and when a request gets one.

Every refusal reaches repo.responses.error, which hands it here for the API's routes, for a
URL under /api that matches none, and for an upload that asked for JSON; twine, uv, curl and
R keep their one-line text answers.
"""

from __future__ import annotations

import json

from flask import Response, request
from werkzeug.http import HTTP_STATUS_CODES

from ..errors import one_line

MEDIA_TYPE = "application/problem+json"
JSON_TYPES = ("application/json", MEDIA_TYPE)
BLUEPRINT = "api"
# The codes a status has unless the refusal names a more precise one (repo.errors.RepoError).
DEFAULT_CODES = {
    400: "validation_error",
    401: "auth_required",
    403: "forbidden",
    404: "not_found",
    409: "conflict",
    413: "too_large",
    429: "rate_limited",
}
# Under /api these prefixes are the tool routes (the simple index, the CRAN tree, uploads).
_TOOL_PREFIXES = ("/api/repo/", "/api/t/")


def accepts_json() -> bool:
    """Whether the client named JSON in Accept: a wildcard (twine, uv, curl send `*/*`) is
    not asking for it."""
    return any(kind in JSON_TYPES and quality > 0 for kind, quality in request.accept_mimetypes)


def wanted() -> bool:
    """Whether this request's refusal is a problem document."""
    if BLUEPRINT in request.blueprints:
        return True
    if getattr(request, "takes_uploads", False):
        return accepts_json()
    return (
        request.url_rule is None
        and (request.path == "/api" or request.path.startswith("/api/"))
        and not request.path.startswith(_TOOL_PREFIXES)
    )


def default_code(status: int) -> str:
    """The code of a status no refusal named one for: `not_found`, or the status's name."""
    name = HTTP_STATUS_CODES.get(status, "error")
    return DEFAULT_CODES.get(status) or name.lower().replace(" ", "_").replace("-", "_")


def body(status: int, detail: str, code: str | None = None) -> dict:
    return {
        "type": "about:blank",
        "title": HTTP_STATUS_CODES.get(status, "Error"),
        "status": status,
        "detail": detail,
        "code": code or default_code(status),
    }


def response(status: int, detail: str, headers: dict | None = None,
             code: str | None = None) -> Response:  # fmt: skip
    """The problem document; its reason phrase is the detail, as on every other refusal."""
    answer = Response(
        json.dumps(body(status, detail, code)), status=status, mimetype=MEDIA_TYPE,
        headers=headers,
    )  # fmt: skip
    answer.status = f"{status} {one_line(detail)}"
    answer.headers["Cache-Control"] = "no-store"
    return answer
