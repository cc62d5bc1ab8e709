// The finance dashboard: everything comes from /api/v1 (the session cookie is the token), and
// every chart is drawn here as SVG: no library, nothing fetched from elsewhere.
'use strict';

const zeroDecimal = new Set(['bif', 'clp', 'djf', 'gnf', 'jpy', 'kmf', 'krw', 'mga', 'pyg', 'rwf', 'ugx', 'vnd', 'vuv', 'xaf', 'xof', 'xpf']);

// money renders integer minor units in major units, by integer arithmetic (amounts stay exact).
function money(minor, currency) {
  if (minor === null || minor === undefined) return '';
  const sign = minor < 0 ? '-' : '';
  const abs = Math.abs(minor);
  if (zeroDecimal.has(currency)) return sign + abs.toLocaleString('en') + ' ' + currency.toUpperCase();
  const major = Math.trunc(abs / 100), cents = String(abs % 100).padStart(2, '0');
  return sign + major.toLocaleString('en') + '.' + cents + ' ' + currency.toUpperCase();
}

async function api(path) {
  const r = await fetch('/api/v1/' + path, { credentials: 'same-origin' });
  if (r.status === 401) { location.href = '/login'; throw new Error('signed out'); }
  if (!r.ok) throw new Error(path + ': ' + r.status);
  return r.json();
}

function isoDay(d) { return d.toISOString().slice(0, 10); }
function daysAgo(n) { return isoDay(new Date(Date.now() - n * 864e5)); }
const NS = 'http://www.w3.org/2000/svg';
function el(name, attrs, parent) {
  const e = document.createElementNS(NS, name);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  if (parent) parent.appendChild(e);
  return e;
}
function text(parent, x, y, s, anchor) { const t = el('text', { x, y, 'text-anchor': anchor || 'start' }, parent); t.textContent = s; return t; }

const W = 600, H = 220, L = 100, R = 10, T = 10, B = 28;

// lineChart draws series [{name, points: [[label, value]]}] sharing the x labels.
function lineChart(svg, labels, series, fmt) {
  svg.replaceChildren();
  const all = series.flatMap(s => s.points.map(p => p[1]));
  if (!labels.length || !all.length) { text(svg, W / 2, H / 2, 'no data yet', 'middle'); return; }
  const max = Math.max(1, ...all), min = Math.min(0, ...all);
  const x = i => L + (labels.length === 1 ? 0 : i * (W - L - R) / (labels.length - 1));
  const y = v => T + (H - T - B) * (1 - (v - min) / (max - min || 1));
  el('line', { x1: L, y1: y(min), x2: W - R, y2: y(min), class: 'axis' }, svg);
  el('line', { x1: L, y1: T, x2: L, y2: H - B, class: 'axis' }, svg);
  text(svg, L - 4, y(max) + 4, fmt(max), 'end');
  text(svg, L - 4, y(min), fmt(min), 'end');
  text(svg, L, H - 8, labels[0]);
  text(svg, W - R, H - 8, labels[labels.length - 1], 'end');
  series.forEach((s, i) => {
    const idx = new Map(labels.map((l, j) => [l, j]));
    const d = s.points.map((p, j) => (j ? 'L' : 'M') + x(idx.get(p[0])).toFixed(1) + ' ' + y(p[1]).toFixed(1)).join(' ');
    el('path', { d, class: 'line s' + (i % 4), 'data-series': s.name }, svg);
    text(svg, L + 8 + i * 120, T + 12, s.name).setAttribute('class', 's' + (i % 4));
  });
}

// barChart draws grouped bars: groups [{label, values: [..]}], one colour per value.
function barChart(svg, groups, names, fmt) {
  svg.replaceChildren();
  if (!groups.length) { text(svg, W / 2, H / 2, 'no data yet', 'middle'); return; }
  const max = Math.max(1, ...groups.flatMap(g => g.values));
  const gw = (W - L - R) / groups.length, bw = Math.max(1, gw / (names.length + 1));
  const y = v => T + (H - T - B) * (1 - v / max);
  el('line', { x1: L, y1: H - B, x2: W - R, y2: H - B, class: 'axis' }, svg);
  text(svg, L - 4, T + 8, fmt(max), 'end');
  text(svg, L - 4, H - B, fmt(0), 'end');
  groups.forEach((g, i) => g.values.forEach((v, j) => {
    el('rect', { x: (L + i * gw + j * bw).toFixed(1), y: y(v).toFixed(1), width: bw.toFixed(1), height: (H - B - y(v)).toFixed(1), class: 's' + j }, svg);
  }));
  text(svg, L, H - 8, groups[0].label);
  text(svg, W - R, H - 8, groups[groups.length - 1].label, 'end');
  names.forEach((n, j) => text(svg, L + 8 + j * 110, T + 12, n).setAttribute('class', 's' + j));
}

