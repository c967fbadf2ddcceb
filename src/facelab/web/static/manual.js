// Manual extraction: a square follows the mouse over the frame, the server predicts its 68 landmarks live,
// Enter cuts the aligned face. All geometry is in frame pixels (origin at the top-left pixel's corner);
// the canvas maps frame → screen with one exact scale, so screen → frame is (client - rect.left) * W / rect.width.
"use strict";

const WHEEL_STEP = { normal: 1.1, precision: 1.02 };  // square size factor per wheel notch
const SLOW_MOVE = 0.25;  // in precision mode the square moves this fraction of the mouse's movement
const DEBOUNCE_MS = 25;
// iBUG-68 point runs drawn as lines: [first, end, closed]
const RUNS = [[0, 17, false], [17, 22, false], [22, 27, false], [27, 31, false], [31, 36, false],
              [36, 42, true], [42, 48, true], [48, 60, true], [60, 68, true]];
const COLOURS = { box: "#ff3b3b", square: "#00ff00", points: "#00ffff", old: "#b0b0b0" };  // as aligned_debug

const el = (id) => document.getElementById(id);
const canvas = el("frame");
const M = {
  side: "dst", mode: "need", frames: [], index: 0, done: {}, image: null, W: 0, H: 0,
  centre: null, size: 0, precision: false, lastMouse: null, live: null, existing: [], busy: false, loadId: 0,
};

const current = () => M.frames[M.index];
const box = () => {
  const [cx, cy] = M.centre, h = M.size / 2;
  return [cx - h, cy - h, cx + h, cy + h];
};
const boxText = (b) => b.map((v) => v.toFixed(1)).join(",");  // data-box / data-live-box, for tests
const settings = () => ({ face_type: el("face-type").value, image_size: Number(el("image-size").value) });

// ---- drawing --------------------------------------------------------------------------------------------

function fit() {
  if (!M.image) return;
  const stage = el("stage"), scale = Math.min(stage.clientWidth / M.W, stage.clientHeight / M.H);
  const dpr = window.devicePixelRatio || 1;
  canvas.style.width = `${M.W * scale}px`;
  canvas.style.height = `${M.H * scale}px`;
  canvas.width = Math.round(M.W * scale * dpr);
  canvas.height = Math.round(M.H * scale * dpr);
  draw();
}

function polyline(g, points, closed) {
  g.beginPath();
  points.forEach(([x, y], i) => (i ? g.lineTo(x, y) : g.moveTo(x, y)));
  if (closed) g.closePath();
  g.stroke();
}

function draw() {
  if (!M.image) return;
  const g = canvas.getContext("2d");
  g.setTransform(canvas.width / M.W, 0, 0, canvas.height / M.H, 0, 0);
  g.drawImage(M.image, 0, 0, M.W, M.H);
  const px = M.W / canvas.getBoundingClientRect().width;  // one screen pixel, in frame pixels
  g.lineWidth = 1.5 * px;
  g.setLineDash([4 * px, 4 * px]);
  g.strokeStyle = COLOURS.old;
  for (const face of M.existing) polyline(g, face.square, true);
  g.setLineDash([]);
  if (M.live && M.live.frame === current().name) {
    g.strokeStyle = COLOURS.square;
    polyline(g, M.live.square, true);
    g.strokeStyle = COLOURS.points;
    g.lineWidth = px;
    for (const [a, b, closed] of RUNS) polyline(g, M.live.landmarks.slice(a, b), closed);
    g.fillStyle = COLOURS.points;
    for (const [x, y] of M.live.landmarks) { g.beginPath(); g.arc(x, y, 2 * px, 0, 2 * Math.PI); g.fill(); }
  }
  if (M.centre) {
    const [x0, y0, x1, y1] = box();
    canvas.dataset.box = boxText(box());
    g.strokeStyle = COLOURS.box;
    g.lineWidth = (M.precision ? 1 : 2) * px;
    g.strokeRect(x0, y0, x1 - x0, y1 - y0);
  }
}

// ---- live landmarks: at most one request in flight, the latest square wins --------------------------------

let debounce = null, inFlight = false, wanted = false;

function wantLandmarks() {
  clearTimeout(debounce);
  debounce = setTimeout(() => { wanted = true; pump(); }, DEBOUNCE_MS);
}

async function pump() {
  if (inFlight || !wanted || !M.centre || !current()) return;
  wanted = false;
  inFlight = true;
  const frame = current().name, sent = box();
  try {
    const live = await facelab.post("/api/manual/landmarks", { side: M.side, frame, boxes: [sent], ...settings() });
    if (current() && frame === current().name) {
      M.live = { ...live, frame };
      canvas.dataset.liveBox = boxText(sent);
      el("preview").src = live.preview;
      el("timing").textContent = `landmarks ${live.ms} ms`;
      canvas.dataset.landmarks = String(live.landmarks.length);
      draw();
    }
  } catch (err) {
    facelab.status(err.message, "error");
  } finally {
    inFlight = false;
    pump();
  }
}

