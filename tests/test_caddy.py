"""The app behind the real Caddy with the repository's Caddyfile, over HTTPS from Caddy's own CA:
headers, compression, Secure cookies, the live feed unbuffered, the PWA, no CSP violations."""

from __future__ import annotations

import gzip
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urljoin

import httpx
import pytest
from playwright.sync_api import BrowserContext, Page, expect

from tests.browser import CHROMIUM, FLAGS, PHONE, TABLET, screenshot, sign_in
from tests.caddy import CADDYFILE, Caddy
from tests.conftest import free_port, make_settings, run_cli

HOTLIST = "plate,state,reason\n8ABC123,CA,Stolen 2026-11-01 (test)\n"
SECURITY_HEADERS = {
    "strict-transport-security": "max-age=31536000", "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer", "x-frame-options": "DENY",
}
# Reports whatever the Content-Security-Policy refuses, on every page, before any page script runs.
CSP_WATCH = """document.addEventListener("securitypolicyviolation", (e) => window.cspViolation(
  `${location.pathname}: ${e.violatedDirective} ${e.blockedURI} ${e.sourceFile}:${e.lineNumber}`));"""


@pytest.fixture
def https_port() -> int:
    return free_port()


@pytest.fixture
def settings(tmp_path: Path, https_port: int):
    """The app knows its public address is HTTPS (Secure cookies, alert links)."""
    return make_settings(tmp_path / "data", public_url=f"https://localhost:{https_port}")


@pytest.fixture
def caddy(live, tmp_path, https_port) -> Iterator[Caddy]:
    with Caddy(tmp_path / "caddy", upstream=f"127.0.0.1:{live.settings.port}", https_port=https_port) as proxy:
        yield proxy


@pytest.fixture
def https_client(caddy) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=caddy.url, verify=caddy.ssl_context(), timeout=10) as client:
        yield client


@pytest.fixture
def csp_violations() -> list[str]:
    return []


@pytest.fixture
def https_context(playwright_driver, caddy, tmp_path, csp_violations) -> Iterator[BrowserContext]:
    """Chromium trusting certificates from Caddy's CA (a real trust decision, not ignore-all: the
    service worker refuses to run on an origin with certificate errors)."""
    trust = f"--ignore-certificate-errors-spki-list={caddy.intermediate_spki_sha256()}"
    context = playwright_driver.chromium.launch_persistent_context(
        str(tmp_path / "chromium-https"), executable_path=CHROMIUM, headless=True, args=[*FLAGS, trust],
        viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True,
    )
    context.set_default_timeout(15_000)
    context.expose_function("cspViolation", lambda text: csp_violations.append(text))
    context.add_init_script(CSP_WATCH)
    yield context
    context.close()


@pytest.fixture
def https_page(https_context) -> Page:
    return https_context.pages[0] if https_context.pages else https_context.new_page()


def test_caddyfile_validates(tmp_path):
    caddy = Caddy(tmp_path / "caddy", upstream="127.0.0.1:8080", https_port=8443)
    result = caddy.command("validate")
    assert result.returncode == 0, result.stderr
    assert "Valid configuration" in result.stdout + result.stderr
    # With a public name and an email instead of `internal`, certificates come from ACME.
    caddy.env.update(PLATEWATCH_SITE="alpr.example.gov", PLATEWATCH_TLS="it@example.gov")
    adapted = caddy.command("adapt")
    assert adapted.returncode == 0, adapted.stderr
    assert '"module":"acme"' in adapted.stdout and '"email":"it@example.gov"' in adapted.stdout
    assert '"module":"internal"' not in adapted.stdout


