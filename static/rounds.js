// Ward rounds in the browser: the week's rounds, with the form to schedule or change one (the
// round room itself is static/ui/roundroom.js). Built from data with h() only: whatever users
// typed is always textContent, never HTML.
import { listedPatientDetails } from "/static/ui/listedpatient.js";

const ZONE = "Asia/Ho_Chi_Minh";
const DAY_MS = 24 * 60 * 60 * 1000;

// The Vietnam date of an instant, as YYYY-MM-DD.
const dayOf = (moment) => new Intl.DateTimeFormat("en-CA", { timeZone: ZONE }).format(new Date(moment));
// Its Vietnam time of day, as HH:MM.
const timeOf = (moment) =>
  new Intl.DateTimeFormat("en-GB", { timeZone: ZONE, hour: "2-digit", minute: "2-digit", hourCycle: "h23" }).format(
    new Date(moment),
  );
// A Vietnam date and time of day (UTC+7 all year, no daylight saving) as an ISO UTC instant.
const instantOf = (day, time) => new Date(`${day}T${time}:00+07:00`).toISOString();

// Who may change a round's schedule, and its patient list (server/rounds.py has the same rules).
const mayPlan = (r, user) =>
  user.role === "admin" ||
  [r.created_by?.id, r.lead_specialist?.id].includes(user.id) ||
  (user.role === "clinician" && user.hospital.id === r.hospital?.id);
const mayEditPatients = (r, user) =>
  r.lead_specialist?.id === user.id || (user.role === "clinician" && user.hospital.id === r.hospital?.id);

// The schedule fields of PATCH /api/rounds/{id}, as the form would send them for this round.
function scheduleOf(r) {
  return {
    title: r.title,
    ward: r.ward,
    starts_at: instantOf(dayOf(r.starts_at), timeOf(r.starts_at)),
    duration_min: r.duration_min,
    recurrence: r.recurrence,
    until: r.until,
    lead_specialist_id: r.lead_specialist?.id,
    participant_ids: r.participants.map((p) => p.id),
  };
}

// `ctx`: { h, t, api, language, user, onEnter(round) }. The user's rounds of the next 7 days, day
// by day; a form to schedule a round or change one; cancelling one day or the whole round.
export class RoundsList {
  constructor(ctx) {
    this.ctx = ctx;
    this.rounds = [];
    this.requests = []; // rounds this specialist of another network is asked to lead
    this.hospitals = []; // where the user may schedule a round
    this.roster = []; // the specialists, for the lead and the invited
    this.form = null; // the open form, kept across redraws so nothing typed is lost
    this.notice = null; // { text, error }
    this.feed = null;
    this.element = ctx.h("section", { class: "rounds" });
    this.draw();
    this.load();
  }

  async load() {
    const { api, user } = this.ctx;
    try {
      const body = await api("/api/rounds");
      this.rounds = body.rounds;
      this.requests = body.lead_requests || [];
    } catch (e) {
      this.rounds = [];
      this.requests = [];
    }
    if (!this.loadedChoices && ["clinician", "specialist", "admin"].includes(user.role)) {
      try {
        this.hospitals = (await api("/api/rounds/hospitals")).hospitals;
        this.roster = (await api("/api/roster")).specialists;
        this.loadedChoices = true;
      } catch (e) {
        this.hospitals = [];
      }
    }
    this.draw();
  }

  say(text, error = false) {
    this.notice = text ? { text, error } : null;
  }

