"""The entry point of dist/repo: PyInstaller freezes a script, not `python -m repo`, and this
script is the `repo` command."""

from repo.cli import main

main()
