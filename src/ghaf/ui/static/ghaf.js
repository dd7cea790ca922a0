// Ghaf UI: JSON bodies for the API's write routes (htmx extension "ghaf-json"), the
// outcome of a button shown in #flash, and uPlot charts of a run's metric histories.
// No inline script anywhere: the pages' Content-Security-Policy allows only 'self'.
(function () {
  "use strict";

  htmx.defineExtension("ghaf-json", {
    onEvent: function (name, evt) {
      if (name === "htmx:configRequest") {
        evt.detail.headers["Content-Type"] = "application/json";
      }
    },
    encodeParameters: function (xhr, parameters) {
      xhr.overrideMimeType("text/json");
      var body = {};
      parameters.forEach(function (value, key) { body[key] = value; });
      return JSON.stringify(body);
    },
  });

  function flash(text, failed) {
    var box = document.getElementById("flash");
    if (!box) { return; }
    box.textContent = text;
    box.className = failed ? "error" : "ok";
  }

  document.addEventListener("htmx:afterRequest", function (evt) {
    var elt = evt.detail.elt;
    if (!elt || !elt.hasAttribute || !elt.hasAttribute("data-refresh")) { return; }
    var xhr = evt.detail.xhr;
    if (evt.detail.successful) {
      flash("Done: " + elt.textContent.trim() + ".", false);
      window.location.reload();
      return;
    }
    var why = "The server refused (" + xhr.status + ").";
    try {
      var problem = JSON.parse(xhr.responseText);
      why = problem.title + (problem.hint ? " (" + problem.hint + ")" : "");
    } catch (e) { /* not problem+json: keep the status */ }
    flash(why, true);
  });
  // A refused write is answered, not an error of the page: htmx logs 4xx as errors.
  document.addEventListener("htmx:responseError", function (evt) { evt.preventDefault(); });

  function drawCharts() {
    var holder = document.getElementById("chart-data");
    if (!holder || typeof uPlot === "undefined") { return; }
    var series = JSON.parse(holder.getAttribute("data-charts"));
    series.forEach(function (s) {
      var target = document.querySelector('.chart[data-metric="' + CSS.escape(s.key) + '"]');
      if (!target) { return; }
      var width = Math.max(280, Math.min(target.clientWidth || 480, 640));
      new uPlot({
        width: width,
        height: 220,
        scales: { x: { time: false } },
        axes: [{ label: "step" }, { label: s.key }],
        series: [{ label: "step" }, { label: s.key, stroke: "#1f5fa8", width: 1.5 }],
      }, [s.steps, s.values], target);
    });
  }
  document.addEventListener("DOMContentLoaded", drawCharts);
})();
