// The one way the UI talks to hume: the same public HTTP API as the CLI.
// State-changing requests say `Content-Type: application/json` (the server
// refuses anything else); a token, when the server wants one, is asked for
// once and kept in sessionStorage.

const KEY = 'hume-token';
let asking = null;

export class ApiError extends Error {
  constructor(status, message) {
    super(`${message} (HTTP ${status})`);
    this.status = status;
  }
}

function askToken(why) {
  if (asking) return asking;
  const dlg = document.getElementById('token');
  const input = document.getElementById('token-input');
  document.getElementById('token-why').textContent = why;
  asking = new Promise((resolve) => {
    dlg.addEventListener('close', () => {
      sessionStorage.setItem(KEY, input.value.trim());
      input.value = '';
      asking = null;
      resolve();
    }, { once: true });
    dlg.showModal();
  });
  return asking;
}

/**
 * Call the API: `api('GET', '/projections')`, `api('POST', path, body)`.
 * Body: an object (sent as JSON), a string (sent as is) or undefined.
 * Resolves to the decoded JSON answer; rejects with an ApiError.
 */
export async function api(method, path, body, { signal } = {}) {
  for (;;) {
    const headers = {};
    const token = sessionStorage.getItem(KEY);
    if (token) headers.Authorization = `Bearer ${token}`;
    if (method !== 'GET') headers['Content-Type'] = 'application/json';
    const init = { method, headers, signal };
    if (body !== undefined) init.body = typeof body === 'string' ? body : JSON.stringify(body);
    const res = await fetch(path, init);
    const text = await res.text();
    let value = null;
    try { value = text ? JSON.parse(text) : null; } catch { value = text; }
    if (res.status === 401) {
      await askToken(token ? 'That token was refused; try again.' : '');
      continue;
    }
    if (!res.ok) throw new ApiError(res.status, (value && value.error) || text || res.statusText);
    return value;
  }
}

/** `/projections/NAME/...` with the name encoded. */
export const proj = (name, rest = '') => `/projections/${encodeURIComponent(name)}${rest}`;
