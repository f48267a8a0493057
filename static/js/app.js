// Small behaviours bound by data- attributes. No inline scripts: the CSP allows only our own files.
(function () {
  "use strict";

  function onReady(root) {
    root.querySelectorAll("[data-dismissable] .flash-close").forEach(function (btn) {
      btn.addEventListener("click", function () { btn.parentElement.remove(); });
    });
    root.querySelectorAll("[data-autofill-slug]").forEach(function (input) {
      var target = document.getElementById(input.dataset.autofillSlug);
      if (!target) return;
      var touched = target.value !== "";
      target.addEventListener("input", function () { touched = true; });
      input.addEventListener("input", function () {
        if (touched) return;
        target.value = input.value.toLowerCase().normalize("NFKD").replace(/[\u0300-\u036f]/g, "")
          .replace(/[^a-z0-9]+/g, "-").replace(/^-+|-+$/g, "").slice(0, 40);
      });
    });
    root.querySelectorAll("[data-confirm]").forEach(function (el) {
      el.addEventListener("submit", function (ev) {
        if (!window.confirm(el.dataset.confirm)) ev.preventDefault();
      });
    });
  }

  document.addEventListener("DOMContentLoaded", function () { onReady(document); });
  // htmx also fires htmx:load on <body> once at start-up: skip it, or every handler (confirm!) binds twice.
  document.addEventListener("htmx:load", function (ev) { if (ev.target !== document.body) onReady(ev.target); });
  // Close open <details> menus when clicking elsewhere.
  document.addEventListener("click", function (ev) {
    document.querySelectorAll("details.switcher[open], details.usermenu[open], details.dropdown[open]").forEach(function (d) {
      if (!d.contains(ev.target)) d.removeAttribute("open");
    });
  });
})();
