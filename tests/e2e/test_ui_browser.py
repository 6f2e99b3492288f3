"""The web UI in a real Chromium against a real gunicorn: sign in, make channels and tokens
in the browser, use the tokens with real twine and pip, revoke one and see the client refused,
and the protections: a generic sign-in error, CSRF, private channels, escaped metadata.

Every main page is saved as a screenshot at desktop and phone widths (browser.screenshots).
"""

from __future__ import annotations

import re
import urllib.request
from urllib.parse import urlsplit

import pytest

from ..unit.builders import basic, r_source
from .browser import DESKTOP, expect, screenshots
from .live import ADMIN_PASSWORD, run, sandboxed_env, tool, twine_upload

PASSWORD = "alice-password"
SCRIPT = "<script>window.pwned=1</script>"
R_DESCRIPTION = (
    b"Package: abc\nVersion: 2.1\nTitle: Tools for ABC\nLicense: MIT\n"
    b"Depends: R (>= 3.5.0)\nImports: stats, utils\nNeedsCompilation: no\n"
)


@pytest.fixture(scope="module")
def site(live_server):
    live_server.cli("user", "create", "alice", "--password", PASSWORD)
    return live_server


@pytest.fixture(scope="module")
def env(tmp_path_factory) -> dict[str, str]:
    return sandboxed_env(tmp_path_factory.mktemp("clients") / "home")


def sign_in(page, name: str, password: str) -> None:
    page.goto("/login")
    page.get_by_label("User name").fill(name)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


@pytest.fixture(scope="module")
def alice(browser, site):
    """A page signed in as alice through the sign-in form."""
    context = browser.new_context(viewport=DESKTOP, base_url=site.url)
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=site.url)
    page = context.new_page()
    sign_in(page, "alice", PASSWORD)
    expect(page.locator("header")).to_contain_text("Signed in as alice")
    yield page
    context.close()


def create_channel(page, name: str, public: bool) -> None:
    page.goto("/channels")
    page.get_by_label("Name").fill(name)
    page.get_by_label("Public" if public else "Private").check()
    page.get_by_role("button", name="Create channel").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text(name)


@pytest.fixture(scope="module")
def channels(alice):
    """The private 'web' and the public 'webpub', made in the browser by alice."""
    create_channel(alice, "web", public=False)
    create_channel(alice, "webpub", public=True)
    return "web", "webpub"


def create_token(page, label: str, channel: str | None = None, scope: str = "read") -> str:
    """Make a token in the browser; return it as shown on the page (what a user copies)."""
    page.goto("/tokens")
    if channel:
        page.get_by_role("radio", name=re.compile("^Channel token")).check()
        page.get_by_label("Channel (for a channel token)").select_option(channel)
        page.get_by_role("radio", name=re.compile(f"^{scope.capitalize()}:")).check()
    else:
        page.get_by_role("radio", name=re.compile("^User token")).check()
    page.get_by_label("Label", exact=True).fill(label)
    page.get_by_role("button", name="Create token").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Your new token")
    return page.locator("code#secret").inner_text()


@pytest.fixture(scope="module")
def write_token(alice, channels) -> str:
    return create_token(alice, "ci upload", "web", "write")


def upload_to(site, env, paths, token: str, channel: str = "web"):
    return twine_upload(f"{site.url}/api/repo/{channel}", paths, env, "__token__", token)


@pytest.fixture(scope="module")
def uploaded(site, env, dists, write_token):
    """web-demo 1.0 uploaded to 'web' with real twine and the token made in the browser."""
    paths = dists.build("web-demo", "1.0", requires_python=">=3.8")
    result = upload_to(site, env, paths, write_token)
    assert result.returncode == 0, result.stdout + result.stderr
    return paths


def pip_install(site, env, target, token: str):
    index = f"http://__token__:{token}@{site.host}/api/repo/web/simple"
    return run([tool("python"), "-m", "pip", "install", "--no-deps", "--target", str(target),
                "--index-url", index, "web-demo"], env)  # fmt: skip


def test_wrong_password_shows_a_generic_message(browser, site):
    page = browser.new_context(viewport=DESKTOP, base_url=site.url).new_page()
    page.goto("/login")
    screenshots(page, "login")
    for name, password in (("alice", "not-the-password"), ("nobody", PASSWORD)):
        sign_in(page, name, password)
        expect(page.get_by_role("alert")).to_have_text("Invalid user name or password")
        expect(page.locator("header")).not_to_contain_text("Signed in as")
    page.context.close()


