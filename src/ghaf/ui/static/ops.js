// Ghaf UI: the deployment page's live charts (requests/s, p50/p99 latency, error rate),
// redrawn each time htmx swaps in fresh figures, and the monitoring page's drift over
// time per feature. Charts by uPlot; the data comes from the page's data- attributes.
// No inline script or style: the pages' Content-Security-Policy allows only 'self'.
(function () {
  "use strict";

  var PALETTE = ["#1f5fa8", "#b35806", "#1d6b2f", "#6a3d9a", "#a4121c", "#4f5863",
                 "#0f7c8c", "#8c6d1f"];
  var charts = {};

  function width(el) { return Math.max(280, Math.min(el.clientWidth || 480, 1100)); }

  function liveData(live, key) {
    if (key === "rps") { return [live.x, live.rps]; }
    if (key === "latency") { return [live.x, live.p50, live.p99]; }
    return [live.x, live.error_rate.map(function (v) { return v === null ? null : 100 * v; })];
  }

  function liveSeries(key) {
    if (key === "rps") { return [{}, { label: "requests/s", stroke: PALETTE[0], width: 1.5 }]; }
    if (key === "latency") {
      return [{}, { label: "p50 ms", stroke: PALETTE[0], width: 1.5, points: { show: true, size: 5 } },
              { label: "p99 ms", stroke: PALETTE[1], width: 1.5, points: { show: true, size: 5 } }];
    }
    return [{}, { label: "error %", stroke: PALETTE[4], width: 1.5, points: { show: true, size: 5 } }];
  }

  function drawLive() {
    var box = document.getElementById("live");
    if (!box || typeof uPlot === "undefined") { return; }
    var live = JSON.parse(box.getAttribute("data-live"));
    document.querySelectorAll("[data-live-chart]").forEach(function (el) {
      var key = el.getAttribute("data-live-chart");
      var data = liveData(live, key);
      if (charts[key]) { charts[key].setData(data); return; }
      charts[key] = new uPlot({
        width: width(el), height: 200, series: liveSeries(key),
        axes: [{}, { size: 56 }], scales: { y: { range: function (u, lo, hi) {
          return [0, Math.max(hi || 0, key === "errors" ? 1 : 0.001) * 1.1]; } } },
      }, data, el);
    });
    var holder = document.getElementById("live-charts");
    if (holder) { holder.setAttribute("data-drawn", String(live.x.length)); }
  }

  function drawDrift() {
    var el = document.getElementById("drift-chart");
    if (!el || typeof uPlot === "undefined") { return; }
    var s = JSON.parse(el.getAttribute("data-series"));
    var series = [{}];
    var data = [s.x];
    s.features.forEach(function (f, i) {
      series.push({ label: f, stroke: PALETTE[i % PALETTE.length], width: 1.5,
                    points: { show: true, size: 5 } });
      data.push(s.psi[f]);
    });
    new uPlot({ width: width(el), height: 260, series: series, axes: [{}, { label: "PSI", size: 56 }] },
              data, el);
    el.setAttribute("data-drawn", String(s.features.length));
  }

  document.addEventListener("DOMContentLoaded", function () { drawLive(); drawDrift(); });
  document.addEventListener("htmx:afterSettle", function (evt) {
    if (evt.detail && evt.detail.elt && evt.detail.elt.id === "live") { drawLive(); }
  });
})();
