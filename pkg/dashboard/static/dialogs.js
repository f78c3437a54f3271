// The modal dialogs: the one-time display of a new token, confirmations, the rotation choice.

const $ = (id) => document.getElementById(id);

// showSecret shows a new token's plaintext once, with a Copy button, and resolves when the dialog
// is closed (Done or Escape). Closing empties the dialog and drops any selection of it: after
// that, nothing in the page holds the plaintext (the caller keeps no reference either).
export function showSecret(secret, token) {
  const dlg = $('secret-dialog');
  const value = $('secret-value');
  const status = $('copy-status');
  value.textContent = secret;
  $('secret-for').textContent = `For “${token.name}” (${token.hint}). Send it as the header Authorization: Bearer <token>.`;
  status.textContent = '';
  return new Promise((resolve) => {
    const copy = async () => {
      try {
        await navigator.clipboard.writeText(value.textContent);
        status.textContent = 'Copied to the clipboard.';
      } catch {
        const range = document.createRange();
        range.selectNodeContents(value);
        const sel = window.getSelection();
        sel.removeAllRanges();
        sel.addRange(range);
        status.textContent = 'The browser did not allow copying: the token is selected, press Ctrl+C (⌘C on a Mac) to copy it.';
      }
    };
    const done = () => dlg.close();
    const closed = () => {
      $('secret-copy').removeEventListener('click', copy);
      $('secret-done').removeEventListener('click', done);
      value.textContent = '';
      status.textContent = '';
      $('secret-for').textContent = '';
      window.getSelection().removeAllRanges();
      resolve();
    };
    $('secret-copy').addEventListener('click', copy);
    $('secret-done').addEventListener('click', done);
    dlg.addEventListener('close', closed, { once: true });
    dlg.showModal();
    $('secret-copy').focus();
  });
}

// confirmAction asks a yes-or-no question; resolves true only for the confirming button. Cancel
// has the focus, so that Enter does not destroy anything.
export function confirmAction({ title, text, ok }) {
  const dlg = $('confirm-dialog');
  $('confirm-title').textContent = title;
  $('confirm-text').textContent = text;
  $('confirm-ok').textContent = ok;
  dlg.returnValue = '';
  return new Promise((resolve) => {
    dlg.addEventListener('close', () => resolve(dlg.returnValue === 'ok'), { once: true });
    dlg.showModal();
    $('confirm-cancel').focus();
  });
}

// askRotation asks how long the current secret keeps working; resolves the body of the rotate
// request ({gracePeriodSeconds} or, until the new secret's first use, {gracePeriod,
// maxGracePeriodSeconds}), or null when cancelled.
export function askRotation(token) {
  const dlg = $('rotate-dialog');
  $('rotate-title').textContent = `Rotate “${token.name}”`;
  const form = dlg.querySelector('form');
  const max = $('rotate-max');
  form.reset();
  max.disabled = true;
  dlg.returnValue = '';
  const onChange = () => { max.disabled = form.elements.grace.value !== 'untilFirstUse'; };
  form.addEventListener('change', onChange);
  return new Promise((resolve) => {
    dlg.addEventListener('close', () => {
      form.removeEventListener('change', onChange);
      if (dlg.returnValue !== 'ok') {
        resolve(null);
        return;
      }
      const grace = form.elements.grace.value;
      resolve(grace === 'untilFirstUse'
        ? { gracePeriod: grace, maxGracePeriodSeconds: Number(max.value) }
        : { gracePeriodSeconds: Number(grace) });
    }, { once: true });
    dlg.showModal();
    form.querySelector('input[name=grace]:checked').focus();
  });
}
