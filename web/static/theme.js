// Runs in <head> before first paint so night users never get a white flash. Dark unless chosen
// otherwise; the browser's bar (theme-color) follows, so a phone in sunlight is light all over.
const THEME_COLORS = { dark: "#0b0f14", light: "#ffffff" };

function applyTheme(theme) {
  document.documentElement.dataset.theme = theme;
  document.querySelector('meta[name="theme-color"]')?.setAttribute("content", THEME_COLORS[theme]);
}

applyTheme(localStorage.getItem("theme") === "light" ? "light" : "dark");
