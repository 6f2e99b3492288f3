"""Uploads from the web UI in a real Chromium against a real gunicorn: alice signs in, drops a
wheel built by setuptools and R packages built by R CMD build on the channel page, watches
each file's progress and the server's answer (accepted, identical re-upload, conflict,
invalid, too large), and the files then install with pip and R. A page of another origin
cannot upload with her session.

Screenshots go where the other browser tests put theirs (browser.screenshots).
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from pathlib import Path

import pytest

from .browser import DESKTOP, expect, screenshots
from .live import LiveServer, build_dists, rscript, run, sandboxed_env, tool
from .test_hostile_requests import attacker_site  # noqa: F401 - a fixture
from .test_r import r_env
from .test_ui_browser import create_channel, create_token, sign_in

PASSWORD = "alice-password"
CHANNEL = "webup"
LIMIT_MB = 1
# Chromium's network emulation: an upload this slow takes seconds, so its progress shows.
SLOW_UPLOAD = {"offline": False, "latency": 0, "downloadThroughput": -1,
               "uploadThroughput": 256 * 1024}  # fmt: skip


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """A server that takes files of at most LIMIT_MB, with the user alice."""
    server = LiveServer(tmp_path_factory.mktemp("server") / "data",
                        REPO_MAX_UPLOAD_MB=str(LIMIT_MB))  # fmt: skip
    server.cli("user", "create", "alice", "--password", PASSWORD)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def alice(browser, site):
    """alice's page, signed in, on the page of her new private channel."""
    context = browser.new_context(viewport=DESKTOP, base_url=site.url)
    page = context.new_page()
    sign_in(page, "alice", PASSWORD)
    create_channel(page, CHANNEL, public=False)
    yield page
    context.close()


def project(root: Path, variant: str) -> list[Path]:
    """[wheel, sdist] of `Webup.Demo` 1.0 built by setuptools, with about 600 KB of code (so
    an upload takes a while at SLOW_UPLOAD) and a Markdown README; `variant` changes the
    bytes, never the file names."""
    source = root / f"webup-{variant}"
    blob = secrets.token_hex(300_000)  # hex: the wheel's deflate cannot shrink it much
    files = {
        "pyproject.toml": (
            '[build-system]\nrequires = ["setuptools>=68"]\n'
            'build-backend = "setuptools.build_meta"\n'
            '[project]\nname = "Webup.Demo"\nversion = "1.0"\nreadme = "README.md"\n'
            'description = "Uploaded from a browser"\n'
            '[tool.setuptools]\npackages = ["webup_demo"]\n'
        ),
        "README.md": "# Webup demo\n\nUploaded **from the browser**.\n\n"
                     "![remote](https://images.example/shot.png)\n",
        "webup_demo/__init__.py": f"VARIANT = {variant!r}\nBLOB = {blob!r}\n",
    }  # fmt: skip
    source.mkdir()
    return build_dists(source, files)


@pytest.fixture(scope="module")
def dists(tmp_path_factory) -> dict[str, list[Path]]:
    root = tmp_path_factory.mktemp("webup")
    return {variant: project(root, variant) for variant in ("first", "second")}


def row(page, filename: str):
    return page.locator("li.upload-file", has=page.locator(".upload-name", has_text=filename))


def pick(page, *paths: Path) -> None:
    page.goto(f"/channels/{CHANNEL}")
    expect(page.get_by_role("heading", name="Upload", exact=True)).to_be_visible()
    page.get_by_label("Choose files to upload").set_input_files([str(p) for p in paths])


def upload(page) -> None:
    page.get_by_role("button", name="Upload", exact=True).click()


def expect_outcome(page, filename: str, outcome: str, text: str) -> None:
    answered = row(page, filename)
    expect(answered).to_have_attribute("data-outcome", outcome, timeout=60_000)
    expect(answered.locator(".upload-result")).to_contain_text(text)


