// The Userflux dashboard: lists the daemon's runs and shows one, live from
// its event stream (GET /v1/runs/{id}/events, one JSON object a second:
// the timeline line plus status) or, once finished, from the same stream's
// history and its summary. Steering (stop, VUs, start) needs the token the
// daemon wrote to runs/dashboard.token (`userfluxctl dashboard` prints a
// URL that carries it after #token=). Everything comes from the daemon.
"use strict";

const $ = (id) => document.getElementById(id);
const FINAL = new Set(["finished", "stopped", "failed"]);
const PALETTE = ["#2f6fde", "#e8710a", "#1a7f37", "#c62828", "#8e44ad", "#00838f", "#a1887f", "#d81b60", "#7cb342", "#5c6bc0"];

let token = sessionStorage.getItem("userflux-token") || "";
(function takeTokenFromHash() {
  const m = location.hash.match(/token=([0-9a-f]+)/);
  if (m) {
    token = m[1];
    sessionStorage.setItem("userflux-token", token);
    history.replaceState(null, "", location.pathname + location.search);
  }
})();

async function api(method, path, body) {
  const headers = {};
  if (token) headers["Authorization"] = "Bearer " + token;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const r = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  let data = null;
  try { data = await r.json(); } catch (_) { /* not JSON */ }
  if (!r.ok) {
    const msg = data && data.error ? data.error.message : r.status + " " + r.statusText;
    if (r.status === 403 && data && data.error && data.error.kind === "token") $("token-form").hidden = false;
    throw new Error(msg);
  }
  return data;
}

function fmt(v, digits) {
  if (v === null || v === undefined || Number.isNaN(v)) return "–";
  return Number(v).toLocaleString(undefined, { maximumFractionDigits: digits === undefined ? 1 : digits });
}

function cell(tr, text, cls) {
  const td = document.createElement("td");
  td.textContent = text;
  if (cls) td.className = cls;
  tr.appendChild(td);
  return td;
}

// ---- runs list ---------------------------------------------------------

let selected = new URLSearchParams(location.search).get("run");

async function refreshRuns() {
  let runs;
  try {
    runs = (await api("GET", "/v1/runs")).runs;
    $("conn").textContent = "daemon reachable";
  } catch (e) {
    $("conn").textContent = "daemon unreachable: " + e.message;
    return;
  }
  runs.sort((a, b) => (a.run_id < b.run_id ? 1 : -1));
  const ul = $("runs");
  const frag = document.createDocumentFragment();
  for (const r of runs) {
    const li = document.createElement("li");
    const a = document.createElement("a");
    a.href = "?run=" + r.run_id;
    a.dataset.run = r.run_id;
    a.textContent = r.run_id + " " + r.name + " ";
    const s = document.createElement("span");
    s.className = "state " + r.state;
    s.textContent = r.state;
    a.appendChild(s);
    if (r.run_id === selected) a.className = "selected";
    a.addEventListener("click", (ev) => { ev.preventDefault(); select(r.run_id, true); });
    li.appendChild(a);
    frag.appendChild(li);
  }
  ul.replaceChildren(frag);
  if (!selected && runs.length) {
    const running = runs.find((r) => r.state === "running") || runs[0];
    select(running.run_id, false);
  }
}

// ---- one run -----------------------------------------------------------

let view = null;

function newView(id) {
  return {
    id, source: null, status: null, fromSummary: false, config: null,
    t: [], rps: [], errors: [], opens: new Map(), lat: { p50: [], p95: [], p99: [], c50: [], c95: [], c99: [] },
    kinds: new Map(), vus: new Map(), st: new Map(), flows: new Map(), events: [],
    last: null, charts: {}, dirty: false,
  };
}

function select(id, push) {
  if (view && view.source) view.source.close();
  for (const c of Object.values(view ? view.charts : {})) c.plot.destroy();
  selected = id;
  if (push) history.pushState(null, "", "?run=" + id);
  for (const a of document.querySelectorAll("#runs a")) a.className = a.dataset.run === id ? "selected" : "";
  view = newView(id);
  $("run-title").textContent = id;
  $("run-msg").textContent = "";
  for (const t of ["steer", "thresholds", "checks", "flows", "events"]) $(t).tBodies[0].replaceChildren();
  setStats(0, 0, null, null, null, null);
  api("GET", "/v1/runs/" + id + "/summary").then((s) => { if (view && view.id === id) view.summary = s; }).catch(() => {});
  openStream(view);
}

