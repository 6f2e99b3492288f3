"""Real wheels and sdists from setuptools, hatchling and flit, each writing every multiple-use
core-metadata field it can more than once, uploaded with twine and uv publish and installed
with pip and uv (issue 9: twine sends such a field once per value, pluggy 1.5.0 four
`platform` fields)."""

from __future__ import annotations

import email
import hashlib
import importlib.util
import json
import tarfile
import textwrap
import urllib.parse
import urllib.request
import zipfile
from dataclasses import dataclass
from email.message import Message
from pathlib import Path

import pytest

from .live import (
    build_dists,
    pip_install,
    run,
    sandboxed_env,
    simple_json,
    tool,
    twine_upload,
    uv_install,
    uv_publish,
)

# Markers that never hold: installing needs nothing from the index but the project itself.
DEPENDENCIES = ["absent-one>=1; python_version < '3'", "absent-two; sys_platform == 'nowhere'"]
EXTRAS = {"fast": ["absent-three"], "docs": ["absent-four"]}
CLASSIFIERS = ["Programming Language :: Python :: 3", "Operating System :: POSIX",
               "Operating System :: Microsoft :: Windows"]  # fmt: skip
URLS = {"Source": "https://example.invalid/src", "Tracker": "https://example.invalid/issues"}
KEYWORDS = ["alpha", "beta", "gamma"]


@dataclass(frozen=True)
class Project:
    """A project for one backend and the multiple-use fields its files must repeat."""

    name: str
    backend: str  # the module `python -m build --no-isolation` needs installed
    files: dict[str, str]
    repeated: str  # field names, separated by spaces


def common_files(module: str) -> dict[str, str]:
    return {
        f"{module}/__init__.py": f'"""Test project {module}."""\n\nNAME = {module!r}\n'
        '__version__ = "1.0"\n',
        "README.md": f"# {module}\n",
        "LICENSE": "MIT License\n",
        "NOTICE": "Notice\n",
    }


def build_system(requires: str, backend: str) -> str:
    return f'[build-system]\nrequires = ["{requires}"]\nbuild-backend = "{backend}"\n'


def toml_project(name: str, *lines: str) -> str:
    """The [project] table hatchling and flit share (PEP 621, PEP 639), plus `lines`."""
    return "\n".join([
        "[project]", f'name = "{name}"', 'readme = "README.md"', 'license = "MIT"',
        'license-files = ["LICENSE", "NOTICE"]', f"keywords = {KEYWORDS!r}",
        f"dependencies = {DEPENDENCIES!r}", *lines,
        "[project.urls]", *(f'{label} = "{url}"' for label, url in URLS.items()),
        "[project.optional-dependencies]", *(f"{extra} = {requirements!r}"
                                             for extra, requirements in EXTRAS.items()),
    ]) + "\n"  # fmt: skip


# Every field given to setup() rather than declared in pyproject.toml is one setuptools marks
# Dynamic (PEP 643). setuptools 84 writes Platform lines at Metadata-Version 2.4; it has no
# way to write Supported-Platform, Requires-External, Provides-Dist or Obsoletes-Dist.
SETUPTOOLS = Project(
    name="rd-setuptools",
    backend="setuptools",
    files={
        **common_files("rd_setuptools"),
        "pyproject.toml": build_system("setuptools>=68", "setuptools.build_meta"),
        "setup.py": textwrap.dedent(f"""\
            from setuptools import setup

            setup(
                name="rd-setuptools",
                version="1.0",
                packages=["rd_setuptools"],
                description="Every multiple-use field setuptools writes",
                long_description="# rd-setuptools\\n",
                long_description_content_type="text/markdown",
                platforms=["unix", "linux", "osx", "win32"],
                classifiers={CLASSIFIERS!r},
                install_requires={DEPENDENCIES!r},
                extras_require={EXTRAS!r},
                project_urls={URLS!r},
                license_files=["LICENSE", "NOTICE"],
                keywords={KEYWORDS!r},
                requires=["os", "sys"],  # PEP 314's Requires, Provides and Obsoletes
                provides=["rd_setuptools", "rd_setuptools_compat"],
                obsoletes=["rd_old", "rd_older"],
            )
            """),
    },
    repeated="Platform Classifier Requires-Dist Provides-Extra Project-URL License-File Dynamic"
    " Requires Provides Obsoletes",
)

