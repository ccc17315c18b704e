// A consult's attachments in a room: every one of them, earlier ones included, with who uploaded
// it, when, and its size. Images open in a viewer inside the page and PDFs download, so the call
// is never left for a `blob:` tab. Uploading clears the file field.

import { tx } from "/static/ui/dom.js";

const ACCEPT = "image/jpeg,image/png,application/pdf";

export class Attachments {
  // `names`: user id -> name, for uploaders the record does not list (the call's peers, yourself).
  constructor(ctx, { consultId = null, names = new Map(), prefix = "" } = {}) {
    this.ctx = ctx;
    this.consultId = consultId;
    this.names = names;
    this.files = new Map();
    const { h } = ctx;
    this.list = h("ul", { class: "files" });
    this.input = h("input", { type: "file", name: `${prefix}file`, accept: ACCEPT, "aria-label": tx("files.choose") });
    this.error = h("p", { class: "error files-error", role: "alert" });
    this.upload = h(
      "button",
      { type: "button", class: "secondary upload", onclick: () => this.send() },
      tx("files.upload"),
    );
    this.form = h(
      "div",
      { class: "row files-form" },
      h("label", { class: "file-label" }, tx("files.choose"), this.input),
      this.upload,
    );
    this.viewer = h("dialog", { class: "viewer", "aria-label": tx("files.viewer") });
    this.element = h("div", { class: "files-part" }, this.list, this.form, this.error, this.viewer);
    this.onAttachment = ({ consult_id, attachment }) => consult_id === this.consultId && this.add(attachment);
    ctx.connection.on("attachment", this.onAttachment);
    this.draw();
  }

  async setConsult(consultId) {
    if (consultId === this.consultId) return;
    this.consultId = consultId;
    this.files.clear();
    this.draw();
    await this.load();
  }

  // Every attachment so far, from the consult's record (which also names the uploaders).
  async load() {
    const consultId = this.consultId;
    if (!consultId) return;
    try {
      const record = await this.ctx.api(`/api/consults/${encodeURIComponent(consultId)}`);
      if (consultId !== this.consultId) return;
      for (const p of record.participants || []) this.names.set(p.id, p.name);
      for (const n of record.notes || []) if (n.author) this.names.set(n.author.id, n.author.name);
      for (const a of record.attachments || []) this.files.set(a.id, a);
      this.draw();
    } catch (e) {
      this.error.textContent = this.ctx.t("error", { message: e.message });
    }
  }

  add(attachment) {
    this.files.set(attachment.id, attachment);
    this.draw();
  }

  async send() {
    const { t, api } = this.ctx;
    const file = this.input.files[0];
    if (!file || !this.consultId) return;
    this.error.textContent = "";
    this.upload.disabled = true;
    try {
      const form = new FormData();
      form.append("file", file);
      const { attachment } = await api(`/api/consults/${encodeURIComponent(this.consultId)}/attachments`, {
        method: "POST",
        body: form,
      });
      this.add(attachment);
      this.input.value = "";
    } catch (e) {
      this.error.textContent = t("error", { message: e.message });
    } finally {
      this.upload.disabled = false;
    }
  }

  draw() {
    const { h, t, when, user } = this.ctx;
    const files = [...this.files.values()].sort((a, b) => String(a.created_at).localeCompare(String(b.created_at)));
    this.list.replaceChildren(
      ...files.map((a) => {
        const who = a.uploader_id === user.id ? user.name : this.names.get(a.uploader_id) || "—";
        return h(
          "li",
          { "data-file": a.id, "data-type": a.content_type },
          h("button", { type: "button", class: "link file-open", onclick: () => this.open(a) }, a.filename),
          h("small", { class: "muted" }, `${who} · ${when(a.created_at)} · ${size(a.size, t)}`),
        );
      }),
    );
    if (!files.length) this.list.append(h("li", { class: "muted" }, t("files.none")));
  }

  async open(a) {
    const { h, t, api } = this.ctx;
    let blob;
    try {
      blob = await api(a.url);
    } catch (e) {
      this.error.textContent = t("error", { message: e.message });
      return;
    }
    const url = URL.createObjectURL(blob);
    if (a.content_type.startsWith("image/")) {
      const close = h(
        "button",
        { type: "button", class: "secondary viewer-close", onclick: () => this.viewer.close() },
        t("files.close"),
      );
      const download = h("a", { href: url, download: a.filename, class: "viewer-download" }, t("files.download"));
      this.viewer.replaceChildren(
        h("div", { class: "viewer-bar" }, h("strong", {}, a.filename), download, close),
        h("img", { src: url, alt: a.filename }),
      );
      this.viewer.onclose = () => URL.revokeObjectURL(url);
      this.viewer.showModal();
      close.focus();
    } else {
      // A PDF: saved by the browser, without leaving the page (and the call).
      const link = h("a", { href: url, download: a.filename, hidden: true });
      document.body.append(link);
      link.click();
      link.remove();
      setTimeout(() => URL.revokeObjectURL(url), 60000);
    }
  }

  close() {
    this.ctx.connection.off("attachment", this.onAttachment);
    if (this.viewer.open) this.viewer.close();
  }
}

function size(bytes, t) {
  if (bytes >= 1024 * 1024) return t("files.mb", { n: (bytes / 1024 / 1024).toFixed(1) });
  if (bytes >= 1024) return t("files.kb", { n: Math.round(bytes / 1024) });
  return t("files.bytes", { n: bytes });
}
