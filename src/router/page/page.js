// The live page: one EventSource on dashboard/stream, one `snapshot` event per second (JSON, see
// src/router/page/page-snapshot.ts), shown as text (every figure also in `data-value`, raw) and as
// three uPlot charts. Data from events (user ids, event types) only ever goes into textContent.
// A `?token=` in the page's address is passed on to the stream (EventSource cannot send headers)
// and as `Authorization: Bearer` to any fetch the page makes.

const token = new URLSearchParams(location.search).get('token');
const streamUrl = 'dashboard/stream' + (token ? `?token=${encodeURIComponent(token)}` : '');

/** fetch with the page's token as a bearer header. */
export function authFetch(url, init = {}) {
  const headers = new Headers(init.headers);
  if (token) headers.set('authorization', `Bearer ${token}`);
  return fetch(url, { ...init, headers });
}

const COLORS = ['#4ea1ff', '#3fb950', '#d29922', '#f85149', '#a371f7', '#39c5cf', '#ff7b72', '#e3b341', '#79c0ff', '#8b949e'];
const HISTORY = 300; // points kept for the time charts (5 minutes at one per second)
const MAX_TYPES = 8; // event types drawn; the rest are summed as "other"

const $ = (sel) => document.querySelector(sel);
const fmtInt = (n) => (n === null || n === undefined ? '–' : Math.round(n).toLocaleString('en-US'));
const fmtNum = (n, digits = 1) => (n === null || n === undefined ? '–' : n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits }));
const fmtBytes = (n) => (n >= 1 << 20 ? `${fmtNum(n / (1 << 20))} MiB` : n >= 1024 ? `${fmtNum(n / 1024)} KiB` : `${n} B`);

/** Sets the text and the raw `data-value` of one figure. */
function figure(testid, value, text) {
  const el = document.querySelector(`[data-testid="${testid}"]`);
  if (!el) return;
  el.dataset.value = value === null || value === undefined ? '' : String(value);
  el.textContent = text ?? fmtInt(value);
}

function cell(text, opts = {}) {
  const td = document.createElement('td');
  td.textContent = text;
  if (opts.cls) td.className = opts.cls;
  if (opts.testid) td.dataset.testid = opts.testid;
  if (opts.value !== undefined) td.dataset.value = opts.value === null ? '' : String(opts.value);
  return td;
}

function fillRows(tbody, rows, columns) {
  const trs = rows.map((r) => {
    const tr = document.createElement('tr');
    for (const c of r) tr.append(c);
    return tr;
  });
  if (trs.length === 0) {
    const tr = document.createElement('tr');
    tr.className = 'empty';
    const td = cell('no data yet');
    td.colSpan = columns;
    tr.append(td);
    trs.push(tr);
  }
  tbody.replaceChildren(...trs);
}

// ---- charts ------------------------------------------------------------------------------------

function chartOptions(el, series, extra = {}) {
  const axis = { stroke: '#8494a4', grid: { stroke: '#26313d', width: 1 }, ticks: { stroke: '#26313d', width: 1 } };
  return {
    width: Math.max(300, el.clientWidth),
    height: 200,
    scales: { x: { time: true } },
    axes: [axis, { ...axis, size: 60 }],
    legend: { live: true },
    cursor: { drag: { x: false, y: false } },
    series: [{}, ...series],
    ...extra,
  };
}

// uPlot shows a series' points by itself while they are few (a new kind, a short history).
const lineSeries = (label, i) => ({ label, stroke: COLORS[i % COLORS.length], width: 2, spanGaps: false });

/** A uPlot chart whose series can change: rebuilt when the labels change, else just given data. */
class Chart {
  constructor(el, extra = {}) {
    this.el = el;
    this.extra = extra;
    this.labels = null;
    this.plot = null;
  }
  set(labels, data, seriesOf = lineSeries) {
    if (typeof uPlot === 'undefined') return; // the numbers still update without charts
    const key = labels.join('\u0000');
    if (this.plot && this.labels === key) {
      this.plot.setData(data);
      return;
    }
    this.plot?.destroy();
    this.labels = key;
    this.plot = new uPlot(chartOptions(this.el, labels.map(seriesOf), this.extra), data, this.el);
  }
  resize() {
    this.plot?.setSize({ width: Math.max(300, this.el.clientWidth), height: 200 });
  }
}

