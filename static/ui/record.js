// A consult's record page (`#/record/<id>`): the patient, the timeline, the notes by section
// with what each amendment replaced, the attachments (images open in the page, files download),
// the outcome and who ended it, and the printable minutes. The minutes are the server's page,
// fetched with the token, parsed with DOMParser and only its <main> taken in, scripts, styles and
// handlers dropped; /static/print.css (linked from index.html) styles it, the Print button prints it.
import { consentForm, consentText } from "/static/ui/consent.js";
import { errorNode } from "/static/ui/dom.js";

export { consentText };

const SECTIONS = ["history", "examination", "investigations", "assessment", "plan", "discussion"];
// The printable page's own Print bar is wired by a script the app does not load: the page has its own.
const DROPPED =
  "script, style, link, meta, base, iframe, frame, object, embed, template, form, input, button, textarea, " +
  "select, .printable-bar, [data-print]";

// What the network sent, as inert nodes of this document: no script, no inline style, no handler.
export function importMain(html) {
  // Even an inert parsed document reports inline styles to the page's CSP as errors: the page's
  // own <style> blocks and style attributes go before parsing (/static/print.css styles it).
  const quiet = html
    .replace(/<style\b[^>]*>[\s\S]*?<\/style\s*>/gi, "")
    .replace(/\sstyle\s*=\s*("[^"]*"|'[^']*'|[^\s>]+)/gi, "");
  const doc = new DOMParser().parseFromString(quiet, "text/html");
  const main = doc.querySelector("main") || doc.body;
  for (const el of main.querySelectorAll(DROPPED)) el.remove();
  for (const el of [main, ...main.querySelectorAll("*")]) {
    for (const attr of [...el.attributes]) {
      const name = attr.name.toLowerCase();
      const value = attr.value.trim().toLowerCase();
      if (
        name.startsWith("on") ||
        name === "style" ||
        ((name === "href" || name === "src") && value.startsWith("javascript:"))
      ) {
        el.removeAttribute(attr.name);
      }
    }
  }
  const imported = document.importNode(main, true);
  // The page has one <main> (the app's): the minutes' own becomes an article with its classes.
  const article = document.createElement("article");
  for (const attr of [...imported.attributes]) article.setAttribute(attr.name, attr.value);
  article.classList.add("minutes-doc");
  // The minutes are a Vietnamese document (the server writes them so, whatever the page's language):
  // said so, for a screen reader's voice and WCAG's language of parts, on an English page too.
  article.lang = doc.documentElement.lang || "vi";
  article.append(...imported.childNodes);
  return article;
}

export function sizeText(bytes) {
  if (bytes == null) return "";
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(0)} KB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}

// `ctx`: { h, t, when, api, specialtyName, user }.
const RESULTS = ["recovered", "improving", "transferred", "died", "other"];

export class RecordPage {
  constructor(ctx, consultId) {
    this.ctx = ctx;
    this.id = consultId;
    this.urls = [];
    this.element = ctx.h("div", { class: "record-page", "data-consult": consultId });
    this.viewer = ctx.h("dialog", { class: "image-viewer", "aria-label": ctx.t("record.viewer") });
    this.element.append(ctx.h("p", { class: "muted" }, ctx.t("record.loading")));
    this.load();
  }

  async load() {
    const { h, t, api } = this.ctx;
    try {
      this.record = await api(`/api/consults/${encodeURIComponent(this.id)}`);
    } catch (error) {
      this.element.replaceChildren(
        h(
          "section",
          {},
          h("h2", {}, t("record.title")),
          errorNode(t, error),
          h("a", { href: "#/history" }, t("history.back")),
        ),
      );
      return;
    }
    this.minutes = h(
      "section",
      { class: "minutes", "aria-labelledby": "minutes-title" },
      h("h2", { id: "minutes-title", class: "no-print" }, t("minutes")),
      h("p", { class: "muted" }, t("record.loading")),
    );
    this.draw();
    try {
      const html = await api(`/api/consults/${encodeURIComponent(this.id)}/minutes`, { as: "text" });
      this.minutes.replaceChildren(h("h2", { id: "minutes-title", class: "no-print" }, t("minutes")), importMain(html));
    } catch (error) {
      this.minutes.replaceChildren(h("h2", { id: "minutes-title" }, t("minutes")), errorNode(t, error));
    }
  }

