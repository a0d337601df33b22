// Search: probe images in, the ranked candidate list out, with what a hit means at this gallery size.

import { get, upload } from "./api.js";
import { h, table, notice, FINGERS, oneIn, fmrWords, fill } from "./dom.js";

// The last search of this tab and its probe files (part -> files in field order), for the comparison.
export const session = { search: null, files: { fingerprint: [], face: [] } };

const FMRS = [1e-2, 1e-3, 1e-4, 1e-5, 1e-6];
const IMAGE_TYPES = ".png,.jpg,.jpeg,.tif,.tiff,.bmp,.pgm,.wsq,.gif,image/*";

export function render(root, args, ctx) {
  const probes = []; // {file, modality, position}
  const list = h("ul", { class: "probe-list" });
  const pick = h("input", { type: "file", multiple: true, accept: IMAGE_TYPES, id: "probe-files",
    onchange: () => { add(pick.files); pick.value = ""; } });
  const drop = h("label", { class: "drop", for: "probe-files", tabindex: 0 },
    h("b", {}, "Drop probe images here"), h("span", { class: "muted" }, "or press Enter to choose files"));
  drop.addEventListener("keydown", (e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); pick.click(); } });
  drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => { e.preventDefault(); drop.classList.remove("over"); add(e.dataTransfer.files); });

  const caseRef = h("input", { id: "case", maxlength: 200, placeholder: "case number" });
  const ppi = h("input", { id: "ppi", type: "number", min: 250, max: 2000, value: 500 });
  const fmr = h("select", { id: "fmr" }, FMRS.map((f) => h("option", { value: f, selected: f === 1e-3 }, fmrWords(f))));
  const top = h("select", { id: "top" }, [10, 20, 50, 100].map((n) => h("option", { value: n }, n)));
  const go = h("button", { class: "primary", id: "run-search", type: "submit" }, "Search");
  const progress = h("div", { class: "progress", hidden: true }, h("div", { class: "bar" }), h("span", { class: "label" }));
  const out = h("section", { class: "results", id: "results" });

  function add(files) {
    for (const file of files) probes.push({ file, modality: /\.(jpe?g|gif)$/i.test(file.name) ? "face" : "finger", position: 0 });
    draw();
  }
  function draw() {
    fill(list, ...probes.map((p, i) => h("li", {},
      h("span", { class: "name", title: p.file.name }, p.file.name),
      h("select", { class: "mod", "aria-label": `modality of ${p.file.name}`, onchange: (e) => { p.modality = e.target.value; draw(); } },
        ["finger", "face"].map((m) => h("option", { value: m, selected: p.modality === m }, m))),
      p.modality === "finger" ? h("select", { class: "pos", "aria-label": `finger position of ${p.file.name}`,
        onchange: (e) => { p.position = Number(e.target.value); } },
      FINGERS.map((f, code) => h("option", { value: code, selected: p.position === code }, `${code} ${f}`))) : h("span", { class: "pos" }),
      h("button", { type: "button", class: "quiet", "aria-label": `remove ${p.file.name}`,
        onclick: () => { probes.splice(i, 1); draw(); } }, "×"))));
    go.disabled = probes.length === 0;
  }

  async function submit(e) {
    e.preventDefault();
    if (!probes.length) return;
    const t0 = performance.now();
    const form = new FormData();
    const files = { fingerprint: [], face: [] };
    for (const p of probes.filter((p) => p.modality === "finger")) {
      form.append("fingerprint", p.file); form.append("finger_position", p.position); files.fingerprint.push(p.file);
    }
    for (const p of probes.filter((p) => p.modality === "face")) { form.append("face", p.file); files.face.push(p.file); }
    form.append("ppi", ppi.value); form.append("fmr", fmr.value); form.append("top", top.value);
    if (caseRef.value.trim()) form.append("case", caseRef.value.trim());
    go.disabled = true;
    progress.hidden = false;
    fill(out, h("p", { class: "muted empty" }, "Searching…"));
    const bar = progress.querySelector(".bar"), label = progress.querySelector(".label");
    let stage = "Sending…";
    const tick = setInterval(() => { label.textContent = `${stage} ${((performance.now() - t0) / 1000).toFixed(1)} s`; }, 100);
    try {
      const res = await upload("/v1/search", form, (sent, total) => {
        bar.style.width = `${Math.round(100 * sent / (total || 1))}%`;
        if (sent >= total) { stage = "Extracting and searching…"; progress.classList.add("busy"); }
      });
      session.search = res; session.files = files; session.ppi = Number(ppi.value);
      results(out, res, ctx, performance.now() - t0);
      // the request's own share of that time (Resource Timing), kept beside it for the latency check
      const req = performance.getEntriesByType("resource").filter((x) => x.name.endsWith("/v1/search")).pop();
      if (req) out.querySelector(".summary").dataset.requestMs = req.duration.toFixed(1);
      performance.clearResourceTimings();
    } catch (exc) {
      fill(out, notice("error", exc.message), probeOutcomes(exc.problem && exc.problem.images));
    } finally {
      clearInterval(tick); progress.hidden = true; progress.classList.remove("busy"); go.disabled = false;
    }
  }

  fill(root, h("div", { class: "split" },
    h("form", { class: "panel side", onsubmit: submit, id: "search-form" },
      h("h2", {}, "Probe"),
      h("label", { for: "case" }, "Case"), caseRef,
      drop, pick, list,
      h("div", { class: "row3" },
        h("div", {}, h("label", { for: "fmr" }, "Decision FMR"), fmr),
        h("div", {}, h("label", { for: "top" }, "Candidates"), top),
        h("div", {}, h("label", { for: "ppi" }, "Finger ppi"), ppi)),
      go, progress),
    out));
  draw();
  if (session.search && (!args[0] || args[0] === session.search.search_id)) results(out, session.search, ctx, null);
  else if (args[0]) get(`/v1/searches/${encodeURIComponent(args[0])}`).then((s) => { session.search = s; session.files = { fingerprint: [], face: [] }; results(out, s, ctx, null); })
    .catch((exc) => fill(out, notice("error", exc.message)));
  else fill(out, h("p", { class: "muted empty" }, "Drop one or more probe images of one person and press Search."));
}

