// A page whose background job (a calibration run, a report PDF) is queued or running: ask the
// server where the job stands every two seconds, show it (the status line is an aria-live
// region), and reload the page once the job has finished or failed, to show its result or its
// error. The section names what to read: data-progress-url, the ids of its <progress> and status
// line (data-bar, data-status), and the reply's fields for done and total (data-done, data-total).
(function () {
  "use strict";
  var section = document.querySelector("[data-job-progress]");
  if (!section) { return; }
  var url = section.getAttribute("data-progress-url");
  var bar = document.getElementById(section.getAttribute("data-bar"));
  var status = document.getElementById(section.getAttribute("data-status"));
  var doneField = section.getAttribute("data-done");
  var totalField = section.getAttribute("data-total");
  var delay = 2000;

  function poll() {
    fetch(url, { headers: { "Accept": "application/json" }, credentials: "same-origin" })
      .then(function (response) {
        if (!response.ok) { throw new Error("HTTP " + response.status); }
        return response.json();
      })
      .then(function (job) {
        if (bar && job[totalField]) {
          bar.max = job[totalField];
          bar.value = job[doneField];
          bar.textContent = job[doneField] + " of " + job[totalField];
        }
        if (status && status.textContent !== job.message) { status.textContent = job.message; }
        if (job.state === "finished" || job.state === "failed") {
          window.location.reload();
          return;
        }
        delay = 2000;
        window.setTimeout(poll, delay);
      })
      .catch(function () {
        delay = Math.min(delay * 2, 30000);  // the server is busy or away: ask less often
        window.setTimeout(poll, delay);
      });
  }
  window.setTimeout(poll, delay);
})();
