"""Property tests (hypothesis) of every parser a client's bytes reach: whatever comes in, each
either answers or raises Invalid (a 400), never anything else (a 500, which twine would
re-send five times); and what they emit keeps its shape."""

from __future__ import annotations

import io
import os
import re
import shutil
import tarfile
import tempfile
import zipfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from repo.cran import description, index, paths
from repo.errors import Invalid, one_line
from repo.pypi import metadata, simple

from .builders import META, R_DESCRIPTION, Special, r_source, sdist, wheel, write_tar

FUZZ = settings(max_examples=300, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture])  # fmt: skip


def _windows_binary() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zipped:
        zipped.writestr(
            "abc/DESCRIPTION", R_DESCRIPTION + b"Built: R 4.4.1; ; 2026-01-01; windows\n"
        )
        zipped.writestr("abc/R/abc", b"f <- 1\n" * 50)
    return buffer.getvalue()


# Byte flips and truncations of real archives of every kind reach the deep parser paths.
SEEDS = [wheel(), sdist(), r_source(), _windows_binary()]


def mutated(seed: bytes, flips: list[tuple[int, int]], cut: int) -> bytes:
    data = bytearray(seed[: max(cut, 1)])
    for position, value in flips:
        data[position % len(data)] = value
    return bytes(data)


archives = st.one_of(
    st.binary(max_size=2048),
    st.builds(mutated, st.sampled_from(SEEDS),
              st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), max_size=8),
              st.integers(1, 4096)),
)  # fmt: skip


@FUZZ
@given(data=archives, name=st.sampled_from(["demo_pkg-1.0-py3-none-any.whl",
                                             "demo_pkg-1.0.tar.gz"]))  # fmt: skip
def test_python_distribution_reader_answers_or_refuses(tmp_path, data, name):
    path = tmp_path / "upload"
    path.write_bytes(data)
    try:
        dist = metadata.read_distribution(str(path), name)
    except Invalid as refused:
        assert one_line(refused.message) == refused.message
    else:
        assert dist.normalized == "demo-pkg"


@FUZZ
@given(filename=st.text(max_size=300))
def test_python_filename_check_answers_or_refuses(filename):
    try:
        kind = metadata.filetype_for(filename)
    except Invalid:
        return
    assert kind in (metadata.WHEEL, metadata.SDIST)
    assert "/" not in filename and "\\" not in filename and filename.isascii()


@FUZZ
@given(data=archives, filetype=st.sampled_from([description.SOURCE, description.BINARY]))
def test_r_package_reader_answers_or_refuses(tmp_path, data, filetype):
    path = tmp_path / "upload"
    path.write_bytes(data)
    try:
        package = description.read_package(str(path), filetype)
    except Invalid:
        return
    assert re.fullmatch(r"[A-Za-z][A-Za-z0-9.]*[A-Za-z0-9]", package.package)


@FUZZ
@given(data=st.one_of(st.binary(max_size=1024),
                      st.builds(mutated, st.just(R_DESCRIPTION),
                                st.lists(st.tuples(st.integers(0, 999), st.integers(0, 255)),
                                         max_size=6), st.integers(1, 200))))  # fmt: skip
def test_dcf_parser_answers_or_refuses(data):
    try:
        fields = description.parse_dcf(data)
    except Invalid:
        return
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in fields.items())


@FUZZ
# zipfile itself cannot write a name that is empty once cut at a NUL.
@given(
    names=st.lists(
        st.text(min_size=1, max_size=20).filter(lambda n: n.split("\0")[0]), max_size=5, unique=True
    )
)
def test_zip_member_names_never_crash_the_r_reader(tmp_path, names):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zipped:
        for name in names:
            zipped.writestr(name, b"Package: abc\nVersion: 1.0\n")
    path = tmp_path / "abc_1.0.zip"
    path.write_bytes(buffer.getvalue())
    try:
        description.read_package(str(path), description.BINARY)
    except Invalid:
        pass


@FUZZ
@given(accept=st.one_of(st.none(), st.text(max_size=200)), fmt=st.one_of(st.none(), st.text()))
def test_accept_negotiation_never_raises(accept, fmt):
    assert simple.choose_format(accept, fmt) in (None, simple.HTML, simple.V1_HTML, simple.V1_JSON)


@FUZZ
@given(path=st.text(max_size=120))
def test_cran_paths_never_escape(path):
    wanted = paths.parse(path)
    if wanted is not None and wanted.file is not None:
        assert "/" not in wanted.file and not wanted.file.startswith(".")


@FUZZ
@given(text=st.text())
def test_reason_phrases_are_always_safe(text):
    line = one_line(text)
    assert line.isascii() and "\r" not in line and "\n" not in line and len(line) <= 200
    line.encode("latin-1")


