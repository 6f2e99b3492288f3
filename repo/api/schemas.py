"""The JSON Schemas (draft 2020-12, OpenAPI 3.1's dialect) of every body the API takes and
gives: the handlers validate requests with them and openapi.py publishes them unchanged, so
the document cannot drift from what the server checks."""

from __future__ import annotations

from typing import Any

from jsonschema import Draft202012Validator

from ..accounts import CHANNEL_SCOPES, DESCRIPTION_LIMIT, LABEL_LIMIT, ROLES, SCOPES
from ..mirror.settings import KINDS, MODES
from ..snapshots.history import EVENTS

Schema = dict[str, Any]
REF = "#/components/schemas/"
STRING = {"type": "string"}
TIME = {"type": "string", "format": "date-time"}
MAYBE_TIME = {"type": ["string", "null"], "format": "date-time"}
MAYBE_STRING = {"type": ["string", "null"]}
DURATION = {"type": "string", "pattern": r"^\d{1,6}[dhms]$", "examples": ["30d", "12h"]}
FAMILIES = ("python", "cran")
FILE_KINDS = ("bdist_wheel", "sdist", "source", "binary")
SHA256 = {"type": "string", "pattern": "^[0-9a-f]{64}$"}


def ref(name: str) -> Schema:
    return {"$ref": REF + name}


def strict(required: list[str], **properties: Schema) -> Schema:
    """An object of exactly these properties."""
    return {"type": "object", "required": required, "properties": properties,
            "additionalProperties": False}  # fmt: skip


def answer(**properties: Schema) -> Schema:
    """A response object: every property is always there."""
    return strict(list(properties), **properties)


def listing(item: str) -> Schema:
    return answer(total_count={"type": "integer", "minimum": 0},
                  items={"type": "array", "items": ref(item)})  # fmt: skip


_TOKEN = answer(
    id={"type": "integer"}, user=STRING, channel=MAYBE_STRING,
    scope={"enum": list(SCOPES)}, label=STRING, created=TIME, last_used=MAYBE_TIME,
    expires=MAYBE_TIME, revoked=MAYBE_TIME,
)  # fmt: skip
_FILE = answer(
    filename=STRING, family={"enum": list(FAMILIES)}, kind={"enum": list(FILE_KINDS)},
    name=STRING, version=STRING, sha256=SHA256, size={"type": "integer"}, uploaded=TIME,
    subdir=STRING, yanked={"type": "boolean"}, yanked_reason=MAYBE_STRING,
    requires_python=MAYBE_STRING,
)  # fmt: skip
_PACKAGE = {
    "family": {"enum": list(FAMILIES)}, "name": STRING, "display_name": STRING,
    "versions": {"type": "array", "items": STRING}, "file_count": {"type": "integer"},
}  # fmt: skip
_MIRROR = answer(
    channel=STRING, type={"enum": list(KINDS)}, source=STRING,
    file_hosts={"type": "array", "items": STRING}, ttl={"type": "integer"},
    mode={"enum": list(MODES)}, credentials={"type": "boolean"},
    quota={"type": ["integer", "null"]}, min_age={"type": ["integer", "null"]},
    sync={"type": "array", "items": STRING}, sync_every={"type": ["integer", "null"]},
    last_success=MAYBE_TIME, last_error=MAYBE_STRING, last_error_at=MAYBE_TIME,
    last_sync=MAYBE_TIME, sync_result=MAYBE_STRING,
    cached_projects={"type": "integer"}, cached_bytes={"type": "integer"},
)  # fmt: skip
# A change to a channel's file, with the file as it was; yanked_reason only on a yank, actor
# null when not known (the console, a user since removed, a yank from before the history).
_EVENT = answer(
    at=TIME, event={"enum": list(EVENTS)}, family={"enum": list(FAMILIES)},
    kind={"enum": list(FILE_KINDS)}, package=STRING, version=STRING, filename=STRING,
    subdir=STRING, sha256=SHA256, size={"type": "integer"}, yanked_reason=MAYBE_STRING,
    actor=MAYBE_STRING,
)  # fmt: skip
_NAME = {"type": "string", "minLength": 1, "maxLength": 63}
_PRIVACY = {"enum": ["public", "private"]}
_DESCRIPTION = {"type": "string", "maxLength": DESCRIPTION_LIMIT}
_LABEL = {"type": "string", "maxLength": LABEL_LIMIT}
_PASSWORD = {"type": "string", "minLength": 1, "maxLength": 1024}

