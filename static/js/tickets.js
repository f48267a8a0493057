// Ticket pages: keyboard navigation, row selection and bulk bar, live list updates, message iframes.
// Bound by data- attributes only; no inline scripts (the CSP allows our own files and nothing else).
(function () {
  "use strict";

  var LIST_KEY = "helpdesk:last-list";

  function typing(ev) {
    var t = ev.target;
    return t && (t.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(t.tagName));
  }

  // ---- lists: cursor, selection, bulk bar --------------------------------------------------------------
  var cursorId = null;

  function rows() { return Array.prototype.slice.call(document.querySelectorAll("[data-row]")); }

  function setCursor(row, scroll) {
    rows().forEach(function (r) { r.classList.remove("is-cursor"); r.removeAttribute("aria-current"); });
    if (!row) { cursorId = null; return; }
    row.classList.add("is-cursor");
    row.setAttribute("aria-current", "true");
    cursorId = row.id;
    if (scroll) row.scrollIntoView({ block: "nearest" });
  }

  function moveCursor(step) {
    var all = rows();
    if (!all.length) return;
    var i = all.findIndex(function (r) { return r.classList.contains("is-cursor"); });
    var next = i < 0 ? 0 : Math.min(all.length - 1, Math.max(0, i + step));
    if (i === all.length - 1 && step > 0) {
      var more = document.querySelector("[data-next-page]");
      if (more) { window.location.href = more.href; return; }
    }
    setCursor(all[next], true);
  }

  function openRow(row) { if (row && row.dataset.href) window.location.href = row.dataset.href; }

  // The ticked ticket ids; kept across live refreshes of the rows (the DOM is redrawn, this is not).
  var selected = new Set();

  function showSelection(prune) {
    var checks = document.querySelectorAll("[data-row-check]");
    var present = new Set();
    checks.forEach(function (c) {
      present.add(c.value);
      c.checked = selected.has(c.value);
      var row = c.closest("[data-row]");
      if (row) row.classList.toggle("is-selected", c.checked);
    });
    if (prune) selected.forEach(function (v) { if (!present.has(v)) selected.delete(v); });
    var bar = document.querySelector("[data-bulkbar]");
    if (bar) {
      bar.hidden = selected.size === 0;
      var count = bar.querySelector("[data-bulk-count]");
      if (count) count.textContent = String(selected.size);
    }
    var all = document.querySelector("[data-select-all]");
    if (all) {
      all.checked = checks.length > 0 && selected.size === checks.length;
      all.indeterminate = selected.size > 0 && selected.size < checks.length;
    }
  }

  function tick(box, on) {
    if (on) selected.add(box.value); else selected.delete(box.value);
    showSelection(false);
  }

  function bindList(root) {
    var boxes = root.querySelectorAll("[data-row-check]");
    boxes.forEach(function (c) {
      c.addEventListener("change", function () { tick(c, c.checked); });
    });
    var all = root.querySelector("[data-select-all]");
    if (all) all.addEventListener("change", function () {
      document.querySelectorAll("[data-row-check]").forEach(function (c) {
        if (all.checked) selected.add(c.value); else selected.delete(c.value);
      });
      showSelection(false);
    });
    root.querySelectorAll("[data-row]").forEach(function (row) {
      row.addEventListener("click", function (ev) {
        if (ev.target.closest("a, input, button, label, select")) return;
        if (ev.metaKey || ev.ctrlKey) { window.open(row.dataset.href, "_blank"); return; }
        openRow(row);
      });
    });
    if (cursorId) {
      var again = document.getElementById(cursorId);
      if (again) setCursor(again, false);
    }
    if (boxes.length || root === document) showSelection(true);
  }

  // ---- SLA chips: "due in 2h" / "overdue 35m" stay true while the list is open (same words as the server) ----
  var SLA_SOON_MS = 3600 * 1000;

  function span(ms) {
    var minutes = Math.max(1, Math.floor(ms / 60000));
    if (minutes < 60) return minutes + "m";
    if (minutes < 60 * 24) return Math.floor(minutes / 60) + "h";
    return Math.floor(minutes / (60 * 24)) + "d";
  }

  function refreshSla() {
    var now = Date.now();
    document.querySelectorAll("[data-sla-due]").forEach(function (chip) {
      var due = Date.parse(chip.dataset.slaDue);
      if (isNaN(due)) return;
      var left = due - now;
      var text = chip.querySelector("[data-sla-text]");
      if (text) text.textContent = left < 0 ? "overdue " + span(-left) : "due in " + span(left);
      chip.classList.toggle("sla-over", left < 0);
      chip.classList.toggle("sla-soon", left >= 0 && left < SLA_SOON_MS);
      chip.classList.toggle("sla-ok", left >= SLA_SOON_MS);
    });
  }

  // ---- ticket page: message iframes ----------------------------------------------------------------------
  function fitFrame(frame) {
    try {
      var doc = frame.contentDocument;
      if (!doc || !doc.documentElement) return;
      var h = Math.max(doc.documentElement.scrollHeight, doc.body ? doc.body.scrollHeight : 0);
      frame.style.height = Math.min(Math.max(h + 4, 40), 20000) + "px";
    } catch (e) { /* not same-origin: keep the CSS height */ }
  }

  function bindFrames(root) {
    root.querySelectorAll("iframe[data-autosize]").forEach(function (frame) {
      frame.addEventListener("load", function () {
        fitFrame(frame);
        try {
          var doc = frame.contentDocument;
          doc.querySelectorAll("img").forEach(function (img) { img.addEventListener("load", function () { fitFrame(frame); }); });
          if (window.ResizeObserver && doc.body) new ResizeObserver(function () { fitFrame(frame); }).observe(doc.body);
        } catch (e) { /* ignore */ }
      });
      fitFrame(frame);
    });
    root.querySelectorAll("[data-show-images]").forEach(function (link) {
      link.addEventListener("click", function () {
        var bar = link.closest("[data-remote-bar]");
        if (bar) bar.hidden = true; // the link itself loads the iframe (target = its name)
      });
    });
    root.querySelectorAll("details.msg-automatic").forEach(function (d) {
      d.addEventListener("toggle", function () { d.querySelectorAll("iframe[data-autosize]").forEach(fitFrame); });
    });
  }

  // ---- small form behaviours ---------------------------------------------------------------------------
  function bindForms(root) {
    root.querySelectorAll("[data-autosubmit]").forEach(function (el) {
      el.addEventListener("change", function () { if (el.form) el.form.requestSubmit ? el.form.requestSubmit() : el.form.submit(); });
    });
    root.querySelectorAll("[data-confirm-click]").forEach(function (btn) {
      btn.addEventListener("click", function (ev) { if (!window.confirm(btn.dataset.confirmClick)) ev.preventDefault(); });
    });
    root.querySelectorAll("[data-note-input]").forEach(function (ta) {
      ta.addEventListener("keydown", function (ev) {
        if (ev.key === "Enter" && (ev.ctrlKey || ev.metaKey) && ta.value.trim()) ta.form.submit();
      });
    });
    // Empty filters stay out of the URL, so links to a filtered list are short and readable.
    root.querySelectorAll("form[data-drop-empty]").forEach(function (form) {
      form.addEventListener("submit", function () {
        form.querySelectorAll("input, select").forEach(function (el) {
          if (el.name && !el.value) el.disabled = true;
        });
        setTimeout(function () { form.querySelectorAll(":disabled").forEach(function (el) { el.disabled = false; }); }, 0);
      });
    });
    root.querySelectorAll("[data-close-dialog]").forEach(function (btn) {
      btn.addEventListener("click", function () { var d = btn.closest("dialog"); if (d) d.close(); });
    });
  }

  function bind(root) {
    bindList(root);
    bindFrames(root);
    bindForms(root);
  }

  // ---- keyboard --------------------------------------------------------------------------------------
  var pendingG = false;

  function onKey(ev) {
    if (ev.defaultPrevented || ev.altKey || ev.ctrlKey || ev.metaKey) return;
    var dialog = document.getElementById("shortcuts");
    if (ev.key === "Escape" && dialog && dialog.open) return; // the dialog closes itself
    if (typing(ev)) {
      if (ev.key === "Escape") ev.target.blur();
      return;
    }
    var list = document.querySelector("[data-ticket-list]");
    var ticket = document.querySelector("[data-ticket-page]");
    if (pendingG) {
      pendingG = false;
      if (ev.key === "i") { var inbox = document.querySelector(".nav a[href$='/']"); window.location.href = inbox ? inbox.href : "/"; }
      return;
    }
    switch (ev.key) {
      case "?":
        if (dialog) { ev.preventDefault(); dialog.showModal(); }
        return;
      case "/":
        var search = document.querySelector("[data-search-input]");
        if (search) { ev.preventDefault(); search.focus(); search.select(); }
        return;
      case "g":
        pendingG = true;
        setTimeout(function () { pendingG = false; }, 1200);
        return;
    }
    if (list || document.querySelector("[data-row]")) {
      if (ev.key === "j" || ev.key === "ArrowDown") { ev.preventDefault(); moveCursor(1); return; }
      if (ev.key === "k" || ev.key === "ArrowUp") { ev.preventDefault(); moveCursor(-1); return; }
      var current = document.querySelector("[data-row].is-cursor");
      if ((ev.key === "Enter" || ev.key === "o") && current) { ev.preventDefault(); openRow(current); return; }
      if (ev.key === "x" && current) {
        var box = current.querySelector("[data-row-check]");
        if (box) { ev.preventDefault(); tick(box, !box.checked); }
        return;
      }
      if (ev.key === "f") {
        var menu = document.querySelector("[data-filter-menu]");
        if (menu) { ev.preventDefault(); menu.open = !menu.open; if (menu.open) { var first = menu.querySelector("input, select"); if (first) first.focus(); } }
        return;
      }
    }
    if (ticket) {
      if (ev.key === "n") {
        var note = document.querySelector("[data-note-input]");
        if (note) { ev.preventDefault(); note.focus(); note.scrollIntoView({ block: "center" }); }
        return;
      }
      if (ev.key === "s") {
        var status = document.getElementById("tf-status");
        if (status && status.value !== "solved") {
          ev.preventDefault();
          status.value = "solved";
          status.dispatchEvent(new Event("change", { bubbles: true }));
        }
        return;
      }
      if (ev.key === "u" || ev.key === "Escape") {
        var back = document.querySelector("[data-back-link]");
        if (back) { ev.preventDefault(); window.location.href = back.href; }
      }
    }
  }

  document.addEventListener("DOMContentLoaded", function () {
    if (document.querySelector("[data-ticket-list]")) {
      try { sessionStorage.setItem(LIST_KEY, window.location.pathname + window.location.search); } catch (e) { /* private mode */ }
      var first = document.querySelector("[data-row]");
      if (first && !document.querySelector("[data-row].is-cursor")) setCursor(first, false);
    }
    var back = document.querySelector("[data-back-link]");
    if (back) {
      try { var last = sessionStorage.getItem(LIST_KEY); if (last && last.charAt(0) === "/") back.href = last; } catch (e) { /* ignore */ }
    }
    bind(document);
    document.addEventListener("keydown", onKey);
    if (document.querySelector("[data-sla-due]") || document.querySelector("[data-ticket-list]")) {
      setInterval(refreshSla, 30000);
    }
  });
  // htmx swaps in fresh rows (live updates) or side panels: bind what arrived.
  document.addEventListener("htmx:load", function (ev) { if (ev.target !== document.body) bind(ev.target); });
})();
