"""FakeCRAN: a static CRAN tree of real R package archives, indexed by real R
(`tools::write_PACKAGES`, `Meta/archive.rds` from `file.info`), served with the faults and
log of every fake upstream."""

from __future__ import annotations

import shutil
import tarfile
import threading
import zipfile
from pathlib import Path

from ..live import R_TIMEOUT, run, tool
from .faults import Fault, Listener, Request, Response, Upstream

# platform -> (tree under the root for R x.y, write_PACKAGES type, file suffix), as on CRAN.
BINARY_TREES = {
    "windows": ("bin/windows/contrib/{r}", "win.binary", ".zip"),
    "macosx": ("bin/macosx/big-sur-arm64/contrib/{r}", "mac.binary", ".tgz"),
}

# Arguments: the root, then TYPE=TREE for each tree to index. CRAN's archive.rds is a list
# named by package of file.info() data frames whose row names are "<pkg>/<file>".
INDEX_R = """
args <- commandArgs(TRUE)
root <- args[[1]]
for (tree in strsplit(args[-1], "=", fixed = TRUE))
  tools::write_PACKAGES(file.path(root, tree[[2]]), type = tree[[1]])
archive <- file.path(root, "src/contrib/Archive")
packages <- list.files(archive)
info <- lapply(packages, function(p) {
  files <- list.files(file.path(archive, p), full.names = TRUE)
  rows <- file.info(files)
  rownames(rows) <- file.path(p, basename(files))
  rows
})
dir.create(file.path(root, "src/contrib/Meta"), showWarnings = FALSE)
saveRDS(setNames(info, packages), file.path(root, "src/contrib/Meta/archive.rds"))
"""


class FakeCRAN(Upstream):
    """`src/contrib` (PACKAGES, .gz, .rds, tarballs, Archive/, Meta/archive.rds) and binary
    trees under `root`, served at `url`; faults keyed by path pattern."""

    def __init__(self, root: Path) -> None:
        super().__init__()
        self.root = root.resolve()
        self._lock = threading.Lock()  # no answer reads a tree R is rewriting
        self._trees = {"src/contrib": "source"}
        (self.root / "src/contrib/Archive").mkdir(parents=True, exist_ok=True)
        self._index()
        self.server = Listener(self, "cran", self._serve)
        self.listeners = [self.server]
        self.start()

    @property
    def url(self) -> str:
        return self.server.url

    def add(self, *tarballs: Path) -> None:
        """Publish source packages (`R CMD build` output) and reindex: a package's current file
        moves to `Archive/<pkg>/` first, as CRAN does on a new release."""
        contrib = self.root / "src/contrib"
        with self._lock:
            for tarball in tarballs:
                package = tarball.name.split("_")[0]
                for old in contrib.glob(f"{package}_*.tar.gz"):  # R names have no "_"
                    (contrib / "Archive" / package).mkdir(exist_ok=True)
                    old.rename(contrib / "Archive" / package / old.name)
                shutil.copyfile(tarball, contrib / tarball.name)
            self._index()

    def add_binary(self, built: Path, platform: str, r_version: str) -> Path:
        """Publish what `R CMD INSTALL --build` made (a Linux .tar.gz) as the "windows" (.zip)
        or "macosx" (.tgz) binary for R `r_version` ("4.2"), replacing the package's previous
        one there, and reindex that tree; return its path."""
        tree, kind, suffix = BINARY_TREES[platform]
        tree = tree.format(r=r_version)
        package, version = built.name.split("_")[:2]
        target = self.root / tree / f"{package}_{version}{suffix}"
        with self._lock:
            target.parent.mkdir(parents=True, exist_ok=True)
            for old in target.parent.glob(f"{package}_*{suffix}"):
                old.unlink()
            if suffix == ".zip":
                _zip_of_tar(built, target)
            else:
                shutil.copyfile(built, target)
            self._trees[tree] = kind
            self._index()
        return target

    def _index(self) -> None:
        trees = [f"{kind}={tree}" for tree, kind in self._trees.items()]
        result = run([tool("Rscript"), "--vanilla", "-e", INDEX_R, str(self.root), *trees],
                     {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}, R_TIMEOUT)  # fmt: skip
        assert result.returncode == 0, result.stdout + result.stderr

    def _serve(self, request: Request, fault: Fault) -> Response:
        path = (self.root / request.path.lstrip("/")).resolve()
        with self._lock:
            if not path.is_relative_to(self.root) or not path.is_file():
                return Response(404, b"Not Found\n")
            return Response(200, path.read_bytes(), {"Content-Type": "application/octet-stream"})


def _zip_of_tar(tar_path: Path, zip_path: Path) -> None:
    """A Windows binary is a zip of the installed package directory; the Linux build is a tar
    of the same directory."""
    with tarfile.open(tar_path) as tar, zipfile.ZipFile(zip_path, "w") as archive:
        for member in tar.getmembers():
            if member.isfile():
                archive.writestr(member.name, tar.extractfile(member).read())
