// The token form, for create and for edit: name, permissions (chips), expiry, environment and
// owner (create only), rate limit, quota and refill, allowed networks. read() returns the body of
// POST /tokens or PATCH /tokens/{id}; a PATCH holds only what changed.

import { el, formatTime } from './format.js';

const WINDOWS = [[1, 'second'], [60, 'minute'], [3600, 'hour'], [86400, 'day']];
const INTERVALS = [[3600, 'hour'], [86400, 'day'], [604800, 'week'], [2592000, '30 days']];

class FormError extends Error {}

let uid = 0;

// field is a labelled control with an optional hint.
function field(label, control, hint) {
  const id = `f${++uid}`;
  control.id = id;
  const wrap = el('div', { class: 'field' }, el('label', { for: id }, label), control);
  if (hint) {
    const hintID = `${id}-hint`;
    control.setAttribute('aria-describedby', hintID);
    wrap.append(el('p', { class: 'muted hint', id: hintID }, hint));
  }
  return wrap;
}

function select(options, value) {
  const s = el('select');
  for (const [v, label] of options) s.append(el('option', { value: v }, label));
  if (value !== undefined) s.value = String(value);
  return s;
}

// chips is the permissions control: the allowed permissions as toggle chips (checkboxes) when the
// deployment names them, otherwise a text field whose entries become removable chips.
function chips(allowed, initial, admin) {
  const chosen = new Set(initial);
  if (allowed) {
    // The token's own permissions too, allowed or not any more: editing another field must not
    // drop one.
    const names = [...new Set([...allowed, 'manage', ...(admin ? ['admin'] : []), ...initial])];
    const box = el('fieldset', { class: 'field chips' }, el('legend', null, 'Permissions'));
    const inputs = names.map((p) => {
      const input = el('input', { type: 'checkbox', value: p });
      input.checked = chosen.has(p);
      box.append(el('label', { class: 'chip toggle' }, input, ` ${p}`));
      return input;
    });
    return { node: box, value: () => inputs.filter((i) => i.checked).map((i) => i.value) };
  }
  const input = el('input', { type: 'text', spellcheck: 'false', autocomplete: 'off', placeholder: 'read, upload' });
  const list = el('ul', { class: 'chip-list', 'aria-label': 'Chosen permissions' });
  const render = () => {
    list.replaceChildren(...[...chosen].map((p) => el('li', { class: 'chip' }, p,
      el('button', { type: 'button', class: 'chip-remove', 'aria-label': `Remove ${p}`, 'data-perm': p }, '×'))));
  };
  const take = () => {
    for (const p of input.value.split(/[\s,]+/)) if (p) chosen.add(p);
    input.value = '';
    render();
  };
  input.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' || e.key === ',') {
      e.preventDefault();
      take();
    } else if (e.key === 'Backspace' && input.value === '' && chosen.size) {
      chosen.delete([...chosen].pop());
      render();
    }
  });
  input.addEventListener('blur', take);
  list.addEventListener('click', (e) => {
    const b = e.target.closest('button[data-perm]');
    if (!b) return;
    chosen.delete(b.dataset.perm);
    render();
    input.focus();
  });
  render();
  const node = field('Permissions', input, 'Type a permission and press Enter or a comma. Empty: the deployment\'s default.');
  node.append(list);
  return { node, value: () => { take(); return [...chosen]; } };
}

// expiryOptions are the presets the deployment allows.
function expiryOptions(config, edit) {
  const opts = [];
  if (edit) opts.push(['keep', edit]);
  for (const d of [7, 30, 90]) {
    if (!config.maxExpiryDays || d <= config.maxExpiryDays) opts.push([String(d), `In ${d} days`]);
  }
  opts.push(['date', 'On a date…']);
  if (config.neverExpires) opts.push(['never', 'Never']);
  return opts;
}

function parseCIDRs(text) {
  return text.split(/[\s,]+/).filter(Boolean);
}

function numberOrNull(input, name) {
  const v = input.value.trim();
  if (v === '') return null;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new FormError(`${name}: must be a whole number.`);
  return n;
}

