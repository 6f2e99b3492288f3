"""Which URLs below a channel's cran/ are repository files, and what they name."""

import pytest

from repo.cran.paths import CranPath, parse


@pytest.mark.parametrize(
    "path, expected",
    [
        ("src/contrib/PACKAGES", CranPath("src/contrib", index="PACKAGES")),
        ("src/contrib/PACKAGES.gz", CranPath("src/contrib", index="PACKAGES.gz")),
        ("src/contrib/PACKAGES.rds", CranPath("src/contrib", index="PACKAGES.rds")),
        ("src/contrib/Meta/archive.rds", CranPath("src/contrib", index="Meta/archive.rds")),
        ("src/contrib/abc_2.1.tar.gz", CranPath("src/contrib", file="abc_2.1.tar.gz")),
        ("src/contrib/Archive/abc/abc_2.0.tar.gz",
         CranPath("src/contrib", file="abc_2.0.tar.gz", archived_package="abc")),
        ("src/contrib/archive/abc/abc_2.0.tar.gz",
         CranPath("src/contrib", file="abc_2.0.tar.gz", archived_package="abc")),
        ("bin/windows/contrib/4.2/PACKAGES.rds",
         CranPath("bin/windows/contrib/4.2", index="PACKAGES.rds")),
        ("bin/windows/contrib/4.10/abc_2.1.zip",
         CranPath("bin/windows/contrib/4.10", file="abc_2.1.zip")),
        ("bin/macosx/contrib/4.2/PACKAGES", CranPath("bin/macosx/contrib/4.2", index="PACKAGES")),
        ("bin/macosx/big-sur-arm64/contrib/4.5/abc_2.1.tgz",
         CranPath("bin/macosx/big-sur-arm64/contrib/4.5", file="abc_2.1.tgz")),
        ("bin/macosx/sonoma-arm64/contrib/4.6/PACKAGES.gz",
         CranPath("bin/macosx/sonoma-arm64/contrib/4.6", index="PACKAGES.gz")),
        ("bin/linux/noble-x86_64/contrib/4.6/PACKAGES",
         CranPath("bin/linux/noble-x86_64/contrib/4.6", index="PACKAGES")),
        ("bin/linux/" + "x" * 20 + "-" + "y" * 19 + "/contrib/4.6/PACKAGES",
         CranPath("bin/linux/" + "x" * 20 + "-" + "y" * 19 + "/contrib/4.6", index="PACKAGES")),
        ("bin/windows/contrib/10.12/PACKAGES",
         CranPath("bin/windows/contrib/10.12", index="PACKAGES")),
    ],
)  # fmt: skip
def test_repository_paths(path, expected):
    assert parse(path) == expected


@pytest.mark.parametrize(
    "path",
    [
        "src/PACKAGES",
        "src/contrib/",
        "src/contrib/../../etc/passwd",
        "src/contrib/Archive/abc/../x.tar.gz",
        "src/contrib/.hidden",
        "bin/windows/contrib/PACKAGES",
        "bin/windows/contrib/latest/PACKAGES",
        "bin/macosx/el-capitan/contrib/4.2/PACKAGES",
        "bin/windows/contrib/4.2/Meta/archive.rds",
        "bin/windows/contrib/4.2/Archive/abc/abc_2.0.zip",
        "bin/linux/Noble/contrib/4.6/PACKAGES",
        # Review finding 4: made-up trees that would each have cost an index on disk.
        "bin/windows/contrib/4.123/PACKAGES",
        "bin/windows/contrib/123.4/PACKAGES",
        "bin/windows/contrib/4." + "9" * 240 + "/PACKAGES",
        "bin/linux/" + "x" * 200 + "-y/contrib/4.6/PACKAGES.gz",
        "bin/linux/" + "x" * 20 + "-" + "y" * 20 + "/contrib/4.6/PACKAGES",
        "src/contrib/" + "a" * 256,
        # Review finding 8: a trailing newline is not the end of the name.
        "src/contrib/PACKAGES\n",
        "src/contrib/abc_2.1.tar.gz\n",
        "src/contrib/Archive/abc/abc_2.0.tar.gz\n",
    ],
)
def test_other_paths_are_not_repository_files(path):
    assert parse(path) is None