function openStream(v) {
  const url = "/v1/runs/" + v.id + "/events" + (token ? "?token=" + token : "");
  const es = new EventSource(url);
  v.source = es;
  es.addEventListener("second", (ev) => { const d = JSON.parse(ev.data); onStatus(v, d.status); onSecond(v, d.second, d.dropped); });
  es.addEventListener("status", (ev) => onStatus(v, JSON.parse(ev.data).status));
  es.addEventListener("end", (ev) => {
    es.close();
    onStatus(v, JSON.parse(ev.data).status);
    finish(v);
  });
  es.onerror = () => { if (v === view) $("conn").textContent = "stream interrupted; reconnecting…"; };
  es.onopen = () => { if (v === view) $("conn").textContent = "live"; };
}

function onStatus(v, st) {
  if (v !== view || !st) return;
  v.status = st;
  const s = $("run-state");
  s.textContent = st.state;
  s.className = "state " + st.state;
  $("run-title").textContent = st.run_id + " — " + st.name;
  $("stop").hidden = !(st.state === "running" || st.state === "queued");
  const p = st.progress;
  if (!v.t.length) setStats(p.requests, p.errors, p.rps, p.p99_ms, p.vus, p.elapsed_s);
  $("stat-elapsed").textContent = fmt(p.elapsed_s, 0) + " / " + fmt(p.duration_s, 0) + " s";
  if (st.error) $("run-msg").textContent = st.error.kind + ": " + st.error.message;
}

function setStats(requests, errors, rps, p99, vus) {
  const r = $("stat-requests");
  r.textContent = fmt(requests, 0);
  r.dataset.value = String(requests || 0);
  $("stat-errors").textContent = fmt(errors, 0);
  $("stat-rps").textContent = rps === null ? "–" : fmt(rps, 0) + "/s";
  $("stat-p99").textContent = p99 === null || p99 === undefined ? "–" : fmt(p99, 2) + " ms";
  $("stat-vus").textContent = vus === null ? "–" : fmt(vus, 0);
}

function series(map, key, len) {
  let a = map.get(key);
  if (!a) { a = new Array(len).fill(null); map.set(key, a); }
  return a;
}

function onSecond(v, s, dropped) {
  if (v !== view || !s) return;
  const n = v.t.length;
  v.t.push(s.t + 1);
  v.rps.push(s.rps);
  let c = { p50: null, p95: null, p99: null };
  const kinds = {}, live = s.live || {};
  for (const [name, e] of Object.entries(live)) {
    if (e.target_rps !== undefined) {
      // an open-model endpoint: its achieved rate against its schedule's
      series(v.opens, name + " target", n);
      series(v.opens, name + " achieved", n);
    }
    if (e.corrected) for (const k of ["p50", "p95", "p99"]) {
      // the worst open-model endpoint's corrected percentile
      if (e.corrected[k] !== null && (c[k] === null || e.corrected[k] > c[k])) c[k] = e.corrected[k];
    }
    for (const [kind, count] of Object.entries(e.error_kinds || {})) kinds[kind] = (kinds[kind] || 0) + count;
    void name;
  }
  v.errors.push(s.errors);
  for (const [key, a] of v.opens) {
    const name = key.slice(0, key.lastIndexOf(" "));
    const e = live[name];
    if (key.endsWith(" target")) a.push(e && e.target_rps !== undefined ? e.target_rps : null);
    else a.push(s.endpoints[name] ? s.endpoints[name].rps : null);
  }
  v.lat.p50.push(s.p50); v.lat.p95.push(s.p95); v.lat.p99.push(s.p99);
  v.lat.c50.push(c.p50); v.lat.c95.push(c.p95); v.lat.c99.push(c.p99);
  for (const k of Object.keys(kinds)) series(v.kinds, k, n);
  for (const [k, a] of v.kinds) a.push(kinds[k] || 0);
  const stepOf = new Set();
  for (const f of Object.keys(s.flows || {})) series(v.flows, f, n);
  for (const [f, a] of v.flows) a.push(s.flows && s.flows[f] ? s.flows[f].rate : null);
  for (const [name, e] of Object.entries(s.endpoints || {})) {
    const flow = name.includes(".") && s.flows && s.flows[name.split(".")[0]] ? name.split(".")[0] : null;
    const unit = flow || name;
    if (!stepOf.has(unit)) { series(v.vus, unit, n); stepOf.add(unit); }
    for (const [metric, m] of Object.entries(e.server_timing || {})) series(v.st, name + " " + metric, n);
  }
  for (const [unit, a] of v.vus) {
    const e = s.endpoints[unit];
    const f = s.flows && s.flows[unit];
    a.push(f ? f.vus : e ? e.vus : null);
  }
  for (const [key, a] of v.st) {
    const i = key.lastIndexOf(" ");
    const e = s.endpoints[key.slice(0, i)];
    const m = e && e.server_timing ? e.server_timing[key.slice(i + 1)] : null;
    a.push(m ? m.p50 : null);
  }
  for (const ev of s.scaling_events || []) v.events.push(ev);
  v.last = s;
  v.totals = [s.total_requests, s.total_errors];
  if (dropped) $("run-msg").textContent = dropped + " second(s) skipped: this browser fell behind the stream";
  if (!v.dirty) { v.dirty = true; requestAnimationFrame(() => render(v)); }
}

