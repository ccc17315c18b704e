// A ward round's listed patient's identity and consent, as the round form and the round room take
// them: the fields of the consult request form, checked in the page with the same rules
// (static/ui/identity.js, the server's), folded in a <details> so a row of the list stays short.
// `word(key)` gives a label: `t` on a page redrawn after a language change, `tx` in a call.
import { patientProblems } from "/static/ui/identity.js";

export const IDENTITY_FIELDS = ["name", "birth_date", "sex", "national_id", "insurance_id", "address"];
const SAME_CONSENT = ["given_by", "relation", "method"];

// `p`: the listed patient as the round carries it (`identity`, `consent`), or {} for a new one.
// `consent`: whether this user records consent (the requesting side: the district team).
export function listedPatientDetails(ctx, p = {}, { word = ctx.t, consent = false } = {}) {
  const { h } = ctx;
  const kept = p.identity || {};
  const input = (name, extra = {}) =>
    h("input", { name: `patient-${name}`, autocomplete: "off", value: kept[name] || "", ...extra });
  const controls = {
    name: input("name", { maxlength: 200 }),
    birth_date: input("birth_date", { type: "date", min: "1900-01-01" }),
    sex: h(
      "select",
      { name: "patient-sex" },
      h("option", { value: "" }, "—"),
      ["male", "female", "other", "unknown"].map((s) => h("option", { value: s, selected: kept.sex === s }, word(`sex.${s}`))),
    ),
    national_id: input("national_id", { inputmode: "numeric", maxlength: 12, pattern: "[0-9]{12}" }),
    insurance_id: input("insurance_id", { maxlength: 15 }),
    address: input("address", { maxlength: 300 }),
  };
  const labels = { sex: "request.sex" };
  const given = p.consent?.scopes?.length ? p.consent : null;
  const consented = h("input", { name: "patient-consent", type: "checkbox", checked: Boolean(given) });
  const recording = h("input", {
    name: "patient-consent-recording",
    type: "checkbox",
    checked: Boolean(given?.scopes.includes("recording")),
  });
  const choose = (name, values) =>
    h(
      "select",
      { name: `patient-${name}` },
      values.map((v) => h("option", { value: v, selected: p.consent?.[name] === v }, word(`consent.${name}.${v}`))),
    );
  const givenBy = choose("given_by", ["patient", "relative", "guardian"]);
  const method = choose("method", ["verbal", "written", "electronic"]);
  const relation = h("input", { name: "patient-relation", maxlength: 100, value: p.consent?.relation || "" });
  const element = h(
    "details",
    { class: "listed-identity wide" },
    h("summary", {}, word("identity.title")),
    h(
      "div",
      { class: "row" },
      IDENTITY_FIELDS.map((f) => h("label", { class: "field" }, word(labels[f] || `identity.${f}`), controls[f])),
    ),
    consent
      ? h(
          "fieldset",
          { class: "listed-consent" },
          h("legend", {}, word("consent.title")),
          h("label", { class: "field check" }, consented, word("consent.given")),
          h(
            "div",
            { class: "row" },
            h("label", { class: "field" }, word("consent.given_by"), givenBy),
            h("label", { class: "field" }, word("consent.relation"), relation),
            h("label", { class: "field" }, word("consent.method"), method),
          ),
          h("label", { class: "field check" }, recording, word("consent.recording")),
        )
      : null,
  );
  const identity = () =>
    Object.fromEntries(IDENTITY_FIELDS.map((f) => [f, controls[f].value.trim()]).filter(([, v]) => v));
  return {
    element,
    // The first problem as an i18n key (the identity's, then the consent's), or null.
    problem() {
      const found = patientProblems(identity())[0];
      if (found) return found[1];
      if (consent && consented.checked && givenBy.value !== "patient" && !relation.value.trim())
        return "consent.relation_needed";
      return null;
    },
    // What to send for a new patient: the identity fields given, and the consent if given.
    added() {
      const body = identity();
      if (consent && consented.checked) body.consent = this.consent();
      return body;
    },
    // What changed since `p`: identity fields typed anew, and the consent given, changed or withdrawn.
    changes() {
      const body = Object.fromEntries(Object.entries(identity()).filter(([f, v]) => kept[f] !== v));
      if (!consent) return body;
      if (consented.checked) {
        const now = this.consent();
        const same =
          given &&
          SAME_CONSENT.every((k) => (given[k] || undefined) === now[k]) &&
          given.scopes.join() === now.scopes.join();
        if (!same) body.consent = now;
      } else if (given) {
        body.consent = { ...this.consent(), scopes: [] };
      }
      return body;
    },
    consent() {
      const body = {
        given_by: givenBy.value,
        method: method.value,
        scopes: recording.checked ? ["consult", "recording"] : ["consult"],
      };
      if (relation.value.trim()) body.relation = relation.value.trim();
      return body;
    },
  };
}