// ---- the frame list -------------------------------------------------------------------------------------

function showEmpty(message) {
  el("empty").textContent = message;
  el("empty").hidden = !message;
  canvas.hidden = Boolean(message);
  el("help").hidden = Boolean(message) || el("help").dataset.off === "1";
}

async function loadList() {
  M.side = el("side").value;
  M.mode = el("mode").value;
  M.frames = []; M.done = {}; M.image = null; M.live = null;
  el("frames").textContent = "";
  updatePanel();
  let data;
  try {
    data = await facelab.api(`/api/manual/frames?side=${M.side}&mode=${M.mode}`);
  } catch (err) {
    showEmpty(err.message);
    facelab.status(err.message, "error");
    return;
  }
  el("face-type").value = data.face_type;
  el("image-size").value = data.image_size;
  el("settings-note").textContent = "(as data_" + M.side + "/aligned was extracted)";
  M.frames = data.frames;
  if (!M.frames.length) {
    showEmpty(`Nothing to fix on ${M.side}: each of its ${data.total_frames} frames has a face in aligned/ and ` +
              "no aligned_debug image was deleted. Choose “every frame” to place faces by hand anyway, " +
              "or delete the aligned_debug images of the frames to redo.");
    facelab.status("no frame needs manual work", "ok");
    return;
  }
  showEmpty("");
  const list = el("frames");
  M.frames.forEach((frame, i) => {
    const li = document.createElement("li");
    li.innerHTML = '<span class="name"></span><span class="what"></span>';
    li.querySelector(".name").textContent = frame.name;
    li.querySelector(".what").textContent = frame.reason;
    li.addEventListener("click", () => goTo(i));
    list.appendChild(li);
  });
  facelab.status(`${M.frames.length} of ${data.total_frames} ${M.side} frames to walk`, "");
  await goTo(0);
}

function updatePanel() {
  const frame = current();
  el("position").textContent = frame ? `frame ${M.index + 1} of ${M.frames.length}` : "—";
  el("frame-name").textContent = frame ? frame.name : "";
  el("frame-reason").textContent = frame && frame.reason ? `needs it: ${frame.reason}` : "";
  el("frame-done").textContent = frame && M.done[frame.name] ? M.done[frame.name] : "";
  el("frame-done").className = frame && M.done[frame.name] && M.done[frame.name].startsWith("accepted") ? "ok" : "dim";
  el("square").textContent = M.centre ? `square ${Math.round(M.size)} px` : "square —";
  el("precision").textContent = M.precision ? "precision (A)" : "normal (A)";
  [...el("frames").children].forEach((li, i) => {
    const name = M.frames[i].name;
    li.classList.toggle("here", i === M.index);
    li.classList.toggle("accepted", (M.done[name] || "").startsWith("accepted"));
    li.querySelector(".what").textContent = M.done[name] || M.frames[i].reason;
  });
  const here = el("frames").children[M.index];
  if (here) here.scrollIntoView({ block: "nearest" });
}

async function goTo(index) {
  if (!M.frames.length) return;
  M.index = Math.max(0, Math.min(M.frames.length - 1, index));
  const frame = current(), loadId = ++M.loadId;
  M.live = null; M.existing = [];
  delete canvas.dataset.landmarks;
  delete canvas.dataset.liveBox;
  canvas.dataset.frame = "";
  el("preview").removeAttribute("src");
  updatePanel();
  const image = new Image();
  image.src = facelab.fileUrl(`data_${M.side}/${frame.name}`, Date.now());
  const existing = facelab.api(`/api/manual/faces?side=${M.side}&frame=${encodeURIComponent(frame.name)}`);
  try {
    await image.decode();
    const faces = await existing;
    if (loadId !== M.loadId) return;  // the user moved on meanwhile
    M.existing = faces.faces;
  } catch (err) {
    facelab.status(`${frame.name}: ${err.message || "cannot load the frame"}`, "error");
    return;
  }
  const first = !M.image;
  M.image = image; M.W = image.naturalWidth; M.H = image.naturalHeight;
  if (first || !M.centre) { M.centre = [M.W / 2, M.H / 2]; M.size = Math.round(M.H / 3); }
  canvas.dataset.frame = frame.name;
  canvas.dataset.width = String(M.W);
  canvas.dataset.height = String(M.H);
  fit();
  updatePanel();
  if (M.lastMouse) wantLandmarks();
}

