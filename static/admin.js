// Administration in the browser: accounts, hospitals, sister links and the audit log.
// Built from data with h() only: whatever users typed is always textContent, never HTML.
const ROLES = ["specialist", "clinician", "supervisor", "admin"];
const LEVELS = ["central", "city", "provincial", "district", "commune", "authority"];
const DAY_MS = 24 * 60 * 60 * 1000;
// Every action the server writes to the audit log (grep `audit.record`, `audit.entry`,
// `record_listing` in server/ and signaling/); each has `audit.action.<action>` in both languages,
// which tests/system/test_browser_board.py checks against the server's code.
export const AUDIT_ACTIONS = [
  "auth.logout", "session.state",
  "consults.list", "consult.read", "consult.minutes", "consult.minutes_pdf", "minutes.roles", "minutes.sign", "minutes.sign_refused", "minutes.signatures", "consult.fhir",
  "consult.end", "consult.result", "consult.consent", "consent.record",
  "notes.list", "note.add", "note.amend", "attachment.add", "attachment.read",
  "recording.start", "recording.stop", "recording.fail", "recording.play", "recording.delete",
  "rounds.list", "round.create", "round.read", "round.update", "round.cancel", "round.lead", "round.patients",
  "calendar.key", "calendar.revoke", "stats.read", "stats.report",
  "admin.user.create", "admin.user.update", "admin.user.activate", "admin.user.deactivate", "admin.user.password", "admin.user.certificate",
  "admin.hospital.create", "admin.hospital.update", "admin.link.create", "admin.link.delete",
];