function fillTable(id, rows, cells) {
  const tbody = document.querySelector('#' + id + ' tbody');
  tbody.replaceChildren();
  for (const r of rows) {
    const tr = document.createElement('tr');
    for (const c of cells(r)) { const td = document.createElement('td'); td.textContent = c; tr.appendChild(td); }
    tbody.appendChild(tr);
  }
}

let currency = '';
// The mode and account shown: live mode and the platform's own account unless switched, as in
// Stripe's Dashboard. Every request carries them; no figure adds live to test mode.
let livemode = true, account = 'platform';

function scopeQuery() { return 'livemode=' + livemode + '&account=' + encodeURIComponent(account); }

// fillAccounts lists the accounts the read models hold in the mode shown.
function fillAccounts(scopes) {
  const sel = document.getElementById('account');
  const ids = [...new Set(scopes.filter(s => s.livemode === livemode && s.account).map(s => s.account))].sort();
  const opts = [['platform', 'Platform'], ...ids.map(id => [id, id]), ['all', 'All accounts']];
  if (!opts.some(o => o[0] === account)) account = 'platform';
  sel.replaceChildren(...opts.map(([v, label]) => { const o = document.createElement('option'); o.value = v; o.textContent = label; return o; }));
  sel.value = account;
}

function showScope() {
  const b = document.getElementById('scope-banner');
  const who = account === 'platform' ? 'the platform account' : account === 'all' ? 'all accounts (each connected account and the platform, added up per currency)' : 'connected account ' + account;
  b.textContent = (livemode ? 'Live mode' : 'Test mode: test data only') + ' · ' + who;
  b.className = 'banner ' + (livemode ? 'live' : 'test');
}

let generation = 0;

