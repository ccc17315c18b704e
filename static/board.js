// The supervisor board: live from `/monitor` (a snapshot, then whole-board updates), and the
// figures of the last months from `/api/stats` as bar charts, a CSV export and the monthly report.
import { io as defaultIo } from "/static/vendor/socket.io.esm.min.js";

const OUTCOMES = ["treated_locally", "transfer", "follow_up", "onsite_support"];
const FIGURES = ["requests", "accepted", "ended", "referrals_avoided", "waiting", "active"];
// Charts follow the board, but a busy network changes today's figures every few seconds: read the
// statistics again at most this often.
const STATS_EVERY_MS = 10_000;
// Refused for good (signed out elsewhere, no longer a supervisor): back to the login.
const REFUSALS = new Set(["unauthorized", "forbidden"]);
const VIETNAM = "Asia/Ho_Chi_Minh";

// The page's language: the one the sign-in screen chose and i18n set on <html>.
export function pageLanguage() {
  return document.documentElement.lang === "en" ? "en" : "vi";
}

// "2 phút 05 giây" under an hour, "1 giờ 02 phút" from an hour; "—" when there is no value.
export function duration(t, seconds) {
  if (seconds == null) return "—";
  const total = Math.round(seconds);
  const hours = Math.floor(total / 3600);
  const minutes = Math.floor((total % 3600) / 60);
  const secs = total % 60;
  if (hours) return t("board.duration.hours", { h: hours, m: String(minutes).padStart(2, "0") });
  if (minutes) return t("board.duration.minutes", { m: minutes, s: String(secs).padStart(2, "0") });
  return t("board.duration.seconds", { s: secs });
}

// This month in Vietnam time, as YYYY-MM (the value of an <input type=month>).
export function thisMonth(now = new Date()) {
  const parts = new Intl.DateTimeFormat("en-CA", { timeZone: VIETNAM, year: "numeric", month: "2-digit" })
    .formatToParts(now);
  return `${parts.find((p) => p.type === "year").value}-${parts.find((p) => p.type === "month").value}`;
}

export class Board {
  // ctx: { h, t, when, api, token (or connection.token), specialtyName, onRefused?(code), io? }
  constructor(ctx) {
    const { h, t } = ctx;
    this.ctx = ctx;
    this.h = h; this.t = t; this.when = ctx.when; this.api = ctx.api;
    this.token = ctx.token ?? ctx.connection?.token;
    this.specialtyName = ctx.specialtyName;
    this.live = h("div", { class: "board-live" }, h("p", { class: "muted" }, t("board.loading")));
    this.charts = h("div", { class: "board-charts" });
    this.scope = h("p", { class: "board-scope muted", "data-scope": "" });
    this.status = h("p", { class: "board-status", role: "status", "aria-live": "polite" });
    this.dashboard = h("div", { class: "board-dashboard" }, this.scope, this.status, this.live, this.charts);
    this.element = h("section", { class: "board" }, h("h2", {}, t("board.title")), this.dashboard);
    this.statsLoadedAt = 0;
    this.statsTimer = null;
    this.report = null;
  }

