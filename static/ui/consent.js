// The patient's consent, as the record page and the consult room show and take it: who gave it
// (and their relation), how, to what (the consult; also its recording), recorded by whom and when.
// Only the requesting side records it or withdraws it (`consult:consent`), through the outbox
// (`connection.write`): kept across a reload or a lost connection and sent once per op_id.
import { AppFailure, errorNode } from "/static/ui/dom.js";

// The consult's consent in words: who gave it, how, to what, recorded by whom and when; withdrawn; or missing.
export function consentText(t, when, c) {
  const given = c.consent;
  if (!given) return t("consent.none");
  if (!given.scopes?.length)
    return t("consent.withdrawn_by", { name: given.recorded_by?.name || "", at: when(given.recorded_at) });
  const who = t(`consent.given_by.${given.given_by}`) + (given.relation ? ` (${given.relation})` : "");
  const scopes = given.scopes.map((s) => t(`consent.scope.${s}`)).join(", ");
  return [
    who,
    t(`consent.method.${given.method}`),
    scopes,
    t("consent.recorded", { name: given.recorded_by?.name || "", at: when(given.recorded_at) }),
  ].join(" · ");
}

// The requesting side, as the server's policy has it: the clinician who asked, or a clinician of
// the requesting hospital.
export function requestingSide(user, c) {
  return user.id === c.requester?.id || (user.role === "clinician" && user.hospital?.id === c.requester?.hospital?.id);
}

// The form: `null` for anyone but the requesting side, or on a cancelled consult. `word(key)` gives
// a label (`t` on a page redrawn after a language change, `tx` in a call, which is retranslated in
// place); `prefix` keeps the controls' ids unique; `onSaved(consult)` follows each write's ack.
export function consentForm(ctx, c, { prefix = "consent", word = ctx.t, onSaved = () => {} } = {}) {
  const { h, t, user, connection } = ctx;
  if (!connection || c.status === "cancelled" || !requestingSide(user, c)) return null;
  const id = (name) => `${prefix}-${name}`;
  const select = (name, values) =>
    h(
      "select",
      { id: id(name), name },
      values.map((v) => h("option", { value: v, selected: c.consent?.[name] === v }, word(`consent.${name}.${v}`))),
    );
  const givenBy = select("given_by", ["patient", "relative", "guardian"]);
  const method = select("method", ["verbal", "written", "electronic"]);
  const relation = h("input", { id: id("relation"), name: "relation", maxlength: 100, value: c.consent?.relation || "" });
  const recording = h("input", {
    id: id("recording"),
    name: "recording",
    type: "checkbox",
    checked: Boolean(c.consent?.scopes?.includes("recording")),
  });
  const slot = h("div", { class: "field-error" });
  const field = (name, label, control) => h("div", { class: "field" }, h("label", { for: id(name) }, label), control);
  const send = (scopes) => async () => {
    slot.replaceChildren();
    const payload = { consult_id: c.id, given_by: givenBy.value, method: method.value, scopes };
    if (relation.value.trim()) payload.relation = relation.value.trim();
    else if (givenBy.value !== "patient")
      return slot.replaceChildren(errorNode(t, new AppFailure("invalid", t("consent.relation_needed"))));
    try {
      const ack = await connection.write("consult:consent", payload);
      ctx.announce?.(t(scopes.length ? "consent.saved" : "consent.withdrawn_saved"));
      onSaved(ack?.consult);
    } catch (error) {
      slot.replaceChildren(errorNode(t, error));
    }
  };
  const withdraw = h(
    "button",
    { type: "button", class: "secondary withdraw-consent", onclick: send([]), hidden: !c.consent?.scopes?.length },
    word("consent.withdraw"),
  );
  const form = h(
    "details",
    { class: "consent-form", open: !c.consent?.scopes?.length },
    h("summary", {}, word("consent.record")),
    h(
      "div",
      { class: "row" },
      field("given_by", word("consent.given_by"), givenBy),
      field("relation", word("consent.relation"), relation),
      field("method", word("consent.method"), method),
    ),
    h("div", { class: "field check" }, recording, h("label", { for: id("recording") }, word("consent.recording"))),
    h(
      "div",
      { class: "row" },
      h(
        "button",
        {
          type: "button",
          class: "save-consent",
          onclick: () => send(recording.checked ? ["consult", "recording"] : ["consult"])(),
        },
        word("consent.save"),
      ),
      withdraw,
    ),
    slot,
  );
  // Withdrawing is offered while there is a consent to withdraw (the room keeps its form as it is).
  form.consentChanged = (consult) => {
    withdraw.hidden = !consult?.consent?.scopes?.length;
  };
  return form;
}