// buildTokenForm fills form with the fields and returns { read }. mode is 'create' or 'edit'
// (then token is the record being edited).
export function buildTokenForm(form, { mode, config, me, token, owner }) {
  const edit = mode === 'edit';
  form.replaceChildren();
  const name = el('input', { type: 'text', maxlength: '100', required: true, autocomplete: 'off' });
  if (edit) name.value = token.name;
  const perms = chips(config.allowedPermissions, edit ? token.permissions : [], me.admin);

  const expires = select(expiryOptions(config, edit ? `Unchanged (${token.expiresAt ? formatTime(token.expiresAt) : 'never'})` : null),
    edit ? 'keep' : '30');
  const date = el('input', { type: 'date' });
  const dateField = field('Expiry date', date);
  dateField.hidden = true;
  expires.addEventListener('change', () => { dateField.hidden = expires.value !== 'date'; });

  const rows = [field('Name', name), perms.node, field('Expires', expires), dateField];

  let env = null;
  let ownerInput = null;
  if (!edit) {
    env = el('input', { type: 'text', maxlength: '16', spellcheck: 'false', autocomplete: 'off', placeholder: 'live' });
    rows.push(field('Environment', env, 'Optional label in the token\'s prefix (tok_live_…): lowercase letters and digits.'));
    if (me.admin) {
      ownerInput = el('input', { type: 'text', spellcheck: 'false', autocomplete: 'off', placeholder: owner || me.owner });
      if (owner && owner !== me.owner) ownerInput.value = owner;
      rows.push(field('Owner', ownerInput, 'Whose token it is; empty: yours.'));
    }
  }

  const rl = token && token.rateLimit;
  const rateLimit = el('input', { type: 'number', min: '1', step: '1', inputmode: 'numeric' });
  const rateWindow = select(WINDOWS.map(([s, n]) => [String(s), `per ${n}`]), rl ? rl.windowSeconds : 60);
  if (rl) rateLimit.value = rl.limit;
  if (rl && !WINDOWS.some(([s]) => s === rl.windowSeconds)) {
    rateWindow.append(el('option', { value: rl.windowSeconds }, `per ${rl.windowSeconds} s`));
    rateWindow.value = String(rl.windowSeconds);
  }
  const rateBox = el('fieldset', { class: 'field inline' }, el('legend', null, 'Rate limit'),
    field('Requests', rateLimit), field('Window', rateWindow),
    el('p', { class: 'muted hint' }, 'Empty: no rate limit.'));

  const rf = token && token.refill;
  const remaining = el('input', { type: 'number', min: '0', step: '1', inputmode: 'numeric' });
  if (token && token.remaining !== null && token.remaining !== undefined) remaining.value = token.remaining;
  const refillAmount = el('input', { type: 'number', min: '1', step: '1', inputmode: 'numeric' });
  const refillEvery = select([['', 'never'], ...INTERVALS.map(([s, n]) => [String(s), n])], rf ? rf.intervalSeconds : '');
  if (rf) refillAmount.value = rf.amount;
  if (rf && !INTERVALS.some(([s]) => s === rf.intervalSeconds)) {
    refillEvery.append(el('option', { value: rf.intervalSeconds }, `${rf.intervalSeconds} s`));
    refillEvery.value = String(rf.intervalSeconds);
  }
  const quotaBox = el('fieldset', { class: 'field inline' }, el('legend', null, 'Quota'),
    field('Uses left', remaining), field('Refill to', refillAmount), field('Refill every', refillEvery),
    el('p', { class: 'muted hint' }, 'Empty: unlimited. A refill resets the uses left to its amount.'));

  const cidrs = el('textarea', { rows: '2', spellcheck: 'false', placeholder: '203.0.113.0/24' });
  if (token && token.allowedCidrs) cidrs.value = token.allowedCidrs.join('\n');
  rows.push(rateBox, quotaBox,
    field('Allowed networks', cidrs, 'CIDRs, one per line or separated by commas. Empty: any address.'));

  const buttons = el('div', { class: 'buttons' });
  if (edit) {
    buttons.append(el('button', { type: 'button', class: 'secondary', 'data-cancel': '' }, 'Cancel'),
      el('button', { type: 'submit' }, 'Save changes'));
  } else {
    buttons.append(el('button', { type: 'submit' }, 'Create token'));
  }
  const error = el('p', { class: 'form-error', role: 'alert' });
  error.hidden = true;
  form.append(el('div', { class: 'grid' }, ...rows), error, buttons);
  // showError shows an error of this form next to its buttons (the page's own alert may be
  // hidden behind a modal dialog); null clears it.
  const showError = (e) => {
    error.textContent = e ? e.message : '';
    error.hidden = !e;
  };

  const read = () => {
    const body = {};
    const n = name.value.trim();
    if (!n) throw new FormError('Name: required.');
    if (!edit || n !== token.name) body.name = n;

    const p = perms.value();
    if (edit) {
      if (p.length === 0) throw new FormError('Permissions: a token needs at least one.');
      if ([...p].sort().join(' ') !== [...token.permissions].sort().join(' ')) body.permissions = p;
    } else if (p.length) {
      body.permissions = p;
    }

    switch (expires.value) {
      case 'keep':
        break;
      case 'never':
        body.expiresAt = null;
        break;
      case 'date': {
        if (!date.value) throw new FormError('Expiry date: choose a date.');
        body.expiresAt = new Date(`${date.value}T23:59:59`).toISOString();
        break;
      }
      default:
        body.expiresIn = Number(expires.value);
    }
    if (env && env.value.trim()) body.environment = env.value.trim();
    if (ownerInput && ownerInput.value.trim()) body.owner = ownerInput.value.trim();

    const limit = numberOrNull(rateLimit, 'Rate limit');
    const rate = limit === null ? null : { limit, windowSeconds: Number(rateWindow.value) };
    const left = numberOrNull(remaining, 'Uses left');
    const amount = numberOrNull(refillAmount, 'Refill to');
    let refill = null;
    if (refillEvery.value) {
      if (left === null) throw new FormError('Refill: needs a number of uses left.');
      refill = { amount: amount === null ? left : amount, intervalSeconds: Number(refillEvery.value) };
    }
    const nets = parseCIDRs(cidrs.value);
    if (!edit) {
      if (rate) body.rateLimit = rate;
      if (left !== null) body.remaining = left;
      if (refill) body.refill = refill;
      if (nets.length) body.allowedCidrs = nets;
      return body;
    }
    if (JSON.stringify(rate) !== JSON.stringify(token.rateLimit ? { limit: token.rateLimit.limit, windowSeconds: token.rateLimit.windowSeconds } : null)) {
      body.rateLimit = rate;
    }
    const before = token.remaining === undefined ? null : token.remaining;
    if (left !== before) body.remaining = left;
    const refillBefore = token.refill ? { amount: token.refill.amount, intervalSeconds: token.refill.intervalSeconds } : null;
    if (left !== null && JSON.stringify(refill) !== JSON.stringify(refillBefore)) body.refill = refill;
    if (nets.join(' ') !== (token.allowedCidrs || []).join(' ')) body.allowedCidrs = nets;
    return body;
  };
  return { read, showError, focus: () => name.focus() };
}