// ---- the user's actions ---------------------------------------------------------------------------------

async function accept() {
  const frame = current();
  if (!frame || !M.centre || M.busy || canvas.dataset.frame !== frame.name) return;
  M.busy = true;
  try {
    const done = await facelab.post("/api/manual/accept",
      { side: M.side, frame: frame.name, boxes: [box()], ...settings() });
    const names = done.faces.map((f) => f.split("/").pop()).join(", ");
    M.done[frame.name] = `accepted → ${names}` + (done.moved ? ` (${done.moved} old moved to trash)` : "");
    facelab.status(`${frame.name}: wrote ${done.faces.join(", ")}` + (done.debug ? ` and ${done.debug}` : "") +
                   (done.moved ? `; ${done.moved} earlier face(s) moved to ${done.trash}` : ""), "ok");
    advance();
  } catch (err) {
    facelab.status(err.message, "error");
  } finally {
    M.busy = false;
  }
}

function skip() {
  const frame = current();
  if (!frame) return;
  if (!M.done[frame.name]) M.done[frame.name] = "skipped";
  advance();
}

function advance() {
  if (M.index < M.frames.length - 1) { goTo(M.index + 1); return; }
  const accepted = Object.values(M.done).filter((d) => d.startsWith("accepted")).length;
  const skipped = Object.values(M.done).filter((d) => d === "skipped").length;
  updatePanel();
  facelab.status(`Last frame done: ${accepted} accepted, ${skipped} skipped of ${M.frames.length}.`, "ok");
}

function frameXY(event) {
  const rect = canvas.getBoundingClientRect();
  return [(event.clientX - rect.left) * M.W / rect.width, (event.clientY - rect.top) * M.H / rect.height];
}

canvas.addEventListener("mousemove", (event) => {
  if (!M.image) return;
  if (M.precision && M.lastMouse && M.centre) {
    const rect = canvas.getBoundingClientRect();
    M.centre = [M.centre[0] + (event.clientX - M.lastMouse[0]) * SLOW_MOVE * M.W / rect.width,
                M.centre[1] + (event.clientY - M.lastMouse[1]) * SLOW_MOVE * M.H / rect.height];
  } else {
    M.centre = frameXY(event);
  }
  M.lastMouse = [event.clientX, event.clientY];
  draw();
  updatePanel();
  wantLandmarks();
});

canvas.addEventListener("wheel", (event) => {
  event.preventDefault();
  if (!M.image) return;
  const step = M.precision ? WHEEL_STEP.precision : WHEEL_STEP.normal;
  const notches = Math.max(-3, Math.min(3, -event.deltaY / 100));  // wheel up: bigger
  M.size = Math.max(16, Math.min(2 * Math.max(M.W, M.H), M.size * step ** notches));
  if (!M.lastMouse) M.lastMouse = [event.clientX, event.clientY];
  draw();
  updatePanel();
  wantLandmarks();
}, { passive: false });

canvas.addEventListener("click", () => canvas.focus());

document.addEventListener("keydown", (event) => {
  if (facelab.typing(event) || event.ctrlKey || event.metaKey || event.altKey) return;
  const key = event.key.length === 1 ? event.key.toLowerCase() : event.key;
  const actions = {
    Enter: accept, " ": skip, ",": () => goTo(M.index - 1), ".": () => goTo(M.index + 1),
    a: () => { M.precision = !M.precision; updatePanel(); draw(); },
    h: () => {
      const help = el("help");
      help.dataset.off = help.dataset.off === "1" ? "0" : "1";
      help.hidden = help.dataset.off === "1";
    },
  };
  if (!(key in actions)) return;
  event.preventDefault();
  actions[key]();
});

// buttons give the focus back at once, so Enter/Space afterwards are the page's keys, not a second click
const buttons = { accept, skip, prev: () => goTo(M.index - 1), next: () => goTo(M.index + 1) };
for (const [id, action] of Object.entries(buttons)) {
  el(id).addEventListener("click", (event) => { event.currentTarget.blur(); action(); });
}
for (const id of ["side", "mode"]) {
  el(id).addEventListener("change", (event) => { event.target.blur(); facelab.guard(loadList); });
}
for (const id of ["face-type", "image-size"]) {
  el(id).addEventListener("change", (event) => { event.target.blur(); M.live = null; draw(); wantLandmarks(); });
}
window.addEventListener("resize", fit);

facelab.guard(async () => {
  await facelab.nav("manual");
  const query = new URLSearchParams(location.search);
  if (query.get("side")) el("side").value = query.get("side");
  if (query.get("mode")) el("mode").value = query.get("mode");
  await loadList();
});
