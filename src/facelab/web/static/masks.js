// Mask editor: draw include/exclude polygons on aligned faces; the server stores them in the face's metadata
// and draws the mask training uses. Points are aligned-face pixels (x, y), origin at the top-left pixel's corner.
// With a trained XSeg, its prediction can be laid over the face and the folder walked least sure first.
"use strict";

const $ = (id) => document.getElementById(id);
const canvas = $("face");
const draw2d = canvas.getContext("2d");
const STEP_BIG = 10; // faces moved by Shift + a navigation key
const ZOOM = 1.25;
const COLOURS = {
  include: { fill: "rgba(80, 220, 120, 0.35)", line: "rgb(80, 220, 120)" },
  exclude: { fill: "rgba(40, 0, 0, 0.45)", line: "rgb(255, 70, 70)" },
};

const ed = {
  folder: null, faces: [], index: 0, // the folder being walked and the face shown
  face: null, image: null, // /api/masks/face answer and its decoded image
  history: [[]], at: 0, // edit history: snapshots of the polygon list; `at` is the one shown
  loaded: "", // the polygons as loaded from the file (JSON), to tell unsaved edits
  display: 0, // CSS pixels of the face's side on screen (the zoom)
  mouse: null, busy: false, leaving: false, saves: 0,
  preview: { seq: 0, running: false, wanted: false, url: null },
  segmenter: null, // /api/masks/segmenter answer: is an XSeg trained, and what to say
  overlay: { on: false, path: null, layer: null, score: null }, // the prediction drawn over the face shown
  scores: null, // face path → uncertainty, while walking the folder least sure first
};

// -- polygons ---------------------------------------------------------------------------------------------

// A polygon is {kind: "include" | "exclude", points: [[x, y], ...], closed: bool}; a snapshot is a list of them.
const polygons = () => ed.history[ed.at];
const openPolygon = (polys) => { const last = polys[polys.length - 1]; return last && !last.closed ? last : null; };

// What gets stored (and previewed): closed polygons, and an open one once it has 3 points.
function toSave(polys = polygons()) {
  const out = { include: [], exclude: [] };
  for (const p of polys) if (p.closed || p.points.length >= 3) out[p.kind].push(p.points.map((q) => [...q]));
  return out;
}

function fromSaved(saved) {
  const closed = (kind) => (saved[kind] || []).map((points) => ({ kind, points, closed: true }));
  return [...closed("include"), ...closed("exclude")];
}

// Apply `change` to a copy of the shown snapshot and make it the newest edit (dropping any redo).
function edit(change) {
  const next = structuredClone(polygons());
  if (change(next) === false) return;
  ed.history = ed.history.slice(0, ed.at + 1);
  ed.history.push(next);
  ed.at = ed.history.length - 1;
  changed();
}

function addPoint(kind, point) {
  edit((polys) => {
    const open = openPolygon(polys);
    if (open && open.kind === kind) { open.points.push(point); return; }
    if (open) { // the other button starts a new polygon: keep the open one if it is a polygon at all
      if (open.points.length >= 3) open.closed = true; else polys.pop();
    }
    polys.push({ kind, points: [point], closed: false });
  });
}

function closePolygon() {
  const open = openPolygon(polygons());
  if (!open) { facelab.status("no open polygon to close"); return; }
  if (open.points.length < 3) { facelab.status("a polygon needs at least 3 points", "error"); return; }
  edit((polys) => { openPolygon(polys).closed = true; });
}

function moveInHistory(to) {
  const at = Math.max(0, Math.min(ed.history.length - 1, to));
  if (at !== ed.at) { ed.at = at; changed(); }
}

// Any change since the face was loaded, open polygons of 1–2 points included (they are work, too).
const dirty = () => JSON.stringify(polygons()) !== ed.loaded;

function changed() {
  ed.leaving = false;
  $("history").textContent = `edit ${ed.at} of ${ed.history.length - 1}` + (dirty() ? " · unsaved" : "");
  paint();
  wantPreview();
}

// -- drawing ----------------------------------------------------------------------------------------------

function fitDisplay(size) {
  const room = Math.min(window.innerHeight - 170, window.innerWidth - 640, 640);
  return Math.max(256, Math.floor(room / size) * size || size); // whole multiples keep pixels crisp
}

