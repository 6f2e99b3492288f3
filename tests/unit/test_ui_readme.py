"""A package page shows the project's description the way PyPI does (readme_renderer, by its
Description-Content-Type), sanitised: no script, no event handler, no javascript: link, and no
image that loads by itself; an R package's Description is plain text."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from bs4 import BeautifulSoup

from repo.ui.readme import render

from .builders import META, SDIST_NAME, r_description, r_form, r_source, sdist, twine_form, wheel
from .test_ui_channels import upload
from .webui import text

pytestmark = pytest.mark.usefixtures("fast_passwords")

MARKDOWN = "text/markdown"


@pytest.mark.parametrize(
    "content_type, source, expected",
    [
        (MARKDOWN, "# Title\n\nSome **bold** text\n", "<strong>bold</strong>"),
        ("text/markdown; charset=UTF-8; variant=GFM", "~~gone~~ | a |\n|---|\n| b |",
         "<del>gone</del>"),
        ("text/markdown; variant=CommonMark", "*em*", "<em>em</em>"),
        ("text/x-rst", "Title\n=====\n\nSome *emphasis*\n", "<em>emphasis</em>"),
        # PEP 566: no content type is reStructuredText.
        (None, "Title\n=====\n\n``code``\n", '<span class="docutils literal">code</span>'),
        ("text/plain", "<b>not bold</b>\nline two", "&lt;b&gt;not bold&lt;/b&gt;<br/>line two"),
        ("application/x-unknown", "*stays*", "*stays*"),
        ("text/markdown; variant=Unknown", "*stays*", "*stays*"),
        # Broken reStructuredText: PyPI shows it as plain text.
        ("text/x-rst", "Title\n===\n\n.. unknown-directive::\n", "unknown-directive"),
    ],
)  # fmt: skip
def test_descriptions_render_by_their_content_type(content_type, source, expected):
    assert expected in render(source, content_type)


def test_broken_rst_falls_back_to_the_plain_text():
    html = render("Title\n===\n\n.. unknown-directive::\n", "text/x-rst")
    assert html.startswith("Title<br/>===") and "<h3" not in html


# One hostile piece per paragraph: Markdown ends an HTML block at a blank line.
HOSTILE_MARKDOWN = """\
# Hello

<script>window.pwned=1</script>

<img src="x" onerror="window.pwned=1">

<a href="javascript:window.pwned=1">click</a> and [md link](javascript:window.pwned=1)

<iframe src="https://evil.example/"></iframe>

<svg onload="window.pwned=1"></svg>

