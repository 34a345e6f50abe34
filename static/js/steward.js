// Small progressive enhancements shared by every page. Each page works without them.
(function () {
  "use strict";

  function onReady(fn) {
    if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", fn);
    else fn();
  }

  // Copy a secret (the new API token) to the clipboard.
  function setupCopy() {
    document.querySelectorAll("[data-copy-target]").forEach(function (button) {
      button.addEventListener("click", function () {
        var source = document.getElementById(button.dataset.copyTarget);
        var status = button.parentElement.querySelector("[data-copy-status]");
        var text = source ? source.textContent.trim() : "";
        function done(message) { if (status) status.textContent = message; }
        if (navigator.clipboard && window.isSecureContext) {
          navigator.clipboard.writeText(text).then(
            function () { done("Copied."); },
            function () { selectText(source); done("Selected: press Ctrl+C to copy."); }
          );
        } else {
          selectText(source);
          done("Selected: press Ctrl+C to copy.");
        }
      });
    });
  }

  // The new token arrives in the answer to the form's POST. Replacing the history entry makes a
  // reload ask for the page again (GET) instead of posting the form twice and making a second token.
  function forgetTokenPost() {
    if (document.getElementById("new-token") && window.history && history.replaceState) {
      history.replaceState(null, "", window.location.href);
    }
  }

  function selectText(element) {
    if (!element) return;
    var range = document.createRange();
    range.selectNodeContents(element);
    var selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
  }

  // Runs table: select all, count the selection, enable "Compare" for 2..max runs.
  function setupRunSelection() {
    var form = document.getElementById("compare-form");
    if (!form) return;
    var max = parseInt(form.dataset.compareMax || "20", 10);
    var boxes = function () { return Array.prototype.slice.call(form.querySelectorAll("input[name=runs]")); };
    var all = form.querySelector("[data-select-all]");
    var button = form.querySelector("[data-compare-button]");
    var count = form.querySelector("[data-selected-count]");
    function update() {
      var n = boxes().filter(function (b) { return b.checked; }).length;
      if (count) count.textContent = String(n);
      if (button) button.disabled = n < 2 || n > max;
      if (all) all.checked = n > 0 && n === boxes().length;
    }
    form.addEventListener("change", function (event) {
      if (event.target === all) {
        boxes().forEach(function (b) { b.checked = all.checked; });
      }
      update();
    });
    update();
  }

  // A select that applies itself (rows per page, leaderboard metric).
  function setupAutosubmit() {
    document.querySelectorAll("select[data-autosubmit]").forEach(function (select) {
      select.addEventListener("change", function () { select.form.submit(); });
    });
  }

  // Artifact tree: a folder button loads its children once; a second click closes it.
  function setupTree() {
    document.body.addEventListener("htmx:beforeRequest", function (event) {
      var toggle = event.detail.elt;
      if (!toggle || !toggle.hasAttribute || !toggle.hasAttribute("data-tree-toggle")) return;
      var item = toggle.closest("li");
      if (item.classList.contains("open")) {
        event.preventDefault();
        item.classList.remove("open");
        item.querySelector(".tree-children").innerHTML = "";
      } else {
        item.classList.add("open");
      }
    });
    document.body.addEventListener("click", function (event) {
      var link = event.target.closest && event.target.closest("a[data-artifact-path]");
      if (!link) return;
      document.querySelectorAll("a[data-artifact-path].selected").forEach(function (a) { a.classList.remove("selected"); });
      link.classList.add("selected");
    });
  }

  // Compare page: show only the rows whose values differ.
  function setupDiffOnly() {
    var box = document.querySelector("[data-diff-only]");
    if (!box) return;
    box.addEventListener("change", function () {
      document.querySelectorAll("#compare-params tr.same, #compare-metrics tr.same").forEach(function (row) {
        row.hidden = box.checked;
      });
    });
  }

  // Runs table: the column the table is sorted by is scrolled into view (past the sticky name column).
  function scrollToSorted() {
    var link = document.querySelector("#runs-table thead a.sorted");
    if (!link) return;
    var cell = link.closest("th");
    var wrap = cell.closest(".table-wrap");
    var sticky = document.querySelector("#runs-table thead th:nth-child(2)");
    if (!wrap || !sticky || cell === sticky) return;
    var hidden = sticky.offsetLeft + sticky.offsetWidth;
    var left = cell.offsetLeft - hidden;
    if (left < wrap.scrollLeft || cell.offsetLeft + cell.offsetWidth > wrap.scrollLeft + wrap.clientWidth) {
      wrap.scrollLeft = Math.max(0, left - 24);
    }
  }

  onReady(function () {
    scrollToSorted();
    setupCopy();
    forgetTokenPost();
    setupRunSelection();
    setupAutosubmit();
    setupTree();
    setupDiffOnly();
  });
})();
