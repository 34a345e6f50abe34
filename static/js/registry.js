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

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function formatNumber(value) {
    return typeof value === "number" ? String(Number(value.toPrecision(6))) : String(value);
  }

  // Predictions (and, for a classifier, each class's probability) as a table, one row per record.
  function resultTable(body) {
    const predictions = (body && body.predictions) || [];
    const classes = (body && body.classes) || [];
    const probabilities = (body && body.probabilities) || null;
    const table = el("table", "data try-table");
    const head = el("tr");
    head.appendChild(el("th", "num", "Row"));
    head.appendChild(el("th", "", "Prediction"));
    if (probabilities) classes.forEach((c) => head.appendChild(el("th", "num", `P(${c})`)));
    table.appendChild(el("thead")).appendChild(head);
    const rows = table.appendChild(el("tbody"));
    predictions.forEach((prediction, i) => {
      const row = el("tr");
      row.appendChild(el("td", "num", String(i + 1)));
      row.appendChild(el("td", "prediction", formatNumber(prediction)));
      if (probabilities && probabilities[i]) {
        const best = Math.max(...probabilities[i]);
        probabilities[i].forEach((p) => row.appendChild(el("td", p === best ? "num best-cell" : "num", p.toFixed(4))));
      }
      rows.appendChild(row);
    });
    const wrap = el("div", "table-wrap");
    wrap.appendChild(table);
    return [wrap];
  }

  // Field messages may be a string, a list of strings, or nested by record and column.
  function fieldLines(fields, prefix, lines) {
    if (fields === null || fields === undefined) return lines;
    if (typeof fields === "string") { lines.push([prefix, fields]); return lines; }
    if (Array.isArray(fields)) {
      if (fields.every((f) => typeof f === "string")) { lines.push([prefix, fields.join(" ")]); return lines; }
      fields.forEach((f, i) => fieldLines(f, prefix ? `${prefix}, record ${i + 1}` : `record ${i + 1}`, lines));
      return lines;
    }
    Object.keys(fields).forEach((key) => fieldLines(fields[key], prefix && !/^\d+$/.test(prefix) ? `${prefix}: ${key}` : key, lines));
    return lines;
  }

  // A refused request in words: the message, then every bad field with what is wrong with it.
  function refusal(status, body) {
    const error = (body && body.error) || {};
    const box = el("div", "error");
    box.setAttribute("role", "alert");
    box.appendChild(el("p", "", error.message || `The server answered ${status}.`));
    const lines = fieldLines(error.fields, "", []);
    if (lines.length) {
      const list = el("ul", "field-errors");
      lines.forEach(([field, message]) => {
        const item = el("li");
        item.dataset.field = field;
        item.appendChild(el("strong", "mono", field));
        item.appendChild(document.createTextNode(` — ${message}`));
        list.appendChild(item);
      });
      box.appendChild(list);
    }
    return [box];
  }

  function rawJson(body) {
    const details = el("details", "small");
    details.appendChild(el("summary", "", "Response as JSON"));
    details.appendChild(el("pre", "try-json", JSON.stringify(body, null, 2)));
    return details;
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
      out.replaceChildren(el("p", "muted", "Predicting…"));
      delete out.dataset.status;
      try {
        const response = await fetch(config.url, {
          method: "POST",
          credentials: "same-origin",
          headers: { "Content-Type": "application/json", "X-CSRFToken": csrfToken() },
          body: JSON.stringify({ records: [record] }),
        });
        let body = null;
        try { body = await response.json(); } catch (error) { body = null; }
        out.replaceChildren(...(response.ok ? resultTable(body) : refusal(response.status, body)));
        if (body !== null) out.appendChild(rawJson(body));
        out.dataset.status = String(response.status);
      } catch (error) {
        out.replaceChildren(el("p", "error", `The request did not reach the server: ${error.message || error}`));
        out.dataset.status = "error";
      }
    });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
