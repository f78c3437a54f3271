// The dashboard's entry point: configuration, sign-in and sign-out, the page's alert and
// announcements.

import { api, setCredential, whenUnauthorized } from './api.js';
import { loadConfig, signInWithToken, resumeOidc, completeOidc, startOidc, signOut, canManage } from './auth.js';
import { initTokens, startTokens, stopTokens } from './tokens.js';

const $ = (id) => document.getElementById(id);

function showError(e) {
  $('alert-text').textContent = e && e.message ? e.message : String(e);
  $('alert').hidden = false;
}

function clearError() {
  $('alert').hidden = true;
  $('alert-text').textContent = '';
}

// announce tells screen readers what an action did.
function announce(text) {
  const live = $('announce');
  live.textContent = '';
  setTimeout(() => { live.textContent = text; }, 30);
}

function showSignIn() {
  $('dashboard').hidden = true;
  $('session').hidden = true;
  $('sign-in').hidden = false;
}

function enter(me) {
  $('sign-in').hidden = true;
  $('session-owner').textContent = me.owner;
  $('session-role').textContent = me.admin ? '(admin)' : '';
  $('session').hidden = false;
  $('dashboard').hidden = false;
  startTokens(me);
}

async function main() {
  let config;
  try {
    config = await loadConfig();
  } catch (e) {
    $('loading').hidden = true;
    showError(e);
    return;
  }
  // endSession signs out and says why.
  const endSession = (why) => {
    signOut();
    stopTokens();
    showSignIn();
    showError(new Error(why));
  };
  initTokens({ config, showError, clearError, announce, endSession });
  whenUnauthorized((err) => endSession(`You are signed out: ${err.message}`));

  $('alert-close').addEventListener('click', clearError);
  $('token-sign-in').addEventListener('submit', async (e) => {
    e.preventDefault();
    clearError();
    const input = $('sign-in-token');
    const value = input.value.trim();
    if (!value) {
      showError(new Error('Token: paste a token first.'));
      input.focus();
      return;
    }
    const button = e.submitter;
    if (button) button.disabled = true;
    try {
      const me = await signInWithToken(value);
      input.value = '';
      enter(me);
      announce(`Signed in as ${me.owner}.`);
    } catch (err) {
      showError(err);
      input.focus();
    } finally {
      if (button) button.disabled = false;
    }
  });
  $('sign-out').addEventListener('click', () => {
    signOut();
    stopTokens();
    clearError();
    showSignIn();
    announce('Signed out.');
    $('sign-in-title').focus();
  });

  if (config.oidc) {
    $('oidc-sign-in').hidden = false;
    $('oidc-issuer').textContent = `with ${new URL(config.oidc.issuer).host}`;
    $('token-sign-in-box').open = false;
    $('oidc-button').addEventListener('click', () => {
      clearError();
      startOidc(config.oidc).catch(showError);
    });
  }
  $('loading').hidden = true;

  try {
    const idToken = (await completeOidc(config.oidc)) || (config.oidc && resumeOidc(config.oidc));
    if (idToken) {
      setCredential(idToken);
      const me = await api('GET', '/me');
      if (!canManage(me)) throw new Error(`${me.owner} may not manage tokens.`);
      enter(me);
      return;
    }
  } catch (e) {
    signOut();
    showError(e);
  }
  showSignIn();
}

main();
