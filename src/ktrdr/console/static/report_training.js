// Training report: loss and accuracy per epoch (from the page's embedded JSON history).
"use strict";
(function () {
  const data = document.getElementById("epochs-data");
  const el = document.getElementById("epochs-chart");
  if (!data || !el) return;
  const history = JSON.parse(data.textContent);
  if (!history.length) return;
  const epochs = history.map(function (h) { return h.epoch; });
  Plotly.newPlot(el, [
    { x: epochs, y: history.map(function (h) { return h.train_loss; }), name: "train loss", mode: "lines+markers" },
    { x: epochs, y: history.map(function (h) { return h.val_loss; }), name: "validation loss", mode: "lines+markers" },
    { x: epochs, y: history.map(function (h) { return h.val_accuracy * 100; }), name: "validation accuracy %",
      mode: "lines+markers", yaxis: "y2", line: { dash: "dot" } },
  ], {
    title: { text: "Loss and accuracy per epoch", font: { size: 13 } },
    margin: { l: 55, r: 55, t: 40, b: 40 }, legend: { orientation: "h", y: -0.2 },
    xaxis: { title: "epoch", dtick: 1 }, yaxis: { title: "loss" },
    yaxis2: { title: "accuracy %", overlaying: "y", side: "right", ticksuffix: "%" },
    font: { family: "system-ui, sans-serif", size: 12 },
  }, { responsive: true, displaylogo: false });
})();
