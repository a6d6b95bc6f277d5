// Runs before first paint so night users never get a white flash. Dark unless chosen otherwise.
document.documentElement.dataset.theme = localStorage.getItem("theme") || "dark";
