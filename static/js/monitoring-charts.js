// Monitor page charts, drawn with Plotly (served by Steward): drift share over time, a PSI
// heat-map of features by report, performance, the alert timeline, operational health, and
// reference-against-current histograms per feature. Data comes from the #monitor-data element.
(function () {
  "use strict";

  var CONFIG = { responsive: true, displaylogo: false, modeBarButtonsToRemove: ["lasso2d", "select2d"] };
  var FONT = { family: "system-ui, -apple-system, 'Segoe UI', Roboto, 'DejaVu Sans', sans-serif", size: 12 };
  var MARGIN = { l: 50, r: 20, t: 40, b: 40 };

  function layout(title, extra) {
    return Object.assign({ title: { text: title }, font: FONT, margin: MARGIN, legend: { orientation: "h" } }, extra || {});
  }

  function empty(el, text) {
    el.textContent = text;
    el.classList.add("muted");
    el.style.minHeight = "0";
  }

  function drift(el, data) {
    if (!data.drift.length) return empty(el, "No reports yet.");
    window.Plotly.newPlot(el, [{
      type: "scatter", mode: "lines+markers", name: "drift share",
      x: data.drift.map(function (r) { return r.time; }),
      y: data.drift.map(function (r) { return r.status === "insufficient_data" ? null : r.share; }),
      hovertemplate: "%{x}<br>%{y:.0%} of features drifted<extra></extra>"
    }], layout("Drift share per report", { yaxis: { range: [0, 1], tickformat: ".0%" } }), CONFIG);
  }

  function heatmap(el, data) {
    var h = data.heatmap;
    if (!h.features.length) return empty(el, "No judged report yet for the PSI heat-map.");
    window.Plotly.newPlot(el, [{
      type: "heatmap", x: h.reports, y: h.features, z: h.psi, colorscale: "YlOrRd", zmin: 0,
      colorbar: { title: { text: "PSI" } }, hovertemplate: "%{y}<br>%{x}<br>PSI %{z:.3f}<extra></extra>"
    }], layout("PSI per feature and report", { margin: { l: 100, r: 20, t: 40, b: 40 } }), CONFIG);
  }

  function performance(el, data) {
    var points = data.performance.length > 1 ? data.performance : data.performance_over_time;
    if (!points.length) return empty(el, "No labels yet: performance appears once labels arrive.");
    var names = Object.keys(points[0]).filter(function (k) { return k !== "time" && k !== "rows"; });
    var traces = names.map(function (name) {
      return { type: "scatter", mode: "lines+markers", name: name,
        x: points.map(function (p) { return p.time; }), y: points.map(function (p) { return p[name]; }) };
    });
    window.Plotly.newPlot(el, traces, layout("Performance over time"), CONFIG);
  }

  function alerts(el, data) {
    if (!data.alerts.length) return empty(el, "No alerts so far.");
    var kinds = ["drift", "performance", "retraining"];
    var traces = kinds.map(function (kind) {
      var mine = data.alerts.filter(function (a) { return a.kind === kind; });
      return { type: "scatter", mode: "markers", name: kind, marker: { size: 12 },
        x: mine.map(function (a) { return a.time; }), y: mine.map(function () { return kind; }),
        text: mine.map(function (a) { return a.status + ": " + a.message; }),
        hovertemplate: "%{x}<br>%{text}<extra></extra>" };
    }).filter(function (t) { return t.x.length; });
    window.Plotly.newPlot(el, traces, layout("Alert timeline", { showlegend: false, margin: { l: 90, r: 20, t: 40, b: 40 } }), CONFIG);
  }

  function health(el, data) {
    var h = data.health;
    if (!h.minutes.length) return empty(el, "No predictions served in the last 6 hours.");
    var traces = [
      { type: "bar", name: "requests / min", x: h.minutes, y: h.requests, marker: { color: "#cbd5e1" } },
      { type: "scatter", mode: "lines", name: "rows / s", x: h.minutes, y: h.rows_per_second }
    ];
    [["p50_ms", "p50 ms"], ["p95_ms", "p95 ms"], ["p99_ms", "p99 ms"]].forEach(function (p) {
      if (h[p[0]].some(function (v) { return v !== null; })) {
        traces.push({ type: "scatter", mode: "lines", name: p[1], x: h.minutes, y: h[p[0]], yaxis: "y2" });
      }
    });
    if (h.error_rate.some(function (v) { return v; })) {
      traces.push({ type: "scatter", mode: "lines", name: "error rate", x: h.minutes, yaxis: "y3",
        y: h.error_rate, line: { color: "#dc2626", dash: "dot" } });
    }
    window.Plotly.newPlot(el, traces, layout("Requests, throughput, latency and errors", {
      xaxis: { domain: [0, 0.86] },
      yaxis: { title: { text: "requests, rows/s" } },
      yaxis2: { title: { text: "ms" }, overlaying: "y", side: "right", type: "log" },
      yaxis3: { overlaying: "y", side: "right", position: 0.95, anchor: "free", tickformat: ".0%",
        range: [0, 1], showgrid: false }
    }), CONFIG);
  }

  function mids(edges) {
    var out = [];
    for (var i = 0; i + 1 < edges.length; i++) out.push((edges[i] + edges[i + 1]) / 2);
    return out;
  }

  function histogram(el, name, h, drifted) {
    if (!h) return empty(el, name + ": no values to compare.");
    if (h.hidden) return empty(el, name + ": a PII column; its values are hidden from your role.");
    var x = h.labels || mids(h.edges).map(function (v) { return Number(v.toPrecision(4)); });
    var ticks = h.labels ? {} : { type: "category" };
    window.Plotly.newPlot(el, [
      { type: "bar", name: "reference", x: x, y: h.reference, marker: { color: "#94a3b8" } },
      { type: "bar", name: "current", x: x, y: h.current, marker: { color: drifted ? "#dc2626" : "#1d4ed8" } }
    ], layout(name + (drifted ? " (drifted)" : ""), { barmode: "group", xaxis: ticks,
      yaxis: { tickformat: ".0%" }, margin: { l: 45, r: 10, t: 35, b: 40 } }), CONFIG);
  }

  function init() {
    var source = document.getElementById("monitor-data");
    if (!source || !window.Plotly) return;
    var data = JSON.parse(source.textContent);
    var draw = { drift: drift, heatmap: heatmap, performance: performance, alerts: alerts, health: health };
    document.querySelectorAll("[data-monitor-chart]").forEach(function (el) {
      draw[el.getAttribute("data-monitor-chart")](el, data);
    });
    document.querySelectorAll("[data-monitor-hist]").forEach(function (el) {
      var name = el.getAttribute("data-monitor-hist");
      histogram(el, name, data.histograms[name], data.drifted.indexOf(name) >= 0);
    });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
