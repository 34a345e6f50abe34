// Fairness and SHAP charts on a model version's page, drawn with Plotly (served by Steward).
// Data comes from json_script elements the governance partials render (no inline script: CSP).
(function () {
  "use strict";

  var CONFIG = { responsive: true, displaylogo: false, modeBarButtonsToRemove: ["lasso2d", "select2d"] };
  var FONT = { family: "system-ui, -apple-system, 'Segoe UI', Roboto, 'DejaVu Sans', sans-serif", size: 12 };
  var PALETTE = ["#1d4ed8", "#dc2626", "#059669", "#d97706", "#7c3aed", "#0891b2", "#db2777", "#65a30d"];

  function data(id) {
    var node = document.getElementById(id);
    if (!node) return null;
    try { return JSON.parse(node.textContent); } catch (err) { return null; }
  }

  function fairnessChart() {
    var el = document.querySelector("[data-fairness-chart]");
    var d = data("fairness-chart-data");
    if (!el || !d) return;
    var names = Object.keys(d.series);
    if (!names.length) { el.textContent = "No groups to draw."; el.className = "chart-empty"; return; }
    var traces = names.map(function (feature, i) {
      var s = d.series[feature];
      return {
        type: "bar", name: feature, x: s.groups.map(function (g) { return feature + ": " + g; }), y: s.values,
        customdata: s.counts, marker: { color: PALETTE[i % PALETTE.length] },
        hovertemplate: "%{x}<br>" + d.metric.replace(/_/g, " ") + " %{y:.3f}<br>%{customdata} rows<extra></extra>"
      };
    });
    Plotly.newPlot(el, traces, {
      font: FONT, margin: { t: 30, b: 80 }, title: { text: d.metric.replace(/_/g, " ") + " per group" },
      yaxis: { title: { text: d.metric.replace(/_/g, " ") }, rangemode: "tozero" }, showlegend: names.length > 1
    }, CONFIG);
  }

  function shapCharts() {
    var d = data("explanation-chart-data");
    if (!d) return;
    var bar = document.querySelector("[data-shap-bar]");
    var swarm = document.querySelector("[data-shap-beeswarm]");
    var features = d.importance.map(function (p) { return p[0]; }).reverse();
    var values = d.importance.map(function (p) { return p[1]; }).reverse();
    if (bar) {
      Plotly.newPlot(bar, [{ type: "bar", orientation: "h", x: values, y: features, marker: { color: "#1d4ed8" },
        hovertemplate: "%{y}: %{x:.4g}<extra></extra>" }], {
        font: FONT, title: { text: "Mean |SHAP| (" + d.output + ")" }, margin: { l: 140, t: 40 },
        xaxis: { title: { text: "mean |SHAP value|" } }
      }, CONFIG);
    }
    if (swarm) {
      var xs = [], ys = [], colors = [], greyX = [], greyY = [];
      features.forEach(function (name, row) {
        var entry = d.beeswarm[name];
        if (!entry) return;
        entry.shap.forEach(function (v, i) {
          // A small deterministic jitter spreads the points of one feature vertically.
          var jitter = (((i * 7919) % 1000) / 1000 - 0.5) * 0.6;
          var value = entry.value[i];
          if (value === null || value === undefined) { greyX.push(v); greyY.push(row + jitter); }
          else { xs.push(v); ys.push(row + jitter); colors.push(value); }
        });
      });
      var traces = [
        { type: "scattergl", mode: "markers", x: xs, y: ys, name: "rows",
          marker: { size: 4, color: colors, colorscale: [[0, "#1d4ed8"], [1, "#dc2626"]], cmin: 0, cmax: 1,
                    colorbar: { title: { text: "value" }, tickvals: [0, 1], ticktext: ["low", "high"] } },
          hovertemplate: "SHAP %{x:.4g}<extra></extra>" },
        { type: "scattergl", mode: "markers", x: greyX, y: greyY, name: "category / hidden",
          marker: { size: 4, color: "#9ca3af" }, hovertemplate: "SHAP %{x:.4g}<extra></extra>" }
      ];
      Plotly.newPlot(swarm, traces, {
        font: FONT, title: { text: "SHAP values per row" }, margin: { l: 140, t: 40 }, showlegend: false,
        yaxis: { tickvals: features.map(function (_, i) { return i; }), ticktext: features },
        xaxis: { title: { text: "SHAP value (" + d.output + ")" }, zeroline: true }
      }, CONFIG);
    }
  }

  document.addEventListener("DOMContentLoaded", function () {
    if (typeof Plotly === "undefined") return;
    fairnessChart();
    shapCharts();
  });
})();