def test_signed_in_user_creates_channels(alice, channels):
    alice.goto("/channels")
    table = alice.get_by_role("region", name="Channels")
    expect(table.get_by_role("link", name="web", exact=True)).to_be_visible()
    expect(table.get_by_role("row", name=re.compile(r"webpub\s+public"))).to_be_visible()
    screenshots(alice, "channels")


def test_write_token_from_the_ui_uploads_with_twine(alice, site, uploaded):
    alice.goto("/channels/web")
    row = alice.get_by_role("row", name=re.compile("web-demo"))
    expect(row).to_contain_text("1.0")
    expect(row).to_contain_text("alice")
    screenshots(alice, "channel")
    row.get_by_role("link", name="web-demo").click()
    expect(alice.get_by_role("heading", level=1)).to_contain_text("web-demo")
    expect(alice.locator("dl.meta")).to_contain_text(">=3.8")
    for path in uploaded:
        expect(alice.get_by_role("row", name=re.compile(re.escape(path.name)))).to_contain_text(
            "alice")  # fmt: skip
    expect(alice.locator("main")).to_contain_text(
        f"pip install --index-url http://__token__:<TOKEN>@{site.host}/api/repo/web/simple web-demo"
    )
    screenshots(alice, "package-python")


def test_install_as_of_the_newest_upload_lists_the_package(alice, site, uploaded, write_token):
    alice.goto("/channels/web/pypi/web-demo")
    block = alice.get_by_role("region", name="Install as of the newest upload")
    expect(block).to_contain_text("/api/repo/web/snapshot/")
    block.get_by_role("button", name="Copy install with pip").click()
    copied = alice.evaluate("navigator.clipboard.readText()")
    index = urlsplit(re.fullmatch(r"pip install --index-url (\S+) web-demo", copied)[1])
    assert index.netloc == f"__token__:<TOKEN>@{site.host}", copied
    # What pip sends for the credentials in the URL, with a real token in place of <TOKEN>.
    request = urllib.request.Request(f"{site.url}{index.path}/web-demo/",
                                     headers=basic("__token__", write_token))  # fmt: skip
    with urllib.request.urlopen(request, timeout=10) as response:
        listed = response.read().decode()
    assert all(path.name in listed for path in uploaded), listed


def test_copy_button_copies_the_token(alice, channels):
    secret = create_token(alice, "copied", "web", "read")
    alice.get_by_role("button", name="Copy the token").click()
    expect(alice.locator(".copy-status").first).to_have_text("Copied")
    assert alice.evaluate("navigator.clipboard.readText()") == secret
    screenshots(alice, "token-created")
    alice.goto("/tokens")
    expect(alice.locator("main")).not_to_contain_text(secret)


def test_read_token_from_the_ui_installs_with_pip(alice, site, env, uploaded, tmp_path):
    token = create_token(alice, "install", "web", "read")
    result = pip_install(site, env, tmp_path / "lib", token)
    assert result.returncode == 0, result.stdout + result.stderr
    assert (tmp_path / "lib" / "web_demo" / "__init__.py").exists()
    refused = upload_to(site, env, uploaded, token)
    assert refused.returncode == 1 and "403" in refused.stdout + refused.stderr


def test_token_revoked_in_the_ui_gets_401(alice, site, env, uploaded, tmp_path):
    token = create_token(alice, "to revoke", "web", "read")
    assert pip_install(site, env, tmp_path / "before", token).returncode == 0
    alice.goto("/tokens")
    alice.get_by_role("button", name="Revoke token to revoke").click()
    expect(alice.get_by_role("status")).to_contain_text("Revoked token")
    expect(alice.get_by_role("row", name=re.compile("to revoke"))).to_contain_text("revoked")
    screenshots(alice, "tokens")
    result = pip_install(site, env, tmp_path / "after", token)
    assert result.returncode != 0
    assert "401" in result.stdout + result.stderr, result.stdout + result.stderr


