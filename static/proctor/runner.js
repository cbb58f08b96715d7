// Proctoring in the candidate's exam runner: integrity events, camera snapshots and the
// proctor's messages. Loaded by the runner as an ES module; it hears the runner's events:
//   microcred:attempt   {attempt_id, csrf_token}   once at load
//   microcred:state     heartbeat body; extras.proctoring = {session_id, fullscreen,
//                       snapshot_interval_s, events_url, snapshots_url, messages, state}
//   microcred:finalized the attempt is over
// Events are numbered (seq) and kept in localStorage until the server acknowledges them, like
// answers: a reload or a network outage loses nothing, and a retry is stored once.

const csrfMeta = document.querySelector('meta[name="csrf-token"]');
let csrfToken = csrfMeta ? csrfMeta.content : "";
let cfg = null;
let finished = false;
const shownMessages = new Set();

// No ping of its own: the runner's heartbeat tells the server this page is alive.
const MAX_BATCH = 100;
const MAX_QUEUE = 2000;
const SNAPSHOT_QUEUE_MAX = 3;

// ------------------------------------------------------------------ styles (no inline <style>)
const css = document.createElement("link");
css.rel = "stylesheet";
css.href = new URL("./proctor.css", import.meta.url).href;
document.head.appendChild(css);

// ------------------------------------------------------------------ the event queue
const key = (name) => `microcred:proctoring:${cfg.session_id}:${name}`;
let queue = [];
let seq = 0;
let flushTimer = null;
let backoff = 1000;
let inFlight = false;

function loadQueue() {
  try { queue = JSON.parse(localStorage.getItem(key("events")) || "[]"); } catch { queue = []; }
  seq = Math.max(Number(localStorage.getItem(key("seq")) || 0), ...queue.map((e) => e.seq), 0);
}
function storeQueue() {
  try { localStorage.setItem(key("events"), JSON.stringify(queue)); } catch { /* storage full: keep in memory */ }
}

export function record(kind, detail = {}) {
  if (!cfg || finished) return;
  seq += 1;
  localStorage.setItem(key("seq"), String(seq));
  queue.push({ seq, kind, at: new Date().toISOString(), detail });
  if (queue.length > MAX_QUEUE) queue.splice(0, queue.length - MAX_QUEUE);
  storeQueue();
  scheduleFlush(300);
}

function scheduleFlush(ms) {
  if (flushTimer) window.clearTimeout(flushTimer);
  flushTimer = window.setTimeout(flush, ms);
}

async function post(url, body, headers = {}) {
  return fetch(url, {
    method: "POST", credentials: "same-origin", body,
    headers: { "X-CSRFToken": csrfToken, Accept: "application/json", ...headers },
  });
}

async function flush() {
  flushTimer = null;
  if (!cfg || inFlight) return;
  inFlight = true;
  const batch = queue.slice(0, MAX_BATCH);
  try {
    const response = await post(cfg.events_url, JSON.stringify({ events: batch }),
      { "Content-Type": "application/json" });
    if (response.ok) {
      const body = await response.json();
      const done = new Set(body.acks.map((a) => a.seq));
      queue = queue.filter((e) => !done.has(e.seq));
      storeQueue();
      backoff = 1000;
      if (queue.length) scheduleFlush(0);
    } else if (response.status === 409 || response.status === 422 || response.status === 404) {
      // the session is over, or the batch can never be accepted: keep nothing that would loop
      queue = queue.filter((e) => !batch.includes(e));
      storeQueue();
    } else {
      throw new Error(`HTTP ${response.status}`);
    }
  } catch {
    backoff = Math.min(backoff * 2, 30000);
    scheduleFlush(backoff);
  } finally {
    inFlight = false;
  }
}

// ------------------------------------------------------------------ what the page reports
function listen() {
  document.addEventListener("visibilitychange", () =>
    record(document.visibilityState === "hidden" ? "tab_hidden" : "tab_visible"));
  window.addEventListener("blur", () => record("window_blur"));
  window.addEventListener("focus", () => record("window_focus"));
  document.addEventListener("copy", () => record("copy"));
  document.addEventListener("cut", () => record("cut"));
  document.addEventListener("paste", () => record("paste"));
  document.addEventListener("contextmenu", () => record("right_click"));
  window.addEventListener("beforeprint", () => record("print"));
  window.addEventListener("offline", () => record("offline"));
  window.addEventListener("online", () => { record("online"); scheduleFlush(0); });
  if (cfg.fullscreen) {
    document.addEventListener("fullscreenchange", () => {
      record(document.fullscreenElement ? "fullscreen_enter" : "fullscreen_exit");
      showFullscreenPrompt();
    });
    showFullscreenPrompt();
  }
}