  draw() {
    const { h, t, when, specialtyName } = this.ctx;
    const { consult: c, timeline = [], notes = [], attachments = [], participants = [] } = this.record;
    const fact = (label, value) => (value ? [h("dt", {}, label), h("dd", {}, value)] : []);
    const endedBy = c.ended_by?.name;
    const summary = h(
      "section",
      { class: "record-summary no-print", "aria-labelledby": "record-title" },
      h(
        "div",
        { class: "row record-head" },
        h("h2", { id: "record-title" }, t("record.heading", { ref: c.patient?.ref || "" })),
        h("span", { class: "spacer" }),
        h("button", { type: "button", class: "print", onclick: () => window.print() }, t("record.print")),
        this.pdfButton(),
        h("a", { href: "#/history", class: "back" }, t("history.back")),
      ),
      h(
        "dl",
        { class: "facts" },
        fact(t("record.specialty"), specialtyName(c.specialty)),
        fact(t("request.urgency"), t(`urgency.${c.urgency}`)),
        fact(t("record.status"), t(`status.${c.status}`)),
        fact(
          t("record.patient"),
          [
            c.patient?.ref,
            c.patient?.age != null ? t("offer.age", { age: c.patient.age }) : null,
            c.patient?.sex ? t(`sex.${c.patient.sex}`) : null,
          ]
            .filter(Boolean)
            .join(" · "),
        ),
        fact(t("identity.name"), c.patient?.name),
        fact(t("identity.birth_date"), c.patient?.birth_date),
        fact(t("identity.national_id"), c.patient?.national_id),
        fact(t("identity.insurance_id"), c.patient?.insurance_id),
        fact(t("identity.address"), c.patient?.address),
        fact(t("consent.title"), consentText(t, when, c)),
        fact(t("consent.waiver"), c.consent_waived_reason),
        fact(t("request.summary"), c.patient?.summary),
        fact(t("record.requester"), c.requester ? `${c.requester.name} — ${c.requester.hospital?.name || ""}` : ""),
        fact(t("record.specialist"), c.specialist ? `${c.specialist.name} — ${c.specialist.hospital?.name || ""}` : ""),
        fact(t("record.participants"), participants.map((p) => p.name).join(", ")),
        fact(t("end.outcome"), c.outcome ? t(`outcome.${c.outcome}`) : ""),
        fact(t("end.summary"), c.summary),
        fact(t("record.ended_by"), endedBy),
        fact(t("record.ended_at"), c.ended_at ? when(c.ended_at) : ""),
        fact(
          t("result.label"),
          c.result
            ? t("result.reported", {
                result: t(`result.${c.result.result}`) + (c.result.note ? ` (${c.result.note})` : ""),
                name: c.result.reported_by?.name || "",
                at: when(c.result.reported_at),
              })
            : "",
        ),
      ),
      this.resultForm(c),
      this.consentForm(c),
    );
    const events = h(
      "section",
      { class: "timeline no-print", "aria-labelledby": "timeline-title" },
      h("h2", { id: "timeline-title" }, t("record.timeline")),
      h(
        "ol",
        {},
        timeline.map((e) =>
          h(
            "li",
            { "data-kind": e.kind },
            h("time", { datetime: e.at }, when(e.at)),
            " ",
            this.kindText(e.kind),
            e.actor?.name ? ` — ${e.actor.name}` : "",
            e.detail?.reason ? ` (${this.reasonText(e.detail.reason)})` : "",
            e.kind === "result" && e.detail?.result ? ` (${t(`result.${e.detail.result}`)})` : "",
          ),
        ),
      ),
    );
    const bySection = SECTIONS.map((s) => [s, notes.filter((n) => n.section === s)]).filter(([, list]) => list.length);
    const noteList = h(
      "section",
      { class: "record-notes no-print", "aria-labelledby": "notes-title" },
      h("h2", { id: "notes-title" }, t("notes.title")),
      bySection.length
        ? bySection.map(([s, list]) =>
            h(
              "div",
              { class: "note-section", "data-section": s },
              h("h3", {}, t(`section.${s}`)),
              list.map((n) =>
                h(
                  "div",
                  { class: "note", "data-seq": n.seq },
                  n.text,
                  h(
                    "small",
                    {},
                    `${n.author?.name || ""} · ${when(n.created_at)}` +
                      (n.history?.length ? ` · ${t("notes.amended")}` : "") +
                      (n.addendum ? ` · ${t("notes.addendum")}` : ""),
                  ),
                  n.history?.length
                    ? h(
                        "details",
                        { class: "amendments" },
                        h("summary", {}, t("record.before_amend", { n: n.history.length })),
                        n.history.map((old) =>
                          h(
                            "div",
                            { class: "note old" },
                            h("del", {}, old.text),
                            h("small", {}, `${old.author?.name || ""} · ${when(old.created_at)}`),
                          ),
                        ),
                      )
                    : null,
                ),
              ),
            ),
          )
        : h("p", { class: "muted" }, t("record.no_notes")),
    );
    const files = h(
      "section",
      { class: "record-files no-print", "aria-labelledby": "files-title" },
      h("h2", { id: "files-title" }, t("files.title")),
      attachments.length
        ? h(
            "ul",
            { class: "files" },
            attachments.map((f) => this.fileItem(f)),
          )
        : h("p", { class: "muted" }, t("record.no_files")),
    );
    this.signing = this.signing || h("section", { class: "record-signatures no-print", "aria-labelledby": "signatures-title" });
    this.recordings = h(
      "section",
      { class: "record-recordings no-print", "aria-labelledby": "recordings-title" },
      h("h2", { id: "recordings-title" }, t("recordings.title")),
    );
    this.element.replaceChildren(summary, events, noteList, files, this.recordings, this.signing, this.minutes, this.viewer);
    this.loadRecordings();
    this.loadSignatures();
  }

