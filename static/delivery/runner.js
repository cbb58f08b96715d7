// The candidate's exam runner. The server owns the clock, the key and the scoring; this page
// shows one item at a time, keeps every answer in a local queue until the server has
// acknowledged it, and counts down against the server's deadline corrected for this
// browser's clock offset.
//
// Events for other packages' scripts (proctoring) are dispatched on `document`:
//   microcred:attempt   {attempt_id, csrf_token}        once, at load
//   microcred:state     heartbeat body (clock, extras)  after every heartbeat
//   microcred:finalized {result_url}                    when the attempt is over
//
// Each item arrives with its HTML (item.html: stimulus, stem, interaction), rendered by the server
// from the same templates as every other view of the item; static/items/interactions.js reads
// and restores its value.

import { attach } from "../items/interactions.js";

const root = document.getElementById("runner");
const state = JSON.parse(document.getElementById("attempt-state").textContent);
const csrfToken = document.querySelector('meta[name="csrf-token"]').content;
const attemptId = state.attempt_id;
const urls = {
  saves: root.dataset.savesUrl,
  heartbeat: root.dataset.heartbeatUrl,
  submit: root.dataset.submitUrl,
  timeUp: root.dataset.timeUpUrl,
  result: root.dataset.resultUrl,
};
// The countdown runs on this page; each heartbeat (and each save's reply) corrects it against
// the server's clock, and carries the proctor's pause, extension and messages. The server sets
// the beat (MICROCRED_HEARTBEAT_SECONDS, 30 s by default: TAO and edX beat every 30-60 s); a
// pause or an extension shows within one beat, or at once when the page comes back into view.
const HEARTBEAT_MS = Number(root.dataset.heartbeatMs) || 30000;
const SAVE_DEBOUNCE_MS = 250;
const MAX_RETRY_MS = 15000;
const storeKey = (name) => `microcred:attempt:${attemptId}:${name}`;

const $ = (id) => document.getElementById(id);
const els = {
  heading: $("question-heading"), stem: $("question-stem"), options: $("options-list"),
  stimulus: $("question-stimulus"), prev: $("prev"), next: $("next"), flag: $("flag"),
  toReview: $("to-review"), questionView: $("question-view"), reviewView: $("review-view"),
  reviewRows: $("review-rows"), reviewSummary: $("review-summary"), reviewHeading: $("review-heading"),
  backToQuestion: $("back-to-question"), submitOpen: $("submit-open"), dialog: $("confirm-submit"),
  confirmText: $("confirm-text"), confirmYes: $("confirm-yes"), confirmCancel: $("confirm-cancel"),
  navigator: $("navigator-list"), timer: $("timer"), saveStatus: $("save-status"),
  announcer: $("announcer"), paused: $("paused-overlay"), pausedHeading: $("paused-heading"),
  timeup: $("timeup-overlay"), timeupHeading: $("timeup-heading"),
};

// The question on screen is kept on this device until the server has it, so a reload before
// the next save reaches the server still lands on the same question.
const localPosition = localStorage.getItem(storeKey("position"));
let position = Math.max(0, Math.min(
  localPosition !== null ? Number(localPosition) || 0 : state.position || 0, state.items.length - 1));
let finished = false;

// ------------------------------------------------------------------ the clock

const clock = { deadline: 0, paused: false, offset: 0, frozenRemaining: 0, extension: null };
const announced = new Set();

function applyClock(c, sentAt) {
  const receivedAt = Date.now();
  const latency = sentAt ? (receivedAt - sentAt) / 2 : 0;
  clock.offset = Date.parse(c.server_now) + latency - receivedAt;
  clock.deadline = Date.parse(c.deadline);
  clock.frozenRemaining = c.remaining_ms;
  setPaused(Boolean(c.paused));
  noticeExtension(c.extension_seconds);
}

