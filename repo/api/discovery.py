"""What a client reads first: `GET /api` (the version and the links) and the OpenAPI
document itself."""

from __future__ import annotations

from importlib import metadata

from flask import current_app, url_for

from . import openapi
from .routing import endpoint

API_VERSION = 1


def server_version() -> str:
    try:
        return metadata.version("repo")
    except metadata.PackageNotFoundError:  # a zipapp carries no distribution metadata
        return "unknown"


@endpoint("GET", "", "Discovery: the API version, limits and links",
          need="open", answers={200: "Discovery"})  # fmt: skip
def discover():
    return {
        "api_version": API_VERSION,
        "server_version": server_version(),
        "max_upload_bytes": current_app.config["MAX_CONTENT_LENGTH"],
        "links": {"openapi": url_for(".discovery_document"), "login": url_for(".account_login")},
    }


@endpoint("GET", "/openapi.json", "This API's OpenAPI 3.1 document",
          need="open", answers={200: "OpenAPI"})  # fmt: skip
def document():
    return openapi.document(server_version())
