// The "try it" form on a model version page: builds one record from the
// signature's fields and calls the predict endpoint with the page's session.
(function () {
  "use strict";

  function csrfToken() {
    // The base layout hands htmx the token; use the same one.
    try {
      const headers = JSON.parse(document.body.getAttribute("hx-headers") || "{}");
      if (headers["X-CSRFToken"]) return headers["X-CSRFToken"];
    } catch (error) { /* fall back to the cookie */ }
    const match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
    return match ? decodeURIComponent(match[1]) : "";
  }

  function readValue(input, column) {
    const raw = input.value.trim();
    if (raw === "") return null;
    if (column.dtype === "double") { const n = Number(raw); return Number.isNaN(n) ? raw : n; }
    if (column.dtype === "long") { const n = Number(raw); return Number.isInteger(n) ? n : raw; }
    if (column.dtype === "boolean") return raw === "true";
    return raw;
  }

  function init() {
    const form = document.querySelector("[data-try-form]");
    const configNode = document.getElementById("try-config");
    if (!form || !configNode) return;
    const config = JSON.parse(configNode.textContent);
    const out = document.getElementById("try-result");
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const record = {};
      for (const column of config.columns) {
        const input = form.elements.namedItem(column.name);
        if (input) record[column.name] = readValue(input, column);
      }
      out.hidden = false;
      out.textContent = "…";
      try {
        const response = await fetch(config.url, {
          method: "POST",
          credentials: "same-origin",
          headers: { "Content-Type": "application/json", "X-CSRFToken": csrfToken() },
          body: JSON.stringify({ records: [record] }),
        });
        const body = await response.json();
        out.dataset.status = String(response.status);
        out.textContent = (response.ok ? "" : `HTTP ${response.status}\n`) + JSON.stringify(body, null, 2);
      } catch (error) {
        out.dataset.status = "error";
        out.textContent = `The request failed: ${error}`;
      }
    });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