// The proctor gave more time: the timer shows it at the next tick; say it too, since a
// screen reader does not read a timer that changes every second.
function noticeExtension(total) {
  if (typeof total !== "number") return;
  const before = clock.extension;
  clock.extension = total;
  if (before === null || total <= before) return;
  tick();
  announce(`The proctor has given you ${describeSeconds(total - before)} more. ` +
    `Time left: ${formatTime(remainingMs())}.`);
}

function describeSeconds(seconds) {
  const m = Math.floor(seconds / 60);
  const s = seconds % 60;
  const parts = [];
  if (m) parts.push(`${m} minute${m === 1 ? "" : "s"}`);
  if (s || !m) parts.push(`${s} second${s === 1 ? "" : "s"}`);
  return parts.join(" ");
}

function remainingMs() {
  if (clock.paused) return clock.frozenRemaining;
  return Math.max(0, clock.deadline - (Date.now() + clock.offset));
}

function formatTime(ms) {
  const total = Math.ceil(ms / 1000);
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = total % 60;
  const mm = String(m).padStart(2, "0");
  const ss = String(s).padStart(2, "0");
  return h > 0 ? `${h}:${mm}:${ss}` : `${mm}:${ss}`;
}

function tick() {
  if (finished) return;
  const ms = remainingMs();
  els.timer.textContent = formatTime(ms);
  els.timer.classList.toggle("low", ms <= 5 * 60 * 1000);
  for (const minutes of [5, 1]) {
    const at = minutes * 60 * 1000;
    if (ms <= at && ms > at - 60 * 1000 && !announced.has(minutes)) {
      announced.add(minutes);
      announce(`${minutes} minute${minutes === 1 ? "" : "s"} left.`);
    }
    if (ms > at) announced.delete(minutes);
  }
  if (ms <= 0 && !clock.paused) timeUp();
}

function announce(text) {
  els.announcer.textContent = "";
  window.setTimeout(() => { els.announcer.textContent = text; }, 50);
}

// ------------------------------------------------------------------ modal overlays
//
// The paused and time-up overlays are modal: while one shows, everything else on the page is
// inert (no focus, no clicks, nothing for assistive technology), so no answer can change behind
// it. Regions that only speak (the announcer, the proctor's messages: data-stays-live) stay live.

const modalStack = [];
let inertNodes = [];

function refreshModality() {
  inertNodes.forEach((node) => { node.inert = false; });
  inertNodes = [];
  const top = modalStack[modalStack.length - 1];
  if (!top) return;
  for (let node = top; node !== document.body && node.parentElement; node = node.parentElement) {
    for (const sibling of node.parentElement.children) {
      if (sibling === node || sibling.inert || sibling.hasAttribute("data-stays-live")) continue;
      if (sibling.tagName === "SCRIPT" || sibling.tagName === "TEMPLATE") continue;
      sibling.inert = true;
      inertNodes.push(sibling);
    }
  }
}

function openModal(overlay, focusTarget) {
  if (els.dialog.open) els.dialog.close();
  overlay.hidden = false;
  if (!modalStack.includes(overlay)) modalStack.push(overlay);
  refreshModality();
  focusTarget.focus();
}

function closeModal(overlay) {
  overlay.hidden = true;
  const i = modalStack.indexOf(overlay);
  if (i >= 0) modalStack.splice(i, 1);
  refreshModality();
}

function inputBlocked() {
  return clock.paused || timeUpStarted || finished;
}

function setPaused(paused) {
  if (paused === clock.paused && els.paused.hidden === !paused) return;
  clock.paused = paused;
  root.classList.toggle("is-paused", paused);
  if (paused) {
    openModal(els.paused, els.pausedHeading);
    announce("The proctor has paused your exam. Your time is stopped.");
  } else {
    closeModal(els.paused);
    if (!finished) {
      announce("Your exam has resumed.");
      (els.reviewView.hidden ? els.heading : els.reviewHeading).focus();
      if (queue.length) scheduleFlush(0);  // what waited for the pause to end goes now
    }
  }
  refreshSaveStatus();
}

// ------------------------------------------------------------------ the save queue