// load redraws everything; by says what asked (body[data-loaded-by]: "stream", "poll", or
// "page" for the first load and the controls).
async function load(by) {
  const status = document.getElementById('status');
  // A switch of mode or account while an earlier load is in flight: only the newest one draws.
  const gen = ++generation;
  try {
    const sq = scopeQuery();
    const [mrr, revenue, summary, runs] = await Promise.all([
      api('metrics/mrr?interval=day&from=' + daysAgo(90) + '&' + sq),
      api('metrics/revenue?interval=day&from=' + daysAgo(30) + '&' + sq),
      api('summary?' + sq),
      api('reconcile/runs?limit=10'),
    ]);
    if (gen !== generation) return;
    const asked = account;
    fillAccounts(summary.scopes);
    // The account shown is not in this mode: the figures fetched are not its; fetch again.
    if (account !== asked) return load();
    showScope();
    const currencies = [...new Set(mrr.data.map(r => r.currency).concat(summary.subscriptions.map(s => s.currency)))].sort();
    const sel = document.getElementById('currency');
    if (!currency) currency = currencies.includes('usd') ? 'usd' : (currencies[0] || '');
    sel.replaceChildren(...currencies.map(c => { const o = document.createElement('option'); o.value = o.textContent = c; return o; }));
    sel.value = currency;
    // With every account, the tiles and charts show the rows that add the accounts up.
    const cur = r => r.currency === currency && (account !== 'all' || r.account === 'all');
    const m = mrr.data.filter(cur), rv = revenue.data.filter(cur);
    const last = m[m.length - 1] || { mrr: 0, arr: 0, active_subscribers: 0 };
    const month = rv.reduce((a, r) => ({ gross: a.gross + r.gross_revenue, refunds: a.refunds + r.refunds, net: a.net + r.net_revenue, failed: a.failed + r.failed_payments }),
      { gross: 0, refunds: 0, net: 0, failed: 0 });
    const cards = [
      ['MRR', money(last.mrr, currency)], ['ARR', money(last.arr, currency)], ['Active subscribers', last.active_subscribers],
      ['Revenue, 30 days', money(month.gross, currency)], ['Refunds, 30 days', money(month.refunds, currency)],
      ['Net revenue, 30 days', money(month.net, currency)], ['Failed payments, 30 days', month.failed],
      ['Events in the log', summary.log.events], ['Projection lag', summary.projection.lag_events + ' events, ' + summary.projection.lag_seconds.toFixed(2) + ' s'],
    ];
    document.getElementById('cards').replaceChildren(...cards.map(([k, v]) => {
      const d = document.createElement('div'); d.className = 'card';
      d.innerHTML = '<div class="label"></div><div class="value"></div>';
      d.firstChild.textContent = k; d.lastChild.textContent = v; return d;
    }));
    lineChart(document.getElementById('chart-mrr'), m.map(r => r.period), [{ name: 'MRR ' + currency, points: m.map(r => [r.period, r.mrr]) }], v => money(Math.round(v), currency));
    lineChart(document.getElementById('chart-subs'), m.map(r => r.period), [{ name: 'active', points: m.map(r => [r.period, r.active_subscribers]) }], v => String(Math.round(v)));
    barChart(document.getElementById('chart-revenue'), rv.map(r => ({ label: r.period, values: [r.gross_revenue, r.refunds, r.disputed] })), ['revenue', 'refunds', 'disputes'], v => money(Math.round(v), currency));
    const st = summary.subscriptions.filter(s => s.currency === currency);
    barChart(document.getElementById('chart-status'), st.map(s => ({ label: s.status, values: [s.count] })), st.map(s => s.status + ' ' + s.count).slice(0, 5), v => String(Math.round(v)));
    const per = summary.events_per_minute;
    lineChart(document.getElementById('chart-ingest'), per.map(p => p.minute.slice(11, 16)), [{ name: 'events/min', points: per.map(p => [p.minute.slice(11, 16), p.count]) }], v => String(Math.round(v)));
    fillTable('runs', runs.data, r => [r.id, r.job + (r.dry_run ? ' (dry run)' : ''), r.status, r.started_at.slice(0, 19).replace('T', ' '),
      r.missing_found, r.repaired, Object.entries(r.drift || {}).map(([k, v]) => k + '=' + v).join(' ') || '—']);
    await loadMetrics(gen);
    if (gen !== generation) return;
    await loadTables();
    if (gen !== generation) return;
    await loadNotifications();
    if (gen !== generation) return;
    status.textContent = 'updated ' + new Date().toLocaleTimeString();
    document.body.dataset.loaded = 'true';
    // What the page now shows, once everything on it is of that mode and account.
    document.body.dataset.shown = livemode + '/' + account;
    document.body.dataset.loadedBy = typeof by === 'string' ? by : 'page';
  } catch (e) {
    status.textContent = 'error: ' + e.message;
  }
}

// rate renders an exact decimal string (0.012500) as a percentage by moving the point, never
// through a float; null is "—" (no divisor).
function rate(s) {
  if (s === null || s === undefined) return '—';
  const neg = s.startsWith('-'), [i, f = ''] = (neg ? s.slice(1) : s).split('.');
  // Millionths, then hundredths of a percent, halves away from zero: BigInt, no float.
  const q = (BigInt(i + f.padEnd(6, '0').slice(0, 6)) + 50n) / 100n;
  return (neg && q > 0n ? '-' : '') + (q / 100n) + '.' + String(q % 100n).padStart(2, '0') + ' %';
}

// ratio renders an exact decimal string with two places (the quick ratio).
function ratio(s) {
  if (s === null || s === undefined) return '—';
  const [i, f = ''] = s.split('.');
  const q = (BigInt(i + f.padEnd(6, '0').slice(0, 6)) + 5000n) / 10000n;
  return (q / 100n) + '.' + String(q % 100n).padStart(2, '0');
}

let reporting = null; // null: not asked yet; false: the server has no reporting currency