def test_form_without_its_csrf_token_is_rejected(alice, site, channels):
    alice.goto("/channels")
    form = alice.locator("form", has=alice.get_by_role("button", name="Create channel"))
    form.locator("input[name=csrf_token]").evaluate("input => input.remove()")
    alice.get_by_label("Name").fill("forged")
    with alice.expect_response(lambda r: r.request.method == "POST") as answer:
        alice.get_by_role("button", name="Create channel").click()
    assert answer.value.status == 400
    expect(alice.get_by_role("alert")).to_contain_text("without its security token (CSRF)")
    assert site.query("SELECT count(*) FROM channels WHERE name = 'forged'") == [(0,)]


def test_anonymous_visitor_sees_the_public_channel_not_the_private_one(browser, site, channels):
    page = browser.new_context(viewport=DESKTOP, base_url=site.url).new_page()
    page.goto("/channels")
    expect(page.get_by_role("link", name="webpub")).to_be_visible()
    expect(page.get_by_role("link", name="web", exact=True)).to_have_count(0)
    assert page.goto("/channels/web").status == 404
    expect(page.get_by_role("alert")).to_have_text("Channel 'web' not found")
    assert page.goto("/channels/webpub").status == 200
    page.context.close()


def test_script_in_a_package_summary_is_shown_as_text(alice, site, env, dists, write_token):
    paths = dists.build("scripted", "1.0", summary=f"Hello {SCRIPT}", readme=f"# x\n{SCRIPT}\n")
    result = upload_to(site, env, paths, write_token)
    assert result.returncode == 0, result.stdout + result.stderr
    alice.goto("/channels/web/pypi/scripted")
    expect(alice.locator("dl.meta")).to_contain_text(f"Hello {SCRIPT}")
    assert alice.evaluate("typeof window.pwned") == "undefined"
    assert alice.locator("main script").count() == 0


def test_r_package_page(alice, site, write_token, tmp_path):
    tarball = tmp_path / "abc_2.1.tar.gz"
    tarball.write_bytes(r_source(R_DESCRIPTION))
    result = run([tool("curl"), "-sS", "-f", "-F", "filetype=cran_source_package",
                  "-F", f"content=@{tarball}", f"{site.url}/api/repo/web",
                  "-H", f"X-Auth: {write_token}"], {"PATH": "/usr/bin:/bin"})  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    alice.goto("/channels/web/cran/abc")
    meta = alice.locator("dl.meta")
    expect(meta).to_contain_text("R (>= 3.5.0)")
    expect(meta).to_contain_text("stats, utils")
    expect(alice.get_by_role("row", name=re.compile("abc_2.1.tar.gz"))).to_contain_text(
        "src/contrib")  # fmt: skip
    screenshots(alice, "package-r")


def test_admin_pages(browser, site, channels):
    page = browser.new_context(viewport=DESKTOP, base_url=site.url).new_page()
    sign_in(page, "admin", ADMIN_PASSWORD)
    page.get_by_role("link", name="Users").click()
    page.get_by_label("User name").fill("carol")
    page.get_by_label("Password (at least 8 characters)").fill("carol-password")
    page.get_by_role("button", name="Create user").click()
    expect(page.get_by_role("status")).to_have_text("Created user 'carol'")
    expect(page.get_by_role("row", name=re.compile("carol"))).to_be_visible()
    screenshots(page, "admin-users")
    page.get_by_role("link", name="All channels").click()
    expect(page.get_by_role("row", name=re.compile(r"web\s+private\s+alice"))).to_be_visible()
    screenshots(page, "admin-channels")
    page.context.close()


def test_admin_pages_are_forbidden_to_other_users(alice):
    assert alice.goto("/admin/users").status == 403
    expect(alice.get_by_role("alert")).to_have_text("Only administrators may see this page")


def test_owner_sees_the_mirror_and_refreshes_it(alice, site, channels):
    site.cli("mirror", "create", "web", "--type", "pypi", "--source",
             "http://127.0.0.1:9/simple/", "--password", "never-shown-upstream-pw")  # fmt: skip
    alice.goto("/channels/web")
    section = alice.get_by_role("region", name="Mirrored upstreams")
    expect(section.get_by_role("row", name=re.compile("^pypi"))).to_contain_text(
        "http://127.0.0.1:9/simple/"
    )
    assert "never-shown-upstream-pw" not in alice.content()
    screenshots(alice, "channel-mirror")

    alice.get_by_role("button", name="Check every cached pypi page again").click()

    expect(alice.get_by_role("status")).to_contain_text("will be checked on their next request")
