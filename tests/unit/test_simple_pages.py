"""The simple index pages, read back with pypi-simple (a real PEP 503/691 client) and pinned."""

import json
from datetime import UTC, datetime

import pytest
from pypi_simple import IndexPage, ProjectPage, RepositoryPage

from repo.pypi.simple import (
    HTML,
    V1_HTML,
    V1_JSON,
    FileEntry,
    choose_format,
    project_list,
    project_page,
)

PIP = (
    "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html; q=0.1,"
    " text/html; q=0.01"
)
UV = (
    "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html;q=0.2,"
    " text/html;q=0.01"
)
BROWSER = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
BASE = "http://h/api/repo/ch/simple/demo/"
HOSTILE = '"><script>alert(1)</script>'
SHA_WHL, SHA_SDIST, SHA_OLD, SHA_META = "a" * 64, "b" * 64, "c" * 64, "d" * 64


def entry(filename: str, version: str, sha256: str, **overrides: object) -> FileEntry:
    fields: dict = dict(
        filename=filename,
        version=version,
        sha256=sha256,
        size=1231,
        upload_time="2026-11-26T14:23:15.123456Z",
        requires_python=None,
        metadata_sha256=None,
        yanked=False,
        yanked_reason=None,
    )
    return FileEntry(**(fields | overrides))


FILES = [
    entry("demo-0.9.tar.gz", "0.9", SHA_OLD, yanked=True),
    entry(
        "demo-1.0-py3-none-any.whl",
        "1.0",
        SHA_WHL,
        requires_python=">=3.8",
        metadata_sha256=SHA_META,
    ),
    entry(
        "demo-1.0.tar.gz",
        "1.0",
        SHA_SDIST,
        requires_python=">=3.8",
        size=1064,
        yanked=True,
        yanked_reason="broken build",
    ),
]
# (filename, sha256, requires_python, is_yanked, yanked_reason, metadata_digests)
EXPECTED = [
    ("demo-0.9.tar.gz", SHA_OLD, None, True, None, None),
    ("demo-1.0-py3-none-any.whl", SHA_WHL, ">=3.8", False, None, {"sha256": SHA_META}),
    ("demo-1.0.tar.gz", SHA_SDIST, ">=3.8", True, "broken build", None),
]


def parse(content_type: str, name: str, files: list[FileEntry]) -> ProjectPage:
    body = project_page(content_type, name, files)
    if content_type == V1_JSON:
        return ProjectPage.from_json_data(json.loads(body), base_url=BASE)
    return ProjectPage.from_html(name, body, base_url=BASE)


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        (PIP, V1_JSON),
        (UV, V1_JSON),
        ("application/vnd.pyx.simple.v1+msgpack, " + UV, V1_JSON),
        ("text/html", HTML),
        (BROWSER, HTML),
        (None, HTML),
        ("", HTML),
        ("*/*", HTML),
        ("*/*;q=0.5", HTML),
        ("text/html, image/gif, image/jpeg, *; q=.2, */*; q=.2", HTML),
        ("application/*", V1_JSON),
        (V1_HTML, V1_HTML),
        ("application/vnd.pypi.simple.latest+json", V1_JSON),
        ("application/vnd.pypi.simple.latest+html", V1_HTML),
        ("TEXT/HTML", HTML),
        ("text/html ; q = 0.5 , application/vnd.pypi.simple.v1+html ; q = 0.6", V1_HTML),
        ("text/html;q=0.5, application/vnd.pypi.simple.v1+html;q=0.5", V1_HTML),
        ("text/html;q=0, */*", V1_JSON),
        ("application/vnd.pypi.simple.v1+json;q=0, */*", HTML),
        ("application/vnd.pypi.simple.v1+json;q=0, application/*", V1_HTML),
        ("application/json", None),
        ("text/html;q=0", None),
        ("text/html;q=abc", None),
        ("text/html;q=2", None),
        ("*/*;q=0", None),
    ],
)
def test_choose_format_negotiates_accept(accept: str | None, expected: str | None) -> None:
    assert choose_format(accept) == expected