function loadQueue() {
  try { return JSON.parse(localStorage.getItem(storeKey("queue")) || "[]"); } catch { return []; }
}
function storeQueue(queue) {
  localStorage.setItem(storeKey("queue"), JSON.stringify(queue));
}
let queue = loadQueue();
let seq = Math.max(state.last_seq || 0, Number(localStorage.getItem(storeKey("seq")) || 0),
  ...queue.map((s) => s.seq));

function nextSeq() {
  seq += 1;
  localStorage.setItem(storeKey("seq"), String(seq));
  return seq;
}

// What the server holds for each item (its last accepted save): an answer the server refused
// is shown as typed, but the item counts as answered only by what the server kept.
for (const item of state.items) { item.saved = item.answer; item.refused = null; }

// Answers still in the local queue are newer than what the server sent: show them.
for (const save of queue) {
  const item = state.items.find((it) => it.id === save.item);
  if (item) { item.answer = save.value; item.flagged = save.flagged; }
}

let flushTimer = null;
let flushing = false;
let online = navigator.onLine;
let retryDelay = 1000;
// The server is full and said when to come back (503 with Retry-After): the queue waits that
// long, still "Saving…" (the answers are kept on this device meanwhile), then sends again.
let busyRetryMs = 0;

function setSaveStatus(text, kind) {
  // a live region: rewrite it only when it says something new
  if (els.saveStatus.textContent !== text) els.saveStatus.textContent = text;
  els.saveStatus.dataset.state = kind;
}

function refreshSaveStatus() {
  if (!online) setSaveStatus("Offline: your answers are kept on this device", "offline");
  else if (queue.length && clock.paused) {
    setSaveStatus("Paused: your last answers are kept and saved when the exam resumes", "paused");
  } else if (queue.length || flushing) setSaveStatus("Saving…", "saving");
  else setSaveStatus("Saved", "saved");
}

function enqueue(item) {
  // A newer save of the same item replaces one that has not been sent yet.
  queue = queue.filter((s) => s.item !== item.id || s.sending);
  queue.push({ seq: nextSeq(), item: item.id, value: item.answer, flagged: item.flagged });
  storeQueue(queue);
  refreshSaveStatus();
  scheduleFlush(SAVE_DEBOUNCE_MS);
}

function scheduleFlush(ms) {
  window.clearTimeout(flushTimer);
  flushTimer = window.setTimeout(flush, ms);
}

async function postJSON(url, body) {
  return fetch(url, {
    method: "POST",
    credentials: "same-origin",
    headers: { "Content-Type": "application/json", "X-CSRFToken": csrfToken },
    body: JSON.stringify(body),
  });
}

// One flush at a time; a caller that comes while one is on its way waits for that one.
let inFlight = null;
function flush() {
  if (!inFlight) inFlight = flushOnce().finally(() => { inFlight = null; });
  return inFlight;
}

