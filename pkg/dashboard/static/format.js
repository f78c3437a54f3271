// Formatting of dates, durations and counts, and small DOM helpers shared by the views.

const dateTime = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });
const dateOnly = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium' });
const count = new Intl.NumberFormat();

// el creates an element with attributes (a "class" key sets className) and children (strings
// become text nodes: the page never parses HTML).
export function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  if (attrs) {
    for (const [k, v] of Object.entries(attrs)) {
      if (v === undefined || v === null || v === false) continue;
      if (k === 'class') e.className = v;
      else if (k === 'text') e.textContent = v;
      else e.setAttribute(k, v === true ? '' : String(v));
    }
  }
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    e.append(c instanceof Node ? c : String(c));
  }
  return e;
}

// time renders an RFC 3339 instant as a <time> element (the full instant on hover), or a dash.
export function time(iso, { dateOnly: onlyDate = false, empty = '—' } = {}) {
  if (!iso) return document.createTextNode(empty);
  const d = new Date(iso);
  const t = el('time', { datetime: iso, title: d.toISOString() });
  t.textContent = (onlyDate ? dateOnly : dateTime).format(d);
  return t;
}

export function formatTime(iso) {
  return iso ? dateTime.format(new Date(iso)) : '—';
}

export function formatCount(n) {
  return count.format(n);
}

const units = [
  [86400 * 7, 'week'], [86400, 'day'], [3600, 'hour'], [60, 'minute'], [1, 'second'],
];

// duration says a number of seconds in the largest unit that divides it: "1 hour", "90 seconds".
export function duration(seconds) {
  for (const [size, name] of units) {
    if (seconds % size === 0) {
      const n = seconds / size;
      return n === 1 ? `1 ${name}` : `${count.format(n)} ${name}s`;
    }
  }
  return `${seconds} seconds`;
}

// per says a rate: "per hour", "per 5 minutes".
export function per(seconds) {
  const d = duration(seconds);
  return d.startsWith('1 ') ? `per ${d.slice(2)}` : `per ${d}`;
}

// isoDay is the UTC calendar day of a date: "2026-11-22".
export function isoDay(d) {
  return d.toISOString().slice(0, 10);
}
