// Platewatch app shell: theme, live-feed status and sound, and phone alerts (web push).
"use strict";

const csrfToken = () => JSON.parse(document.body.getAttribute("hx-headers") || "{}")["x-csrftoken"] || "";

function setupTheme() {
  const button = document.getElementById("theme-toggle");
  if (!button) return;
  button.addEventListener("click", () => {
    const next = document.documentElement.dataset.theme === "light" ? "dark" : "light";
    applyTheme(next);  // from theme.js
    localStorage.setItem("theme", next);
  });
}

// A short two-tone beep from WebAudio: no sound file to cache, works offline.
function beep() {
  const audio = new (window.AudioContext || window.webkitAudioContext)();
  [880, 660].forEach((hz, i) => {
    const osc = audio.createOscillator();
    osc.frequency.value = hz;
    osc.connect(audio.destination);
    osc.start(audio.currentTime + i * 0.25);
    osc.stop(audio.currentTime + i * 0.25 + 0.2);
  });
}

function setupFeed() {
  const live = document.getElementById("live");
  const sound = document.getElementById("sound-toggle");
  if (!live) return;
  let soundOn = localStorage.getItem("sound") === "on";
  const showSound = () => {
    sound.textContent = soundOn ? "Sound on" : "Sound off";
    sound.setAttribute("aria-pressed", String(soundOn));
  };
  showSound();
  sound.addEventListener("click", () => {
    soundOn = !soundOn;
    localStorage.setItem("sound", soundOn ? "on" : "off");
    showSound();
    if (soundOn) beep();
  });
  document.body.addEventListener("htmx:sseOpen", () => { live.textContent = "live"; live.classList.add("on"); });
  document.body.addEventListener("htmx:sseError", () => { live.textContent = "reconnecting…"; live.classList.remove("on"); });
  // The server closed the feed (session locked or ended): it says why above the cards.
  document.body.addEventListener("htmx:sseClose", () => { live.textContent = "stopped"; live.classList.remove("on"); });
  document.body.addEventListener("htmx:sseMessage", () => {
    document.getElementById("empty")?.remove();
    placeByPriority(document.getElementById("feed")?.firstElementChild);
    if (soundOn) beep();
  });
}

// The server orders the feed: unhandled alerts by priority, then newest. A live card arrives on
// top: it moves below the unhandled cards of higher priority.
function placeByPriority(card) {
  if (!card || !card.classList.contains("alert-card")) return;
  const priority = Number(card.dataset.priority);
  let after = null;
  for (const other of card.parentElement.querySelectorAll(".alert-card")) {
    if (other !== card && other.dataset.status === "new" && Number(other.dataset.priority) > priority) after = other;
  }
  if (after) after.after(card);
}

function keyBytes(base64url) {
  const text = atob(base64url.replace(/-/g, "+").replace(/_/g, "/"));
  return Uint8Array.from(text, (c) => c.charCodeAt(0));
}

async function postJSON(url, body) {
  const response = await fetch(url, {
    method: "POST", credentials: "same-origin", body: JSON.stringify(body),
    headers: { "Content-Type": "application/json", "x-csrftoken": csrfToken() },
  });
  if (!response.ok) throw new Error(`${url}: ${response.status}`);
}

async function setupPush(registration) {
  const button = document.getElementById("push-toggle");
  const help = document.getElementById("push-help");
  if (!button) return;
  const say = (text) => { help.textContent = text; help.hidden = !text; };
  if (!("PushManager" in window) || !("Notification" in window)) {
    say("This browser can't show alerts while the app is closed.");
    return;
  }
  let subscription = await registration.pushManager.getSubscription();
  const show = () => {
    button.hidden = false;
    button.textContent = subscription ? "Phone alerts: on" : "Turn on phone alerts";
    button.setAttribute("aria-pressed", String(Boolean(subscription)));
  };
  show();
  button.addEventListener("click", async () => {
    try {
      if (subscription) {
        await postJSON("/push/unsubscribe", subscription.toJSON());
        await subscription.unsubscribe();
        subscription = null;
        say("Phone alerts are off for this device.");
      } else {
        say("Your browser will ask to allow notifications: alerts then reach this device even when the app is closed.");
        if ((await Notification.requestPermission()) !== "granted") {
          say("Notifications are blocked. Allow them in the browser's site settings to get phone alerts.");
          return;
        }
        const { public_key } = await (await fetch("/api/v1/push/key")).json();
        subscription = await registration.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: keyBytes(public_key) });
        await postJSON("/push/subscribe", subscription.toJSON());
        say("Phone alerts are on for this device.");
      }
    } catch (error) {
      say(`Could not change phone alerts: ${error.message}`);
    }
    show();
  });
}

// Form errors come back as 422 with the form re-rendered: show them instead of dropping them.
htmx.config.responseHandling = [
  { code: "204", swap: false },
  { code: "[23]..", swap: true },
  { code: "422", swap: true, error: false },
  { code: "[45]..", swap: false, error: true },
];

// A refusal the server words as HTML (a read already kept as evidence, or no longer stored) takes
// the place of the form that asked, as a 422 does. Other errors come as JSON: reported below.
document.addEventListener("htmx:beforeSwap", (event) => {
  const xhr = event.detail.xhr;
  if ([404, 409].includes(xhr.status) && (xhr.getResponseHeader("content-type") || "").startsWith("text/html")) {
    event.detail.shouldSwap = true;
    event.detail.isError = false;
  }
});

// Copy buttons (the camera token): shown only where JavaScript runs; selecting is the fallback.
function setupCopyButtons() {
  document.querySelectorAll("button[data-copy]").forEach((button) => {
    const field = document.getElementById(button.dataset.copy);
    const status = document.getElementById("copy-status");
    button.hidden = false;
    button.addEventListener("click", async () => {
      field.select();
      try {
        await navigator.clipboard.writeText(field.value);
        status.textContent = "Copied.";
      } catch {
        status.textContent = "Selected: press Ctrl+C, or long-press and copy.";
      }
    });
  });
}

// htmx drops error answers silently; say what went wrong (e.g. a file over the upload limit).
function setupErrorReports() {
  document.body.addEventListener("htmx:responseError", (event) => {
    const status = event.detail.xhr.status;
    const message = status === 413 ? "That file is too large to upload." : `The server answered ${status}. Try again.`;
    let box = document.getElementById("request-error");
    if (!box) {
      box = document.createElement("p");
      box.id = "request-error";
      box.className = "error";
      box.setAttribute("role", "alert");
      document.getElementById("main").prepend(box);
    }
    box.textContent = message;
  });
}

document.addEventListener("DOMContentLoaded", async () => {
  setupTheme();
  setupFeed();
  setupCopyButtons();
  setupErrorReports();
  if ("serviceWorker" in navigator) {
    const registration = await navigator.serviceWorker.register("/sw.js");
    await setupPush(registration);
  }
});
