// The import's progress page, live: polls status.json every second and moves the bar; when the
// job finishes (or its status changes) the page reloads to show the counts and the report.
(function () {
  "use strict";
  var root = document.getElementById("import-state");
  if (!root) return;
  var url = "/admin/subscribers/import/" + root.dataset.jobId + "/status.json";
  var shown = root.dataset.status;

  function set(id, value) {
    var el = document.getElementById(id);
    if (el) el.textContent = String(value);
  }

  function poll() {
    fetch(url, { credentials: "same-origin", headers: { "X-Requested-With": "fetch" } })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (s) {
        if (s) {
          if (s.finished || s.status !== shown) {
            window.location.reload();
            return;
          }
          var bar = document.getElementById("import-progress");
          if (bar) bar.value = s.percent;
          set("import-rows", s.processed_rows);
          set("import-pct", s.percent);
        }
        window.setTimeout(poll, 1000);
      })
      .catch(function () { window.setTimeout(poll, 3000); });
  }

  window.setTimeout(poll, 1000);
})();
