// Charts for dataset profiles and training runs, drawn with Plotly (served by Steward).
// Profile data comes from a json_script element; training plots are Plotly figures stored as run artifacts.
(function () {
  "use strict";

  var CONFIG = { responsive: true, displaylogo: false, modeBarButtonsToRemove: ["lasso2d", "select2d"] };
  // Stored figures arrive from the server cleaned of every external source (experiments/figures.py);
  // should one still ask for map outlines, Plotly looks for them here, never on its CDN.
  var FIGURE_CONFIG = Object.assign({ topojsonURL: "/static/vendor/plotly/topojson/" }, CONFIG);
  var SPARK_CONFIG = { staticPlot: true, responsive: true };
  var FONT = { family: "system-ui, -apple-system, 'Segoe UI', Roboto, 'DejaVu Sans', sans-serif", size: 12 };

  function plotly() { return window.Plotly; }

  function mids(edges) {
    var out = [];
    for (var i = 0; i + 1 < edges.length; i++) {
      var a = edges[i], b = edges[i + 1];
      out.push(typeof a === "number" ? (a + b) / 2 : a);
    }
    return out;
  }

  function sparkFor(col) {
    var h = col.histogram;
    if (!h || col.hidden) return null;
    var x = h.edges ? mids(h.edges) : h.labels;
    return [{ type: "bar", x: x, y: h.counts, marker: { color: "#1d4ed8" },
      hovertemplate: "%{x}: %{y}<extra></extra>" }];
  }

  function drawProfile(root) {
    var source = root.querySelector ? root.querySelector("#profile-data") : null;
    if (!source || !plotly()) return;
    var profile = JSON.parse(source.textContent);
    var byName = {};
    profile.columns.forEach(function (c) { byName[c.name] = c; });
    root.querySelectorAll("[data-col-chart]").forEach(function (el) {
      var col = byName[el.getAttribute("data-col-chart")];
      var data = col && sparkFor(col);
      if (!data) return;
      plotly().newPlot(el, data, { margin: { l: 0, r: 0, t: 0, b: 0 }, xaxis: { visible: false },
        yaxis: { visible: false }, bargap: 0.05, font: FONT }, SPARK_CONFIG);
    });
    var labelsEl = root.querySelector("[data-labels-chart]");
    if (labelsEl && profile.labels) {
      var l = profile.labels;
      var data = l.kind === "classes"
        ? [{ type: "bar", x: l.counts.map(function (p) { return p[0]; }), y: l.counts.map(function (p) { return p[1]; }) }]
        : [{ type: "bar", x: mids(l.histogram.edges), y: l.histogram.counts }];
      plotly().newPlot(labelsEl, data, { title: { text: l.column }, font: FONT,
        xaxis: { type: "category" }, yaxis: { title: { text: "rows" } }, margin: { t: 40 } }, CONFIG);
    }
    var groupsEl = root.querySelector("[data-groups-chart]");
    if (groupsEl && profile.sensitive_groups.length) {
      var traces = [];
      profile.sensitive_groups.forEach(function (g) {
        if (g.by_label) {
          var groups = Object.keys(g.by_label);
          var labels = {};
          groups.forEach(function (k) { Object.keys(g.by_label[k]).forEach(function (lab) { labels[lab] = 1; }); });
          Object.keys(labels).forEach(function (lab) {
            traces.push({ type: "bar", name: g.column + " · label " + lab,
              x: groups.map(function (k) { return g.column + "=" + k; }),
              y: groups.map(function (k) { return g.by_label[k][lab] || 0; }) });
          });
        } else {
          traces.push({ type: "bar", name: g.column, x: g.counts.map(function (p) { return g.column + "=" + p[0]; }),
            y: g.counts.map(function (p) { return p[1]; }) });
        }
      });
      plotly().newPlot(groupsEl, traces, { barmode: "stack", font: FONT, yaxis: { title: { text: "rows" } },
        margin: { t: 20 } }, CONFIG);
    }
  }

  function drawArtifactPlots(root) {
    if (!root.querySelectorAll || !plotly()) return;
    root.querySelectorAll("[data-plot-url]").forEach(function (el) {
      if (el.dataset.drawn) return;
      el.dataset.drawn = "1";
      fetch(el.getAttribute("data-plot-url"), { credentials: "same-origin" })
        .then(function (r) { if (!r.ok) throw new Error("HTTP " + r.status); return r.json(); })
        .then(function (fig) {
          fig.layout = Object.assign({ font: FONT, margin: { t: 40 } }, fig.layout || {});
          plotly().newPlot(el, fig.data, fig.layout, FIGURE_CONFIG);
        })
        .catch(function (err) { el.textContent = "Could not load the plot (" + err.message + ")."; });
    });
  }

  function autosubmit(root) {
    if (!root.querySelectorAll) return;
    root.querySelectorAll("select[data-autosubmit]").forEach(function (el) {
      el.addEventListener("change", function () { if (el.value) el.form.submit(); });
    });
  }

  function init(root) {
    drawProfile(root);
    drawArtifactPlots(root);
    autosubmit(root);
  }

  document.addEventListener("DOMContentLoaded", function () { init(document); });
  // Panels that htmx swaps in (the run page's data panel) draw their plots too.
  document.addEventListener("htmx:load", function (event) { drawArtifactPlots(event.target); });
})();