# hatchling drops from Dynamic what a metadata hook fills in (here the classifiers) and keeps
# what only a wheel build may add (here authors and maintainers), so the sdist says Dynamic.
HATCHLING = Project(
    name="rd-hatch",
    backend="hatchling",
    files={
        **common_files("rd_hatch"),
        "rd_hatch_two/__init__.py": "NAME = 'rd_hatch_two'\n",
        "rd_ns/hatch/__init__.py": "NAME = 'rd_ns.hatch'\n",
        "rd_ns2/hatch/__init__.py": "NAME = 'rd_ns2.hatch'\n",
        "hatch_build.py": textwrap.dedent(f"""\
            from hatchling.metadata.plugin.interface import MetadataHookInterface


            class ClassifiersHook(MetadataHookInterface):
                def update(self, metadata):
                    metadata["classifiers"] = {CLASSIFIERS!r}
            """),
        "pyproject.toml": build_system("hatchling>=1.28", "hatchling.build")
        + toml_project(
            "rd-hatch",
            'description = "Every multiple-use field hatchling writes"',
            'dynamic = ["version", "classifiers", "authors", "maintainers"]',
            'import-names = ["rd_hatch", "rd_hatch_two", "rd_ns.hatch", "rd_ns2.hatch"]',
            'import-namespaces = ["rd_ns", "rd_ns2"]',
        )
        + textwrap.dedent("""\
            [tool.hatch.version]
            path = "rd_hatch/__init__.py"
            [tool.hatch.metadata.hooks.custom]
            [tool.hatch.build.targets.wheel]
            packages = ["rd_hatch", "rd_hatch_two", "rd_ns", "rd_ns2"]
            """),
    },
    repeated="Classifier Requires-Dist Provides-Extra Project-URL License-File Dynamic Import-Name"
    " Import-Namespace",
)

# flit writes no Dynamic, Platform or Requires-External line, and one Import-Name (it checks
# import-names against its one module).
FLIT = Project(
    name="rd-flit",
    backend="flit_core",
    files={
        **common_files("rd_flit"),
        "pyproject.toml": build_system("flit_core>=3.12", "flit_core.buildapi")
        + toml_project(
            "rd-flit", 'dynamic = ["version", "description"]', f"classifiers = {CLASSIFIERS!r}"
        ),
    },
    repeated="Classifier Requires-Dist Provides-Extra Project-URL License-File",
)

PROJECTS = {"setuptools": SETUPTOOLS, "hatchling": HATCHLING, "flit": FLIT}

# pluggy 1.5.0's setup.cfg, the upload issue 9 reports: four Platform lines in its wheel.
PLUGGY_STYLE = {
    **common_files("rd_pluggy_style"),
    "pyproject.toml": build_system("setuptools>=68", "setuptools.build_meta"),
    "setup.cfg": textwrap.dedent("""\
        [metadata]
        name = rd-pluggy-style
        version = 1.5.0
        description = plugin and hook calling mechanisms for python
        platforms = unix, linux, osx, win32
        [options]
        packages = rd_pluggy_style
        """),
}


def twine(url: str, paths, env: dict[str, str], token: str):
    return twine_upload(url, paths, env, token, "x-auth-token")


def uv(url: str, paths, env: dict[str, str], token: str):
    return uv_publish(url, paths, env, "__token__", token)


UPLOADERS = {"twine": twine, "uv": uv}  # each uploads into the channel of its name
INSTALLERS = {"pip": pip_install, "uv": uv_install}


def require_backend(module: str) -> None:
    """A missing build backend fails, it is never skipped."""
    if importlib.util.find_spec(module) is None:
        install = "`make test` installs it (pip install -e '.[test]')"
        pytest.fail(f"build backend {module} is not installed: {install}")


def core_metadata(path: Path) -> bytes:
    """The bytes of a wheel's .dist-info/METADATA or of an sdist's top-level PKG-INFO."""
    if path.name.endswith(".whl"):
        with zipfile.ZipFile(path) as wheel:
            (name,) = [n for n in wheel.namelist() if n.endswith(".dist-info/METADATA")]
            return wheel.read(name)
    with tarfile.open(path) as sdist:
        (member,) = [m for m in sdist.getmembers() if m.name.count("/") == 1
                     and m.name.endswith("/PKG-INFO")]  # fmt: skip
        extracted = sdist.extractfile(member)
        assert extracted is not None
        return extracted.read()


def fields_of(metadata: bytes) -> Message:
    return email.message_from_bytes(metadata)


def assert_repeats(project: Project, paths: list[Path]) -> None:
    """Each file really repeats each field it should, so no upload below passes vacuously."""
    for path in paths:
        fields = fields_of(core_metadata(path))
        for field in project.repeated.split():
            assert len(fields.get_all(field, [])) > 1, f"{path.name}: {field} not repeated"
        assert fields["Keywords"].split(",") == KEYWORDS, path.name


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def output(result) -> str:
    return result.stdout + result.stderr


