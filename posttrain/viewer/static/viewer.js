// posttrain viewer: a little vanilla JS. Fragments come from the server already escaped.
"use strict";
function loadLazy(root) {
  root.querySelectorAll(".lazy[data-src]").forEach(function (el) {
    fetch(el.getAttribute("data-src"), { credentials: "same-origin" })
      .then(function (r) { return r.text().then(function (t) { return [r.ok, t]; }); })
      .then(function (res) {
        if (res[0]) { el.innerHTML = res[1]; el.classList.add("loaded"); }
        else { el.textContent = "could not load"; }
      })
      .catch(function () { el.textContent = "could not load"; });
    el.removeAttribute("data-src");
  });
}
document.addEventListener("DOMContentLoaded", function () {
  loadLazy(document);
  document.body.addEventListener("click", function (ev) {
    var button = ev.target.closest("[data-toggle]");
    if (!button) return;
    var scope = button.closest("[data-toggle-scope]");
    var raw = scope.classList.toggle("show-raw");
    button.textContent = raw ? "rendered" : "raw";
  });
  document.querySelectorAll("form.genform").forEach(function (form) {
    form.addEventListener("submit", function (ev) {
      ev.preventDefault();
      var target = document.querySelector(form.getAttribute("data-target"));
      target.textContent = "generating…";
      target.classList.remove("done");
      fetch(form.action, {
        method: "POST", credentials: "same-origin",
        headers: { "Content-Type": "application/x-www-form-urlencoded" },
        body: new URLSearchParams(new FormData(form)).toString()
      }).then(function (r) { return r.text(); }).then(function (t) {
        target.innerHTML = t; target.classList.add("done");
      }).catch(function (e) { target.textContent = "failed: " + e; });
    });
  });
});
