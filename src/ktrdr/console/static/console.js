// KTRDR console: live fragments, the API key, actions through the JSON API.
// No framework: the server renders every piece of HTML (escaped by Jinja2); this script
// only fetches fragments again, and sends actions with the key the user typed.
"use strict";
(function () {
  const KEY_STORE = "ktrdr.apiKey";
  // The user API key goes as `Authorization: Bearer <key>`, as the CLI sends it.
  const keyHeader = document.querySelector('meta[name="ktrdr-key-header"]').content;

  function apiKey() { return sessionStorage.getItem(KEY_STORE) || ""; }

  // Every action goes through here: JSON in and out, the key as a header (never a cookie,
  // so another site cannot make the browser send it).
  async function api(path, options) {
    const opts = options || {};
    const headers = { "Accept": "application/json" };
    if (opts.body !== undefined) headers["Content-Type"] = "application/json";
    if (apiKey()) headers[keyHeader] = "Bearer " + apiKey();
    Object.assign(headers, opts.headers || {});
    const response = await fetch("/api/v1" + path, {
      method: opts.method || "GET", headers: headers, credentials: "omit",
      body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
    });
    let body = null;
    try { body = await response.json(); } catch (_) { body = null; }
    return { ok: response.ok, status: response.status, body: body };
  }

  function problem(result) {
    const detail = result.body && result.body.detail ? result.body.detail : "HTTP " + result.status;
    if (result.status === 401 || result.status === 403) {
      return detail + " — enter an API key (top right) that may do this.";
    }
    return detail;
  }

  let flashTimer = null;
  function flash(message, kind) {
    const box = document.getElementById("flash");
    box.textContent = message;  // text, never HTML: messages may quote user input
    box.className = "flash flash-" + (kind || "info");
    box.hidden = false;
    clearTimeout(flashTimer);
    flashTimer = setTimeout(function () { box.hidden = true; }, 8000);
  }

  // ---- live fragments: re-fetch server-rendered HTML while the tab is visible
  const live = [];
  function watch(el) {
    const entry = { el: el, url: el.dataset.live, every: Number(el.dataset.liveMs) || 2000,
                    last: null, timer: null, busy: false };
    live.push(entry);
    schedule(entry);
  }
  function schedule(entry) {
    clearTimeout(entry.timer);
    entry.timer = setTimeout(function () { refresh(entry); }, entry.every);
  }
  async function refresh(entry) {
    if (entry.busy) return;
    if (document.hidden) { schedule(entry); return; }
    entry.busy = true;
    try {
      const response = await fetch(entry.url, { headers: { "Accept": "text/html" }, cache: "no-store" });
      if (response.ok) {
        const html = await response.text();
        if (html !== entry.last) { entry.el.innerHTML = html; entry.last = html; markArmed(entry.el); }
        if (response.headers.get("X-Console-Final") === "1") { location.reload(); return; }
      }
    } catch (_) {
      // The API restarting or the network blinking: try again at the next tick.
    } finally {
      entry.busy = false;
    }
    schedule(entry);
  }
  function refreshAll() { live.forEach(function (e) { refresh(e); }); }
  document.addEventListener("visibilitychange", function () { if (!document.hidden) refreshAll(); });

  // ---- cancel: first click arms the button, the second sends the request. Armed state
  // is kept by operation id: a live refresh may replace the button in between.
  const ARM_MS = 4000;
  const armed = {};
  function markArmed(root) {
    root.querySelectorAll("button[data-cancel]").forEach(function (b) {
      const on = Date.now() - (armed[b.dataset.cancel] || 0) < ARM_MS;
      b.textContent = on ? "Confirm cancel" : "Cancel";
      b.classList.toggle("armed", on);
    });
  }
  document.addEventListener("click", async function (event) {
    const button = event.target.closest("button[data-cancel]");
    if (!button) return;
    const id = button.dataset.cancel;
    if (Date.now() - (armed[id] || 0) >= ARM_MS) {
      armed[id] = Date.now();
      markArmed(document);
      setTimeout(function () { markArmed(document); }, ARM_MS + 50);
      return;
    }
    delete armed[id];
    button.disabled = true;
    const result = await api("/operations/" + encodeURIComponent(id) + "/cancel", { method: "POST" });
    if (result.ok) flash("Cancelled " + id, "ok"); else flash(problem(result), "error");
    button.disabled = false;
    refreshAll();
  });

  // ---- API key box
  const keyForm = document.getElementById("apikey-form");
  const keyInput = document.getElementById("apikey");
  const keyState = document.getElementById("apikey-state");
  function showKeyState() { keyState.textContent = apiKey() ? "set for this tab" : ""; }
  keyForm.addEventListener("submit", function (event) {
    event.preventDefault();
    if (keyInput.value) sessionStorage.setItem(KEY_STORE, keyInput.value);
    else sessionStorage.removeItem(KEY_STORE);
    keyInput.value = "";
    showKeyState();
  });
  showKeyState();

  // ---- start a backtest
  const form = document.getElementById("backtest-form");
  if (form) {
    const idempotencyKey = "console-" + Date.now() + "-" + Math.random().toString(16).slice(2);
    form.addEventListener("submit", async function (event) {
      event.preventDefault();
      const error = document.getElementById("form-error");
      error.hidden = true;
      const data = new FormData(form);
      const body = {};
      body.strategy = data.get("source") === "yaml" ? data.get("yaml") : data.get("example");
      const series = data.get("series");
      if (series) { const parts = series.split("|"); body.symbol = parts[0]; body.timeframe = parts[1]; }
      if (data.get("start")) body.start = data.get("start") + "T00:00:00Z";
      if (data.get("end")) body.end = data.get("end") + "T23:59:59Z";
      for (const name of ["capital", "commission", "slippage"]) {
        const value = data.get(name);
        if (value !== "" && value !== null) body[name] = Number(value);
      }
      const submit = document.getElementById("submit-backtest");
      submit.disabled = true;
      const result = await api("/backtests/start", {
        method: "POST", body: body, headers: { "Idempotency-Key": idempotencyKey },
      });
      submit.disabled = false;
      if (result.ok) { location.assign("/operations/" + encodeURIComponent(result.body.id)); return; }
      error.textContent = problem(result);  // the API's own message, as text
      error.hidden = false;
    });
  }

  document.querySelectorAll("[data-live]").forEach(watch);
  window.ktrdrConsole = { api: api, flash: flash, refreshAll: refreshAll };
})();
