"""The web UI: server-rendered pages for people, beside the API that pip, twine and R use."""
