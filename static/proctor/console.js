// The live proctor console: polls the sessions every few seconds and updates the table in
// place (rows keyed by session id, cells rewritten only when their text changes, so focus and
// screen-reader position survive). New flags, identity checks and sessions are announced
// politely once, not every poll. Actions open one shared dialog and post JSON.

const table = document.getElementById("console-table");
const tbody = document.getElementById("console-rows");
const announcer = document.getElementById("console-announcer");
const dialog = document.getElementById("action-dialog");
const csrfToken = document.querySelector('meta[name="csrf-token"]').content;
const pollMs = Number(table.dataset.pollMs || 3000);
const initial = JSON.parse(document.getElementById("console-data").textContent);

const known = new Map();   // id -> last row
const rowEls = new Map();  // id -> {tr, cells: {col: td}, frame, silence}: no DOM search per poll
let current = null;        // the row the dialog acts on
let first = true;

const urlFor = (template, id, action) =>
  template.replace(/\/0(?=\/|$)/, `/${id}`).replace("ACTION", action || "");

function fmtTime(s) {
  if (s === undefined || s === null) return "";
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), sec = s % 60;
  const mm = String(m).padStart(2, "0"), ss = String(sec).padStart(2, "0");
  return h ? `${h}:${mm}:${ss}` : `${mm}:${ss}`;
}

function cellsFor(r) {
  const flags = r.flags.count ? `${r.flags.count} (${r.flags.worst})${r.flags.latest ? ": " + r.flags.latest : ""}` : "none";
  const conn = r.connection === "lost" ? `lost (${r.last_seen_s} s ago)` : r.connection;
  return {
    state: r.state_label,
    identity: r.identity,
    progress: r.items ? `${r.answered}/${r.items} answered, at Q${r.position}` : "",
    time: r.remaining_s === undefined ? "" : (r.paused ? `${fmtTime(r.remaining_s)} (paused)` : fmtTime(r.remaining_s)),
    connection: conn,
    flags,
    risk: String(r.risk),
  };
}

const COLS = ["state", "identity", "progress", "time", "connection", "flags", "risk"];

function buildRow(r) {
  const tr = document.createElement("tr");
  tr.dataset.id = r.id;
  const th = document.createElement("th");
  th.scope = "row";
  const a = document.createElement("a");
  a.href = urlFor(table.dataset.sessionUrl, r.id);
  a.textContent = r.candidate;
  th.appendChild(a);
  const exam = document.createElement("td");
  exam.textContent = r.exam;
  tr.append(th, exam);
  const cells = {};
  for (const c of COLS) {
    const td = document.createElement("td");
    td.dataset.col = c;
    tr.appendChild(td);
    cells[c] = td;
  }
  const snap = document.createElement("td");
  snap.dataset.col = "snapshot";
  const frame = document.createElement("span");   // the thumbnail, replaced when a new one comes
  frame.dataset.part = "frame";
  const silence = document.createElement("span");  // "no snapshot for 03:10" when the camera is silent
  silence.dataset.part = "silence";
  snap.append(frame, silence);
  const act = document.createElement("td");
  const button = document.createElement("button");
  button.type = "button";
  button.className = "button small";
  button.textContent = "Actions";
  button.setAttribute("aria-label", `Actions for ${r.candidate}`);
  button.addEventListener("click", () => openDialog(Number(tr.dataset.id), button));
  act.appendChild(button);
  tr.append(snap, act);
  return { tr, cells, frame, silence };
}

function updateRow(el, r) {
  const { tr, frame, silence } = el;
  const texts = cellsFor(r);
  for (const c of COLS) {
    const td = el.cells[c];
    if (td.textContent !== texts[c]) td.textContent = texts[c];
  }
  const cls = [r.paused ? "is-paused" : "", r.flags.worst ? `sev-${r.flags.worst}` : "",
    r.connection === "lost" ? "conn-lost" : "", `state-${r.state}`].join(" ").trim();
  if (tr.className !== cls) tr.className = cls;
  const snapKey = r.snapshot ? String(r.snapshot.id) : "";
  if (frame.dataset.key !== snapKey) {
    frame.dataset.key = snapKey;
    frame.textContent = "";
    if (r.snapshot) {
      const img = document.createElement("img");
      img.src = urlFor(table.dataset.imageUrl, r.snapshot.image_id);
      img.width = 80; img.height = 60; img.loading = "lazy"; img.decoding = "async";
      img.alt = `Snapshot: ${r.snapshot.faces === null ? "not analysed" : r.snapshot.faces + " face(s)"}`;
      frame.appendChild(img);
    }
  }
  const text = silenceText(r.camera);
  if (silence.textContent !== text) silence.textContent = text;
  const late = Boolean(r.camera && r.camera.silent_s > r.camera.limit_s);
  if (silence.classList.contains("camera-late") !== late) silence.classList.toggle("camera-late", late);
}

