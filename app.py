"""The WSGI entry point: `gunicorn app:app`."""

from repo import config, create_app

config.keep_private(config.from_environ()["DATA_DIR"])
app = create_app()