function layout() {
  const size = ed.face.size, dpr = window.devicePixelRatio || 1;
  canvas.style.width = canvas.style.height = `${ed.display}px`;
  canvas.width = canvas.height = Math.round(ed.display * dpr);
  const mask = $("mask");
  mask.style.width = mask.style.height = `${Math.min(ed.display, 320)}px`;
  $("zoom").textContent = `zoom ${Math.round((ed.display / size) * 100)}%`;
  paint();
}

function tracePath(points, close) {
  draw2d.beginPath();
  points.forEach(([x, y], i) => (i ? draw2d.lineTo(x, y) : draw2d.moveTo(x, y)));
  if (close) draw2d.closePath();
}

function paint() {
  if (!ed.face) return;
  const size = ed.face.size, k = canvas.width / size, px = size / ed.display; // px: one CSS pixel in face pixels
  draw2d.setTransform(1, 0, 0, 1, 0, 0);
  draw2d.clearRect(0, 0, canvas.width, canvas.height);
  draw2d.setTransform(k, 0, 0, k, 0, 0); // draw in aligned-face pixels from here on
  draw2d.imageSmoothingEnabled = true;
  draw2d.drawImage(ed.image, 0, 0, size, size);
  if (ed.overlay.on && ed.overlay.path === ed.face.path) draw2d.drawImage(ed.overlay.layer, 0, 0, size, size);
  draw2d.setLineDash([5 * px, 4 * px]);
  draw2d.lineWidth = 1.5 * px;
  draw2d.strokeStyle = "#8cf";
  tracePath(ed.face.hull, true);
  draw2d.stroke();
  draw2d.setLineDash([]);
  // Training fills every include, then cuts every exclude: draw them in that order so the overlay agrees.
  const order = (p) => (p.closed ? 0 : 2) + (p.kind === "exclude" ? 1 : 0);
  for (const poly of [...polygons()].sort((a, b) => order(a) - order(b))) {
    const colour = COLOURS[poly.kind];
    draw2d.strokeStyle = colour.line;
    draw2d.lineWidth = 2 * px;
    tracePath(poly.points, poly.closed);
    if (poly.closed) {
      draw2d.fillStyle = colour.fill;
      draw2d.fill();
      if (poly.kind === "exclude") { draw2d.fillStyle = hatch(canvas.width / size); draw2d.fill(); }
    }
    draw2d.stroke();
    if (!poly.closed) {
      draw2d.fillStyle = colour.line;
      for (const [x, y] of poly.points) { draw2d.beginPath(); draw2d.arc(x, y, 3 * px, 0, 2 * Math.PI); draw2d.fill(); }
      if (ed.mouse) { // where the next point would join
        draw2d.setLineDash([3 * px, 3 * px]);
        tracePath([poly.points[poly.points.length - 1], ed.mouse], false);
        draw2d.stroke();
        draw2d.setLineDash([]);
      }
    }
  }
}

// Diagonal stripes, 8 device pixels apart whatever the zoom (k: device pixels per face pixel): exclude areas
// stay visible on skin, where a red tint alone does not.
function hatch(k) {
  const tile = document.createElement("canvas");
  tile.width = tile.height = 8;
  const g = tile.getContext("2d");
  g.strokeStyle = COLOURS.exclude.line;
  g.lineWidth = 1.5;
  g.beginPath(); g.moveTo(-1, 9); g.lineTo(9, -1); g.stroke();
  const pattern = draw2d.createPattern(tile, "repeat");
  pattern.setTransform(new DOMMatrix().scale(1 / k));
  return pattern;
}

// The server draws the mask with the library function training uses; one request at a time, the latest wins.
function wantPreview() {
  ed.preview.wanted = true;
  if (!ed.preview.running) runPreview();
}

async function runPreview() {
  const pv = ed.preview;
  pv.running = true;
  try {
    while (pv.wanted && ed.face) {
      pv.wanted = false;
      const seq = ++pv.seq;
      const response = await fetch("/api/masks/preview", {
        method: "POST", headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ path: ed.face.path, polygons: toSave() }),
      });
      if (!response.ok) {
        const data = await response.json().catch(() => ({}));
        throw new Error(data.text || data.error || `HTTP ${response.status}`);
      }
      const blob = await response.blob();
      if (seq !== pv.seq || pv.wanted) continue;
      if (pv.url) URL.revokeObjectURL(pv.url);
      pv.url = URL.createObjectURL(blob);
      $("mask").src = pv.url;
      $("mask").dataset.seq = String(seq);
    }
  } catch (err) {
    facelab.status(`mask preview: ${err.message}`, "error");
  } finally {
    pv.running = false;
  }
}

