"""The JSON API under /api: one module per resource, each adding its routes to the table in
routing.py, from which openapi.py makes the document."""

from __future__ import annotations

from flask import Flask

from . import routing


def init_app(app: Flask) -> None:
    """Register the API's blueprint, with every resource's routes on it."""
    from . import (  # noqa: F401
        account,
        channels,
        discovery,
        history,
        members,
        mirrors,
        packages,
        tokens,
        users,
    )

    app.register_blueprint(routing.bp, url_prefix="/api")