  start() {
    const io = this.ctx.io || defaultIo;
    const socket = io("/monitor", { auth: { token: this.token }, transports: ["websocket"] });
    this.socket = socket;
    let connectedBefore = false;
    socket.on("connect", () => {
      this.status.textContent = "";
      // A new connection may be a new scope (the server closes the board when it changes): the
      // statistics follow it with the snapshot that comes next.
      this.rescope = connectedBefore;
      connectedBefore = true;
    });
    socket.on("monitor:snapshot", (board) => {
      this.draw(board);
      if (this.rescope) { this.rescope = false; this.loadStatsNow(); }
    });
    socket.on("monitor:update", (board) => this.draw(board));
    socket.on("disconnect", (reason) => {
      if (this.stopped) return;
      this.status.textContent = this.t("board.reconnecting_board");
      // The server closed the board (its supervisor's scope or access changed): socket.io-client
      // does not come back by itself. Connect again: the new scope's snapshot follows, or the
      // refusal below.
      if (reason === "io server disconnect") socket.connect();
    });
    socket.on("connect_error", (error) => {
      const code = error.data?.code;
      if (REFUSALS.has(code)) {
        socket.disconnect();
        this.status.textContent = this.t("board.refused");
        this.ctx.onRefused?.(code);
        return;
      }
      this.status.textContent = this.t("board.reconnecting_board");
      // A refusal for now (`unavailable`) is not retried by socket.io-client: try again shortly.
      if (!socket.active) setTimeout(() => { if (!this.stopped) socket.connect(); }, 3000);
    });
    this.loadStatsNow();
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.statsTimer);
    this.socket?.disconnect();
    document.body.classList.remove("report-open");
  }

  draw(board) {
    const { h, t } = this;
    const today = board.stats.today;
    const figures = JSON.stringify(today);
    if (this.lastFigures !== undefined && this.lastFigures !== figures) this.loadStatsSoon();
    this.lastFigures = figures;
    this.last = board;
    const cells = h("div", { class: "figures" }, FIGURES.map((k) =>
      h("div", { class: "figure", "data-figure": k },
        h("strong", {}, today[k]), h("span", {}, t(`board.today.${k}`)))));
    this.live.replaceChildren(cells,
      h("h3", {}, t("board.sessions")), this.sessionsTable(board.sessions),
      h("h3", {}, t("board.queue")), this.queueTable(board.queue),
      h("h3", {}, t("board.presence")), this.presenceTable(board.presence),
      h("p", { class: "muted" }, t("board.updated", { at: this.when(board.server_time) })));
  }

  sessionsTable(sessions) {
    const { h, t } = this;
    const heads = ["board.session", "board.hospital", "board.specialist", "board.participants", "board.round_patients",
      "board.duration", "board.quality", "board.record"].map((k) => t(k));
    return this.table("sessions", heads, sessions.map((s) => {
      const round = s.kind === "round";
      // A ward round's record is its focused patient's consult, when the server names one.
      const consultId = round ? s.round?.focus_consult_id : s.id;
      const what = round
        ? t("board.round", { title: s.round.title, ward: s.round.ward }) : this.specialtyName(s.specialty);
      const people = s.participants.map((p) => p.user.name + (p.reconnecting ? ` (${t("board.reconnecting")})` : ""));
      const record = consultId
        ? h("a", { href: `#/record/${encodeURIComponent(consultId)}`, class: "record-link", "data-record": consultId,
          "aria-label": t("board.open_record_of", { what }) }, t("board.open_record"))
        : "—";
      return h("tr", { "data-session": s.id, "data-kind": s.kind, class: round ? "round" : null },
        h("td", {}, what), h("td", {}, s.hospital.name), h("td", {}, s.specialist?.name || "—"),
        h("td", {}, people.join(", ")),
        h("td", { class: "round-progress" }, s.round ? t("board.round_progress", s.round) : "—"),
        h("td", {}, duration(t, s.duration_s)), h("td", {}, this.quality(s.quality)), h("td", {}, record));
    }));
  }

  queueTable(queue) {
    const { h, t } = this;
    const heads = [t("board.specialty"), t("board.urgency"), t("board.hospital"), t("board.waiting")];
    return this.table("queue", heads, queue.map((q) => {
      // Waiting past the alert threshold (WAIT_ALERT_S): the server flags it, the row says it.
      const overdue = q.overdue === true;
      return h("tr", { "data-queued": q.id, "data-overdue": overdue ? "true" : null,
        class: [q.urgency, overdue ? "overdue" : null].filter(Boolean).join(" ") },
      h("td", {}, this.specialtyName(q.specialty)), h("td", {}, t(`urgency.${q.urgency}`)),
      h("td", {}, q.hospital.name),
      h("td", {}, duration(t, q.waiting_s),
        overdue ? h("span", { class: "overdue-label" }, t("board.overdue")) : null));
    }));
  }

  presenceTable(presence) {
    const { h, t } = this;
    const heads = [t("board.specialist"), t("board.hospital"), t("board.specialty"), t("board.status")];
    return this.table("presence", heads, presence.map((p) => h("tr", { "data-specialist": p.user.id },
      h("td", {}, p.user.name), h("td", {}, p.user.hospital.name),
      h("td", {}, p.specialties.map((s) => this.specialtyName(s)).join(", ")),
      h("td", {}, h("span", { class: `dot ${p.online ? p.status : "offline"}`, "aria-hidden": "true" }),
        p.online ? t(`presence.${p.in_consult ? "busy" : p.status}`) : t("board.offline")))));
  }

  // A table in its own scrolling box: a phone scrolls the table, never the page sideways.
  table(name, headings, rows) {
    const { h, t } = this;
    if (!rows.length) return h("p", { class: "muted", "data-empty": name }, t(`board.none.${name}`));
    return h("div", { class: "table-scroll", role: "region", tabindex: "0", "aria-label": t(`board.${name}`) },
      h("table", { "data-table": name }, h("thead", {}, h("tr", {}, headings.map((x) => h("th", { scope: "col" }, x)))),
        h("tbody", {}, rows)));
  }

  quality(samples) {
    const values = Object.values(samples || {});
    if (!values.length) return "—";
    const rtt = Math.max(...values.map((s) => s.rtt_ms || 0));
    const loss = Math.max(...values.map((s) => s.loss_pct || 0));
    const figures = this.t("board.quality_value", { rtt, loss });
    // A link too weak for video: that call goes on with audio only (static/linkquality.js).
    if (!values.some((s) => s.audio_only_link)) return figures;
    return this.h("span", {}, figures, " ", this.h("strong", { class: "audio-only-link" }, this.t("board.audio_only_link")));
  }

  // Today's figures changed: read the statistics again, at most once every STATS_EVERY_MS.
  loadStatsSoon() {
    if (this.statsTimer) return;
    const wait = Math.max(0, this.statsLoadedAt + STATS_EVERY_MS - Date.now());
    this.statsTimer = setTimeout(() => { this.statsTimer = null; this.loadStatsNow(); }, wait);
  }

  loadStatsNow() {
    this.statsLoadedAt = Date.now();
    this.loadStats().catch((e) => {
      if (!this.stopped) this.charts.replaceChildren(this.h("p", { class: "error", role: "alert" }, e.message));
    });
  }

  period() {
    const to = new Date();
    const from = new Date(to.getFullYear(), to.getMonth() - 2, 1);
    return { from, to, query: `from=${from.toISOString()}&to=${to.toISOString()}` };
  }

  async loadStats() {
    const { h, t } = this;
    const { query } = this.period();
    const [byMonth, bySpecialty] = await Promise.all([
      this.api(`/api/stats?${query}&group_by=month`), this.api(`/api/stats?${query}&group_by=specialty`)]);
    if (this.stopped) return;
    this.scope.textContent = byMonth.scope?.name
      ? t("board.scope", { name: byMonth.scope.name }) : t("board.scope_network");
    this.scope.dataset.scope = byMonth.scope?.id || "";
    const total = byMonth.totals;
    const minutes = (seconds) => Math.round((seconds || 0) / 60);
    this.charts.replaceChildren(
      h("h3", {}, t("board.history")),
      h("p", { "data-totals": "" }, t("board.totals",
        { requests: total.requests, accepted: total.accepted, avoided: total.referrals_avoided })),
      // The share of ended consults whose patient was not transferred (the Quảng Ninh model's 90 %).
      h("p", { "data-figure": "resolved_at_district" }, total.resolved_at_district_share == null
        ? t("board.resolved_none")
        : t("board.resolved", { share: Math.round(total.resolved_at_district_share * 100), ended: total.ended,
          resolved: total.resolved_at_district })),
      h("ul", { class: "waits" },
        h("li", { "data-wait": "median" }, total.wait_median_s == null ? t("board.wait_none")
          : t("board.wait_median", { wait: duration(t, total.wait_median_s) })),
        total.wait_p90_s == null ? null
          : h("li", { "data-wait": "p90" }, t("board.wait_p90", { wait: duration(t, total.wait_p90_s) }))),
      h("h4", {}, t("board.by_month")),
      this.bars("month", byMonth.groups.map((g) => [g.label || g.key, g.requests, String(g.requests)])),
      h("h4", {}, t("board.outcomes")),
      this.bars("outcomes", OUTCOMES.map((o) => [t(`outcome.${o}`), total.outcomes?.[o] || 0,
        String(total.outcomes?.[o] || 0)])),
      h("h4", {}, t("board.wait_by_specialty")),
      this.bars("wait", bySpecialty.groups.map((g) => [this.specialtyName(g.key), minutes(g.wait_median_s),
        duration(t, g.wait_median_s)])),
      this.exports());
  }

  // The CSV of the period and the monthly report, in the page's language.
  exports() {
    const { h, t } = this;
    const csvStatus = h("span", { class: "form-status", role: "status" });
    const csv = h("button", { type: "button", class: "secondary", "data-export": "csv", onclick: async () => {
      csvStatus.textContent = "";
      csvStatus.className = "form-status";
      try {
        await this.downloadCsv();
      } catch (error) {
        csvStatus.textContent = t("board.error", { message: error.message });
        csvStatus.className = "form-status error";
      }
    } }, t("board.csv"));
    const month = h("input", { type: "month", name: "report_month", id: "board-report-month", value: thisMonth(),
      max: thisMonth(), min: "2020-01", required: true });
    const form = h("form", { class: "report-picker", onsubmit: (event) => {
      event.preventDefault();
      if (month.value) this.openReport(month.value);
    } },
    h("label", { for: "board-report-month" }, t("board.report_month")), month,
    h("button", { type: "submit", "data-export": "report" }, t("board.report_open")));
    return h("div", { class: "board-exports" }, h("h4", {}, t("board.exports")),
      h("p", { class: "row" }, csv, csvStatus), form);
  }

  async downloadCsv() {
    const lang = pageLanguage();
    const { from, to, query } = this.period();
    const blob = await this.api(`/api/stats?${query}&group_by=pair&format=csv&lang=${lang}`,
      { headers: { Accept: "text/csv" } });
    const day = (d) => d.toISOString().slice(0, 10).replaceAll("-", "");
    const url = URL.createObjectURL(blob);
    // A download, not a page: the link is clicked and forgotten.
    const link = this.h("a", { href: url, download: `telerounds-stats-${day(from)}-${day(to)}-${lang}.csv` });
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 60_000);
  }

  // The monthly report inside the board, in place of the dashboard; Back returns to it.
  openReport(month) {
    this.report?.close();
    this.report = new ReportView(this.ctx, month, { onBack: () => this.closeReport() });
    this.dashboard.hidden = true;
    this.element.append(this.report.element);
    this.report.load();
  }

  closeReport() {
    this.report?.close();
    this.report = null;
    this.dashboard.hidden = false;
    this.element.querySelector("[data-export=report]")?.focus();
  }

  // A bar chart of plain elements: no chart library, nothing to vendor.
  bars(name, rows) {
    const { h } = this;
    const max = Math.max(1, ...rows.map(([, v]) => v));
    if (!rows.length) return h("p", { class: "muted", "data-empty": `chart-${name}` }, this.t("board.none.chart"));
    return h("div", { class: "bars", "data-chart": name }, rows.map(([label, value, shown]) => {
      const fill = h("span", { class: "fill", "aria-hidden": "true" });
      fill.style.width = `${(100 * value) / max}%`; // set through the DOM: the CSP forbids style attributes
      return h("div", { class: "bar" },
        h("span", { class: "label" }, label), fill, h("span", { class: "value" }, shown));
    }));
  }
}