// -- the segmenter ----------------------------------------------------------------------------------------

// The layer drawn over the face from the server's grey mask (255 = surely face): what the segmenter calls
// "not face" tinted blue (stronger where it is surer), and its 0.5 edge in yellow.
function overlayLayer(grey) {
  const size = grey.width, layer = document.createElement("canvas");
  layer.width = layer.height = size;
  const g = layer.getContext("2d");
  g.drawImage(grey, 0, 0);
  const img = g.getImageData(0, 0, size, size), d = img.data;
  const inside = new Uint8Array(size * size);
  for (let i = 0; i < size * size; i++) inside[i] = d[4 * i] >= 128;
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const i = y * size + x, p = d[4 * i] / 255;
      const edge = (x + 1 < size && inside[i] !== inside[i + 1]) || (y + 1 < size && inside[i] !== inside[i + size]);
      if (edge) d.set([255, 220, 0, 255], 4 * i);
      else d.set([20, 60, 200, Math.round(160 * (1 - p))], 4 * i);
    }
  }
  g.putImageData(img, 0, 0);
  return layer;
}

async function loadOverlay() {
  const face = ed.face;
  if (!ed.overlay.on || !face || ed.overlay.path === face.path) return;
  const response = await fetch(`/api/masks/prediction?path=${encodeURIComponent(face.path)}&v=${face.version}`);
  if (!response.ok) {
    const data = await response.json().catch(() => ({}));
    throw new Error(data.text || data.error || `HTTP ${response.status}`);
  }
  const score = Number(response.headers.get("X-Facelab-Uncertainty"));
  const grey = await createImageBitmap(await response.blob());
  if (ed.face !== face || !ed.overlay.on) return; // another face came, or the overlay went off, meanwhile
  Object.assign(ed.overlay, { path: face.path, layer: overlayLayer(grey), score });
  canvas.dataset.overlay = face.path; // tests wait on this: the prediction is drawn
  showPosition();
  paint();
}

async function setOverlay(on) {
  ed.overlay.on = on;
  $("overlay").checked = on;
  document.body.classList.toggle("overlay-on", on);
  if (!on) { delete canvas.dataset.overlay; ed.overlay.path = null; paint(); showPosition(); return; }
  try { await loadOverlay(); } catch (err) { await setOverlay(false); throw err; }
}

async function showSegmenter() {
  ed.segmenter = await facelab.api("/api/masks/segmenter");
  const trained = ed.segmenter.trained;
  $("segmenter").textContent = ed.segmenter.message;
  $("segmenter").className = trained ? "dim" : "error";
  $("overlay").disabled = !trained;
  $("order").querySelector('option[value="unsure"]').disabled = !trained;
  if (!trained && ed.overlay.on) await setOverlay(false);
}

// Walk the folder least sure first (a job: every face is predicted once, then cached) or by file name.
async function orderFaces(how) {
  const bar = $("order-progress");
  let listing;
  if (how === "unsure") {
    bar.hidden = false;
    try {
      const { job } = await facelab.post("/api/masks/order", { folder: ed.folder });
      listing = await facelab.waitJob(job, bar);
    } finally { bar.hidden = true; }
    ed.scores = Object.fromEntries(listing.faces.map((f, i) => [f, listing.scores[i]]));
  } else {
    listing = await facelab.api(`/api/masks/faces?folder=${encodeURIComponent(ed.folder)}`);
    ed.scores = null;
  }
  if (!listing.faces.length) { facelab.status(`no faces to edit in ${listing.folder}`, "error"); return; }
  ed.faces = listing.faces;
  document.body.dataset.order = how; // tests wait on this
  await loadFace(0);
  if (how === "unsure") {
    const s = listing.scores;
    const range = `uncertainty ${s[0].toFixed(3)} … ${s[s.length - 1].toFixed(3)}`;
    facelab.status(`${s.length} faces, least sure first (${range})`, "ok");
  }
}