# Everything a response carries, by name (components/schemas of the document).
RESPONSES: dict[str, Schema] = {
    "OpenAPI": {"type": "object", "required": ["openapi", "info", "paths"]},
    "Problem": answer(type=STRING, title=STRING, status={"type": "integer"}, detail=STRING,
                      code=STRING),  # fmt: skip
    "Discovery": answer(
        api_version={"const": 1}, server_version=STRING, max_upload_bytes={"type": "integer"},
        links=answer(openapi=STRING, login=STRING),
    ),  # fmt: skip
    "Token": _TOKEN,
    "TokenList": listing("Token"),
    "NewToken": answer(token={"type": "string", "pattern": "^rp-"}, id={"type": "integer"},
                       label=STRING, scope={"enum": list(SCOPES)}, channel=MAYBE_STRING,
                       expires=MAYBE_TIME),  # fmt: skip
    "Account": answer(username=STRING, is_admin={"type": "boolean"},
                      token={"anyOf": [ref("Token"), {"type": "null"}]}),  # fmt: skip
    "Channel": answer(
        name=STRING, privacy=_PRIVACY, description=STRING,
        my_role={"enum": [*ROLES, None]}, package_count={"type": "integer"},
        file_count={"type": "integer"}, size_bytes={"type": "integer"}, created=TIME,
        urls=answer(upload=STRING, simple=STRING, cran=STRING),
    ),  # fmt: skip
    "ChannelList": listing("Channel"),
    "Member": answer(user=STRING, role={"enum": list(ROLES)}),
    "MemberList": listing("Member"),
    "File": _FILE,
    "Package": answer(**_PACKAGE),
    "PackageList": listing("Package"),
    "PackageDetail": answer(**_PACKAGE, files={"type": "array", "items": ref("File")}),
    "Event": _EVENT,
    "EventList": listing("Event"),
    "Mirror": _MIRROR,
    "MirrorList": listing("Mirror"),
    "Refresh": answer(stale_pages={"type": "integer"}),
    "User": answer(name=STRING, is_admin={"type": "boolean"}, disabled={"type": "boolean"},
                   created=TIME, channels={"type": "integer"}, tokens={"type": "integer"}),
    "UserList": listing("User"),
}  # fmt: skip

# Every request body, by name.
REQUESTS: dict[str, Schema] = {
    "Login": strict(
        ["username", "password"],
        username=_NAME,
        password=_PASSWORD,
        label=_LABEL,
        expires_in=DURATION,
    ),  # fmt: skip
    "TokenCreate": strict(
        ["scope"],
        scope={"enum": list(SCOPES)},
        channel=_NAME,
        label=_LABEL,
        expires_in=DURATION,
        user=_NAME,
    ),  # fmt: skip
    "ChannelCreate": strict(["name"], name=_NAME, privacy=_PRIVACY, description=_DESCRIPTION),
    "ChannelUpdate": {
        **strict([], privacy=_PRIVACY, description=_DESCRIPTION),
        "minProperties": 1,
    },  # fmt: skip
    "MemberSet": strict(["role"], role={"enum": list(ROLES)}),
    "FileUpdate": {
        "oneOf": [
            strict(
                ["yanked"],
                yanked={"const": True},
                yanked_reason={"type": "string", "maxLength": 500},
            ),
            strict(["yanked"], yanked={"const": False}),
        ]
    },  # fmt: skip
    "MirrorCreate": strict(
        ["type", "source"],
        type={"enum": list(KINDS)},
        source=STRING,
        ttl=DURATION,
        mode={"enum": list(MODES)},
        file_hosts={"type": "array", "items": STRING},
        username=STRING,
        password=STRING,
        quota={"type": ["integer", "string"], "examples": [1073741824, "50G"]},
        min_age=DURATION,
        sync={"type": "array", "items": STRING},
        sync_every=DURATION,
    ),  # fmt: skip
    "UserCreate": strict(
        ["name", "password"], name=_NAME, password=_PASSWORD, is_admin={"type": "boolean"}
    ),  # fmt: skip
    "UserUpdate": {
        **strict(
            [], password=_PASSWORD, disabled={"type": "boolean"}, is_admin={"type": "boolean"}
        ),
        "minProperties": 1,
    },  # fmt: skip
}

# Channel tokens take fewer scopes than user tokens; said here so the document says it too.
REQUESTS["TokenCreate"]["description"] = (
    f"A channel token's scope is one of {', '.join(CHANNEL_SCOPES)}; only an admin may name"
    " another `user`. Without `expires_in` the token does not expire."
)

# Query parameters, by name.
QUERY: dict[str, Schema] = {
    "offset": {"type": "integer", "minimum": 0, "default": 0},
    "limit": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100},
    "q": {"type": "string"},
    "mine": {"enum": ["0", "1"]},
    "family": {"enum": list(FAMILIES)},
    "force": {"enum": ["0", "1"]},
    "user": {"type": "string"},
    "subdir": {"type": "string"},
}

COMPONENTS: dict[str, Schema] = {**RESPONSES, **REQUESTS}


def validator(name: str) -> Draft202012Validator:
    """A validator of the component `name`, its references resolved among the others."""
    return Draft202012Validator({**ref(name), "components": {"schemas": COMPONENTS}})
