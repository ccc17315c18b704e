// The supervisor board: live from `/monitor` (a snapshot, then whole-board updates), and the
// figures of the last months from `/api/stats` as bar charts, with a CSV export.
import { io } from "/static/vendor/socket.io.esm.min.js";

const OUTCOMES = ["treated_locally", "transfer", "follow_up", "onsite_support"];

export class Board {
  constructor({ h, t, when, api, token, specialtyName }) {
    this.h = h; this.t = t; this.when = when; this.api = api; this.token = token;
    this.specialtyName = specialtyName;
    this.live = h("div", { class: "board-live" }, h("p", { class: "muted" }, t("board.loading")));
    this.charts = h("div", { class: "board-charts" });
    this.element = h("section", { class: "board" }, h("h2", {}, t("supervisor.title")), this.live, this.charts);
  }

  start() {
    this.socket = io("/monitor", { auth: { token: this.token }, transports: ["websocket"] });
    this.socket.on("monitor:snapshot", (board) => this.draw(board));
    this.socket.on("monitor:update", (board) => this.draw(board));
    this.loadStats().catch((e) => this.charts.replaceChildren(this.h("p", { class: "error" }, e.message)));
  }

  stop() { this.socket?.disconnect(); }

  draw(board) {
    const { h, t } = this;
    this.last = board;
    const today = board.stats.today;
    const figures = h("div", { class: "figures" }, ["requests", "accepted", "ended", "referrals_avoided", "waiting", "active"].map((k) =>
      h("div", { class: "figure", "data-figure": k }, h("strong", {}, today[k]), h("span", {}, t(`board.today.${k}`)))));
    // A ward round in progress is one row: its title and ward, and how many patients have a decision.
    const what = (s) => (s.kind === "round" ? t("board.round", { title: s.round.title, ward: s.round.ward }) : this.specialtyName(s.specialty));
    const sessions = this.table("sessions", [t("board.session"), t("board.hospital"), t("board.specialist"), t("board.participants"), t("board.round_patients"), t("board.duration"), t("board.quality")],
      board.sessions.map((s) => h("tr", { "data-session": s.id, "data-kind": s.kind, class: s.kind === "round" ? "round" : null },
        h("td", {}, what(s)), h("td", {}, s.hospital.name), h("td", {}, s.specialist?.name || "—"),
        h("td", {}, s.participants.map((p) => p.user.name + (p.reconnecting ? ` (${t("board.reconnecting")})` : "")).join(", ")),
        h("td", { class: "round-progress" }, s.round ? t("board.round_progress", { decided: s.round.decided, patients: s.round.patients }) : "—"),
        h("td", {}, minutes(s.duration_s)), h("td", {}, this.quality(s.quality)))));
    const queue = this.table("queue", [t("board.specialty"), t("board.urgency"), t("board.hospital"), t("board.waiting")],
      board.queue.map((q) => h("tr", { "data-queued": q.id, class: q.urgency },
        h("td", {}, this.specialtyName(q.specialty)), h("td", {}, t(`urgency.${q.urgency}`)), h("td", {}, q.hospital.name), h("td", {}, minutes(q.waiting_s)))));
    const presence = this.table("presence", [t("board.specialist"), t("board.hospital"), t("board.specialty"), t("board.status")],
      board.presence.map((p) => h("tr", {},
        h("td", {}, p.user.name), h("td", {}, p.user.hospital.name), h("td", {}, p.specialties.map((s) => this.specialtyName(s)).join(", ")),
        h("td", {}, h("span", { class: `dot ${p.online ? p.status : "offline"}` }), p.online ? t(`presence.${p.in_consult ? "busy" : p.status}`) : t("board.offline")))));
    this.live.replaceChildren(figures,
      h("h3", {}, t("board.sessions")), sessions,
      h("h3", {}, t("board.queue")), queue,
      h("h3", {}, t("board.presence")), presence,
      h("p", { class: "muted" }, t("board.updated", { at: this.when(board.server_time) })));
  }

  table(name, headings, rows) {
    const { h, t } = this;
    if (!rows.length) return h("p", { class: "muted", "data-empty": name }, t(`board.none.${name}`));
    return h("table", { "data-table": name }, h("thead", {}, h("tr", {}, headings.map((x) => h("th", {}, x)))), h("tbody", {}, rows));
  }

  quality(samples) {
    const values = Object.values(samples || {});
    if (!values.length) return "—";
    const rtt = Math.max(...values.map((s) => s.rtt_ms || 0));
    const loss = Math.max(...values.map((s) => s.loss_pct || 0));
    return this.t("board.quality_value", { rtt, loss });
  }

  async loadStats() {
    const { h, t } = this;
    const to = new Date();
    const from = new Date(to.getFullYear(), to.getMonth() - 2, 1);
    const query = `from=${from.toISOString()}&to=${to.toISOString()}`;
    const byMonth = await this.api(`/api/stats?${query}&group_by=month`);
    const bySpecialty = await this.api(`/api/stats?${query}&group_by=specialty`);
    const total = byMonth.totals;
    const csv = h("button", { type: "button", class: "secondary", onclick: async () => {
      const blob = await this.api(`/api/stats?${query}&group_by=pair`, { headers: { Accept: "text/csv" } });
      const link = h("a", { href: URL.createObjectURL(blob), download: "telerounds-stats.csv" });
      link.click();
    } }, t("board.csv"));
    const month = to.toISOString().slice(0, 7);
    const report = h("button", { type: "button", class: "secondary", onclick: async () => {
      const blob = await this.api(`/api/stats/report?month=${month}`);
      window.open(URL.createObjectURL(blob), "_blank", "noopener");
    } }, t("board.report"));
    this.charts.replaceChildren(
      h("h3", {}, t("board.history")),
      h("p", {}, t("board.totals", { requests: total.requests, accepted: total.accepted, avoided: total.referrals_avoided,
        wait: minutes(total.wait_median_s), p90: minutes(total.wait_p90_s) })),
      this.bars("month", byMonth.groups.map((g) => [g.label || g.key, g.requests])),
      h("h4", {}, t("board.outcomes")),
      this.bars("outcomes", OUTCOMES.map((o) => [t(`outcome.${o}`), total.outcomes?.[o] || 0])),
      h("h4", {}, t("board.wait_by_specialty")),
      this.bars("wait", bySpecialty.groups.map((g) => [this.specialtyName(g.key), Math.round((g.wait_median_s || 0) / 60)]), t("board.minutes")),
      h("p", {}, csv, " ", report));
  }

  // A bar chart of plain elements: no chart library, nothing to vendor.
  bars(name, pairs, unit = "") {
    const { h } = this;
    const max = Math.max(1, ...pairs.map(([, v]) => v));
    return h("div", { class: "bars", "data-chart": name }, pairs.map(([label, value]) => {
      const fill = h("span", { class: "fill" });
      fill.style.width = `${(100 * value) / max}%`; // set through the DOM: the CSP forbids style attributes
      return h("div", { class: "bar" }, h("span", { class: "label" }, label), fill, h("span", { class: "value" }, `${value}${unit ? ` ${unit}` : ""}`));
    }));
  }
}

function minutes(seconds) {
  if (seconds == null) return "—";
  const s = Math.round(seconds);
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
}
