// Merge tuner: a form generated from the server's MERGE_OPTIONS, a debounced live preview (stale answers are
// dropped), and saving to the settings file `facelab merge` reads.
"use strict";

const DEBOUNCE_MS = 120;
const VIEWS = ["both", "merged", "original"];
const $ = (id) => document.getElementById(id);

const tuner = {
  options: [],      // option specs from /api/merge/state: {name, label, help, kind, default, min, max, choices}
  frames: [],       // dst frames with faces: {number, name, rel, faces}
  fields: {},       // option name -> {get(), set(value)}
  saved: { global: {}, ranges: [] },
  latest: 0,        // id of the newest preview request; older answers are ignored
  controller: null, // aborts the previous preview request when a newer one starts
  timer: 0,
  objectUrl: null,
  view: "both",
};

// ---- the form, generated from the option specs ----

function buildForm() {
  const form = $("options");
  form.replaceChildren();
  for (const spec of tuner.options) {
    const [row, field] = facelab.optionField(spec);
    tuner.fields[spec.name] = field;
    form.append(row);
  }
  // "input" fires while a slider is dragged; selects and checkboxes fire it too.
  form.addEventListener("input", () => { markChanged(); schedule(); });
  form.addEventListener("submit", (e) => e.preventDefault());
}

function values() {
  const out = {};
  for (const spec of tuner.options) out[spec.name] = tuner.fields[spec.name].get();
  return out;
}

function setValues(vals) {
  for (const spec of tuner.options) tuner.fields[spec.name].set(spec.name in vals ? vals[spec.name] : spec.default);
  markChanged();
}

// Options that differ from what `facelab merge` would use for this frame are highlighted.
function markChanged() {
  const base = tuner.frameSaved || {};
  const now = values();
  for (const spec of tuner.options) {
    const row = document.querySelector(`.field[data-option="${spec.name}"]`);
    row.classList.toggle("changed", spec.name in base && base[spec.name] !== now[spec.name]);
  }
}

// ---- frames and the preview ----

function currentFrame() { return tuner.frames[Number($("frame").value)]; }

function showFrame() {
  const frame = currentFrame();
  if (!frame) return;
  $("frame-label").textContent = `frame ${frame.number} (${frame.name}, ${frame.faces} face${frame.faces === 1 ? "" : "s"})`;
  $("original").src = facelab.fileUrl(frame.rel);
  if ($("first").dataset.touched !== "1") { $("first").value = frame.number; $("last").value = frame.number; }
  schedule(0);
  facelab.guard(() => loadSaved(false));  // the highlights compare with this frame's saved values
}

function schedule(delay = DEBOUNCE_MS) {
  clearTimeout(tuner.timer);
  tuner.timer = setTimeout(render, delay);
}

// What the preview shows is asked for with this body; the image keeps a copy (data-request) once shown.
function previewRequest() {
  const frame = currentFrame();
  return JSON.stringify({ model: $("model").value, frame: frame ? frame.name : "", options: values() });
}

async function render() {
  const frame = currentFrame();
  if (!frame || !$("model").value) return;
  if (Object.values(values()).some((v) => Number.isNaN(v))) return;  // a number being typed ("-")
  const body = previewRequest();
  const id = ++tuner.latest;
  if (tuner.controller) tuner.controller.abort();
  const controller = new AbortController();
  tuner.controller = controller;
  const started = performance.now();
  let response;
  try {
    response = await fetch("/api/merge/preview", {
      method: "POST", signal: controller.signal, headers: { "Content-Type": "application/json" },
      body,
    });
  } catch (err) {
    if (err.name !== "AbortError") facelab.status(err.message, "error");
    return;
  }
  if (id !== tuner.latest) return;  // a newer render was asked for while this one ran
  if (!response.ok) {
    const data = await response.json().catch(() => ({}));
    facelab.status(data.text || data.error || `HTTP ${response.status}`, "error");
    return;
  }
  let blob;
  try {
    blob = await response.blob();  // a newer render can abort this one while its body is still coming
  } catch (err) {
    if (err.name !== "AbortError") facelab.status(err.message, "error");
    return;
  }
  if (id !== tuner.latest) return;
  const img = $("preview");
  const url = URL.createObjectURL(blob);
  await new Promise((resolve) => { img.onload = resolve; img.onerror = resolve; img.src = url; });
  if (tuner.objectUrl) URL.revokeObjectURL(tuner.objectUrl);
  tuner.objectUrl = url;
  img.dataset.renders = String(Number(img.dataset.renders) + 1);
  img.dataset.request = body;
  const total = performance.now() - started;
  const predict = Number(response.headers.get("X-Predict-Ms"));
  $("timing").textContent = `render ${Number(response.headers.get("X-Render-Ms")).toFixed(0)} ms on the server · `
    + `${total.toFixed(0)} ms round trip` + (predict > 0 ? ` · model prediction ${predict.toFixed(0)} ms (cached now)` : "")
    + ` · ${img.naturalWidth}×${img.naturalHeight}`;
  $("info").textContent = JSON.parse(response.headers.get("X-Merge-Info") || "[]").join("\n");
  facelab.status("");
}

