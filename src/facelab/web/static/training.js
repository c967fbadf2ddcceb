// Training page: polls /api/training/status every second, reloads the preview when its file changes, draws the
// loss graph, and sends save / save-and-stop / preview requests to the running trainer.
"use strict";

const POLL_MS = 1000;
const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const view = {
  model: params.get("model") || "",
  folder: params.get("folder") || "",
  modelFolder: params.get("model_folder") || "", // where the model shown is (model/ or its xseg/ subfolder)
  last: null,        // the last status answer
  previewKey: "",    // path + mtime of the preview shown
  history: null,     // list of preview_history paths while browsing, else null
  historyAt: 0,
};

function query(extra = {}) {
  const q = new URLSearchParams();
  if (view.model) q.set("model", view.model);
  if (view.folder) q.set("folder", view.folder);
  if (view.modelFolder) q.set("model_folder", view.modelFolder);
  for (const [k, v] of Object.entries(extra)) q.set(k, v);
  const s = q.toString();
  return s ? "?" + s : "";
}

function duration(seconds) {
  if (seconds === null || seconds === undefined) return "–";
  const s = Math.floor(seconds);
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60);
  return (h ? `${h}h ` : "") + (h || m ? `${m}m ` : "") + `${s % 60}s`;
}

const num = (v, digits) => (v === null || v === undefined ? "–" : Number(v).toFixed(digits));

// The picker: the swap models of the folder and the XSeg segmenter of its xseg/ subfolder, one list.
const modelKey = (m) => `${m.folder}/${m.name}`;

function showModels(listed, current) {
  const select = $("model");
  $("pickerLabel").hidden = listed.length < 2;
  const keys = listed.map(modelKey).join("|");
  if (select.dataset.models !== keys) {
    select.innerHTML = "";
    for (const m of listed) {
      const option = new Option(m.segmenter ? `${m.name} (face segmenter, ${m.folder})` : m.name, modelKey(m));
      Object.assign(option.dataset, { name: m.name, folder: m.folder });
      select.add(option);
    }
    select.dataset.models = keys;
  }
  select.value = current;
}

// What the preview rows and the two loss lines mean: a swap model's, or the segmenter's.
const MEANING = {
  swap: { src: "src loss", dst: "dst loss",
    rows: "Preview rows: src, src→src, dst, dst→dst, dst→src." },
  segmenter: { src: "loss (BCE + Dice)", dst: "1 − IoU",
    rows: "Preview rows: one face each — the face, the predicted mask, and the face with what is not face " +
      "tinted red." },
};

function showButtons(running, segmenter = false) {
  const command = segmenter ? "facelab xseg train` beside `facelab ui" : "facelab train --ui";
  const why = running ? "" : `No trainer is running for this model: start \`${command}\``;
  for (const id of ["save", "stop", "refresh"]) {
    const b = $(id);
    b.disabled = !running;
    if (!b.dataset.help) b.dataset.help = b.title;
    b.title = running ? b.dataset.help : why;
  }
}

function showStatus(s) {
  view.last = s;
  if (!view.model && s.model) {  // stay on it even when another model starts writing
    view.model = s.model;
    view.modelFolder = s.model_folder;
  }
  showModels(s.listed, s.model ? `${s.model_folder}/${s.model}` : "");
  if (!s.model) {
    $("state").textContent = "no model";
    $("state").className = "";
    $("note").textContent = `No model in ${s.folder || "model/"} yet: start one with \`facelab train --ui\`.`;
    showButtons(false);
    return;
  }
  $("modelName").textContent = s.segmenter ? `${s.model} — face segmenter (${s.model_folder})` : s.model;
  const meaning = MEANING[s.segmenter ? "segmenter" : "swap"];
  $("lossSrcLabel").textContent = meaning.src;
  $("lossDstLabel").textContent = meaning.dst;
  $("rows").textContent = meaning.rows;
  $("state").textContent = s.running ? "running" : "stopped";
  $("state").className = s.running ? "running" : "";
  $("iteration").textContent = s.iteration ?? "–";
  $("rate").textContent = num(s.iterations_per_second, 2);
  $("ms").textContent = num(s.ms_per_iteration, 0);
  $("elapsed").textContent = duration(s.elapsed_seconds);
  $("lossSrc").textContent = num(s.loss_src, 4);
  $("lossDst").textContent = num(s.loss_dst, 4);
  $("note").textContent = s.running ? "" :
    "No trainer is running: this is the last saved state" + (s.stopped_by ? ` (last run stopped: ${s.stopped_by})` : "") + ".";
  showButtons(s.running, s.segmenter);
  if (!view.history && s.preview) {
    const key = `${s.preview.path}@${s.preview.mtime}`;
    if (key !== view.previewKey) {
      view.previewKey = key;
      $("preview").src = facelab.fileUrl(s.preview.path, s.preview.mtime);
    }
  }
  drawLoss($("loss"), s.history, meaning);
}

