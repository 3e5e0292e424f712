// The sending view, live: polls status.json once a second while the issue is preparing, sending or paused
// and updates the figures; when the status itself changes, the page reloads for the right buttons.
(function () {
  "use strict";
  var root = document.getElementById("send-state");
  if (!root) return;
  var url = "/admin/issues/" + root.dataset.issueId + "/status.json";
  var shown = root.dataset.status;

  function set(id, value) {
    var el = document.getElementById(id);
    if (el) el.textContent = String(value);
  }

  function eta(seconds) {
    if (seconds === null) return "–";
    if (seconds >= 3600) return Math.floor(seconds / 3600) + " h " + Math.floor((seconds % 3600) / 60) + " min";
    return Math.round(seconds) + " s";
  }

  function update(s) {
    var c = s.counts;
    set("count-sent", c.sent);
    set("count-failed", c.failed);
    set("count-pending", c.pending + c.sending);
    set("count-skipped", c.skipped + c.cancelled);
    set("state-rate", s.rate);
    set("state-held", s.held ? s.held.toLocaleString("en") + " wait for the subject test's winner" : "");
    set("state-eta", eta(s.eta_seconds));
    (s.waves || []).forEach(function (w, i) {
      set("wave-" + i + "-sent", w.sent.toLocaleString("en"));
      set("wave-" + i + "-waiting", w.waiting.toLocaleString("en"));
      var state = document.getElementById("wave-" + i + "-state");
      if (state && !w.waiting && state.textContent !== "done") {
        state.textContent = "";
        var done = document.createElement("span");
        done.className = "status status-sent";
        done.textContent = "done";
        state.appendChild(done);
      }
    });
    set("state-done", s.done);
    set("state-total", s.total);
    set("state-pct", s.total ? Math.round((100 * s.done) / s.total) : 0);
    set("state-reason", s.reason || "");
    if (s.subject_test) set("subject-test-headline", s.subject_test.headline);
    var notice = document.getElementById("worker-notice");
    if (notice) {
      notice.textContent = s.worker_notice || "";
      notice.hidden = !s.worker_notice;
    }
    var bar = document.getElementById("state-progress");
    bar.max = s.total || 1;
    bar.value = s.done;
    var list = document.getElementById("last-errors");
    list.textContent = "";
    (s.last_errors.length ? s.last_errors : [null]).forEach(function (e) {
      var li = document.createElement("li");
      if (e) {
        var who = document.createElement("strong");
        who.textContent = e.email;
        li.appendChild(who);
        li.appendChild(document.createTextNode(" (" + e.status + "): " + e.response));
      } else {
        li.className = "meta";
        li.textContent = "None.";
      }
      list.appendChild(li);
    });
  }

  function poll() {
    fetch(url, { credentials: "same-origin", headers: { "X-Requested-With": "fetch" } })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (s) {
        if (!s) return;
        update(s);
        var test = document.getElementById("subject-test");
        var picked = s.subject_test ? String(s.subject_test.winner) : "null";
        if (s.status !== shown || (test && picked !== test.dataset.winner)) {
          window.location.reload();
          return;
        }
        if (s.status === "preparing" || s.status === "sending" || s.status === "paused" || s.status === "scheduled") {
          window.setTimeout(poll, 1000);
        }
      })
      .catch(function () { window.setTimeout(poll, 3000); });
  }

  document.addEventListener("submit", function (event) {
    var message = event.target.dataset.confirm;
    if (message && !window.confirm(message)) event.preventDefault();
  });

  if (shown === "preparing" || shown === "sending" || shown === "paused" || shown === "scheduled") window.setTimeout(poll, 1000);
})();
