"""The OpenAPI 3.1 document of the API, made from the route table (routing.ROUTES) and the
schemas the handlers validate with (schemas.COMPONENTS): nothing in it is written twice."""

from __future__ import annotations

import re

from werkzeug.http import HTTP_STATUS_CODES

from . import schemas
from .routing import ROUTES, Route

PREFIX = "/api"
_CONVERTER = re.compile(r"<(?:(?P<converter>\w+)(?:\((?P<args>[^)]*)\))?:)?(?P<name>\w+)>")
_WORDLESS = re.compile(r"\W+")
_SECURITY = [{"basic": []}, {"bearer": []}, {"xAuth": []}]
SECURITY_SCHEMES = {
    "basic": {"type": "http", "scheme": "basic",
              "description": "TOKEN:x-auth-token, __token__:TOKEN, or a user name and password"},
    "bearer": {"type": "http", "scheme": "bearer", "description": "Authorization: Bearer TOKEN"},
    "xAuth": {"type": "apiKey", "in": "header", "name": "X-Auth"},
}  # fmt: skip
# The upload is a tool route (twine's form, curl's for R); asked for JSON it is the API's.
UPLOAD = Route(
    "POST", "/repo/<channel>", "Upload a wheel, sdist or R package (the form twine or curl"
    " sends); with Accept: application/json the answer is the file's JSON: 201 new, 200 an"
    " identical re-upload", "user", None, {200: "File", 201: "File"}, (400, 403, 404, 409, 413),
    (),
)  # fmt: skip
_UPLOAD_FORM = {
    "type": "object",
    "required": ["content"],
    "properties": {
        "content": {"type": "string", "contentMediaType": "application/octet-stream"},
        ":action": {"const": "file_upload", "description": "Python (twine, uv)"},
        "sha256_digest": {"type": "string"},
        "filetype": {"type": "string",
                     "description": "R: cran_source_package or cran_binary_package"},
        "platform": {"type": "string"},
        "rversion": {"type": "string"},
    },
}  # fmt: skip


def path_of(rule: str) -> str:
    """A Flask rule as an OpenAPI path: `<int:token_id>` becomes `{token_id}`."""
    return PREFIX + _CONVERTER.sub(lambda match: "{" + match["name"] + "}", rule)


def _path_parameters(rule: str) -> list[dict]:
    parameters = []
    for match in _CONVERTER.finditer(rule):
        schema: dict = {"type": "string"}
        if match["converter"] == "int":
            schema = {"type": "integer"}
        elif match["converter"] == "any":
            schema = {"enum": [word.strip() for word in match["args"].split(",")]}
        parameters.append({"name": match["name"], "in": "path", "required": True,
                           "schema": schema})  # fmt: skip
    return parameters


def _response(route: Route, status: int) -> dict:
    answer: dict = {"description": HTTP_STATUS_CODES[status]}
    if status in route.answers:
        schema = route.answers[status]
        if schema is not None:
            answer["content"] = {"application/json": {"schema": schemas.ref(schema)}}
        if status == 201 and route.rule in ("/channels", "/users"):
            answer["headers"] = {"Location": {"schema": {"type": "string"}}}
        return answer
    answer["content"] = {"application/problem+json": {"schema": schemas.ref("Problem")}}
    if status == 401:
        answer["headers"] = {"WWW-Authenticate": {"schema": {"const": 'Basic realm="repo"'}}}
    if status == 429:
        answer["headers"] = {"Retry-After": {"schema": {"type": "integer"}}}
    return answer


def _operation(route: Route) -> dict:
    operation: dict = {
        "operationId": route.method.lower() + _WORDLESS.sub("_", path_of(route.rule)),
        "summary": route.summary,
        "parameters": _path_parameters(route.rule) + [
            {"name": name, "in": "query", "required": False, "schema": schemas.QUERY[name]}
            for name in route.query
        ],
        "responses": {str(status): _response(route, status) for status in route.statuses},
        "security": {"open": [], "anyone": [{}, *_SECURITY]}.get(route.need, _SECURITY),
    }  # fmt: skip
    if route.body is not None:
        operation["requestBody"] = {"required": True, "content": {
            "application/json": {"schema": schemas.ref(route.body)}}}  # fmt: skip
    return operation


def _upload_operation() -> dict:
    operation = _operation(UPLOAD)
    operation["parameters"].append({"name": "Accept", "in": "header", "required": True,
                                    "schema": {"const": "application/json"}})  # fmt: skip
    operation["requestBody"] = {
        "required": True,
        "content": {"multipart/form-data": {"schema": _UPLOAD_FORM}},
    }
    return operation


def document(version: str) -> dict:
    paths: dict[str, dict] = {}
    for route in ROUTES:
        paths.setdefault(path_of(route.rule), {})[route.method.lower()] = _operation(route)
    paths[path_of(UPLOAD.rule)] = {"post": _upload_operation()}
    return {
        "openapi": "3.1.0",
        "info": {"title": "repo", "version": version,
                 "description": "The JSON API of repo, a server of private Python and R"
                                " package channels. Errors are RFC 9457 problem documents."},
        "paths": paths,
        "components": {"schemas": schemas.COMPONENTS, "securitySchemes": SECURITY_SCHEMES},
    }  # fmt: skip
