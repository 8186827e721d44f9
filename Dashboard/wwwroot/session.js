// The caller's token: taken from the URL fragment once (the main job prints /dashboard/#token=...),
// kept in sessionStorage (gone with the tab), and asked for again whenever the API refuses it.

const storageKey = 'cloudedge.token';
const listeners = new Set();
let current = sessionStorage.getItem(storageKey);

/** Moves a '#token=...' fragment into storage and off the address bar (and out of the history). */
export function adoptTokenFromFragment() {
  if (!location.hash.startsWith('#token=')) return;
  const params = new URLSearchParams(location.hash.slice(1));
  const token = params.get('token');
  const route = params.get('route');
  history.replaceState(null, '', `${location.pathname}${location.search}#${route && route.startsWith('/') ? route : '/'}`);
  if (token) store(token);
}

export function token() {
  return current;
}

export function claims() {
  if (!current) return null;
  try {
    const payload = current.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
    const json = decodeURIComponent(Array.from(atob(payload), c => `%${c.charCodeAt(0).toString(16).padStart(2, '0')}`).join(''));
    const parsed = JSON.parse(json);
    const roles = parsed.role === undefined ? [] : [].concat(parsed.role);
    return { subject: parsed.sub ?? '', roles, isAdmin: roles.includes('admin'), expires: parsed.exp ? new Date(parsed.exp * 1000) : null };
  } catch {
    return null;
  }
}

/** Called when the server answers 401: forget the token and show the form with the reason. */
export function refuse(reason) {
  if (current === null && !document.getElementById('token-panel').hidden) return;
  forget();
  showForm(reason);
}

export function forget() {
  current = null;
  sessionStorage.removeItem(storageKey);
  notify();
}

/** fn(token | null) runs whenever the token changes. */
export function onChange(fn) {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

function store(value) {
  current = value.trim();
  sessionStorage.setItem(storageKey, current);
  notify();
}

function notify() {
  for (const fn of listeners) fn(current);
}

export function showForm(reason = '') {
  const panel = document.getElementById('token-panel');
  document.getElementById('token-message').textContent = reason;
  panel.hidden = false;
  document.getElementById('token-input').focus();
}

export function wireForm() {
  const form = document.getElementById('token-form');
  form.addEventListener('submit', async event => {
    event.preventDefault();
    const input = document.getElementById('token-input');
    const candidate = input.value.trim();
    if (!candidate) return;
    const answer = await fetch('/api/v1/ping', { headers: { Authorization: `Bearer ${candidate}` } }).catch(() => null);
    if (!answer || !answer.ok) {
      document.getElementById('token-message').textContent = answer
        ? `The silo refused this token (HTTP ${answer.status}).`
        : 'The silo did not answer.';
      return;
    }
    input.value = '';
    document.getElementById('token-panel').hidden = true;
    store(candidate);
  });
  document.getElementById('sign-out').addEventListener('click', () => {
    forget();
    showForm('');
  });
}
