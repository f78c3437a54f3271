// The usage chart: uses per day, stacked by outcome (valid, then each refusal reason), as an SVG
// built here, with a text summary and a table of the same numbers for screen readers.

import { el, formatCount } from './format.js';

const SVG = 'http://www.w3.org/2000/svg';
const W = 640;
const H = 180;
const LEFT = 40;
const BOTTOM = 22;
const TOP = 8;
const REASON_CLASSES = 6;

function svg(tag, attrs, ...children) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
  for (const c of children) e.append(c);
  return e;
}

function sum(o) {
  let n = 0;
  for (const v of Object.values(o || {})) n += v;
  return n;
}

// niceMax rounds a maximum up to 1, 2 or 5 times a power of ten, for the axis.
function niceMax(n) {
  if (n <= 1) return 1;
  const p = 10 ** Math.floor(Math.log10(n));
  for (const m of [1, 2, 5, 10]) if (m * p >= n) return m * p;
  return 10 * p;
}

const shortDate = new Intl.DateTimeFormat(undefined, { month: 'short', day: 'numeric', timeZone: 'UTC' });
const dayLabel = (iso) => shortDate.format(new Date(`${iso}T00:00:00Z`));

let chartID = 0;

// renderUsageChart draws usage ({tokenId, days: [{date, valid, refused: {REASON: n}}], oldest
// first) into container.
export function renderUsageChart(container, usage) {
  const days = usage.days || [];
  const reasons = [...new Set(days.flatMap((d) => Object.keys(d.refused || {})))].sort();
  const reasonClass = (r) => `refused r${reasons.indexOf(r) % REASON_CLASSES}`;
  const totals = { valid: 0, refused: 0, byReason: Object.fromEntries(reasons.map((r) => [r, 0])) };
  for (const d of days) {
    totals.valid += d.valid;
    for (const [r, n] of Object.entries(d.refused || {})) {
      totals.refused += n;
      totals.byReason[r] += n;
    }
  }
  const max = niceMax(Math.max(0, ...days.map((d) => d.valid + sum(d.refused))));
  const plotH = H - TOP - BOTTOM;
  const slot = (W - LEFT) / Math.max(days.length, 1);
  const barW = Math.max(1, slot * 0.7);
  const y = (n) => TOP + plotH - (n / max) * plotH;

  const id = `chart-${++chartID}`;
  const reasonText = reasons.filter((r) => totals.byReason[r]).map((r) => `${r} ${formatCount(totals.byReason[r])}`).join(', ');
  const summary = `Last ${days.length} days: ${formatCount(totals.valid)} valid, ${formatCount(totals.refused)} refused${reasonText ? ` (${reasonText})` : ''}.`;

  const chart = svg('svg', { viewBox: `0 0 ${W} ${H}`, class: 'usage-chart', role: 'img', 'aria-labelledby': `${id}-title ${id}-desc` },
    svg('title', { id: `${id}-title` }, 'Uses per day'),
    svg('desc', { id: `${id}-desc` }, summary));
  for (const v of [0, max / 2, max]) {
    chart.append(svg('line', { class: 'grid', x1: LEFT, x2: W, y1: y(v), y2: y(v) }),
      svg('text', { class: 'axis', x: LEFT - 6, y: y(v) + 4, 'text-anchor': 'end' }, formatCount(v)));
  }
  days.forEach((d, i) => {
    const x = LEFT + i * slot + (slot - barW) / 2;
    const refused = Object.entries(d.refused || {}).filter(([, n]) => n > 0);
    const g = svg('g', {
      class: 'day', 'data-date': d.date, 'data-valid': d.valid, 'data-refused': sum(d.refused),
      'data-reasons': refused.map(([r, n]) => `${r}:${n}`).join(' '),
    });
    const detail = refused.length ? ` (${refused.map(([r, n]) => `${r} ${formatCount(n)}`).join(', ')})` : '';
    g.append(svg('title', null, `${d.date}: ${formatCount(d.valid)} valid, ${formatCount(sum(d.refused))} refused${detail}`));
    g.append(svg('rect', { class: 'hover', x: LEFT + i * slot, y: TOP, width: slot, height: plotH }));
    let base = 0;
    const stack = (n, cls) => {
      if (n <= 0) return;
      g.append(svg('rect', { class: cls, x, width: barW, y: y(base + n), height: y(base) - y(base + n) }));
      base += n;
    };
    stack(d.valid, 'valid');
    for (const [r, n] of refused) stack(n, reasonClass(r));
    chart.append(g);
  });
  const labelAt = (i, anchor) => days[i] && chart.append(svg('text', {
    class: 'axis', x: LEFT + i * slot + slot / 2, y: H - 6, 'text-anchor': anchor,
  }, dayLabel(days[i].date)));
  labelAt(0, 'start');
  labelAt(Math.floor((days.length - 1) / 2), 'middle');
  labelAt(days.length - 1, 'end');

  const legend = el('ul', { class: 'legend' },
    el('li', null, el('span', { class: 'swatch valid' }), `Valid ${formatCount(totals.valid)}`),
    ...reasons.map((r) => el('li', null, el('span', { class: `swatch ${reasonClass(r)}` }), `${r} ${formatCount(totals.byReason[r])}`)));

  const used = days.filter((d) => d.valid + sum(d.refused) > 0);
  const table = el('table', { class: 'usage-table' },
    el('thead', null, el('tr', null, ...['Day', 'Valid', ...reasons].map((h) => el('th', { scope: 'col' }, h)))),
    el('tbody', null, ...used.map((d) => el('tr', null, el('th', { scope: 'row' }, d.date), el('td', { class: 'num' }, formatCount(d.valid)),
      ...reasons.map((r) => el('td', { class: 'num' }, formatCount((d.refused || {})[r] || 0)))))));
  const tableBox = el('details', { class: 'usage-data' }, el('summary', null, 'Show the numbers'),
    used.length ? table : el('p', { class: 'muted' }, 'No uses in this period.'));

  container.replaceChildren(el('p', { class: 'usage-summary' }, summary), chart, legend, tableBox);
}
