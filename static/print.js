// The Print button of the server's printable pages (minutes, monthly report): wired here, as
// the pages' policy runs no inline script.
for (const button of document.querySelectorAll("[data-print]")) {
  button.addEventListener("click", () => window.print());
}