function probeOutcomes(images) {
  if (!images || !images.length) return null;
  return table([
    { label: "Probe", cell: (o) => o.filename || `${o.part}[${o.index}]` },
    { label: "Modality", cell: (o) => o.modality === "finger" ? `finger, ${FINGERS[o.finger_position] || o.finger_position}` : "face" },
    { label: "Quality", cls: "num", cell: (o) => o.quality ?? "–" },
    { label: "Used", cell: (o) => o.accepted ? "yes" : h("span", { class: "bad" }, `no: ${o.reason || o.error}`) },
  ], images);
}

// The result, whether just searched or reopened: summary in words, then the candidates.
export function results(out, s, ctx, pageMs) {
  const n = s.gallery_subjects;
  const expected = n * s.fmr;
  const words = s.calibrated
    ? [`A hit is a score of at least ${s.threshold.toFixed(2)} (−log10 FMR), a false match rate of ${fmrWords(s.fmr)} per comparison. `,
      `Searching ${n.toLocaleString("en")} subjects, a probe whose person is not enrolled gets a false hit in `,
      h("b", {}, oneIn(s.expected_fpir)), ` (${(100 * s.expected_fpir).toPrecision(2)} %; ${Number(expected.toPrecision(2))} false hits expected per search).`]
    : ["Scores are not calibrated: no hit/no hit decision can be made."];
  const compareOk = ctx.can("POST /v1/compare");
  const rows = s.candidates;
  const open = (c) => { location.hash = `#compare/${encodeURIComponent(s.search_id)}/${encodeURIComponent(c.subject)}`; };
  const status = h("span");
  fill(out, 
    h("div", { class: "summary panel", dataset: { searchMs: pageMs === null ? "" : pageMs.toFixed(1) } },
      h("div", { class: "meta" }, h("span", {}, "Search ", h("code", { id: "search-id" }, s.search_id)),
        s.case ? h("span", {}, "Case ", h("b", {}, s.case)) : null,
        h("span", {}, `Gallery ${n.toLocaleString("en")} subjects`),
        pageMs !== null ? h("span", { class: "muted" }, `answered in ${(pageMs / 1000).toFixed(2)} s`) : null, status),
      h("p", {}, words), probeOutcomes(s.probes)),
    rows.length ? table([
      { label: "Rank", cls: "num", cell: (c) => c.rank },
      { label: "Subject", cell: (c) => h("code", {}, c.subject) },
      { label: "Score", cls: "num", cell: (c) => c.raw.toFixed(3) },
      { label: "−log10 FMR", cls: "num", cell: (c) => c.score.toFixed(2) },
      { label: "Decision", cell: (c) => c.hit === null ? "–" : c.hit ? h("span", { class: "hit" }, "HIT") : h("span", { class: "nohit" }, "no hit") },
      { label: "Evidence", cell: (c) => c.evidence.map((e) => e.modality === "face" ? "face" :
        `${FINGERS[e.finger_position]}: ${e.pairs ? e.pairs.length : 0} paired`).join("; ") },
      { label: "Conclusion", cls: "concl", cell: () => "" },
    ], rows, (c) => ({ class: compareOk ? "link" : "", tabindex: compareOk ? 0 : null, dataset: { subject: c.subject },
      onclick: compareOk ? () => open(c) : null, onkeydown: compareOk ? (e) => { if (e.key === "Enter") open(c); } : null }),
    { id: "candidates" })
      : notice("info", "No candidate: nobody in the gallery your bureau may see scored for this probe."));
  if (ctx.can("GET /v1/searches/{search_id}/conclusions") && rows.length) {
    get(`/v1/searches/${encodeURIComponent(s.search_id)}/conclusions`).then((sc) => {
      for (const c of sc.candidates) {
        const cell = out.querySelector(`tr[data-subject="${CSS.escape(c.subject)}"] td.concl`);
        if (cell && c.status) fill(cell, h("span", { class: `status ${c.status}` }, c.status));
      }
    }).catch(() => { status.textContent = "(conclusions could not be read)"; });
  }
}