// The server's printable report (or minutes) page, brought into the app: its <main> (or body),
// without what the app's CSP would refuse (scripts, inline styles) and without a second <main>.
export async function importPage(api, path, doc = document) {
  const response = await api(path, { headers: { Accept: "text/html" } });
  const html = typeof response === "string" ? response : await response.text();
  // Even an inert parsed document reports inline styles to the page's CSP as errors: take the
  // page's own <style> blocks and style attributes out first (the app's board.css styles it).
  const quiet = html.replace(/<style\b[^>]*>[\s\S]*?<\/style\s*>/gi, "")
    .replace(/\sstyle\s*=\s*("[^"]*"|'[^']*'|[^\s>]+)/gi, "");
  const parsed = new DOMParser().parseFromString(quiet, "text/html");
  const source = parsed.querySelector("main") || parsed.body;
  // The page's own Print button is wired by a script the app does not load: the view has its own.
  const unwanted = "script, style, link, meta, iframe, object, embed, .printable-bar, [data-print]";
  for (const el of source.querySelectorAll(unwanted)) el.remove();
  for (const el of [source, ...source.querySelectorAll("*")]) {
    for (const attr of [...el.attributes]) {
      if (attr.name === "style" || attr.name.startsWith("on")) el.removeAttribute(attr.name);
    }
  }
  const article = doc.createElement("article");
  article.className = "report-body";
  // The report is a Vietnamese document whatever the page's language: said so (WCAG language of parts).
  article.lang = parsed.documentElement.lang || "vi";
  for (const child of [...source.childNodes]) article.append(doc.importNode(child, true));
  return article;
}

// The monthly report as a view of the app (also for a `#/report/<YYYY-MM>` route): Back, Print.
export class ReportView {
  constructor(ctx, month, { onBack } = {}) {
    const { h, t } = ctx;
    this.ctx = ctx;
    this.month = month;
    this.body = h("div", { class: "report-content", "aria-busy": "true" },
      h("p", { class: "muted" }, t("board.report_loading")));
    const back = h("button", { type: "button", class: "secondary", "data-report": "back", onclick: () => onBack?.() },
      t("board.report_back"));
    const print = h("button", { type: "button", "data-report": "print", onclick: () => window.print() },
      t("board.report_print"));
    const [year, mm] = month.split("-");
    this.element = h("section", { class: "report-view", "data-month": month, "aria-label": t("board.report_title",
      { month: mm, year }) }, h("div", { class: "report-actions row" }, back, print), this.body);
    // Printing prints the report alone (board.css hides the rest while this class is set).
    document.body.classList.add("report-open");
  }

  async load() {
    const { h, t } = this.ctx;
    try {
      const article = await importPage(this.ctx.api, `/api/stats/report?month=${encodeURIComponent(this.month)}`);
      this.body.replaceChildren(article);
      article.querySelector("h1")?.setAttribute("tabindex", "-1");
      article.querySelector("h1")?.focus();
    } catch (error) {
      this.body.replaceChildren(
        h("p", { class: "error", role: "alert" }, t("board.error", { message: error.message })));
    }
    this.body.removeAttribute("aria-busy");
  }

  close() {
    document.body.classList.remove("report-open");
    this.element.remove();
  }
}
