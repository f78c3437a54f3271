// The tokens view: the create form, the filtered and paginated list, and each row's actions.

import { api, query } from './api.js';
import { el, time, formatCount } from './format.js';
import { showSecret, confirmAction, askRotation } from './dialogs.js';
import { buildTokenForm } from './forms.js';
import { toggleDetails, refreshDetails } from './details.js';

const $ = (id) => document.getElementById(id);

let ui = null; // { config, showError, clearError, announce, endSession }
let me = null;
let createForm = null;
const list = { owner: '', status: 'all', limit: 20, cursor: '', previous: [], next: null, byId: new Map(), seq: 0 };

// initTokens wires the view's controls once.
export function initTokens(context) {
  ui = context;
  $('filters').addEventListener('submit', (e) => {
    e.preventDefault();
    const owner = $('filter-owner').value.trim();
    if (owner !== list.owner) {
      list.owner = owner;
      firstPage();
    }
    load();
  });
  $('filter-status').addEventListener('change', (e) => {
    list.status = e.target.value;
    firstPage();
    load();
  });
  $('filter-limit').addEventListener('change', (e) => {
    list.limit = Number(e.target.value);
    firstPage();
    load();
  });
  $('page-next').addEventListener('click', () => {
    if (!list.next) return;
    list.previous.push(list.cursor);
    list.cursor = list.next;
    load();
  });
  $('page-prev').addEventListener('click', () => {
    if (!list.previous.length) return;
    list.cursor = list.previous.pop();
    load();
  });
  $('create-form').addEventListener('submit', (e) => {
    e.preventDefault();
    create(e.submitter || e.target.querySelector('button[type=submit]'));
  });
  $('token-rows').addEventListener('click', (e) => {
    const button = e.target.closest('button');
    const tr = button && button.closest('tr.token-row');
    if (!tr) return;
    const t = list.byId.get(tr.dataset.id);
    if (button.classList.contains('details-toggle')) toggleDetails(tr, t, ui);
    else if (button.dataset.action) act(button.dataset.action, tr, t, button);
  });
}

function firstPage() {
  list.cursor = '';
  list.previous = [];
}

// startTokens shows the list of the signed-in caller.
export function startTokens(caller) {
  me = caller;
  list.owner = '';
  list.status = $('filter-status').value;
  list.limit = Number($('filter-limit').value);
  firstPage();
  $('filter-owner').value = '';
  $('filter-owner').placeholder = me.owner;
  $('filter-owner-label').hidden = !me.admin;
  resetCreateForm();
  load();
}

// stopTokens forgets everything the view holds of the session.
export function stopTokens() {
  me = null;
  list.seq++;
  list.byId.clear();
  $('token-rows').replaceChildren();
  $('create-form').replaceChildren();
  $('create-box').open = false;
}

function resetCreateForm() {
  createForm = buildTokenForm($('create-form'), { mode: 'create', config: ui.config, me, owner: list.owner });
}

async function load() {
  const seq = ++list.seq;
  const table = $('tokens-table');
  table.setAttribute('aria-busy', 'true');
  try {
    const page = await api('GET', `/tokens${query({ owner: list.owner, status: list.status, limit: list.limit, cursor: list.cursor })}`);
    if (seq !== list.seq) return;
    list.next = page.nextCursor;
    render(page.tokens);
  } catch (e) {
    if (seq === list.seq) ui.showError(e);
  } finally {
    if (seq === list.seq) table.setAttribute('aria-busy', 'false');
  }
}

// render replaces the rows with tokens; the time it takes is measured as
// "apitokens:list-render" (performance.measure), which BenchmarkDashboardList100 reads.
function render(tokens) {
  performance.mark('apitokens:list:start');
  list.byId.clear();
  const rows = document.createDocumentFragment();
  for (const t of tokens) {
    list.byId.set(t.id, t);
    rows.append(row(t));
  }
  const tbody = $('token-rows');
  tbody.replaceChildren(rows);
  $('empty').hidden = tokens.length > 0;
  $('page-prev').disabled = list.previous.length === 0;
  $('page-next').disabled = !list.next;
  $('page-info').textContent = `Page ${list.previous.length + 1}`;
  $('list-owner').textContent = list.owner && list.owner !== me.owner ? `of ${list.owner}` : '';
  performance.measure('apitokens:list-render', 'apitokens:list:start');
  tbody.dataset.renders = String(Number(tbody.dataset.renders || 0) + 1);
}

const rowTemplate = () => $('row-template').content.firstElementChild;

function row(t) {
  const tr = rowTemplate().cloneNode(true);
  tr.dataset.id = t.id;
  const nameID = `name-${t.id}`;
  tr.cells[0].firstElementChild.id = nameID;
  for (const b of tr.cells[8].children) b.setAttribute('aria-describedby', nameID);
  fill(tr, t);
  return tr;
}

