"""The WSGI entry point: `gunicorn app:app`."""

from repo import create_app

app = create_app()
