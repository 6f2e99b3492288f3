"""Serving with gunicorn: gthread workers, so a slow 1 GB upload or download is not killed by
the worker timeout (the heartbeat runs beside the request threads), reading requests under
deadlines (repo.worker), a redacting log, and in each worker the active mirrors' schedule."""

from __future__ import annotations

from flask import Flask
from gunicorn.app.base import BaseApplication

from .mirror.sync import Scheduler


def options(bind: str, workers: int, threads: int) -> dict:
    return {
        "bind": bind,
        "workers": workers,
        "worker_class": "repo.worker.ReadTimeoutWorker",
        "threads": threads,
        "timeout": 120,
        "graceful_timeout": 30,
        "keepalive": 5,
        "accesslog": "-",
        "errorlog": "-",
        "logger_class": "repo.logs.RedactingLogger",
        "control_socket_disable": True,
        "when_ready": _announce,
        "post_worker_init": _start_sync,
    }


def _announce(arbiter) -> None:
    """Say where the server is, with the port the OS chose when the bind asked for port 0."""
    for listener in arbiter.LISTENERS:
        print(f"repo is ready at {listener}/", flush=True)


def _start_sync(worker) -> None:
    """Each worker runs the active mirrors' schedule (a lease lets one of them run each sync)."""
    Scheduler(worker.wsgi).start()


class Server(BaseApplication):
    """gunicorn running an application object made by create_app()."""

    def __init__(self, app: Flask, settings: dict):
        self.application = app
        self.settings = settings
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.settings.items():
            self.cfg.set(key, value)

    def load(self) -> Flask:
        return self.application
