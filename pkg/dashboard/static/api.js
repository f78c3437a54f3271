// The API client: same origin, JSON, the signed-in credential as a bearer token. Errors carry
// the API's own message ({"code","message"}, or API Gateway's {"message"}), which the page shows.

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

// The credential of the session: a pasted token or an OIDC id_token. Held here, in memory; the
// auth module decides what, if anything, survives a reload.
let credential = null;
let onUnauthorized = () => {};

export function setCredential(value) {
  credential = value;
}

export function hasCredential() {
  return credential !== null;
}

// whenUnauthorized sets what happens when the API refuses the credential (401): the session is
// over (revoked token, expired sign-in).
export function whenUnauthorized(fn) {
  onUnauthorized = fn;
}

// api calls the API and returns the parsed JSON answer, or throws an ApiError.
export async function api(method, path, body, { signal } = {}) {
  const headers = { Accept: 'application/json' };
  if (credential) headers.Authorization = `Bearer ${credential}`;
  const init = { method, headers, cache: 'no-store', credentials: 'omit', redirect: 'error', signal };
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let resp;
  try {
    resp = await fetch(path, init);
  } catch (e) {
    if (e.name === 'AbortError') throw e;
    throw new ApiError(0, 'network', `The API could not be reached (${e.message}).`);
  }
  const text = await resp.text();
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = null;
    }
  }
  if (!resp.ok) {
    const message = data && typeof data.message === 'string' && data.message
      ? data.message
      : `The API answered ${resp.status} ${resp.statusText}.`;
    const err = new ApiError(resp.status, data && data.code ? data.code : 'http', message);
    // 401 from the API; on AWS, API Gateway's own 403 {"message":"Forbidden"} when its
    // authorizer refuses the credential (revoked, expired): the session is over either way.
    const gatewayRefusal = resp.status === 403 && !(data && data.code) && message === 'Forbidden';
    if ((resp.status === 401 || gatewayRefusal) && credential) onUnauthorized(err);
    throw err;
  }
  return data;
}

// query builds a query string from the set values of params.
export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== undefined && v !== null && v !== '') q.set(k, String(v));
  }
  const s = q.toString();
  return s ? `?${s}` : '';
}
