// Translations: Vietnamese by default, English on request. Dates in Vietnamese time.
let strings = {};
export let language = localStorage.getItem("telerounds.language") || "vi";

export async function load(lang = language) {
  language = lang;
  localStorage.setItem("telerounds.language", lang);
  document.documentElement.lang = lang;
  strings = await (await fetch(`/static/i18n/${lang}.json`)).json();
  // The page's own markup: text (data-t) and accessible names (data-t-label).
  for (const el of document.querySelectorAll("[data-t]")) el.textContent = t(el.dataset.t);
  for (const el of document.querySelectorAll("[data-t-label]")) el.setAttribute("aria-label", t(el.dataset.tLabel));
}

export function t(key, values = {}) {
  let text = strings[key] ?? key;
  for (const [name, value] of Object.entries(values)) text = text.replaceAll(`{${name}}`, String(value));
  return text;
}

const formatter = () =>
  new Intl.DateTimeFormat(language === "vi" ? "vi-VN" : "en-GB", {
    timeZone: "Asia/Ho_Chi_Minh",
    hour: "2-digit",
    minute: "2-digit",
    day: "2-digit",
    month: "2-digit",
    year: "numeric",
  });

export function when(iso) {
  return iso ? formatter().format(new Date(iso)) : "—";
}
