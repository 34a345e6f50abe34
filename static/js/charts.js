// Metric line charts for the run and compare pages, drawn with uPlot (small and fast: a run page with
// a dozen charts draws in a fraction of Plotly's time); the compare page's parallel coordinates and
// scatter use Plotly. Both are served by Steward. History comes from
// /api/v1/runs/<id>/metrics/history/, downsampled on the server.
(function () {
  "use strict";

  var PALETTE = ["#1d4ed8", "#dc2626", "#059669", "#d97706", "#7c3aed", "#0891b2", "#db2777", "#65a30d",
    "#475569", "#ea580c", "#4f46e5", "#0d9488", "#be123c", "#a16207", "#9333ea", "#0369a1", "#15803d",
    "#b45309", "#6d28d9", "#334155"];
  var PLOT_CONFIG = { responsive: true, displaylogo: false, modeBarButtonsToRemove: ["lasso2d", "select2d"] };
  var EAGER_CHARTS = 12;
  var FONT = { family: "system-ui, -apple-system, 'Segoe UI', Roboto, 'DejaVu Sans', sans-serif", size: 12 };
  var AXIS_FONT = "12px " + FONT.family;
  // Below this many points a line also shows its points.
  var MARKERS_UP_TO = 60;

  var domReady = new Promise(function (resolve) {
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

  function formatValue(v) {
    if (v === null || v === undefined) return "—";
    var abs = Math.abs(v);
    return abs !== 0 && (abs >= 1e6 || abs < 1e-4) ? v.toExponential(4) : String(Number(v.toPrecision(6)));
  }

  // One table per run, [xs, ys, smoothed ys?], joined on x: a run without a point at some x gets
  // no point there (its line runs on), while a logged NaN stays a gap in its own line.
  function chartData(list, controls) {
    var tables = [], series = [{ label: controls.x === "time" ? "time" : "step" }], points = 0;
    var smoothed = controls.smoothing > 0;
    list.forEach(function (entry) {
      if (!entry.series || !entry.series.points.length) return;
      var pts = entry.series.points;
      points += pts.length;
      var xs = pts.map(function (p) { return controls.x === "time" ? p.timestamp / 1000 : p.step; });
      var ys = pts.map(function (p) {
        var y = numberOrNull(p.value);
        return controls.log && y !== null && y <= 0 ? null : y;  // a log axis has no place for them
      });
      var columns = [xs, ys];
      var markers = pts.length <= MARKERS_UP_TO;
      series.push({
        label: smoothed ? entry.name + " (raw)" : entry.name, stroke: entry.color, width: smoothed ? 1 : 1.8,
        alpha: smoothed ? 0.3 : 1, points: { show: markers, size: 5, fill: entry.color }, value: function (u, v) { return formatValue(v); }
      });
      if (smoothed) {
        columns.push(ema(ys, controls.smoothing));
        series.push({ label: entry.name, stroke: entry.color, width: 2, points: { show: false },
          value: function (u, v) { return formatValue(v); } });
      }
      tables.push(columns);
    });
    if (!tables.length) return { data: null, series: series, points: 0 };
    // Ascending x, as uPlot wants: steps and timestamps of one run arrive ordered, and the join
    // merges runs. Each run keeps its own nulls (gaps); its missing x values are connected over.
    var data = tables.length === 1 ? tables[0] : uPlot.join(tables);
    return { data: data, series: series, points: points };
  }

  function chartOptions(el, controls, series, showLegend) {
    return {
      width: Math.max(200, el.clientWidth), height: Math.max(160, el.clientHeight - (showLegend ? 30 : 24)),
      series: series,
      scales: { x: { time: controls.x === "time" }, y: { distr: controls.log ? 3 : 1 } },
      axes: [
        { font: AXIS_FONT, stroke: "#5b6474", grid: { stroke: "#eef0f4" }, ticks: { stroke: "#d6dae1" },
          label: controls.x === "time" ? "time" : "step", labelFont: AXIS_FONT, labelSize: 18 },
        { font: AXIS_FONT, stroke: "#5b6474", grid: { stroke: "#eef0f4" }, ticks: { stroke: "#d6dae1" }, size: 60,
          values: function (u, vals) { return vals.map(formatValue); } }
      ],
      cursor: { points: { size: 7 } },
      legend: { show: true, live: true }
    };
  }

  // Every .chart[data-metric-key] in root draws that key for each of runs. Returns a handle whose
  // add(key) makes a chart for a metric that appeared later and reload(key) fetches a key again.
  // inline: {key: history} already in the page (the run page's first charts), drawn without a request.
  function setupMetricCharts(root, runs, maxPoints, inline) {
    var charts = Array.prototype.slice.call(root.querySelectorAll(".chart[data-metric-key]"));
    var data = {}; // key -> [series per run]
    function draw(el) {
      domReady.then(function () { if (typeof uPlot !== "undefined") drawNow(el); });
    }
    function drawNow(el) {
      var key = el.dataset.metricKey;
      var list = data[key];
      if (!list) return;
      var built = chartData(list, readControls(root));
      if (el.uplot) { el.uplot.destroy(); el.uplot = null; }
      el.replaceChildren();
      if (built.data) {
        el.uplot = new uPlot(chartOptions(el, readControls(root), built.series, runs.length > 1), built.data, el);
        if (list.some(function (e) { return e.series && e.series.downsampled; })) {
          var note = document.createElement("span");
          note.className = "chart-note muted small";
          note.textContent = "downsampled";
          note.title = "More points were logged than are drawn: every point is in the history API and CSV.";
          el.appendChild(note);
        }
      }
      // Time from asking for the data to a drawn chart, for the benchmark and the curious.
      if (!el.dataset.drawMs) {
        el.dataset.drawMs = String(Math.round(performance.now() - parseFloat(el.dataset.requestedAt)));
      }
      el.dataset.points = String(built.points);
      el.dataset.lines = String(built.series.length - 1);
      el.dataset.chartState = built.points > 0 ? "drawn" : "empty";
    }
    // uPlot draws at a fixed size: follow the card when the window (or the grid) changes width.
    var resizer = "ResizeObserver" in window ? new ResizeObserver(function (entries) {
      entries.forEach(function (entry) {
        var el = entry.target, u = el.uplot;
        if (u && Math.abs(u.width - el.clientWidth) > 2) u.setSize({ width: Math.max(200, el.clientWidth), height: u.height });
      });
    }) : null;
    function tasksFor(el) {
      if (resizer && !el.dataset.observed) { el.dataset.observed = "1"; resizer.observe(el); }
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
    if (inline && runs.length === 1) {
      charts.forEach(function (el) {
        var series = inline[el.dataset.metricKey];
        if (!series) return;
        el.dataset.requestedAt = String(performance.now());
        data[el.dataset.metricKey] = [{ name: runs[0].name, color: PALETTE[0], series: series }];
        if (resizer) { el.dataset.observed = "1"; resizer.observe(el); }
        drawNow(el);
      });
    }
    function notYet(el) { return !data[el.dataset.metricKey]; }
    // The first charts load at once; with many metrics the rest wait until they scroll into view.
    var eager = charts.slice(0, EAGER_CHARTS).filter(notYet);
    var lazy = charts.slice(EAGER_CHARTS).filter(notYet);
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
      if (root) setupLive(config, setupMetricCharts(root, config.runs, config.maxPoints, config.histories));
    }
    var compareData = document.getElementById("compare-data");
    if (compareData) {
      var compare = JSON.parse(compareData.textContent);
      var compareRoot = document.getElementById("compare-charts");
      if (compareRoot) setupMetricCharts(compareRoot, compare.runs, compare.maxPoints);
      domReady.then(function () { if (typeof Plotly !== "undefined") setupCompare(compare); });
    }
  }

  // At the end of the run page's body, everything it needs is already parsed.
  if (document.getElementById("chart-config") || document.readyState !== "loading") start();
  else document.addEventListener("DOMContentLoaded", start);
})();
