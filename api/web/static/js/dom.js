// Building elements without innerHTML: every value from the service lands as text, never as markup.

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "class") el.className = v;
    else if (k === "dataset") Object.assign(el.dataset, v);
    else if (k in el && typeof v !== "string") el[k] = v;
    else el.setAttribute(k, v === true ? "" : v);
  }
  fill(el, ...children);
  return el;
}

// Replace an element's children; arrays are flattened, null/undefined/false left out.
export function fill(el, ...children) {
  el.replaceChildren(...children.flat(Infinity).filter((c) => c !== undefined && c !== null && c !== false)
    .map((c) => (c instanceof Node ? c : document.createTextNode(String(c)))));
  return el;
}

export const $ = (sel, root = document) => root.querySelector(sel);

export function table(columns, rows, rowAttrs = () => ({}), attrs = {}) {
  return h("table", { class: "grid", ...attrs },
    h("thead", {}, h("tr", {}, columns.map((c) => h("th", { class: c.cls }, c.label)))),
    h("tbody", {}, rows.map((r, i) => h("tr", rowAttrs(r, i), columns.map((c) => h("td", { class: c.cls }, c.cell(r, i)))))));
}

export function notice(kind, text) {
  return h("div", { class: `notice ${kind}`, role: kind === "error" ? "alert" : "status" }, text);
}

// -- words and numbers examiners read ----------------------------------------------------------
export const FINGERS = ["unknown", "right thumb", "right index", "right middle", "right ring", "right little",
  "left thumb", "left index", "left middle", "left ring", "left little"];

export function when(epochSeconds) {
  const d = new Date(epochSeconds * 1000);
  return d.toISOString().replace("T", " ").slice(0, 19) + " UTC";
}

export function oneIn(p) {
  if (!(p > 0)) return "never";
  const n = 1 / p;
  return n < 1.5 ? "almost every search" : `about 1 search in ${Math.round(n).toLocaleString("en")}`;
}

export function fmrWords(fmr) {
  return `1 in ${Math.round(1 / fmr).toLocaleString("en")}`;
}
