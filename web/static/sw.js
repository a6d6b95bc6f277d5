// Platewatch service worker: app shell and offline page, and a notification for every alert push.
"use strict";
const CACHE = "platewatch-shell-v1";
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
// Static files from the cache first. Nothing with plate data is ever cached.
self.addEventListener("fetch", (event) => {
  const request = event.request;
  if (request.method !== "GET") return;
  const url = new URL(request.url);
  if (url.origin !== self.location.origin) return;
  if (request.mode === "navigate") {
    event.respondWith(fetch(request).catch(() => caches.match("/offline")));
  } else if (url.pathname.startsWith("/static/")) {
    event.respondWith(caches.match(request).then((hit) => hit || fetch(request)));
  }
});

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

self.addEventListener("notificationclick", (event) => {
  event.notification.close();
  const target = new URL(event.notification.data?.url || "/", self.location.origin);
  event.waitUntil((async () => {
    const windows = await self.clients.matchAll({ type: "window", includeUncontrolled: true });
    for (const client of windows) {
      if (new URL(client.url).origin === target.origin && "navigate" in client) {
        await client.focus();
        return client.navigate(target.href);
      }
    }
    return self.clients.openWindow(target.href);
  })());
});
