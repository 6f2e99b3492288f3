"""The API's blueprint and its route table: each route says who may call it, the schema its
body must pass and what it answers, once, for the handler and for openapi.py alike."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

from flask import Blueprint, request
from jsonschema.exceptions import ValidationError, best_match

from .. import auth
from ..accounts import ANONYMOUS, Identity
from ..errors import Forbidden, Invalid, Unauthorized
from . import problems, schemas

bp = Blueprint(problems.BLUEPRINT, __name__)
# Who may call a route: nobody needs to be anybody ("open": no credential is even read),
# "anyone" (anonymous too), "user" (any credential), "manage" (a password or a user token of
# scope manage), "admin" (an admin so).
NEEDS = ("open", "anyone", "user", "manage", "admin")
# What a route under /channels/<channel> needs in that channel: it gets the channel's row.
CHANNEL_NEEDS = (None, "read", "owner")
PAGED = ("offset", "limit")


@dataclass(frozen=True)
class Route:
    """One operation: its method and Flask rule under /api, and what the document says."""

    method: str
    rule: str
    summary: str
    need: str
    body: str | None
    answers: dict[int, str | None]
    errors: tuple[int, ...]
    query: tuple[str, ...]
    channel: str | None = None

    @property
    def statuses(self) -> tuple[int, ...]:
        """Every status the route answers, the refusals its needs and body imply included:
        401 without a credential (in a channel: one that is not public), 403 with too few
        rights, 404 for a channel the caller may not see."""
        implied = {"user": {401}, "manage": {401, 403}, "admin": {401, 403}}.get(self.need, set())
        if self.channel is not None:
            implied |= {401, 404} | ({403} if self.channel == "owner" else set())
        invalid = {400} if self.body or set(PAGED) & set(self.query) else set()
        return tuple(sorted({*self.answers, *implied, *invalid, *self.errors}))


ROUTES: list[Route] = []


def endpoint(method: str, rule: str, summary: str, *, answers: dict[int, str | None],
             need: str = "user", body: str | None = None, errors: tuple[int, ...] = (),
             query: tuple[str, ...] = (), channel: str | None = None) -> Callable:  # fmt: skip
    """Register the decorated view for `method rule`. Who may call it is checked first, then
    the channel (its row replaces the `channel` name), then the JSON body, passed as `body`."""
    assert need in NEEDS and channel in CHANNEL_NEEDS, (need, channel)
    assert body is None or body in schemas.REQUESTS, body
    route = Route(method, rule, summary, need, body, answers, errors, query, channel)
    ROUTES.append(route)

    def register(view: Callable) -> Callable:
        @functools.wraps(view)
        def run(**values):
            _authorize(route.need)
            if route.channel is not None:
                values["channel"] = auth.channel_for(values["channel"], route.channel)
            if route.body is not None:
                values["body"] = _validated(route.body)
            return view(**values)

        guarded = run if need == "open" else auth.required.login_required(run)
        name = f"{view.__module__.rsplit('.', 1)[-1]}_{view.__name__}"
        bp.add_url_rule(rule, endpoint=name, view_func=guarded, methods=[method])
        return view

    return register


def _authorize(need: str) -> None:
    if need in ("open", "anyone"):
        return
    identity = caller()
    if need in ("manage", "admin") and not identity.manages:
        raise Forbidden(
            f"{identity.describe()} may not do this: it takes a password or a user token"
            " of scope manage"
        )
    if need == "admin" and not identity.is_admin:
        raise Forbidden(f"User '{identity.user_name}' is not an admin")


def caller() -> Identity:
    """Who is asking; 401 for the anonymous caller."""
    identity = auth.current_identity()
    if identity is ANONYMOUS:
        raise Unauthorized("Credentials required", headers=auth.CHALLENGE)
    return identity


def _validated(name: str) -> dict:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise Invalid("Send a JSON object as the body, with Content-Type: application/json")
    error = best_match(schemas.validator(name).iter_errors(body))
    if error is not None:
        where = "/".join(str(part) for part in error.absolute_path)
        raise Invalid(f"Invalid body{f' at {where!r}' if where else ''}: {_rule(error)}")
    return body


# The rules whose messages name properties, not values.
_NAMES_ONLY = ("required", "additionalProperties")


def _rule(error: ValidationError) -> str:
    """What the body broke, from the schema's side: never the value sent, which may be a
    password or a token and would be echoed in the answer and the log."""
    if error.validator in _NAMES_ONLY:
        return error.message  # property names, never their values
    expected = error.validator_value
    if error.validator == "enum":
        expected = ", ".join(str(choice) for choice in expected)
    return f"must satisfy {error.validator}: {expected}"


def argument(name: str, default: str | None = None) -> str | None:
    """A query parameter, checked against its schema (an enum, say)."""
    value = request.args.get(name, default)
    allowed = schemas.QUERY[name].get("enum")
    if value is not None and allowed and value not in allowed:
        raise Invalid(f"Invalid query parameter {name}={value!a}: use one of {', '.join(allowed)}")
    return value


def _bounded(name: str) -> int:
    schema = schemas.QUERY[name]
    text = request.args.get(name, str(schema["default"]))
    low, high = schema["minimum"], schema.get("maximum")
    if (
        not (text.isascii() and text.isdigit())
        or int(text) < low
        or (high is not None and int(text) > high)
    ):
        top = f" to {high}" if high is not None else " or more"
        raise Invalid(f"Invalid query parameter {name}={text!a}: use a whole number {low}{top}")
    return int(text)


def bounds() -> tuple[int, int]:
    """The `?offset=&limit=` a list is asked for, checked against their schemas."""
    return _bounded("offset"), _bounded("limit")


def page(items: list) -> dict:
    """`{"total_count", "items"}`, the slice `?offset=&limit=` asks for."""
    offset, limit = bounds()
    return {"total_count": len(items), "items": items[offset : offset + limit]}
