// Platewatch service worker: app shell and offline page, and a notification for every alert push.
"use strict";
const CACHE = "platewatch-shell-v2";
const SHELL = [
  "/offline", "/static/app.css", "/static/app.js", "/static/theme.js",
  "/static/htmx-2.0.11.min.js", "/static/htmx-ext-sse-2.2.4.min.js",
  "/static/icons/icon-192.png", "/static/icons/icon-512.png",
];

self.addEventListener("install", (event) => {
  event.waitUntil(caches.open(CACHE).then((cache) => cache.addAll(SHELL)).then(() => self.skipWaiting()));
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    caches.keys()
      .then((keys) => Promise.all(keys.filter((k) => k !== CACHE).map((k) => caches.delete(k))))
      .then(() => self.clients.claim()),
  );
});

// Pages always come from the network (alerts must be current); the offline page when it's gone.
// Static files from the cache at once, refreshed behind it so an update shows on the next load.
// Nothing with plate data is ever cached.
self.addEventListener("fetch", (event) => {
  const request = event.request;
  if (request.method !== "GET") return;
  const url = new URL(request.url);
  if (url.origin !== self.location.origin) return;
  if (request.mode === "navigate") {
    event.respondWith(fetch(request).catch(() => caches.match("/offline")));
  } else if (url.pathname.startsWith("/static/")) {
    event.respondWith(cachedThenRefreshed(event));
  }
});

async function cachedThenRefreshed(event) {
  const cache = await caches.open(CACHE);
  const cached = await cache.match(event.request);
  const fresh = fetch(event.request).then((response) => {
    if (response.ok) cache.put(event.request, response.clone());
    return response;
  });
  if (!cached) return fresh;
  event.waitUntil(fresh.catch(() => undefined));  // offline: the cached copy is all there is
  return cached;
}

self.addEventListener("push", (event) => {
  let alert = {};
  try { alert = event.data ? event.data.json() : {}; } catch (e) { alert = { plate: "?", reason: event.data?.text() }; }
  const title = `${alert.plate || "Plate"} — ${alert.hotlist || "hot list"}`;
  const body = [alert.reason, alert.camera].filter(Boolean).join(" · ");
  event.waitUntil(self.registration.showNotification(title, {
    body, tag: `alert-${alert.id}`, renotify: true, requireInteraction: true,
    icon: "/static/icons/icon-192.png", badge: "/static/icons/icon-192.png",
    vibrate: [300, 100, 300, 100, 300], data: { url: alert.url || "/" },
  }));
});

// Tapping the notification opens its alert: in the app's window when there is one, else a new one.
self.addEventListener("notificationclick", (event) => {
  event.notification.close();
  const target = new URL(event.notification.data?.url || "/", self.location.origin);
  event.waitUntil(openAlert(target.href));
});

async function openAlert(href) {
  const windows = await self.clients.matchAll({ type: "window", includeUncontrolled: true });
  const app = windows.find((client) => new URL(client.url).origin === self.location.origin && "navigate" in client);
  if (app) {
    // Focus and navigate at once: a refused focus must not keep the officer off the alert.
    const [, navigated] = await Promise.allSettled([app.focus(), app.navigate(href)]);
    if (navigated.status === "fulfilled" && navigated.value) return navigated.value;
  }
  return self.clients.openWindow(href);
}
