"""The README stays true: every setting and every subcommand is documented there."""

from __future__ import annotations

import re
from pathlib import Path

import click
import pytest

from repo import config
from repo.cli import cli

README = (Path(__file__).parents[2] / "README.md").read_text()


def _commands(group: click.Group, prefix: str = "") -> list[str]:
    names = []
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            names += _commands(command, f"{prefix}{name} ")
        else:
            names.append(f"{prefix}{name}")
    return names


@pytest.mark.parametrize("variable", [entry[0] for entry in config.ENVIRONMENT])
def test_every_setting_is_in_the_readme(variable):
    assert f"`{variable}`" in README


@pytest.mark.parametrize("command", _commands(cli))
def test_every_command_is_in_the_readme(command):
    # A command line of its own: on the data directory, on a server, or (login) neither.
    line = rf"^    repo (\[--data-dir DIR\] |\[--server URL\] )?{re.escape(command)}( |$)"
    assert re.search(line, README, re.MULTILINE), command


def test_readme_shows_the_two_commands():
    assert "make serve" in README and "make test" in README
