// The shell: sign-in, the pages this key's role may use (from /v1/whoami), and a hash router.
// The hash holds page names and record ids only; the key never leaves sessionStorage and headers.

import { key, get } from "./api.js";
import { h, $, notice, fill } from "./dom.js";
import * as search from "./search.js";
import * as compare from "./compare.js";
import * as cases from "./cases.js";
import * as bureau from "./bureau.js";
import * as audit from "./audit.js";

const PAGES = [
  { id: "search", label: "Search", needs: "POST /v1/search", view: search.render },
  { id: "cases", label: "Cases", needs: "GET /v1/conclusions", view: cases.render },
  { id: "compare", needs: "POST /v1/compare", view: compare.render },
  { id: "jobs", label: "Batch jobs", needs: "POST /v1/jobs", view: bureau.jobs },
  { id: "subjects", label: "Subjects", needs: "GET /v1/subjects", view: bureau.subjects },
  { id: "audit", label: "Audit log", needs: "GET /v1/audit", view: audit.render },
];

const HOME = ["search", "audit", "jobs", "cases", "subjects"]; // a role's first page: the first it may use

const NOTICE = "locard.notice";
let me = null;
let cleanup = null;
const view = $("#view");

function context() {
  const ops = new Set(me.operations.map((o) => `${o.method.toUpperCase()} ${o.path}`));
  return { me, can: (op) => ops.has(op) };
}

function signIn(message) {
  me = null;
  $("#nav").replaceChildren();
  $("#who").textContent = "";
  $("#signout").hidden = true;
  const input = h("input", { type: "password", id: "api-key", name: "api-key", autocomplete: "off",
    spellcheck: "false", placeholder: "lk_…", required: true, "aria-label": "API key" });
  const err = h("div", { class: "signin-error" }, message ? notice("error", message) : null);
  const form = h("form", { class: "signin panel", onsubmit: async (e) => {
    e.preventDefault();
    key.set(input.value.trim());
    input.value = "";
    try { await start(); } catch (exc) { key.clear(); fill(err, notice("error", exc.message)); }
  } },
  h("h1", {}, "Sign in"),
  h("p", { class: "muted" }, "Your API key (from ", h("code", {}, "locard keys create"),
    "). It is kept in this tab only and is forgotten when the tab closes."),
  h("label", { for: "api-key" }, "API key"), input, err,
  h("button", { type: "submit", class: "primary" }, "Sign in"));
  run(() => { fill(view, form); input.focus(); });
}

function run(fn) {
  if (cleanup) { try { cleanup(); } catch { /* a page's own teardown must not block the next */ } }
  cleanup = null;
  cleanup = fn() || null;
}

async function start() {
  me = await get("/v1/whoami");
  const ctx = context();
  $("#who").textContent = `${me.key_id} · ${me.role} · ${me.bureau}${me.scope === "global" ? " (all bureaus)" : ""}`;
  $("#signout").hidden = false;
  fill($("#nav"), ...PAGES.filter((p) => p.label && ctx.can(p.needs))
    .map((p) => h("a", { href: `#${p.id}`, id: `nav-${p.id}` }, p.label)));
  route();
}

function route() {
  if (!me) return;
  const ctx = context();
  const [id, ...args] = location.hash.slice(1).split("/").map(decodeURIComponent);
  const allowed = PAGES.filter((p) => ctx.can(p.needs));
  const page = allowed.find((p) => p.id === id) || HOME.map((h) => allowed.find((p) => p.id === h)).find(Boolean);
  for (const a of $("#nav").children) a.classList.toggle("current", a.id === `nav-${page && page.id}`);
  if (!page) {
    run(() => fill(view, notice("info",
      `The workbench has no page for the role ${me.role}; use the command line or the API (/docs).`)));
    return;
  }
  run(() => page.view(view, args, ctx));
  view.focus({ preventScroll: true });
}

// Signing out reloads the page: nothing of one key's work (searches, probe files) stays in memory
// for the next key.  What this tab kept (key, job ids) goes; a reason to show survives the reload.
function signOut(reason) {
  sessionStorage.clear();
  if (reason) sessionStorage.setItem(NOTICE, reason);
  location.hash = "";
  location.reload();
}

window.addEventListener("hashchange", route);
// a 401 once signed in (key revoked); a refused sign-in is answered by the form itself
window.addEventListener("locard:signed-out", (e) => { if (me) signOut(`Signed out: ${e.detail}`); });
$("#signout").addEventListener("click", () => signOut());

const reason = sessionStorage.getItem(NOTICE);
sessionStorage.removeItem(NOTICE);
if (key.get()) start().catch((exc) => { key.clear(); signIn(exc.message); });
else signIn(reason);
