"""repo: a self-hosted repository of private channels of Python and R packages."""

from __future__ import annotations

from pathlib import Path

from flask import Flask

_PACKAGE = Path(__file__).parent
# schema.sql, templates/ and static/ sit beside the package in a checkout; `make dist` and
# `make binary` copy them into it, since an installed package (the zipapp) has nothing beside
# it, and neither has a frozen one (the binary: the package unpacked under sys._MEIPASS).
RESOURCES = _PACKAGE if (_PACKAGE / "schema.sql").is_file() else _PACKAGE.parent

# Every read URL of a channel is served under three prefixes: plain (credentials in headers)
# and the two token-in-path forms R and conda users need.
PREFIXES = {
    "": "/api/repo",
    "_t": "/api/repo/t/<token>",
    "_tr": "/api/t/<token>/repo",
}


def create_app(test_config: dict | None = None) -> Flask:
    """The application: configuration, storage, auth, then the blueprints, in that order."""
    from . import api, auth, blobs, config, db, errors, logs, responses, upload
    from .cran import routes as cran_routes
    from .pypi import fastpath
    from .pypi import routes as pypi_routes
    from .snapshots import routes as snapshot_routes
    from .ui import routes as ui_routes

    app = Flask(__name__, template_folder=RESOURCES / "templates",
                static_folder=RESOURCES / "static")  # fmt: skip
    app.config.update(config.finish({**config.from_environ(), **(test_config or {})}))
    logs.init_app(app)
    db.init_app(app)
    blobs.init_app(app)
    errors.init_app(app)
    responses.init_app(app)
    auth.init_app(app)
    upload.init_app(app)
    for blueprint in (upload.bp, pypi_routes.bp, cran_routes.bp, snapshot_routes.bp):
        for suffix, prefix in PREFIXES.items():
            app.register_blueprint(blueprint, url_prefix=prefix, name=blueprint.name + suffix)
    api.init_app(app)
    # The web UI, once, at `/`: its pages never share a path with the API under /api.
    app.register_blueprint(ui_routes.bp, url_prefix="")
    fastpath.init_app(app)

    @app.get("/healthz")
    def healthz():
        return "ok\n", 200, {"Content-Type": "text/plain", "Cache-Control": "no-store"}

    return app
