// "Ca đã kết thúc": the consults that ended or were cancelled, for clinicians and specialists,
// newest first, filtered by date, specialty, status and patient reference; "load more" pages on
// with `before`. Each opens its record page.
import { errorNode } from "/static/ui/dom.js";

const PAGE = 30;

// `ctx`: { h, t, when, api, specialties, specialtyName }.
export class History {
  constructor(ctx) {
    this.ctx = ctx;
    this.items = [];
    this.before = null;
    this.element = ctx.h("section", { class: "history", "aria-labelledby": "history-title" });
    this.list = ctx.h("div", { class: "history-list", "aria-live": "polite" });
    this.error = ctx.h("div", { class: "field-error" });
    this.more = ctx.h(
      "button",
      { type: "button", class: "secondary load-more", hidden: true, onclick: () => this.load(true) },
      ctx.t("history.more"),
    );
    this.filters = this.filterForm();
    this.element.append(
      ctx.h("h2", { id: "history-title" }, ctx.t("history.title")),
      this.filters,
      this.error,
      this.list,
      this.more,
    );
    this.load(false);
  }

  filterForm() {
    const { h, t, specialties, specialtyName } = this.ctx;
    const field = (id, label, control) => h("div", { class: "field" }, h("label", { for: id }, label), control);
    this.from = h("input", { id: "hist-from", name: "from", type: "date" });
    this.to = h("input", { id: "hist-to", name: "to", type: "date" });
    this.specialty = h(
      "select",
      { id: "hist-specialty", name: "specialty" },
      h("option", { value: "" }, t("history.any_specialty")),
      specialties.map((s) => h("option", { value: s.code }, specialtyName(s.code))),
    );
    this.status = h(
      "select",
      { id: "hist-status", name: "status" },
      [
        ["ended,cancelled", "history.any_status"],
        ["ended", "status.ended"],
        ["cancelled", "status.cancelled"],
      ].map(([value, key]) => h("option", { value }, t(key))),
    );
    this.ref = h("input", { id: "hist-ref", name: "ref", maxlength: 64, autocomplete: "off" });
    return h(
      "form",
      {
        class: "history-filters",
        onsubmit: (e) => {
          e.preventDefault();
          this.load(false);
        },
      },
      h(
        "div",
        { class: "row" },
        field("hist-from", t("history.from"), this.from),
        field("hist-to", t("history.to"), this.to),
        field("hist-specialty", t("history.specialty"), this.specialty),
        field("hist-status", t("history.status"), this.status),
        field("hist-ref", t("history.ref"), this.ref),
      ),
      h("button", { type: "submit" }, t("history.search")),
    );
  }

  query(more) {
    const q = new URLSearchParams({ status: this.status.value, limit: String(PAGE) });
    if (this.from.value) q.set("from", this.from.value);
    // `to` is exclusive on the server: the day after the chosen one, so the chosen day counts.
    if (this.to.value) {
      const next = new Date(`${this.to.value}T00:00:00Z`);
      next.setUTCDate(next.getUTCDate() + 1);
      q.set("to", next.toISOString().slice(0, 10));
    }
    if (this.specialty.value) q.set("specialty", this.specialty.value);
    if (this.ref.value.trim()) q.set("ref", this.ref.value.trim());
    if (more && this.before) q.set("before", this.before);
    return q;
  }

  async load(more) {
    const { t, api } = this.ctx;
    this.error.replaceChildren();
    try {
      const query = this.query(more);
      let body;
      try {
        body = await api(`/api/consults?${query}`);
      } catch (error) {
        // A server that takes one status at a time: ask for all, keep the asked ones below.
        if (error.code !== "invalid" || !query.get("status").includes(",")) throw error;
        query.delete("status");
        body = await api(`/api/consults?${query}`);
      }
      // A server without the filters yet answers with everything: keep what was asked for.
      const wanted = this.status.value.split(",");
      const ref = this.ref.value.trim().toLowerCase();
      const found = (body.consults || []).filter(
        (c) =>
          wanted.includes(c.status) &&
          c.kind !== "round" &&
          (!this.specialty.value || c.specialty === this.specialty.value) &&
          (!ref || c.patient?.ref?.toLowerCase().includes(ref)),
      );
      const seen = new Set(more ? this.items.map((c) => c.id) : []);
      this.items = [...(more ? this.items : []), ...found.filter((c) => !seen.has(c.id))];
      const last = (body.consults || []).at(-1);
      this.before =
        body.next_before !== undefined
          ? body.next_before
          : (body.consults || []).length >= PAGE
            ? last?.created_at || null
            : null;
      this.draw();
    } catch (error) {
      this.error.replaceChildren(errorNode(t, error));
    }
  }

  draw() {
    const { h, t, when, specialtyName } = this.ctx;
    this.more.hidden = !this.before;
    if (!this.items.length) {
      this.list.replaceChildren(h("p", { class: "muted" }, t("history.none")));
      return;
    }
    this.list.replaceChildren(
      h(
        "ul",
        { class: "history-items" },
        this.items.map((c) =>
          h(
            "li",
            { class: "card", "data-consult": c.id },
            h(
              "a",
              { href: `#/record/${encodeURIComponent(c.id)}`, class: "record-link" },
              `${c.patient?.ref || ""} — ${specialtyName(c.specialty)}`,
            ),
            h(
              "div",
              { class: "status", "data-status": c.status },
              t(`status.${c.status}`),
              c.outcome ? ` — ${t(`outcome.${c.outcome}`)}` : "",
            ),
            c.result
              ? h("div", { class: "result", "data-result": c.result.result },
                `${t("result.label")}: ${t(`result.${c.result.result}`)}`)
              : null,
            h(
              "div",
              { class: "muted" },
              `${when(c.ended_at || c.created_at)} · ${c.requester?.name || ""}` +
                (c.specialist ? ` · ${c.specialist.name}` : ""),
            ),
          ),
        ),
      ),
    );
  }
}
