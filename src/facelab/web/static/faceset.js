// Faceset page: thumbnails of an aligned folder (or its trash), sorting, multi-select → trash, restore.
"use strict";

const $ = (id) => document.getElementById(id);

const state = {
  folder: "",       // workspace-relative folder, e.g. "data_src/aligned"
  trash: false,     // showing the folder's trash instead of the folder
  faces: [],        // [{name, rel, v, yaw, pitch, source, score, ...}] in the folder's order
  selected: new Set(),  // file names
  anchor: -1,       // index a Shift-click range starts from
  methods: [],
  busy: false,      // a sort runs: no trash/restore meanwhile
  previewIndex: -1,
  labelTimer: 0,
};

// -- loading ------------------------------------------------------------------------------------------------

async function loadFolders() {
  const { folders } = await facelab.api("/api/faceset/folders");
  const select = $("folder");
  select.innerHTML = "";
  for (const f of folders) {
    const option = new Option(`${f.path} (${f.count})`, f.path);
    select.appendChild(option);
  }
  if (!folders.length) {
    facelab.status("No aligned faces in this workspace yet — run the extract step first.", "error");
    return;
  }
  const wanted = new URLSearchParams(location.hash.slice(1));
  const keep = folders.find((f) => f.path === (wanted.get("folder") || state.folder));
  select.value = keep ? keep.path : folders[0].path;
  state.folder = select.value;
  state.trash = wanted.get("trash") === "1";
}

async function loadMethods() {
  const { methods } = await facelab.api("/api/faceset/methods");
  state.methods = methods;
  const select = $("method");
  for (const m of methods) {
    const option = new Option(m.name, m.name);
    option.title = m.help;
    select.appendChild(option);
  }
  showMethod();
}

// Reload the grid from the server (after any change); keeps the selection of names still shown.
async function loadFaces() {
  if (!state.folder) return;
  const q = new URLSearchParams({ folder: state.folder, trash: state.trash ? "1" : "0" });
  const data = await facelab.api(`/api/faceset/faces?${q}`);
  state.faces = data.faces;
  const names = new Set(state.faces.map((f) => f.name));
  state.selected = new Set([...state.selected].filter((n) => names.has(n)));
  state.anchor = -1;
  $("trash-count").textContent = data.trash_count;
  history.replaceState(null, "", `#${new URLSearchParams({ folder: state.folder, trash: state.trash ? 1 : 0 })}`);
  render();
}

// -- the grid -----------------------------------------------------------------------------------------------

function hoverText(face) {
  if (face.problem) return face.problem;
  const frame = face.source ? `${face.source} #${face.face_index}` : "—";
  return `yaw ${face.yaw}°\npitch ${face.pitch}°\nframe ${frame}\nscore ${Number(face.score).toFixed(2)}` +
    (face.detector ? ` ${face.detector}` : "");
}

function render() {
  const grid = $("grid");
  const size = Number($("size").value);
  grid.innerHTML = "";
  const cells = document.createDocumentFragment();
  state.faces.forEach((face, i) => {
    const cell = document.createElement("figure");
    cell.className = "face" + (face.problem ? " problem" : "");
    cell.dataset.i = i;
    cell.dataset.name = face.name;
    cell.style.width = `${size + 10}px`;
    const img = document.createElement("img");
    img.loading = "lazy";  // only thumbnails near the viewport load: a 2,000-face folder stays fast
    img.width = size; img.height = size; img.alt = face.name; img.draggable = false;
    img.src = facelab.thumbUrl(face.rel, size, face.v);
    const meta = document.createElement("div");
    meta.className = "meta";
    meta.textContent = hoverText(face);
    meta.style.whiteSpace = "pre-line";
    const caption = document.createElement("figcaption");
    caption.textContent = face.name;
    cell.title = `${face.name}\n${hoverText(face)}`;
    cell.append(img, meta, caption);
    cells.appendChild(cell);
  });
  grid.appendChild(cells);
  if (!state.faces.length) {
    grid.innerHTML = `<div class="empty">${state.trash ? "The trash is empty." : "No faces in this folder."}</div>`;
  }
  const where = state.trash ? `${state.folder}_trash` : state.folder;
  $("count").textContent = `${state.faces.length} face${state.faces.length === 1 ? "" : "s"} in ${where}`;
  $("view-faces").classList.toggle("here", !state.trash);
  $("view-trash").classList.toggle("here", state.trash);
  $("sort-panel").hidden = state.trash;
  $("trash").hidden = state.trash;
  $("restore").hidden = !state.trash;
  showSelection();
}

