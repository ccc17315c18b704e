import { t } from "/static/i18n.js";

// Elements from data only: text is always textContent (or an attribute), never HTML.
// A translated text made with tx() is redrawn in place by retranslate(), as a child or as an attribute.
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (key.startsWith("on") && typeof value === "function") el.addEventListener(key.slice(2), value);
    else if (value instanceof Text && value.i18n) {
      el.setAttribute(key, value.data);
      el.i18nAttrs = { ...(el.i18nAttrs || {}), [key]: value.i18n };
    }
    else if (value === true) el.setAttribute(key, "");
    else if (value !== false && value != null) el.setAttribute(key, value);
  }
  for (const child of children.flat(Infinity)) {
    if (child != null && child !== false) el.append(child instanceof Node ? child : String(child));
  }
  return el;
}

// A text in the page's language that follows a language change made while it is on screen (a call
// is not redrawn from scratch: that would drop its videos and what is typed). `key` is an i18n key
// (with `values`), or a function giving the whole text (a title made of translated parts and data).
export function tx(key, values = {}) {
  const text = typeof key === "function" ? key : () => t(key, values);
  const node = document.createTextNode(text());
  node.i18n = text;
  return node;
}

// Every tx() text under `root`, in the language now loaded.
export function retranslate(root) {
  const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) if (node.i18n) node.data = node.i18n();
  for (const el of [root, ...root.querySelectorAll("*")])
    for (const [name, text] of Object.entries(el.i18nAttrs || {})) el.setAttribute(name, text());
}

// A translated message for a failure, with the server's own English text kept as its detail
// (in a <small>, and as the title) for support: `error.<code>` from the contract's codes, or
// "timeout" / "offline" from the protocol layer.
export function errorNode(t, error, extraClass = "") {
  const code = error?.code || (error instanceof TypeError ? "offline" : "unknown");
  const key = `error.${code}`;
  const text = t(key) === key ? t("error.unknown") : t(key);
  const detail = error?.detail || error?.message || "";
  return h(
    "p",
    { class: `error ${extraClass}`.trim(), role: "alert", title: detail || false, "data-code": code },
    text,
    detail && detail !== text ? h("small", { class: "detail" }, ` (${detail})`) : null,
  );
}

// Shows a failure next to the control that caused it: `slot` is an element kept beside it.
export function showError(slot, t, error) {
  slot.replaceChildren(error ? errorNode(t, error) : "");
}

// An error from an HTTP answer or an ack: `{code, message}` -> an Error carrying both.
export class AppFailure extends Error {
  constructor(code, detail) {
    super(detail || code);
    this.code = code;
    this.detail = detail;
  }
}
