// Metric charts for the run and compare pages, drawn with Plotly (served by Steward).
// History comes from /api/v1/runs/<id>/metrics/history/, downsampled on the server.
(function () {
  "use strict";

  var PALETTE = ["#1d4ed8", "#dc2626", "#059669", "#d97706", "#7c3aed", "#0891b2", "#db2777", "#65a30d",
    "#475569", "#ea580c", "#4f46e5", "#0d9488", "#be123c", "#a16207", "#9333ea", "#0369a1", "#15803d",
    "#b45309", "#6d28d9", "#334155"];
  var PLOT_CONFIG = { responsive: true, displaylogo: false, modeBarButtonsToRemove: ["lasso2d", "select2d"] };
  var EAGER_CHARTS = 12;
  var FONT = { family: "system-ui, -apple-system, 'Segoe UI', Roboto, 'DejaVu Sans', sans-serif", size: 12 };

  // On the run page this script runs before the (deferred) Plotly bundle, so the charts' data is
  // fetched while Plotly is parsed; drawing waits for it.
  var plotlyReady = new Promise(function (resolve) {
    if (document.readyState !== "loading") resolve();
    else document.addEventListener("DOMContentLoaded", resolve);
  });

  function numberOrNull(value) {
    if (typeof value === "number") return isFinite(value) ? value : null;
    return null; // "NaN", "Infinity", "-Infinity" arrive as strings and are not drawn
  }

  function historyUrl(runId, key, maxPoints) {
    return "/api/v1/runs/" + encodeURIComponent(runId) + "/metrics/history/?key=" +
      encodeURIComponent(key) + "&max_points=" + maxPoints;
  }

  function fetchHistory(runId, key, maxPoints) {
    return fetch(historyUrl(runId, key, maxPoints), {
      credentials: "same-origin", headers: { Accept: "application/json" }
    }).then(function (response) {
      if (!response.ok) throw new Error("HTTP " + response.status);
      return response.json();
    });
  }

  // Run promise-returning tasks a few at a time, so a page with many metrics does not flood the server.
  function limited(tasks, width) {
    var index = 0;
    function next() {
      if (index >= tasks.length) return Promise.resolve();
      var task = tasks[index++];
      return task().then(next, next);
    }
    var workers = [];
    for (var i = 0; i < Math.min(width, tasks.length); i++) workers.push(next());
    return Promise.all(workers);
  }

  // Exponential moving average with TensorBoard's debiasing, skipping gaps.
  function ema(values, weight) {
    if (!weight) return values;
    var last = 0, count = 0;
    return values.map(function (y) {
      if (y === null) return null;
      count += 1;
      last = last * weight + (1 - weight) * y;
      return last / (1 - Math.pow(weight, count));
    });
  }

  function readControls(root) {
    var x = root.querySelector("[data-chart-x]");
    var smoothing = root.querySelector("[data-chart-smoothing]");
    var log = root.querySelector("[data-chart-log]");
    return {
      x: x ? x.value : "step",
      smoothing: smoothing ? parseFloat(smoothing.value) || 0 : 0,
      log: log ? log.checked : false
    };
  }

  function seriesTraces(series, controls, color, name, showLegend) {
    var xs = series.points.map(function (p) {
      return controls.x === "time" ? new Date(p.timestamp).toISOString() : p.step;
    });
    var ys = series.points.map(function (p) { return numberOrNull(p.value); });
    var hover = controls.x === "time" ? "%{x}<br>%{y:.6g}" : "step %{x}<br>%{y:.6g}";
    var traces = [];
    var smoothed = controls.smoothing > 0;
    traces.push({
      type: "scatter", mode: series.points.length > 60 ? "lines" : "lines+markers", x: xs, y: ys,
      name: smoothed ? name + " (raw)" : name, line: { color: color, width: smoothed ? 1 : 1.8 },
      marker: { size: 4 }, opacity: smoothed ? 0.3 : 1, connectgaps: false, showlegend: showLegend && !smoothed,
      hovertemplate: hover + "<extra>" + name + "</extra>"
    });
    if (smoothed) {
      traces.push({
        type: "scatter", mode: "lines", x: xs, y: ema(ys, controls.smoothing), name: name,
        line: { color: color, width: 2 }, showlegend: showLegend,
        hovertemplate: hover + "<extra>" + name + " (smoothed)</extra>"
      });
    }
    return traces;
  }

  function baseLayout(controls, extra) {
    var layout = {
      margin: { l: 55, r: 15, t: 10, b: 40 }, font: FONT, hovermode: "closest",
      xaxis: { title: { text: controls.x === "time" ? "time" : "step" }, type: controls.x === "time" ? "date" : "linear",
        zeroline: false },
      yaxis: { type: controls.log ? "log" : "linear", zeroline: false, exponentformat: "e" },
      legend: { orientation: "h", x: 0, y: 1.02, yanchor: "bottom" }, paper_bgcolor: "rgba(0,0,0,0)", plot_bgcolor: "#fff"
    };
    for (var k in extra || {}) layout[k] = extra[k];
    return layout;
  }

  // Every .chart[data-metric-key] in root draws that key for each of runs. Returns a handle whose
  // add(key) makes a chart for a metric that appeared later and reload(key) fetches a key again.
  function setupMetricCharts(root, runs, maxPoints) {
    var charts = Array.prototype.slice.call(root.querySelectorAll(".chart[data-metric-key]"));
    var data = {}; // key -> [series per run]
    function draw(el) {
      plotlyReady.then(function () { if (typeof Plotly !== "undefined") drawNow(el); });
    }
    function drawNow(el) {
      var key = el.dataset.metricKey;
      var list = data[key];
      if (!list) return;
      var controls = readControls(root);
      var traces = [];
      var points = 0;
      list.forEach(function (entry) {
        if (!entry.series) return;
        points += entry.series.points.length;
        traces = traces.concat(seriesTraces(entry.series, controls, entry.color, entry.name, runs.length > 1));
      });
      var note = list.some(function (e) { return e.series && e.series.downsampled; }) ? "downsampled" : "";
      Plotly.react(el, traces, baseLayout(controls, {
        showlegend: runs.length > 1,
        margin: { l: 55, r: 15, t: runs.length > 1 ? 30 : 10, b: 40 },
        annotations: note ? [{ text: note, xref: "paper", yref: "paper", x: 1, y: 1, showarrow: false,
          font: { size: 10, color: "#5b6474" } }] : []
      }), PLOT_CONFIG).then(function () {
        // Time from asking for the data to a drawn chart, for the benchmark and the curious.
        if (!el.dataset.drawMs) {
          el.dataset.drawMs = String(Math.round(performance.now() - parseFloat(el.dataset.requestedAt)));
        }
        el.dataset.points = String(points);
        el.dataset.chartState = points > 0 ? "drawn" : "empty";
      });
    }
    function tasksFor(el) {
      var key = el.dataset.metricKey;
      var remaining = runs.length;
      // A reload keeps the series already drawn until the new ones arrive.
      if (!data[key]) {
        data[key] = runs.map(function (run, i) {
          return { name: run.name, color: PALETTE[i % PALETTE.length], series: null };
        });
      }
      el.dataset.loading = "1";
      return runs.map(function (run, i) {
        return function () {
          if (!el.dataset.requestedAt) el.dataset.requestedAt = String(performance.now());
          return fetchHistory(run.id, key, maxPoints).then(function (series) {
            data[key][i].series = series;
          }, function () { /* a run without this metric draws no line */ }).then(function () {
            remaining -= 1;
            if (remaining === 0) {
              draw(el);  // each chart as soon as its own data is in
              delete el.dataset.loading;
              if (el.dataset.stale) {
                delete el.dataset.stale;
                limited(tasksFor(el), 1);
              }
            }
          });
        };
      });
    }
    // The first charts load at once; with many metrics the rest wait until they scroll into view.
    var eager = charts.slice(0, EAGER_CHARTS);
    var lazy = charts.slice(EAGER_CHARTS);
    limited([].concat.apply([], eager.map(tasksFor)), 6);
    var observer = null;
    if (lazy.length) {
      if ("IntersectionObserver" in window) {
        observer = new IntersectionObserver(function (entries) {
          entries.forEach(function (entry) {
            if (!entry.isIntersecting) return;
            observer.unobserve(entry.target);
            limited(tasksFor(entry.target), 2);
          });
        }, { rootMargin: "300px" });
        lazy.forEach(function (el) { observer.observe(el); });
      } else {
        limited([].concat.apply([], lazy.map(tasksFor)), 4);
      }
    }
    var controls = root.querySelector("[data-chart-controls]");
    if (controls) {
      controls.addEventListener("input", function (event) {
        if (event.target.matches("[data-chart-smoothing]")) {
          var label = controls.querySelector("[data-chart-smoothing-value]");
          if (label) label.textContent = parseFloat(event.target.value).toFixed(2);
        }
        charts.forEach(draw);
      });
      controls.addEventListener("change", function () { charts.forEach(draw); });
    }
    function find(key) {
      for (var i = 0; i < charts.length; i++) if (charts[i].dataset.metricKey === key) return charts[i];
      return null;
    }
    return {
      has: function (key) { return find(key) !== null; },
      add: function (key) {
        var grid = root.querySelector("[data-charts]");
        if (!grid || find(key)) return;
        var card = document.createElement("div");
        card.className = "chart-card";
        var title = document.createElement("h3");
        title.textContent = key;
        var el = document.createElement("div");
        el.className = "chart";
        el.dataset.metricKey = key;
        el.dataset.chartState = "loading";
        card.appendChild(title);
        card.appendChild(el);
        grid.appendChild(card);
        charts.push(el);
        limited(tasksFor(el), 1);
      },
      reload: function (key) {
        var el = find(key);
        if (!el) return;
        if (el.dataset.loading) { el.dataset.stale = "1"; return; }
        if (observer && !data[key]) return;  // not scrolled into view yet: it loads fresh when it is
        limited(tasksFor(el), 1);
      }
    };
  }

  function badge(status) {
    var span = document.createElement("span");
    span.className = "badge badge-" + (status || "none").toLowerCase();
    span.textContent = status || "—";
    return span;
  }

  function cell(tag, className, text) {
    var el = document.createElement(tag);
    if (className) el.className = className;
    el.textContent = text;
    return el;
  }

  // A running run's page asks for its status and latest metrics every few seconds: the table and the
  // one-value tiles are rebuilt, charts of metrics with new points fetch their history again, and a
  // metric seen for the first time gets a chart. Polling stops when the run has ended.
  function setupLive(config, handle) {
    var state = config.state;
    if (!state || !state.active || !config.liveUrl) return;
    var seen = {};
    state.metrics.forEach(function (m) { seen[m.key] = m; });
    var root = document.getElementById("charts");
    function apply(next) {
      document.querySelectorAll("[data-run-status]").forEach(function (el) {
        el.replaceChildren(badge(next.status));
      });
      document.querySelectorAll("[data-run-duration]").forEach(function (el) { el.textContent = next.duration; });
      var body = document.querySelector("#latest-metrics tbody");
      if (body) {
        body.replaceChildren.apply(body, next.metrics.map(function (m) {
          var row = document.createElement("tr");
          row.dataset.key = m.key;
          row.appendChild(cell("th", "mono", m.key));
          row.appendChild(cell("td", "num", m.display));
          row.appendChild(cell("td", "muted small num", "step " + m.step));
          return row;
        }));
      }
      var none = document.querySelector("[data-no-metrics]");
      if (none) none.hidden = next.metrics.length > 0;
      var single = next.metrics.filter(function (m) { return m.count <= 1; });
      var tiles = document.querySelector("[data-value-tiles]");
      if (tiles) {
        tiles.replaceChildren.apply(tiles, single.map(function (m) {
          var tile = document.createElement("div");
          tile.className = "value-tile";
          tile.dataset.key = m.key;
          tile.appendChild(cell("span", "value-key mono", m.key));
          tile.appendChild(cell("span", "value-number num", m.display));
          return tile;
        }));
        document.getElementById("single-values").hidden = single.length === 0;
      }
      var charted = 0;
      next.metrics.forEach(function (m) {
        if (m.count <= 1) return;
        charted += 1;
        var before = seen[m.key];
        if (!handle.has(m.key)) handle.add(m.key);
        else if (!before || before.count !== m.count || before.step !== m.step || before.timestamp !== m.timestamp) {
          handle.reload(m.key);
        }
      });
      var noCharts = root && root.querySelector("[data-no-charts]");
      if (noCharts) noCharts.hidden = charted > 0;
      seen = {};
      next.metrics.forEach(function (m) { seen[m.key] = m; });
      var note = document.querySelector("[data-live-note]");
      if (note) note.hidden = !next.active;
      document.body.dataset.runActive = next.active ? "1" : "0";
    }
    function tick() {
      // A page in a background tab waits; it catches up as soon as it is looked at again.
      if (document.hidden) {
        document.addEventListener("visibilitychange", tick, { once: true });
        return;
      }
      fetch(config.liveUrl, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (response) {
          if (!response.ok) throw new Error("HTTP " + response.status);
          return response.json();
        })
        .then(function (next) {
          apply(next);
          state = next;
        }, function () { /* a failed poll is tried again at the next tick */ })
        .then(function () { if (state.active) setTimeout(tick, config.pollMs); });
    }
    document.body.dataset.runActive = "1";
    setTimeout(tick, config.pollMs);
  }

  // Param values as numbers when all of them are; otherwise as categories.
  function dimension(label, values) {
    var numeric = values.every(function (v) { return v !== null && v !== undefined && v !== "" && isFinite(Number(v)); });
    if (numeric) return { label: label, values: values.map(Number) };
    var categories = Array.from(new Set(values.map(function (v) { return v === null || v === undefined ? "—" : String(v); }))).sort();
    return {
      label: label, values: values.map(function (v) { return categories.indexOf(v === null || v === undefined ? "—" : String(v)); }),
      tickvals: categories.map(function (_, i) { return i; }), ticktext: categories
    };
  }

  function shortLabel(text, limit) {
    return text.length <= limit ? text : text.slice(0, limit - 1) + "…";
  }

  function valueOf(run, field) {
    var dot = field.indexOf(".");
    var kind = field.slice(0, dot), key = field.slice(dot + 1);
    var source = kind === "params" ? run.params : run.metrics;
    var v = source ? source[key] : undefined;
    return v === undefined ? null : v;
  }

  function setupCompare(config) {
    var root = document.getElementById("compare-charts");
    if (root) setupMetricCharts(root, config.runs, config.maxPoints);

    var parSelect = document.querySelector("[data-parcoords-metric]");
    var parEl = document.getElementById("parcoords");
    function drawParcoords() {
      if (!parEl || !parSelect) return;
      var metric = parSelect.value;
      var runs = config.runs.filter(function (r) { return r.metrics[metric] !== null && r.metrics[metric] !== undefined; });
      if (!runs.length) {
        parEl.innerHTML = '<p class="chart-empty">No run has this metric.</p>';
        parEl.dataset.chartState = "empty";
        return;
      }
      var dims = config.paramKeys.map(function (k) {
        return dimension(k, runs.map(function (r) { return r.params[k] === undefined ? null : r.params[k]; }));
      });
      var metricValues = runs.map(function (r) { return r.metrics[metric]; });
      dims.push({ label: metric, values: metricValues });
      // Many axes: short, slanted labels; the full name is in each label's tooltip.
      var crowded = dims.length > 5;
      var fullNames = dims.map(function (d) { return d.label; });
      dims.forEach(function (d) { d.label = shortLabel(d.label, crowded ? 14 : 28); });
      Plotly.react(parEl, [{
        type: "parcoords", dimensions: dims, labelangle: crowded ? -25 : 0, labelside: "top",
        tickfont: { size: crowded ? 10 : 11 }, rangefont: { size: 9 },
        line: { color: metricValues, colorscale: "Viridis", showscale: true,
          colorbar: { title: { text: shortLabel(metric, 18) }, x: 1.04, thickness: 12 } }
      }], { margin: { l: 40, r: 70, t: crowded ? 90 : 50, b: 20 }, font: FONT, paper_bgcolor: "rgba(0,0,0,0)" },
      PLOT_CONFIG).then(function () {
        parEl.querySelectorAll(".axis-title").forEach(function (label, i) {
          if (!fullNames[i]) return;
          var title = document.createElementNS("http://www.w3.org/2000/svg", "title");
          title.textContent = fullNames[i];
          label.appendChild(title);
          label.dataset.fullName = fullNames[i];
        });
      });
      parEl.dataset.chartState = "drawn";
    }

    var sx = document.querySelector("[data-scatter-x]");
    var sy = document.querySelector("[data-scatter-y]");
    var scEl = document.getElementById("scatter");
    function drawScatter() {
      if (!scEl || !sx || !sy) return;
      var xs = [], ys = [], names = [];
      config.runs.forEach(function (r) {
        var x = valueOf(r, sx.value), y = valueOf(r, sy.value);
        if (x === null || y === null) return;
        xs.push(isFinite(Number(x)) ? Number(x) : String(x));
        ys.push(y);
        names.push(r.name);
      });
      var xLabel = sx.options[sx.selectedIndex].text, yLabel = sy.options[sy.selectedIndex].text;
      // An empty scatter says why rather than showing bare axes.
      var why = xs.length ? [] : [{
        text: "None of these runs has both " + xLabel + " and " + yLabel + ".", xref: "paper", yref: "paper",
        x: 0.5, y: 0.5, showarrow: false, font: { size: 13, color: "#5b6474" }
      }];
      Plotly.react(scEl, [{
        type: "scatter", mode: "markers", x: xs, y: ys, text: names,
        marker: { size: 11, color: PALETTE[0], line: { color: "#fff", width: 1 } },
        hovertemplate: "%{text}<br>x %{x}<br>y %{y:.6g}<extra></extra>"
      }], {
        annotations: why,
        margin: { l: 60, r: 15, t: 10, b: 50 }, font: FONT, hovermode: "closest",
        xaxis: { title: { text: xLabel }, visible: xs.length > 0 },
        yaxis: { title: { text: yLabel }, visible: xs.length > 0 },
        paper_bgcolor: "rgba(0,0,0,0)", plot_bgcolor: "#fff"
      }, PLOT_CONFIG);
      scEl.dataset.chartState = xs.length ? "drawn" : "empty";
    }
    if (parSelect) parSelect.addEventListener("change", drawParcoords);
    if (sx) sx.addEventListener("change", drawScatter);
    if (sy) sy.addEventListener("change", drawScatter);
    drawParcoords();
    drawScatter();
  }

  function start() {
    var runConfig = document.getElementById("chart-config");
    if (runConfig) {
      var config = JSON.parse(runConfig.textContent);
      var root = document.getElementById("charts");
      if (root) setupLive(config, setupMetricCharts(root, config.runs, config.maxPoints));
    }
    var compareData = document.getElementById("compare-data");
    if (compareData) {
      plotlyReady.then(function () {
        if (typeof Plotly !== "undefined") setupCompare(JSON.parse(compareData.textContent));
      });
    }
  }

  // At the end of the run page's body, everything it needs is already parsed.
  if (document.getElementById("chart-config") || document.readyState !== "loading") start();
  else document.addEventListener("DOMContentLoaded", start);
})();
