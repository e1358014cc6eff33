// Backtest report: equity and drawdown, trades at their fills, a sortable trade table
// with CSV export. Data comes from the public JSON API of the page's own origin.
"use strict";
(function () {
  const section = document.getElementById("backtest-report");
  if (!section) return;
  const id = encodeURIComponent(section.dataset.operation);
  const consoleApi = window.ktrdrConsole;
  const layoutBase = {
    margin: { l: 60, r: 20, t: 30, b: 40 }, font: { family: "system-ui, sans-serif", size: 12 },
    paper_bgcolor: "#fff", plot_bgcolor: "#fff", hovermode: "x unified", showlegend: true,
    legend: { orientation: "h", y: 1.12 },
  };
  const config = { responsive: true, displaylogo: false };

  function drawEquity(points) {
    const x = points.map(function (p) { return p.timestamp; });
    const y = points.map(function (p) { return p.equity; });
    let peak = -Infinity;
    const dd = y.map(function (v) { peak = Math.max(peak, v); return peak > 0 ? (v / peak - 1) * 100 : 0; });
    const el = document.getElementById("equity-chart");
    el.textContent = "";
    Plotly.newPlot(el, [
      { x: x, y: y, name: "equity", type: "scatter", mode: "lines", line: { color: "#2563eb", width: 1.6 } },
      { x: x, y: dd, name: "drawdown %", type: "scatter", mode: "lines", fill: "tozeroy",
        line: { color: "#dc2626", width: 1 }, yaxis: "y2", xaxis: "x" },
    ], Object.assign({}, layoutBase, {
      title: { text: "Equity and drawdown (drag to zoom, double-click to reset)", font: { size: 13 } },
      grid: { rows: 2, columns: 1, roworder: "top to bottom" },
      yaxis: { title: "equity", domain: [0.34, 1] },
      yaxis2: { title: "drawdown %", domain: [0, 0.26], ticksuffix: "%" },
      xaxis: { anchor: "y2" },
    }), config);
  }

  function drawTrades(trades) {
    const el = document.getElementById("price-chart");
    if (!trades.length) { el.textContent = "No trades."; return; }
    const entries = { x: [], y: [], text: [], marker: { symbol: [], color: [], size: 9 } };
    const exits = { x: [], y: [], text: [], marker: { symbol: "x", color: [], size: 7 } };
    const path = { x: [], y: [] };
    trades.forEach(function (t, i) {
      const win = t.net_pnl >= 0;
      entries.x.push(t.entry_time); entries.y.push(t.entry_price);
      entries.text.push("#" + (i + 1) + " " + t.side + " entry");
      entries.marker.symbol.push(t.side === "long" ? "triangle-up" : "triangle-down");
      entries.marker.color.push(t.side === "long" ? "#16a34a" : "#9333ea");
      exits.x.push(t.exit_time); exits.y.push(t.exit_price);
      exits.text.push("#" + (i + 1) + " exit, P&L " + (t.net_pnl || 0).toFixed(2));
      exits.marker.color.push(win ? "#16a34a" : "#dc2626");
      path.x.push(t.entry_time, t.exit_time, null); path.y.push(t.entry_price, t.exit_price, null);
    });
    Plotly.newPlot(el, [
      { x: path.x, y: path.y, name: "trade", mode: "lines", line: { color: "#94a3b8", width: 1 }, hoverinfo: "skip" },
      Object.assign({ name: "entries", mode: "markers", type: "scatter", hoverinfo: "text+y" }, entries),
      Object.assign({ name: "exits", mode: "markers", type: "scatter", hoverinfo: "text+y" }, exits),
    ], Object.assign({}, layoutBase, {
      title: { text: "Trades at their fill prices (▲ long, ▼ short entry; × exit: green won, red lost)", font: { size: 13 } },
      yaxis: { title: "price" }, hovermode: "closest",
    }), config);
  }

  const columns = Array.from(document.querySelectorAll("#trades-table thead th")).map(function (th) { return th.dataset.key; });
  const numeric = new Set(["size", "entry_price", "exit_price", "net_pnl", "pnl_pct", "commission", "bars_held"]);
  let rows = [];
  let sortKey = null;
  let ascending = true;

  function cell(key, value) {
    if (value === null || value === undefined) return "";
    if (key === "entry_time" || key === "exit_time") return String(value).replace("T", " ").replace("+00:00", "");
    if (key === "pnl_pct") return Number(value).toFixed(2);
    if (key === "size") return Number(value).toFixed(4);
    if (key === "bars_held") return String(value);
    if (numeric.has(key)) return Number(value).toFixed(key.endsWith("price") ? 5 : 2);
    return String(value);
  }

  function renderTable() {
    const body = document.querySelector("#trades-table tbody");
    const fragment = document.createDocumentFragment();
    rows.forEach(function (t) {
      const tr = document.createElement("tr");
      tr.className = t.net_pnl >= 0 ? "win" : "loss";
      columns.forEach(function (key) {
        const td = document.createElement("td");
        td.textContent = cell(key, t[key]);  // text only
        if (numeric.has(key)) td.className = "num";
        tr.appendChild(td);
      });
      fragment.appendChild(tr);
    });
    body.replaceChildren(fragment);
    if (!rows.length) body.innerHTML = '<tr><td colspan="11" class="muted">No trades.</td></tr>';
    document.querySelectorAll("#trades-table thead th").forEach(function (th) {
      th.classList.toggle("sorted-asc", th.dataset.key === sortKey && ascending);
      th.classList.toggle("sorted-desc", th.dataset.key === sortKey && !ascending);
    });
  }

  document.querySelector("#trades-table thead").addEventListener("click", function (event) {
    const th = event.target.closest("th[data-key]");
    if (!th) return;
    const key = th.dataset.key;
    ascending = sortKey === key ? !ascending : true;
    sortKey = key;
    rows.sort(function (a, b) {
      const x = a[key], y = b[key];
      const order = numeric.has(key) ? (x - y) : String(x).localeCompare(String(y));
      return ascending ? order : -order;
    });
    renderTable();
  });

  function csv(trades) {
    const keys = trades.length ? Object.keys(trades[0]) : columns;
    const quote = function (v) {
      const s = v === null || v === undefined ? "" : String(v);
      return /[",\n]/.test(s) ? '"' + s.replace(/"/g, '""') + '"' : s;
    };
    return [keys.join(",")].concat(trades.map(function (t) {
      return keys.map(function (k) { return quote(t[k]); }).join(",");
    })).join("\n") + "\n";
  }

  async function load() {
    const [equity, trades] = await Promise.all([
      consoleApi.api("/operations/" + id + "/results?part=equity_curve"),
      consoleApi.api("/operations/" + id + "/results?part=trades"),
    ]);
    if (equity.ok) drawEquity(equity.body); else consoleApi.flash("equity curve: " + (equity.body && equity.body.detail), "error");
    if (!trades.ok) { consoleApi.flash("trades: " + (trades.body && trades.body.detail), "error"); return; }
    const original = trades.body.slice();
    rows = trades.body.slice();
    renderTable();
    drawTrades(original);
    const button = document.getElementById("export-csv");
    button.disabled = false;
    button.addEventListener("click", function () {
      const blob = new Blob([csv(original)], { type: "text/csv" });
      const link = document.createElement("a");
      link.href = URL.createObjectURL(blob);
      link.download = section.dataset.operation + "-trades.csv";
      document.body.appendChild(link);
      link.click();
      link.remove();
      setTimeout(function () { URL.revokeObjectURL(link.href); }, 1000);
    });
  }
  load();
})();
