// The ticket composer: Reply / Reply all / Forward / Note tabs (keys r, a, f, n), canned answers, file checks,
// and sending without losing the chosen files when the server answers with an error or a collision warning.
// Bound by data- attributes only; no inline scripts or styles (strict CSP).
(function () {
  "use strict";

  function typing(ev) {
    var t = ev.target;
    return t && (t.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(t.tagName));
  }

  function init(root) {
    var tabs = root.querySelectorAll("[data-composer-tab]");
    var reply = root.querySelector('[data-composer-panel="reply"]');
    var note = root.querySelector('[data-composer-panel="note"]');
    var kind = root.querySelector("[data-composer-kind]");
    var to = root.querySelector("[data-composer-to]");
    var cc = root.querySelector("[data-composer-cc]");
    var edited = { to: false, cc: false };
    if (to) to.addEventListener("input", function () { edited.to = true; });
    if (cc) cc.addEventListener("input", function () { edited.cc = true; });

    function show(name, focus) {
      var isNote = name === "note" || !reply;
      tabs.forEach(function (t) {
        var on = t.dataset.composerTab === (isNote ? "note" : name);
        t.classList.toggle("is-active", on);
        t.setAttribute("aria-selected", on ? "true" : "false");
      });
      if (reply) reply.hidden = isNote;
      if (note) note.hidden = !isNote;
      if (!isNote && kind) {
        var previous = kind.value;
        kind.value = name;
        if (previous !== name) {
          // Recipients follow the tab until the agent types their own.
          if (to && !edited.to) to.value = name === "forward" ? "" : root.dataset.prefillTo || "";
          if (cc && !edited.cc) cc.value = name === "reply_all" ? root.dataset.prefillCc || "" : "";
        }
      }
      if (focus) {
        var target = isNote ? note.querySelector("textarea")
          : (name === "forward" && to ? to : reply.querySelector("[data-composer-body]"));
        if (target) { target.focus(); root.scrollIntoView({ block: "nearest" }); }
      }
    }

    tabs.forEach(function (t) {
      t.addEventListener("click", function () { show(t.dataset.composerTab, true); });
    });
    show(root.dataset.start || "reply", false);

    // Keys r, a, f, n (registered before tickets.js, which leaves handled keys alone).
    document.addEventListener("keydown", function (ev) {
      if (ev.defaultPrevented || ev.altKey || ev.ctrlKey || ev.metaKey || typing(ev)) return;
      var tab = root.querySelector('[data-composer-tab][data-key="' + ev.key + '"]');
      if (!tab) return;
      ev.preventDefault();
      show(tab.dataset.composerTab, true);
    });

    if (!reply) return;
    var body = reply.querySelector("[data-composer-body]");
    body.addEventListener("keydown", function (ev) {
      if (ev.key === "Enter" && (ev.ctrlKey || ev.metaKey) && body.value.trim()) {
        ev.preventDefault();
        reply.requestSubmit ? reply.requestSubmit() : reply.submit();
      }
    });

    bindSending(reply);

    // Canned answers: the list comes from htmx; choosing one inserts its rendered body and attaches its files.
    var list = reply.querySelector("[data-canned-files]");
    var results = reply.querySelector("#canned-results");
    var search = reply.querySelector("[data-canned-search]");
    function addFile(file) {
      if (list.querySelector('input[value="' + file.id + '"]')) return;
      var li = document.createElement("li");
      li.className = "cf-file";
      var input = document.createElement("input");
      input.type = "hidden"; input.name = "canned_files"; input.value = String(file.id);
      var size = document.createElement("span");
      size.className = "muted small"; size.textContent = " " + file.size + " ";
      var remove = document.createElement("button");
      remove.type = "button"; remove.className = "btn-link"; remove.textContent = "×";
      remove.setAttribute("data-remove-file", ""); remove.setAttribute("aria-label", "Remove " + file.filename);
      li.append(input, document.createTextNode(file.filename), size, remove);
      list.appendChild(li);
    }
    function insert(text) {
      var start = body.selectionStart || 0, end = body.selectionEnd || 0;
      if (document.activeElement !== body && !body.value.trim()) { start = 0; end = body.value.length; }
      body.value = body.value.slice(0, start) + text + body.value.slice(end);
      body.focus();
      body.selectionStart = body.selectionEnd = start + text.length;
    }
    reply.addEventListener("click", function (ev) {
      var item = ev.target.closest("[data-canned-insert]");
      if (item) {
        ev.preventDefault();
        fetch(item.dataset.cannedInsert, { headers: { Accept: "application/json" }, credentials: "same-origin" })
          .then(function (r) { if (!r.ok) throw new Error(r.status); return r.json(); })
          .then(function (data) {
            insert(data.body);
            data.files.forEach(addFile);
            if (results) { results.textContent = ""; results.hidden = true; }
            if (search) search.value = "";
          })
          .catch(function () { if (results) results.textContent = "That answer could not be loaded. Try again."; });
        return;
      }
      var remove = ev.target.closest("[data-remove-file]");
      if (remove) { ev.preventDefault(); remove.closest("li").remove(); }
    });
    if (search && results) {
      search.addEventListener("keydown", function (ev) {
        if (ev.key === "Enter") { // never submit the reply from the search box; take the first match
          ev.preventDefault();
          var first = results.querySelector("[data-canned-insert]");
          if (first) first.click();
        } else if (ev.key === "Escape") {
          results.hidden = true;
        }
      });
      // The list shows while the agent searches; it closes when they leave it (a late answer stays closed).
      search.addEventListener("focus", function () { results.hidden = false; });
      results.addEventListener("mousedown", function (ev) { ev.preventDefault(); }); // keep focus: Safari
      search.addEventListener("input", function () { results.hidden = false; });
      reply.querySelector(".canned-picker").addEventListener("focusout", function (ev) {
        if (!ev.relatedTarget || !ev.currentTarget.contains(ev.relatedTarget)) results.hidden = true;
      });
    }

    // Files: name them, and refuse ones over the limit before the upload starts.
    var files = reply.querySelector('input[type="file"][name="files"]');
    var names = reply.querySelector("[data-file-names]");
    var error = reply.querySelector("[data-file-error]");
    if (files) files.addEventListener("change", function () {
      var max = parseInt(files.dataset.maxBytes, 10) || 0;
      var big = Array.prototype.filter.call(files.files, function (f) { return max && f.size > max; });
      if (big.length) {
        error.textContent = "“" + big[0].name + "” is too large; files can be at most " + files.dataset.maxLabel + ".";
        error.hidden = false;
        files.value = "";
      } else {
        error.hidden = true;
      }
      showFiles();
    });
    // Each chosen file as a pill with its size and a remove button (the input keeps the rest).
    function showFiles() {
      names.textContent = "";
      Array.prototype.forEach.call(files.files, function (file, index) {
        var pill = document.createElement("span");
        pill.className = "cf-file";
        // Size and × are drawn by CSS from attributes: the pill's text stays the file's name.
        var size = document.createElement("span");
        size.className = "cf-size"; size.setAttribute("data-size", humanSize(file.size));
        size.setAttribute("aria-hidden", "true");
        var remove = document.createElement("button");
        remove.type = "button"; remove.className = "btn-link cf-remove";
        remove.setAttribute("aria-label", "Remove " + file.name);
        remove.addEventListener("click", function () {
          var keep = new DataTransfer();
          Array.prototype.forEach.call(files.files, function (f, i) { if (i !== index) keep.items.add(f); });
          files.files = keep.files;
          showFiles();
        });
        pill.append(document.createTextNode(file.name), size, remove);
        names.appendChild(pill);
      });
    }
    if (files && files.files.length) showFiles(); // kept by the browser (back/forward)
  }

  function humanSize(bytes) {
    if (bytes < 1024) return bytes + " bytes";
    if (bytes < 1024 * 1024) return (bytes / 1024).toFixed(1) + " KB";
    return (bytes / (1024 * 1024)).toFixed(1) + " MB";
  }

  // ---- sending (htmx posts the form; without JS it posts plainly) -------------------------------------------
  // An error (400) or the collision warning (409) swaps in only the alerts and the regions the server marks
  // hx-swap-oob (field errors, `seen`, the thread): the file input is never replaced, so its files stay chosen.
  function bindSending(form) {
    var leaving = false;
    function ours(ev) { // the form's own request, not the preview or the canned search inside it
      var d = ev.detail || {}; // d.elt is where the event fired (the swap target for swap events)
      return ((d.requestConfig && d.requestConfig.elt) || d.elt) === form;
    }
    function buttons() { return form.querySelectorAll('button[type="submit"]'); }

    form.addEventListener("htmx:beforeRequest", function (ev) {
      if (!ours(ev)) return;
      var trigger = ev.detail.requestConfig && ev.detail.requestConfig.triggeringEvent;
      var clicked = trigger && trigger.submitter;
      form.setAttribute("aria-busy", "true");
      buttons().forEach(function (b) { b.disabled = true; });
      if (clicked) clicked.classList.add("is-busy");
    });
    form.addEventListener("htmx:afterRequest", function (ev) {
      if (!ours(ev) || leaving) return;
      form.removeAttribute("aria-busy");
      buttons().forEach(function (b) { b.disabled = false; b.classList.remove("is-busy"); });
    });
    form.addEventListener("htmx:beforeSwap", function (ev) {
      if (!ours(ev)) return;
      var status = ev.detail.xhr.status;
      if (status === 400 || status === 409) { ev.detail.shouldSwap = true; ev.detail.isError = false; }
    });
    form.addEventListener("htmx:afterSwap", function (ev) {
      if (!ours(ev) || ev.target.id !== "composer-alerts") return; // once, after the out-of-band swaps
      var first = markErrors(form);
      var alerts = document.getElementById("composer-alerts");
      if (first && !form.querySelector("[data-send-anyway]")) first.focus();
      else if (alerts && alerts.firstElementChild) alerts.scrollIntoView({ block: "center", behavior: "smooth" });
    });
    // No answer, or one we cannot show (a crash, a lost session): say so; the draft and files stay.
    function failed(ev, text) {
      if (!ours(ev)) return;
      var alerts = document.getElementById("composer-alerts");
      if (!alerts) return;
      var p = document.createElement("p");
      p.className = "alert alert-error composer-error";
      p.setAttribute("role", "alert");
      p.textContent = text;
      alerts.replaceChildren(p);
    }
    form.addEventListener("htmx:sendError", function (ev) {
      failed(ev, "Not sent: the server could not be reached. Check your connection and send again.");
    });
    form.addEventListener("htmx:responseError", function (ev) {
      failed(ev, "Not sent: something went wrong on our side (" + ev.detail.xhr.status + "). Send again, or reload the page.");
    });
    // Sent: load the ticket at the new message, as the redirect of a plain post does.
    form.addEventListener("htmx:beforeOnLoad", function (ev) {
      if (!ours(ev)) return;
      var to = ev.detail.xhr.getResponseHeader("HX-Redirect");
      if (!to || ev.detail.xhr.status >= 300) return;
      ev.preventDefault();
      leaving = true;
      go(to);
    });
  }

  // Errors live in `.field-error` slots named after their control ("id_to-error" for "id_to"); after a swap
  // the controls follow them (aria-invalid, the row's red border). Returns the first control in error.
  function markErrors(form) {
    var first = null;
    form.querySelectorAll(".field-error[id]").forEach(function (slot) {
      var bad = slot.textContent.trim() !== "";
      var controls = Array.prototype.slice.call(form.querySelectorAll('[aria-describedby~="' + slot.id + '"]'));
      var named = document.getElementById(slot.id.replace(/-error$/, ""));
      if (named && controls.indexOf(named) < 0) controls.push(named);
      controls.forEach(function (control) {
        if (bad) control.setAttribute("aria-invalid", "true"); else control.removeAttribute("aria-invalid");
        var row = control.closest(".cf-row");
        if (row) row.classList.toggle("has-error", bad);
        if (bad && !first && control.type !== "file") first = control;
      });
    });
    return first;
  }

  function go(url) {
    var next = new URL(url, window.location.href);
    if (next.pathname === window.location.pathname && next.search === window.location.search) {
      // Same page: setting location to a new #hash would only scroll, and the thread must show the reply.
      history.replaceState(history.state, "", next.href);
      history.scrollRestoration = "manual"; // land on the new message, not where the page was
      window.location.reload();
    } else {
      window.location.assign(next.href);
    }
  }

  function start() {
    if (history.scrollRestoration === "manual") { // set by go() for the load after sending; restore later ones
      window.addEventListener("load", function () { setTimeout(function () { history.scrollRestoration = "auto"; }, 0); });
    }
    var root = document.querySelector("[data-composer]");
    if (root) init(root);
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