async function flushOnce() {
  if (finished) return;
  if (!queue.length) {
    // Still tell the server where the candidate is, so a resume lands on the same item.
    if (position !== lastSentPosition) await sendPosition();
    refreshSaveStatus();
    return;
  }
  if (clock.paused) return;  // the server refuses saves while paused; resuming flushes
  flushing = true;
  let progress = false;  // whether this round moved the queue on (else the next one waits)
  const batch = queue.slice(0, 100);
  batch.forEach((s) => { s.sending = true; });
  refreshSaveStatus();
  const sentAt = Date.now();
  const sentPosition = position;
  try {
    const response = await fetch(urls.saves, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrfToken },
      body: JSON.stringify({
        saves: batch.map(({ seq: s, item, value, flagged }) => ({ seq: s, item, value, flagged })),
        position: sentPosition,
      }),
    });
    const body = await response.json().catch(() => ({}));
    if (response.ok) {
      online = true;
      retryDelay = 1000;
      positionSent(sentPosition);
      const done = new Set();
      for (const ack of body.acks) {
        if (ack.status === "conflict") {
          // Someone else used this number (another browser): send it again with a new one.
          const s = batch.find((b) => b.seq === ack.seq);
          if (s) { seq = Math.max(seq, body.last_seq); s.seq = nextSeq(); s.sending = false; }
        } else {
          done.add(ack.seq);
          const s = batch.find((b) => b.seq === ack.seq);
          const item = s && state.items.find((it) => it.id === s.item);
          if (item) {
            item.saved = s.value;
            if (item.refused && item.refused.seq < s.seq) acceptAnswer(item);
          }
        }
      }
      progress = done.size > 0;
      queue = queue.filter((s) => !done.has(s.seq));
      queue.forEach((s) => { s.sending = false; });
      storeQueue(queue);
      applyClock(body.clock, sentAt);
    } else if (response.status === 409 && (body.error === "time_up" || body.error === "attempt_finalized")) {
      queue = [];
      storeQueue(queue);
      finish(body.result_url || urls.result);
      return;
    } else if (response.status === 409 && body.error === "conflict") {
      // paused by the proctor: not retried until the heartbeat says the exam resumed
      batch.forEach((s) => { s.sending = false; });
      setPaused(true);
    } else if (response.status === 503 || response.status === 429) {
      batch.forEach((s) => { s.sending = false; });
      busyRetryMs = retryAfterMs(response);
    } else if (response.status >= 400 && response.status < 500 && response.status !== 408) {
      // The server refused the content: keep the rest of the queue moving and say so. When it
      // names the save, only that one is dropped (the others are sent again) and its question
      // shows why beside the answer, which stays as typed but is not counted as answered.
      const bad = body.seq !== undefined ? batch.find((b) => b.seq === body.seq) : undefined;
      const item = bad && state.items.find((it) => it.id === bad.item);
      if (item) {
        queue = queue.filter((s) => s !== bad);
        batch.forEach((s) => { s.sending = false; });
        storeQueue(queue);
        refuseAnswer(item, body.reason || body.message || response.statusText, bad.seq);
      } else {
        queue = queue.filter((s) => !batch.includes(s));
        storeQueue(queue);
        announce(`An answer could not be saved: ${body.message || response.statusText}`);
      }
      progress = true;
    } else {
      throw new Error(`server answered ${response.status}`);
    }
  } catch (err) {
    online = false;
    batch.forEach((s) => { s.sending = false; });
  } finally {
    flushing = false;
    refreshSaveStatus();
  }
  if (!queue.length || clock.paused || finished) return;
  if (busyRetryMs) {
    scheduleFlush(busyRetryMs);
    busyRetryMs = 0;
  } else if (progress && online) {
    retryDelay = 1000;
    scheduleFlush(0);
  } else {
    // nothing moved (offline, a server error, only conflicts): wait longer each time
    retryDelay = Math.min(retryDelay * 2, MAX_RETRY_MS);
    scheduleFlush(retryDelay);
  }
}

// How long a busy server asked to wait (Retry-After, seconds), spread a little so the
// candidates it turned away do not all come back at the same moment.
function retryAfterMs(response) {
  const seconds = Number(response.headers.get("Retry-After"));
  const base = Number.isFinite(seconds) && seconds > 0 ? Math.min(seconds, 60) * 1000 : 2000;
  return Math.round(base * (0.75 + Math.random() * 0.5));
}

let lastSentPosition = state.position;
function positionSent(sent) {
  lastSentPosition = sent;
  if (sent === position) localStorage.removeItem(storeKey("position"));
}
async function sendPosition() {
  const sent = position;
  try {
    const r = await postJSON(urls.saves, { saves: [], position: sent });
    if (r.ok) positionSent(sent);
  } catch { /* the next save carries it */ }
}

window.addEventListener("online", () => { online = true; refreshSaveStatus(); scheduleFlush(0); heartbeat(); });
window.addEventListener("offline", () => { online = false; refreshSaveStatus(); });

// ------------------------------------------------------------------ rendering

