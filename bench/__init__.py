"""The benchmark of repo against pypiserver, devpi and nginx (`make bench`; bench/README.md)."""
