"""The per-worker cache of rendered index pages."""

from repo.pagecache import PageCache

from .builders import send, token_auth, twine_form


def test_renders_once_per_key():
    cache, calls = PageCache(), []

    def render():
        calls.append(1)
        return "page"

    assert cache.get(("ch", 1), render) == b"page"
    assert cache.get(("ch", 1), render) == b"page"
    assert len(calls) == 1


def test_least_recently_used_pages_go_first_past_the_limit():
    cache = PageCache(limit=10)
    cache.get("a", lambda: "aaaa")
    cache.get("b", lambda: "bbbb")
    cache.get("a", lambda: "new")  # a is now the most recently used
    cache.get("c", lambda: "cccc")

    assert cache.get("a", lambda: "fresh") == b"aaaa"
    assert cache.get("b", lambda: "fresh") == b"fresh"


def test_a_page_larger_than_the_limit_is_served_but_not_kept():
    cache = PageCache(limit=3)

    assert cache.get("big", lambda: "12345") == b"12345"
    assert cache.get("big", lambda: "again") == b"again"


def test_upload_shows_on_the_next_request(client, repo):
    made = repo.owner_with_channel("alice", "ch")
    auth = token_auth(repo.token(made.user_id))
    json = {"Accept": "application/vnd.pypi.simple.v1+json", **auth}
    assert send(client, "GET", "/api/repo/ch/simple/", headers=json).json["projects"] == []

    assert send(client, "POST", "/api/repo/ch/", data=twine_form(), headers=auth).status_code == 200

    projects = send(client, "GET", "/api/repo/ch/simple/", headers=json).json["projects"]
    assert projects == [{"name": "Demo.Pkg"}]