// the runner's "answered" is the server's (itembank.types: is_answered): an empty list, text
// or object answers nothing
function isAnswered(item) {
  const a = item.answer;
  if (a === null || a === undefined || a === "") return false;
  if (Array.isArray(a)) return a.length > 0;
  if (typeof a === "object") return Object.keys(a).length > 0;
  return true;
}

// answered as the server knows it: an item whose last save was refused counts by what the
// server kept
function counted(item) {
  return item.refused ? isAnswered({ answer: item.saved }) : isAnswered(item);
}

function refuseAnswer(item, message, refusedSeq) {
  item.refused = { message, seq: refusedSeq };
  if (state.items[position] === item && !els.questionView.hidden) showAnswerError(item);
  renderNavigator();
  if (!els.reviewView.hidden) renderReview();
  announce(`Question ${item.number}: your answer was not saved. ${message}`);
}

function acceptAnswer(item) {
  item.refused = null;
  if (state.items[position] === item) showAnswerError(item);
  renderNavigator();
  if (!els.reviewView.hidden) renderReview();
  announce(`Question ${item.number}: your answer is saved.`);
}

// the refusal beside the question's controls: aria-invalid, and named by aria-describedby
function showAnswerError(item) {
  const errorId = "answer-error";
  document.getElementById(errorId)?.remove();
  const controls = els.options.querySelectorAll("input, textarea, select");
  for (const c of controls) {
    const ids = (c.getAttribute("aria-describedby") || "").split(/\s+/).filter((x) => x && x !== errorId);
    if (item.refused) ids.push(errorId);
    if (ids.length) c.setAttribute("aria-describedby", ids.join(" "));
    else c.removeAttribute("aria-describedby");
    if (item.refused) c.setAttribute("aria-invalid", "true");
    else c.removeAttribute("aria-invalid");
  }
  if (!item.refused) return;
  const kept = isAnswered({ answer: item.saved })
    ? "Your last saved answer still stands." : "This question has no saved answer.";
  els.options.after(el("p", { id: errorId, class: "field-error answer-error" },
    `Not saved: ${item.refused.message} ${kept}`));
}

function el(tag, attrs = {}, text) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === false || v === null || v === undefined) continue;
    node.setAttribute(k, v === true ? "" : v);
  }
  if (text !== undefined) node.textContent = text;
  return node;
}

let control = null;  // the interaction on screen: { read, write }

function renderQuestion(focus = true) {
  const item = state.items[position];
  const total = state.items.length;
  els.heading.textContent = `Question ${item.number} of ${total}`;
  // the stimulus of an item set stays in place (and scrolled) from one of its questions to the next
  const stimulus = item.html.stimulus || "";
  if (els.stimulus.dataset.shown !== String(item.stimulus ? item.stimulus.id : "")) {
    els.stimulus.innerHTML = stimulus;
    els.stimulus.dataset.shown = item.stimulus ? String(item.stimulus.id) : "";
  }
  els.stimulus.hidden = !stimulus;
  els.questionView.classList.toggle("with-stimulus", Boolean(stimulus));
  els.stem.innerHTML = item.html.stem;
  els.options.innerHTML = item.html.interaction;
  control = attach(els.options, { onChange: () => onAnswer(item), announce });
  control.write(item.answer);
  showAnswerError(item);
  els.flag.setAttribute("aria-pressed", String(item.flagged));
  els.flag.textContent = item.flagged ? "Flagged for review" : "Flag for review";
  els.prev.disabled = position === 0;
  els.next.disabled = position === total - 1;
  renderNavigator();
  if (focus) els.heading.focus();
}