// loadMetrics fills the revenue-metric tiles: the last complete month's figures of the chosen
// currency, each with its definition as the API gives it, and how many subscriptions could not
// be valued. With a reporting currency, MRR converted into it, and the rates it lacked.
async function loadMetrics(gen) {
  const sq = scopeQuery(), now = new Date();
  const first = isoDay(new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() - 2, 1)));
  const q = 'interval=month&from=' + first + '&' + sq + (currency ? '&currency=' + currency : '');
  const [mv, ch, sb] = await Promise.all(['movements', 'churn', 'subscribers'].map(n => api('metrics/' + n + '?' + q)));
  let rep = null;
  if (reporting !== false) {
    try { rep = await api('metrics/mrr?interval=month&from=' + first + '&reporting=true&' + sq); reporting = true; } catch (e) { reporting = false; }
  }
  if (gen !== generation) return;
  const pick = a => a.data.filter(r => account !== 'all' || r.account === 'all');
  const last = a => { const d = pick(a); return d[d.length - 1] || {}; };
  const m = last(mv), c = last(ch), s = last(sb);
  const defs = Object.assign({}, mv.definitions, ch.definitions, sb.definitions);
  document.getElementById('metrics-period').textContent = (m.period || s.period || '').slice(0, 7) + ', ' + (currency || '').toUpperCase();
  const tiles = [
    ['MRR', money(s.mrr, currency), 'mrr'], ['Net new MRR', money(m.net_mrr, currency), 'net_mrr'],
    ['New MRR', money(m.new_mrr, currency), 'new_mrr'], ['Expansion MRR', money(m.expansion_mrr, currency), 'expansion_mrr'],
    ['Contraction MRR', money(m.contraction_mrr, currency), 'contraction_mrr'], ['Churned MRR', money(m.churned_mrr, currency), 'churned_mrr'],
    ['Reactivation MRR', money(m.reactivation_mrr, currency), 'reactivation_mrr'],
    ['Paused MRR', money(m.pause_mrr, currency), 'pause_mrr'], ['Resumed MRR', money(m.resume_mrr, currency), 'resume_mrr'],
    ['Gross MRR churn', rate(c.gross_mrr_churn_rate), 'gross_mrr_churn_rate'], ['Net MRR churn', rate(c.net_mrr_churn_rate), 'net_mrr_churn_rate'],
    ['Subscribers', s.subscribers, 'subscribers'], ['Subscriber churn, 30 days', rate(s.subscriber_churn_rate), 'subscriber_churn_rate'],
    ['ARPA', money(s.arpa, currency), 'arpa'], ['LTV', money(s.ltv, currency), 'ltv'], ['Quick ratio', ratio(s.quick_ratio), 'quick_ratio'],
  ];
  if (rep) {
    const r = last(rep);
    tiles.unshift(['MRR in ' + rep.reporting_currency.toUpperCase(), r.mrr === null ? 'no rate' : money(r.mrr, rep.reporting_currency),
      'mrr', 'Every currency converted into the reporting currency at the ' + rep.fx_rate_date.replace('_', ' ') + ' rate.']);
    document.getElementById('reporting-note').textContent = rep.missing_rates_total
      ? 'Missing exchange rates (' + rep.missing_rates_total + '): ' + rep.missing_rates.slice(0, 5).map(x => x.currency + ' ' + x.date).join(', ') + (rep.missing_rates_total > 5 ? ', …' : '')
      : '';
  }
  document.getElementById('unvalued').textContent = 'Unvalued subscriptions (left out of every figure): ' + sb.unvalued + '.';
  document.getElementById('metric-tiles').replaceChildren(...tiles.map(([k, v, col, extra]) => {
    const d = document.createElement('div'); d.className = 'card'; d.dataset.metric = col;
    d.innerHTML = '<div class="label"></div><div class="value"></div><div class="def"></div>';
    d.children[0].textContent = k; d.children[1].textContent = v === undefined ? '—' : v;
    d.children[2].textContent = extra || defs[col] || ''; return d;
  }));
}

async function loadTables() {
  const q = document.getElementById('search').value.trim();
  let filter = 'currency=' + currency + '&' + scopeQuery();
  if (q) filter += (q.startsWith('cus_') ? '&customer=' : '&app_user_id=') + encodeURIComponent(q);
  document.getElementById('csv-subscriptions').href = '/api/v1/subscriptions?format=csv&' + filter;
  const chargeFilter = 'currency=' + currency + '&' + scopeQuery();
  document.getElementById('csv-charges').href = '/api/v1/charges?format=csv&' + chargeFilter;
  const [subs, charges] = await Promise.all([api('subscriptions?limit=25&' + filter), api('charges?limit=25&' + chargeFilter)]);
  fillTable('subscriptions', subs.data, s => [s.id, s.customer, s.app_user_id, s.status, money(s.mrr, s.currency), (s.current_period_end || '').slice(0, 10)]);
  fillTable('charges', charges.data, c => [c.id, c.customer, c.status, money(c.amount, c.currency), money(c.amount_refunded, c.currency), c.dispute_status, c.created.slice(0, 10)]);
}

