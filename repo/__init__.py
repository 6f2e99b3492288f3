"""repo: a self-hosted repository of private channels of Python and R packages."""

from __future__ import annotations

from flask import Flask

# Every read URL of a channel is served under three prefixes: plain (credentials in headers)
# and the two token-in-path forms R and conda users need.
PREFIXES = {
    "": "/api/repo",
    "_t": "/api/repo/t/<token>",
    "_tr": "/api/t/<token>/repo",
}


def create_app(test_config: dict | None = None) -> Flask:
    """The application: configuration, storage, auth, then the blueprints, in that order."""
    from . import auth, blobs, config, db, errors, logs, upload
    from .cran import routes as cran_routes
    from .pypi import routes as pypi_routes

    app = Flask(__name__, template_folder="../templates", static_folder="../static")
    app.config.update(config.finish({**config.from_environ(), **(test_config or {})}))
    logs.init_app(app)
    db.init_app(app)
    blobs.init_app(app)
    errors.init_app(app)
    auth.init_app(app)
    upload.init_app(app)
    for blueprint in (upload.bp, pypi_routes.bp, cran_routes.bp):
        for suffix, prefix in PREFIXES.items():
            app.register_blueprint(blueprint, url_prefix=prefix, name=blueprint.name + suffix)

    @app.get("/healthz")
    def healthz():
        return "ok\n", 200, {"Content-Type": "text/plain", "Cache-Control": "no-store"}

    return app
