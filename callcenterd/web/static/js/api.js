// The REST client. The token lives in sessionStorage (one tab, gone when it closes), never in a
// cookie: the API reads only the Authorization header, so there is no CSRF surface.

const TOKEN_KEY = 'callcenterd.token';

/** An answer that is not 2xx; `detail` is the API's own text (422: each bad field). */
export class ApiError extends Error {
  constructor(status, body, retryAfter) {
    super(describe(body) || `HTTP ${status}`);
    this.status = status;
    this.code = body?.code ?? null;
    this.field = body?.field ?? null;
    this.retryAfter = Number(retryAfter) || 0;
  }

  get detail() {
    return this.message;
  }
}

function describe(body) {
  const detail = body?.detail;
  if (Array.isArray(detail)) {
    return detail
      .map((item) => `${(item.loc ?? []).filter((part) => part !== 'body').join('.')}: ${item.msg}`)
      .join('; ');
  }
  return typeof detail === 'string' ? detail : '';
}

async function readJson(response) {
  if (response.status === 204) return null;
  try {
    return await response.json();
  } catch {
    return null;
  }
}

/** When a JWT expires (its `exp`, in ms), or null. The token is only read here, never trusted:
 * the server checks it on every request. */
export function tokenExpiry(token) {
  try {
    const payload = token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
    const exp = JSON.parse(atob(payload)).exp;
    return Number.isFinite(exp) ? exp * 1000 : null;
  } catch {
    return null;
  }
}

export class Api {
  constructor(networkErrorText) {
    this.token = sessionStorage.getItem(TOKEN_KEY);
    this.user = null;
    this.networkErrorText = networkErrorText;
    this.onUnauthorized = () => {};
    this.clockOffset = 0; // server time - browser time, from the Date header
  }

  async request(method, path, body) {
    const headers = { Accept: 'application/json' };
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    if (this.token) headers.Authorization = `Bearer ${this.token}`;
    let response;
    try {
      response = await fetch(`/api${path}`, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        cache: 'no-store',
      });
    } catch {
      throw new ApiError(0, { detail: this.networkErrorText() });
    }
    this.noteServerTime(response);
    const data = await readJson(response);
    if (!response.ok) {
      const error = new ApiError(response.status, data, response.headers.get('Retry-After'));
      if (response.status === 401 && this.token) this.onUnauthorized(error);
      throw error;
    }
    return data;
  }

  get(path) {
    return this.request('GET', path);
  }

  noteServerTime(response) {
    const date = Date.parse(response.headers.get('Date') ?? '');
    if (!Number.isNaN(date)) this.clockOffset = date + 500 - Date.now(); // Date has whole seconds
  }

  /** When this session's token expires, on the server's clock (ms), or null. */
  get expiresAt() {
    return this.token ? tokenExpiry(this.token) : null;
  }

  /** The server's clock, in milliseconds: wait times are counted from the server's stamps. */
  now() {
    return Date.now() + this.clockOffset;
  }

  async login(username, password) {
    const answer = await this.request('POST', '/auth/login', { username, password });
    this.token = answer.access_token;
    sessionStorage.setItem(TOKEN_KEY, this.token);
    this.user = answer.user;
    // /auth/me adds the user's operator (its id and status), which the login answer has not.
    return this.me();
  }

  async me() {
    this.user = await this.get('/auth/me');
    return this.user;
  }

  /** Revokes the token server-side (its WebSockets close too), then forgets it. */
  async logout() {
    try {
      if (this.token) await this.request('POST', '/auth/logout');
    } finally {
      this.forget();
    }
  }

  forget() {
    this.token = null;
    this.user = null;
    sessionStorage.removeItem(TOKEN_KEY);
  }
}
