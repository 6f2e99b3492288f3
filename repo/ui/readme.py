"""A Python project's long description on its package page, the way PyPI shows it: Markdown
and reStructuredText rendered and sanitised by readme_renderer (the library PyPI uses), by the
file's Description-Content-Type, and anything else as plain text.

Images become links: the page never fetches from another site without the user asking (the
UI's Content-Security-Policy, `img-src 'self' data:`, would block it anyway). Headings fit
under the page's own.
"""

from __future__ import annotations

import functools
import tarfile
from collections.abc import Sequence
from email.message import Message
from pathlib import Path

import readme_renderer.markdown
import readme_renderer.rst
import readme_renderer.txt
from bs4 import BeautifulSoup
from markupsafe import Markup
from packaging.metadata import parse_email

from ..blobs import BlobStore, StoreUnavailable
from ..pypi.metadata import METADATA_CAP

# PEP 566 and PyPI: no Description-Content-Type means reStructuredText.
DEFAULT_TYPE = "text/x-rst"
# Characters rendered: reStructuredText takes about 2 s for this many on this machine, once
# per worker (then cached); a longer description is shown cut, as plain text.
RENDER_LIMIT = 200_000


def render(text: str, content_type: str | None) -> Markup:
    """`text` as safe HTML: rendered as `content_type` says, plain text when it names another
    type or the text does not render (PyPI falls back the same way). A description longer
    than RENDER_LIMIT is shown cut there, as plain text; one nested deeper than the parsers
    go (a few hundred bytes of `>` can do it) as plain text: neither holds a page up."""
    if len(text) > RENDER_LIMIT:
        return Markup(readme_renderer.txt.render(text[:RENDER_LIMIT] + "\n[...]"))
    header = Message()
    header["Content-Type"] = content_type or DEFAULT_TYPE
    kind = header.get_content_type()
    try:
        html = None
        if kind == "text/markdown":
            variant = header.get_param("variant") or "GFM"
            html = readme_renderer.markdown.render(text, variant=str(variant))
        elif kind == "text/x-rst":
            html = readme_renderer.rst.render(text)
        return Markup(_fit_to_page(html or readme_renderer.txt.render(text) or ""))
    except RecursionError:
        return Markup(readme_renderer.txt.render(text))


HEADINGS = ("h1", "h2", "h3", "h4", "h5", "h6")


def _fit_to_page(html: str) -> str:
    """Every `<img>` becomes a link to its image, or, inside a link already (a badge), its
    alternative text: nothing loads until the user follows a link. Headings move two levels
    down: the README's h1 sits in the page's h2 section "Description"."""
    soup = BeautifulSoup(html, "html.parser")
    for heading in soup.find_all(HEADINGS):
        heading.name = HEADINGS[min(HEADINGS.index(heading.name) + 2, len(HEADINGS) - 1)]
    for image in soup.find_all("img"):
        label, source = image.get("alt") or "image", image.get("src")
        if not source or image.find_parent("a"):
            image.replace_with(label)
            continue
        link = soup.new_tag("a", href=source, rel="nofollow")
        link.string = f"[image: {label}]"
        image.replace_with(link)
    return str(soup)


def description(blobs: BlobStore, files: Sequence) -> Markup | None:
    """The rendered description of one version from the core metadata of its `files` (rows
    of the files table): a wheel's METADATA, else its sdist's PKG-INFO; None without one."""
    for row in files:
        if row["metadata_sha256"]:
            return _shown(blobs, row["metadata_sha256"], sdist=False)
    for row in files:
        if row["filename"].endswith(".tar.gz"):
            return _shown(blobs, row["sha256"], sdist=True)
    return None


def _shown(blobs: BlobStore, sha256: str, sdist: bool) -> Markup | None:
    try:
        return _rendered(blobs, sha256, sdist)
    except StoreUnavailable:
        return None  # the page without its description, and the next view asks again


@functools.lru_cache(maxsize=32)
def _rendered(blobs: BlobStore, sha256: str, sdist: bool) -> Markup | None:
    # Keyed by the blob's sha256: what a blob holds never changes.
    try:
        path = blobs.local_path(sha256)
        data = _pkg_info(path) if sdist else path.read_bytes()
    except StoreUnavailable:
        raise  # never cached
    except (OSError, tarfile.TarError, EOFError):
        return None  # a file deleted meanwhile
    if data is None:
        return None
    fields, _ = parse_email(data)
    text = fields.get("description", "")
    if not text.strip() or text.strip() == "UNKNOWN":  # old setuptools wrote UNKNOWN
        return None
    return render(text, fields.get("description_content_type"))


def _pkg_info(path: Path) -> bytes | None:
    """<root>/PKG-INFO of an sdist that its upload checked (repo.pypi.metadata)."""
    with tarfile.open(path, "r:gz") as tar:
        for member in tar:
            if member.name.partition("/")[2] == "PKG-INFO" and member.isfile():
                extracted = tar.extractfile(member)
                return extracted.read(METADATA_CAP) if extracted else None
    return None
