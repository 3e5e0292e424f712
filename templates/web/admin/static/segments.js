// The segment editor's live count: post the form's rows to /admin/segments/count while the
// editor types (debounced) and show the number; without this script the Count button does it.
(function () {
  "use strict";
  var form = document.getElementById("segment-form");
  var out = document.getElementById("live-count");
  if (!form || !out) { return; }
  var timer = null;
  var asked = 0;

  function csrf() {
    var field = form.querySelector('input[name="csrf_token"]');
    return field ? field.value : "";
  }

  function count() {
    var mine = ++asked;
    var body = new FormData(form);
    body.delete("action");
    fetch(form.dataset.countUrl, {
      method: "POST",
      body: body,
      credentials: "same-origin",
      headers: { "X-Requested-With": "fetch", "X-CSRF-Token": csrf() }
    }).then(function (r) {
      return r.json().then(function (data) { return { ok: r.ok, data: data }; });
    }).then(function (res) {
      if (mine !== asked) { return; }
      out.textContent = "";
      if (res.ok) {
        var strong = document.createElement("strong");
        strong.textContent = res.data.count.toLocaleString("en");
        out.appendChild(strong);
        out.appendChild(document.createTextNode(res.data.count === 1 ? " subscriber now." : " subscribers now."));
      } else {
        out.textContent = "Not counted: " + (res.data.error || "the rules are not complete");
      }
    }).catch(function () {
      if (mine === asked) { out.textContent = "Not counted (no answer)."; }
    });
  }

  function later() {
    clearTimeout(timer);
    timer = setTimeout(count, 300);
  }

  // an engagement row's second field names a newsletter: offer their names
  function offerNewsletters(kind) {
    var row = kind.closest(".rule-row");
    var key = row && row.querySelector('input[name="key"]');
    if (!key) { return; }
    if (kind.value === "engagement") {
      key.setAttribute("list", "newsletter-names");
      key.placeholder = "a newsletter";
    } else {
      key.removeAttribute("list");
      key.placeholder = "city";
    }
  }
  form.querySelectorAll('select[name="kind"]').forEach(function (kind) {
    kind.addEventListener("change", function () { offerNewsletters(kind); });
  });

  form.addEventListener("input", later);
  form.addEventListener("change", later);
})();
