// A token's details, under its row: settings with the live state of its limits, its usage chart
// and its audit events.

import { api, query } from './api.js';
import { el, time, formatCount, formatTime, duration, per } from './format.js';
import { renderUsageChart } from './chart.js';

const $ = (id) => document.getElementById(id);

function detailsRow(tr) {
  const next = tr.nextElementSibling;
  return next && next.classList.contains('details-row') ? next : null;
}

// toggleDetails opens or closes the details of the token of row tr.
export function toggleDetails(tr, t, ui) {
  const button = tr.querySelector('.details-toggle');
  const open = detailsRow(tr);
  if (open) {
    open.remove();
    button.setAttribute('aria-expanded', 'false');
    button.removeAttribute('aria-controls');
    return;
  }
  const d = $('details-template').content.firstElementChild.cloneNode(true);
  d.id = `details-${t.id}`;
  tr.after(d);
  button.setAttribute('aria-expanded', 'true');
  button.setAttribute('aria-controls', d.id);
  facts(d, t);
  usage(d, t);
  audit(d, t, ui);
}

// refreshDetails shows a changed token in its open details.
export function refreshDetails(tr, t, ui) {
  const d = detailsRow(tr);
  if (!d) return;
  facts(d, t);
  audit(d, t, ui);
}

function limitsText(t) {
  const out = {};
  const rl = t.rateLimit;
  if (rl) {
    let s = `${formatCount(rl.limit)} ${per(rl.windowSeconds)}`;
    if (rl.count !== undefined && rl.count !== null) {
      s += `: ${formatCount(rl.count)} used in this window, ${formatCount(rl.remaining)} left`;
      if (rl.reset) s += `, resets ${formatTime(rl.reset)}`;
    }
    out['Rate limit'] = s;
  } else {
    out['Rate limit'] = 'none';
  }
  if (t.remaining !== null && t.remaining !== undefined) {
    let s = `${formatCount(t.remaining)} uses left`;
    if (t.refill) {
      s += `, refilled to ${formatCount(t.refill.amount)} every ${duration(t.refill.intervalSeconds)}`;
      if (t.refill.nextRefillAt) s += `; next refill ${formatTime(t.refill.nextRefillAt)}`;
    }
    out.Quota = s;
  } else {
    out.Quota = 'unlimited';
  }
  return out;
}

function facts(d, t) {
  const rows = {
    Id: t.id,
    Owner: t.owner,
    Permissions: t.permissions.join(', '),
    APIs: t.apis && t.apis.length ? t.apis.join(', ') : 'every API',
    ...limitsText(t),
    'Allowed networks': t.allowedCidrs && t.allowedCidrs.length ? t.allowedCidrs.join(', ') : 'any address',
    'Client id': t.clientId || '—',
    'Created by': t.createdBy || '—',
    Created: time(t.createdAt),
    Updated: time(t.updatedAt),
    Expires: time(t.expiresAt, { empty: 'never' }),
    'Deleted when expired': t.autoDelete ? 'yes' : 'no',
  };
  if (t.revokedAt) rows.Revoked = time(t.revokedAt);
  if (t.meta) rows.Meta = JSON.stringify(t.meta);
  const dl = d.querySelector('.facts-list');
  dl.replaceChildren();
  for (const [k, v] of Object.entries(rows)) dl.append(el('dt', null, k), el('dd', null, v));
}

async function usage(d, t) {
  const box = d.querySelector('.chart');
  try {
    const data = await api('GET', `/tokens/${encodeURIComponent(t.id)}/usage${query({ days: 30 })}`);
    renderUsageChart(box, data);
  } catch (e) {
    box.replaceChildren(el('p', { class: 'muted' }, `Usage is not available: ${e.message}`));
  }
}

function change(c) {
  const show = (v) => (v === null || v === undefined ? '—' : typeof v === 'string' ? v : JSON.stringify(v));
  return `${c.field}: ${show(c.old)} → ${show(c.new)}`;
}

async function audit(d, t, ui, cursor = '') {
  const box = d.querySelector('.audit-body');
  let page;
  try {
    page = await api('GET', `/audit${query({ tokenId: t.id, limit: 10, cursor })}`);
  } catch (e) {
    box.replaceChildren(el('p', { class: 'muted' }, `Audit events are not available: ${e.message}`));
    return;
  }
  let tbody = box.querySelector('tbody');
  if (!cursor || !tbody) {
    tbody = el('tbody');
    box.replaceChildren(el('table', { class: 'audit-table' },
      el('caption', { class: 'sr-only' }, `Audit events of “${t.name}”, newest first`),
      el('thead', null, el('tr', null, ...['When', 'Action', 'By', 'Changes'].map((h) => el('th', { scope: 'col' }, h)))),
      tbody));
  }
  for (const ev of page.events) {
    const by = ev.actorOwner ? `${ev.actorOwner}${ev.actorTokenId ? ` (${ev.actorTokenId})` : ''}` : 'CLI';
    tbody.append(el('tr', null, el('td', null, time(ev.at)), el('td', null, ev.action), el('td', null, by),
      el('td', { class: 'changes' }, ev.changes.map(change).join('; '))));
  }
  if (!page.events.length && !cursor) box.replaceChildren(el('p', { class: 'muted' }, 'No events.'));
  const more = box.querySelector('.more');
  if (more) more.remove();
  if (page.nextCursor) {
    const b = el('button', { type: 'button', class: 'secondary small more' }, 'Show older events');
    b.addEventListener('click', () => audit(d, t, ui, page.nextCursor));
    box.append(b);
  }
}
