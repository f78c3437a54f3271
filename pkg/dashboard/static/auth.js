// Sign-in: with a pasted token (kept in memory only), or with the identity provider by OpenID
// Connect's authorization code flow with PKCE (S256) as a public client. Only what must survive
// the redirect to the provider and back (verifier, state, nonce) and the resulting id_token live
// in sessionStorage, which ends with the tab; nothing is ever written to local storage.

import { api, setCredential } from './api.js';

const PENDING = 'apitokens.oidc.pending';
const SESSION = 'apitokens.oidc.session';

export async function loadConfig() {
  const resp = await fetch('/ui/config.json', { cache: 'no-store', credentials: 'omit' });
  if (!resp.ok) throw new Error(`The dashboard's configuration could not be read (${resp.status}).`);
  return resp.json();
}

// canManage says whether a caller of GET /me may use the dashboard at all.
export function canManage(me) {
  return me.admin || me.permissions.includes('manage');
}

// signInWithToken checks a pasted token with GET /me and keeps it for the session.
export async function signInWithToken(value) {
  setCredential(value);
  try {
    const me = await api('GET', '/me');
    if (!canManage(me)) {
      throw new Error('This token has neither the manage nor the admin permission: it cannot manage tokens.');
    }
    return me;
  } catch (e) {
    setCredential(null);
    throw e;
  }
}

// resumeOidc picks up the id_token of an earlier sign-in in this tab, while it is valid.
export function resumeOidc(oidc) {
  const raw = sessionStorage.getItem(SESSION);
  if (!raw) return null;
  try {
    const s = JSON.parse(raw);
    if (oidc && s.issuer === oidc.issuer && s.exp * 1000 > Date.now() + 10000) return s.idToken;
  } catch {
    // unreadable: forgotten below
  }
  sessionStorage.removeItem(SESSION);
  return null;
}

export function signOut() {
  sessionStorage.removeItem(SESSION);
  sessionStorage.removeItem(PENDING);
  setCredential(null);
}

function b64url(bytes) {
  let s = '';
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

function random(n) {
  return b64url(crypto.getRandomValues(new Uint8Array(n)));
}

async function s256(text) {
  const digest = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(text));
  return b64url(new Uint8Array(digest));
}

// redirectURI is where the provider sends people back: this page's origin.
export function redirectURI() {
  return `${location.origin}/`;
}

// endpoints are the provider's, from the server's copy of its discovery document, or read here.
async function endpoints(oidc) {
  if (oidc.authorizationEndpoint && oidc.tokenEndpoint) {
    return { authorization: oidc.authorizationEndpoint, token: oidc.tokenEndpoint };
  }
  const url = `${oidc.issuer.replace(/\/$/, '')}/.well-known/openid-configuration`;
  let resp;
  try {
    resp = await fetch(url, { cache: 'no-store', credentials: 'omit' });
  } catch {
    throw new Error('The identity provider could not be reached.');
  }
  if (!resp.ok) throw new Error(`The identity provider's discovery document could not be read (${resp.status}).`);
  const doc = await resp.json();
  if (doc.issuer !== oidc.issuer) throw new Error("The identity provider's discovery document names another issuer.");
  return { authorization: doc.authorization_endpoint, token: doc.token_endpoint };
}

// startOidc sends the browser to the provider's authorization endpoint.
export async function startOidc(oidc) {
  const ep = await endpoints(oidc);
  const pending = {
    verifier: random(48), state: random(24), nonce: random(24), issuer: oidc.issuer, tokenEndpoint: ep.token,
  };
  const url = new URL(ep.authorization);
  const params = {
    response_type: 'code',
    client_id: oidc.clientId,
    redirect_uri: redirectURI(),
    scope: oidc.scopes,
    state: pending.state,
    nonce: pending.nonce,
    code_challenge: await s256(pending.verifier),
    code_challenge_method: 'S256',
  };
  for (const [k, v] of Object.entries(params)) url.searchParams.set(k, v);
  sessionStorage.setItem(PENDING, JSON.stringify(pending));
  location.assign(url.toString());
}

function claimsOf(jwt) {
  const parts = jwt.split('.');
  if (parts.length !== 3) throw new Error('The identity provider returned a malformed id_token.');
  const bin = atob(parts[1].replace(/-/g, '+').replace(/_/g, '/'));
  return JSON.parse(new TextDecoder().decode(Uint8Array.from(bin, (c) => c.charCodeAt(0))));
}

// completeOidc finishes a sign-in when this page load is the provider's redirect back: it checks
// the state, exchanges the code with the verifier, checks the id_token's nonce, issuer, audience
// and expiry, and returns the id_token. It returns null when the page was not opened that way.
// The server checks the id_token's signature on every call.
export async function completeOidc(oidc) {
  const params = new URLSearchParams(location.search);
  if (!params.has('code') && !params.has('error')) return null;
  const raw = sessionStorage.getItem(PENDING);
  sessionStorage.removeItem(PENDING);
  // The code leaves the address bar and the history at once; it is good for one exchange only.
  history.replaceState(null, '', '/');
  if (!oidc) throw new Error('Single sign-on is not configured on this server.');
  if (params.has('error')) {
    throw new Error(`The identity provider refused the sign-in: ${params.get('error_description') || params.get('error')}.`);
  }
  let pending = null;
  try {
    pending = JSON.parse(raw);
  } catch {
    pending = null;
  }
  if (!pending || pending.issuer !== oidc.issuer) throw new Error('This sign-in was not started from this tab: sign in again.');
  if (params.get('state') !== pending.state) throw new Error('The sign-in answer does not match its request (state): sign in again.');
  if (params.has('iss') && params.get('iss') !== oidc.issuer) throw new Error('The sign-in answer comes from another issuer: sign in again.');

  const body = new URLSearchParams({
    grant_type: 'authorization_code',
    code: params.get('code'),
    redirect_uri: redirectURI(),
    client_id: oidc.clientId,
    code_verifier: pending.verifier,
  });
  let resp;
  try {
    resp = await fetch(pending.tokenEndpoint, {
      method: 'POST', body, cache: 'no-store', credentials: 'omit',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded', Accept: 'application/json' },
    });
  } catch {
    throw new Error("The identity provider's token endpoint could not be reached.");
  }
  const data = await resp.json().catch(() => ({}));
  if (!resp.ok) {
    throw new Error(`The identity provider refused the code: ${data.error_description || data.error || resp.status}.`);
  }
  const idToken = data.id_token;
  if (typeof idToken !== 'string') throw new Error('The identity provider returned no id_token.');
  const claims = claimsOf(idToken);
  const aud = Array.isArray(claims.aud) ? claims.aud : [claims.aud];
  if (claims.nonce !== pending.nonce) throw new Error('The id_token was not issued for this sign-in (nonce): sign in again.');
  if (claims.iss !== oidc.issuer || !aud.includes(oidc.clientId)) {
    throw new Error('The id_token was issued by another issuer or for another client.');
  }
  if (typeof claims.exp !== 'number' || claims.exp * 1000 <= Date.now()) throw new Error('The id_token has expired: sign in again.');
  sessionStorage.setItem(SESSION, JSON.stringify({ idToken, exp: claims.exp, issuer: oidc.issuer }));
  return idToken;
}
