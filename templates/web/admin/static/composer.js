// The composer, enhanced: forms marked data-live are sent with fetch, then the outline, the QA
// panel, the send panel and the library are swapped in from the answer and the preview reloads.
// Without this script every form still works as a plain POST with a redirect back.
(function () {
  "use strict";
  var composer = document.getElementById("composer");
  if (!composer) return;
  var REGIONS = ["outline", "qa", "send-panel", "library", "issue-status"];
  var live = document.getElementById("live-status");
  var frame = document.getElementById("preview-frame");
  var text = document.getElementById("preview-text");
  var busy = false;

  function csrf() {
    var field = document.querySelector('input[name="csrf_token"]');
    return field ? field.value : "";
  }

  function say(message, isError) {
    live.textContent = message || "";
    live.className = "live " + (message ? (isError ? "error" : "notice") : "");
    live.setAttribute("role", isError ? "alert" : "status");
  }

  function swap(html, regions) {
    var doc = new DOMParser().parseFromString(html, "text/html");
    regions.forEach(function (id) {
      var fresh = doc.getElementById(id);
      var old = document.getElementById(id);
      if (fresh && old) old.replaceWith(document.importNode(fresh, true));
    });
    var flash = doc.querySelector("main > p.notice, main > p.error");
    if (flash) say(flash.textContent, flash.classList.contains("error"));
  }

  function restoreFocus(id) {
    if (!id) return;
    var target = document.getElementById(id);
    var m = /^item-(\d+)-(up|down)$/.exec(id) || /^sec-(\d+)-(up|down)$/.exec(id);
    if (!target && m) {
      var kind = id.indexOf("item-") === 0 ? "item-" : "sec-";
      target = document.getElementById(kind + m[1] + "-" + (m[2] === "up" ? "down" : "up")) ||
        document.getElementById(kind === "item-" ? "item-" + m[1] : "sec-" + m[1] + "-h");
      if (target && !target.matches("button, a, input, select, textarea")) target.tabIndex = -1;
    }
    if (target) target.focus();
  }

  function refreshPreview() {
    var version = Number(frame.dataset.version || "0") + 1;
    frame.dataset.version = String(version);
    frame.src = frame.dataset.src + "?v=" + version;
    if (!text.hidden) loadText();
  }

  function loadText() {
    fetch(text.dataset.src + "?v=" + Date.now(), { credentials: "same-origin" })
      .then(function (r) { return r.text(); })
      .then(function (body) { text.textContent = body; text.dataset.loaded = "true"; });
  }

  frame.addEventListener("load", function () { frame.dataset.loaded = frame.dataset.version; });

  // SpamAssassin takes seconds: the page comes without it, then this asks for the panel scored
  var spamTurn = 0;
  function scoreSpam() {
    var pending = document.querySelector('#spam[data-state="pending"] #spam-run');
    if (!pending) return;
    var turn = ++spamTurn;  // an answer to an older outline must not replace a newer panel
    pending.textContent = "Scoring…";
    fetch(pending.getAttribute("href").split("#")[0], { credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) {
        if (html && !busy && turn === spamTurn) swap(html, ["qa", "send-panel"]);
      })
      .catch(function () { pending.textContent = "Score it now"; });
  }
  scoreSpam();

  var inflight = Promise.resolve();  // the change being saved, if any
  function send(url, body, focusId) {
    if (busy) return Promise.resolve();
    busy = true;
    composer.setAttribute("aria-busy", "true");
    inflight = fetch(url, {
      method: "POST",
      body: body,
      credentials: "same-origin",
      headers: { "X-Requested-With": "fetch", "X-CSRF-Token": csrf() },
    })
      .then(function (response) {
        if (!response.ok) {
          return response.json().then(
            function (data) { say(data.error || "That did not work.", true); },
            function () { say("That did not work (" + response.status + ").", true); }
          );
        }
        return response.text().then(function (html) {
          swap(html, REGIONS);
          restoreFocus(focusId);
          refreshPreview();
          scoreSpam();
        });
      })
      .catch(function () { say("The server could not be reached; nothing was changed.", true); })
      .then(function () { busy = false; composer.removeAttribute("aria-busy"); });
    return inflight;
  }

  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (form.matches("form[data-live-get]")) {
      event.preventDefault();
      var query = new URLSearchParams(new FormData(form)).toString();
      fetch(form.action + "?" + query, { credentials: "same-origin" })
        .then(function (r) { return r.text(); })
        .then(function (html) { swap(html, ["library-results"]); });
      return;
    }
    if (!form.matches("form[data-live]")) {
      // a page-changing form (publish, send, schedule...) sent while a change is still being
      // saved would act on the issue without it: it goes once the save is done
      if (busy) {
        event.preventDefault();
        var action = form.getAttribute("action");
        inflight.then(function () {
          // the save may have redrawn the panel: submit the form as it is now, if still there
          var fresh = document.querySelector('form[action="' + action + '"]');
          if (fresh) fresh.requestSubmit();
        });
      }
      return;
    }
    event.preventDefault();
    if (form.dataset.confirm && !window.confirm(form.dataset.confirm)) return;
    var active = document.activeElement;
    send(form.action, new FormData(form), active && active.id);
  });

  document.addEventListener("change", function (event) {
    var form = event.target.form;
    if (form && form.matches("form[data-autosave]")) {
      send(form.action, new FormData(form), null);
    }
  });

  // preview width and format
  document.getElementById("preview").addEventListener("click", function (event) {
    var button = event.target.closest("button[data-width], button[data-format]");
    if (!button) return;
    var group = button.parentElement.querySelectorAll("button");
    group.forEach(function (b) { b.setAttribute("aria-pressed", b === button ? "true" : "false"); });
    if (button.dataset.width) frame.classList.toggle("mobile", button.dataset.width === "mobile");
    if (button.dataset.format) {
      var html = button.dataset.format === "html";
      frame.hidden = !html;
      text.hidden = html;
      if (!html) loadText();
    }
  });

  // drag and drop of sections, by their header
  var draggedSection = null;
  function sectionDropPoint(y) {
    var sections = Array.prototype.filter.call(
      document.querySelectorAll("#outline > section.outline-section"),
      function (s) { return s !== draggedSection; });
    for (var i = 0; i < sections.length; i++) {
      var box = sections[i].getBoundingClientRect();
      if (y < box.top + box.height / 2) return { position: i, before: sections[i] };
    }
    return { position: sections.length, before: null };
  }

  // drag and drop of items, within a section or into another one
  var dragged = null;
  function clearMarks() {
    document.querySelectorAll(".drop-before").forEach(function (el) { el.classList.remove("drop-before"); });
    document.querySelectorAll(".drop-into").forEach(function (el) { el.classList.remove("drop-into"); });
  }
  function dropPoint(list, y) {
    var items = Array.prototype.filter.call(
      list.querySelectorAll(":scope > li[data-item-id]"), function (li) { return li !== dragged; });
    for (var i = 0; i < items.length; i++) {
      var box = items[i].getBoundingClientRect();
      if (y < box.top + box.height / 2) return { position: i, before: items[i] };
    }
    return { position: items.length, before: null };
  }
  document.addEventListener("dragstart", function (event) {
    var head = event.target.closest && event.target.closest("header[data-drag-section]");
    if (head) {
      draggedSection = head.parentElement;
      draggedSection.classList.add("dragging");
      event.dataTransfer.effectAllowed = "move";
      event.dataTransfer.setData("text/plain", "section " + head.dataset.dragSection);
      return;
    }
    var li = event.target.closest && event.target.closest("li[data-item-id]");
    if (!li) return;
    dragged = li;
    li.classList.add("dragging");
    event.dataTransfer.effectAllowed = "move";
    event.dataTransfer.setData("text/plain", li.dataset.itemId);
  });
  document.addEventListener("dragend", function () {
    if (dragged) dragged.classList.remove("dragging");
    if (draggedSection) draggedSection.classList.remove("dragging");
    dragged = null;
    draggedSection = null;
    clearMarks();
  });
  document.addEventListener("dragover", function (event) {
    if (draggedSection) {
      if (!(event.target.closest && event.target.closest("#outline"))) return;
      event.preventDefault();
      clearMarks();
      var spot = sectionDropPoint(event.clientY);
      if (spot.before) spot.before.classList.add("drop-before");
      return;
    }
    if (!dragged) return;
    var list = event.target.closest && event.target.closest("ol.items");
    if (!list) return;
    event.preventDefault();
    clearMarks();
    var point = dropPoint(list, event.clientY);
    if (point.before) point.before.classList.add("drop-before"); else list.classList.add("drop-into");
  });
  document.addEventListener("drop", function (event) {
    if (draggedSection) {
      if (!(event.target.closest && event.target.closest("#outline"))) return;
      event.preventDefault();
      var spot = sectionDropPoint(event.clientY);
      var form = new FormData();
      form.append("csrf_token", csrf());
      form.append("position", String(spot.position));
      var sid = draggedSection.dataset.sectionId;
      clearMarks();
      send("/admin/sections/" + sid + "/move", form, "sec-" + sid + "-h");
      return;
    }
    if (!dragged) return;
    var list = event.target.closest && event.target.closest("ol.items");
    if (!list) return;
    event.preventDefault();
    var point = dropPoint(list, event.clientY);
    var body = new FormData();
    body.append("csrf_token", csrf());
    body.append("position", String(point.position));
    body.append("section_id", list.dataset.sectionId);
    var id = dragged.dataset.itemId;
    clearMarks();
    send("/admin/items/" + id + "/move", body, "item-" + id);
  });
})();
