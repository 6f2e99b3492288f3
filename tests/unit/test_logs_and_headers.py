"""Tokens never reach a log line, a traceback or a header; every response says nosniff, and
the API's HTML pages may run nothing."""

from __future__ import annotations

import logging
import sys
from base64 import b64encode
from datetime import timedelta

from gunicorn.config import Config

from repo import tokens
from repo.logs import REDACTED, RedactingFilter, RedactingLogger, redact

from .builders import send, token_auth, twine_form

TOKEN = tokens.generate()
BASIC = "Basic " + b64encode(f"{TOKEN}:x-auth-token".encode()).decode()


def test_redact_hides_path_tokens_and_token_shaped_strings():
    line = f"GET /api/repo/t/{TOKEN}/ch/simple/ and /api/t/garbled-token/repo/ch and {TOKEN}"

    cleaned = redact(line)

    assert TOKEN not in cleaned and "garbled-token" not in cleaned
    assert cleaned.count(REDACTED) == 3


def test_tracebacks_are_redacted():
    record = None
    try:
        raise RuntimeError(f"failed on /api/repo/t/{TOKEN}/ch/simple/")
    except RuntimeError:
        message = "Exception on /api/t/%s/repo/ch"
        record = logging.LogRecord("repo", logging.ERROR, __file__, 1, message, (TOKEN,),
                                   sys.exc_info())  # fmt: skip
    RedactingFilter().filter(record)

    formatted = logging.Formatter().format(record)
    assert TOKEN not in formatted
    assert "Exception on /api/t/<redacted>/repo/ch" in formatted


class _Response:
    status, sent, headers = "200 OK", 10, {}


def test_access_log_atoms_hide_the_token_user_url_and_secret_headers():
    config = Config()
    config.set("access_log_format", config.access_log_format
               + ' %({x-auth}i)s %({authorization}i)s %({raw_uri}e)s %({path_info}e)s')  # fmt: skip
    logger = RedactingLogger(config)
    environ = {"REQUEST_METHOD": "GET", "RAW_URI": f"/api/repo/t/{TOKEN}/ch/simple/",
               "PATH_INFO": f"/api/repo/t/{TOKEN}/ch/simple/", "SERVER_PROTOCOL": "HTTP/1.1",
               "QUERY_STRING": "", "HTTP_AUTHORIZATION": BASIC}  # fmt: skip
    environ["HTTP_REFERER"] = f"http://host/api/t/{TOKEN}/repo/ch/simple/"
    headers = [("AUTHORIZATION", environ["HTTP_AUTHORIZATION"]), ("X-AUTH", TOKEN),
               ("REFERER", environ["HTTP_REFERER"])]  # fmt: skip

    atoms = logger.atoms(_Response(), headers, environ, timedelta(seconds=0.01))

    written = config.access_log_format % logger.atoms_wrapper_class(atoms)
    assert TOKEN not in written
    assert atoms["u"] == "-"
    assert atoms["r"] == "GET /api/repo/t/<redacted>/ch/simple/ HTTP/1.1"
    assert atoms["f"] == "http://host/api/t/<redacted>/repo/ch/simple/"  # the Referer
    assert atoms["{x-auth}i"] == atoms["{authorization}i"] == REDACTED
    assert atoms["{raw_uri}e"] == atoms["{path_info}e"] == "/api/repo/t/<redacted>/ch/simple/"


def test_every_response_says_nosniff_and_api_html_runs_nothing(client, repo):
    made = repo.owner_with_channel("alice", "ch")
    auth = token_auth(repo.token(made.user_id))
    send(client, "POST", "/api/repo/ch/", data=twine_form(), headers=auth)

    for url in ("/api/repo/ch/simple/", "/api/repo/ch/simple/demo-pkg/", "/healthz",
                "/api/repo/nope/simple/"):  # fmt: skip
        response = send(client, "GET", url, headers={**auth, "Accept": "text/html"})
        assert response.headers["X-Content-Type-Options"] == "nosniff", url
        if response.mimetype == "text/html":
            assert response.headers["Content-Security-Policy"].startswith("default-src 'none'")


def test_percent_encoded_path_tokens_are_redacted():
    # Review finding 10: gunicorn decodes these to /t/rp-..., the access log keeps them raw.
    encoded = "".join(f"%{ord(c):02X}" for c in TOKEN)
    lines = [
        f"GET /api/repo/%74/{TOKEN}/ch/simple/ HTTP/1.1",
        f"GET /api/repo/%74/{encoded}/ch/simple/ HTTP/1.1",
        f"GET /api/%74%2F{encoded.lower()}%2frepo/ch/simple/ HTTP/1.1",
        f"GET /api/repo/t/{TOKEN[:3]}{encoded[9:]}/ch/simple/ HTTP/1.1",
        f"user %72%70%2D{TOKEN[3:]} end",
    ]

    for line in lines:
        cleaned = redact(line)
        assert TOKEN[3:13] not in cleaned and encoded[9:40] not in cleaned, cleaned
        assert encoded[9:40].lower() not in cleaned, cleaned
        assert REDACTED in cleaned


def test_a_logged_message_cannot_forge_lines():
    # Review finding 7: a decoded %0d%0a in a URL used to start a line of its own.
    record = logging.LogRecord("repo", logging.ERROR, __file__, 1, "Exception on %s [GET]",
                               ("/x\r\n[2026-12-01 00:00:00] FORGED LINE/",), None)  # fmt: skip

    RedactingFilter().filter(record)

    message = record.getMessage()
    assert "\n" not in message and "\r" not in message
    assert message == "Exception on /x\\r\\n[2026-12-01 00:00:00] FORGED LINE/ [GET]"