// ------------------------------------------------------------------ full screen
let fsBar = null;
function showFullscreenPrompt() {
  if (!fsBar) {
    fsBar = document.createElement("div");
    fsBar.className = "proctor-fullscreen";
    fsBar.setAttribute("role", "region");
    fsBar.setAttribute("aria-label", "Full screen");
    const text = document.createElement("p");
    text.textContent = "This exam must be taken in full screen.";
    const button = document.createElement("button");
    button.type = "button";
    button.className = "button primary";
    button.id = "proctor-fullscreen";
    button.textContent = "Enter full screen";
    button.addEventListener("click", () => document.documentElement.requestFullscreen().catch(() => {}));
    fsBar.append(text, button);
    const runner = document.getElementById("runner") || document.body;
    runner.prepend(fsBar);
  }
  fsBar.hidden = Boolean(document.fullscreenElement);
}

// ------------------------------------------------------------------ camera snapshots
let video = null;
let snapSeq = 0;
let snapQueue = [];
let stream = null;

async function startCamera() {
  if (!cfg.snapshot_interval_s) return;
  snapSeq = Number(localStorage.getItem(key("snapseq")) || 0);
  const box = document.createElement("figure");
  box.className = "proctor-camera";
  video = document.createElement("video");
  video.autoplay = true; video.muted = true; video.playsInline = true;
  video.setAttribute("aria-label", "Your camera, as the proctor sees it");
  const caption = document.createElement("figcaption");
  caption.textContent = "Camera on";
  box.append(video, caption);
  document.body.appendChild(box);
  try {
    stream = await navigator.mediaDevices.getUserMedia({ video: { width: 320, height: 240 }, audio: false });
    video.srcObject = stream;
    record("camera_available");
  } catch (err) {
    caption.textContent = "Camera unavailable";
    record("camera_unavailable", { error: String(err && err.name || err).slice(0, 100) });
    return;
  }
  window.setTimeout(snapshot, 2000);
  window.setInterval(snapshot, cfg.snapshot_interval_s * 1000);
}

function capture() {
  return new Promise((resolve) => {
    if (!video || !video.videoWidth) { resolve(null); return; }
    const canvas = document.createElement("canvas");
    canvas.width = 320; canvas.height = 240;
    canvas.getContext("2d").drawImage(video, 0, 0, canvas.width, canvas.height);
    canvas.toBlob(resolve, "image/jpeg", 0.7);
  });
}

async function snapshot() {
  if (finished) return;
  const blob = await capture();
  if (!blob) { record("snapshot_failed"); return; }
  snapSeq += 1;
  localStorage.setItem(key("snapseq"), String(snapSeq));
  snapQueue.push({ seq: snapSeq, at: new Date().toISOString(), blob });
  if (snapQueue.length > SNAPSHOT_QUEUE_MAX) snapQueue.shift();  // keep the newest frames
  await sendSnapshots();
}

async function sendSnapshots() {
  while (snapQueue.length) {
    const s = snapQueue[0];
    try {
      const response = await post(cfg.snapshots_url, s.blob, {
        "Content-Type": "image/jpeg", "X-Snapshot-Seq": String(s.seq), "X-Client-Time": s.at });
      if (!response.ok && response.status >= 500) return;  // try again with the next frame
    } catch { return; }
    snapQueue.shift();
  }
}

// ------------------------------------------------------------------ messages from the proctor
function showMessages(messages) {
  const region = document.getElementById("proctor-messages");
  if (!region || !messages) return;
  for (const m of messages) {
    if (shownMessages.has(m.id)) continue;
    shownMessages.add(m.id);
    const p = document.createElement("p");
    p.className = "proctor-message";
    const label = document.createElement("strong");
    label.textContent = "Message from your proctor: ";
    p.append(label, document.createTextNode(m.text));
    region.appendChild(p);
  }
}

// ------------------------------------------------------------------ wiring to the runner
document.addEventListener("microcred:attempt", (e) => {
  if (e.detail && e.detail.csrf_token) csrfToken = e.detail.csrf_token;
});

document.addEventListener("microcred:state", (e) => {
  const p = e.detail && e.detail.extras && e.detail.extras.proctoring;
  if (!p) return;
  if (!cfg) {
    cfg = p;
    loadQueue();
    listen();
    startCamera();
    if (queue.length) scheduleFlush(0); else flush();
  }
  cfg = { ...cfg, ...p };
  showMessages(p.messages);
});

document.addEventListener("microcred:finalized", () => {
  if (cfg && queue.length) flush();
  finished = true;
  if (stream) stream.getTracks().forEach((t) => t.stop());
});