def read_url(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.read()


@pytest.fixture(scope="module")
def token(live_server) -> str:
    """alice's user token; she owns a private channel per uploader and `pluggy`."""
    live_server.cli("user", "create", "alice", "--password", "alice-password")
    for channel in (*UPLOADERS, "pluggy"):
        live_server.cli("channel", "create", channel, "--owner", "alice")
    return live_server.cli("token", "create", "alice")


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """[wheel, sdist] of a backend's project, built once and checked to repeat its fields."""
    done: dict[str, list[Path]] = {}

    def build(backend: str) -> list[Path]:
        if backend not in done:
            project = PROJECTS[backend]
            require_backend(project.backend)
            paths = build_dists(tmp_path_factory.mktemp(backend), project.files)
            assert_repeats(project, paths)
            done[backend] = paths
        return done[backend]

    return build


@pytest.fixture(scope="module")
def uploaded(live_server, token, built, tmp_path_factory):
    """The result of uploading a backend's files with an uploader, once, into its channel."""
    env = sandboxed_env(tmp_path_factory.mktemp("uploader"))
    done = {}

    def upload(backend: str, uploader: str):
        if (backend, uploader) not in done:
            url = f"{live_server.url}/api/repo/{uploader}"
            done[backend, uploader] = UPLOADERS[uploader](url, built(backend), env, token)
        return done[backend, uploader]

    return upload


@pytest.mark.parametrize("uploader", UPLOADERS)
@pytest.mark.parametrize("backend", PROJECTS)
def test_upload_with_repeated_metadata_fields_is_accepted(
    live_server, token, built, uploaded, backend, uploader
):
    result = uploaded(backend, uploader)
    assert result.returncode == 0, output(result)
    assert "appears more than once" not in output(result)
    page_url = f"{live_server.url}/api/repo/t/{token}/{uploader}/simple/{PROJECTS[backend].name}/"
    listed = {
        f["filename"]: f
        for f in simple_json(live_server, uploader, PROJECTS[backend].name, token)["files"]
    }
    wheel, sdist = built(backend)
    assert set(listed) == {wheel.name, sdist.name}
    for path in (wheel, sdist):
        assert listed[path.name]["hashes"]["sha256"] == sha256(path.read_bytes())
        url = urllib.parse.urljoin(page_url, listed[path.name]["url"])
        assert read_url(url) == path.read_bytes()
    assert listed[sdist.name]["core-metadata"] is False
    metadata = core_metadata(wheel)
    assert listed[wheel.name]["core-metadata"] == {"sha256": sha256(metadata)}
    url = urllib.parse.urljoin(page_url, listed[wheel.name]["url"])
    assert read_url(url + ".metadata") == metadata  # PEP 658, byte for byte


@pytest.mark.parametrize("uploader", UPLOADERS)
@pytest.mark.parametrize("backend", PROJECTS)
def test_server_keeps_every_value_of_a_repeated_field(
    live_server, built, uploaded, backend, uploader
):
    result = uploaded(backend, uploader)
    assert result.returncode == 0, output(result)
    for path in built(backend):
        (row,) = live_server.query(
            "SELECT files.metadata FROM files JOIN channels ON channels.id = files.channel_id"
            " WHERE channels.name = ? AND files.filename = ?", uploader, path.name,
        )  # fmt: skip
        kept, fields = json.loads(row[0]), fields_of(core_metadata(path))
        assert kept["classifiers"] == fields.get_all("Classifier"), path.name
        assert kept["requires_dist"] == fields.get_all("Requires-Dist"), path.name
        assert kept["project_urls"] == fields.get_all("Project-URL"), path.name


@pytest.mark.parametrize("installer", INSTALLERS)
@pytest.mark.parametrize("uploader", UPLOADERS)
@pytest.mark.parametrize("backend", PROJECTS)
def test_installed_project_imports_with_metadata_intact(
    live_server, token, built, uploaded, client_env, tmp_path, backend, uploader, installer
):
    result = uploaded(backend, uploader)
    assert result.returncode == 0, output(result)
    project, site = PROJECTS[backend], tmp_path / "site"
    index = f"{live_server.url}/api/repo/t/{token}/{uploader}/simple"
    result = INSTALLERS[installer](client_env, site, index, project.name)
    assert result.returncode == 0, output(result)
    (dist_info,) = site.glob("*.dist-info")
    wheel = built(backend)[0]
    assert (dist_info / "METADATA").read_bytes() == core_metadata(wheel)
    fields = fields_of(core_metadata(wheel))
    names = [n.partition(";")[0].strip() for n in fields.get_all("Import-Name", [])]
    names = names or [project.name.replace("-", "_")]
    code = "".join(f"import {n}; print({n}.__file__, {n}.NAME)\n" for n in names)
    imported = run([tool("python"), "-c", code], {**client_env, "PYTHONPATH": str(site)},
                   cwd=tmp_path)  # fmt: skip
    assert imported.returncode == 0, output(imported)
    for line, name in zip(imported.stdout.splitlines(), names, strict=True):
        path, shown = line.rsplit(" ", 1)
        assert Path(path).is_relative_to(site) and shown == name, line


def test_twine_uploads_a_wheel_with_four_platform_lines(live_server, token, tmp_path,
                                                         client_env):  # fmt: skip
    require_backend("setuptools")
    wheel, _ = build_dists(tmp_path / "src", PLUGGY_STYLE)
    metadata = core_metadata(wheel)
    assert fields_of(metadata).get_all("Platform") == ["unix", "linux", "osx", "win32"]
    result = twine(f"{live_server.url}/api/repo/pluggy", [wheel], client_env, token)
    assert result.returncode == 0, output(result)
    (listed,) = simple_json(live_server, "pluggy", "rd-pluggy-style", token)["files"]
    assert listed["filename"] == wheel.name
    assert listed["hashes"]["sha256"] == sha256(wheel.read_bytes())
    assert listed["core-metadata"] == {"sha256": sha256(metadata)}
