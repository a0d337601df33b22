// Compare: probe beside candidate in one canvas, both in their 500-ppi frames at one scale, zoom and pan
// locked together; minutiae with direction ticks, pairs numbered alike, lines on demand; the conclusion.

import { get, call } from "./api.js";
import { h, notice, fill } from "./dom.js";
import { session } from "./search.js";
import { conclusionPanel } from "./conclude.js";

const PAIR_COLOURS = ["#e6194b", "#1f9e3a", "#3a5fd8", "#f07c12", "#a21fb4", "#00969b", "#b8860b", "#d6338a"];
const GAP = 28;             // px between the two halves
const MM = 500 / 25.4;      // image pixels per millimetre in the 500-ppi frame
const KEYS = [["n / ]", "next candidate"], ["p / [", "previous candidate"], ["+ / −", "zoom in / out"],
  ["0", "fit"], ["1", "1 image pixel = 1 screen pixel"], ["arrows", "pan"], ["m", "minutiae on/off"],
  ["l", "lines joining pairs"], ["e", "enhanced ridges"], ["c", "go to the conclusion"], ["Esc", "back to the list"]];
const cache = new Map();    // search/subject/probe/sample -> CompareOut
const prefs = { minutiae: true, lines: false, enhanced: false }; // kept from candidate to candidate

