// Bureau pages: batch jobs (submit a ZIP or a manifest, watch, download CSV/JSON) and the subjects
// the bureau owns with their access rules.

import { get, call, upload } from "./api.js";
import { h, table, notice, when, fill } from "./dom.js";

// Job ids this tab submitted or opened (the service has no job list; ids are not secrets).
const JOBS_SLOT = "locard.jobs";
const known = () => JSON.parse(sessionStorage.getItem(JOBS_SLOT) || "[]");
const remember = (id) => sessionStorage.setItem(JOBS_SLOT, JSON.stringify([id, ...known().filter((j) => j !== id)].slice(0, 50)));

export function jobs(root) {
  const archive = h("input", { type: "file", id: "job-archive", accept: ".zip,application/zip" });
  const modality = h("select", { id: "job-modality" }, ["finger", "face"].map((m) => h("option", { value: m }, m)));
  const top = h("input", { id: "job-top", type: "number", min: 1, max: 100, value: 5 });
  const fmr = h("select", { id: "job-fmr" }, [1e-2, 1e-3, 1e-4, 1e-5].map((f) => h("option", { value: f, selected: f === 1e-3 }, String(f))));
  const manifest = h("textarea", { id: "job-manifest", rows: 5, spellcheck: "false",
    placeholder: '{"probes": [{"path": "case12/p1.png", "finger_position": 2}], "top": 5}' });
  const msg = h("div");
  const list = h("section", { id: "jobs" });
  const openId = h("input", { id: "open-job", placeholder: "job_…", maxlength: 40 });
  let timer = null;

  async function submit(e) {
    e.preventDefault();
    msg.replaceChildren();
    try {
      let job;
      if (archive.files[0]) {
        const form = new FormData();
        form.append("archive", archive.files[0]); form.append("archive_modality", modality.value);
        form.append("top", top.value); form.append("fmr", fmr.value);
        job = await upload("/v1/jobs", form, (sent, total) => fill(msg, notice("info", `Sending ${Math.round(100 * sent / (total || 1))} %`)));
      } else if (manifest.value.trim()) {
        let body;
        try { body = JSON.parse(manifest.value); } catch (exc) { throw new Error(`the manifest is not JSON: ${exc.message}`); }
        job = await call("POST", "/v1/jobs/manifest", { body });
      } else throw new Error("choose a ZIP of probe images, or write a manifest");
      remember(job.id);
      fill(msg, notice("info", `Submitted ${job.id}: ${job.total} probes.`));
      archive.value = "";
      refresh();
    } catch (exc) { fill(msg, notice("error", exc.message)); }
  }

  async function download(id, format) {
    const blob = await call("GET", `/v1/jobs/${encodeURIComponent(id)}/results?format=${format}`, { as: "blob" });
    const a = h("a", { href: URL.createObjectURL(blob), download: `${id}.${format}` });
    document.body.append(a); a.click(); a.remove();
    setTimeout(() => URL.revokeObjectURL(a.href), 10000);
  }

  async function refresh() {
    clearTimeout(timer);
    const rows = [];
    for (const id of known()) {
      try { rows.push(await get(`/v1/jobs/${encodeURIComponent(id)}`)); } catch { /* expired or not this bureau's */ }
    }
    fill(list, rows.length ? table([
      { label: "Job", cell: (j) => h("code", {}, j.id) },
      { label: "State", cell: (j) => h("span", { class: `state ${j.state}` }, j.state) },
      { label: "Progress", cell: (j) => h("progress", { max: 1, value: j.progress, title: `${Math.round(100 * j.progress)} %` }) },
      { label: "Probes", cls: "num", cell: (j) => `${j.done} / ${j.total}` },
      { label: "Failed", cls: "num", cell: (j) => j.failed },
      { label: "Submitted", cell: (j) => when(j.created) },
      { label: "Results", cell: (j) => [
        h("button", { type: "button", class: "quiet", onclick: () => download(j.id, "csv").catch((x) => fill(msg, notice("error", x.message))) }, "CSV"),
        h("button", { type: "button", class: "quiet", onclick: () => download(j.id, "json").catch((x) => fill(msg, notice("error", x.message))) }, "JSON"),
        ["queued", "running"].includes(j.state) ? h("button", { type: "button", class: "quiet",
          onclick: () => call("DELETE", `/v1/jobs/${encodeURIComponent(j.id)}`).then(refresh) }, "Cancel") : null] },
    ], rows, (j) => ({ dataset: { job: j.id, state: j.state } })) : h("p", { class: "muted" }, "No job submitted from this tab yet."));
    if (rows.some((j) => ["queued", "running"].includes(j.state))) timer = setTimeout(refresh, 1000);
  }

  fill(root, h("div", { class: "split" },
    h("form", { class: "panel side", onsubmit: submit },
      h("h2", {}, "New batch job"),
      h("label", { for: "job-archive" }, "ZIP of probe images (one probe per image)"), archive,
      h("div", { class: "row3" },
        h("div", {}, h("label", { for: "job-modality" }, "Modality"), modality),
        h("div", {}, h("label", { for: "job-top" }, "Candidates"), top),
        h("div", {}, h("label", { for: "job-fmr" }, "FMR"), fmr)),
      h("label", { for: "job-manifest" }, "…or a manifest (JSON; paths under the server's manifest root)"), manifest,
      h("button", { type: "submit", class: "primary", id: "submit-job" }, "Submit"), msg),
    h("section", { class: "page" },
      h("div", { class: "filters" }, h("h2", {}, "Jobs"), h("span", { class: "grow" }),
        h("label", { for: "open-job" }, "Open job"), openId,
        h("button", { type: "button", onclick: () => { if (openId.value.trim()) { remember(openId.value.trim()); refresh(); } } }, "Open")),
      list)));
  refresh();
  return () => clearTimeout(timer);
}

