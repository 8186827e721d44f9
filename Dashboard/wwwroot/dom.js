// Builds elements from data with textContent only: nothing from the server is ever parsed as HTML.

/** el('td', { class: 'num', dataset: { testid: 'x' } }, 'text', childNode, ...) */
export function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (name === 'dataset') Object.assign(node.dataset, value);
    else if (name === 'class') node.className = value;
    else if (name.startsWith('on') && typeof value === 'function') node.addEventListener(name.slice(2), value);
    else if (value === true) node.setAttribute(name, '');
    else node.setAttribute(name, String(value));
  }
  append(node, children);
  return node;
}

function append(node, children) {
  for (const child of children) {
    if (child === undefined || child === null || child === false) continue;
    if (Array.isArray(child)) append(node, child);
    else node.append(child instanceof Node ? child : String(child));
  }
}

/** A table head of column labels; the labels in numeric are right-aligned like their cells. */
export function thead(labels, numeric = []) {
  return el('thead', {}, el('tr', {}, labels.map(label =>
    el('th', { scope: 'col', class: numeric.includes(label) ? 'num' : null }, label))));
}

export function clear(node) {
  node.replaceChildren();
  return node;
}

export function formatTime(value) {
  if (!value) return '—';
  const at = new Date(value);
  return Number.isNaN(at.getTime()) ? String(value) : at.toLocaleTimeString([], { hour12: false });
}

export function formatDateTime(value) {
  if (!value) return '—';
  const at = new Date(value);
  return Number.isNaN(at.getTime()) ? String(value) : at.toLocaleString([], { hour12: false });
}

export function formatNumber(value, digits = 2) {
  return typeof value === 'number' && Number.isFinite(value) ? value.toFixed(digits) : '—';
}

export function formatMoney(value) {
  return typeof value === 'number' ? value.toFixed(2) : String(value ?? '—');
}

/** A trace id in full (32 hex digits), selectable, with a copy button. */
export function traceId(id) {
  const code = el('code', { class: 'trace', dataset: { testid: 'trace-id', traceId: id ?? '' }, title: 'Trace id' }, id || '—');
  if (!id) return el('span', {}, code);
  const copy = el('button', {
    type: 'button', class: 'copy quiet', 'aria-label': `Copy trace id ${id}`, title: 'Copy trace id',
    onclick: async () => {
      try {
        await navigator.clipboard.writeText(id);
        copy.textContent = 'Copied';
      } catch {
        // Clipboard access can be refused (no user activation, insecure origin): select the text instead.
        getSelection()?.selectAllChildren(code);
        copy.textContent = 'Selected';
      }
      setTimeout(() => { copy.textContent = 'Copy'; }, 1500);
    },
  }, 'Copy');
  return el('span', { class: 'trace-cell' }, code, copy);
}

export function connectionBadge(connection) {
  const state = String(connection ?? 'Unknown');
  return el('span', { class: `badge ${state.toLowerCase()}`, dataset: { testid: 'connection' } }, state);
}

/** Runs fn at most once per animation frame, however often it is asked. */
export function coalesce(fn) {
  let pending = false;
  return () => {
    if (pending) return;
    pending = true;
    requestAnimationFrame(() => { pending = false; fn(); });
  };
}

export function message(text, kind = 'info') {
  return el('p', { class: `message ${kind}`, role: kind === 'error' ? 'alert' : 'status' }, text);
}