  // The digital signatures of the minutes (GET …/minutes/signatures): every version, who signed
  // it and whether each signature is intact, trusted and timestamped; the PDF of each version;
  // and, for whoever may still sign the current version, a PIN field (POST …/minutes/sign).
  async loadSignatures(shown) {
    const { h, t } = this.ctx;
    const base = `/api/consults/${encodeURIComponent(this.id)}/minutes`;
    let found;
    try {
      found = await this.ctx.api(`${base}/signatures${shown ? `?version=${shown}` : ""}`);
    } catch (error) {
      this.signing.replaceChildren(h("h2", { id: "signatures-title" }, t("sign.title")), errorNode(t, error));
      return;
    }
    this.drawSignatures(found, shown);
  }

  drawSignatures(found, shown) {
    const { h, t, when, user } = this.ctx;
    const c = this.record.consult;
    const current = found.versions[found.versions.length - 1]?.version || 1;
    const verdict = (s) =>
      s.intact && s.trusted ? t("sign.valid") : s.intact ? t("sign.untrusted") : t("sign.broken");
    const signers = found.signatures.length
      ? h(
          "ul",
          { class: "signatures" },
          found.signatures.map((s) =>
            h(
              "li",
              { class: `signature ${s.intact && s.trusted ? "ok" : "bad"}`, "data-role": s.role },
              `${s.signer?.name || ""} — ${t(`sign.role.${s.role}`)} · ${when(s.signed_at)} · ${verdict(s)}` +
                (s.timestamped ? ` · ${t("sign.timestamped")}` : ""),
            ),
          ),
        )
      : h("p", { class: "muted" }, t("sign.none"));
    const versions = h(
      "ul",
      { class: "minutes-versions" },
      found.versions.map((v) =>
        h(
          "li",
          { "data-version": v.version },
          h(
            "button",
            { type: "button", class: "link", "aria-pressed": String(v.version === found.version), onclick: () => this.loadSignatures(v.version) },
            t("sign.version", { n: v.version }),
          ),
          ` · ${v.locked ? t("sign.locked") : v.frozen ? t("sign.partly") : t("sign.unsigned")} `,
          this.versionPdf(v.version),
        ),
      ),
    );
    const signed = found.versions.find((v) => v.version === current)?.signers || [];
    const mayJoin = user && ["clinician", "specialist"].includes(user.role);
    const form =
      c.status === "ended" && mayJoin && found.version === current && !signed.includes(user.id) && !shown
        ? this.signForm()
        : null;
    this.signing.replaceChildren(h("h2", { id: "signatures-title" }, t("sign.title")), versions, signers, form);
  }