// loadNotifications fills the notifications panel from the deliveries API; a ledger without
// notifications (the route answers 404 or 503) shows a muted line instead. Its own failure
// never blanks the rest of the page.
async function loadNotifications() {
  const off = document.getElementById('notify-off'), table = document.getElementById('notifications');
  let list;
  try {
    const r = await fetch('/api/v1/notify/deliveries?limit=20', { credentials: 'same-origin' });
    if (r.status === 404 || r.status === 503) { off.hidden = false; table.hidden = true; return; }
    if (!r.ok) throw new Error('notify/deliveries: ' + r.status);
    list = await r.json();
  } catch (e) {
    off.textContent = 'notifications: ' + e.message; off.hidden = false; table.hidden = true; return;
  }
  // History is kept when notifications are turned off; with nothing to show, say they are off.
  if (list.enabled === false && !list.data.length) { off.hidden = false; table.hidden = true; return; }
  off.hidden = true; table.hidden = false;
  fillTable('notifications', list.data, n => [n.rule, n.event_id + (n.late ? ' (late, repaired)' : ''), n.channel, n.attempts, n.status,
    n.latency_ms === null || n.latency_ms === undefined ? '—' : n.latency_ms + ' ms', n.last_error || '']);
}

// How the page keeps current: the live stream (Server-Sent Events) when it can, else polling
// every 10 s. The header says which; body[data-mode] carries it for tests.
let poller = null, liveRetry = null;
function setMode(m) {
  const e = document.getElementById('live');
  e.textContent = m === 'live' ? 'live' : 'polling every 10 s';
  e.className = 'mode ' + m;
  document.body.dataset.mode = m;
}
function startPolling() {
  setMode('polling');
  if (!poller) poller = setInterval(() => load('poll'), 10000);
  // The stream may come back (a restart, a proxy that let it through): try again now and then.
  if (!liveRetry && window.EventSource) liveRetry = setTimeout(() => { liveRetry = null; startLive(); }, 60000);
}

// refresh reloads after a folded batch, debounced: a burst of batches reloads once when it
// starts settling and at most once more if batches kept coming while that load ran.
let refreshTimer = null, loading = false, again = false;
function refresh() {
  if (refreshTimer) return;
  refreshTimer = setTimeout(async () => {
    refreshTimer = null;
    if (loading) { again = true; return; }
    loading = true;
    try { await load('stream'); } finally { loading = false; }
    if (again) { again = false; refresh(); }
  }, 300);
}

function startLive() {
  if (!window.EventSource) { startPolling(); return; }
  let failures = 0, opened = false;
  const es = new EventSource('/api/v1/stream');
  es.addEventListener('ready', () => {
    failures = 0;
    if (poller) { clearInterval(poller); poller = null; }
    setMode('live');
    if (opened) refresh(); // a reconnection: what folded meanwhile
    opened = true;
  });
  es.addEventListener('appended', e => {
    const ev = JSON.parse(e.data);
    document.getElementById('live').title = 'last event: ' + ev.type + ' ' + (ev.object_id || '') + ' at position ' + ev.position;
  });
  // The read models moved (folded), or the stream cannot tell what was missed (reset,
  // dropped: the browser reconnects by itself).
  for (const name of ['folded', 'reset', 'dropped']) es.addEventListener(name, () => refresh());
  es.onerror = () => {
    failures++;
    // CLOSED: the route refused (404, 503, not event-stream); the browser will not retry.
    if (es.readyState === EventSource.CLOSED || failures >= 3) { es.close(); startPolling(); }
  };
}

document.getElementById('currency').addEventListener('change', e => { currency = e.target.value; load(); });
document.getElementById('testmode').addEventListener('change', e => { livemode = !e.target.checked; account = 'platform'; currency = ''; load(); });
document.getElementById('account').addEventListener('change', e => { account = e.target.value; load(); });
document.getElementById('search').addEventListener('change', () => loadTables());
load();
startLive();
// ledger dev: a link to what its local notification sinks received.
fetch('/notifications/received', { method: 'HEAD', credentials: 'same-origin' }).then(r => {
  if (r.ok) document.getElementById('dev-notifications').hidden = false;
}).catch(() => {});