function finish(v) {
  if (v !== view) return;
  const show = (s) => {
    if (!v.t.length && s.timeline) {
      for (const sec of s.timeline) onSecond(v, Object.assign({ live: {}, total_requests: null }, sec));
      v.events = (s.scaling_events || []).slice();
      v.totals = [s.totals.requests, s.totals.errors];
      v.fromSummary = true;
    }
    v.summary = s;
    render(v);
  };
  api("GET", "/v1/runs/" + v.id + "/summary").then(show).catch((e) => { $("run-msg").textContent = "no summary: " + e.message; render(v); });
  fetch("/v1/runs/" + v.id + "/report", { method: "GET" }).then((r) => {
    if (r.ok && v === view) {
      const a = $("report-link");
      a.href = "/v1/runs/" + v.id + "/report";
      a.hidden = false;
    }
  });
}

// ---- charts ------------------------------------------------------------

function axisColors() {
  const cs = getComputedStyle(document.documentElement);
  const fg = cs.getPropertyValue("--muted").trim() || "#888";
  const grid = cs.getPropertyValue("--line").trim() || "#ddd";
  return { stroke: fg, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid, width: 1 } };
}

function eventsPlugin(v) {
  return {
    hooks: {
      draw: [(u) => {
        const ctx = u.ctx;
        ctx.save();
        ctx.setLineDash([4, 4]);
        ctx.strokeStyle = getComputedStyle(document.documentElement).getPropertyValue("--warn").trim() || "#b26a00";
        for (const e of v.events) {
          const x = Math.round(u.valToPos(e.t, "x", true));
          if (x < u.bbox.left || x > u.bbox.left + u.bbox.width) continue;
          ctx.beginPath();
          ctx.moveTo(x, u.bbox.top);
          ctx.lineTo(x, u.bbox.top + u.bbox.height);
          ctx.stroke();
        }
        ctx.restore();
      }],
    },
  };
}

// (Re)builds a chart when its series set changed, else just sets the data.
function chart(v, id, names, data, opts) {
  const key = names.join("\u0000");
  const el = $(id);
  // a chart with nothing to show (no flows, no Server-Timing) is hidden
  el.parentElement.hidden = names.length === 0;
  let c = v.charts[id];
  if (c && c.key !== key) { c.plot.destroy(); c = null; }
  if (!c) {
    const ax = axisColors();
    const width = Math.max(300, el.clientWidth || 460);
    const plot = new uPlot({
      width, height: 220,
      plugins: opts && opts.plugins ? opts.plugins : [],
      scales: { x: { time: false } },
      axes: [Object.assign({ label: "s" }, ax), Object.assign({}, ax, { size: 60 })],
      series: [{ label: "t" }].concat(names.map((n, i) => Object.assign({
        label: n, stroke: PALETTE[i % PALETTE.length], width: 1.5, spanGaps: false,
      }, opts && opts.style ? opts.style(n, i) : {}))),
    }, [v.t].concat(data), el);
    c = { key, plot };
    v.charts[id] = c;
    el.dataset.points = "0";
  } else {
    c.plot.setData([v.t].concat(data));
  }
  el.dataset.points = String(v.t.length);
}