# Fields, each maybe folded onto continuation lines (a space, then something) as write.dcf
# folds them: no line of a value can start a field or a record of its own.
DCF_RECORD = re.compile(r"(?:[A-Za-z0-9._@/-]+: [^\n]*\n(?: [^\n]*\S[^\n]*\n)*)+")


@FUZZ
@given(values=st.lists(st.text(max_size=40), min_size=1, max_size=4))
def test_packages_index_cannot_be_injected(values):
    entries = [
        index.Entry({"Package": f"p{i}", "Version": "1.0", "Depends": value, "License": value})
        for i, value in enumerate(values)
    ]
    text = index.build(entries, binary=False).packages.decode("utf-8")
    records = [record + "\n" for record in text.removesuffix("\n").split("\n\n")]
    assert len(records) == len(values)
    for i, record in enumerate(records):
        assert DCF_RECORD.fullmatch(record), record
        assert record.startswith(f"Package: p{i}\nVersion: 1.0\n")


# Unpacked the way R's internal untar() does, following symlinks, any archive a reader accepts
# stays inside its top directory: no file is written outside it, no symlink in it resolves
# outside it, no hard link in it copies a file from outside. `OUT` stands for a directory
# outside and `TOP` for the top directory; the tree is deep enough that a climb the checks
# missed still lands in tmp_path.
OUT, TOP = "/OUT", "TOP"
DEPTH = 30
step = st.sampled_from(["a", "b", "R", "a", "b", "R", "..", ".", "", "C:"])
relative = st.lists(step, min_size=1, max_size=4).map("/".join)
content = st.one_of(
    st.just(b"x"),
    relative,  # a symlink
    relative.map(lambda path: f"{OUT}/{path}"),
    st.builds(Special, st.just("hardlink"),
              st.one_of(relative, relative.map(lambda path: f"{TOP}/{path}"),
                        st.just(f"{OUT}/secret"))),
)  # fmt: skip
READERS = {"abc": (R_DESCRIPTION, "DESCRIPTION", lambda path: description.read_package(
               path, description.SOURCE)),
           "demo_pkg-1.0": (META, "PKG-INFO", lambda path: metadata.read_distribution(
               path, "demo_pkg-1.0.tar.gz"))}  # fmt: skip


def unpack_following_links(archive: Path, dest: Path) -> None:
    """What R's internal untar() does with each member, errors ignored: it opens paths through
    the symlinks it has made, and copies a hard link's target (named from `dest`)."""
    with tarfile.open(archive) as tar:
        for member in tar:
            path = os.path.join(dest, member.name)
            try:
                os.makedirs(os.path.dirname(path), exist_ok=True)
                if member.issym():
                    os.symlink(member.linkname, path)
                elif member.islnk():
                    shutil.copyfile(os.path.join(dest, member.linkname), path)
                else:
                    Path(path).write_bytes(tar.extractfile(member).read())
            except OSError:
                pass


def escapes(root: Path, top: Path, secret: Path) -> list[str]:
    """What unpacking left outside `top`, or inside it but pointing out of it."""
    before = {root / "upload", secret.parent, secret}
    before.update(root.joinpath(*["d"] * depth) for depth in range(1, DEPTH + 1))
    found = []
    for folder, dirs, files in os.walk(root):
        for path in (Path(folder, name) for name in dirs + files):
            if path != top and not path.is_relative_to(top):
                found += [] if path in before else [f"written outside: {path}"]
            elif path.is_symlink() and not Path(os.path.realpath(path)).is_relative_to(top):
                found.append(f"symlink out: {path}")
            elif path.is_file() and not path.is_symlink() and path.read_bytes() == b"secret":
                found.append(f"copied from outside: {path}")
    return found


@FUZZ
@given(members=st.lists(st.tuples(relative, content), max_size=6),
       top=st.sampled_from(sorted(READERS)))  # fmt: skip
def test_an_accepted_archive_unpacks_inside_its_top_directory(tmp_path, members, top):
    root = Path(tempfile.mkdtemp(dir=tmp_path))
    secret = root / "outside" / "secret"
    secret.parent.mkdir()
    secret.write_bytes(b"secret")
    dest = root.joinpath(*["d"] * DEPTH)
    dest.mkdir(parents=True)
    good, name, read = READERS[top]
    chosen = [(f"{top}/{name}", good)] + [
        (f"{top}/{path}", _placed(data, secret.parent, top)) for path, data in members
    ]
    archive = write_tar(root / "upload", chosen)
    try:
        read(str(archive))
    except Invalid:
        return
    unpack_following_links(archive, dest)
    assert escapes(root, dest / top, secret) == [], chosen


def _placed(data, outside: Path, top: str):
    """`data` with OUT and TOP replaced by the folder outside and the top directory."""
    if isinstance(data, str):
        return data.replace(OUT, str(outside))
    if isinstance(data, Special):
        return data._replace(target=data.target.replace(OUT, str(outside)).replace(TOP, top))
    return data
