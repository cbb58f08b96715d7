// The live proctor console: polls the sessions every few seconds and updates the table in
// place (rows keyed by session id, cells rewritten only when their text changes, so focus and
// screen-reader position survive). New flags, identity checks and sessions are announced
// politely once, not every poll. A session that ends moves to the "finished" table (its outcome,
// no clock, no connection). Actions open one shared dialog that shows only what the session's
// state allows (the server's list, from the state machine) and post JSON.

const table = document.getElementById("console-table");
const tbody = document.getElementById("console-rows");
const finishedBody = document.getElementById("finished-rows");
const announcer = document.getElementById("console-announcer");
const dialog = document.getElementById("action-dialog");
const csrfToken = document.querySelector('meta[name="csrf-token"]').content;
const pollMs = Number(table.dataset.pollMs || 3000);
const initial = JSON.parse(document.getElementById("console-data").textContent);

const known = new Map();   // id -> last row
const rowEls = new Map();  // id -> {tr, cells: {col: td}, frame, silence, finished}: no DOM search per poll
let current = null;        // the row the dialog acts on
let first = true;

// "1 live session", "2 live sessions": never "1 sessions"
const plural = (n, one, many) => `${n} ${n === 1 ? one : (many || one + "s")}`;

const urlFor = (template, id, action) =>
  template.replace(/\/0(?=\/|$)/, `/${id}`).replace("ACTION", action || "");

function fmtTime(s) {
  if (s === undefined || s === null) return "";
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), sec = s % 60;
  const mm = String(m).padStart(2, "0"), ss = String(sec).padStart(2, "0");
  return h ? `${h}:${mm}:${ss}` : `${mm}:${ss}`;
}