@pytest.mark.parametrize(
    ("format_param", "accept", "expected"),
    [
        (V1_HTML, PIP, V1_HTML),
        (HTML, UV, HTML),
        (V1_JSON, BROWSER, V1_JSON),
        (V1_JSON, None, V1_JSON),
        ("application/vnd.pypi.simple.latest+json", "text/html", V1_JSON),
        ("application/vnd.pypi.simple.latest+html", None, V1_HTML),
        ("json", PIP, None),
        ("application/json", None, None),
        ("", "text/html", None),
    ],
)
def test_format_param_overrides_accept(
    format_param: str, accept: str | None, expected: str | None
) -> None:
    assert choose_format(accept, format_param) == expected


def test_html_project_page_has_the_documented_shape() -> None:
    assert project_page(HTML, "demo", FILES[1:]) == (
        "<!DOCTYPE html>\n"
        '<html><head><meta name="pypi:repository-version" content="1.4">'
        "<title>Links for demo</title></head>\n"
        "<body><h1>Links for demo</h1>\n"
        f'<a href="../../files/{SHA_WHL}/demo-1.0-py3-none-any.whl#sha256={SHA_WHL}"'
        f' data-requires-python="&gt;=3.8" data-core-metadata="sha256={SHA_META}"'
        f' data-dist-info-metadata="sha256={SHA_META}">demo-1.0-py3-none-any.whl</a><br>\n'
        f'<a href="../../files/{SHA_SDIST}/demo-1.0.tar.gz#sha256={SHA_SDIST}"'
        ' data-requires-python="&gt;=3.8" data-yanked="broken build">demo-1.0.tar.gz</a><br>\n'
        "</body></html>\n"
    )


def test_v1_html_renders_the_same_page_as_text_html() -> None:
    assert project_page(V1_HTML, "demo", FILES) == project_page(HTML, "demo", FILES)


@pytest.mark.parametrize("content_type", [HTML, V1_JSON])
def test_project_page_parses_into_the_given_files(content_type: str) -> None:
    page = parse(content_type, "demo", FILES)
    assert page.repository_version == "1.4"
    # HTML's data-yanked="" reads back as reason "": pip and uv treat it as no reason too.
    got = [
        (
            p.filename,
            p.digests["sha256"],
            p.requires_python,
            p.is_yanked,
            p.yanked_reason or None,
            p.metadata_digests,
        )
        for p in page.packages
    ]
    assert got == EXPECTED
    assert [p.url for p in page.packages] == [
        f"http://h/api/repo/ch/files/{sha}/{filename}" for filename, sha, *_ in EXPECTED
    ]
    # HTML says nothing about a file without metadata; JSON says false.
    missing = False if content_type == V1_JSON else None
    assert [p.has_metadata for p in page.packages] == [missing, True, missing]
    assert [p.version for p in page.packages] == ["0.9", "1.0", "1.0"]


def test_json_project_page_carries_pep_700_fields_and_status() -> None:
    page = parse(V1_JSON, "demo", FILES)
    assert page.project == "demo"
    assert page.versions == ["0.9", "1.0"]
    assert [p.size for p in page.packages] == [1231, 1231, 1064]
    assert {p.upload_time for p in page.packages} == {
        datetime(2026, 11, 26, 14, 23, 15, 123456, tzinfo=UTC)
    }
    assert page.status is not None and page.status.value == "active"


