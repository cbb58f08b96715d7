// A report PDF's page while its job is queued or running: ask the server where the job stands
// every two seconds, show it (the status line is an aria-live region), and reload the page once
// the PDF is ready or failed, to show the download link or the error.
(function () {
  "use strict";
  var section = document.getElementById("pdf-job");
  if (!section) { return; }
  var url = section.getAttribute("data-progress-url");
  var bar = document.getElementById("pdf-progress");
  var status = document.getElementById("pdf-status");
  var delay = 2000;

  function poll() {
    fetch(url, { headers: { "Accept": "application/json" }, credentials: "same-origin" })
      .then(function (response) {
        if (!response.ok) { throw new Error("HTTP " + response.status); }
        return response.json();
      })
      .then(function (job) {
        if (bar && job.total) {
          bar.max = job.total;
          bar.value = job.done;
          bar.textContent = job.done + " of " + job.total;
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