const charts = {
  ingest: new Chart($('#chart-ingest')),
  events: new Chart($('#chart-events')),
  queries: new Chart($('#chart-queries')),
};
window.addEventListener('resize', () => Object.values(charts).forEach((c) => c.resize()));

const rateHistory = { xs: [], ys: [] };
const p95History = { xs: [], byKind: new Map() };

function pushBounded(arr, v) {
  arr.push(v);
  if (arr.length > HISTORY) arr.shift();
}

function drawIngest(s) {
  pushBounded(rateHistory.xs, s.at / 1000);
  pushBounded(rateHistory.ys, s.ingest.throughput_per_second);
  charts.ingest.set(['events/s'], [rateHistory.xs, rateHistory.ys], (label) => ({ label, stroke: COLORS[0], width: 2, fill: 'rgba(78,161,255,0.15)', points: { show: false } }));
}

function drawQueries(s) {
  const n = p95History.xs.length;
  pushBounded(p95History.xs, s.at / 1000);
  const dropped = p95History.xs.length === n; // the oldest point went
  for (const q of s.queries) {
    if (!p95History.byKind.has(q.kind)) p95History.byKind.set(q.kind, new Array(n).fill(null));
  }
  const seen = new Map(s.queries.map((q) => [q.kind, q.p95_ms]));
  for (const [kind, ys] of p95History.byKind) {
    ys.push(seen.has(kind) ? seen.get(kind) : null);
    if (dropped) ys.shift();
  }
  const kinds = [...p95History.byKind.keys()].sort();
  if (kinds.length === 0) return;
  charts.queries.set(kinds, [p95History.xs, ...kinds.map((k) => p95History.byKind.get(k))]);
}

function drawEvents(ev) {
  const starts = ev.recent_windows.window_starts;
  const totals = new Map();
  for (const r of ev.recent_windows.rows) totals.set(r.event_type, (totals.get(r.event_type) ?? 0) + r.count);
  const ranked = [...totals].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1));
  const shown = ranked.slice(0, MAX_TYPES).map(([t]) => t);
  const hasOther = ranked.length > MAX_TYPES;
  const labels = hasOther ? [...shown, 'other'] : shown;
  const index = new Map(starts.map((s, i) => [s, i]));
  const ys = labels.map(() => new Array(starts.length).fill(0));
  for (const r of ev.recent_windows.rows) {
    const i = index.get(r.window_start);
    if (i === undefined) continue;
    const k = shown.indexOf(r.event_type);
    ys[k >= 0 ? k : labels.length - 1][i] += r.count;
  }
  if (labels.length > 0) {
    charts.events.set(labels, [starts.map((s) => s / 1000), ...ys], (label, i) => ({ ...lineSeries(label, i), points: { show: true, size: 5 } }));
  }
  fillRows(
    $('#recent-types'),
    ranked.map(([type, count]) => [cell(type, { cls: 'key', testid: 'recent-type' }), cell(fmtInt(count), { cls: 'n', testid: 'recent-type-count', value: count })]),
    2,
  );
  for (const [i, tr] of [...$('#recent-types').children].entries()) if (ranked[i]) tr.dataset.key = ranked[i][0];
}

// ---- tables ------------------------------------------------------------------------------------

function drawTop(tbodySel, rows, key, prefix) {
  const tbody = $(tbodySel);
  fillRows(
    tbody,
    rows.map((r, i) => [cell(String(i + 1)), cell(r[key], { cls: 'key', testid: `${prefix}-${i}` }), cell(fmtInt(r.count), { cls: 'n', testid: `${prefix}-${i}-count`, value: r.count })]),
    3,
  );
  rows.forEach((r, i) => (tbody.children[i].dataset.key = r[key]));
}