function showSelection() {
  for (const cell of $("grid").children) {
    if (cell.dataset.name !== undefined) cell.classList.toggle("selected", state.selected.has(cell.dataset.name));
  }
  const n = state.selected.size;
  $("selected").textContent = n ? `${n} selected` : "";
  $("trash").disabled = !n || state.busy;
  $("restore").disabled = !n || state.busy;
}

// Click: only this face; Ctrl/Cmd-click: toggle it; Shift-click: the range from the last clicked face.
function onClick(event) {
  const cell = event.target.closest(".face");
  if (!cell) return;
  const i = Number(cell.dataset.i);
  const name = state.faces[i].name;
  if (event.shiftKey && state.anchor >= 0) {
    const [a, b] = [Math.min(state.anchor, i), Math.max(state.anchor, i)];
    if (!(event.ctrlKey || event.metaKey)) state.selected.clear();
    for (let k = a; k <= b; k++) state.selected.add(state.faces[k].name);
  } else if (event.ctrlKey || event.metaKey) {
    if (state.selected.has(name)) state.selected.delete(name); else state.selected.add(name);
    state.anchor = i;
  } else {
    state.selected = new Set([name]);
    state.anchor = i;
  }
  showSelection();
}

// -- actions ------------------------------------------------------------------------------------------------

async function trashSelected() {
  if (state.trash || state.busy || !state.selected.size) return;
  const names = state.faces.map((f) => f.name).filter((n) => state.selected.has(n));
  const result = await facelab.post("/api/faceset/trash", { folder: state.folder, names });
  state.selected.clear();
  await loadFaces();
  facelab.status(`Moved ${result.moved.length} face${result.moved.length === 1 ? "" : "s"} to ${result.trash}.`,
                 "ok");
}

async function restoreSelected() {
  if (!state.trash || state.busy || !state.selected.size) return;
  const names = state.faces.map((f) => f.name).filter((n) => state.selected.has(n));
  try {
    const result = await facelab.post("/api/faceset/restore", { folder: state.folder, names });
    state.selected.clear();
    facelab.status(`Restored ${result.restored.join(", ")} to ${state.folder}.`, "ok");
  } finally {
    await loadFaces();
  }
}

function showMethod() {
  const method = state.methods.find((m) => m.name === $("method").value);
  if (!method) return;
  $("method-help").textContent = method.help;
  const box = $("method-options");
  box.innerHTML = "";
  for (const o of method.options) {
    const label = document.createElement("label");
    label.title = o.help;
    label.append(`${o.label} `);
    let input;
    if (o.choices) {
      input = document.createElement("select");
      for (const c of o.choices) input.appendChild(new Option(String(c), String(c)));
    } else if (o.kind === "bool") {
      input = document.createElement("input");
      input.type = "checkbox";
      input.checked = Boolean(o.default);
    } else {
      input = document.createElement("input");
      input.type = o.kind === "int" || o.kind === "float" ? "number" : "text";
      if (o.min !== null) input.min = o.min;
      if (o.max !== null) input.max = o.max;
      input.step = o.kind === "int" ? "1" : "any";
    }
    if (input.type !== "checkbox") input.value = String(o.default);
    input.dataset.option = o.name;
    label.appendChild(input);
    box.appendChild(label);
  }
}

function optionValues() {
  const values = {};
  for (const input of $("method-options").querySelectorAll("[data-option]")) {
    values[input.dataset.option] = input.type === "checkbox" ? input.checked : input.value;
  }
  return values;
}

async function sortFolder() {
  if (state.busy) return;
  const method = $("method").value;
  const progress = $("progress");
  setBusy(true);
  progress.hidden = false;
  progress.value = 0;
  facelab.status(`Sorting ${state.folder} by ${method}…`);
  try {
    const { job } = await facelab.post("/api/faceset/sort",
                                       { folder: state.folder, method, options: optionValues() });
    const result = await facelab.waitJob(job, progress);
    state.selected.clear();
    await loadFaces();
    const skipped = result.skipped.length ? ` ${result.skipped.length} unreadable face(s) left as they are: ` +
      result.skipped.slice(0, 3).join(", ") + (result.skipped.length > 3 ? " …" : "") : "";
    const trashed = result.trashed ? `; ${result.trashed} moved to the trash.` : ".";
    facelab.status(`Sorted ${result.kept} faces by ${result.method}${trashed}${skipped}`, skipped ? "error" : "ok");
  } finally {
    setBusy(false);
    progress.hidden = true;
  }
}