function showPosition() {
  const rel = ed.faces[ed.index], parts = [`${ed.index + 1} / ${ed.faces.length} in ${ed.folder}`];
  const score = ed.scores ? ed.scores[rel] : ed.overlay.on && ed.overlay.path === rel ? ed.overlay.score : undefined;
  if (score !== undefined && score !== null) parts.push(`segmenter uncertainty ${score.toFixed(3)}`);
  $("position").textContent = parts.join(" · ");
}

// -- faces and folders ------------------------------------------------------------------------------------

async function loadFace(index) {
  ed.index = index;
  const rel = ed.faces[index];
  const face = await facelab.api(`/api/masks/face?path=${encodeURIComponent(rel)}`);
  const image = new Image();
  image.src = facelab.fileUrl(face.path, face.version);
  await image.decode();
  const resized = !ed.face || ed.face.size !== face.size;
  Object.assign(ed, { face, image, history: [fromSaved(face.polygons)], at: 0, mouse: null });
  ed.loaded = JSON.stringify(polygons());
  if (!ed.display || resized) ed.display = fitDisplay(face.size);
  $("face-name").textContent = rel.split("/").pop();
  // A face with an applied XSeg mask trains on that mask; its polygons then teach XSeg (retrain, re-apply).
  $("mask-legend").textContent = face.xseg_applied
    ? "hull ∪ include − exclude: what XSeg learns here. Training uses this face's applied XSeg mask " +
      "(retrain and re-apply XSeg to bring these polygons in)."
    : "mask training uses: hull ∪ include − exclude";
  showPosition();
  canvas.dataset.path = face.path; // tests wait on this: the face is shown and editable
  layout();
  changed();
  if (ed.overlay.on) facelab.guard(() => setOverlay(true));
}

async function openFolder(folder) {
  const listing = await facelab.api(`/api/masks/faces?folder=${encodeURIComponent(folder)}`);
  // Faces that cannot be opened (a link, bad metadata) are left out and named, so one bad face blocks nothing.
  const skipped = listing.skipped.length ? `${listing.skipped.length} face(s) left out: ` +
    listing.skipped.slice(0, 3).map((f) => `${f.name} (${f.problem})`).join("; ") : "";
  if (!listing.faces.length) { facelab.status(`no faces to edit in ${listing.folder}. ${skipped}`, "error"); return; }
  Object.assign(ed, { folder: listing.folder, faces: listing.faces, face: null, scores: null });
  history.replaceState(null, "", `#${listing.folder}`);
  $("choose").hidden = true;
  $("editor").hidden = false;
  $("order").value = "name";
  facelab.status(skipped, skipped ? "error" : "");
  await showSegmenter();
  await loadFace(0);
}

async function showFolders() {
  Object.assign(ed, { folder: null, faces: [], face: null, leaving: false });
  delete canvas.dataset.path;
  history.replaceState(null, "", location.pathname);
  $("editor").hidden = true;
  $("choose").hidden = false;
  const { folders } = await facelab.api("/api/masks/folders");
  const list = $("folders");
  list.replaceChildren();
  for (const f of folders) {
    const button = document.createElement("button");
    button.dataset.folder = f.path;
    button.innerHTML = "<b></b> <span class=\"dim\"></span>";
    button.querySelector("b").textContent = f.path;
    button.querySelector("span").textContent = `${f.faces} faces`;
    button.addEventListener("click", () => facelab.guard(() => openFolder(f.path)));
    list.appendChild(button);
  }
  if (!folders.length) list.textContent = "No aligned faces in this workspace yet: run `facelab extract` first.";
}

// Go `delta` faces on; at either end stay and say so.
async function go(delta) {
  const to = Math.max(0, Math.min(ed.faces.length - 1, ed.index + delta));
  if (to === ed.index && delta) facelab.status(delta > 0 ? "last face of the folder" : "first face of the folder");
  await loadFace(to);
}

// The shown face left the folder (moved): drop it from the list and go `step` faces on from where it was.
async function goAfterMove(step, where, moved) {
  if (moved === ed.face.path) { await go(step); facelab.status(`${where} (already there)`, "ok"); return; }
  ed.faces.splice(ed.index, 1);
  if (!ed.faces.length) { await showFolders(); facelab.status(`${where}; no faces left in that folder`, "ok"); return; }
  await loadFace(Math.min(ed.index + step - 1, ed.faces.length - 1));
  facelab.status(where, "ok");
}