function drawShards(shards) {
  const rows = shards.map((sh) => {
    const pct = sh.ring_fill * 100;
    const fill = document.createElement('td');
    const bar = document.createElement('span');
    bar.className = pct > 80 ? 'bar hot' : 'bar';
    const inner = document.createElement('i');
    inner.style.width = `${Math.min(100, pct)}%`;
    bar.append(inner);
    const label = document.createElement('span');
    label.dataset.testid = `shard-${sh.shard}-ring-fill`;
    label.dataset.value = String(sh.ring_fill);
    label.textContent = `${fmtNum(pct)}%`;
    fill.append(bar, label);
    const state = sh.stats_error ? `${sh.state} (stats: ${sh.stats_error})` : sh.ready ? 'ready' : sh.state;
    return [
      cell(String(sh.shard)),
      cell(state, { cls: `state-${sh.ready ? 'ready' : sh.state}`, testid: `shard-${sh.shard}-state` }),
      fill,
      cell(`${fmtBytes(sh.ring_used_bytes)} / ${fmtBytes(sh.ring_capacity_bytes)}`, { cls: 'n' }),
      cell(fmtInt(sh.events_pushed), { cls: 'n', testid: `shard-${sh.shard}-pushed`, value: sh.events_pushed }),
      cell(fmtInt(sh.rows_held), { cls: 'n', testid: `shard-${sh.shard}-rows`, value: sh.rows_held }),
      cell(fmtInt(sh.polars_restarts), { cls: 'n', value: sh.polars_restarts }),
    ];
  });
  fillRows($('#shards'), rows, 7);
}

function drawQueryTable(queries) {
  const ms = (v) => (v === null ? '–' : fmtNum(v, 1));
  fillRows(
    $('#queries'),
    queries.map((q) => [
      cell(q.kind, { cls: 'key' }),
      cell(fmtInt(q.requests), { cls: 'n', testid: `query-${q.kind}-requests`, value: q.requests }),
      cell(fmtInt(q.errors_4xx), { cls: 'n', value: q.errors_4xx }),
      cell(fmtInt(q.errors_5xx), { cls: 'n', value: q.errors_5xx }),
      cell(ms(q.p50_ms), { cls: 'n', testid: `query-${q.kind}-p50`, value: q.p50_ms }),
      cell(ms(q.p95_ms), { cls: 'n', testid: `query-${q.kind}-p95`, value: q.p95_ms }),
      cell(ms(q.p99_ms), { cls: 'n', testid: `query-${q.kind}-p99`, value: q.p99_ms }),
    ]),
    7,
  );
}

// ---- the stream --------------------------------------------------------------------------------

function render(s) {
  figure('updated-at', s.at, new Date(s.at).toLocaleTimeString());
  figure('viewers', s.viewers);
  figure('ingested-events', s.ingest.total_events);
  figure('ingest-rate', s.ingest.throughput_per_second, fmtNum(s.ingest.throughput_per_second));
  figure('rejected-events', s.ingest.rejected_events);
  figure('buffered', s.ingest.buffered);
  drawIngest(s);
  drawQueries(s);
  drawShards(s.shards);
  drawQueryTable(s.queries);
  const err = $('#events-error');
  err.hidden = !s.events_error;
  err.textContent = s.events_error ? `dashboard query failed: ${s.events_error}` : '';
  const ev = s.events;
  if (!ev) return;
  figure('stored-events', ev.stored_events);
  figure('distinct-users', ev.distinct_users);
  drawTop('#top-users', ev.top_users, 'user_id', 'top-user');
  drawTop('#top-events', ev.top_events, 'event_type', 'top-event');
  drawEvents(ev);
}

function setStatus(state, text = state) {
  const el = $('#stream-status');
  el.className = `pill ${state}`;
  el.textContent = text;
  el.dataset.value = state;
}

function connect() {
  const source = new EventSource(streamUrl);
  source.addEventListener('open', () => setStatus('live'));
  source.addEventListener('snapshot', (e) => {
    setStatus('live');
    render(JSON.parse(e.data));
    figure('snapshot-seq', Number(e.lastEventId));
  });
  source.addEventListener('error', () => {
    if (source.readyState === EventSource.CLOSED) {
      // Refused (401/403/503) or not a stream: EventSource gives up; try again in a while.
      setStatus('error', 'disconnected; retrying');
      source.close();
      setTimeout(connect, 5000);
    } else {
      setStatus('reconnecting');
    }
  });
}

connect();