export function render(root, [searchId, subject], ctx) {
  let alive = true;
  const view = { s: 1, x: 0, y: 0, ...prefs };
  let data = null, imgs = null, search = null, idx = -1, evidenceIdx = 0;
  const canvas = h("canvas", { id: "compare-canvas", "aria-label": "probe (left) and candidate (right)" });
  const stage = h("div", { class: "stage" }, canvas);
  const info = h("div", { class: "cmp-info" });
  const side = h("aside", { class: "panel cmp-side" });
  const zoomLabel = h("span", { class: "muted", id: "zoom-label" });
  const toggle = (name, label, k) => h("button", { type: "button", class: "toggle", id: `t-${name}`, "aria-pressed": String(view[name]),
    title: `${label} (${k})`, onclick: () => flip(name) }, label, h("kbd", {}, k));
  const toolbar = h("div", { class: "toolbar" },
    h("a", { href: `#search/${encodeURIComponent(searchId)}`, title: "back to the candidate list (Esc)" }, "◀ list"),
    h("span", { class: "sep" }),
    h("button", { type: "button", onclick: () => step(-1), title: "previous candidate (p)" }, "prev"),
    h("span", { id: "cand-pos" }),
    h("button", { type: "button", onclick: () => step(1), title: "next candidate (n)" }, "next"),
    h("span", { class: "sep" }),
    toggle("minutiae", "Minutiae", "m"), toggle("lines", "Pair lines", "l"), toggle("enhanced", "Enhanced", "e"),
    h("span", { class: "sep" }),
    h("button", { type: "button", onclick: () => zoom(1 / 1.25), title: "zoom out (−)" }, "−"),
    h("button", { type: "button", onclick: () => zoom(1.25), title: "zoom in (+)" }, "+"),
    h("button", { type: "button", onclick: fit, title: "fit (0)" }, "fit"), zoomLabel);
  fill(root, h("div", { class: "compare" }, h("div", { class: "cmp-main" }, toolbar, info, stage), side));
  side.append(h("details", { class: "keys", open: true }, h("summary", {}, "Keyboard"),
    h("dl", {}, KEYS.map(([k, what]) => [h("dt", {}, h("kbd", {}, k)), h("dd", {}, what)]))));

  function flip(name) {
    view[name] = prefs[name] = !view[name];
    document.getElementById(`t-${name}`).setAttribute("aria-pressed", String(view[name]));
    draw();
  }
  function step(d) {
    if (!search || !search.candidates.length) return;
    const next = search.candidates[(idx + d + search.candidates.length) % search.candidates.length];
    leave(`#compare/${encodeURIComponent(searchId)}/${encodeURIComponent(next.subject)}`);
  }

  // -- geometry: both halves share one transform; each image is centred in its half ----------
  const halves = () => {
    const w = (stage.clientWidth - GAP) / 2;
    return [{ x0: 0, w }, { x0: w + GAP, w }];
  };
  function toScreen(k, side, px, py) {
    const half = halves()[k];
    return [half.x0 + half.w / 2 + view.x + (px - side.width / 2) * view.s, stage.clientHeight / 2 + view.y + (py - side.height / 2) * view.s];
  }
  function fit() {
    if (!data) return;
    const [half] = halves();
    const w = Math.max(data.probe.width, data.gallery.width), hh = Math.max(data.probe.height, data.gallery.height);
    view.s = Math.min(half.w / w, stage.clientHeight / hh) * 0.96;
    view.x = view.y = 0;
    view.fitted = true;
    draw();
  }
  function zoom(f, sx, sy) {
    const halfs = halves();
    const k = sx !== undefined && sx > halfs[1].x0 ? 1 : 0;
    const cx = halfs[k].x0 + halfs[k].w / 2, cy = stage.clientHeight / 2;
    if (sx === undefined) { sx = cx; sy = cy; }
    const s2 = Math.min(16, Math.max(0.1, view.s * f));
    view.x = (sx - cx) - (sx - cx - view.x) * s2 / view.s;
    view.y = (sy - cy) - (sy - cy - view.y) * s2 / view.s;
    view.s = s2;
    view.fitted = false;
    draw();
  }

  function pan(dx, dy) {
    view.x += dx; view.y += dy;
    view.fitted = false;
    draw();
  }

  function draw() {
    const dpr = window.devicePixelRatio || 1;
    const W = stage.clientWidth, H = stage.clientHeight;
    if (canvas.width !== Math.round(W * dpr) || canvas.height !== Math.round(H * dpr)) {
      canvas.width = Math.round(W * dpr); canvas.height = Math.round(H * dpr);
      canvas.style.width = `${W}px`; canvas.style.height = `${H}px`;
    }
    const g = canvas.getContext("2d");
    g.setTransform(dpr, 0, 0, dpr, 0, 0);
    g.fillStyle = "#20262d"; g.fillRect(0, 0, W, H);
    if (!data || !imgs) return;
    zoomLabel.textContent = data.probe.ppi ? `×${view.s.toFixed(2)} · ${(MM * view.s).toFixed(0)} px/mm` : `×${view.s.toFixed(2)}`;
    const sides = [data.probe, data.gallery];
    halves().forEach((half, k) => {
      g.save();
      g.beginPath(); g.rect(half.x0, 0, half.w, H); g.clip();
      g.fillStyle = "#f4f4f2"; g.fillRect(half.x0, 0, half.w, H);
      const im = (view.enhanced && imgs[k].enhanced) || imgs[k].plain;
      const [x, y] = toScreen(k, sides[k], 0, 0);
      g.imageSmoothingEnabled = view.s < 2;
      if (im) g.drawImage(im, x, y, sides[k].width * view.s, sides[k].height * view.s);
      else { g.fillStyle = "#8a8f94"; g.font = "13px system-ui, sans-serif"; g.fillText(sides[k].image_note || "no image", half.x0 + 12, 24); }
      if (view.minutiae) drawMinutiae(g, k, sides[k], k === 0 ? pairedProbe : pairedGallery);
      if (sides[k].ppi) scaleBar(g, half, H);
      g.fillStyle = "#20262d"; g.font = "600 12px system-ui, sans-serif";
      g.fillText(k === 0 ? "PROBE" : `CANDIDATE ${data.subject}`, half.x0 + 8, 16);
      if (view.enhanced && !imgs[k].enhanced && sides[k].enhanced_note) {
        g.font = "12px system-ui, sans-serif"; g.fillText(`no enhanced ridges: ${sides[k].enhanced_note}`, half.x0 + 8, 32);
      }
      g.restore();
    });
    if (view.lines && view.minutiae) {
      g.lineWidth = 1.2;
      data.pairs.forEach(([a, b], n) => {
        const m1 = data.probe.minutiae[a], m2 = data.gallery.minutiae[b];
        const p1 = toScreen(0, data.probe, m1.x, m1.y), p2 = toScreen(1, data.gallery, m2.x, m2.y);
        g.strokeStyle = PAIR_COLOURS[n % PAIR_COLOURS.length];
        g.beginPath(); g.moveTo(...p1); g.lineTo(...p2); g.stroke();
      });
    }
  }
  let pairedProbe = new Map(), pairedGallery = new Map();
  function drawMinutiae(g, k, side, paired) {
    side.minutiae.forEach((m, i) => {
      const n = paired.get(i);
      const [x, y] = toScreen(k, side, m.x, m.y);
      const colour = n === undefined ? "rgba(0,120,140,0.75)" : PAIR_COLOURS[n % PAIR_COLOURS.length];
      g.strokeStyle = colour; g.lineWidth = n === undefined ? 1 : 2;
      g.beginPath();
      if (m.type === 2) g.rect(x - 4, y - 4, 8, 8); else g.arc(x, y, 4.5, 0, 2 * Math.PI);
      g.moveTo(x + 4.5 * Math.cos(m.direction), y + 4.5 * Math.sin(m.direction));
      g.lineTo(x + 16 * Math.cos(m.direction), y + 16 * Math.sin(m.direction));
      g.stroke();
      if (n !== undefined) {
        g.font = "600 11px system-ui, sans-serif"; g.lineWidth = 3; g.strokeStyle = "rgba(255,255,255,0.9)";
        g.strokeText(String(n + 1), x + 6, y - 6); g.fillStyle = colour; g.fillText(String(n + 1), x + 6, y - 6);
      }
    });
  }
  function scaleBar(g, half, H) {
    const len = 5 * MM * view.s, x = half.x0 + 12, y = H - 14;
    g.fillStyle = "rgba(255,255,255,0.85)"; g.fillRect(x - 6, y - 16, len + 12, 24);
    g.strokeStyle = "#111"; g.lineWidth = 2;
    g.beginPath(); g.moveTo(x, y - 4); g.lineTo(x, y); g.lineTo(x + len, y); g.lineTo(x + len, y - 4); g.stroke();
    g.fillStyle = "#111"; g.font = "11px system-ui, sans-serif"; g.fillText("5 mm", x + len / 2 - 12, y - 6);
  }

  // -- pan with the mouse, zoom with the wheel; keys for everything ----------------------------
  let drag = null;
  canvas.addEventListener("mousedown", (e) => { drag = [e.clientX - view.x, e.clientY - view.y]; });
  const onMove = (e) => { if (drag) { pan(e.clientX - drag[0] - view.x, e.clientY - drag[1] - view.y); } };
  const onUp = () => { drag = null; };
  canvas.addEventListener("wheel", (e) => {
    e.preventDefault();
    const r = canvas.getBoundingClientRect();
    zoom(e.deltaY < 0 ? 1.15 : 1 / 1.15, e.clientX - r.left, e.clientY - r.top);
  }, { passive: false });
  // The hash changes at once but the next view renders on the hashchange event: keys pressed in
  // between must not act on this view (a second "n" would step from the old candidate).
  function leave(hash) {
    alive = false;
    location.hash = hash;
  }
  const onKey = (e) => {
    if (!alive || e.target.closest("input, textarea, select") || e.ctrlKey || e.metaKey || e.altKey) return;
    const act = { n: () => step(1), "]": () => step(1), p: () => step(-1), "[": () => step(-1),
      "+": () => zoom(1.25), "=": () => zoom(1.25), "-": () => zoom(1 / 1.25), 0: fit,
      1: () => zoom(1 / view.s), m: () => flip("minutiae"), l: () => flip("lines"), e: () => flip("enhanced"),
      ArrowLeft: () => pan(40, 0), ArrowRight: () => pan(-40, 0), ArrowUp: () => pan(0, 40), ArrowDown: () => pan(0, -40),
      c: () => { const f = side.querySelector("input, textarea, button"); if (f) f.focus(); },
      Escape: () => leave(`#search/${encodeURIComponent(searchId)}`) }[e.key];
    if (act) { e.preventDefault(); act(); }
  };
  window.addEventListener("mousemove", onMove);
  window.addEventListener("mouseup", onUp);
  document.addEventListener("keydown", onKey);
  // a new size refits only a view the examiner has not zoomed or panned
  const resize = new ResizeObserver(() => (data && view.fitted ? fit() : draw()));
  resize.observe(stage);

  // -- data: the search, the candidate, its comparison ----------------------------------------
  async function load() {
    search = session.search && session.search.search_id === searchId ? session.search
      : await get(`/v1/searches/${encodeURIComponent(searchId)}`);
    if (!alive) return;
    if (session.search !== search) { session.search = search; session.files = { fingerprint: [], face: [] }; }
    idx = search.candidates.findIndex((c) => c.subject === subject);
    if (idx < 0) throw new Error(`${subject} is not a candidate of search ${searchId}`);
    const cand = search.candidates[idx];
    document.getElementById("cand-pos").textContent = `candidate ${cand.rank} of ${search.candidates.length}`;
    const ev = [...cand.evidence].sort((a, b) => b.log_fmr - a.log_fmr);
    if (ctx.can("POST /v1/searches/{search_id}/conclusions")) conclusionPanel(side, search, cand);
    await compareWith(cand, ev);
  }

  async function compareWith(cand, ev) {
    const e = ev[evidenceIdx] || ev[0];
    const probe = search.probes[e.probe];
    const file = (session.files[probe.part] || [])[probe.index];
    fill(info, h("span", { class: "cand-title" }, `#${cand.rank} `, h("code", {}, cand.subject)),
      h("span", {}, `−log10 FMR ${cand.score.toFixed(2)}`),
      cand.hit === null ? null : h("span", { class: cand.hit ? "hit" : "nohit" }, cand.hit ? "HIT" : "no hit"),
      ev.length > 1 ? h("select", { "aria-label": "evidence", onchange: (x) => { evidenceIdx = Number(x.target.value); compareWith(cand, ev); } },
        ev.map((x, i) => h("option", { value: i, selected: i === evidenceIdx },
          `${search.probes[x.probe].filename || "probe " + x.probe} vs sample ${x.sample_id}`))) : null,
      h("span", { id: "cmp-score" }));
    if (!file) return askForProbe(cand, ev, probe);
    const id = `${searchId}/${cand.subject}/${e.probe}/${e.sample_id}`;
    if (!cache.has(id)) {
      const form = new FormData();
      form.append(probe.part, file);
      form.append("subject", cand.subject);
      form.append("sample_id", e.sample_id);
      if (probe.part === "fingerprint") form.append("finger_position", probe.finger_position);
      form.append("ppi", session.ppi || 500);
      stage.classList.add("loading");
      cache.set(id, await call("POST", "/v1/compare", { form }).finally(() => stage.classList.remove("loading")));
    }
    if (!alive) return;
    data = cache.get(id);
    pairedProbe = new Map(data.pairs.map(([a], n) => [a, n]));
    pairedGallery = new Map(data.pairs.map(([, b], n) => [b, n]));
    imgs = await Promise.all([data.probe, data.gallery].map(async (s) => ({
      plain: await image(s.image_png), enhanced: await image(s.enhanced_png) })));
    document.getElementById("cmp-score").textContent = data.modality === "finger"
      ? `score ${data.score.toFixed(3)} · ${data.pairs.length} paired minutiae · probe ${data.probe.minutiae.length}, candidate ${data.gallery.minutiae.length} minutiae`
        // the comparator pairs the best-agreeing minutiae of any two prints: below the threshold
        // they are its best guesses, not corresponding points
        + (cand.hit === false ? " · no hit: pairs are the matcher's best guesses, not correspondences" : "")
      : `face score ${data.score.toFixed(3)} · −log10 FMR ${data.log_fmr.toFixed(2)}`;
    document.getElementById("t-enhanced").disabled = !data.probe.enhanced_png && !data.gallery.enhanced_png;
    for (const t of ["t-minutiae", "t-lines"]) document.getElementById(t).disabled = data.modality !== "finger";
    fit();
  }

  // A search reopened in another session has no probe file: the examiner drops the case's probe again.
  function askForProbe(cand, ev, probe) {
    const input = h("input", { type: "file", id: "probe-again", onchange: async () => {
      const f = input.files[0];
      if (!f) return;
      if (crypto.subtle && probe.image_sha256) {
        const sum = [...new Uint8Array(await crypto.subtle.digest("SHA-256", await f.arrayBuffer()))]
          .map((b) => b.toString(16).padStart(2, "0")).join("");
        if (sum !== probe.image_sha256) { fill(msg, notice("error", `${f.name} is not this search's probe (its SHA-256 differs).`)); return; }
      }
      (session.files[probe.part] ||= [])[probe.index] = f;
      fill(stage, canvas);
      compareWith(cand, ev).catch(fail);
    } });
    const msg = h("div");
    fill(stage, h("div", { class: "ask panel" },
      h("p", {}, "This search was made in another session. Choose its probe image ",
        h("b", {}, probe.filename || `${probe.part} ${probe.index}`), " to compare it with the candidate."),
      h("label", { for: "probe-again" }, "Probe image"), input, msg));
    input.focus();
  }

  const fail = (exc) => { if (alive) fill(stage, notice("error", exc.message)); };
  load().catch(fail);
  return () => {
    alive = false;
    resize.disconnect();
    window.removeEventListener("mousemove", onMove);
    window.removeEventListener("mouseup", onUp);
    document.removeEventListener("keydown", onKey);
  };
}

function image(b64) {
  if (!b64) return Promise.resolve(null);
  return new Promise((resolve, reject) => {
    const im = new Image();
    im.onload = () => resolve(im);
    im.onerror = () => reject(new Error("an image of the comparison could not be shown"));
    im.src = `data:image/png;base64,${b64}`;
  });
}