def test_security_headers_compression_and_redirect(dept, caddy, https_client):
    page = https_client.get("/login")
    assert page.status_code == 200 and page.url.scheme == "https"
    for name, value in SECURITY_HEADERS.items():
        assert page.headers[name] == value, name
    # The app sends some of these itself (server/http_edges.py): Caddy's replace them, never doubled.
    assert all(len(page.headers.get_list(name)) == 1 for name in [*SECURITY_HEADERS, "content-security-policy"])
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp and "unsafe" not in csp
    assert "camera=()" in page.headers["permissions-policy"] and "geolocation=()" in page.headers["permissions-policy"]
    assert "server" not in page.headers  # neither Caddy's nor uvicorn's
    original = (CADDYFILE.parent / "web" / "static" / "app.css").read_bytes()
    with https_client.stream("GET", "/static/app.css", headers={"Accept-Encoding": "gzip"}) as response:
        raw = b"".join(response.iter_raw())
    assert response.headers["content-encoding"] == "gzip" and len(raw) < len(original) / 2
    assert gzip.decompress(raw) == original
    zstd = https_client.get("/static/htmx-2.0.11.min.js", headers={"Accept-Encoding": "zstd, gzip"})
    assert zstd.headers["content-encoding"] == "zstd"
    png = https_client.get("/static/icons/icon-192.png", headers={"Accept-Encoding": "gzip"})
    assert "content-encoding" not in png.headers  # already compressed: left alone
    plain = httpx.get(f"http://localhost:{caddy.http_port}/login", follow_redirects=False)
    # Plain http is sent to https (Caddy 2.6 leaves a non-443 port out of the address; production uses 443).
    assert plain.status_code == 308 and plain.headers["location"] == "https://localhost/login"


def test_over_https_secure_cookie_live_feed_pwa_and_csp(dept, caddy, https_page, csp_violations, tmp_path):
    page = https_page
    dept.hotlist(tmp_path, "stolen", HOTLIST, "--kind", "stolen_vehicle")
    # An admin: sees every page, so every page is checked against the CSP.
    run_cli(dept.settings, "user", "add", "chief", "--role", "admin", "--password-stdin", stdin="chief's pass 1\n")
    sign_in(page, caddy.url, "chief", "chief's pass 1")
    cookies = {c["name"]: c for c in page.context.cookies()}
    assert cookies["pw_session"]["secure"] and cookies["pw_session"]["httpOnly"]
    assert all(c["secure"] for c in cookies.values()), cookies
    expect(page.locator("#live")).to_have_text("live")
    started = time.monotonic()
    [alert_id] = dept.post_read("8ABC123").json()["alerts"]
    card = page.locator(f"#alert-{alert_id}")
    expect(card).to_contain_text("8ABC123", timeout=3000)  # a buffering proxy would hold it back
    print(f"alert on the feed through Caddy in {(time.monotonic() - started) * 1000:.0f} ms")
    screenshot(page, "caddy-feed")
    page.set_viewport_size(TABLET)
    screenshot(page, "caddy-feed")
    page.set_viewport_size(PHONE)
    # The PWA on the real HTTPS origin: service worker running, installable.
    page.wait_for_function("() => navigator.serviceWorker.controller !== null", polling=100, timeout=30_000)
    cdp = page.context.new_cdp_session(page)
    assert cdp.send("Page.getInstallabilityErrors")["installabilityErrors"] == []
    # htmx works under the CSP: the acknowledge button swaps the workflow in place, no reload.
    card.locator("a").click()
    page.evaluate("window.notReloaded = true")
    page.get_by_role("button", name="Acknowledge").click()
    expect(page.get_by_test_id("alert-status")).to_have_text("acknowledged")
    assert page.evaluate("window.notReloaded") is True
    screenshot(page, "caddy-alert")
    page.set_viewport_size(TABLET)
    screenshot(page, "caddy-alert")
    # And the other pages: every page the nav leads to, offline, sign-in.
    nav = page.locator("nav a").evaluate_all("links => links.map((a) => a.href)")
    assert len(nav) >= 6, nav
    for target in [*nav, "/offline"]:
        page.goto(urljoin(caddy.url, target))
    page.goto(f"{caddy.url}/login")
    assert csp_violations == []
