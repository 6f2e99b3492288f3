"""What the stacks' servers share: a free port on 127.0.0.1, and stopping a child process."""

from __future__ import annotations

import socket
import subprocess

STOP_TIMEOUT = 10


def free_port() -> int:
    """A port nobody listens on now, for a server that cannot be told to take port 0."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def stop(process: subprocess.Popen) -> None:
    """SIGTERM, then SIGKILL if it has not ended within STOP_TIMEOUT seconds."""
    process.terminate()
    try:
        process.wait(STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(STOP_TIMEOUT)
