// The payouts page: the payout reconciliation (GET /api/v1/payouts/reconciliation), one payout's
// transactions on selection (/reconciliation/{id}), what does not reconcile (/unreconciled) and
// the closed months with their printable reports (/api/v1/closes). Everything comes from the
// API with the session cookie; nothing is computed here but formatting.
'use strict';

const zeroDecimal = new Set(['bif', 'clp', 'djf', 'gnf', 'jpy', 'kmf', 'krw', 'mga', 'pyg', 'rwf', 'ugx', 'vnd', 'vuv', 'xaf', 'xof', 'xpf']);

// money renders integer minor units in major units, by integer arithmetic (amounts stay exact).
function money(minor, currency) {
  if (minor === null || minor === undefined) return '';
  const sign = minor < 0 ? '-' : '';
  const abs = Math.abs(minor);
  if (zeroDecimal.has(currency)) return sign + abs.toLocaleString('en') + ' ' + currency.toUpperCase();
  return sign + Math.trunc(abs / 100).toLocaleString('en') + '.' + String(abs % 100).padStart(2, '0') + ' ' + currency.toUpperCase();
}

async function api(path) {
  const r = await fetch('/api/v1/' + path, { credentials: 'same-origin' });
  if (r.status === 401) { location.href = '/login'; throw new Error('signed out'); }
  if (!r.ok) throw new Error(path + ': ' + r.status);
  return r.json();
}

function cell(tr, text, cls) {
  const td = document.createElement('td');
  td.textContent = text;
  if (cls) td.className = cls;
  tr.appendChild(td);
  return td;
}
function day(s) { return s ? s.slice(0, 10) : ''; }
function account(a) { return a === null ? 'platform' : a; }
function mode(live) { return live ? 'live' : 'test'; }

function scope() {
  const p = new URLSearchParams();
  p.set('livemode', document.getElementById('mode').value);
  p.set('account', document.getElementById('account').value);
  return p;
}

async function showPayout(id) {
  const d = await api('payouts/reconciliation/' + encodeURIComponent(id));
  const section = document.getElementById('detail');
  document.getElementById('detail-title').textContent = 'Payout ' + d.payout + ' · ' + money(d.amount, d.currency) + ' · ' + d.status +
    ' · arrival ' + day(d.arrival_date) + (d.match ? ' · ✓ reconciles' : ' · ✗ does not reconcile');
  const parts = document.querySelector('#parts tbody');
  parts.replaceChildren();
  const tr = document.createElement('tr');
  for (const k of ['charges', 'refunds', 'disputes', 'fees', 'adjustments', 'transfers', 'other', 'total', 'amount', 'difference']) {
    cell(tr, money(d[k], d.currency), 'num').dataset.part = k;
  }
  parts.appendChild(tr);
  const body = document.querySelector('#transactions tbody');
  body.replaceChildren(...d.balance_transactions.map(t => {
    const r = document.createElement('tr');
    r.dataset.id = t.id;
    cell(r, t.id); cell(r, t.type); cell(r, t.reporting_category);
    cell(r, money(t.amount, t.currency), 'num'); cell(r, money(t.fee, t.currency), 'num'); cell(r, money(t.net, t.currency), 'num');
    cell(r, t.source || ''); cell(r, day(t.created));
    cell(r, !t.counted ? "the payout's own" : (t.source_known === false ? 'unmatched: source unknown to the ledger' : ''));
    return r;
  }));
  section.hidden = false;
  section.dataset.payout = d.payout;
  section.dataset.transactions = String(d.balance_transactions.length);
}

async function load() {
  const status = document.getElementById('status');
  try {
    const p = scope();
    const match = document.getElementById('match').value;
    const list = new URLSearchParams(p);
    list.set('limit', '1000');
    if (match) list.set('match', match);
    const csv = new URLSearchParams(list);
    csv.delete('limit');
    csv.set('format', 'csv');
    document.getElementById('csv-payouts').href = '/api/v1/payouts/reconciliation?' + csv;
    const [payouts, findings, closes] = await Promise.all([
      api('payouts/reconciliation?' + list), api('payouts/unreconciled?' + p), api('closes')]);
    const body = document.querySelector('#payouts tbody');
    body.replaceChildren(...payouts.data.map(r => {
      const tr = document.createElement('tr');
      tr.dataset.payout = r.payout;
      tr.dataset.match = String(r.match);
      tr.className = 'clickable' + (r.match ? '' : ' bad');
      cell(tr, day(r.arrival_date));
      const a = document.createElement('a');
      a.href = '#' + r.payout;
      a.textContent = r.payout;
      a.addEventListener('click', ev => { ev.preventDefault(); showPayout(r.payout).catch(e => { status.textContent = 'error: ' + e.message; }); });
      cell(tr, '').appendChild(a);
      cell(tr, mode(r.livemode)); cell(tr, account(r.account));
      cell(tr, money(r.amount, r.currency), 'num'); cell(tr, r.status); cell(tr, String(r.transactions));
      cell(tr, r.match ? '✓' : '✗ ' + money(r.difference, r.currency), r.match ? 'match' : 'mismatch');
      return tr;
    }));
    const fb = document.querySelector('#unreconciled tbody');
    fb.replaceChildren(...findings.data.map(f => {
      const tr = document.createElement('tr');
      tr.dataset.kind = f.kind;
      cell(tr, f.kind.replaceAll('_', ' ')); cell(tr, f.object); cell(tr, mode(f.livemode)); cell(tr, account(f.account));
      cell(tr, money(f.amount, f.currency), 'num'); cell(tr, day(f.since)); cell(tr, f.detail);
      return tr;
    }));
    const cb = document.querySelector('#closes tbody');
    cb.replaceChildren(...closes.data.map(c => {
      const tr = document.createElement('tr');
      cell(tr, c.period); cell(tr, c.closed_at.replace('T', ' ').slice(0, 19)); cell(tr, c.closed_by || ''); cell(tr, String(c.position));
      const td = cell(tr, '');
      const html = document.createElement('a');
      html.href = '/api/v1/closes/' + c.period + '/report';
      html.textContent = 'printable report';
      const csvLink = document.createElement('a');
      csvLink.href = '/api/v1/closes/' + c.period + '/report?format=csv';
      csvLink.textContent = 'CSV';
      td.append(html, ' · ', csvLink);
      return tr;
    }));
    const bad = payouts.data.filter(r => !r.match).length;
    status.textContent = payouts.data.length + ' payouts, ' + bad + ' not reconciled, ' + findings.data.length + ' findings · updated ' + new Date().toLocaleTimeString();
    document.body.dataset.loaded = 'true';
    document.body.dataset.payouts = String(payouts.data.length);
    document.body.dataset.mismatches = String(bad);
  } catch (e) {
    status.textContent = 'error: ' + e.message;
  }
}

for (const id of ['mode', 'account', 'match']) document.getElementById(id).addEventListener('change', () => {
  document.body.dataset.loaded = 'false';
  load();
});
load();