// `h`, `t`, `api`, `when` as defined in app.js. Returns the admin's home screen.
export function adminHome({ h, t, api, when, specialtyName: named = null }) {
  const data = { hospitals: [], users: [], specialties: [] };
  // What a form says (done, or the server's error) stays next to that form, not at the top of the page.
  const statusLine = () => h("p", { class: "admin-form-status muted", role: "status", "aria-live": "polite" });
  const status = statusLine();
  const say = (line, text, error = false) => {
    line.textContent = text || "";
    line.className = `admin-form-status ${error ? "error" : "muted"}`;
    // An error where the admin is not looking is no error shown: bring it into view.
    if (error) line.scrollIntoView?.({ block: "nearest", behavior: "smooth" });
  };
  const send = (method, path, body) => api(path, body === undefined ? { method }
    : { method, headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
  // An action whose failure shows the server's message, next to what caused it, instead of being lost.
  const run = (action, doneText, line = status) => async (event) => {
    event?.preventDefault();
    try {
      await action(event);
      say(line, doneText || "");
    } catch (error) {
      say(line, t("admin.error", { message: error.message }), true);
    }
  };
  const actionName = (action) => {
    const key = `audit.action.${action}`;
    const words = t(key);
    return words === key ? action : words;
  };
  const id = (value) => encodeURIComponent(value);
  // A table in its own scrolling box: on a phone it scrolls, the page does not.
  const table = (heads, body, name) => h("div", { class: "table-scroll", role: "region", tabindex: "0",
    "aria-label": t(name) }, h("table", { class: "admin-table" },
    h("thead", {}, h("tr", {}, heads.map((x) => h("th", { scope: "col" }, x)))), body));
  const options = (items, value, label, selected) => items.map((item) =>
    h("option", { value: value(item), selected: value(item) === selected }, label(item)));
  // In the page's language (the shell's `specialty.<code>`); the server's own list names them in Vietnamese.
  const specialtyName = (code) => named?.(code) || data.specialties.find((s) => s.code === code)?.name || code;
  const hospitalOptions = (select) => {
    const chosen = select.value;
    select.replaceChildren(...options(data.hospitals, (x) => x.id,
      (x) => `${x.name} (${x.province_name || x.province || t("admin.hospitals.no_province_short")})`, chosen));
  };

  // Accounts.
  const usersBody = h("tbody");
  const usersStatus = statusLine();
  const roleFilter = h("select", { name: "role_filter", onchange: run(() => loadUsers(), "", usersStatus) },
    h("option", { value: "" }, t("admin.users.all_roles")),
    ROLES.map((r) => h("option", { value: r }, t(`admin.role.${r}`))));

  function userRow(u) {
    const password = h("input", { type: "password", name: "new_password", minlength: 10, maxlength: 200, required: true,
      autocomplete: "new-password", placeholder: t("admin.users.new_password"),
      "aria-label": t("admin.users.new_password_for", { name: u.name }) });
    const rowStatus = statusLine();
    // A <details>, so the form opens and closes without depending on the stylesheet.
    const reset = h("details", { class: "reset-password" }, h("summary", {}, t("admin.users.reset_password")),
      h("form", { class: "row", onsubmit: run(async () => {
        await send("POST", `/api/admin/users/${id(u.id)}/password`, { password: password.value });
        password.value = "";
        reset.open = false;
      }, t("admin.users.password_saved"), rowStatus) },
      password, h("button", { type: "submit" }, t("admin.users.save_password"))));
    // A clinician's or specialist's signing key (PKCS#12 from a CA) and its PIN, for the minutes.
    const p12 = h("input", { type: "file", name: "file", accept: ".p12,.pfx,application/x-pkcs12", required: true,
      "aria-label": t("admin.users.certificate_file_for", { name: u.name }) });
    const pin = h("input", { type: "password", name: "certificate_pin", maxlength: 128, required: true, autocomplete: "off",
      "aria-label": t("admin.users.certificate_pin_for", { name: u.name }) });
    const certificate = ["clinician", "specialist"].includes(u.role)
      ? h("details", { class: "upload-certificate" }, h("summary", {}, t("admin.users.certificate")),
        h("form", { class: "row", onsubmit: run(async () => {
          const form = new FormData();
          form.append("file", p12.files[0]);
          form.append("password", pin.value);
          await api(`/api/admin/users/${id(u.id)}/certificate`, { method: "POST", body: form });
          pin.value = "";
          p12.value = "";
          certificate.open = false;
        }, t("admin.users.certificate_saved"), rowStatus) },
        h("p", { class: "muted" }, t("admin.users.certificate_hint")),
        p12, pin, h("button", { type: "submit" }, t("admin.users.certificate_upload"))))
      : null;
    const toggle = u.active
      ? h("button", { class: "secondary", onclick: run(async () => {
        if (!confirm(t("admin.users.confirm_deactivate", { name: u.name }))) return;
        await send("POST", `/api/admin/users/${id(u.id)}/deactivate`);
        await loadUsers();
      }, "", rowStatus) }, t("admin.users.deactivate"))
      : h("button", { onclick: run(async () => {
        await send("POST", `/api/admin/users/${id(u.id)}/activate`);
        await loadUsers();
      }, "", rowStatus) }, t("admin.users.activate"));
    return h("tr", { "data-user": u.id, class: u.active ? null : "inactive" },
      h("td", {}, u.username), h("td", { translate: "no" }, u.name), h("td", {}, t(`admin.role.${u.role}`)),
      h("td", { translate: "no" }, u.hospital.name),
      h("td", {}, u.specialties.map(specialtyName).join(", ")),
      h("td", {}, t(u.active ? "admin.users.active" : "admin.users.inactive")),
      h("td", {}, toggle, reset, certificate, rowStatus));
  }

  async function loadUsers() {
    const query = new URLSearchParams();
    if (roleFilter.value) query.set("role", roleFilter.value);
    const { users } = await api(`/api/admin/users?${query}`);
    if (!roleFilter.value) { data.users = users; fillAuditUsers(); }
    usersBody.replaceChildren(...(users.length ? users.map(userRow)
      : [h("tr", {}, h("td", { colspan: 7 }, t("admin.users.none")))]));
  }

  const newUsername = h("input", { name: "username", required: true, maxlength: 100, autocomplete: "off" });
  const newName = h("input", { name: "name", required: true, maxlength: 200 });
  const newRole = h("select", { name: "role" },
    ROLES.map((r) => h("option", { value: r, selected: r === "clinician" }, t(`admin.role.${r}`))));
  const newHospital = h("select", { name: "hospital_id", required: true });
  const newSpecialties = h("fieldset", { class: "specialties", hidden: true },
    h("legend", {}, t("admin.users.specialties")));
  const newPassword = h("input", { name: "password", type: "password", required: true, minlength: 10, maxlength: 200,
    autocomplete: "new-password" });
  newRole.addEventListener("change", () => { newSpecialties.hidden = newRole.value !== "specialist"; });
  const userFormStatus = statusLine();
  const userForm = h("form", { class: "admin-form", onsubmit: run(async () => {
    const specialties = newRole.value === "specialist"
      ? [...newSpecialties.querySelectorAll("input:checked")].map((box) => box.value) : [];
    await send("POST", "/api/admin/users", { username: newUsername.value, name: newName.value, role: newRole.value,
      hospital_id: newHospital.value, specialties, password: newPassword.value });
    userForm.reset();
    newSpecialties.hidden = true;
    await loadUsers();
  }, t("admin.users.created"), userFormStatus) },
  h("h3", {}, t("admin.users.create")),
  h("label", {}, t("admin.users.username"), newUsername), h("label", {}, t("admin.users.name"), newName),
  h("label", {}, t("admin.users.role"), newRole), h("label", {}, t("admin.users.hospital"), newHospital),
  newSpecialties, h("label", {}, t("admin.users.password"), newPassword),
  h("button", { type: "submit" }, t("admin.users.create")), userFormStatus);

  const usersSection = h("section", { class: "admin-users" }, h("h2", {}, t("admin.users.title")),
    h("label", {}, t("admin.users.filter_role"), roleFilter), usersStatus,
    table([t("admin.users.username"), t("admin.users.name"), t("admin.users.role"), t("admin.users.hospital"),
      t("admin.users.specialties"), t("admin.users.state"), t("admin.users.actions")], usersBody, "admin.users.title"),
    userForm);

  // Hospitals. A Department of Health sees the hospitals whose province code is its own: one
  // without a code is seen by none, which the table says in so many words.
  const PROVINCE_PATTERN = "[a-z][a-z0-9]{1,31}";
  const hospitalsBody = h("tbody");
  function provinceCell(x) {
    const code = h("input", { name: "province", value: x.province || "", maxlength: 32, pattern: PROVINCE_PATTERN,
      placeholder: t("admin.hospitals.province_hint"), "aria-label": t("admin.hospitals.province_code") });
    const name = h("input", { name: "province_name", value: x.province_name || "", maxlength: 100,
      "aria-label": t("admin.hospitals.province_name") });
    const cellStatus = statusLine();
    const form = h("form", { class: "row", onsubmit: run(async () => {
      // An empty code clears it: then no Department of Health sees the hospital.
      await send("PATCH", `/api/admin/hospitals/${id(x.id)}`,
        { province: code.value.trim() || null, province_name: name.value.trim() || null });
      await loadHospitals();
    }, t("admin.hospitals.province_saved"), cellStatus) }, code, name,
    h("button", { type: "submit" }, t("admin.hospitals.set_province")));
    const unseen = x.province ? null
      : h("p", { class: "error", "data-no-province": x.id }, t("admin.hospitals.no_province"));
    return h("td", {}, unseen,
      form, cellStatus);
  }
  // Recording: a hospital may have its consults recorded by themselves, once both sides are in
  // the call and the patient consents to recording (the server decides; this only sets it).
  function recordingCell(x) {
    const cellStatus = statusLine();
    const box = h("input", { type: "checkbox", name: "record_consults", checked: x.record_consults,
      onchange: run(async () => {
        try {
          await send("PATCH", `/api/admin/hospitals/${id(x.id)}`, { record_consults: box.checked });
        } catch (error) {
          box.checked = !box.checked; // not saved: show what holds
          throw error;
        }
        x.record_consults = box.checked;
      }, t("admin.hospitals.recording_saved"), cellStatus) });
    return h("td", {}, h("label", { class: "check" }, box, t("admin.hospitals.record_consults")), cellStatus);
  }
  async function loadHospitals() {
    data.hospitals = (await api("/api/admin/hospitals")).hospitals;
    hospitalsBody.replaceChildren(...data.hospitals.map((x) => h("tr", { "data-hospital": x.id },
      h("td", {}, x.id), h("td", {}, x.name), h("td", {}, t(`admin.level.${x.level}`)), provinceCell(x),
      recordingCell(x))));
    for (const select of [newHospital, upper, lower]) hospitalOptions(select);
  }
  const hospitalId = h("input", { name: "id", maxlength: 64, pattern: "[a-z0-9][a-z0-9\\-]*",
    placeholder: t("admin.hospitals.id_hint") });
  const hospitalName = h("input", { name: "name", required: true, maxlength: 200 });
  const hospitalLevel = h("select", { name: "level" },
    LEVELS.map((l) => h("option", { value: l }, t(`admin.level.${l}`))));
  const hospitalProvince = h("input", { name: "province", maxlength: 32, pattern: PROVINCE_PATTERN,
    placeholder: t("admin.hospitals.province_hint") });
  const hospitalProvinceName = h("input", { name: "province_name", maxlength: 100 });
  const hospitalFormStatus = statusLine();
  const hospitalForm = h("form", { class: "admin-form", onsubmit: run(async () => {
    const body = { name: hospitalName.value, level: hospitalLevel.value,
      province: hospitalProvince.value.trim() || null, province_name: hospitalProvinceName.value.trim() || null };
    if (hospitalId.value) body.id = hospitalId.value;
    await send("POST", "/api/admin/hospitals", body);
    hospitalForm.reset();
    await loadHospitals();
  }, t("admin.hospitals.created"), hospitalFormStatus) },
  h("h3", {}, t("admin.hospitals.create")),
  h("label", {}, t("admin.hospitals.id"), hospitalId), h("label", {}, t("admin.hospitals.name"), hospitalName),
  h("label", {}, t("admin.hospitals.level"), hospitalLevel),
  h("label", {}, t("admin.hospitals.province_code"), hospitalProvince),
  h("label", {}, t("admin.hospitals.province_name"), hospitalProvinceName),
  h("button", { type: "submit" }, t("admin.hospitals.create")), hospitalFormStatus);
  const hospitalsSection = h("section", { class: "admin-hospitals" }, h("h2", {}, t("admin.hospitals.title")),
    table([t("admin.hospitals.id"), t("admin.hospitals.name"), t("admin.hospitals.level"),
      t("admin.hospitals.province"), t("admin.hospitals.recording")],
      hospitalsBody, "admin.hospitals.title"),
    hospitalForm);

  // Sister links.
  const linksBody = h("tbody");
  const upper = h("select", { name: "upper_id", required: true });
  const lower = h("select", { name: "lower_id", required: true });
  const linksStatus = statusLine();
  async function loadLinks() {
    const { links } = await api("/api/admin/sister-links");
    linksBody.replaceChildren(...(links.length ? links.map((x) =>
      h("tr", { "data-link": `${x.upper.id}/${x.lower.id}` },
      h("td", {}, x.upper.name), h("td", {}, x.lower.name),
      h("td", {}, h("button", { class: "secondary", onclick: run(async () => {
        await send("DELETE", `/api/admin/sister-links/${id(x.upper.id)}/${id(x.lower.id)}`);
        await loadLinks();
      }, "", linksStatus) }, t("admin.links.remove")))))
      : [h("tr", {}, h("td", { colspan: 3 }, t("admin.links.none")))]));
  }
  const linkForm = h("form", { class: "row", onsubmit: run(async () => {
    await send("POST", "/api/admin/sister-links", { upper_id: upper.value, lower_id: lower.value });
    await loadLinks();
  }, "", linksStatus) }, h("label", {}, t("admin.links.upper"), upper), h("label", {}, t("admin.links.lower"), lower),
  h("button", { type: "submit" }, t("admin.links.add")));
  const linksSection = h("section", { class: "admin-links" }, h("h2", {}, t("admin.links.title")),
    table([t("admin.links.upper"), t("admin.links.lower"), t("admin.links.actions")], linksBody, "admin.links.title"),
    linkForm, linksStatus);

  // The audit log, newest first, a page at a time: actions in words, people and targets by name.
  const auditBody = h("tbody");
  const auditStatus = statusLine();
  const auditUser = h("select", { name: "user_id", id: "audit-user" });
  const auditAction = h("select", { name: "action", id: "audit-action" },
    h("option", { value: "" }, t("audit.any_action")),
    AUDIT_ACTIONS.map((a) => h("option", { value: a }, actionName(a))));
  const auditPatient = h("input", { name: "patient_ref", id: "audit-patient", maxlength: 64, autocomplete: "off" });
  const auditConsult = h("input", { name: "consult_id", id: "audit-consult", maxlength: 64, autocomplete: "off" });
  const auditFrom = h("input", { name: "from", id: "audit-from", type: "date" });
  const auditTo = h("input", { name: "to", id: "audit-to", type: "date" });
  // Pages by cursor: `pages[i]` is the `before` of page i + 1 (none for the first).
  let pages = [null];
  let nextBefore = null;
  const pageLabel = h("span", { class: "muted", "data-audit-page": "1" });
  const newer = h("button", { type: "button", class: "secondary", "data-audit": "newer", disabled: true,
    onclick: run(() => loadAuditPage(pages.length - 2), "", auditStatus) }, t("admin.audit.newer"));
  const older = h("button", { type: "button", class: "secondary", "data-audit": "older", disabled: true,
    onclick: run(() => loadAuditPage(pages.length, nextBefore), "", auditStatus) }, t("admin.audit.more"));
  function fillAuditUsers() {
    const chosen = auditUser.value;
    auditUser.replaceChildren(h("option", { value: "" }, t("admin.audit.anyone")),
      ...options(data.users, (u) => u.id, (u) => `${u.name} (${u.username})`, chosen));
  }
  // Dates are days in Vietnam time; "to" includes its whole day.
  const vietnamDay = (value, plusDays = 0) =>
    new Date(Date.parse(`${value}T00:00:00+07:00`) + plusDays * DAY_MS).toISOString();
  // The database may hand back its UTC time without a zone: read it as UTC, show it in Vietnam time.
  const utc = (iso) => (iso && !/(Z|[+-]\d\d:?\d\d)$/.test(iso) ? `${iso}Z` : iso);
  function target(e) {
    const typeKey = `audit.target.${e.target_type}`;
    const type = t(typeKey) === typeKey ? e.target_type : t(typeKey);
    const known = e.target_type === "user" ? data.users.find((u) => u.id === e.target_id)?.name
      : e.target_type === "hospital" ? data.hospitals.find((x) => x.id === e.target_id)?.name : null;
    const label = e.target_label || known || e.target_id;
    return [type, label].filter(Boolean).join(": ");
  }
  function auditRow(e) {
    return h("tr", { "data-entry": e.id, "data-action": e.action },
      h("td", {}, when(utc(e.at))),
      // A person's name is data (translate="no"); "the system" is the app's word.
      h("td", { "data-actor": e.actor_id || "", translate: e.actor ? "no" : false },
        e.actor ? e.actor.name : e.actor_id || t("audit.system"),
        e.actor ? h("span", { class: "audit-who" }, e.actor.username) : null),
      h("td", {}, h("span", { class: "audit-action" }, actionName(e.action)),
        h("span", { class: "audit-code" }, e.action)),
      h("td", { "data-target": e.target_id }, target(e)), h("td", {}, e.address), h("td", {}, e.detail));
  }
  function auditQuery() {
    const query = new URLSearchParams({ limit: "50" });
    if (auditUser.value) query.set("user_id", auditUser.value);
    if (auditAction.value) query.set("action", auditAction.value);
    if (auditPatient.value.trim()) query.set("patient_ref", auditPatient.value.trim());
    if (auditConsult.value.trim()) query.set("consult_id", auditConsult.value.trim());
    if (auditFrom.value) query.set("from", vietnamDay(auditFrom.value));
    if (auditTo.value) query.set("to", vietnamDay(auditTo.value, 1));
    return query;
  }
  async function loadAuditPage(index, before = pages[index]) {
    const query = auditQuery();
    if (before) query.set("before", before);
    const page = await api(`/api/admin/audit?${query}`);
    pages = [...pages.slice(0, index), before ?? null];
    nextBefore = page.next_before || null;
    auditBody.replaceChildren(...(page.entries.length ? page.entries.map(auditRow)
      : [h("tr", {}, h("td", { colspan: 6 }, t("admin.audit.none")))]));
    newer.disabled = pages.length < 2;
    older.disabled = !nextBefore;
    pageLabel.textContent = t("admin.audit.page", { page: pages.length });
    pageLabel.dataset.auditPage = String(pages.length);
  }
  const loadAudit = () => loadAuditPage(0, null);
  const auditForm = h("form", { class: "audit-filters", onsubmit: run(() => loadAudit(), "", auditStatus) },
    h("label", { for: "audit-user" }, t("admin.audit.user"), auditUser),
    h("label", { for: "audit-action" }, t("admin.audit.action"), auditAction),
    h("label", { for: "audit-patient" }, t("admin.audit.patient_ref"), auditPatient),
    h("label", { for: "audit-consult" }, t("admin.audit.consult"), auditConsult),
    h("label", { for: "audit-from" }, t("admin.audit.from"), auditFrom),
    h("label", { for: "audit-to" }, t("admin.audit.to"), auditTo),
    h("button", { type: "submit" }, t("admin.audit.search")));
  const auditSection = h("section", { class: "admin-audit" }, h("h2", {}, t("admin.audit.title")),
    auditForm, auditStatus,
    table([t("admin.audit.at"), t("admin.audit.actor"), t("admin.audit.action"), t("admin.audit.target"),
      t("admin.audit.address"), t("admin.audit.detail")], auditBody, "admin.audit.title"),
    h("div", { class: "audit-pages" }, newer, pageLabel, older));

  const refresh = run(async () => {
    data.specialties = (await api("/api/specialties")).specialties;
    newSpecialties.replaceChildren(h("legend", {}, t("admin.users.specialties")), ...data.specialties.map((s) =>
      h("label", { class: "check" }, h("input", { type: "checkbox", name: "specialties", value: s.code }),
        specialtyName(s.code))));
    await loadHospitals();
    await Promise.all([loadUsers(), loadLinks()]);
    await loadAudit();
  });
  refresh();

  return h("section", { class: "admin" }, h("h2", {}, t("admin.title")), status,
    usersSection, hospitalsSection, linksSection, auditSection);
}
