// Training report: loss and accuracy per epoch. The history is the run's artifact, read from
// the public JSON API of the page's own origin (the operation record only references it).
"use strict";
(function () {
  const section = document.getElementById("training-report");
  const el = document.getElementById("epochs-chart");
  if (!section || !el) return;
  const id = encodeURIComponent(section.dataset.operation);

  function note(text) {
    const p = document.createElement("p");
    p.className = "muted";
    p.textContent = text;  // text, never HTML
    el.replaceChildren(p);
  }

  function draw(history) {
    if (!history.length) { note("This run recorded no per-epoch history."); return; }
    el.replaceChildren();
    const epochs = history.map(function (h) { return h.epoch; });
    Plotly.newPlot(el, [
      { x: epochs, y: history.map(function (h) { return h.train_loss; }), name: "train loss", mode: "lines+markers" },
      { x: epochs, y: history.map(function (h) { return h.val_loss; }), name: "validation loss", mode: "lines+markers" },
      { x: epochs, y: history.map(function (h) { return h.val_accuracy === null ? null : h.val_accuracy * 100; }),
        name: "validation accuracy %", mode: "lines+markers", yaxis: "y2", line: { dash: "dot" } },
    ], {
      title: { text: "Loss and accuracy per epoch", font: { size: 13 } },
      margin: { l: 55, r: 55, t: 40, b: 40 }, legend: { orientation: "h", y: -0.2 },
      xaxis: { title: "epoch", dtick: 1 }, yaxis: { title: "loss" },
      yaxis2: { title: "accuracy %", overlaying: "y", side: "right", ticksuffix: "%" },
      font: { family: "system-ui, sans-serif", size: 12 },
    }, { responsive: true, displaylogo: false });
  }

  async function load() {
    // ?part= reads the artifact, and the inline copy of a run recorded before there was one.
    const history = await window.ktrdrConsole.api("/operations/" + id + "/results?part=history");
    if (history.ok) { draw(history.body); return; }
    const detail = (history.body && history.body.detail) || "HTTP " + history.status;
    note(history.status === 404 ? "This run recorded no per-epoch history." : "learning curve: " + detail);
  }

  load();
})();
