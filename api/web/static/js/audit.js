// Auditor: the chained audit log (this bureau's entries, or all for a global key), filtered in the
// page, and whether the chain and its anchor verify.

import { get } from "./api.js";
import { h, table, notice, when, fill } from "./dom.js";

const PAGE = 1000;
const SHOWN = 500;
const MAIN = new Set(["action", "key", "role", "bureau", "subject", "outcome", "user", "host", "pid"]);

export function render(root) {
  const check = h("div", { id: "audit-check", class: "panel" }, "Verifying the chain…");
  const action = h("select", { id: "filter-action" }, h("option", { value: "" }, "any action"));
  const who = h("input", { id: "filter-who", placeholder: "key id, bureau or user" });
  const text = h("input", { id: "filter-text", placeholder: "subject, search id, case, any text" });
  const out = h("section", { id: "audit" });
  let entries = [], next = 0;

  async function verify() {
    try {
      const c = await get("/v1/audit/verify");
      check.className = `panel check ${c.intact ? "ok" : "bad"}`;
      fill(check, h("b", {}, c.intact ? "Chain intact" : "Chain BROKEN"),
        ` — ${c.entries.toLocaleString("en")} entries, hash chain and anchor checked just now.`,
        c.problems.length ? h("ul", {}, c.problems.map((p) => h("li", {}, p))) : null);
    } catch (exc) { fill(check, notice("error", exc.message)); }
  }

  async function more() {
    // the log is read oldest first; pages of 1000 until the end (each read is itself recorded)
    for (let i = 0; i < 20 && next !== null; i++) {
      const page = await get(`/v1/audit?after=${next}&limit=${PAGE}`);
      entries.push(...page.entries);
      next = page.next_after;
    }
    const actions = [...new Set(entries.map((e) => e.record.action))].sort();
    const cur = action.value;
    fill(action, h("option", { value: "" }, "any action"), actions.map((a) => h("option", { value: a, selected: a === cur }, a)));
    show();
  }

  function show() {
    const w = who.value.trim().toLowerCase(), t = text.value.trim().toLowerCase();
    const rows = entries.filter((e) => (!action.value || e.record.action === action.value)
      && (!w || [e.record.key, e.record.bureau, e.record.user].some((v) => String(v ?? "").toLowerCase().includes(w)))
      && (!t || JSON.stringify(e.record).toLowerCase().includes(t))).reverse();
    fill(out, 
      h("p", { class: "muted" }, `${rows.length} of ${entries.length} entries read match; newest first` +
        (rows.length > SHOWN ? `, the first ${SHOWN} shown` : "") + "."),
      table([
        { label: "Seq", cls: "num", cell: (e) => e.seq },
        { label: "Time (UTC)", cls: "nowrap", cell: (e) => when(e.at).slice(0, 19) },
        { label: "Action", cls: "nowrap", cell: (e) => h("b", {}, e.record.action) },
        { label: "Actor", cell: (e) => e.record.key ? `${e.record.key} · ${e.record.role || "?"} · ${e.record.bureau || "?"}`
          : e.record.user ? `${e.record.user}@${e.record.host || "?"}` : "–" },
        { label: "Subject", cell: (e) => e.record.subject ? h("code", {}, e.record.subject) : "" },
        { label: "Outcome", cell: (e) => e.record.outcome ?? e.record.status ?? "" },
        { label: "Details", cls: "details", cell: (e) => {
          const rest = Object.fromEntries(Object.entries(e.record).filter(([k]) => !MAIN.has(k)));
          const s = JSON.stringify(rest);
          return h("span", { title: s }, s.length > 160 ? `${s.slice(0, 160)}…` : s);
        } },
      ], rows.slice(0, SHOWN), (e) => ({ dataset: { action: e.record.action } })),
      next !== null ? h("button", { type: "button", onclick: () => more().catch(fail) }, "Read more entries") : null);
  }
  const fail = (exc) => fill(out, notice("error", exc.message));

  fill(root, h("div", { class: "page" }, check,
    h("form", { class: "filters panel", onsubmit: (e) => { e.preventDefault(); show(); } },
      h("label", { for: "filter-action" }, "Action"), action,
      h("label", { for: "filter-who" }, "Who"), who,
      h("label", { for: "filter-text" }, "Text"), text,
      h("button", { type: "submit" }, "Filter"),
      h("button", { type: "button", onclick: () => { entries = []; next = 0; verify(); more().catch(fail); } }, "Reload")),
    out));
  action.addEventListener("change", show);
  verify().then(() => more()).catch(fail);
}