function cellsFor(r) {
  const flags = flagsText(r);
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
const FINISHED_COLS = ["outcome", "ended", "flags", "risk"];

function flagsText(r) {
  return r.flags.count ? `${r.flags.count} (${r.flags.worst})${r.flags.latest ? ": " + r.flags.latest : ""}` : "none";
}

function finishedCellsFor(r) {
  return {
    outcome: r.outcome ? `${r.state_label}: ${r.outcome}` : r.state_label,
    ended: new Date(r.ended_at).toLocaleTimeString(),
    flags: flagsText(r),
    risk: String(r.risk),
  };
}

function nameCell(r) {
  const th = document.createElement("th");
  th.scope = "row";
  const a = document.createElement("a");
  a.href = urlFor(table.dataset.sessionUrl, r.id);
  a.textContent = r.candidate;
  th.appendChild(a);
  return th;
}

function actionsCell(tr, r) {
  const act = document.createElement("td");
  const button = document.createElement("button");
  button.type = "button";
  button.className = "button small";
  button.textContent = "Actions";
  button.setAttribute("aria-label", `Actions for ${r.candidate}`);
  button.addEventListener("click", () => openDialog(Number(tr.dataset.id), button));
  act.appendChild(button);
  return act;
}

// A row's name and exam cells, then one empty cell per column, kept by name for updates.
function rowWithCells(r, cols) {
  const tr = document.createElement("tr");
  tr.dataset.id = r.id;
  const exam = document.createElement("td");
  exam.textContent = r.exam;
  tr.append(nameCell(r), exam);
  const cells = {};
  for (const c of cols) {
    const td = document.createElement("td");
    td.dataset.col = c;
    tr.appendChild(td);
    cells[c] = td;
  }
  return { tr, cells };
}

function buildFinishedRow(r) {
  const { tr, cells } = rowWithCells(r, FINISHED_COLS);
  tr.appendChild(actionsCell(tr, r));
  return { tr, cells, finished: true };
}

function updateFinishedRow(el, r) {
  const texts = finishedCellsFor(r);
  for (const c of FINISHED_COLS) {
    if (el.cells[c].textContent !== texts[c]) el.cells[c].textContent = texts[c];
  }
  const cls = [r.flags.worst ? `sev-${r.flags.worst}` : "", `state-${r.state}`].join(" ").trim();
  if (el.tr.className !== cls) el.tr.className = cls;
}

function buildRow(r) {
  const { tr, cells } = rowWithCells(r, COLS);
  const snap = document.createElement("td");
  snap.dataset.col = "snapshot";
  const frame = document.createElement("span");   // the thumbnail, replaced when a new one comes
  frame.dataset.part = "frame";
  const silence = document.createElement("span");  // "no snapshot for 03:10" when the camera is silent
  silence.dataset.part = "silence";
  snap.append(frame, silence);
  tr.append(snap, actionsCell(tr, r));
  return { tr, cells, frame, silence, finished: false };
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
  const alt = r.snapshot ? `Snapshot: ${r.snapshot.faces !== null ? plural(r.snapshot.faces, "face")
    : r.snapshot.counting ? "faces being counted" : "not analysed"}` : "";
  if (frame.dataset.key !== snapKey) {
    frame.dataset.key = snapKey;
    frame.textContent = "";
    if (r.snapshot) {
      const img = document.createElement("img");
      img.src = urlFor(table.dataset.imageUrl, r.snapshot.image_id);
      img.width = 80; img.height = 60; img.loading = "lazy"; img.decoding = "async";
      img.alt = alt;
      frame.appendChild(img);
    }
  } else if (r.snapshot && frame.firstChild && frame.firstChild.alt !== alt) {
    // the same frame, its faces counted since (the face checker works off the request): the
    // label says so, the image is not fetched again
    frame.firstChild.alt = alt;
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

// The server sends the whole view once (data.full), then only the rows that changed since the
// cursor (data.changed) and the ids that left (data.removed); the clock-driven numbers (time
// left, seconds since the last ping, camera silence) are counted on here from the rows'
// instants, with the server's clock (offsetMs), so an unchanged row needs no bytes.
let cursor = null;
let etag = null;
let offsetMs = 0;
const serverNowS = () => (Date.now() + offsetMs) / 1000;

function advance(r) {
  const now = serverNowS();
  if (r.ends_at_s !== undefined && r.ends_at_s !== null) r.remaining_s = Math.max(0, Math.round(r.ends_at_s - now));
  if (r.last_seen_at_s !== undefined && r.last_seen_at_s !== null) r.last_seen_s = Math.max(0, Math.round(now - r.last_seen_at_s));
  if (r.camera && r.camera.silent_from_s !== undefined && r.camera.silent_from_s !== null) {
    r.camera.silent_s = Math.max(0, Math.round(now - r.camera.silent_from_s));
  }
}

// every live row's clock-driven cells, from its instants (text rewritten only when it changes)
function tick() {
  for (const [id, el] of rowEls) {
    const r = known.get(id);
    if (!el.finished && r) { advance(r); updateRow(el, r); }
  }
  document.getElementById("console-updated").textContent = new Date().toLocaleTimeString();
}

function render(data) {
  const news = [];
  const seen = new Set();
  const fresh = document.createDocumentFragment();  // new rows go in at once: one layout
  const freshFinished = [];
  if (data.cursor) { cursor = data.cursor; etag = data.etag; }
  if (data.server_now_s) offsetMs = data.server_now_s * 1000 - Date.now();
  const rows = data.full === false ? data.changed : data.sessions;
  const removed = data.full === false ? new Set(data.removed) : null;
  for (const r of rows) {
    seen.add(r.id);
    let el = rowEls.get(r.id);
    const before = known.get(r.id);
    if (el && el.finished !== r.finished) {  // the session ended: it leaves the live table
      const hadFocus = el.tr.contains(document.activeElement);
      el.tr.remove();
      rowEls.delete(r.id);
      el = null;
      if (hadFocus) document.getElementById("finished-heading").focus();
    }
    if (!el) {
      el = r.finished ? buildFinishedRow(r) : buildRow(r);
      rowEls.set(r.id, el);
      if (r.finished) freshFinished.push(el); else fresh.appendChild(el.tr);
      if (!first && !before) news.push(`New session: ${r.candidate} (${r.exam}).`);
    }
    if (!first && before) {
      if (r.flags.latest_id && r.flags.latest_id !== before.flags.latest_id) news.push(`New flag for ${r.candidate}: ${r.flags.latest}.`);
      if (r.state === "identity_pending" && before.state !== "identity_pending") news.push(`${r.candidate} sent the identity photos.`);
      if (r.finished && !before.finished) news.push(`${r.candidate}'s session ended: ${r.state_label}.`);
    }
    if (r.finished) updateFinishedRow(el, r); else updateRow(el, r);
    known.set(r.id, r);
    if (current && current.id === r.id) { current = r; refreshDialog(); }
  }
  tbody.appendChild(fresh);
  freshFinished.sort((x, y) => known.get(Number(x.tr.dataset.id)).ended_at.localeCompare(known.get(Number(y.tr.dataset.id)).ended_at));
  for (const el of freshFinished) finishedBody.prepend(el.tr);  // newest first
  for (const [id, el] of rowEls) {
    if (removed ? removed.has(id) : !seen.has(id)) {
      if (el.tr.contains(document.activeElement)) document.getElementById(el.finished ? "finished-heading" : "console-heading").focus();
      el.tr.remove(); rowEls.delete(id); known.delete(id);
    }
  }
  let live = 0;
  for (const r of known.values()) if (!r.finished) live += 1;
  const ended = known.size - live;
  setText(document.getElementById("console-count"), plural(live, "live session"));
  document.getElementById("console-empty").hidden = live > 0;
  document.getElementById("finished-empty").hidden = ended > 0;
  document.getElementById("finished-region").hidden = ended === 0;
  tick();
  if (news.length) announce(news.slice(0, 3).join(" ") + (news.length > 3 ? ` And ${news.length - 3} more.` : ""));
  first = false;
}

function setText(el, text) {
  if (el.textContent !== text) el.textContent = text;
}

async function poll() {
  try {
    const headers = { Accept: "application/json" };
    if (cursor && etag) headers["If-None-Match"] = etag;
    const url = cursor ? `${table.dataset.url}?cursor=${encodeURIComponent(cursor)}` : table.dataset.url;
    const response = await fetch(url, { credentials: "same-origin", cache: "no-store", headers });
    if (response.status === 304) tick();  // nothing changed: only the clocks move
    else if (response.ok) render(await response.json());
    else if (response.status === 400) { cursor = null; etag = null; }  // the next poll: the whole view
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
  setText(document.getElementById("action-heading"), `Actions for ${current.candidate} (${current.exam})`);
  setText(document.getElementById("action-state"), `State: ${current.state_label}. Identity: ${current.identity}.`);
  document.getElementById("action-session-link").href = urlFor(table.dataset.sessionUrl, current.id);
  document.getElementById("action-identity-link").href = urlFor(table.dataset.sessionUrl, current.id);
  // only the actions the state allows: the server's list, from the state machine
  const allowed = new Set(current.actions || []);
  for (const form of dialog.querySelectorAll("form[data-action]")) form.hidden = !allowed.has(form.dataset.action);
  for (const p of dialog.querySelectorAll("[data-for]")) p.hidden = !allowed.has(p.dataset.for);
  for (const group of dialog.querySelectorAll(".action-group")) {
    group.hidden = !group.querySelector("form:not([hidden])");
  }
  document.getElementById("action-none").hidden = !current.finished;
  // an action that hid the control in focus must not drop focus to <body>
  if (dialog.open && !dialog.contains(document.activeElement)) document.getElementById("action-result").focus();
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
    // the result keeps the focus (the button pressed may now be hidden): it is read out, and
    // Tab goes on from inside the dialog
    result.focus();
  });
}

document.getElementById("action-close").addEventListener("click", () => dialog.close());
dialog.addEventListener("close", () => { current = null; if (opener) opener.focus(); });

tbody.textContent = "";
render(initial);
window.setTimeout(poll, pollMs);