  versionPdf(version) {
    const { h, t } = this.ctx;
    return h(
      "button",
      {
        type: "button",
        class: "secondary",
        onclick: async () => {
          const data = await this.ctx.api(
            `/api/consults/${encodeURIComponent(this.id)}/minutes.pdf?version=${version}`,
            { as: "blob" },
          );
          const url = URL.createObjectURL(data);
          this.urls.push(url);
          const a = h("a", { href: url, download: `bien-ban-${this.record.consult.patient?.ref || this.id}-v${version}.pdf`, hidden: true });
          document.body.append(a);
          a.click();
          a.remove();
        },
      },
      t("sign.download", { n: version }),
    );
  }

  signForm() {
    const { h, t } = this.ctx;
    const pin = h("input", { id: "sign-pin", name: "pin", type: "password", autocomplete: "off", inputmode: "text", required: true, maxlength: 128 });
    const status = h("p", { class: "form-status", role: "status" });
    const form = h(
      "form",
      {
        class: "sign-form",
        "data-form": "sign",
        onsubmit: async (event) => {
          event.preventDefault();
          status.textContent = "";
          status.className = "form-status";
          try {
            await this.ctx.api(`/api/consults/${encodeURIComponent(this.id)}/minutes/sign`, {
              method: "POST",
              headers: { "Content-Type": "application/json" },
              body: JSON.stringify({ pin: pin.value }),
            });
            pin.value = "";
            await this.loadSignatures();
            this.signing.querySelector("h2")?.after(h("p", { class: "form-status", role: "status" }, t("sign.done")));
          } catch (error) {
            pin.value = "";
            status.textContent = error?.code === "forbidden" ? t("sign.wrong_pin") : t("error", { message: error?.message || String(error) });
            status.className = "form-status error";
          }
        },
      },
      h("p", { class: "muted" }, t("sign.hint")),
      h("label", { for: "sign-pin" }, t("sign.pin")),
      pin,
      h("p", { class: "row" }, h("button", { type: "submit" }, t("sign.submit"))),
      status,
    );
    return form;
  }

