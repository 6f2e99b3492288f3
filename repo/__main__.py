"""`python -m repo` is the `repo` command."""

from .cli import main

main()