<style>body{background:url(https://evil.example/css.png)}</style>

<a href="data:text/html,<script>alert(1)</script>">data</a>

<p style="background:url(https://evil.example/bg.png)">styled</p>

![tracker](https://evil.example/track.png)

[![build](https://img.example/badge.svg)](https://ci.example/)

<picture><source srcset="https://evil.example/p.png"><img src="//evil.example/pr.png"></picture>
"""
HOSTILE_RST = """\
Hello
=====

.. image:: https://evil.example/rst.png
   :alt: rst image

`click <javascript:window.pwned=1>`_ and `data <data:text/html,x>`_

.. |badge| image:: https://img.example/badge.svg
   :target: https://ci.example/

|badge|
"""
# reStructuredText's raw directive is off: such a description is shown as plain text.
RAW_RST = "Hello\n=====\n\n.. raw:: html\n\n   <script>window.pwned=1</script>\n"
LOADS_BY_ITSELF = ["script", "iframe", "img", "svg", "style", "object", "embed", "source",
                   "link", "meta", "form", "video", "audio"]  # fmt: skip
SAFE_SCHEMES = ("", "http", "https", "mailto")


def dangers(html: str) -> list[str]:
    """Whatever in `html` could run a script or load something without a click."""
    soup = BeautifulSoup(html, "html.parser")
    found = [tag.name for tag in soup.find_all(LOADS_BY_ITSELF)]
    for tag in soup.find_all(True):
        for name, value in tag.attrs.items():
            if name.startswith("on") or name in ("src", "srcset", "style", "background"):
                found.append(f"{tag.name}[{name}]")
            if name == "href" and urlsplit(value).scheme.lower() not in SAFE_SCHEMES:
                found.append(f"{tag.name}[href={value}]")
    return found


@pytest.mark.parametrize("source, content_type", [(HOSTILE_MARKDOWN, MARKDOWN),
                                                  (HOSTILE_RST, "text/x-rst"),
                                                  (RAW_RST, "text/x-rst")])  # fmt: skip
def test_a_hostile_description_loses_scripts_handlers_and_loading_images(source, content_type):
    html = render(source, content_type)
    assert dangers(html) == []
    assert "Hello" in BeautifulSoup(html, "html.parser").get_text()


def test_the_danger_check_finds_what_it_looks_for():
    hostile = '<img src="x"><a href="javascript:x">a</a><p onclick="x" style="y">p</p>'
    assert dangers(hostile) == ["img", "img[src]", "a[href=javascript:x]", "p[onclick]",
                                "p[style]"]  # fmt: skip


def test_a_remote_image_becomes_a_link_the_user_may_follow():
    html = render(HOSTILE_MARKDOWN, MARKDOWN)
    assert '<a href="https://evil.example/track.png" rel="nofollow">[image: tracker]</a>' in html
    assert '<a href="//evil.example/pr.png" rel="nofollow">[image: image]</a>' in html
    # A badge inside a link keeps the link and shows its alternative text.
    assert '<a href="https://ci.example/" rel="nofollow">build</a>' in html
    rst = render(HOSTILE_RST, "text/x-rst")
    assert '<a href="https://evil.example/rst.png" rel="nofollow">[image: rst image]</a>' in rst
    assert '<a href="https://ci.example/" rel="nofollow">badge</a>' in rst


README_META = META + b"Description-Content-Type: text/markdown\n\n# Demo readme\n\nIt *works*.\n"


@pytest.fixture
def alice(repo, visitor):
    """alice, signed in, owns the private channel 'secret' (test_ui_channels.upload's)."""
    repo.owner_with_channel("alice", "secret")
    visitor.login("alice")
    return visitor


def test_a_wheels_readme_is_rendered_on_its_package_page(client, repo, alice):
    upload(client, repo, twine_form(wheel(README_META)))
    page = alice.get("/channels/secret/pypi/demo-pkg")
    assert '<h2 id="description">Description</h2>' in text(page)
    assert ">Demo readme<" in text(page) and "<em>works</em>" in text(page)
    assert "img-src 'self' data:" in page.headers["Content-Security-Policy"]
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]


def test_an_sdists_readme_comes_from_its_pkg_info(client, repo, alice):
    hostile = META + b"Description-Content-Type: text/markdown\n\n" + HOSTILE_MARKDOWN.encode()
    upload(client, repo, twine_form(sdist(hostile), SDIST_NAME))
    page = text(alice.get("/channels/secret/pypi/demo-pkg"))
    shown = page.split('<h2 id="description">')[1].split("</section>")[0]
    assert ">Hello<" in shown and "[image: tracker]" in shown
    assert dangers(shown) == []


def test_a_project_without_a_description_has_no_description_section(client, repo, alice):
    upload(client, repo, twine_form())
    assert 'id="description"' not in text(alice.get("/channels/secret/pypi/demo-pkg"))


def test_an_r_packages_description_is_plain_text(client, repo, alice):
    description = r_description() + b"Description: Tools for *ABC* <b>bold</b>\n  and more.\n"
    upload(client, repo, r_form(r_source(description)))
    page = text(alice.get("/channels/secret/cran/abc"))
    shown = page.split('id="description"')[1]
    assert '<div class="readme plain-text">' in shown
    assert "Tools for *ABC* &lt;b&gt;bold&lt;/b&gt;" in shown and "<b>" not in shown


def test_the_readmes_headings_sit_under_the_pages_own():
    html = render("# One\n\n## Two\n\n#### Four\n\n###### Six\n", MARKDOWN)
    levels = [tag.name for tag in BeautifulSoup(html, "html.parser").find_all(True)
              if tag.name.startswith("h")]  # fmt: skip
    assert levels == ["h3", "h4", "h6", "h6"]


@pytest.mark.parametrize(("source", "content_type"), [
    (">" * 300 + " deep", "text/markdown"),
    ("".join("  " * level + "- item\n\n" for level in range(300)), "text/x-rst"),
])  # fmt: skip
def test_a_description_nested_past_the_parsers_shows_as_plain_text(client, repo, alice, source,
                                                                   content_type):  # fmt: skip
    meta = META + f"Description-Content-Type: {content_type}\n\n".encode() + source.encode()
    upload(client, repo, twine_form(wheel(meta)))

    page = alice.get("/channels/secret/pypi/demo-pkg")

    assert page.status_code == 200
    shown = text(page).split('<h2 id="description">')[1].split("</section>")[0]
    assert "deep" in shown or "item" in shown


def test_a_description_past_the_limit_is_cut_and_plain():
    long = "*word* " * 40_000

    shown = render(long, "text/markdown")

    assert "<em>" not in shown and shown.endswith("[...]")
    assert len(shown) < 300_000
