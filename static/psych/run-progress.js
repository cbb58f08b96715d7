// A calibration run's page while its job is queued or running: ask the server where the job
// stands every two seconds, show it (the status line is an aria-live region), and reload the
// page once the run has finished or failed, to show its estimates or its error.
(function () {
  "use strict";
  var section = document.getElementById("run-job");
  if (!section) { return; }
  var url = section.getAttribute("data-progress-url");
  var bar = document.getElementById("run-progress");
  var status = document.getElementById("run-status");
  var delay = 2000;

  function poll() {
    fetch(url, { headers: { "Accept": "application/json" }, credentials: "same-origin" })
      .then(function (response) {
        if (!response.ok) { throw new Error("HTTP " + response.status); }
        return response.json();
      })
      .then(function (job) {
        if (bar) {
          bar.max = job.max_iter;
          bar.value = job.iteration;
          bar.textContent = job.iteration + " of " + job.max_iter;
        }
        if (status.textContent !== job.message) { status.textContent = job.message; }
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