  // The call's recordings, segments in order. Each plays streamed, part by part (HTTP Range),
  // from a playback link: a <video> cannot send the user's sign-in itself, so the server gives a
  // link for this recording and this user for a few minutes; asking for it is the audited playback.
  async loadRecordings() {
    const { h, t, when, api } = this.ctx;
    let recordings = [];
    try {
      ({ recordings } = await api(`/api/consults/${encodeURIComponent(this.id)}/recordings`));
    } catch (error) {
      this.recordings.append(errorNode(t, error));
      return;
    }
    if (!recordings.length) {
      this.recordings.append(h("p", { class: "muted" }, t("recordings.none")));
      return;
    }
    this.recordings.append(
      h(
        "ol",
        { class: "recordings" },
        recordings.map((r) => {
          const slot = h("div", { class: "recording-player" });
          const label = t("recordings.segment", {
            segment: r.segment,
            when: when(r.started_at),
            minutes: Math.max(1, Math.round((r.duration_s || 0) / 60)),
          });
          const play = h(
            "button",
            {
              type: "button",
              class: "secondary play-recording",
              "aria-label": `${t("recordings.play")}: ${label}`,
              onclick: async () => {
                play.disabled = true;
                try {
                  slot.replaceChildren(await this.player(r.id, label, slot));
                } catch (error) {
                  slot.replaceChildren(errorNode(t, error));
                } finally {
                  play.disabled = false;
                }
              },
            },
            t("recordings.play"),
          );
          const state = r.state === "recording" ? t("recordings.in_progress") : r.state === "failed" ? t("recordings.cut_short") : "";
          return h(
            "li",
            { "data-recording": r.id },
            h("span", {}, label),
            state ? h("span", { class: "muted" }, ` — ${state}`) : null,
            r.state === "recording" ? null : play,
            slot,
          );
        }),
      ),
    );
  }

  // A player of one recording from its playback link. When the link has expired (the player
  // asks for more, or seeks, minutes later), the next request fails: a new link, at the same
  // place, playing if it was. An error while the link still holds is shown, not retried.
  async player(recordingId, label, slot) {
    const { h, t, api } = this.ctx;
    const link = () => api(`/api/recordings/${encodeURIComponent(recordingId)}/playback`, { method: "POST" });
    let current = await link();
    const video = h("video", { src: current.url, controls: true, preload: "metadata", "aria-label": label });
    let at = 0;
    let playing = false;
    video.addEventListener("timeupdate", () => { at = video.currentTime; });
    video.addEventListener("play", () => { playing = true; });
    video.addEventListener("pause", () => { playing = false; });
    video.addEventListener("error", async () => {
      if (Date.now() < Date.parse(current.expires_at)) {
        slot.replaceChildren(video, h("p", { class: "error", role: "alert" }, t("recordings.failed")));
        return;
      }
      const resume = playing;
      try {
        current = await link();
      } catch (error) {
        slot.replaceChildren(errorNode(t, error));
        return;
      }
      video.src = current.url;
      video.addEventListener("loadedmetadata", () => {
        video.currentTime = at;
        if (resume) video.play().catch(() => {});
      }, { once: true });
    });
    return video;
  }

  // The requesting side (the requester, or a clinician of the requesting hospital) reports back,
  // after the end, what became of the patient; a later report replaces the shown one.
  resultForm(c) {
    const { h, t, user, connection } = this.ctx;
    const mine = user && (user.id === c.requester?.id ||
      (user.role === "clinician" && user.hospital?.id === this.record.hospital?.id));
    if (c.status !== "ended" || !mine || !connection) return null;
    const choices = RESULTS.map((r) =>
      h("label", { class: "choice" },
        h("input", { type: "radio", name: "result", value: r, required: true, checked: c.result?.result === r }),
        t(`result.${r}`)));
    const note = h("textarea", { id: "result-note", name: "result_note", rows: 2, maxlength: 2000 });
    const status = h("p", { class: "form-status", role: "status" });
    const form = h("form", { class: "result-form no-print", "data-form": "result", onsubmit: async (event) => {
      event.preventDefault();
      const picked = form.querySelector("input[name=result]:checked");
      if (!picked) return;
      status.textContent = "";
      status.className = "form-status";
      try {
        await connection.write("consult:result", { consult_id: c.id, result: picked.value, note: note.value.trim() });
        this.record = await this.ctx.api(`/api/consults/${encodeURIComponent(this.id)}`);
        this.draw();
        this.element.querySelector("[data-form=result] .form-status").textContent = t("result.sent");
      } catch (error) {
        status.textContent = t("error", { message: error?.message || String(error) });
        status.className = "form-status error";
      }
    } },
    h("fieldset", {}, h("legend", {}, t("result.title")), h("p", { class: "muted" }, t("result.hint")), choices),
    h("label", { for: "result-note" }, t("result.note")), note,
    h("p", { class: "row" }, h("button", { type: "submit" }, t("result.send"))), status);
    return form;
  }

