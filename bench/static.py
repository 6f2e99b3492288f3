"""The static tree nginx serves: the same distributions laid out as a PEP 503 simple index
(`simple/index.html`, `simple/PROJECT/index.html` with sha256 fragments, `files/`)."""

from __future__ import annotations

import html
from collections.abc import Iterable
from pathlib import Path

from packaging.utils import canonicalize_name, parse_sdist_filename, parse_wheel_filename

from repo.maintenance import sha256_of

PAGE = "<!DOCTYPE html>\n<html><head><title>{title}</title></head><body>\n{links}</body></html>\n"


def project_of(path: Path) -> str:
    """The normalized project name of a distribution file."""
    if path.name.endswith(".whl"):
        return canonicalize_name(parse_wheel_filename(path.name)[0])
    return canonicalize_name(parse_sdist_filename(path.name)[0])


def _sha256(path: Path) -> str:
    with open(path, "rb") as file:
        return sha256_of(file)


def write_tree(root: Path, distributions: Iterable[Path]) -> int:
    """Lay out `distributions` (linked, not copied) under `root`; return the project count."""
    files_dir = root / "files"
    files_dir.mkdir(parents=True, exist_ok=True)
    projects: dict[str, list[Path]] = {}
    for path in distributions:
        projects.setdefault(project_of(path), []).append(path)
        link = files_dir / path.name
        if not link.exists():
            link.symlink_to(path.resolve())
    for name, paths in projects.items():
        links = "".join(
            f'<a href="/files/{html.escape(p.name)}#sha256={_sha256(p)}">'
            f"{html.escape(p.name)}</a><br>\n"
            for p in paths
        )
        page = root / "simple" / name / "index.html"
        page.parent.mkdir(parents=True, exist_ok=True)
        page.write_text(PAGE.format(title=f"Links for {name}", links=links))
    listing = "".join(f'<a href="/simple/{n}/">{n}</a><br>\n' for n in sorted(projects))
    (root / "simple" / "index.html").write_text(PAGE.format(title="Simple index", links=listing))
    return len(projects)