  draw() {
    const { h, t, language, user } = this.ctx;
    const locale = language === "vi" ? "vi-VN" : "en-GB";
    const today = dayOf(Date.now());
    const days = [...Array(7).keys()].map((i) => dayOf(Date.now() + i * DAY_MS));
    const time = new Intl.DateTimeFormat(locale, { timeZone: ZONE, hour: "2-digit", minute: "2-digit" });
    const dayName = new Intl.DateTimeFormat(locale, {
      timeZone: ZONE,
      weekday: "short",
      day: "2-digit",
      month: "2-digit",
    });
    const columns = days.map((day) => {
      const items = [];
      for (const r of this.rounds) {
        const planner = mayPlan(r, user);
        for (const at of r.occurrences || []) {
          if (dayOf(at) !== day) continue;
          const running = r.session?.status === "active";
          const joinable = (day === today || running) && ["clinician", "specialist"].includes(user.role);
          items.push({
            at,
            card: h(
              "div",
              { class: `card round${running ? " running" : ""}`, "data-round": r.id, "data-day": day },
              h("strong", {}, `${time.format(new Date(at))} — ${r.title}`),
              h("div", {}, `${r.hospital?.name || ""} — ${r.ward}`),
              h("div", { class: "muted" }, t("rounds.lead", { name: r.lead_specialist?.name || "" })),
              h(
                "div",
                { class: "muted" },
                `${t(`rounds.recurrence.${r.recurrence || "once"}`)} · ` +
                  t("rounds.patients_count", { n: r.patients.length }),
              ),
              h(
                "div",
                { class: "row" },
                joinable
                  ? h("button", { class: "join-round", onclick: () => this.ctx.onEnter(r) }, t("rounds.enter"))
                  : null,
                planner
                  ? h(
                      "button",
                      { type: "button", class: "secondary edit-round", onclick: () => this.open(r) },
                      t("rounds.edit"),
                    )
                  : null,
                planner && !running
                  ? h(
                      "button",
                      { type: "button", class: "secondary cancel-day", onclick: () => this.cancel(r, day) },
                      t("rounds.cancel_day"),
                    )
                  : null,
              ),
            ),
          });
        }
        // A cancelled day (or every day of a round cancelled as a whole) stays on the week, marked.
        for (const at of r.cancelled || []) {
          if (dayOf(at) !== day) continue;
          items.push({
            at,
            card: h(
              "div",
              { class: "card round cancelled", "data-round": r.id, "data-day": day, "data-cancelled": "true" },
              h("strong", {}, `${time.format(new Date(at))} — ${r.title}`),
              h("div", {}, `${r.hospital?.name || ""} — ${r.ward}`),
              h(
                "div",
                { class: "cancelled-label" },
                t(r.cancelled_at ? "rounds.round_cancelled" : "rounds.cancelled_day"),
              ),
            ),
          });
        }
      }
      items.sort((a, b) => a.at.localeCompare(b.at));
      return h(
        "div",
        { class: "day", "data-day": day },
        h("h3", {}, dayName.format(new Date(`${day}T12:00:00+07:00`))),
        items.map((x) => x.card),
      );
    });
    // A round at a hospital of another network is not this specialist's until they accept to lead it.
    const requests = this.requests.length
      ? h(
          "div",
          { class: "lead-requests" },
          h("h3", {}, t("rounds.lead_requests")),
          this.requests.map((r) =>
            h(
              "div",
              { class: "card lead-request", "data-round": r.id },
              h(
                "strong",
                {},
                `${dayName.format(new Date(r.starts_at))} ${time.format(new Date(r.starts_at))} — ${r.title}`,
              ),
              h("div", {}, `${r.hospital?.name || ""} — ${r.ward}`),
              h(
                "div",
                { class: "muted" },
                `${t(`rounds.recurrence.${r.recurrence || "once"}`)} · ` +
                  t("rounds.asked_by", { name: r.created_by?.name || "" }),
              ),
              h(
                "div",
                { class: "row" },
                h(
                  "button",
                  { type: "button", class: "accept-lead", onclick: () => this.answerLead(r, true) },
                  t("rounds.accept_lead"),
                ),
                h(
                  "button",
                  { type: "button", class: "secondary decline-lead", onclick: () => this.answerLead(r, false) },
                  t("rounds.decline_lead"),
                ),
              ),
            ),
          ),
        )
      : null;
    const any = this.rounds.some((r) =>
      [...(r.occurrences || []), ...(r.cancelled || [])].some((at) => days.includes(dayOf(at))),
    );
    const schedule =
      this.hospitals.length && !this.form
        ? h("button", { type: "button", class: "new-round", onclick: () => this.open(null) }, t("rounds.new"))
        : null;
    // replaceChildren() would write a null as the text "null": leave the absent parts out.
    this.element.replaceChildren(
      ...[
        h("h2", {}, t("rounds.title")),
        this.notice
          ? h(
              "p",
              { class: this.notice.error ? "error rounds-notice" : "rounds-notice", role: "status" },
              this.notice.text,
            )
          : null,
        requests,
        schedule,
        this.form,
        any ? h("div", { class: "week" }, columns) : h("p", { class: "muted" }, t("rounds.none")),
        this.calendar(),
      ].filter(Boolean),
    );
  }

  open(round) {
    this.say("");
    this.form = this.roundForm(round);
    this.draw();
    this.form.querySelector("input")?.focus();
  }