function render(v) {
  v.dirty = false;
  if (v !== view || typeof uPlot === "undefined") return;
  const s = v.last;
  const fin = v.summary && v.status && FINAL.has(v.status.state) ? v.summary.totals : null;
  if (fin) {
    // a run that ended: its whole-run figures (the last second may be a partial one)
    setStats(fin.requests, fin.errors, fin.rps, fin.latency_ms ? fin.latency_ms.p99 : null, fin.vus === undefined ? null : fin.vus);
  } else if (s) {
    setStats(v.totals[0] === null ? sum(v, "requests") : v.totals[0], v.totals[1] === null ? sum(v, "errors") : v.totals[1], s.rps, s.p99, s.vus);
  }
  const rateNames = ["all achieved", ...v.opens.keys()], rateData = [v.rps, ...v.opens.values()];
  chart(v, "chart-rate", rateNames, rateData, {
    style: (n, i) => (n.endsWith(" target") ? { dash: [6, 4], stroke: PALETTE[(i + 1) % PALETTE.length] } : {}),
  });
  const latNames = ["p50", "p95", "p99"], latData = [v.lat.p50, v.lat.p95, v.lat.p99];
  if (v.lat.c99.some((x) => x !== null)) {
    latNames.push("corrected p50", "corrected p95", "corrected p99");
    latData.push(v.lat.c50, v.lat.c95, v.lat.c99);
  }
  chart(v, "chart-latency", latNames, latData, { style: (n, i) => (n.startsWith("corrected") ? { dash: [6, 4], stroke: PALETTE[i - 3] } : {}) });
  chart(v, "chart-errors", ["all", ...v.kinds.keys()], [v.errors, ...v.kinds.values()]);
  chart(v, "chart-vus", [...v.vus.keys()], [...v.vus.values()], { plugins: [eventsPlugin(v)] });
  chart(v, "chart-st", [...v.st.keys()], [...v.st.values()]);
  chart(v, "chart-flows", [...v.flows.keys()], [...v.flows.values()]);
  renderSteer(v);
  renderTables(v);
}

function sum(v, field) {
  let n = 0;
  if (v.summary) for (const sec of v.summary.timeline || []) n += sec[field];
  return n;
}

// ---- tables ------------------------------------------------------------

function renderSteer(v) {
  const body = $("steer").tBodies[0];
  const running = v.status && v.status.state === "running";
  for (const [unit, a] of v.vus) {
    let tr = body.querySelector(`tr[data-unit="${CSS.escape(unit)}"]`);
    if (!tr) {
      tr = document.createElement("tr");
      tr.dataset.unit = unit;
      cell(tr, unit);
      cell(tr, "").className = "now";
      const td = cell(tr, "");
      const input = document.createElement("input");
      input.type = "number"; input.min = "0"; input.className = "vus";
      const b = document.createElement("button");
      b.textContent = "Set";
      b.className = "set-vus";
      b.addEventListener("click", () => setVus(v, unit, input));
      td.append(input, " ", b);
      // an open-model unit's rate (a closed-model one's is refused with the reason)
      cell(tr, "").className = "rate-now";
      const rt = cell(tr, "");
      const rate = document.createElement("input");
      rate.type = "number"; rate.min = "0"; rate.step = "any"; rate.className = "rate";
      const rb = document.createElement("button");
      rb.textContent = "Set";
      rb.className = "set-rate";
      rb.addEventListener("click", () => setRate(v, unit, rate));
      rt.append(rate, " ", rb);
      body.appendChild(tr);
    }
    tr.querySelector(".now").textContent = fmt(a[a.length - 1], 0);
    const live = v.last && v.last.live && v.last.live[unit];
    tr.querySelector(".rate-now").textContent =
      live && live.target_rps !== undefined ? fmt(live.target_rps, 1) : "–";
    for (const b of tr.querySelectorAll("button")) b.disabled = !running;
  }
}

async function setRate(v, unit, input) {
  const rate = parseFloat(input.value);
  if (!(rate > 0)) { $("run-msg").textContent = "rate: a number > 0 (per second)"; return; }
  try {
    await api("POST", "/v1/runs/" + v.id + "/rate", { unit, rate });
    $("run-msg").textContent = `asked: ${unit} → ${rate}/s (applied within a second)`;
  } catch (e) {
    $("run-msg").textContent = "rate change refused: " + e.message;
  }
}

