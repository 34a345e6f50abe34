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

  // The run page draws its metric charts without Plotly; a stored figure (training plots, logged
  // figures) loads Plotly once, from this installation, when the page has one to draw.
  var loadingPlotly = null;
  function plotlyFor() {
    if (plotly()) return Promise.resolve(plotly());
    var meta = document.querySelector("meta[name=steward-plotly]");
    if (!meta) return Promise.reject(new Error("Plotly is not on this page"));
    if (!loadingPlotly) {
      loadingPlotly = new Promise(function (resolve, reject) {
        var script = document.createElement("script");
        script.src = meta.getAttribute("content");
        script.onload = function () { resolve(plotly()); };
        script.onerror = function () { reject(new Error("Plotly could not be loaded")); };
        document.head.appendChild(script);
      });
    }
    return loadingPlotly;
  }

  // ColumnTransformer output names (num__age, cat__city_Oslo) read as the column: age, city_Oslo.
  function withoutPipelinePrefix(labels) {
    var prefixed = /^[A-Za-z0-9]+__(.+)$/;
    if (!labels.length || !labels.every(function (l) { return typeof l === "string" && prefixed.test(l); })) return labels;
    return labels.map(function (l) { return l.replace(prefixed, "$1"); });
  }

  // Readability fixes for stored training figures, whichever version of Steward wrote them.
  function readable(fig) {
    var layout = fig.layout;
    (fig.data || []).forEach(function (trace) {
      if (trace.type === "bar" && trace.orientation === "h" && Array.isArray(trace.y)) {
        // Feature names: no pipeline prefixes, and a margin that fits the longest one.
        trace.y = withoutPipelinePrefix(trace.y);
        var longest = Math.max.apply(null, trace.y.map(function (l) { return String(l).length; }));
        layout.margin = Object.assign({}, layout.margin, { l: Math.min(360, 20 + 7 * longest) });
        layout.yaxis = Object.assign({ automargin: true }, layout.yaxis, { type: "category" });
        trace.hovertemplate = trace.hovertemplate || "%{y}: %{x:.4g}<extra></extra>";
      }
      if (trace.type === "heatmap" && Array.isArray(trace.z) && Array.isArray(trace.x)) {
        // Class labels such as 0, 1, 2 are categories: one tick each, not a numeric axis at 0.5 steps.
        layout.xaxis = Object.assign({}, layout.xaxis, { type: "category", tickmode: "array",
          tickvals: trace.x, ticktext: trace.x.map(String) });
        layout.yaxis = Object.assign({}, layout.yaxis, { type: "category", tickmode: "array",
          tickvals: trace.y, ticktext: (trace.y || []).map(String) });
        // A light-to-dark scale (Plotly's named "Blues" runs dark-to-light), so that each count's
        // colour can be chosen to read on its cell: white on the dark end, ink on the light end.
        trace.colorscale = [[0, "#f7fbff"], [0.25, "#c6dbef"], [0.5, "#6baed6"], [0.75, "#2171b5"], [1, "#08306b"]];
        trace.reversescale = false;
        trace.zmin = 0;
        var flat = [].concat.apply([], trace.z);
        var max = Math.max.apply(null, flat.filter(function (v) { return typeof v === "number"; })) || 1;
        if (trace.texttemplate) {
          delete trace.texttemplate;
          layout.annotations = (layout.annotations || []).concat([].concat.apply([], trace.z.map(function (row, i) {
            return row.map(function (v, j) {
              return { x: trace.x[j], y: (trace.y || [])[i], text: String(v), showarrow: false,
                font: { color: v / max > 0.45 ? "#fff" : "#1f2430", size: 13 } };
            });
          })));
        }
      }
    });
    return fig;
  }

  function drawArtifactPlots(root) {
    if (!root.querySelectorAll) return;
    root.querySelectorAll("[data-plot-url]").forEach(function (el) {
      if (el.dataset.drawn) return;
      el.dataset.drawn = "1";
      fetch(el.getAttribute("data-plot-url"), { credentials: "same-origin" })
        .then(function (r) { if (!r.ok) throw new Error("HTTP " + r.status); return r.json(); })
        .then(function (fig) {
          fig.layout = Object.assign({ font: FONT, margin: { t: 40 } }, fig.layout || {});
          readable(fig);
          return plotlyFor().then(function (lib) {
            return lib.newPlot(el, fig.data, fig.layout, FIGURE_CONFIG);
          }).then(function () { el.dataset.plotState = "drawn"; });
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
