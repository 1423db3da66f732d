// The dashboard page: polls the read-only JSON views and draws them. Every text from the
// database goes in through textContent (never innerHTML): parameter values and messages are
// data, not markup. The charts are Plotly figures built by the server (figures.py).
"use strict";

const query = new URLSearchParams(location.search);
const token = query.get("token");
const REFRESH_WATCHED_MS = 2000;     // a master is running: results arrive
const REFRESH_IDLE_MS = 10000;       // nobody is writing; still notice a master that starts
// A refresh's read holds SQLite's shared lock (the master waits for it to commit): wait at
// least this many times as long as the last read took, so reads take at most a tenth of the time.
const READ_SHARE_INVERSE = 10;
let chosen = query.get("e");
let refreshes = 0;

function api(path) {
  const url = new URL(path, location.href);
  url.search = "";
  if (token) url.searchParams.set("token", token);
  return fetch(url, {cache: "no-store"}).then((r) => {
    if (!r.ok) throw new Error(`${r.status} ${r.statusText} from ${path}`);
    return r.json();
  });
}

function el(tag, text, cls) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  if (cls) node.className = cls;
  return node;
}

function setText(id, text) { document.getElementById(id).textContent = text ?? "-"; }

function num(v) {
  if (v === null || v === undefined) return "-";
  if (Number.isInteger(v)) return String(v);
  const a = Math.abs(v);
  const text = a !== 0 && (a < 1e-3 || a >= 1e6) ? v.toExponential(5) : v.toPrecision(6);
  return text.replace(/\.?0+(e|$)/, "$1");      // like Python's %.6g
}

function point(params) {
  if (!params) return "-";
  return Object.entries(params).map(([k, v]) => `${k}=${num(v)}`).join(" ");
}

function duration(s) {
  if (s === null || s === undefined) return "unknown";
  if (s < 90) return `${Math.round(s)} s`;
  if (s < 5400) return `${Math.round(s / 60)} min`;
  return `${(s / 3600).toFixed(1)} h`;
}

function masterWatching(status) { return Boolean(status.master && status.master.alive); }

function watchLine(status) {
  const m = status.master;
  if (m && m.alive) {
    return `master pid ${m.pid} on ${m.host} is watching this experiment ` +
      `(heartbeat ${Math.round(m.heartbeat_age_s)} s ago); this page refreshes itself`;
  }
  const last = m ? ` (last master: pid ${m.pid} on ${m.host}, heartbeat ` +
    `${duration(m.heartbeat_age_s)} ago)` : "";
  return `No master is watching this experiment: what you see is the last state recorded` +
    `${last}. Jobs may still be running at the scheduler; \`orchestrator start\` resumes.`;
}

function progressText(p) {
  return p.total === null ? `${p.done}` : `${p.done} / ${p.total}`;
}

function leftText(status, p) {
  if (["finished", "cancelled", "failed"].includes(p.basis)) return `nothing (${p.basis})`;
  const parts = [];
  if (p.remaining_s !== null) parts.push(`about ${duration(p.remaining_s)}`);
  if (p.remaining_stages_min !== null) parts.push(`at least ${p.remaining_stages_min} stages`);
  return parts.length ? parts.join(", ") : "unknown";
}

function fillTable(id, rows, cells) {
  const body = document.querySelector(`#${id} tbody`);
  body.replaceChildren(...rows.map((r) => {
    const tr = el("tr");
    cells(r).forEach((c, i, all) => tr.append(el("td", c, i === all.length - 1 ? "wrap" : "")));
    return tr;
  }));
}

function showProblem(text) {
  const box = document.getElementById("problem");
  box.hidden = !text;
  box.textContent = text || "";
}