def test_files_dropped_on_the_channel_page_upload_with_progress(alice, site, dists, r_built):
    wheel, sdist = dists["first"]
    r_source = r_built["abc_2.1.tar.gz"]
    r_binary = r_built["abc_2.1_R_x86_64-pc-linux-gnu.tar.gz"]
    pick(alice, wheel, sdist, r_source, r_binary)
    expect(alice.locator("li.upload-file")).to_have_count(4)
    expect(row(alice, r_source.name).get_by_label("Kind")).to_have_value("cran_source_package")
    binary = row(alice, r_binary.name)
    expect(binary.get_by_label("Kind")).to_have_value("cran_binary_package")
    expect(binary.get_by_label("platform")).to_be_visible()
    expect(row(alice, wheel.name).get_by_label("platform")).to_be_hidden()
    binary.get_by_label("platform").fill("bookworm-x86_64")
    screenshots(alice, "upload-picked")

    cdp = alice.context.new_cdp_session(alice)
    cdp.send("Network.enable")
    cdp.send("Network.emulateNetworkConditions", SLOW_UPLOAD)
    try:
        upload(alice)
        # The wheel's bar moves while it is sent: a value strictly between 0 and 100.
        alice.wait_for_function(
            """name => [...document.querySelectorAll("li.upload-file")].some(li =>
                 li.querySelector(".upload-name").textContent === name
                 && li.querySelector("progress").value > 0
                 && li.querySelector("progress").value < 100)""",
            arg=wheel.name, timeout=30_000,
        )  # fmt: skip
        screenshots(alice, "upload-progress")
    finally:
        cdp.send("Network.emulateNetworkConditions", {**SLOW_UPLOAD, "uploadThroughput": -1})
    for path in (wheel, sdist, r_source, r_binary):
        expect_outcome(alice, path.name, "accepted", "Accepted")
        expect(row(alice, path.name).locator("progress")).to_have_attribute("value", "100")
    screenshots(alice, "upload-done")
    row(alice, wheel.name).get_by_role("link", name="See Webup.Demo").click()
    expect(alice).to_have_url(f"{site.url}/channels/{CHANNEL}/pypi/webup-demo")
    expect(alice.get_by_role("heading", level=1)).to_contain_text("Webup.Demo")

    names = {name for (name,) in site.query("SELECT filename FROM files")}
    # The server names a Linux binary by the platform it is filed under.
    assert names == {wheel.name, sdist.name, r_source.name, "abc_2.1_R_bookworm-x86_64.tar.gz"}
    uploaders = site.query("SELECT DISTINCT users.name FROM files JOIN users"
                           " ON users.id = files.uploader_id")  # fmt: skip
    assert uploaders == [("alice",)]
    assert site.pending() == []


def test_the_page_says_identical_conflict_invalid_and_too_large(alice, site, dists, r_built,
                                                                tmp_path):  # fmt: skip
    junk = tmp_path / "broken_pkg-1.0-py3-none-any.whl"
    junk.write_bytes(b"not a zip")
    big = tmp_path / "big_pkg-1.0-py3-none-any.whl"
    big.write_bytes(secrets.token_bytes(LIMIT_MB * 1024 * 1024 + 1))
    same, other = dists["first"][0], dists["second"][0]
    other_dir = tmp_path / "other"
    other_dir.mkdir()
    conflicting = other_dir / other.name  # the first wheel's name, other bytes
    conflicting.write_bytes(other.read_bytes())
    before = site.query("SELECT filename, sha256 FROM files ORDER BY filename")

    pick(alice, same, conflicting, junk, big, r_built["abc_2.1.tar.gz"])
    upload(alice)
    rows = alice.locator("li.upload-file")  # in the order picked; both wheels share a name
    for index, outcome, text in [
        (0, "identical", "Already there: an identical file was uploaded before."),
        (1, "conflict", "Conflict: File already exists ('webup_demo-1.0-py3-none-any.whl', "),
        (2, "invalid", "Invalid distribution file: not a valid zip archive"),
        (3, "too-large", f"File too large: limit is {LIMIT_MB} MB"),
        (4, "identical", "Already there: an identical file was uploaded before."),
    ]:
        # The server's own message, from its start (the conflict's goes on with the sha256).
        expect(rows.nth(index)).to_have_attribute("data-outcome", outcome, timeout=60_000)
        expect(rows.nth(index).locator(".upload-result")).to_have_text(
            re.compile("^" + re.escape(text) + ("" if outcome == "conflict" else "$"))
        )
    expect(alice.get_by_role("button", name="Try the refused files again")).to_be_enabled()
    screenshots(alice, "upload-refused")

    assert site.query("SELECT filename, sha256 FROM files ORDER BY filename") == before
    assert site.pending() == []