// Loss graph on a log scale: src blue, dst orange; x is the iteration.
function drawLoss(canvas, history, meaning) {
  const g = canvas.getContext("2d");
  const W = canvas.width, H = canvas.height, L = 52, R = 12, T = 26, B = 28;
  g.clearRect(0, 0, W, H);
  g.fillStyle = "#9aa0aa"; g.font = "12px system-ui, sans-serif";
  const its = (history && history.iteration) || [];
  const all = [...((history && history.src) || []), ...((history && history.dst) || [])].filter((v) => v > 0);
  if (!its.length || !all.length) { g.fillText("no loss history yet", L, H / 2); return; }
  let lo = Math.log10(Math.min(...all)), hi = Math.log10(Math.max(...all));
  if (hi - lo < 1e-3) { lo -= 0.05; hi += 0.05; }
  const x0 = its[0], x1 = Math.max(its[its.length - 1], x0 + 1);
  const x = (it) => L + ((it - x0) / (x1 - x0)) * (W - L - R);
  const y = (v) => T + ((hi - Math.log10(v)) / (hi - lo)) * (H - T - B);
  g.strokeStyle = "#343844"; g.strokeRect(L, T, W - L - R, H - T - B);
  for (let i = 0; i <= 4; i++) {  // y ticks at even steps of log10
    const v = 10 ** (lo + ((hi - lo) * i) / 4);
    g.fillText(v.toPrecision(3), 4, y(v) + 4);
  }
  g.fillText(String(x0), L, H - 8);
  g.textAlign = "right"; g.fillText(String(its[its.length - 1]), W - R, H - 8); g.textAlign = "left";
  for (const [key, colour, label, at] of [["src", "#4ea1ff", meaning.src, L], ["dst", "#ff9f43", meaning.dst, L + 130]]) {
    const values = history[key] || [];
    g.fillStyle = colour; g.fillText(label, at, 16);
    g.strokeStyle = colour; g.lineWidth = 1.5; g.beginPath();
    let started = false;
    values.forEach((v, i) => {
      if (!(v > 0)) return;
      if (started) g.lineTo(x(its[i]), y(v)); else { g.moveTo(x(its[i]), y(v)); started = true; }
    });
    if (values.length === 1) g.arc(x(its[0]), y(values[0]), 2, 0, 2 * Math.PI);
    g.stroke();
  }
  g.fillStyle = "#9aa0aa"; g.fillText("iteration", W / 2 - 20, H - 8);
}

async function poll() {
  const s = await facelab.guard(() => facelab.api("/api/training/status" + query()));
  if (s) showStatus(s);
}

async function ask(action, label) {
  if (!view.last || !view.last.running) return;
  const done = await facelab.guard(() => facelab.post("/api/training/request",
    { action, model: view.model, folder: view.folder, model_folder: view.modelFolder }));
  if (done) facelab.status(`${label}: asked the trainer (it answers after its current iteration)`, "ok");
}

// Preview history: the PNGs of preview_history/, browsed with ◀ ▶ (or the arrow keys).
async function toggleHistory() {
  if (view.history) { view.history = null; $("historyBar").hidden = true; view.previewKey = ""; poll(); return; }
  const r = await facelab.guard(() => facelab.api("/api/training/history" + query()));
  if (!r) return;
  if (!r.previews.length) {
    facelab.status("No preview history: train with --write-preview-history to keep every preview.", "");
    return;
  }
  view.history = r.previews;
  view.historyAt = r.previews.length - 1;
  $("historyBar").hidden = false;
  showHistory();
}

function showHistory() {
  const path = view.history[view.historyAt];
  $("preview").src = facelab.fileUrl(path);
  $("historyLabel").textContent = `${view.historyAt + 1} / ${view.history.length}: ${path.split("/").pop()}`;
  $("prev").disabled = view.historyAt === 0;
  $("next").disabled = view.historyAt === view.history.length - 1;
}

function step(delta) {
  if (!view.history) return;
  view.historyAt = Math.min(view.history.length - 1, Math.max(0, view.historyAt + delta));
  showHistory();
}

$("save").onclick = () => ask("save", "Save");
$("stop").onclick = () => ask("save_and_stop", "Save and stop");
$("refresh").onclick = () => ask("preview", "Refresh preview");
$("history").onclick = toggleHistory;
$("live").onclick = toggleHistory;
$("prev").onclick = () => step(-1);
$("next").onclick = () => step(1);
$("model").onchange = (e) => {
  const chosen = e.target.selectedOptions[0].dataset;
  Object.assign(view, { model: chosen.name, modelFolder: chosen.folder, previewKey: "", history: null });
  $("historyBar").hidden = true;
  e.target.blur(); // the page's keys work again at once
  poll();
};

document.addEventListener("keydown", (e) => {
  if (facelab.typing(e) || e.ctrlKey || e.metaKey || e.altKey) return;
  const keys = {
    s: () => ask("save", "Save"), Enter: () => ask("save_and_stop", "Save and stop"),
    p: () => ask("preview", "Refresh preview"), h: toggleHistory,
    ArrowLeft: () => step(-1), ArrowRight: () => step(1),
  };
  const action = keys[e.key];
  if (action) { e.preventDefault(); action(); }
});

facelab.guard(async () => {
  await facelab.nav("training");
  await poll();
  setInterval(poll, POLL_MS);
});