// fill shows t in its row; the cells are in the order of the table's header.
function fill(tr, t) {
  const [name, hint, status, perms, created, expires, lastUsed, uses, actions] = tr.cells;
  name.firstElementChild.textContent = t.name;
  hint.firstElementChild.textContent = t.hint;
  const badge = status.firstElementChild;
  badge.className = `badge badge-${t.status}`;
  badge.textContent = t.status;
  perms.replaceChildren(...t.permissions.map((p) => el('span', { class: 'perm' }, p)));
  created.replaceChildren(time(t.createdAt, { dateOnly: true }));
  expires.replaceChildren(time(t.expiresAt, { dateOnly: true, empty: 'never' }));
  lastUsed.replaceChildren(time(t.lastUsedAt, { empty: 'never' }));
  uses.textContent = formatCount(t.usageCount);
  const live = t.status !== 'revoked';
  const usable = t.status === 'active' || t.status === 'disabled';
  const [rotate, toggle, edit, revoke] = actions.children;
  rotate.hidden = !usable;
  toggle.hidden = !usable;
  toggle.textContent = t.enabled ? 'Disable' : 'Enable';
  edit.hidden = !live;
  revoke.hidden = !live;
}

// replace shows a changed token in its row (and its details, when open).
function replace(t) {
  list.byId.set(t.id, t);
  const tr = [...$('token-rows').children].find((r) => r.dataset.id === t.id);
  if (!tr) return;
  fill(tr, t);
  refreshDetails(tr, t, ui);
}

// busy runs an action with its button disabled, and shows its error (in the form it belongs to,
// or at the top of the page).
async function busy(button, fn, form = null) {
  ui.clearError();
  if (form) form.showError(null);
  if (button) button.disabled = true;
  try {
    await fn();
  } catch (e) {
    if (form) form.showError(e);
    else ui.showError(e);
  } finally {
    if (button) {
      button.disabled = false;
      // A disabled button loses the focus; give it back unless something else took it.
      const lost = !document.activeElement || document.activeElement === document.body;
      if (lost && button.isConnected && !button.hidden) button.focus();
    }
  }
}

function create(button) {
  return busy(button, async () => {
    const { token: secret, ...view } = await api('POST', '/tokens', createForm.read());
    resetCreateForm();
    const shown = (list.status === 'all' || list.status === view.status) && !list.cursor
      && (list.owner || me.owner) === view.owner;
    if (shown) {
      list.byId.set(view.id, view);
      $('token-rows').prepend(row(view));
      $('empty').hidden = true;
    }
    await showSecret(secret, view);
    ui.announce(`Token “${view.name}” created.`);
    const tr = shown && [...$('token-rows').children].find((r) => r.dataset.id === view.id);
    if (tr) tr.querySelector('.details-toggle').focus();
    else createForm.focus();
  }, createForm);
}

function act(action, tr, t, button) {
  switch (action) {
    case 'rotate':
      return busy(button, async () => {
        const body = await askRotation(t);
        if (body === null) return;
        const { token: secret, ...view } = await api('POST', `/tokens/${t.id}/rotate`, body);
        replace(view);
        await showSecret(secret, view);
        ui.announce(`Token “${view.name}” rotated.`);
      });
    case 'toggle':
      return busy(button, async () => {
        const updated = await api('PATCH', `/tokens/${t.id}`, { enabled: !t.enabled });
        if (t.id === me.tokenId && !updated.enabled) {
          ui.endSession('You disabled the token you were signed in with.');
          return;
        }
        replace(updated);
        ui.announce(`Token “${updated.name}” ${updated.enabled ? 'enabled' : 'disabled'}.`);
      });
    case 'edit':
      return edit(t, button);
    case 'revoke':
      return busy(button, async () => {
        const self = t.id === me.tokenId ? ' You are signed in with it: revoking it signs you out.' : '';
        const ok = await confirmAction({
          title: `Revoke “${t.name}”?`,
          text: `The token “${t.name}” (${t.hint}) stops working at once, everywhere it is used. This cannot be undone.${self}`,
          ok: 'Revoke',
        });
        if (!ok) return;
        const revoked = await api('DELETE', `/tokens/${t.id}`);
        if (self) {
          ui.endSession('You revoked the token you were signed in with.');
          return;
        }
        replace(revoked);
        ui.announce(`Token “${revoked.name}” revoked.`);
        tr.querySelector('.details-toggle').focus();
      });
    default:
      return undefined;
  }
}

function edit(t, button) {
  const dlg = $('edit-dialog');
  const form = $('edit-form');
  $('edit-title').textContent = `Edit “${t.name}”`;
  const ctl = buildTokenForm(form, { mode: 'edit', config: ui.config, me, token: t });
  const submit = async (e) => {
    e.preventDefault();
    await busy(e.submitter, async () => {
      const body = ctl.read();
      if (Object.keys(body).length) {
        replace(await api('PATCH', `/tokens/${t.id}`, body));
        ui.announce(`Token “${t.name}” saved.`);
      }
      dlg.close();
    }, ctl);
  };
  const cancel = (e) => {
    if (e.target.closest('[data-cancel]')) dlg.close();
  };
  form.addEventListener('submit', submit);
  form.addEventListener('click', cancel);
  dlg.addEventListener('close', () => {
    form.removeEventListener('submit', submit);
    form.removeEventListener('click', cancel);
    form.replaceChildren();
    if (button.isConnected) button.focus();
  }, { once: true });
  dlg.showModal();
  ctl.focus();
}