function renderNavigator() {
  const buttons = state.items.map((item, i) => {
    const status = [counted(item) ? "answered" : "not answered", item.flagged ? "flagged for review" : null]
      .filter(Boolean).join(", ");
    const b = el("button", {
      type: "button",
      class: ["nav-item", counted(item) ? "answered" : "", item.flagged ? "flagged" : ""].join(" ").trim(),
      "aria-label": `Question ${item.number}, ${status}`,
      "aria-current": i === position && !els.questionView.hidden ? "step" : false,
    }, String(item.number));
    b.addEventListener("click", () => goTo(i));
    const li = el("li");
    li.append(b);
    return li;
  });
  els.navigator.replaceChildren(...buttons);
}

function renderReview() {
  const unanswered = state.items.filter((it) => !counted(it)).length;
  const flagged = state.items.filter((it) => it.flagged).length;
  els.reviewSummary.textContent = `${state.items.length - unanswered} of ${state.items.length} answered; ${unanswered} not answered; ${flagged} flagged for review.`;
  const rows = state.items.map((item, i) => {
    const tr = el("tr");
    const th = el("th", { scope: "row" });
    const link = el("button", { type: "button", class: "link-button" }, `Question ${item.number}`);
    link.addEventListener("click", () => goTo(i));
    th.append(link);
    tr.append(th, el("td", {}, counted(item) ? "Answered" : "Not answered"), el("td", {}, item.flagged ? "Flagged" : ""));
    return tr;
  });
  els.reviewRows.replaceChildren(...rows);
}

function showReview() {
  els.questionView.hidden = true;
  els.reviewView.hidden = false;
  renderReview();
  renderNavigator();
  els.reviewHeading.focus();
}

function goTo(i) {
  position = Math.max(0, Math.min(i, state.items.length - 1));
  els.reviewView.hidden = true;
  els.questionView.hidden = false;
  if (position !== lastSentPosition) localStorage.setItem(storeKey("position"), String(position));
  else localStorage.removeItem(storeKey("position"));
  renderQuestion();
  scheduleFlush(SAVE_DEBOUNCE_MS);
}

function onAnswer(item) {
  if (inputBlocked()) { renderQuestion(false); return; }  // nothing changes behind an overlay
  item.answer = control.read();
  enqueue(item);
  renderNavigator();
}

els.prev.addEventListener("click", () => goTo(position - 1));
els.next.addEventListener("click", () => goTo(position + 1));
els.flag.addEventListener("click", () => {
  if (inputBlocked()) return;
  const item = state.items[position];
  item.flagged = !item.flagged;
  enqueue(item);
  renderQuestion(false);
  announce(item.flagged ? `Question ${item.number} flagged for review.` : `Flag removed from question ${item.number}.`);
});
els.toReview.addEventListener("click", showReview);
els.backToQuestion.addEventListener("click", () => goTo(position));

// ------------------------------------------------------------------ submit and time up

els.submitOpen.addEventListener("click", () => {
  if (inputBlocked()) return;
  const unanswered = state.items.filter((it) => !counted(it)).length;
  const flagged = state.items.filter((it) => it.flagged).length;
  els.confirmText.textContent = [
    unanswered
      ? `You have ${unanswered} unanswered question${unanswered === 1 ? "" : "s"}.`
      : "All questions are answered.",
    flagged ? `${flagged} question${flagged === 1 ? " is" : "s are"} flagged for review.` : "",
    "Once you submit, you cannot change your answers.",
  ].filter(Boolean).join(" ");
  els.dialog.showModal();
  els.confirmCancel.focus();
});
els.confirmCancel.addEventListener("click", () => els.dialog.close());

els.confirmYes.addEventListener("click", async () => {
  els.confirmYes.disabled = true;
  try {
    await drainQueue();
    if (queue.length) {
      els.confirmText.textContent = "Your last answers are not saved yet (no connection). Stay on this page; try again when you are back online.";
      return;
    }
    const response = await postJSON(urls.submit, { confirm: true });
    const body = await response.json().catch(() => ({}));
    if (response.ok || body.error === "attempt_finalized" || body.error === "time_up") {
      finish(body.result_url || urls.result);
    } else {
      els.confirmText.textContent = body.message || "The exam could not be submitted. Try again.";
    }
  } catch {
    els.confirmText.textContent = "No connection to the server. Your answers are kept on this device; try again when you are back online.";
  } finally {
    els.confirmYes.disabled = false;
  }
});