// The camera is expected every interval_s; say so once a snapshot is clearly overdue (one
// interval late), before the rule's limit (limit_s) raises a flag.
function silenceText(cam) {
  if (!cam || cam.silent_s < 2 * cam.interval_s) return "";
  return `no snapshot for ${fmtTime(cam.silent_s)}`;
}

function announce(text) {
  announcer.textContent = "";
  window.setTimeout(() => { announcer.textContent = text; }, 50);
}

function render(data) {
  const news = [];
  const seen = new Set();
  const fresh = document.createDocumentFragment();  // new rows go in at once: one layout
  for (const r of data.sessions) {
    seen.add(r.id);
    let el = rowEls.get(r.id);
    const before = known.get(r.id);
    if (!el) {
      el = buildRow(r);
      rowEls.set(r.id, el);
      fresh.appendChild(el.tr);
      if (!first && !before) news.push(`New session: ${r.candidate} (${r.exam}).`);
    }
    if (!first && before) {
      if (r.flags.latest_id && r.flags.latest_id !== before.flags.latest_id) news.push(`New flag for ${r.candidate}: ${r.flags.latest}.`);
      if (r.state === "identity_pending" && before.state !== "identity_pending") news.push(`${r.candidate} sent the identity photos.`);
    }
    updateRow(el, r);
    known.set(r.id, r);
    if (current && current.id === r.id) { current = r; refreshDialog(); }
  }
  tbody.appendChild(fresh);
  for (const [id, el] of rowEls) {
    if (!seen.has(id)) { el.tr.remove(); rowEls.delete(id); known.delete(id); }
  }
  document.getElementById("console-count").textContent = String(data.sessions.length);
  document.getElementById("console-empty").hidden = data.sessions.length > 0;
  document.getElementById("console-updated").textContent = new Date().toLocaleTimeString();
  if (news.length) announce(news.slice(0, 3).join(" ") + (news.length > 3 ? ` And ${news.length - 3} more.` : ""));
  first = false;
}

async function poll() {
  try {
    const response = await fetch(table.dataset.url, { credentials: "same-origin", headers: { Accept: "application/json" } });
    if (response.ok) render(await response.json());
  } catch { /* offline: the next poll retries */ }
  window.setTimeout(poll, pollMs);
}

// ------------------------------------------------------------------ the action dialog
let opener = null;

function openDialog(id, button) {
  current = known.get(id);
  opener = button;
  document.getElementById("action-result").textContent = "";
  refreshDialog();
  dialog.showModal();
}

function refreshDialog() {
  if (!current) return;
  document.getElementById("action-heading").textContent = `Actions for ${current.candidate} (${current.exam})`;
  document.getElementById("action-state").textContent = `State: ${current.state_label}. Identity: ${current.identity}.`;
  document.getElementById("action-session-link").href = urlFor(table.dataset.sessionUrl, current.id);
  document.getElementById("action-identity-link").href = urlFor(table.dataset.sessionUrl, current.id);
  const s = current.state;
  const when = {
    identity: s === "identity_pending" || s === "created",
    running: s === "in_progress" || s === "paused",
    active: ["created", "identity_pending", "identity_rejected", "admitted", "in_progress", "paused"].includes(s),
    any: true,
  };
  for (const group of dialog.querySelectorAll(".action-group")) group.hidden = !when[group.dataset.when];
  document.getElementById("action-pause").closest("form").hidden = s !== "in_progress";
  document.getElementById("action-resume").closest("form").hidden = s !== "paused";
}

for (const form of dialog.querySelectorAll("form[data-action]")) {
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (!current) return;
    const body = {};
    for (const [k, v] of new FormData(form).entries()) body[k] = k === "minutes" ? Number(v) : v;
    const result = document.getElementById("action-result");
    result.textContent = "Working…";
    try {
      const response = await fetch(urlFor(table.dataset.actionUrl, current.id, form.dataset.action), {
        method: "POST", credentials: "same-origin",
        headers: { "Content-Type": "application/json", Accept: "application/json", "X-CSRFToken": csrfToken },
        body: JSON.stringify(body),
      });
      const out = await response.json();
      result.textContent = response.ok ? out.message : `Not done: ${out.message}`;
      if (response.ok) form.reset();
    } catch {
      result.textContent = "Not done: the server could not be reached. Try again.";
    }
    const fresh = await fetch(table.dataset.url, { credentials: "same-origin" }).then((r) => r.json()).catch(() => null);
    if (fresh) render(fresh);
  });
}

document.getElementById("action-close").addEventListener("click", () => dialog.close());
dialog.addEventListener("close", () => { current = null; if (opener) opener.focus(); });

tbody.textContent = "";
render(initial);
window.setTimeout(poll, pollMs);
