// Live page: camera frames go to the server over a WebSocket as JPEG, swapped frames come back and are drawn
// beside the camera. Flow control: at most MAX_IN_FLIGHT frames are unanswered at any time and each camera frame
// is sent at most once, so the page never falls behind the camera; frames/s and latency are measured here.
"use strict";

const MAX_IN_FLIGHT = 2;    // one being swapped while the next travels: the server is never idle, never queued
const JPEG_QUALITY = 0.8;
const FPS_WINDOW_MS = 2000; // frames/s over the frames shown in the last 2 s
const LATENCIES_KEPT = 30;  // latency shown: the median of the last 30 frames
const DEBOUNCE_MS = 120;
const RECONNECT_MS = 2000;
const $ = (id) => document.getElementById(id);

const live = {
  specs: [],          // option specs from /api/live/state, each with its group ("merge" or "tracking")
  fields: {},         // option name -> {get(), set(value)}
  sent: {},           // option values the server was last sent
  ws: null,
  ready: false,       // the server has a session: frames may be sent
  applyNext: false,   // put the values of the next "ready" into the form (the answer to a start)
  running: true,      // not paused
  inFlight: [],       // frames sent and not yet answered, oldest first: {captured (ms), blob}
  maxInFlight: MAX_IN_FLIGHT,
  cameraFrames: 0,    // camera frames seen; each is sent at most once
  sentFrame: -1,
  sending: false,
  shownAt: [],        // when each of the last frames was shown (ms)
  latencies: [],      // capture → shown of the last frames (ms)
  drawn: 0,           // sequence number of the frame drawn last (answers may finish decoding out of order)
  received: 0,
  last: null,         // {sent, got}: the Blobs of the frame drawn last (the camera frame and its swap)
  timer: 0,
};

// ---- the options form ----

function buildForms() {
  for (const spec of live.specs) {
    const [row, field] = facelab.optionField(spec);
    field.set(spec.value);
    live.fields[spec.name] = field;
    $(`${spec.group}-options`).append(row);
  }
  for (const form of [$("merge-options"), $("tracking-options")]) {
    form.addEventListener("input", () => { clearTimeout(live.timer); live.timer = setTimeout(sendOptions, DEBOUNCE_MS); });
    form.addEventListener("submit", (e) => e.preventDefault());
  }
}

function values() {
  const out = {};
  for (const spec of live.specs) out[spec.name] = live.fields[spec.name].get();
  return out;
}

function sendOptions() {
  const now = values();
  if (Object.values(now).some((v) => Number.isNaN(v))) return;  // a number being typed ("-")
  if (!live.ready) { start(); return; }  // the last start was refused (e.g. a mask this model cannot do)
  const changed = {};
  for (const [name, value] of Object.entries(now)) if (live.sent[name] !== value) changed[name] = value;
  if (Object.keys(changed).length) send({ options: changed });
}

function send(message) {
  if (!live.ws || live.ws.readyState !== WebSocket.OPEN) return;
  if (message.options) Object.assign(live.sent, message.options);
  live.ws.send(JSON.stringify(message));
}

// (Re)start the server's session with the chosen model and every option; frames wait for its "ready".
function start() {
  if (!$("model").value) return;
  live.ready = false;
  live.applyNext = true;
  send({ model: $("model").value, options: values() });
}

// ---- the socket ----

function connect() {
  const ws = new WebSocket(`${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/api/live/socket`);
  ws.binaryType = "arraybuffer";
  live.ws = ws;
  ws.onopen = () => { live.inFlight = []; start(); };
  ws.onmessage = (event) => {
    if (typeof event.data === "string") answered(JSON.parse(event.data));
    else shown(event.data);
  };
  ws.onclose = (event) => {
    live.ready = false;
    facelab.status(`the connection to the server closed (${event.code}${event.reason ? ": " + event.reason : ""}); `
      + "reconnecting…", "error");
    setTimeout(connect, RECONNECT_MS);
  };
}

function answered(message) {
  if (message.type === "ready") {
    if (live.applyNext) {
      for (const spec of live.specs) live.fields[spec.name].set(message.options[spec.name]);
      live.applyNext = false;
    }
    Object.assign(live.sent, message.options);
    live.ready = true;
    facelab.status(`swapping with ${message.model}`, "ok");
    pump();
  } else if (message.type === "error") {
    facelab.status(message.text, "error");
    if (message.frame) { live.inFlight.shift(); pump(); }
  }
}

// A swapped frame: 4-byte header length, JSON header {faces, ms}, JPEG.
async function shown(buffer) {
  const sent = live.inFlight.shift();
  pump();  // the next frame travels while this one is drawn
  const length = new DataView(buffer).getUint32(0);
  const header = JSON.parse(new TextDecoder().decode(new Uint8Array(buffer, 4, length)));
  const got = new Blob([new Uint8Array(buffer, 4 + length)], { type: "image/jpeg" });
  const seq = ++live.received;
  const bitmap = await createImageBitmap(got);
  if (seq < live.drawn) { bitmap.close(); return; }
  live.drawn = seq;
  const canvas = $("output");
  if (canvas.width !== bitmap.width || canvas.height !== bitmap.height) {
    canvas.width = bitmap.width; canvas.height = bitmap.height;
  }
  canvas.getContext("2d").drawImage(bitmap, 0, 0);
  bitmap.close();
  live.last = { sent: sent ? sent.blob : null, got };
  measure(sent ? performance.now() - sent.captured : null, header);
}

