"""The PWA in real Chromium: installable, a real push payload becomes a notification that opens
the alert, the offline page and cached shell without a network, and forms without JavaScript."""

from __future__ import annotations

import base64
import json
import sqlite3

import pytest
from playwright.sync_api import Page, expect

from tests.browser import CHROMIUM, FLAGS, PHONE, screenshot, sign_in
from tests.pushservice import PushService

HOTLIST = "plate,state,reason\n8ABC123,CA,Stolen 2026-11-01 (test)\n"
SW_ACTIVE = "() => navigator.serviceWorker.controller?.state === 'activated'"


def signed_in_with_worker(page: Page, url: str) -> None:
    """Signed in on the feed, with the service worker installed and controlling the page."""
    sign_in(page, url)
    page.wait_for_function(SW_ACTIVE, polling=100, timeout=30_000)  # installing caches the shell first


def worker_registration(page: Page, cdp, origin: str) -> str:
    """The service worker's registration id, from the events ServiceWorker.enable replays."""
    seen: list[dict] = []
    cdp.on("ServiceWorker.workerRegistrationUpdated", lambda event: seen.extend(event["registrations"]))
    cdp.send("ServiceWorker.enable")
    for _ in range(100):
        ids = [r["registrationId"] for r in seen if r["scopeURL"] == f"{origin}/" and not r["isDeleted"]]
        if ids:
            return ids[-1]
        page.wait_for_timeout(50)
    raise AssertionError(f"no service worker registration for the page; saw {seen}")


def notifications(page: Page) -> list[dict]:
    return page.evaluate("""async () => {
        const registration = await navigator.serviceWorker.ready;
        return (await registration.getNotifications()).map((n) => ({title: n.title, body: n.body, data: n.data}));
    }""")


# `self.shown` settles with the title of the first notification the worker has finished showing.
# Asking getNotifications() while one is still being shown makes Chromium drop it as "no longer
# displayed", so the test waits for this rather than polling getNotifications().
WATCH_SHOWN = """() => {
  const show = ServiceWorkerRegistration.prototype.showNotification;
  self.shown = new Promise((resolve) => {
    ServiceWorkerRegistration.prototype.showNotification = function (title, options) {
      return show.call(this, title, options).then(() => resolve(title));
    };
    setTimeout(() => resolve(null), 10000);
  });
}"""


def go_on_duty(page: Page) -> None:
    """The feed's switch: web push pages only officers on duty."""
    page.get_by_role("button", name="Go on duty").click()
    expect(page.locator("#duty-state")).to_contain_text("On duty until")


def service_worker(page: Page):
    workers = page.context.service_workers  # Playwright may learn of the worker a moment late
    return workers[0] if workers else page.context.wait_for_event("serviceworker")


def test_installable_with_complete_manifest(dept, page):
    signed_in_with_worker(page, dept.live.url)
    cdp = page.context.new_cdp_session(page)
    assert cdp.send("Page.getInstallabilityErrors")["installabilityErrors"] == []
    manifest = cdp.send("Page.getAppManifest")
    assert manifest["url"] == f"{dept.live.url}/manifest.webmanifest" and manifest["errors"] == []
    data = json.loads(manifest["data"])
    assert data["name"] == "Platewatch" and data["short_name"] and data["display"] == "standalone"
    assert data["theme_color"] == data["background_color"] == "#0b0f14" and data["start_url"] == "/"
    icons = {(icon["sizes"], icon.get("purpose", "any")) for icon in data["icons"]}
    assert {("192x192", "any"), ("512x512", "any"), ("512x512", "maskable")} <= icons
    for icon in data["icons"]:  # each icon really is a PNG of the size it claims
        size = page.evaluate("""async (src) => {
            const bitmap = await createImageBitmap(await (await fetch(src)).blob());
            return `${bitmap.width}x${bitmap.height}`;
        }""", icon["src"])
        assert size == icon["sizes"]
    screenshot(page, "pwa-feed")


def test_server_push_shows_notification_that_opens_the_alert(dept, page, tmp_path):
    key = dept.http.get("/api/v1/push/key").json()["public_key"]
    dept.hotlist(tmp_path, "stolen", HOTLIST, "--kind", "stolen_vehicle")
    origin = dept.live.url
    page.context.grant_permissions(["notifications"], origin=origin)
    signed_in_with_worker(page, origin)
    go_on_duty(page)
    cdp = page.context.new_cdp_session(page)
    registration = worker_registration(page, cdp, origin)
    worker = service_worker(page)
    worker.evaluate(WATCH_SHOWN)
    with PushService(expected_key=key) as service:
        dept.subscribe(service.subscription("alice-phone"))
        [alert_id] = dept.post_read("8ABC123").json()["alerts"]
        [message] = service.wait_for(1, timeout=5)
    # Exactly the bytes the server encrypted for the phone, as the push service delivers them.
    cdp.send("ServiceWorker.deliverPushMessage",
             {"origin": origin, "registrationId": registration, "data": message.payload.decode()})
    assert worker.evaluate("self.shown"), "no notification shown within 10 s"
    [shown] = notifications(page)
    assert "8ABC123" in shown["title"] and "stolen" in shown["title"]
    assert "Stolen 2026-11-01 (test)" in shown["body"] and "main-st" in shown["body"]
    assert shown["data"]["url"] == f"{origin}/alerts/{alert_id}"
    # A tap on the notification: Chromium has no way to click one from outside, so the worker
    # dispatches the same event to its own listener; the app's window goes to the alert page.
    worker.evaluate("""async () => {
        const [notification] = await self.registration.getNotifications();
        self.dispatchEvent(new NotificationEvent("notificationclick", {notification}));
    }""")
    expect(page).to_have_url(f"{origin}/alerts/{alert_id}")
    expect(page.get_by_role("heading", name="8ABC123")).to_be_visible()
    assert notifications(page) == []  # tapping closes it


