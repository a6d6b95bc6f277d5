"""Basic accessibility in real Chromium: every control has an accessible name, text passes WCAG AA
contrast in both themes, touch targets are at least 44×44 CSS px on a phone, dark by default."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, expect

from tests.browser import sign_in
from tests.conftest import run_cli

HOTLIST = "plate,state,reason\n8ABC123,CA,Stolen 2026-11-01 (test)\n6TRJ244,CA,AMBER alert (test)\n"
CONTROLS = "input:not([type=hidden]), select, textarea, button, a[href]"
# Text that must stay readable: (what, selector). Backgrounds are found by walking up the tree.
TEXT = [
    ("body text", "main p, .reason, .facts dd"), ("muted text", ".muted, .where, .facts dt, .live"),
    ("headings", "h1, h2, legend, label"), ("buttons", "button:not(.primary)"), ("primary button", "button.primary"),
    ("badges", ".badge"), ("nav links", "nav a, .brand"), ("links", "main a"),
    ("plate", ".plate"), ("inputs", "input:not([type=hidden]):not([type=radio]), select, textarea"),
    ("errors", ".error"), ("status", "[data-testid=alert-status]"),
]
TARGETS = ("button, nav a, .brand, a.button, input:not([type=hidden]):not([type=radio]):not([type=checkbox]), "
           "select, textarea, label.choice")

CONTRAST_JS = """(groups) => {
  const rgb = (text) => (text.match(/[\\d.]+/g) || [0, 0, 0, 0]).map(Number);
  const lum = ([r, g, b]) => {
    const c = [r, g, b].map((v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; });
    return 0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2];
  };
  const over = (top, under) => { const a = top.length > 3 ? top[3] : 1;
    return [0, 1, 2].map((i) => top[i] * a + under[i] * (1 - a)); };
  const opacity = (el) => el ? Number(getComputedStyle(el).opacity) * opacity(el.parentElement) : 1;
  const faded = (color, el) => { const [r, g, b, a = 1] = rgb(color); return [r, g, b, a * opacity(el)]; };
  const background = (el) => {  // composite the backgrounds from the root down, dimmed as drawn
    const layers = [];
    for (let node = el; node; node = node.parentElement) layers.push(faded(getComputedStyle(node).backgroundColor, node));
    return layers.reverse().reduce((under, top) => over(top, under), [255, 255, 255]);
  };
  const out = [];
  for (const [what, selector] of groups) {
    for (const el of document.querySelectorAll(selector)) {
      const field = el.matches("input, select, textarea");
      if (!el.getClientRects().length || !field && !el.textContent.trim()) continue;
      const bg = background(el), ratio = (color) => {
        const [hi, lo] = [lum(over(faded(color, el), bg)), lum(bg)].sort((a, b) => b - a);
        return (hi + 0.05) / (lo + 0.05);
      };
      const text = (el.textContent.trim() || el.name).slice(0, 30);
      out.push({what, text, ratio: ratio(getComputedStyle(el).color)});
      if (el.placeholder) out.push({what: "placeholder", text, ratio: ratio(getComputedStyle(el, "::placeholder").color)});
    }
  }
  return out;
}"""

SIZES_JS = """(selector) => [...document.querySelectorAll(selector)]
  .filter((el) => el.getClientRects().length && getComputedStyle(el).visibility !== 'hidden')
  .map((el) => { const r = el.getBoundingClientRect();
    return {html: el.outerHTML.slice(0, 80), width: r.width, height: r.height}; })"""


@pytest.fixture
def chief(dept, tmp_path, capsys):
    """An admin (sees every nav link), an alert to look at and one to close (drawn dimmed in the feed)."""
    run_cli(dept.settings, "user", "add", "chief", "--role", "admin", "--password-stdin", stdin="chief's pass 1\n")
    capsys.readouterr()
    dept.hotlist(tmp_path, "stolen", HOTLIST, "--kind", "stolen_vehicle")
    [alert_id] = dept.post_read("8ABC123").json()["alerts"]
    dept.post_read("6TRJ244")
    return alert_id


def main_pages(page: Page, url: str, alert_id: int) -> Iterator[str]:
    """The sign-in page and the public pages (transparency report, records request form), then
    signed in: the feed, an alert, the offline page and every nav link."""
    for public in (f"{url}/login", f"{url}/transparency", f"{url}/request"):
        assert page.goto(public).status == 200, public
        yield public
    sign_in(page, url, "chief", "chief's pass 1")
    nav = page.locator("nav a").evaluate_all("links => links.map((a) => a.href)")
    assert len(nav) >= 6, nav  # an admin sees every section
    for target in (f"{url}/", f"{url}/alerts/{alert_id}", f"{url}/offline"):
        response = page.goto(target)
        assert response.status == 200, f"{target}: {response.status}"
        yield target
    # Every page the nav leads to, as they are built (a link to a page not there yet is left out).
    for target in dict.fromkeys(nav):
        if target != f"{url}/" and page.goto(target).status == 200:
            yield target


def unnamed_controls(page: Page, cdp) -> list[str]:
    """Controls whose accessible name (Chromium's own computation) is empty."""
    root = cdp.send("DOM.getDocument", {"depth": 0})["root"]["nodeId"]
    missing = []
    for node_id in cdp.send("DOM.querySelectorAll", {"nodeId": root, "selector": CONTROLS})["nodeIds"]:
        [ax, *_] = cdp.send("Accessibility.getPartialAXTree", {"nodeId": node_id, "fetchRelatives": False})["nodes"]
        if not ax.get("ignored") and not ax.get("name", {}).get("value", "").strip():
            missing.append(cdp.send("DOM.getOuterHTML", {"nodeId": node_id})["outerHTML"][:120])
    return missing


def test_controls_named_and_touch_targets_large_on_a_phone(dept, chief, page):
    cdp = page.context.new_cdp_session(page)
    cdp.send("DOM.enable")
    cdp.send("Accessibility.enable")
    checked, unnamed, small = [], {}, {}
    for url in main_pages(page, dept.live.url, chief):
        checked.append(url)
        if problems := unnamed_controls(page, cdp):
            unnamed[url] = problems
        targets = page.evaluate(SIZES_JS, TARGETS)
        assert targets, url
        if bad := [t for t in targets if t["width"] < 44 or t["height"] < 44]:
            small[url] = bad
    assert len(checked) >= 4, checked
    assert unnamed == {}
    assert small == {}, small


def contrast_on_key_pages(page: Page, url: str, alert_id: int) -> list[dict]:
    """Sign-in error, the feed (live, with an open and a closed alert), an alert, the offline page and
    the transparency report (with a hit, its charts and tables) and the records request form."""
    page.goto(f"{url}/login")
    page.get_by_label("Username").fill("alice")
    page.get_by_label("Password").fill("wrong")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_be_visible()
    results = page.evaluate(CONTRAST_JS, TEXT)
    page.goto(f"{url}/")
    expect(page.locator("#live")).to_have_text("live")
    results += page.evaluate(CONTRAST_JS, TEXT)
    for path in (f"/alerts/{alert_id}", "/offline", "/transparency", "/request"):
        page.goto(f"{url}{path}")
        results += page.evaluate(CONTRAST_JS, TEXT)
    return results


def check_contrast(page: Page, url: str, alert_id: int, theme: str) -> None:
    results = contrast_on_key_pages(page, url, alert_id)
    assert page.evaluate("document.documentElement.dataset.theme") == theme  # kept on every page
    seen = {r["what"] for r in results}
    assert seen >= {"body text", "muted text", "buttons", "primary button", "badges", "nav links", "links",
                    "errors", "inputs", "placeholder"}
    low = [r for r in results if r["ratio"] < 4.5]
    assert low == [], f"{theme}: {low}"


def test_dark_by_default_light_by_choice_both_with_4_5_to_1_contrast(dept, chief, page):
    sign_in(page, dept.live.url)
    html, theme_color = page.locator("html"), page.locator('meta[name="theme-color"]')
    expect(html).to_have_attribute("data-theme", "dark")
    assert page.evaluate("getComputedStyle(document.body).backgroundColor") == "rgb(11, 15, 20)"
    page.goto(f"{dept.live.url}/alerts/{chief + 1}")  # a closed alert: drawn differently in the feed
    page.get_by_label("Not a match").check()
    page.get_by_role("button", name="Record outcome").click()
    expect(page.get_by_test_id("alert-status")).to_have_text("not match")
    check_contrast(page, dept.live.url, chief, "dark")
    page.goto(f"{dept.live.url}/")
    page.get_by_role("button", name="Switch light or dark").click()
    expect(html).to_have_attribute("data-theme", "light")
    expect(theme_color).to_have_attribute("content", "#ffffff")
    assert page.evaluate("getComputedStyle(document.body).backgroundColor") == "rgb(255, 255, 255)"
    check_contrast(page, dept.live.url, chief, "light")  # the choice outlived several page loads
    page.goto(f"{dept.live.url}/")
    page.get_by_role("button", name="Switch light or dark").click()
    expect(html).to_have_attribute("data-theme", "dark")
    expect(theme_color).to_have_attribute("content", "#0b0f14")