def test_json_project_page_has_the_documented_keys() -> None:
    data = json.loads(project_page(V1_JSON, "demo", FILES))
    assert list(data) == ["meta", "name", "versions", "files", "project-status"]
    assert data["meta"] == {"api-version": "1.4"}
    assert data["project-status"] == {"status": "active"}
    old, whl, sdist = data["files"]
    assert whl == {
        "filename": "demo-1.0-py3-none-any.whl",
        "url": f"../../files/{SHA_WHL}/demo-1.0-py3-none-any.whl",
        "hashes": {"sha256": SHA_WHL},
        "requires-python": ">=3.8",
        "core-metadata": {"sha256": SHA_META},
        "dist-info-metadata": {"sha256": SHA_META},
        "size": 1231,
        "upload-time": "2026-11-26T14:23:15.123456Z",
        "yanked": False,
    }
    assert "requires-python" not in old
    assert (old["core-metadata"], old["dist-info-metadata"]) == (False, False)
    assert [old["yanked"], sdist["yanked"]] == [True, "broken build"]


def test_versions_sort_by_pep_440_not_by_string() -> None:
    files = [
        entry(f"demo-{v}.tar.gz", v, sha)
        for v, sha in [("1.10", "1" * 64), ("1.9", "2" * 64), ("1.0rc1", "3" * 64)]
    ]
    files.append(entry("demo-1.9-py3-none-any.whl", "1.9", "4" * 64))
    assert json.loads(project_page(V1_JSON, "demo", files))["versions"] == ["1.0rc1", "1.9", "1.10"]


@pytest.mark.parametrize("content_type", [HTML, V1_JSON])
def test_empty_project_page_lists_nothing(content_type: str) -> None:
    page = parse(content_type, "demo", [])
    assert page.packages == []
    assert page.versions == ([] if content_type == V1_JSON else None)


HOSTILE_FILE = entry(
    "demo-1.0.tar.gz", "1.0", SHA_SDIST, requires_python=HOSTILE, yanked=True, yanked_reason=HOSTILE
)


def test_html_escapes_hostile_attribute_values() -> None:
    body = project_page(HTML, "demo", [HOSTILE_FILE])
    assert "<script>" not in body
    escaped = "&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;"
    assert f'data-requires-python="{escaped}" data-yanked="{escaped}">' in body


@pytest.mark.parametrize("content_type", [HTML, V1_JSON])
def test_hostile_values_read_back_unchanged(content_type: str) -> None:
    (package,) = parse(content_type, "demo", [HOSTILE_FILE]).packages
    assert (package.requires_python, package.yanked_reason) == (HOSTILE, HOSTILE)


@pytest.mark.parametrize("content_type", [HTML, V1_JSON])
def test_filename_is_percent_encoded_in_the_url_only(content_type: str) -> None:
    local = entry("demo-1.0+local.1-py3-none-any.whl", "1.0+local.1", SHA_WHL)
    (package,) = parse(content_type, "demo", [local]).packages
    assert package.filename == "demo-1.0+local.1-py3-none-any.whl"
    assert (
        package.url == f"http://h/api/repo/ch/files/{SHA_WHL}/demo-1.0%2Blocal.1-py3-none-any.whl"
    )
    assert package.version == "1.0+local.1"


PROJECTS = [("Demo.Pkg", "demo-pkg"), ("other_thing", "other-thing")]


def test_html_root_page_links_normalized_names_with_display_text() -> None:
    body = project_list(HTML, PROJECTS)
    index = IndexPage.from_html(body)
    assert (index.projects, index.repository_version) == (["Demo.Pkg", "other_thing"], "1.4")
    links = RepositoryPage.from_html(body, base_url="http://h/api/repo/ch/simple/").links
    assert [link.url for link in links] == [
        "http://h/api/repo/ch/simple/demo-pkg/",
        "http://h/api/repo/ch/simple/other-thing/",
    ]


def test_json_root_page_lists_display_names() -> None:
    body = project_list(V1_JSON, PROJECTS)
    assert json.loads(body) == {
        "meta": {"api-version": "1.4"},
        "projects": [{"name": "Demo.Pkg"}, {"name": "other_thing"}],
    }
    assert IndexPage.from_json_data(json.loads(body)).projects == ["Demo.Pkg", "other_thing"]
