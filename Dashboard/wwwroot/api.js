// REST calls under /api/v1, each with the bearer token; a 401 sends the user back to the token form.
import * as session from './session.js';

export class ApiError extends Error {
  constructor(status, problem) {
    super(problem?.detail || problem?.title || `HTTP ${status}`);
    this.status = status;
    this.code = problem?.code;
  }
}

export async function getJson(path, signal) {
  const token = session.token();
  if (!token) throw new ApiError(401, { title: 'No token' });
  const response = await fetch(`/api/v1${path}`, {
    headers: { Authorization: `Bearer ${token}`, Accept: 'application/json' },
    signal,
  });
  if (response.status === 401) {
    session.refuse('The silo refused the token (expired or invalid). Paste a new one.');
  }
  if (!response.ok) {
    const problem = await response.json().catch(() => null);
    throw new ApiError(response.status, problem);
  }
  return response.json();
}

/** Every item of a paged list ({ items, total, offset, limit }), up to a cap. */
export async function getAll(path, signal, cap = 2000) {
  const items = [];
  const separator = path.includes('?') ? '&' : '?';
  for (;;) {
    const page = await getJson(`${path}${separator}offset=${items.length}&limit=200`, signal);
    items.push(...page.items);
    if (page.items.length === 0 || items.length >= page.total || items.length >= cap) return items;
  }
}
