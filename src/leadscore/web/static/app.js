/* leadscore dashboard: draws every <canvas data-chart="ID"> from the JSON in <script id="ID">.
   No inline script anywhere (the Content-Security-Policy forbids it). */
(function () {
  "use strict";
  var palette = ["#2563eb", "#16a34a", "#d97706", "#dc2626", "#7c3aed", "#0891b2", "#db2777", "#65a30d"];

  function draw(canvas) {
    if (canvas.dataset.drawn || typeof Chart === "undefined") { return; }
    var source = document.getElementById(canvas.dataset.chart);
    if (!source) { return; }
    var spec = JSON.parse(source.textContent);
    canvas.dataset.drawn = "1";
    var datasets = spec.datasets.map(function (d, i) {
      var colour = d.color || palette[i % palette.length];
      var out = { label: d.label, data: d.data, backgroundColor: d.colors || colour, borderColor: colour,
                  borderWidth: spec.type === "line" ? 2 : 0, pointRadius: spec.type === "line" ? 2 : 0,
                  tension: 0.2, stepped: d.stepped || false };
      if (d.axis) { out.yAxisID = d.axis; }
      return out;
    });
    var options = {
      responsive: true, maintainAspectRatio: false, animation: false,
      indexAxis: spec.horizontal ? "y" : "x",
      plugins: { legend: { display: datasets.length > 1 } },
      scales: { x: { stacked: !!spec.stacked }, y: { stacked: !!spec.stacked, beginAtZero: true } }
    };
    if (spec.percent) { options.scales[spec.horizontal ? "x" : "y"].ticks = { callback: function (v) { return v + " %"; } }; }
    new Chart(canvas, { type: spec.type || "bar", data: { labels: spec.labels, datasets: datasets }, options: options });
  }

  function drawAll(root) {
    (root || document).querySelectorAll("canvas[data-chart]").forEach(draw);
  }

  document.addEventListener("DOMContentLoaded", function () { drawAll(document); });
  document.addEventListener("htmx:afterSettle", function (event) { drawAll(event.target); });
  // a file chosen for upload replaces the text area's content in the request, say so
  document.addEventListener("change", function (event) {
    var input = event.target;
    if (input && input.id === "model-file") {
      var note = document.getElementById("model-file-note");
      if (note) { note.textContent = input.files.length ? "The file " + input.files[0].name + " will be used instead of the text." : ""; }
    }
  });
})();
