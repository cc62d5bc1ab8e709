// The local sinks' page (ledger dev): what the Slack-compatible receiver and the SMTP server
// received, newest first, drawn as a Slack channel and an inbox would show them. It reloads when
// the live stream says the read models moved (notifications follow events by moments), and every
// 5 s as well, since a delivery retried after an outage comes without a new event.
'use strict';

function node(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

// isLate says whether a message is marked late (a repaired event's notification).
function isLate(s) { return /\blate\b/i.test(s || ''); }

function time(s) { return new Date(s).toLocaleTimeString(); }

function slackCard(m) {
  const card = node('article', 'msg slack' + (isLate(m.text) ? ' is-late' : ''));
  const head = node('div', 'msg-head');
  head.append(node('strong', '', '#' + m.channel), node('span', 'muted', ' Ledger app · ' + time(m.received_at)));
  if (isLate(m.text)) head.append(node('span', 'late', ' late (repaired)'));
  card.append(head, node('pre', 'msg-body', m.text));
  return card;
}

function emailCard(m) {
  const card = node('article', 'msg email' + (isLate(m.subject + ' ' + m.text) ? ' is-late' : ''));
  const head = node('div', 'msg-head');
  head.append(node('strong', '', m.subject), node('div', 'muted', 'From ' + m.from + ' to ' + (m.to || []).join(', ') + ' · ' + time(m.received_at)));
  if (isLate(m.subject + ' ' + m.text)) head.append(node('span', 'late', 'late (repaired)'));
  card.append(head, node('pre', 'msg-body', m.text));
  return card;
}

async function load() {
  const status = document.getElementById('status'), off = document.getElementById('off');
  try {
    const r = await fetch('/notifications/received', { credentials: 'same-origin' });
    if (r.status === 401) { location.href = '/login'; return; }
    if (r.status === 404) {
      const body = await r.json().catch(() => ({}));
      off.textContent = (body.error && body.error.message) || 'no local notification sinks';
      off.hidden = false;
      return;
    }
    if (!r.ok) throw new Error('received: ' + r.status);
    const got = await r.json();
    const slack = (got.slack || []).slice().reverse(), email = (got.email || []).slice().reverse();
    document.getElementById('slack').replaceChildren(...(slack.length ? slack.map(slackCard) : [node('p', 'muted', 'nothing yet')]));
    document.getElementById('email').replaceChildren(...(email.length ? email.map(emailCard) : [node('p', 'muted', 'nothing yet')]));
    status.textContent = slack.length + ' Slack messages, ' + email.length + ' emails · updated ' + new Date().toLocaleTimeString();
    document.body.dataset.loaded = 'true';
    document.body.dataset.count = String(slack.length + email.length);
  } catch (e) {
    status.textContent = 'error: ' + e.message;
  }
}

let pending = null;
function soon() { if (!pending) pending = setTimeout(() => { pending = null; load(); }, 500); }

function live() {
  const mode = document.getElementById('live');
  if (!window.EventSource) { mode.textContent = 'polling every 5 s'; mode.className = 'mode polling'; return; }
  const es = new EventSource('/api/v1/stream');
  es.addEventListener('ready', () => { mode.textContent = 'live'; mode.className = 'mode live'; });
  es.addEventListener('folded', soon);
  es.onerror = () => {
    if (es.readyState === EventSource.CLOSED) { es.close(); mode.textContent = 'polling every 5 s'; mode.className = 'mode polling'; }
  };
}

load();
live();
setInterval(load, 5000);
