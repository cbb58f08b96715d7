// The waiting room's page: asks the server again when it said to (Retry-After), tells the
// candidate their place through the status line (aria-live: screen readers hear it), and goes
// on to the exam by itself once the line lets the start in. The button does the same by hand
// (and works without this script: it posts the start form).
const status = document.getElementById("waiting-status");
const form = document.getElementById("waiting-form");
const token = form.querySelector("input[name=csrf_token]").value;

function say(text, place) {
  if (status.textContent !== text) status.textContent = text;
  if (place) status.dataset.place = String(place);
}

function seconds(n) {
  return n === 1 ? "1 second" : `${n} seconds`;
}

async function ask() {
  let wait = 5;
  try {
    const resp = await fetch(form.action, {
      method: "POST",
      headers: { "Content-Type": "application/json", "Accept": "application/json",
                 "X-CSRFToken": token },
      body: "{}",
      credentials: "same-origin",
    });
    wait = Number(resp.headers.get("Retry-After")) || wait;
    const body = await resp.json().catch(() => ({}));
    if (resp.ok && body.status === "admitted") {
      say("It is your turn: opening your exam.");
      window.location.assign(body.url);
      return;
    }
    if (resp.status === 202) {
      say(`You are number ${body.place} in line. This page goes on to your exam by itself ` +
          `when it is your turn (in about ${seconds(wait)}).`, body.place);
    } else if (resp.status === 503) {
      say(`The server is busy; your place is kept. Asking again in ${seconds(wait)}.`);
    } else {
      say(body.message || "Your start could not go ahead. Reload the page to try again.");
      return;
    }
  } catch (err) {
    say(`The connection was lost; your place is kept. Asking again in ${seconds(wait)}.`);
  }
  setTimeout(ask, wait * 1000);
}

setTimeout(ask, (Number(status.dataset.retryAfter) || 1) * 1000);