export function subjects(root, args, ctx) {
  const owned = h("input", { type: "checkbox", id: "only-owned", checked: true, onchange: () => load(0) });
  const out = h("section", { id: "subjects" });
  const mayEdit = ctx.can("PUT /v1/subjects/{subject_id}/access");
  const rule = (s) => s.shared_with === null ? "all bureaus" : s.shared_with.length ? s.shared_with.join(", ") : "owner only";

  function editor(s, cell) {
    const input = h("input", { value: s.shared_with === null ? "all" : s.shared_with.join(",") || "none", "aria-label": `access of ${s.id}`,
      title: "'all', 'none', or bureaus separated by commas" });
    fill(cell, h("form", { class: "inline", onsubmit: async (e) => {
      e.preventDefault();
      const v = input.value.trim();
      const shared = v.toLowerCase() === "all" ? null : v.toLowerCase() === "none" || !v ? [] : v.split(",").map((x) => x.trim()).filter(Boolean);
      try {
        const upd = await call("PUT", `/v1/subjects/${encodeURIComponent(s.id)}/access`, { body: { shared_with: shared } });
        Object.assign(s, upd); fill(cell, rule(s));
      } catch (exc) { cell.append(notice("error", exc.message)); }
    } }, input, h("button", { type: "submit" }, "Save")));
    input.focus();
  }

  async function load(offset) {
    try {
      const page = await get(`/v1/subjects?offset=${offset}&limit=100`);
      const rows = page.items.filter((s) => !owned.checked || s.owner === ctx.me.bureau);
      fill(out, 
        h("p", { class: "muted" }, `${page.total} subjects visible to ${ctx.me.bureau}; this page ${page.offset + 1}–${page.offset + page.items.length}` +
          (owned.checked ? `, ${rows.length} owned by ${ctx.me.bureau}` : "")),
        table([
          { label: "Subject", cell: (s) => h("code", {}, s.id) },
          { label: "Reference", cell: (s) => s.reference || "–" },
          { label: "Owner", cell: (s) => s.owner },
          { label: "Shared with", cell: (s) => rule(s) },
          { label: "Encounters", cls: "num", cell: (s) => s.encounters },
          { label: "Fingers", cls: "num", cell: (s) => s.finger_samples },
          { label: "Faces", cls: "num", cell: (s) => s.face_samples },
          { label: "Enrolled", cell: (s) => when(s.created) },
          { label: "", cell: (s) => mayEdit && s.owner === ctx.me.bureau ? h("button", { type: "button", class: "quiet",
            onclick: (e) => editor(s, e.target.closest("tr").children[3]) }, "Change access") : "" },
        ], rows, (s) => ({ dataset: { subject: s.id } })),
        h("div", { class: "pager" },
          h("button", { type: "button", disabled: offset === 0, onclick: () => load(Math.max(0, offset - 100)) }, "◀ previous"),
          h("button", { type: "button", disabled: offset + page.items.length >= page.total, onclick: () => load(offset + 100) }, "next ▶")));
    } catch (exc) { fill(out, notice("error", exc.message)); }
  }

  fill(root, h("div", { class: "page" },
    h("div", { class: "filters" }, h("h2", {}, "Subjects"), h("label", { class: "radio" }, owned, `owned by ${ctx.me.bureau} only`)),
    out));
  load(0);
}
