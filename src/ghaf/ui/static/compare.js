// Ghaf UI: choosing runs to compare on the Runs page (kept in sessionStorage across pages
// and filters), and the Compare page: each metric's curves overlaid with uPlot (one line
// per run), a parallel-coordinates chart with ECharts, one colour per run throughout.
// No inline script: the pages' Content-Security-Policy allows only 'self'.
(function () {
  "use strict";

  var KEY = "ghaf.compare";

  function colour(i) {
    return "hsl(" + Math.round((i * 137.508) % 360) + ", 70%, 38%)";
  }

  // Runs page ------------------------------------------------------------------------

  function chosen() {
    try {
      var ids = JSON.parse(window.sessionStorage.getItem(KEY) || "[]");
      return Array.isArray(ids) ? ids : [];
    } catch (e) {
      return [];
    }
  }

  function store(ids) {
    window.sessionStorage.setItem(KEY, JSON.stringify(ids));
  }

  function sync() {
    var form = document.getElementById("compare-form");
    if (!form) { return; }
    var ids = chosen();
    var max = parseInt(form.getAttribute("data-max"), 10);
    document.querySelectorAll("input[data-run]").forEach(function (box) {
      box.checked = ids.indexOf(box.value) >= 0;
    });
    var count = document.getElementById("compare-count");
    count.textContent = ids.length + " selected" +
      (ids.length > max ? ": at most " + max + " can be compared, untick some" : "");
    count.className = ids.length > max ? "error" : "muted";
    document.getElementById("compare-button").disabled = ids.length === 0 || ids.length > max;
  }

  function setupRuns() {
    var form = document.getElementById("compare-form");
    if (!form) { return; }
    document.addEventListener("change", function (evt) {
      var box = evt.target;
      if (!box.hasAttribute || !box.hasAttribute("data-run")) { return; }
      var ids = chosen().filter(function (id) { return id !== box.value; });
      if (box.checked) { ids.push(box.value); }
      store(ids);
      sync();
    });
    document.getElementById("compare-page").addEventListener("click", function () {
      var ids = chosen();
      document.querySelectorAll("input[data-run]").forEach(function (box) {
        if (ids.indexOf(box.value) < 0) { ids.push(box.value); }
      });
      store(ids);
      sync();
    });
    document.getElementById("compare-clear").addEventListener("click", function () {
      store([]);
      sync();
    });
    form.addEventListener("submit", function (evt) {
      evt.preventDefault();
      var ids = chosen();
      if (ids.length === 0 || ids.length > parseInt(form.getAttribute("data-max"), 10)) {
        sync();
        return;
      }
      window.location.assign("/ui/compare?runs=" + ids.map(encodeURIComponent).join(","));
    });
    document.addEventListener("htmx:afterSwap", sync);
    sync();
  }

  // Compare page ---------------------------------------------------------------------

  function drawCurves(data) {
    if (typeof uPlot === "undefined") { return; }
    var many = data.runs.length > 10;
    data.charts.forEach(function (chart) {
      var target = document.querySelector('#compare-charts .chart[data-metric="' +
        CSS.escape(chart.key) + '"]');
      if (!target) { return; }
      var series = [{ label: "step" }];
      data.runs.forEach(function (run, i) {
        series.push({ label: run.label, stroke: colour(i), fill: undefined,
                      width: many ? 1 : 1.5, spanGaps: true });
      });
      var width = Math.max(280, Math.min(target.clientWidth || 480, 640));
      var plot = new uPlot({
        width: width,
        height: 240,
        scales: { x: { time: false } },
        legend: { show: !many },
        axes: [{ label: "step" }, { label: chart.key }],
        series: series,
      }, [chart.steps].concat(chart.values), target);
      target.setAttribute("data-series", String(plot.series.length - 1));
    });
  }

  function drawParallel(data) {
    var target = document.getElementById("parallel");
    if (!target || typeof echarts === "undefined" || data.parallel.dims.length === 0) { return; }
    var axes = data.parallel.dims.map(function (dim, i) {
      var axis = { dim: i, name: dim.name, type: dim.type, nameLocation: "end",
                   nameTextStyle: { color: dim.kind === "metric" ? "#14532d" : "#1e3a8a" } };
      if (dim.type === "category") { axis.data = dim.data; } else { axis.scale = true; }
      return axis;
    });
    var chart = echarts.init(target, null, { renderer: "canvas" });
    chart.setOption({
      animation: false,
      tooltip: { show: false },
      parallel: { left: 60, right: 80, top: 50, bottom: 30 },
      parallelAxis: axes,
      series: [{
        type: "parallel",
        lineStyle: { width: data.runs.length > 10 ? 1 : 2, opacity: 0.8 },
        data: data.parallel.rows.map(function (row, i) {
          return { name: data.runs[i].label, value: row, lineStyle: { color: colour(i) } };
        }),
      }],
    });
    target.setAttribute("data-lines", String(chart.getOption().series[0].data.length));
  }

  function setupCompare() {
    var holder = document.getElementById("compare-data");
    if (!holder) { return; }
    var data = JSON.parse(holder.getAttribute("data-compare"));
    document.querySelectorAll(".compared .swatch").forEach(function (swatch) {
      swatch.style.backgroundColor = colour(parseInt(swatch.getAttribute("data-index"), 10));
    });
    drawCurves(data);
    drawParallel(data);
    var main = document.getElementById("main");
    main.setAttribute("data-drawn-ms", String(Math.round(window.performance.now())));
    main.setAttribute("data-drawn", "true");  // for a test or a benchmark to wait on
  }

  document.addEventListener("DOMContentLoaded", function () {
    setupRuns();
    setupCompare();
  });
})();
