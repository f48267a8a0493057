// The ticket composer: Reply / Reply all / Forward / Note tabs (keys r, a, f, n), canned answers, file checks.
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
      names.textContent = Array.prototype.map.call(files.files, function (f) { return f.name; }).join(", ");
    });
  }

  function start() {
    var root = document.querySelector("[data-composer]");
    if (root) init(root);
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
