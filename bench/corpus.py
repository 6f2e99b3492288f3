"""The packages every server is loaded with: synthetic projects built in-process (thousands of
tiny wheels and sdists in seconds, where `python -m build` would take an hour), real projects
downloaded once from PyPI, and one large wheel for download throughput."""

from __future__ import annotations

import base64
import hashlib
import io
import os
import subprocess
import sys
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

# Ten real, mostly pure-Python projects that resolve to about 25 files on Python 3.11; pinned so
# that every run installs the same files. six and packaging are also dependencies of others.
REAL_PROJECTS = (
    "requests==2.32.3",
    "flask==3.1.0",
    "rich==13.9.4",
    "attrs==24.3.0",
    "python-dateutil==2.9.0.post0",
    "pytest==8.3.4",
    "tqdm==4.67.1",
    "pyparsing==3.2.0",
    "six==1.17.0",
    "packaging==24.2",
)
# Their dependencies, pinned too (as resolved on 2026-11-26), as a constraints file.
DEPENDENCIES = (
    "blinker==1.9.0",
    "certifi==2026.10.19.post1",
    "charset-normalizer==3.5.3",
    "click==8.5.1",
    "idna==3.20",
    "iniconfig==2.3.1",
    "itsdangerous==2.2.0",
    "jinja2==3.1.6",
    "markdown-it-py==4.3.0",
    "markupsafe==3.0.4",
    "mdurl==0.1.2",
    "pluggy==1.7.0",
    "pygments==2.21.0",
    "urllib3==2.8.0",
    "werkzeug==3.1.9",
)
# A fixed timestamp for every archive member, so the corpus is byte-for-byte reproducible.
EPOCH = (2024, 1, 1, 0, 0, 0)
CHUNK = 1024 * 1024


@dataclass(frozen=True)
class Project:
    """One synthetic project and its files, in upload order."""

    name: str
    files: tuple[Path, ...]


def synthetic(root: Path, count: int, extra_files: int) -> list[Project]:
    """`count` projects with one wheel each; `extra_files` of them, spread evenly, also have an
    sdist (the issue's load: 6133 files for 5000 projects). Built once, then reused."""
    root.mkdir(parents=True, exist_ok=True)
    projects = []
    for i in range(count):
        name = f"synth-{i:05d}"
        with_sdist = (i + 1) * extra_files // count != i * extra_files // count
        paths = [_write_once(root / _wheel_name(name, "1.0"), lambda n=name: wheel(n, "1.0"))]
        if with_sdist:
            sdist_path = root / f"{_module(name)}-1.0.tar.gz"
            paths.append(_write_once(sdist_path, lambda n=name: sdist(n, "1.0")))
        projects.append(Project(name, tuple(paths)))
    return projects


def _write_once(path: Path, make) -> Path:
    if not path.exists():
        path.write_bytes(make())
    return path


def _module(name: str) -> str:
    return name.replace("-", "_").replace(".", "_").lower()


def _wheel_name(name: str, version: str) -> str:
    return f"{_module(name)}-{version}-py3-none-any.whl"


def _metadata(name: str, version: str) -> bytes:
    return (
        f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
        f"Summary: Synthetic benchmark project {name}\nRequires-Python: >=3.8\n\n"
        f"# {name}\n\nA project of the benchmark's synthetic load.\n"
    ).encode()


def wheel(name: str, version: str) -> bytes:
    """A valid pure-Python wheel (METADATA, WHEEL, RECORD and a module)."""
    buffer = io.BytesIO()
    _write_wheel(buffer, name, version, 0)
    return buffer.getvalue()


def _write_wheel(target: BinaryIO, name: str, version: str, payload_size: int) -> None:
    """Write a wheel to `target`; with `payload_size`, add that many random bytes as a
    stored member, streamed (the 1 GiB file is never in memory)."""
    module = _module(name)
    info = f"{module}-{version}.dist-info"
    members = {
        f"{module}/__init__.py": f"NAME = {name!r}\n".encode(),
        f"{info}/METADATA": _metadata(name, version),
        f"{info}/WHEEL": b"Wheel-Version: 1.0\nGenerator: bench\nRoot-Is-Purelib: true\n"
        b"Tag: py3-none-any\n",
    }
    record = [f"{path},sha256={_urlsafe(data)},{len(data)}" for path, data in members.items()]
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        for path, data in members.items():
            archive.writestr(zipfile.ZipInfo(path, EPOCH), data)
        if payload_size:
            data_path = f"{module}/payload.bin"
            digest = hashlib.sha256()
            member = zipfile.ZipInfo(data_path, EPOCH)
            with archive.open(member, "w", force_zip64=True) as out:
                left = payload_size
                while left:
                    chunk = os.urandom(min(CHUNK, left))
                    digest.update(chunk)
                    out.write(chunk)
                    left -= len(chunk)
            encoded = base64.urlsafe_b64encode(digest.digest()).rstrip(b"=").decode()
            record.append(f"{data_path},sha256={encoded},{payload_size}")
        record.append(f"{info}/RECORD,,")
        archive.writestr(zipfile.ZipInfo(f"{info}/RECORD", EPOCH), "\n".join(record) + "\n")


def _urlsafe(data: bytes) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def sdist(name: str, version: str) -> bytes:
    """A valid sdist (PEP 625 name, PKG-INFO at the top) with a pyproject.toml."""
    stem = f"{_module(name)}-{version}"
    members = {
        f"{stem}/PKG-INFO": _metadata(name, version),
        f"{stem}/pyproject.toml": (
            f'[build-system]\nrequires = ["setuptools"]\nbuild-backend = "setuptools.build_meta"\n'
            f'[project]\nname = "{name}"\nversion = "{version}"\n'
        ).encode(),
        f"{stem}/{_module(name)}/__init__.py": f"NAME = {name!r}\n".encode(),
    }
    return targz(members)


def targz(members: dict[str, bytes]) -> bytes:
    """A reproducible .tar.gz of in-memory files."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz", format=tarfile.PAX_FORMAT) as archive:
        for path, data in members.items():
            member = tarfile.TarInfo(path)
            member.size, member.mtime, member.mode = len(data), 1704067200, 0o644
            archive.addfile(member, io.BytesIO(data))
    return buffer.getvalue()


def big_wheel(root: Path, name: str, size: int) -> Path:
    """A wheel of `size` random (incompressible) bytes and a little more; reused if there."""
    path = root / _wheel_name(name, "1.0")
    if not (path.exists() and size <= path.stat().st_size < size + CHUNK):
        with open(path, "wb") as out:
            _write_wheel(out, name, "1.0", size)
    return path


def real(root: Path) -> list[Path]:
    """The real projects and their dependencies, downloaded once with pip into `root`."""
    stamp = root / ".complete"
    if not stamp.exists():
        root.mkdir(parents=True, exist_ok=True)
        constraints = root / "constraints.txt"
        constraints.write_text("\n".join(DEPENDENCIES) + "\n")
        pip = [sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check"]
        pip += ["--only-binary", ":all:", "--dest", str(root), "-c", str(constraints)]
        subprocess.run([*pip, *REAL_PROJECTS], check=True, timeout=600)
        stamp.touch()
    return sorted(p for p in root.iterdir() if p.suffix in (".whl", ".gz"))