function drawDetail(view) {
  document.getElementById("list-view").hidden = true;
  document.getElementById("detail-view").hidden = false;
  setText("title", view.label);
  if (view.missing || view.error) {
    showProblem(view.missing || `cannot read this experiment: ${view.error}`);
    return false;
  }
  showProblem("");
  const s = view.status, p = view.progress;
  document.title = `${s.experiment}: ${s.state}`;
  setText("title", s.experiment);
  const badge = document.getElementById("state");
  badge.textContent = s.state + (s.message ? ` (${s.message})` : "");
  badge.className = `badge ${s.state}`;
  const watch = document.getElementById("watch");
  watch.hidden = false;
  watch.textContent = watchLine(s);
  watch.className = masterWatching(s) ? "banner" : "banner stale";
  setText("progress-done", progressText(p));
  setText("progress-note", p.total === null ? "points measured; the total is not known in " +
    "advance" : `points measured or given up (${s.failed_points} failed)`);
  document.querySelector("#progress-bar div").style.width =
    p.total ? `${Math.round(100 * p.done / p.total)}%` : "0";
  setText("progress-best", p.best ? num(p.best.value) : "-");
  setText("progress-best-params", p.best ? `${point(p.best.params)} (evaluation ${p.best.evaluation})` : "");
  setText("progress-left", leftText(s, p));
  setText("progress-basis", p.basis);
  setText("progress-stage", s.stage === null ? "-" : `${s.stage} (level ${s.level})`);
  setText("progress-base", s.stage === null ? "no stages (not DSICE)" : `base ${point(s.base_params)}`);
  setText("progress-slots", `${s.running} running / cap ${s.cap}`);
  setText("progress-util", s.utilisation === null ? "" :
    `${Math.round(100 * s.utilisation)}% used; ${s.pending} pending, ${s.failed_points} failed points`);
  const config = {displaylogo: false, responsive: true};
  for (const [name, fig] of Object.entries(view.figures)) {
    Plotly.react(`chart-${name}`, fig.data, fig.layout, config);
  }
  setText("queue-count", view.queue.length ? `(${view.queue.length} in flight)` : "(nothing in flight)");
  fillTable("queue", view.queue, (q) => [q.job_id ?? "-", q.attempt, q.state, point(q.params),
    q.submitted_at ?? "-", q.elapsed_s === null ? "-" : duration(q.elapsed_s), q.node ?? "-"]);
  fillTable("events", view.events.slice().reverse(), (e) => [e.at, e.kind, e.message]);
  return masterWatching(s);
}

function drawList(listing) {
  document.getElementById("detail-view").hidden = true;
  document.getElementById("list-view").hidden = false;
  setText("title", `${listing.experiments.length} experiments`);
  let watched = false;
  fillTable("experiments", listing.experiments, (x) => {
    if (x.missing || x.error) return [x.label, x.missing ? "not started" : "unreadable", "-", "-", "-", x.missing || x.error];
    watched = watched || masterWatching(x.status);
    return [x.label, x.status.state, masterWatching(x.status) ? "watching" : "none",
      progressText(x.progress), x.progress.best ? num(x.progress.best.value) : "-",
      leftText(x.status, x.progress)];
  });
  document.querySelectorAll("#experiments tbody tr").forEach((tr, i) => {
    const link = el("a", listing.experiments[i].label);
    const target = new URLSearchParams({e: listing.experiments[i].slug});
    if (token) target.set("token", token);
    link.href = `?${target}`;
    tr.firstChild.replaceChildren(link);
  });
  return watched;
}

async function refresh() {
  let watched = false;
  let delay = REFRESH_IDLE_MS;
  try {
    if (!chosen) {
      const listing = await api("api/experiments");
      if (listing.single && listing.experiments.length === 1) chosen = listing.experiments[0].slug;
      else watched = drawList(listing);
    }
    let readMs = 0;
    if (chosen) {
      const view = await api(`api/e/${chosen}`);
      readMs = 1000 * (view.read_s || 0);
      watched = drawDetail(view);
    }
    refreshes += 1;
    document.body.dataset.refreshes = String(refreshes);
    delay = Math.max(watched ? REFRESH_WATCHED_MS : REFRESH_IDLE_MS, READ_SHARE_INVERSE * readMs);
    setText("updated", `updated ${new Date().toLocaleTimeString()}, ` +
      `every ${Math.round(delay / 100) / 10} s`);
  } catch (err) {
    showProblem(`cannot reach the dashboard server (${err.message}); retrying`);
  }
  setTimeout(refresh, delay);
}

refresh();