async function setVus(v, unit, input) {
  const vus = parseInt(input.value, 10);
  if (!(vus >= 0)) { $("run-msg").textContent = "VUs: a whole number ≥ 0"; return; }
  try {
    await api("POST", "/v1/runs/" + v.id + "/vus", { unit, vus });
    $("run-msg").textContent = `asked: ${unit} → ${vus} VUs (applied within a second)`;
  } catch (e) {
    $("run-msg").textContent = "VU change refused: " + e.message;
  }
}

function renderTables(v) {
  const s = v.summary && FINAL.has(v.status && v.status.state) ? v.summary : null;
  const th = $("thresholds").tBodies[0];
  th.replaceChildren();
  const thresholds = s ? s.thresholds : (v.last && v.last.thresholds) || [];
  for (const t of thresholds) {
    const tr = document.createElement("tr");
    cell(tr, t.metric); cell(tr, t.expression); cell(tr, fmt(t.observed, 3));
    cell(tr, t.ok ? (s ? "passed" : "passing") : (s ? "failed" : "failing"), t.ok ? "ok" : "bad");
    th.appendChild(tr);
  }
  const ch = $("checks").tBodies[0];
  ch.replaceChildren();
  const rows = [];
  if (s) {
    for (const [ep, e] of Object.entries(s.endpoints)) for (const [name, c] of Object.entries(e.checks || {})) rows.push([ep, name, c.passes, c.fails]);
  } else if (v.last) {
    for (const [ep, e] of Object.entries(v.last.live || {})) for (const [name, c] of Object.entries(e.checks || {})) rows.push([ep, name, c[0], c[1]]);
  }
  for (const [ep, name, p, f] of rows) {
    const tr = document.createElement("tr");
    cell(tr, ep); cell(tr, name); cell(tr, fmt(p, 0), "ok"); cell(tr, fmt(f, 0), f ? "bad" : "");
    ch.appendChild(tr);
  }
  const fl = $("flows").tBodies[0];
  fl.replaceChildren();
  for (const [name, f] of Object.entries((v.last && v.last.flows) || {})) {
    const tr = document.createElement("tr");
    cell(tr, name); cell(tr, fmt(f.rate, 1)); cell(tr, fmt(f.failed, 0), f.failed ? "bad" : "");
    cell(tr, fmt(f.p50, 2)); cell(tr, fmt(f.p99, 2)); cell(tr, fmt(f.vus, 0));
    fl.appendChild(tr);
  }
  const ev = $("events").tBodies[0];
  ev.replaceChildren();
  for (const e of v.events) {
    const tr = document.createElement("tr");
    tr.dataset.reason = e.reason;
    // a rate change shows its rates (its VUs do not move)
    const from = e.rate ? fmt(e.rate.from, 1) + "/s" : e.from;
    const to = e.rate ? fmt(e.rate.to, 1) + "/s" : e.to;
    cell(tr, fmt(e.t, 1)); cell(tr, e.endpoint); cell(tr, from); cell(tr, to); cell(tr, e.reason);
    ev.appendChild(tr);
  }
}

// ---- controls ----------------------------------------------------------

$("stop").addEventListener("click", async () => {
  if (!view) return;
  try {
    const r = await api("POST", "/v1/runs/" + view.id + "/stop");
    $("run-msg").textContent = "stop asked: " + r.state;
  } catch (e) {
    $("run-msg").textContent = "stop refused: " + e.message;
  }
});

$("start-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const body = { path: $("start-path").value.trim() };
  const target = $("start-target").value.trim();
  if (target) body.target = target;
  try {
    const r = await api("POST", "/v1/runs/from-file", body);
    $("start-msg").textContent = "queued " + r.run_id;
    await refreshRuns();
    select(r.run_id, true);
  } catch (e) {
    $("start-msg").textContent = "not started: " + e.message;
  }
});

$("token-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  token = $("token-input").value.trim();
  sessionStorage.setItem("userflux-token", token);
  $("token-form").hidden = true;
});

window.addEventListener("popstate", () => {
  const id = new URLSearchParams(location.search).get("run");
  if (id) select(id, false);
});

refreshRuns();
setInterval(refreshRuns, 3000);
if (selected) select(selected, false);