async function save(confirm) {
  const done = await facelab.post("/api/masks/save", { path: ed.face.path, polygons: toSave(), confirm });
  ed.saves += 1;
  document.body.dataset.saves = String(ed.saves); // tests wait on this
  return done;
}

const ACTIONS = {
  x: async (step) => { const done = await save(false); await go(step); facelab.status(`saved ${done.path}`, "ok"); },
  e: async (step) => {
    const done = await save(true);
    await goAfterMove(step, `saved, moved to ${done.path}`, done.path);
  },
  c: (step) => go(step),
  w: async (step) => {
    const done = await facelab.post("/api/masks/skip", { path: ed.face.path });
    await goAfterMove(step, `skipped, moved to ${done.path}`, done.path);
  },
  q: (step) => go(-step),
  z: (step) => go(-step),
};

async function act(action, step) {
  if (ed.busy) return;
  ed.busy = true;
  try { await facelab.guard(() => action(step)); } finally { ed.busy = false; }
}

function zoom(factor) {
  const size = ed.face.size;
  ed.display = Math.max(size / 2, Math.min(size * 16, Math.round(ed.display * factor)));
  layout();
}

function escape() {
  if (dirty() && !ed.leaving) {
    ed.leaving = true;
    facelab.status("unsaved polygons: Esc again leaves without saving, X saves", "error");
    return;
  }
  facelab.guard(showFolders);
}

// -- input ------------------------------------------------------------------------------------------------

// Mouse position on the canvas in aligned-face pixels.
function facePoint(event) {
  const box = canvas.getBoundingClientRect(), size = ed.face.size;
  const round = (v) => Math.round(v * 100) / 100;
  return [round(((event.clientX - box.left) / box.width) * size),
    round(((event.clientY - box.top) / box.height) * size)];
}

canvas.addEventListener("mousedown", (event) => {
  event.preventDefault(); // no middle-button autoscroll, no text selection
  if (!ed.face || ed.busy) return;
  if (event.button === 0) addPoint("include", facePoint(event));
  else if (event.button === 2) addPoint("exclude", facePoint(event));
  else if (event.button === 1) closePolygon();
});
canvas.addEventListener("contextmenu", (event) => event.preventDefault());
canvas.addEventListener("auxclick", (event) => event.preventDefault());
canvas.addEventListener("mousemove", (event) => {
  if (!ed.face) return;
  ed.mouse = facePoint(event);
  if (openPolygon(polygons())) paint();
});
canvas.addEventListener("mouseleave", () => { ed.mouse = null; if (ed.face) paint(); });
canvas.addEventListener("wheel", (event) => {
  event.preventDefault(); // neither scroll nor Ctrl-zoom the page
  if (!ed.face || !event.deltaY) return;
  const back = event.deltaY > 0; // wheel down: undo
  if (event.ctrlKey) moveInHistory(back ? 0 : ed.history.length - 1);
  else moveInHistory(ed.at + (back ? -1 : 1));
}, { passive: false });

document.addEventListener("keydown", (event) => {
  if (!ed.face || facelab.typing(event) || event.altKey || event.metaKey || event.ctrlKey) return;
  const key = event.key.toLowerCase();
  if (ACTIONS[key]) {
    event.preventDefault();
    act(ACTIONS[key], event.shiftKey ? STEP_BIG : 1);
  } else if (key === "o") {
    if ($("overlay").disabled) facelab.status(ed.segmenter ? ed.segmenter.message : "no segmenter", "error");
    else facelab.guard(() => setOverlay(!ed.overlay.on));
  } else if (key === "-" || key === "_") zoom(1 / ZOOM);
  else if (key === "+" || key === "=") zoom(ZOOM);
  else if (key === "escape") escape();
});

$("exit").addEventListener("click", () => escape());
$("overlay").addEventListener("change", (event) => {
  event.target.blur(); // the editor's keys work again at once
  facelab.guard(() => setOverlay(event.target.checked));
});
$("order").addEventListener("change", (event) => {
  event.target.blur(); // the editor's keys work again at once
  facelab.guard(async () => {
    try { await orderFaces(event.target.value); } catch (err) { event.target.value = "name"; throw err; }
  });
});

facelab.guard(async () => {
  await facelab.nav("masks");
  const wanted = decodeURIComponent(location.hash.slice(1));
  await showFolders();
  if (wanted) await openFolder(wanted);
});
