"""Mirror channels: a channel that also serves an upstream index (PyPI or any PEP 503/691 index;
CRAN or any CRAN-like repository) as a pull-through cache, with its private uploads on top.

The faces, one module each (shared/protocols/mirror.md has the requirements R0-R31):
- settings: a channel's upstreams (`repo mirror create/list/remove`) and their rules
  (reserved names and prefixes that upstream is never asked for, names merged on purpose).
- upstream: the HTTP client: only the configured hosts, timeouts, conditional requests, the
  circuit breaker kept in the database, credentials to the source's host only.
- fetch: single flight across threads and worker processes (a lease row per key), and the
  streaming of a file to its first client while it is stored and hashed.
- pypi_pages and cran: what the pypi/ and cran/ routes ask for what a channel lacks, answered
  from stored rows (page state, entries, merged indexes, the private-name filter).
- pypi and cran_indexes: asking upstream for pages and indexes, and storing what it says.
- prefetch: filling the cache ahead of need, through the same paths.
- quota: a mirror's size quota, least recently downloaded files evicted after each fetch.

mirror/ imports the pypi/ and cran/ parsers and renderers, never their routes. Everything the
cache knows lives in the database and the blob store, so a restart with the upstream gone still
serves what was cached.
"""