  // The archival PDF of the minutes (GET …/minutes.pdf): fetched with the token, saved in place
  // through an <a download> on a blob: address, never opened in a tab that would leave the app.
  pdfButton() {
    const { h, t, api } = this.ctx;
    const slot = h("span", { class: "field-error" });
    const button = h(
      "button",
      {
        type: "button",
        class: "secondary download-minutes",
        onclick: async () => {
          slot.replaceChildren();
          try {
            const data = await api(`/api/consults/${encodeURIComponent(this.id)}/minutes.pdf`, { as: "blob" });
            const url = URL.createObjectURL(data);
            this.urls.push(url);
            const a = h("a", { href: url, download: `bien-ban-${this.record.consult.patient?.ref || this.id}.pdf`, hidden: true });
            document.body.append(a);
            a.click();
            a.remove();
          } catch (error) {
            slot.replaceChildren(errorNode(t, error));
          }
        },
      },
      t("record.download_pdf"),
    );
    return h("span", { class: "pdf-download" }, button, slot);
  }

  // The requesting side records the patient's consent afterwards, or its withdrawal (static/ui/consent.js).
  consentForm(c) {
    return consentForm(this.ctx, c, {
      onSaved: (consult) => {
        if (consult) this.record.consult = consult;
        this.draw();
      },
    });
  }

  // A reason the server names by a code is said in words; any other (a failure's) as written.
  reasonText(reason) {
    const key = `timeline.reason.${reason}`;
    const text = this.ctx.t(key);
    return text === key ? reason : text;
  }

  kindText(kind) {
    const key = `timeline.${kind}`;
    const text = this.ctx.t(key);
    return text === key ? kind : text;
  }

  fileItem(f) {
    const { h, t, when } = this.ctx;
    const slot = h("span", { class: "field-error" });
    const image = /^image\/(png|jpeg)$/.test(f.content_type);
    const blob = async () => {
      const data = await this.ctx.api(f.url, { as: "blob" });
      const url = URL.createObjectURL(data);
      this.urls.push(url);
      return url;
    };
    const view = image
      ? h(
          "button",
          {
            type: "button",
            class: "secondary view-file",
            "aria-label": `${t("record.view")}: ${f.filename}`,
            onclick: async () => {
              slot.replaceChildren();
              try {
                const url = await blob();
                this.viewer.replaceChildren(
                  h("img", { src: url, alt: f.filename }),
                  h(
                    "div",
                    { class: "row" },
                    h("span", {}, f.filename),
                    h("span", { class: "spacer" }),
                    h(
                      "button",
                      { type: "button", class: "close-viewer", onclick: () => this.viewer.close() },
                      t("record.close"),
                    ),
                  ),
                );
                this.viewer.showModal();
              } catch (error) {
                slot.replaceChildren(errorNode(t, error));
              }
            },
          },
          t("record.view"),
        )
      : null;
    // A download in place (an <a download>), never a blob: tab that would leave the app.
    const download = h(
      "button",
      {
        type: "button",
        class: "secondary download-file",
        "aria-label": `${t("record.download")}: ${f.filename}`,
        onclick: async () => {
          slot.replaceChildren();
          try {
            const a = h("a", { href: await blob(), download: f.filename, hidden: true });
            document.body.append(a);
            a.click();
            a.remove();
          } catch (error) {
            slot.replaceChildren(errorNode(t, error));
          }
        },
      },
      t("record.download"),
    );
    return h(
      "li",
      { "data-file": f.id },
      h("span", { class: "file-name" }, f.filename),
      h("small", { class: "muted" }, ` ${sizeText(f.size)} · ${when(f.created_at)}`),
      " ",
      view,
      download,
      slot,
    );
  }

  close() {
    for (const url of this.urls) URL.revokeObjectURL(url);
  }
}
