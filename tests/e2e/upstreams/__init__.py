"""Local upstreams for the mirror's end-to-end tests: a fault-injecting PyPI (index and files
on two ports), a CRAN tree indexed by real R, and a socket that never answers."""

from .cran import FakeCRAN
from .faults import BlackHole, Fault, Request
from .pypi import FakePyPI, PyPIFile

__all__ = ["BlackHole", "FakeCRAN", "FakePyPI", "Fault", "PyPIFile", "Request"]