def test_push_button_explains_then_reports_blocked_notifications(dept, page):
    signed_in_with_worker(page, dept.live.url)
    button = page.locator("#push-toggle")
    expect(button).to_have_text("Turn on phone alerts")
    expect(button).to_have_attribute("aria-pressed", "false")
    # Headless Chromium answers the permission prompt with "denied" (no one to ask).
    button.click()
    expect(page.locator("#push-help")).to_contain_text("Notifications are blocked")
    expect(button).to_have_text("Turn on phone alerts")


# Headless Chromium has no push service to register with, so PushManager alone is replaced: it
# records the applicationServerKey it is given and hands back a test push service's subscription.
PUSH_MANAGER_STAND_IN = """(() => {
  const sub = %s, state = window.__push = {keys: [], current: null};
  PushManager.prototype.getSubscription = async () => state.current;
  PushManager.prototype.subscribe = async (options) => {
    state.keys.push(btoa(String.fromCharCode(...new Uint8Array(options.applicationServerKey))));
    state.current = {endpoint: sub.endpoint, toJSON: () => sub, unsubscribe: async () => !(state.current = null)};
    return state.current;
  };
})();"""


def test_push_button_subscribes_with_server_key_and_turns_off(dept, page, tmp_path):
    key = dept.http.get("/api/v1/push/key").json()["public_key"]
    dept.hotlist(tmp_path, "stolen", HOTLIST)
    page.context.grant_permissions(["notifications"], origin=dept.live.url)
    with PushService(expected_key=key) as service:
        page.add_init_script(PUSH_MANAGER_STAND_IN % json.dumps(service.subscription("alice-phone")))
        signed_in_with_worker(page, dept.live.url)
        go_on_duty(page)
        button, help_text = page.locator("#push-toggle"), page.locator("#push-help")
        button.click()
        expect(help_text).to_have_text("Phone alerts are on for this device.")
        expect(button).to_have_text("Phone alerts: on")
        expect(button).to_have_attribute("aria-pressed", "true")
        given = base64.b64decode(page.evaluate("window.__push.keys")[0])
        assert given == base64.urlsafe_b64decode(key + "=" * (-len(key) % 4))  # the server's VAPID key
        dept.post_read("8ABC123")  # the subscription the button stored really receives the alert
        assert json.loads(service.wait_for(1, timeout=5)[0].payload)["plate"] == "8ABC123"
        button.click()
        expect(help_text).to_have_text("Phone alerts are off for this device.")
        expect(button).to_have_text("Turn on phone alerts")
    with sqlite3.connect(dept.settings.db_path) as conn:
        assert conn.execute("SELECT count(*) FROM push_subscriptions").fetchone() == (0,)
        actions = [a for (a,) in conn.execute("SELECT action FROM audit_log WHERE action LIKE 'push.%' ORDER BY id")]
    assert actions == ["push.subscribe", "push.unsubscribe"]


def test_offline_shows_offline_page_and_cached_shell(dept, page):
    signed_in_with_worker(page, dept.live.url)
    from_worker: list[str] = []
    page.on("response", lambda r: r.from_service_worker and from_worker.append(r.url.split("/", 3)[3]))
    page.context.set_offline(True)
    page.goto(f"{dept.live.url}/alerts/1")
    expect(page.get_by_role("heading", name="No connection")).to_be_visible()
    assert {"static/app.css", "static/theme.js", "static/app.js"} <= set(from_worker)
    # Styled from the cached stylesheet: dark background, not the browser's white.
    assert page.evaluate("getComputedStyle(document.body).backgroundColor") == "rgb(11, 15, 20)"
    screenshot(page, "offline")
    page.context.set_offline(False)
    page.get_by_role("link", name="Try again").click()
    expect(page.get_by_role("heading", name="Alerts")).to_be_visible()


@pytest.fixture
def no_js_page(playwright_driver):
    browser = playwright_driver.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
    context = browser.new_context(java_script_enabled=False, viewport=PHONE)
    context.set_default_timeout(15_000)
    yield context.new_page()
    browser.close()


def test_forms_work_without_javascript(dept, no_js_page, tmp_path):
    dept.hotlist(tmp_path, "stolen", HOTLIST)
    [alert_id] = dept.post_read("8ABC123").json()["alerts"]
    page = no_js_page
    sign_in(page, dept.live.url)
    expect(page.locator(f"#alert-{alert_id}")).to_contain_text("8ABC123")
    page.locator(f"#alert-{alert_id} a").click()
    page.get_by_role("button", name="Acknowledge").click()
    expect(page).to_have_url(f"{dept.live.url}/alerts/{alert_id}")
    expect(page.get_by_test_id("alert-status")).to_have_text("acknowledged")
    page.get_by_role("button", name="Record outcome").click()  # nothing chosen: the form comes back
    expect(page.get_by_role("alert")).to_contain_text("Choose an outcome")
    page.get_by_label("Not a match").check()
    page.get_by_role("button", name="Record outcome").click()
    expect(page.get_by_test_id("alert-status")).to_have_text("not match")
