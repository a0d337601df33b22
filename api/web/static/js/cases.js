// Cases: candidates with conclusions, by case and status; what awaits this examiner's blind verification.

import { get } from "./api.js";
import { h, table, notice, fill } from "./dom.js";

const STATUSES = ["", "pending", "verified", "disagreement"];

export function render(root, args, ctx) {
  const caseRef = h("input", { id: "filter-case", placeholder: "case number", maxlength: 200 });
  const status = h("select", { id: "filter-status" }, STATUSES.map((s) => h("option", { value: s }, s || "any status")));
  const awaiting = h("input", { type: "checkbox", id: "filter-awaiting" });
  const openId = h("input", { id: "open-search", placeholder: "srch_…", maxlength: 40 });
  const out = h("section", { id: "cases" });
  const canCompare = ctx.can("POST /v1/compare");
  let offset = 0;

  async function load() {
    const q = new URLSearchParams({ offset, limit: 100 });
    if (caseRef.value.trim()) q.set("case", caseRef.value.trim());
    if (status.value) q.set("status", status.value);
    fill(out, h("p", { class: "muted" }, "Loading…"));
    try {
      const page = await get(`/v1/conclusions?${q}`);
      const rows = page.items.filter((c) => !awaiting.checked || (c.awaiting_verification && !c.concluded_by_you));
      const open = (c) => { location.hash = `#compare/${encodeURIComponent(c.search_id)}/${encodeURIComponent(c.subject)}`; };
      fill(out, 
        h("p", { class: "muted" }, `${page.total} candidates with conclusions; showing ${page.offset + 1}–${page.offset + page.items.length}.`),
        rows.length ? table([
          { label: "Case", cell: (c) => c.case || "–" },
          { label: "Search", cell: (c) => h("code", {}, c.search_id) },
          { label: "Subject", cell: (c) => h("code", {}, c.subject) },
          { label: "Status", cell: (c) => h("span", { class: `status ${c.status}` }, c.status || "–") },
          { label: "You", cell: (c) => c.concluded_by_you ? "concluded" : c.awaiting_verification ? h("b", {}, "to verify") : "–" },
          { label: "Conclusions", cell: (c) => c.conclusions.map((x) => `${x.kind}: ${x.conclusion} (${x.examiner})`).join("; ") || "hidden until you conclude" },
        ], rows, (c) => ({ class: canCompare ? "link" : "", tabindex: canCompare ? 0 : null,
          onclick: canCompare ? () => open(c) : null, onkeydown: canCompare ? (e) => { if (e.key === "Enter") open(c); } : null }))
          : notice("info", "No conclusion matches."),
        h("div", { class: "pager" },
          h("button", { type: "button", disabled: offset === 0, onclick: () => { offset = Math.max(0, offset - 100); load(); } }, "◀ previous"),
          h("button", { type: "button", disabled: offset + page.items.length >= page.total, onclick: () => { offset += 100; load(); } }, "next ▶")));
    } catch (exc) {
      fill(out, notice("error", exc.message));
    }
  }

  fill(root, h("div", { class: "page" },
    h("form", { class: "filters panel", onsubmit: (e) => { e.preventDefault(); offset = 0; load(); } },
      h("label", { for: "filter-case" }, "Case"), caseRef,
      h("label", { for: "filter-status" }, "Status"), status,
      canCompare ? h("label", { class: "radio" }, awaiting, "awaiting my verification") : null,
      h("button", { type: "submit" }, "Show"),
      ctx.can("GET /v1/searches/{search_id}") ? [h("span", { class: "grow" }),
        h("label", { for: "open-search" }, "Open search"), openId,
        h("button", { type: "button", onclick: () => { if (openId.value.trim()) location.hash = `#search/${encodeURIComponent(openId.value.trim())}`; } }, "Open")] : null),
    out));
  load();
}
