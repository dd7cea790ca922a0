// Ghaf UI: the interactive lineage graph (cytoscape.js, laid out left to right by
// cytoscape-dagre). Its nodes and edges come from the page (data-elements), as the server
// filtered them for the viewer; a click (or tap) on a node opens that node's page.
// No inline script or style: the page's Content-Security-Policy allows only 'self'.
(function () {
  "use strict";

  var COLOURS = {
    dataset: "#1f5fa8", feature_view: "#6a3d9a", transform: "#4f5863",
    run: "#b35806", model: "#1d6b2f", deployment: "#a4121c", predictions: "#005f73",
  };

  function draw() {
    var box = document.getElementById("lineage-graph");
    if (!box || typeof cytoscape === "undefined") { return; }
    var elements = JSON.parse(box.getAttribute("data-elements"));
    var cy = cytoscape({
      container: box,
      elements: elements,
      minZoom: 0.2,
      maxZoom: 3,
      wheelSensitivity: 0.3,
      boxSelectionEnabled: false,
      autoungrabify: true,
      style: [
        { selector: "node", style: {
          "shape": "round-rectangle", "width": 150, "height": 34,
          "background-color": function (n) { return COLOURS[n.data("kind")] || "#4f5863"; },
          "label": "data(label)", "color": "#ffffff", "font-size": 11,
          "text-valign": "center", "text-halign": "center",
          "text-wrap": "ellipsis", "text-max-width": 140,
        } },
        { selector: "node[side = 'focus']", style: {
          "border-width": 4, "border-color": "#f2b705", "font-weight": "bold",
        } },
        { selector: "edge", style: {
          "width": 1.5, "line-color": "#8c959f", "target-arrow-color": "#8c959f",
          "target-arrow-shape": "triangle", "curve-style": "bezier",
          "label": "data(label)", "font-size": 9, "color": "#4f5863",
          "text-background-color": "#ffffff", "text-background-opacity": 1,
          "text-background-padding": 2,
        } },
      ],
      layout: { name: "dagre", rankDir: "LR", nodeSep: 24, rankSep: 70, padding: 16 },
    });
    cy.on("tap", "node", function (evt) {
      var href = evt.target.data("href");
      if (href) { window.location.assign(href); }
    });
    cy.on("mouseover", "node", function () { box.classList.add("pointing"); });
    cy.on("mouseout", "node", function () { box.classList.remove("pointing"); });
    cy.ready(function () { box.setAttribute("data-ready", "true"); });
    window.ghafLineage = cy;
  }
  document.addEventListener("DOMContentLoaded", draw);
})();