// ---- sending camera frames ----

const grabber = document.createElement("canvas");

async function grab(video) {
  const width = Math.min(Number($("size").value), video.videoWidth);
  const height = Math.round(width * video.videoHeight / video.videoWidth / 2) * 2;
  if (grabber.width !== width || grabber.height !== height) { grabber.width = width; grabber.height = height; }
  grabber.getContext("2d").drawImage(video, 0, 0, width, height);
  return new Promise((resolve) => grabber.toBlob(resolve, "image/jpeg", JPEG_QUALITY));
}

// Send the newest camera frame while fewer than live.maxInFlight are unanswered.
async function pump() {
  const video = $("camera");
  if (live.sending) return;
  live.sending = true;
  try {
    while (live.running && live.ready && live.ws.readyState === WebSocket.OPEN && video.videoWidth
           && live.inFlight.length < live.maxInFlight && live.sentFrame !== live.cameraFrames) {
      live.sentFrame = live.cameraFrames;
      const captured = performance.now();
      const blob = await grab(video);
      if (!blob) break;
      live.inFlight.push({ captured, blob });
      live.ws.send(blob);
    }
  } finally {
    live.sending = false;
  }
}

function watchCamera(video) {
  const next = () => video.requestVideoFrameCallback(() => { live.cameraFrames += 1; pump(); next(); });
  next();
}

// ---- measuring ----

function median(numbers) {
  const sorted = [...numbers].sort((a, b) => a - b);
  return sorted.length ? sorted[Math.floor(sorted.length / 2)] : 0;
}

function measure(latency, header) {
  const now = performance.now();
  live.shownAt.push(now);
  while (live.shownAt.length && live.shownAt[0] < now - FPS_WINDOW_MS) live.shownAt.shift();
  if (latency !== null) live.latencies.push(latency);
  if (live.latencies.length > LATENCIES_KEPT) live.latencies.shift();
  const span = live.shownAt.length > 1 ? now - live.shownAt[0] : 0;
  const fps = span ? (live.shownAt.length - 1) * 1000 / span : 0;
  const lat = median(live.latencies);
  const stats = $("stats");
  stats.dataset.fps = fps.toFixed(2);
  stats.dataset.latency = lat.toFixed(1);
  stats.dataset.shown = String(Number(stats.dataset.shown) + 1);
  stats.dataset.faces = String(header.faces);
  $("output").dataset.shown = stats.dataset.shown;
  $("fps").textContent = `${fps.toFixed(1)} fps`;
  $("latency").textContent = `latency ${lat.toFixed(0)} ms`;
  const ms = header.ms;
  const stages = Object.keys(ms).filter((k) => k !== "total").map((k) => `${k} ${ms[k].toFixed(0)}`).join(" · ");
  $("stages").textContent = `server ${(ms.total || 0).toFixed(0)} ms (${stages}) · `
    + (header.faces ? `${header.faces} face${header.faces === 1 ? "" : "s"} swapped` : "no face found");
}

// ---- start ----

function togglePause() {
  live.running = !live.running;
  $("toggle").textContent = live.running ? "Pause" : "Resume";
  if (live.running) pump();
  else $("fps").textContent = "paused";
}

function wire() {
  $("model").addEventListener("change", start);
  $("toggle").addEventListener("click", togglePause);
  $("reset").addEventListener("click", () => send({ reset: true }));
  document.addEventListener("keydown", (e) => {
    if (facelab.typing(e) || e.ctrlKey || e.metaKey || e.altKey) return;
    if (e.key === " ") { e.preventDefault(); togglePause(); }
  });
}

facelab.guard(async () => {
  await facelab.nav("live");
  const state = await facelab.api("/api/live/state");
  live.specs = state.options;
  buildForms();
  wire();
  for (const name of state.models) $("model").add(new Option(name, name));
  if (!state.models.length) throw new Error("no trained model in model/ — train one with `facelab train` first");
  if (!navigator.mediaDevices) {
    throw new Error(`the browser gives the camera only to a secure page: open the UI at http://127.0.0.1:${location.port}/ `
      + `(from another machine, forward the port: ssh -L ${location.port}:127.0.0.1:${location.port} HOST)`);
  }
  const stream = await navigator.mediaDevices.getUserMedia({ video: { width: 640, height: 360 }, audio: false });
  const video = $("camera");
  video.srcObject = stream;
  await video.play();
  const track = stream.getVideoTracks()[0];
  $("source").textContent = track ? track.label : "";
  watchCamera(video);
  connect();
});