def test_the_uploaded_files_install_with_pip_and_r(alice, site, dists, tmp_path):
    token = create_token(alice, "install uploads", CHANNEL, "read")
    env = sandboxed_env(tmp_path / "home")
    index = f"http://__token__:{token}@{site.host}/api/repo/{CHANNEL}/simple"
    result = run([tool("python"), "-m", "pip", "install", "--no-deps", "--target",
                  str(tmp_path / "lib"), "--index-url", index, "webup-demo"], env)  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    installed = (tmp_path / "lib" / "webup_demo" / "__init__.py").read_text()
    assert installed.startswith("VARIANT = 'first'")

    repos = f"{site.url}/api/repo/t/{token}/{CHANNEL}/cran"
    code = f"""
        lib <- Sys.getenv("R_LIBS_USER")
        install.packages("abc", repos = "{repos}", lib = lib, type = "source", quiet = TRUE)
        cat("VERSION:", as.character(packageVersion("abc", lib.loc = lib)), "\\n")
    """
    (tmp_path / "r").mkdir()
    r_result = rscript(code, r_env(tmp_path / "r"))
    assert r_result.returncode == 0, r_result.stdout + r_result.stderr
    assert "VERSION: 2.1" in r_result.stdout


def test_the_package_page_renders_the_readme_without_fetching_the_remote_image(alice, site):
    requests = []
    alice.on("request", lambda request: requests.append(request.url))
    alice.goto(f"/channels/{CHANNEL}/pypi/webup-demo")
    readme = alice.locator(".readme")
    expect(readme.get_by_role("heading", name="Webup demo")).to_be_visible()
    expect(readme.locator("strong")).to_have_text("from the browser")
    expect(readme.get_by_role("link", name="[image: remote]")).to_have_attribute(
        "href", "https://images.example/shot.png")  # fmt: skip
    assert readme.locator("img").count() == 0
    assert [url for url in requests if not url.startswith(site.url)] == []
    screenshots(alice, "package-readme")


# A page of another origin (another port of 127.0.0.1: the same site, so the browser sends
# alice's Lax session cookie along) posts a wheel to her channel: as a form that navigates,
# and with fetch adding the CSRF header it would have to guess (that one needs a preflight).
CROSS_SITE_FORM = """<!doctype html>
<form method="post" action="%(target)s" enctype="multipart/form-data">
<input name=":action" value="file_upload"><input name="protocol_version" value="1">
<input name="sha256_digest" value="%(sha256)s"><input type="file" name="content">
</form>
<script>
const file = new File([Uint8Array.from(atob("%(wheel)s"), c => c.charCodeAt(0))], "%(name)s");
const files = new DataTransfer();
files.items.add(file);
document.querySelector("input[type=file]").files = files.files;
fetch("%(target)s", {method: "POST", credentials: "include", headers: {"X-CSRF-Token": "guess"},
                     body: new FormData(document.forms[0])})
  .catch(() => { document.forms[0].submit(); });
</script>"""


def test_a_page_of_another_origin_cannot_upload_with_the_session(
    alice,
    site,
    attacker_site,  # noqa: F811 - the fixture imported above
):
    pages, attacker = attacker_site
    content = b"PK planted"
    name = "planted-1.0-py3-none-any.whl"
    pages["/form.html"] = (CROSS_SITE_FORM % {
        "target": f"{site.url}/api/repo/{CHANNEL}", "name": name,
        "wheel": base64.b64encode(content).decode(), "sha256": hashlib.sha256(content).hexdigest(),
    }).encode()  # fmt: skip
    with alice.expect_navigation(url=f"{site.url}/api/repo/{CHANNEL}", timeout=30_000) as sent:
        alice.goto(f"{attacker}/form.html")
    answer = sent.value
    assert answer is not None and answer.status == 403
    expect(alice.locator("body")).to_contain_text("Cross-site upload refused")
    assert site.query("SELECT count(*) FROM files WHERE filename = ?", name) == [(0,)]
    log = site.log()
    assert f'"POST /api/repo/{CHANNEL} HTTP/1.1" 403' in log
    assert f'"OPTIONS /api/repo/{CHANNEL} HTTP/1.1"' in log  # the fetch's preflight, refused
