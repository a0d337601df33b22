// Conclude (ACE-V): record identification / exclusion / inconclusive with a note.  Blind verification
// is the service's rule: until this examiner has recorded a conclusion it answers with none of the
// others' conclusions, so the page has nothing of them to show.

import { get, post } from "./api.js";
import { h, notice, when, fill } from "./dom.js";

const CONCLUSIONS = [["identification", "Identification"], ["exclusion", "Exclusion"], ["inconclusive", "Inconclusive"]];
const STATUS_WORDS = { pending: "pending verification", verified: "verified", disagreement: "disagreement: for review" };

export async function conclusionPanel(side, search, cand) {
  let box = side.querySelector(".conclusion");
  if (!box) { box = h("section", { class: "conclusion", id: "conclusion" }); side.prepend(box); }
  fill(box, h("h2", {}, "Conclusion"), h("p", { class: "muted" }, "Loading…"));
  const path = `/v1/searches/${encodeURIComponent(search.search_id)}/conclusions`;
  let mine;
  try {
    mine = (await get(path)).candidates.find((c) => c.subject === cand.subject);
  } catch (exc) {
    fill(box, h("h2", {}, "Conclusion"), notice("error", exc.message));
    return;
  }
  const head = [h("h2", {}, "Conclusion"),
    h("div", { class: "meta" }, search.case ? h("span", {}, "Case ", h("b", {}, search.case)) : null,
      h("span", {}, "Subject ", h("code", {}, cand.subject)))];
  if (mine && mine.concluded_by_you) {
    fill(box, ...head,
      h("p", {}, "Status: ", h("span", { class: `status ${mine.status}`, id: "conclusion-status" }, STATUS_WORDS[mine.status] || mine.status)),
      h("ol", { class: "conclusions" }, mine.conclusions.map((c) => h("li", {},
        h("div", {}, h("b", {}, c.conclusion), ` · ${c.kind} · `, h("code", {}, c.examiner)),
        h("div", { class: "muted" }, when(c.created_at)),
        c.note ? h("div", { class: "note" }, c.note) : null))));
    return;
  }
  const note = h("textarea", { id: "conclusion-note", maxlength: 2000, rows: 4, placeholder: "What you saw, and why" });
  const choice = CONCLUSIONS.map(([value, label]) => h("label", { class: "radio" },
    h("input", { type: "radio", name: "conclusion", value, required: true }), label));
  const msg = h("div");
  const form = h("form", { onsubmit: async (e) => {
    e.preventDefault();
    const picked = form.querySelector("input[name=conclusion]:checked");
    if (!picked) return;
    form.querySelector("button").disabled = true;
    try {
      await post(path, { body: { subject: cand.subject, conclusion: picked.value, note: note.value } });
      conclusionPanel(side, search, cand);
    } catch (exc) {
      fill(msg, notice("error", exc.message));
      form.querySelector("button").disabled = false;
    }
  } },
  h("fieldset", {}, h("legend", {}, "Your conclusion on this candidate"), choice),
  h("label", { for: "conclusion-note" }, "Note"), note,
  h("button", { type: "submit", class: "primary", id: "record-conclusion" }, "Record conclusion"), msg);
  fill(box, ...head,
    mine && mine.awaiting_verification
      ? notice("info", "Blind verification: another examiner has concluded on this candidate. Their conclusion is shown once you record yours.")
      : null,
    form);
}
