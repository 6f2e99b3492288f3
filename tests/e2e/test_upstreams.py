"""The mirror's fake upstreams behave as PyPI and CRAN do for real clients (pip, uv, R and
remotes talk to them directly here), and every fault does what it says."""

from __future__ import annotations

import hashlib
import http.client
import json
import re
from datetime import UTC, datetime
from urllib.parse import urlsplit

import pytest

from .live import pip_download, rscript, sandboxed_env, uv_install
from .upstreams import FakeCRAN

JSON = "application/vnd.pypi.simple.v1+json"


def get(url: str, headers: dict[str, str] | None = None, timeout: float = 10):
    """(status, headers, body) of one GET, without following redirects."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    try:
        connection.request("GET", parts.path, headers=headers or {})
        response = connection.getresponse()
        return response.status, response.headers, response.read()
    finally:
        connection.close()


@pytest.fixture(scope="module")
def demo(fake_pypi, dists):
    """demo-pkg 1.0 (wheel and sdist, requires-python >=3.8) and 2.0 (yanked wheel)."""
    old = [fake_pypi.add(d, upload_time=datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC))
           for d in dists.build("Demo_Pkg", "1.0", requires_python=">=3.8")]  # fmt: skip
    new = fake_pypi.add(dists.build("Demo_Pkg", "2.0")[0], yanked="broken build")
    return [*old, new]


@pytest.fixture(autouse=True)
def honest(request):
    """Each test starts with no faults, no credentials and an empty log."""
    for name in ("fake_pypi", "fake_cran"):
        if name in request.fixturenames:
            request.getfixturevalue(name).reset()


def test_pip_downloads_from_the_index_and_files_ports(fake_pypi, demo, tmp_path):
    result = pip_download(fake_pypi.index_url, tmp_path / "out", sandboxed_env(tmp_path / "h"),
                          "demo-pkg==1.0", "--only-binary", ":all:")  # fmt: skip
    assert result.returncode == 0, result.stderr
    wheel = tmp_path / "out" / demo[0].filename
    assert hashlib.sha256(wheel.read_bytes()).hexdigest() == demo[0].sha256
    page = fake_pypi.log.requests("/simple/demo-pkg/")[0]
    file = fake_pypi.log.requests(demo[0].path)[0]
    assert (page.server, page.status, file.server, file.status) == ("index", 200, "files", 200)
    assert JSON in page.headers["Accept"] and page.headers["User-Agent"].startswith("pip/")


def test_uv_installs_and_reads_the_metadata_file(fake_pypi, demo, tmp_path):
    result = uv_install(sandboxed_env(tmp_path / "h"), tmp_path / "t", fake_pypi.index_url,
                        "demo-pkg<2")  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "t" / "demo_pkg" / "__init__.py").exists()
    assert fake_pypi.log.count(demo[0].path + ".metadata") == 1


def test_json_page_has_warehouse_fields(fake_pypi, demo):
    status, headers, body = get(fake_pypi.index_url + "demo-pkg/", {"Accept": JSON})
    page = json.loads(body)
    assert (status, headers["Content-Type"]) == (200, JSON)
    assert page["meta"] == {"api-version": "1.4", "_last-serial": fake_pypi.serial}
    assert (page["name"], page["versions"], page["project-status"]) == (
        "demo-pkg", ["1.0", "2.0"], {"status": "active"})  # fmt: skip
    wheel, sdist, yanked = page["files"]
    metadata = {"sha256": demo[0].metadata_sha256}
    assert wheel == {
        "filename": demo[0].filename, "url": demo[0].url, "hashes": {"sha256": demo[0].sha256},
        "requires-python": ">=3.8", "size": demo[0].size,
        "upload-time": "2024-01-02T03:04:05.000000Z", "yanked": False,
        "core-metadata": metadata, "data-dist-info-metadata": metadata,
    }  # fmt: skip
    assert (sdist["core-metadata"], sdist["data-dist-info-metadata"]) == (False, False)
    assert (yanked["yanked"], yanked["requires-python"]) == ("broken build", None)
    assert headers["X-PyPI-Last-Serial"] == str(fake_pypi.serial)
    assert (headers["Cache-Control"], headers["Vary"]) == ("max-age=600, public", "Accept")


@pytest.mark.parametrize("accept", [None, "text/html", "application/vnd.pypi.simple.v1+html"])
def test_html_page_has_warehouse_attributes(fake_pypi, demo, accept):
    _, headers, body = get(fake_pypi.index_url + "demo-pkg/", {"Accept": accept} if accept else {})
    page = body.decode()
    assert headers["Content-Type"] == f"{accept or 'text/html'}; charset=utf-8"
    assert f'href="{demo[0].url}#sha256={demo[0].sha256}" data-requires-python="&gt;=3.8"' in page
    assert f'data-core-metadata="sha256={demo[0].metadata_sha256}"' in page
    assert f'data-dist-info-metadata="sha256={demo[0].metadata_sha256}"' in page
    assert 'data-yanked="broken build"' in page
    assert '<meta name="pypi:project-status" content="active">' in page
    assert page.endswith(f"<!--SERIAL {fake_pypi.serial}-->\n")


def test_root_lists_projects_and_other_spellings_redirect(fake_pypi, demo):
    assert json.loads(get(fake_pypi.index_url, {"Accept": JSON})[2])["projects"] == [
        {"name": "Demo_Pkg", "_last-serial": fake_pypi.serial}]  # fmt: skip
    status, headers, _ = get(fake_pypi.index_url + "Demo_Pkg")
    assert (status, headers["Location"]) == (301, "/simple/demo-pkg/")
    assert get(fake_pypi.index_url + "nothing-here/")[0] == 404


def test_etag_answers_304(fake_pypi, demo):
    _, headers, _ = get(fake_pypi.index_url + "demo-pkg/", {"Accept": JSON})
    html_etag = get(fake_pypi.index_url + "demo-pkg/")[1]["ETag"]
    status, again, body = get(fake_pypi.index_url + "demo-pkg/",
                              {"Accept": JSON, "If-None-Match": headers["ETag"]})  # fmt: skip
    assert (status, body, again["ETag"], html_etag != headers["ETag"]) == (
        304, b"", headers["ETag"], True)  # fmt: skip
    assert fake_pypi.log.requests()[-1].headers["If-None-Match"] == headers["ETag"]


def test_delay_before_headers_times_a_client_out(fake_pypi, demo):
    fake_pypi.faults.set("/simple/demo-pkg/", delay=5)
    with pytest.raises(TimeoutError):
        get(fake_pypi.index_url + "demo-pkg/", timeout=0.5)


def test_delay_per_chunk_stalls_after_the_first_chunk(fake_pypi, demo):
    fake_pypi.faults.set(demo[0].path, chunk_size=100, chunk_delay=5)
    parts = urlsplit(demo[0].url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=0.5)
    try:
        connection.request("GET", parts.path)
        response = connection.getresponse()
        assert len(response.read(100)) == 100
        with pytest.raises(TimeoutError):
            response.read(100)
    finally:
        connection.close()


@pytest.mark.parametrize("status", [404, 410, 429, 500, 502, 503])
def test_status_override(fake_pypi, demo, status):
    fake_pypi.faults.set("demo-pkg", status=status)  # by project: the page and its files
    assert [get(url)[0] for url in (fake_pypi.index_url + "demo-pkg/", demo[0].url)] == [status] * 2


def test_drop_after_n_bytes_breaks_the_transfer(fake_pypi, demo):
    fake_pypi.faults.set(demo[0].path, drop_after=300)
    with pytest.raises(http.client.IncompleteRead) as broken:
        get(demo[0].url)
    assert len(broken.value.partial) == 300


def test_wrong_bytes_keep_the_length(fake_pypi, demo):
    fake_pypi.faults.set("/packages/*.whl", wrong_bytes=True)
    body = get(demo[0].url)[2]
    assert (len(body), hashlib.sha256(body).hexdigest() != demo[0].sha256) == (demo[0].size, True)


def test_html_only_ignores_accept(fake_pypi, demo):
    fake_pypi.faults.set("/simple/*", html_only=True)
    headers = get(fake_pypi.index_url + "demo-pkg/", {"Accept": JSON})[1]
    assert headers["Content-Type"] == "text/html; charset=utf-8"


def test_bogus_content_encoding(fake_pypi, demo):
    fake_pypi.faults.set(demo[1].path, gzip_header=True)
    _, headers, body = get(demo[1].url)
    assert headers["Content-Encoding"] == "gzip"
    assert hashlib.sha256(body).hexdigest() == demo[1].sha256  # the body is not gzipped


def test_serial_override(fake_pypi, demo):
    fake_pypi.faults.set("demo-pkg", serial=1)
    _, headers, body = get(fake_pypi.index_url + "demo-pkg/", {"Accept": JSON})
    assert (headers["X-PyPI-Last-Serial"], json.loads(body)["meta"]["_last-serial"]) == ("1", 1)


def test_etag_off(fake_pypi, demo):
    etag = get(fake_pypi.index_url + "demo-pkg/")[1]["ETag"]
    fake_pypi.faults.set("/simple/demo-pkg/", etag=False)
    status, headers, _ = get(fake_pypi.index_url + "demo-pkg/", {"If-None-Match": etag})
    assert (status, headers["ETag"]) == (200, None)


def test_unknown_knob_fails_in_the_test(fake_pypi):
    with pytest.raises(TypeError):
        fake_pypi.faults.set("/simple/*", dely=1)


def test_project_status_and_removal(fake_pypi, dists):
    fake_pypi.add(dists.build("gone-soon", "1.0")[0])
    fake_pypi.set_status("gone-soon", "quarantined", "malware")
    page = json.loads(get(fake_pypi.index_url + "gone-soon/", {"Accept": JSON})[2])
    html = get(fake_pypi.index_url + "gone-soon/")[2].decode()
    assert (page["project-status"], page["files"], page["versions"]) == (
        {"status": "quarantined", "reason": "malware"}, [], [])  # fmt: skip
    assert '<meta name="pypi:project-status" content="quarantined">' in html
    assert "gone-soon" not in get(fake_pypi.index_url)[2].decode()
    fake_pypi.remove("gone-soon")
    assert get(fake_pypi.index_url + "gone-soon/")[0] == 404


def test_log_records_requests_and_clears(fake_pypi, demo):
    get(fake_pypi.index_url + "demo-pkg/", {"Accept": JSON, "User-Agent": "probe/1"})
    get(demo[0].url, {"Authorization": "Basic leaked"})
    page, file = fake_pypi.log.requests()
    assert (page.method, page.path, page.status, page.headers["User-Agent"]) == (
        "GET", "/simple/demo-pkg/", 200, "probe/1")  # fmt: skip
    assert (file.server, file.headers["Authorization"]) == ("files", "Basic leaked")
    assert (fake_pypi.log.count("/simple/*"), fake_pypi.log.count(server="files")) == (1, 1)
    assert fake_pypi.files_saw_credentials()
    fake_pypi.log.clear()
    assert fake_pypi.log.count() == 0


def test_basic_auth_on_the_index_only(fake_pypi, demo, tmp_path):
    fake_pypi.auth = ("reader", "secret")
    assert get(fake_pypi.index_url + "demo-pkg/")[0] == 401
    index = fake_pypi.index_url.replace("http://", "http://reader:secret@")
    result = pip_download(index, tmp_path / "out", sandboxed_env(tmp_path / "h"), "demo-pkg==1.0")
    assert result.returncode == 0, result.stderr
    assert fake_pypi.log.count(demo[0].path, server="files") == 1
    assert not fake_pypi.files_saw_credentials()  # pip keeps them to the index's host
    assert fake_pypi.log.requests(server="index")[-1].headers["Authorization"].startswith("Basic ")


def test_stop_refuses_and_start_serves_on_the_same_ports(fake_pypi, demo):
    ports = (fake_pypi.index_server.port, fake_pypi.files_server.port)
    parts = urlsplit(fake_pypi.index_url)
    kept = http.client.HTTPConnection(parts.hostname, parts.port, timeout=5)
    try:
        kept.request("GET", "/simple/")
        kept.getresponse().read()
        fake_pypi.stop()
        with pytest.raises(ConnectionRefusedError):
            get(demo[0].url)
        with pytest.raises((http.client.HTTPException, ConnectionError)):
            kept.request("GET", "/simple/")  # the keep-alive connection is closed too
            kept.getresponse()
    finally:
        kept.close()
        fake_pypi.start()
    assert (fake_pypi.index_server.port, fake_pypi.files_server.port) == ports
    assert get(demo[0].url)[0] == 200


def test_black_hole_accepts_and_never_answers(black_hole):
    with pytest.raises(TimeoutError):
        get(black_hole.url + "/simple/", timeout=0.5)
    assert black_hole.connections >= 1


def r_env(tmp_path) -> dict[str, str]:
    """Real R in a sandbox, installing into tmp_path/lib."""
    (tmp_path / "lib").mkdir(exist_ok=True)
    return {**sandboxed_env(tmp_path), "R_LIBS_USER": str(tmp_path / "lib"), "LANG": "C.UTF-8"}


def test_r_installs_from_fake_cran(fake_cran, tmp_path):
    code = f"""
        options(repos = c(fake = "{fake_cran.url}"))
        a <- available.packages()
        cat(sprintf("%s=%s", rownames(a), a[, "Version"]), "\\n")
        install.packages("abcuser", lib = "{tmp_path}/lib", quiet = TRUE)
        library(abcuser, lib.loc = "{tmp_path}/lib"); cat(abcuser_hello(), "\\n")
    """
    result = rscript(code, r_env(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "abc=2.0 abcc=0.1-1 abcuser=1.0" in result.stdout
    assert "abc is 2.0" in result.stdout
    assert fake_cran.log.count("/src/contrib/abc_2.0.tar.gz") == 1
    first = fake_cran.log.requests("/src/contrib/PACKAGES*")[0]  # R asks for the .rds first
    assert (first.path, first.status, first.headers["User-Agent"] is not None) == (
        "/src/contrib/PACKAGES.rds", 200, True)  # fmt: skip


def test_fake_cran_trees_and_faults(fake_cran):
    etag = get(fake_cran.url + "/src/contrib/PACKAGES.gz")[1]["ETag"]
    assert get(fake_cran.url + "/src/contrib/PACKAGES.gz", {"If-None-Match": etag})[0] == 304
    windows = get(fake_cran.url + "/bin/windows/contrib/4.2/PACKAGES")[2].decode()
    mac = get(fake_cran.url + "/bin/macosx/big-sur-arm64/contrib/4.2/PACKAGES")[2].decode()
    assert "Package: abcc" in windows and "Package: abcc" in mac
    assert get(fake_cran.url + "/bin/windows/contrib/4.2/abcc_0.1-1.zip")[0] == 200
    fake_cran.faults.set("/src/contrib/PACKAGES*", status=503)
    assert get(fake_cran.url + "/src/contrib/PACKAGES")[0] == 503
    assert get(fake_cran.url + "/../../etc/passwd")[0] == 404


def test_new_release_archives_the_old_one_for_remotes(r_built, tmp_path):
    cran = FakeCRAN(tmp_path / "cran")
    try:
        cran.add(r_built["abc_2.0.tar.gz"])
        before = get(cran.url + "/src/contrib/PACKAGES")[1]["ETag"]
        cran.add(r_built["abc_2.1.tar.gz"])
        status, headers, body = get(cran.url + "/src/contrib/PACKAGES", {"If-None-Match": before})
        assert (status, re.findall(r"Version: (.*)", body.decode())) == (200, ["2.1"])
        code = f"""
            archive <- readRDS(url("{cran.url}/src/contrib/Meta/archive.rds"))
            cat(rownames(archive$abc), "\\n")
            remotes::install_version("abc", "2.0", repos = "{cran.url}", lib = "{tmp_path}/lib",
                                     upgrade = "never", quiet = TRUE)
            library(abc, lib.loc = "{tmp_path}/lib"); cat(abc_version(), "\\n")
        """
        result = rscript(code, r_env(tmp_path))
        assert result.returncode == 0, result.stdout + result.stderr
        assert ("abc/abc_2.0.tar.gz" in result.stdout, result.stdout.split()[-1]) == (True, "2.0")
        assert cran.log.count("/src/contrib/Archive/abc/abc_2.0.tar.gz") == 1
    finally:
        cran.stop()