async function drainQueue() {
  // Wait for a save already on its way, then send the rest (and the position) now.
  window.clearTimeout(flushTimer);
  await flush();
  for (let i = 0; i < 20 && queue.length && online; i += 1) await flush();
}

let timeUpStarted = false;
async function timeUp() {
  if (timeUpStarted) return;
  timeUpStarted = true;
  openModal(els.timeup, els.timeupHeading);
  announce("Time is up. Your saved answers are being submitted.");
  await drainQueue();
  // The server finalizes once its own deadline plus the grace period has passed.
  const poll = async () => {
    const body = await heartbeat();
    if (!finished && !(body && body.status !== "in_progress")) {
      if (body && body.clock && body.clock.remaining_ms > 0) {
        timeUpStarted = false;  // an extension arrived
        closeModal(els.timeup);
        (els.reviewView.hidden ? els.heading : els.reviewHeading).focus();
        return;
      }
      window.setTimeout(poll, 1000);
    }
  };
  window.setTimeout(poll, 1000);
}

// A GET never finalizes: once the heartbeat says time ran out, this POST has the server
// finalize the attempt with the answers saved in time (only if its own clock agrees: not a
// submit, so an extension that arrived meanwhile cannot turn it into one).
let finalizing = false;
async function finalizeTimeUp() {
  if (finalizing || finished) return;
  finalizing = true;
  try {
    const response = await postJSON(urls.timeUp, {});
    const body = await response.json().catch(() => ({}));
    if (response.ok && body.status !== "in_progress") finish(body.result_url || urls.result);
  } catch {
    // offline: the next heartbeat asks again
  } finally {
    finalizing = false;
  }
}

function finish(resultUrl) {
  if (finished) return;
  finished = true;
  localStorage.removeItem(storeKey("queue"));
  localStorage.removeItem(storeKey("seq"));
  localStorage.removeItem(storeKey("position"));
  document.dispatchEvent(new CustomEvent("microcred:finalized", { detail: { result_url: resultUrl } }));
  window.location.assign(resultUrl);
}

// ------------------------------------------------------------------ heartbeat

async function heartbeat() {
  const sentAt = Date.now();
  try {
    const response = await fetch(urls.heartbeat, { credentials: "same-origin", headers: { Accept: "application/json" } });
    if (!response.ok) return null;
    const body = await response.json();
    online = true;
    refreshSaveStatus();
    if (body.status !== "in_progress") {
      finish(body.result_url || urls.result);
      return body;
    }
    if (body.expired) {  // time ran out, grace included: the heartbeat only reports it
      timeUp();
      finalizeTimeUp();
      return body;
    }
    applyClock(body.clock, sentAt);
    document.dispatchEvent(new CustomEvent("microcred:state", { detail: body }));
    if (queue.length && !clock.paused) scheduleFlush(0);
    return body;
  } catch {
    online = false;
    refreshSaveStatus();
    return null;
  }
}

// ------------------------------------------------------------------ start

applyClock(state.clock, 0);
renderQuestion(false);
refreshSaveStatus();
tick();
window.setInterval(tick, 250);
window.setInterval(heartbeat, HEARTBEAT_MS);
document.addEventListener("visibilitychange", () => { if (!document.hidden) heartbeat(); });
if (queue.length || position !== lastSentPosition) scheduleFlush(0);
window.microcredRunner = { attemptId, csrfToken, announce };
// Other packages' modules run after this one; they hear the first events once all have loaded.
document.addEventListener("DOMContentLoaded", () => {
  document.dispatchEvent(new CustomEvent("microcred:attempt", { detail: { attempt_id: attemptId, csrf_token: csrfToken } }));
  document.dispatchEvent(new CustomEvent("microcred:state", { detail: { status: state.status, clock: state.clock, extras: state.extras || {} } }));
});