function setBusy(busy) {
  state.busy = busy;
  $("grid").classList.toggle("busy", busy);  // the names shown are about to change
  clearInterval(state.labelTimer);
  // waitJob puts the step's name ("Measuring faces", "Renaming") in the bar's title; show it beside the bar.
  state.labelTimer = busy ? setInterval(() => { $("progress-label").textContent = $("progress").title; }, 250) : 0;
  $("progress-label").textContent = "";
  $("sort").disabled = busy;
  $("folder").disabled = busy;
  showSelection();
}

// -- preview ------------------------------------------------------------------------------------------------

function openPreview(i) {
  if (i < 0 || i >= state.faces.length) return;
  state.previewIndex = i;
  const face = state.faces[i];
  if (face.problem) {
    $("preview-image").src = facelab.fileUrl(face.rel, face.v);  // not a face file: show it as it is
  } else {
    const landmarks = $("preview-landmarks").checked ? 1 : 0;
    $("preview-image").src = `/api/faceset/preview?${new URLSearchParams({ path: face.rel, landmarks, v: face.v })}`;
  }
  $("preview-name").textContent = face.name;
  $("preview-meta").textContent = hoverText(face).replace(/\n/g, " · ") + (face.size ? ` · ${face.size} px` : "");
  $("preview").hidden = false;
}

function closePreview() {
  $("preview").hidden = true;
  state.previewIndex = -1;
}

// -- keys ---------------------------------------------------------------------------------------------------

function onKey(event) {
  if (facelab.typing(event)) return;
  const ctrl = event.ctrlKey || event.metaKey;
  if (!$("preview").hidden) {
    if (event.key === "Escape") closePreview();
    else if (event.key === "ArrowLeft") openPreview(state.previewIndex - 1);
    else if (event.key === "ArrowRight") openPreview(state.previewIndex + 1);
    else if (event.key === "l" || event.key === "L") {
      $("preview-landmarks").checked = !$("preview-landmarks").checked;
      openPreview(state.previewIndex);
    } else return;
    event.preventDefault();
    return;
  }
  if (ctrl && (event.key === "a" || event.key === "A")) {
    state.selected = new Set(state.faces.map((f) => f.name));
    showSelection();
  } else if (event.key === "Escape") {
    state.selected.clear();
    showSelection();
  } else if ((event.key === "Delete" || event.key === "Backspace") && !state.trash) {
    facelab.guard(trashSelected);
  } else if ((event.key === "r" || event.key === "R") && !ctrl && state.trash) {
    facelab.guard(restoreSelected);
  } else return;
  event.preventDefault();
}

// -- wiring -------------------------------------------------------------------------------------------------

function switchView(trash) {
  if (state.trash === trash) return;
  state.trash = trash;
  state.selected.clear();
  facelab.status("");
  facelab.guard(loadFaces);
}

$("grid").addEventListener("click", onClick);
$("grid").addEventListener("dblclick", (event) => {
  const cell = event.target.closest(".face");
  if (cell) openPreview(Number(cell.dataset.i));
});
$("folder").addEventListener("change", () => {
  state.folder = $("folder").value;
  state.trash = false;
  state.selected.clear();
  facelab.status("");
  facelab.guard(loadFaces);
});
$("view-faces").addEventListener("click", () => switchView(false));
$("view-trash").addEventListener("click", () => switchView(true));
$("size").addEventListener("change", render);
$("method").addEventListener("change", showMethod);
$("sort").addEventListener("click", () => facelab.guard(sortFolder));
$("trash").addEventListener("click", () => facelab.guard(trashSelected));
$("restore").addEventListener("click", () => facelab.guard(restoreSelected));
$("preview-close").addEventListener("click", closePreview);
$("preview").addEventListener("click", (event) => { if (event.target.id === "preview") closePreview(); });
$("preview-landmarks").addEventListener("change", () => openPreview(state.previewIndex));
document.addEventListener("keydown", onKey);

facelab.guard(async () => {
  await facelab.nav("faceset");
  await Promise.all([loadFolders(), loadMethods()]);
  await loadFaces();
});
