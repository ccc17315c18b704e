// The service worker keeps the app shell only (the page, its scripts, styles, words and the
// vendored client) so the app opens on a poor link and can be installed. Clinical data never
// passes through it: /api/ and the socket go straight to the network, uncached.
const CACHE = "telerounds-shell-v1";
const SHELL = [
  "/",
  "/static/app.js",
  "/static/protocol.js",
  "/static/outbox.js",
  "/static/call.js",
  "/static/rounds.js",
  "/static/board.js",
  "/static/admin.js",
  "/static/i18n.js",
  "/static/i18n/vi.json",
  "/static/i18n/en.json",
  "/static/style.css",
  "/static/stage.css",
  "/static/board.css",
  "/static/print.css",
  "/static/vendor/socket.io.esm.min.js",
  "/static/manifest.webmanifest",
  "/static/favicon.svg",
  "/static/icons/icon.svg",
  "/static/ui/attachments.js",
  "/static/ui/consent.js",
  "/static/ui/dom.js",
  "/static/ui/history.js",
  "/static/ui/home.js",
  "/static/ui/icons.js",
  "/static/ui/listedpatient.js",
  "/static/ui/login.js",
  "/static/ui/notes.js",
  "/static/ui/offer.js",
  "/static/ui/prejoin.js",
  "/static/ui/record.js",
  "/static/ui/room.js",
  "/static/ui/roundroom.js",
  "/static/ui/stage.js",
];

// Only these are ever answered from the cache: the page and files under /static/.
function isShell(url) {
  if (url.origin !== self.location.origin) return false;
  if (url.pathname.startsWith("/api/") || url.pathname.startsWith("/socket.io")) return false;
  return url.pathname === "/" || url.pathname.startsWith("/static/");
}

self.addEventListener("install", (event) => {
  event.waitUntil(
    caches
      .open(CACHE)
      .then((cache) => cache.addAll(SHELL))
      .catch(() => undefined),
  );
  self.skipWaiting();
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    caches
      .keys()
      .then((keys) => Promise.all(keys.filter((k) => k !== CACHE).map((k) => caches.delete(k))))
      .then(() => self.clients.claim()),
  );
});

// Network first (a new version is picked up at once), the cached copy when the network fails.
self.addEventListener("fetch", (event) => {
  const request = event.request;
  if (request.method !== "GET") return;
  const url = new URL(request.url);
  if (!isShell(url) || url.search) return;
  event.respondWith(
    fetch(request)
      .then((response) => {
        if (response.ok && response.type === "basic") {
          const copy = response.clone();
          caches.open(CACHE).then((cache) => cache.put(request, copy));
        }
        return response;
      })
      .catch(() => caches.match(request).then((hit) => hit || Response.error())),
  );
});