  close(message = "") {
    this.form = null;
    this.say(message);
    this.load();
  }

  async answerLead(request, accept) {
    const { api, t } = this.ctx;
    try {
      await api(`/api/rounds/${encodeURIComponent(request.id)}/lead`, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ accept }),
      });
      this.close(t(accept ? "rounds.lead_accepted" : "rounds.lead_declined", { title: request.title }));
    } catch (e) {
      this.say(t("error", { message: e.message }), true);
      this.draw();
    }
  }

  async cancel(round, day) {
    const { api, t } = this.ctx;
    try {
      await api(`/api/rounds/${encodeURIComponent(round.id)}/cancel`, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify(day ? { day } : {}),
      });
      this.close(day ? t("rounds.day_cancelled", { day }) : t("rounds.round_cancelled"));
    } catch (e) {
      this.say(t("error", { message: e.message }), true);
      this.draw();
    }
  }

  // The form for a new round (`round` null) or for changing one. Times are Vietnam time on
  // screen and ISO UTC on the wire.
  roundForm(round) {
    const { h, t, api, user } = this.ctx;
    const r = round || {};
    const editPatients = !round || mayEditPatients(round, user);
    const title = h("input", { name: "round-title", required: true, maxlength: 200, value: r.title || "" });
    const hospital = h(
      "select",
      { name: "round-hospital", required: true, disabled: Boolean(round) },
      round
        ? h("option", { value: r.hospital?.id }, r.hospital?.name || "")
        : this.hospitals.map((x) => h("option", { value: x.id, selected: x.id === user.hospital.id }, x.name)),
    );
    const ward = h("input", { name: "round-ward", required: true, maxlength: 100, value: r.ward || "" });
    const date = h("input", {
      name: "round-date",
      type: "date",
      required: true,
      value: round ? dayOf(r.starts_at) : dayOf(Date.now()),
    });
    const time = h("input", {
      name: "round-time",
      type: "time",
      required: true,
      value: round ? timeOf(r.starts_at) : "09:00",
    });
    const duration = h("input", {
      name: "round-duration",
      type: "number",
      required: true,
      min: 5,
      max: 480,
      value: r.duration_min || 60,
    });
    const recurrence = h(
      "select",
      { name: "round-recurrence" },
      ["", "daily", "weekly"].map((x) =>
        h("option", { value: x, selected: (r.recurrence || "") === x }, t(`rounds.recurrence.${x || "once"}`)),
      ),
    );
    const until = h("input", { name: "round-until", type: "date", value: r.until || "" });
    const lead = h(
      "select",
      { name: "round-lead", required: true },
      this.roster.map((s) =>
        h(
          "option",
          { value: s.id, selected: s.id === (r.lead_specialist?.id || user.id) },
          `${s.name} — ${s.hospital.name}`,
        ),
      ),
    );
    // Invited: the roster's specialists and the chosen hospital's clinicians; those invited
    // already stay listed (and chosen), so saving never drops them.
    const invited = new Set((r.participants || []).map((p) => p.id));
    const participants = h("select", { name: "round-participants", multiple: true, size: 6 });
    const inviteOptions = () => {
      const hospitalId = round ? r.hospital?.id : hospital.value;
      const place = this.hospitals.find((x) => x.id === hospitalId);
      const people = [
        ...this.roster.map((s) => ({ id: s.id, label: `${s.name} — ${s.hospital.name}` })),
        ...(place?.clinicians || []).map((c) => ({ id: c.id, label: `${c.name} — ${place.name}` })),
        ...(r.participants || []).map((p) => ({ id: p.id, label: `${p.name} — ${p.hospital?.name || ""}` })),
      ];
      const chosen = new Set([...invited, ...[...participants.selectedOptions].map((o) => o.value)]);
      const seen = new Set();
      participants.replaceChildren(
        ...people
          .filter((p) => !seen.has(p.id) && seen.add(p.id))
          .map((p) => h("option", { value: p.id, selected: chosen.has(p.id) }, p.label)),
      );
    };
    inviteOptions();
    if (!round) hospital.addEventListener("change", inviteOptions);
    const rows = h("div", { class: "patient-rows" });
    // Each row's identity and consent (static/ui/listedpatient.js), by row. Consent is recorded by
    // the requesting side: the district team, clinicians of the round's hospital.
    const details = new Map();
    const recordsConsent = () =>
      user.role === "clinician" && user.hospital.id === (round ? r.hospital?.id : hospital.value);
    const addRow = (p = {}) => {
      const more = listedPatientDetails(this.ctx, p, { consent: recordsConsent() });
      const row = h(
        "div",
        { class: "row patient-row", "data-patient": p.id || "" },
        h(
          "label",
          {},
          t("round.bed_label"),
          h("input", { name: "patient-bed", required: true, maxlength: 20, value: p.bed || "" }),
        ),
        h(
          "label",
          {},
          t("request.ref"),
          h("input", { name: "patient-ref", required: true, maxlength: 64, value: p.ref || "" }),
        ),
        h(
          "label",
          { class: "wide" },
          t("request.summary"),
          h("input", { name: "patient-summary", maxlength: 2000, value: p.summary || "" }),
        ),
        h(
          "button",
          {
            type: "button",
            class: "secondary move-up",
            "aria-label": t("rounds.form.move_up"),
            title: t("rounds.form.move_up"),
            onclick: () => row.previousElementSibling && rows.insertBefore(row, row.previousElementSibling),
          },
          "↑",
        ),
        h(
          "button",
          {
            type: "button",
            class: "secondary move-down",
            "aria-label": t("rounds.form.move_down"),
            title: t("rounds.form.move_down"),
            onclick: () => row.nextElementSibling && rows.insertBefore(row.nextElementSibling, row),
          },
          "↓",
        ),
        h(
          "button",
          { type: "button", class: "secondary remove-patient", onclick: () => row.remove() },
          t("rounds.form.remove_patient"),
        ),
        more.element,
      );
      details.set(row, more);
      rows.append(row);
    };
    for (const p of r.patients || []) addRow(p);
    const error = h("p", { class: "error form-error", role: "alert" });
    const patientsPart = editPatients
      ? h(
          "fieldset",
          { class: "round-form-patients" },
          h("legend", {}, t("round.patients")),
          rows,
          h(
            "button",
            { type: "button", class: "secondary add-patient-row", onclick: () => addRow() },
            t("round.add_patient"),
          ),
        )
      : h("p", { class: "muted" }, t("rounds.form.patients_elsewhere"));
    const listed = () =>
      [...rows.querySelectorAll(".patient-row")].map((row) => ({
        id: row.dataset.patient || null,
        bed: row.querySelector("[name=patient-bed]").value,
        ref: row.querySelector("[name=patient-ref]").value,
        summary: row.querySelector("[name=patient-summary]").value,
        more: details.get(row),
      }));
    const scheduled = () => ({
      title: title.value,
      ward: ward.value,
      starts_at: instantOf(date.value, time.value),
      duration_min: Number(duration.value),
      recurrence: recurrence.value || null,
      until: recurrence.value && until.value ? until.value : null,
      lead_specialist_id: lead.value,
      participant_ids: [...participants.selectedOptions].map((o) => o.value),
    });
    const json = (method, body) => ({
      method,
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
    });
    const save = async () => {
      const problem = listed()
        .map((x) => x.more.problem())
        .find(Boolean);
      if (problem) throw new Error(t(problem));
      if (!round) {
        const patients = listed().map(({ bed, ref, summary, more }) => ({ bed, ref, summary, ...more.added() }));
        await api("/api/rounds", json("POST", { ...scheduled(), hospital_id: hospital.value, patients }));
        return t("rounds.created");
      }
      const path = `/api/rounds/${encodeURIComponent(round.id)}`;
      // Only what changed: an untouched start keeps its seconds, an untouched list its consults.
      const before = scheduleOf(round),
        after = scheduled();
      const same = (a, b) =>
        JSON.stringify(Array.isArray(a) ? [...a].sort() : a) === JSON.stringify(Array.isArray(b) ? [...b].sort() : b);
      const changes = Object.fromEntries(Object.entries(after).filter(([key, value]) => !same(value, before[key])));
      if (Object.keys(changes).length) await api(path, json("PATCH", changes));
      if (editPatients) {
        const now = listed();
        let latest = round;
        for (const p of round.patients)
          if (!now.some((x) => x.id === p.id))
            latest = (await api(`${path}/patients/${encodeURIComponent(p.id)}`, { method: "DELETE" })).round;
        for (const x of now) {
          const old = round.patients.find((p) => p.id === x.id);
          const fields = { bed: x.bed, ref: x.ref, summary: x.summary };
          if (!old) {
            const known = new Set(latest.patients.map((p) => p.id));
            latest = (await api(`${path}/patients`, json("POST", { ...fields, ...x.more.added() }))).round;
            x.id = latest.patients.find((p) => !known.has(p.id))?.id || null; // added at the end
          } else {
            const changed = x.more.changes();
            if (old.bed !== x.bed || old.ref !== x.ref || old.summary !== x.summary || Object.keys(changed).length)
              latest = (await api(`${path}/patients/${encodeURIComponent(x.id)}`, json("PATCH", { ...fields, ...changed })))
                .round;
          }
        }
        // The rows' order, when it is not the list's already (rows moved, or added in between).
        const order = now.map((x) => x.id);
        if (order.join() !== latest.patients.map((p) => p.id).join())
          await api(`${path}/patients`, json("PUT", { patient_ids: order }));
      }
      return t("rounds.saved");
    };
    let confirming = false;
    const cancelRound = round
      ? h(
          "button",
          {
            type: "button",
            class: "secondary cancel-round",
            onclick: () => {
              if (confirming) {
                this.cancel(round, null);
                return;
              }
              confirming = true;
              cancelRound.textContent = t("rounds.cancel_round_confirm");
            },
          },
          t("rounds.cancel_round"),
        )
      : null;
    return h(
      "form",
      {
        class: `round-form${round ? " editing" : ""}`,
        "data-round": r.id || "",
        onsubmit: async (e) => {
          e.preventDefault();
          error.textContent = "";
          try {
            this.close(await save());
          } catch (err) {
            error.textContent = t("error", { message: err.message });
          }
        },
      },
      h("h3", {}, round ? t("rounds.edit_title") : t("rounds.new")),
      h("label", {}, t("rounds.form.title"), title),
      h(
        "div",
        { class: "row" },
        h("label", {}, t("rounds.form.hospital"), hospital),
        h("label", {}, t("rounds.form.ward"), ward),
      ),
      h(
        "div",
        { class: "row" },
        h("label", {}, t("rounds.form.date"), date),
        h("label", {}, t("rounds.form.time"), time),
        h("label", {}, t("rounds.form.duration"), duration),
      ),
      h(
        "div",
        { class: "row" },
        h("label", {}, t("rounds.form.recurrence"), recurrence),
        h("label", {}, t("rounds.form.until"), until),
      ),
      h("label", {}, t("rounds.form.lead"), lead),
      h("label", {}, t("rounds.form.participants"), participants),
      patientsPart,
      error,
      h(
        "div",
        { class: "row" },
        h("button", { type: "submit" }, round ? t("rounds.form.save") : t("rounds.form.create")),
        h(
          "button",
          { type: "button", class: "secondary close-form", onclick: () => this.close() },
          t("rounds.form.close"),
        ),
        cancelRound,
      ),
    );
  }

  // The secret calendar address: made (or remade, revoking the old one), copied and revoked here.
  calendar() {
    const { h, t, api } = this.ctx;
    const send = async (method) => {
      try {
        const body = await api("/api/rounds/calendar", { method });
        this.feed = body.url || null;
        this.feedNote = body.url ? t("rounds.calendar_hint") : t("rounds.calendar_revoked");
      } catch (e) {
        this.feedNote = t("error", { message: e.message });
      }
      this.draw();
    };
    const field = this.feed
      ? h("input", { readonly: true, value: this.feed, class: "feed-url", onfocus: (e) => e.target.select() })
      : null;
    const copy = this.feed
      ? h(
          "button",
          {
            type: "button",
            class: "secondary copy-feed",
            onclick: async () => {
              field.select();
              try {
                await navigator.clipboard.writeText(this.feed);
                copy.textContent = t("rounds.calendar_copied");
              } catch (e) {
                /* selected: Ctrl+C */
              }
            },
          },
          t("rounds.calendar_copy"),
        )
      : null;
    return h(
      "details",
      { class: "calendar-feed", open: Boolean(this.feed || this.feedNote) },
      h("summary", {}, t("rounds.calendar")),
      field ? h("div", { class: "row" }, field, copy) : null,
      this.feedNote ? h("p", { class: "muted" }, this.feedNote) : null,
      h(
        "div",
        { class: "row" },
        h(
          "button",
          { type: "button", class: "secondary new-feed", onclick: () => send("POST") },
          t("rounds.calendar_new"),
        ),
        h(
          "button",
          { type: "button", class: "secondary revoke-feed", onclick: () => send("DELETE") },
          t("rounds.calendar_revoke"),
        ),
      ),
    );
  }
}