function step(delta) {
  const slider = $("frame");
  const next = Math.min(Math.max(Number(slider.value) + delta, 0), tuner.frames.length - 1);
  if (next !== Number(slider.value)) { slider.value = next; showFrame(); }
}

function setView(view) {
  tuner.view = view;
  $("images").className = view;
  for (const b of document.querySelectorAll(".views button")) b.classList.toggle("here", b.dataset.view === view);
}

// ---- saved settings ----

function showSaved(data) {
  tuner.saved = data.saved;
  $("settings-file").textContent = data.file;
  $("saved").textContent = JSON.stringify(data.saved, null, 1);
  const list = $("ranges");
  list.replaceChildren();
  for (const r of data.saved.ranges) {
    const row = document.createElement("div");
    row.className = "row";
    const text = document.createElement("span");
    text.textContent = `frames ${r.first}–${r.last}: ` + Object.entries(r.options).map(([k, v]) => `${k} ${v}`).join(", ");
    const remove = document.createElement("button");
    remove.type = "button"; remove.textContent = "remove"; remove.title = "Remove this range from the settings file";
    remove.addEventListener("click", () => facelab.guard(async () => {
      const answer = await facelab.post("/api/merge/remove-range", { first: r.first, last: r.last });
      showSaved(answer);
      $("saved-message").textContent = answer.message;
      await loadSaved(false);
    }));
    row.append(text, remove);
    list.append(row);
  }
}

// The saved settings and the values `facelab merge` would use for the current frame (into the form if `apply`).
async function loadSaved(apply) {
  const frame = currentFrame();
  const data = await facelab.api(`/api/merge/saved?frame=${frame ? frame.number : 1}`);
  showSaved(data);
  tuner.frameSaved = data.values;
  if (apply) { setValues(data.values); schedule(0); } else markChanged();
}

async function save() {
  const body = { options: values() };
  if (document.querySelector('input[name="scope"]:checked').value === "range") {
    body.first = Number($("first").value);
    body.last = Number($("last").value);
  }
  const answer = await facelab.post("/api/merge/save", body);
  showSaved(answer);
  $("saved-message").textContent = answer.message;
  facelab.status(answer.message, "ok");
  await loadSaved(false);
}

// ---- start ----

function wire() {
  $("frame").addEventListener("input", showFrame);
  $("model").addEventListener("change", () => schedule(0));
  $("prev").addEventListener("click", () => step(-1));
  $("next").addEventListener("click", () => step(1));
  $("revert").addEventListener("click", () => facelab.guard(() => loadSaved(true)));
  $("defaults").addEventListener("click", () => { setValues({}); schedule(0); });
  $("save").addEventListener("click", () => facelab.guard(save));
  for (const id of ["first", "last"]) {
    $(id).addEventListener("input", () => {
      $(id).dataset.touched = "1";
      document.querySelector('input[name="scope"][value="range"]').checked = true;
    });
  }
  for (const b of document.querySelectorAll(".views button")) b.addEventListener("click", () => setView(b.dataset.view));
  document.addEventListener("keydown", (e) => {
    // Sliders and boxes take no typed text: the shortcuts work while one has the focus.
    const t = e.target;
    const textless = t.tagName === "INPUT" && ["range", "checkbox", "radio"].includes(t.type);
    if ((facelab.typing(e) && !textless) || e.ctrlKey || e.metaKey || e.altKey) return;
    if (e.key === ",") step(-1);
    else if (e.key === ".") step(1);
    else if (e.key === "v" || e.key === "V") setView(VIEWS[(VIEWS.indexOf(tuner.view) + 1) % VIEWS.length]);
    else if ((e.key === "o" || e.key === "O") && !e.repeat) $("images").className = "original";
  });
  document.addEventListener("keyup", (e) => { if (e.key === "o" || e.key === "O") $("images").className = tuner.view; });
}

facelab.guard(async () => {
  await facelab.nav("merge");
  const state = await facelab.api("/api/merge/state");
  tuner.options = state.options;
  tuner.frames = state.frames;
  buildForm();
  wire();
  setView("both");
  showSaved(state);
  for (const name of state.models) $("model").add(new Option(name, name));
  if (!state.models.length) throw new Error("no trained model in model/ — train one with `facelab train` first");
  if (!state.frames.length) throw new Error("no dst frame has a face — run the dst face extraction first");
  $("frame").max = tuner.frames.length - 1;
  await loadSaved(true);  // the form starts with what `facelab merge` would use for the first frame
  showFrame();
});
